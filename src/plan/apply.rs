//! Writing a plan: one modify per entry, each carrying its preconditions, with bounded
//! concurrency, then one commit; every entry journalled before it is written.
//!
//! The order that makes a kill -9 safe at any instant: the intents of an entry are in
//! the journal and synced before its modify is sent. Against a server, modifies land as
//! they are answered, so intents are synced in blocks ahead of the writes and each
//! outcome follows its answer. The embedded backend changes nothing durable until its
//! commit renames the new file into place, so there every intent is synced before the
//! first modify, and the outcomes are written after the commit, when they are true.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::directory::{DirError, Directory};

use super::journal::{Begin, Journal, JournalError};
use super::{SettingsChange, StagedEntry};

/// Entries whose intents are synced together against a server: one sync per block
/// bounds the cost of the write-ahead rule, and a kill leaves at most this many intents
/// whose entries were never sent.
const INTENT_BLOCK: usize = 128;

/// Entries in a row that may fail with the directory's own failure (not a conflict or a
/// refused value) before the apply stops sending, per write in flight: the backend has
/// retried each of them already, so a directory that is gone would otherwise cost every
/// remaining entry its whole retry budget.
const FAILURES_IN_A_ROW_PER_WRITE: usize = 2;

/// What became of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "message", rename_all = "snake_case")]
pub enum ApplyOutcome {
    /// Every change of the entry landed.
    Applied,
    /// A value changed since it was read; nothing of the entry was written.
    Conflict(String),
    /// The directory refused or failed, or the entry was not sent; nothing of the entry
    /// was written.
    Failed(String),
}

/// The result of an apply, entry by entry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// The journal run these results are recorded under.
    pub run: String,
    /// Each entry with its outcome, in plan order.
    pub results: Vec<(StagedEntry, ApplyOutcome)>,
    /// The replicator's settings change, when the plan had one, with its outcome (the
    /// runner writes it after the entries).
    pub settings: Option<(SettingsChange, ApplyOutcome)>,
    /// The journal failed during the apply: the entries not yet sent were not sent.
    #[serde(skip)]
    pub journal_error: Option<Arc<JournalError>>,
}

impl ApplyReport {
    /// Entries whose changes landed.
    pub fn applied(&self) -> usize {
        self.count(|o| matches!(o, ApplyOutcome::Applied))
    }

    /// Entries refused because a value had changed.
    pub fn conflicted(&self) -> usize {
        self.count(|o| matches!(o, ApplyOutcome::Conflict(_)))
    }

    /// Entries that failed otherwise.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, ApplyOutcome::Failed(_)))
    }

    /// True when every entry (and the settings change, if any) landed.
    pub fn all_applied(&self) -> bool {
        self.applied() == self.results.len()
            && self
                .settings
                .as_ref()
                .is_none_or(|(_, o)| *o == ApplyOutcome::Applied)
    }

    fn count(&self, f: impl Fn(&ApplyOutcome) -> bool) -> usize {
        self.results.iter().filter(|(_, o)| f(o)).count()
    }
}

/// What a run is, for its `begin` line.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// `run`, `repl` or `undo`.
    pub command: String,
    /// The script, for `run`.
    pub script: Option<String>,
    /// The run an undo reverses.
    pub undoes: Option<String>,
    /// The directory as the journal names it (absolute path or URL).
    pub directory: String,
}

impl RunInfo {
    pub(crate) fn begin(&self, entries: usize, changes: usize) -> Begin {
        Begin {
            run: String::new(),
            time: String::new(),
            directory: self.directory.clone(),
            command: self.command.clone(),
            script: self.script.clone(),
            undoes: self.undoes.clone(),
            entries,
            changes,
        }
    }
}

/// Applies `entries` to `dir`, journalling each before it is sent, then commits. The
/// journal's `begin` line must be queued already; nothing is sent until it and the first
/// intents are synced, so a journal that cannot be written stops the apply before the
/// first write (`Err`). A journal that fails later stops the sending: the entries not
/// sent are failures, and the error is in the report.
pub(crate) async fn apply_entries(
    dir: &dyn Directory,
    entries: Vec<StagedEntry>,
    journal: &mut Journal,
    concurrency: usize,
    timeout: Duration,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ApplyReport, JournalError> {
    let total = entries.len();
    let deferred = dir.writes_at_commit();
    // Against a server the first block is synced here, so that an unwritable journal
    // fails before anything is sent; the embedded backend gets every intent now.
    let first = if deferred {
        total
    } else {
        INTENT_BLOCK.min(total)
    };
    for (i, e) in entries.iter().enumerate().take(first) {
        journal.intent(i, e);
    }
    journal.sync()?;

    let journal = RefCell::new(journal);
    let failure: RefCell<Option<JournalError>> = RefCell::new(None);
    // Set when the directory keeps failing: the entries not yet sent are not sent.
    let halted: RefCell<Option<String>> = RefCell::new(None);
    let journalled = Cell::new(first);
    let entries_ref = &entries;
    // Makes sure entry `i`'s intent is synced; false when the journal has failed.
    let ensure_intent = |i: usize| -> bool {
        if failure.borrow().is_some() {
            return false;
        }
        if i < journalled.get() {
            return true;
        }
        let end = (i + INTENT_BLOCK).min(total);
        let mut j = journal.borrow_mut();
        for (k, e) in entries_ref.iter().enumerate().take(end).skip(i) {
            j.intent(k, e);
        }
        match j.sync() {
            Ok(()) => {
                journalled.set(end);
                true
            }
            Err(e) => {
                *failure.borrow_mut() = Some(e);
                false
            }
        }
    };
    let mut outcomes: Vec<Option<ApplyOutcome>> = vec![None; total];
    let mut done = 0usize;
    {
        let mut results = stream::iter(0..total)
            .map(|i| {
                // Runs when the stream takes entry i, before its modify is created.
                let allowed = halted.borrow().is_none() && ensure_intent(i);
                let entry = &entries_ref[i];
                async move {
                    if !allowed {
                        return (i, None, false);
                    }
                    // The second value: the directory's own failure, as opposed to
                    // this entry's values (a conflict, a refused value, a missing entry).
                    let (outcome, directory_failed) =
                        match tokio::time::timeout(timeout, dir.modify(&entry.dn, &entry.changes))
                            .await
                        {
                            Ok(Ok(())) => (ApplyOutcome::Applied, false),
                            Ok(Err(e @ DirError::Conflict { .. })) => {
                                (ApplyOutcome::Conflict(e.to_string()), false)
                            }
                            Ok(Err(
                                e @ (DirError::Constraint { .. }
                                | DirError::NoSuchObject(_)
                                | DirError::InvalidDn { .. }),
                            )) => (ApplyOutcome::Failed(e.to_string()), false),
                            Ok(Err(e)) => (ApplyOutcome::Failed(e.to_string()), true),
                            Err(_) => (
                                ApplyOutcome::Failed(format!(
                                    "no answer within {} s (the change may or may not have landed)",
                                    timeout.as_secs()
                                )),
                                true,
                            ),
                        };
                    (i, Some(outcome), directory_failed)
                }
            })
            .buffer_unordered(concurrency.max(1));
        let mut in_a_row = 0usize;
        while let Some((i, outcome, directory_failed)) = results.next().await {
            match (&outcome, directory_failed) {
                (Some(_), true) => in_a_row += 1,
                (Some(_), false) => in_a_row = 0,
                (None, _) => {}
            }
            if in_a_row >= FAILURES_IN_A_ROW_PER_WRITE * concurrency.max(1)
                && halted.borrow().is_none()
            {
                if let Some(ApplyOutcome::Failed(m)) = &outcome {
                    *halted.borrow_mut() = Some(format!(
                        "not sent: the directory failed {in_a_row} entries in a row (the last: {m})"
                    ));
                }
            }
            if let Some(o) = &outcome {
                if !deferred && failure.borrow().is_none() {
                    let mut j = journal.borrow_mut();
                    j.outcome(i, &entries_ref[i], o);
                    if let Err(e) = j.flush() {
                        *failure.borrow_mut() = Some(e);
                    }
                }
            }
            outcomes[i] = outcome;
            done += 1;
            progress(done, total);
        }
    }
    let failure = failure.into_inner();
    let halted = halted.into_inner();
    let not_sent = |f: &Option<JournalError>| {
        ApplyOutcome::Failed(match (f, &halted) {
            (Some(e), _) => format!("not sent: {e}"),
            (None, Some(why)) => why.clone(),
            (None, None) => "not sent".to_string(),
        })
    };
    // Entries whose intents are journalled but that were never sent get their outcome
    // too (not when the journal itself failed: it cannot take it).
    let journalled = journalled.get();
    let never_sent: Vec<usize> = (0..journalled.min(total))
        .filter(|&i| outcomes[i].is_none())
        .collect();
    let mut results: Vec<(StagedEntry, ApplyOutcome)> = entries
        .into_iter()
        .zip(outcomes)
        .map(|(e, o)| {
            let o = o.unwrap_or_else(|| not_sent(&failure));
            (e, o)
        })
        .collect();
    // Also after nothing applied: the commit ends the apply, releasing what the
    // directory holds for it (the embedded file's write lock).
    if let Err(e) = dir.commit().await {
        for (_, o) in &mut results {
            if *o == ApplyOutcome::Applied {
                *o = ApplyOutcome::Failed(format!("not saved: {e}"));
            }
        }
    }
    let journal = journal.into_inner();
    let mut failure = failure;
    if !deferred && failure.is_none() && !never_sent.is_empty() {
        for &i in &never_sent {
            if let Some((e, o)) = results.get(i) {
                journal.outcome(i, e, o);
            }
        }
        if let Err(e) = journal.flush() {
            failure = Some(e);
        }
    }
    if deferred && failure.is_none() {
        for (i, (e, o)) in results.iter().enumerate() {
            journal.outcome(i, e, o);
        }
        if let Err(e) = journal.flush() {
            failure = Some(e);
        }
    }
    Ok(ApplyReport {
        run: journal.run().to_string(),
        results,
        settings: None,
        journal_error: failure.map(Arc::new),
    })
}
