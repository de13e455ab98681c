//! Writing a plan: one modify per entry, each carrying its preconditions, with bounded
//! concurrency, then one commit.

use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::directory::{DirError, Directory};

use super::StagedEntry;

/// What became of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "message", rename_all = "snake_case")]
pub enum ApplyOutcome {
    /// Every change of the entry landed.
    Applied,
    /// A value changed since it was read; nothing of the entry was written.
    Conflict(String),
    /// The directory refused or failed; nothing of the entry was written.
    Failed(String),
}

/// The result of an apply, entry by entry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// Each entry with its outcome, in plan order.
    pub results: Vec<(StagedEntry, ApplyOutcome)>,
    /// The replicator's settings change, when the plan had one, with its outcome (the
    /// runner writes it after the entries).
    pub settings: Option<(super::SettingsChange, ApplyOutcome)>,
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

/// Applies `entries` to `dir`, then commits. A failed commit turns every applied entry
/// into a failure, since nothing reached the store.
pub async fn apply_entries(
    dir: &dyn Directory,
    entries: Vec<StagedEntry>,
    concurrency: usize,
    timeout: Duration,
    progress: &mut dyn FnMut(usize, usize),
) -> ApplyReport {
    let total = entries.len();
    let mut indexed: Vec<(usize, StagedEntry, ApplyOutcome)> = Vec::with_capacity(total);
    let mut results = stream::iter(entries.into_iter().enumerate())
        .map(|(i, entry)| async move {
            let outcome = match tokio::time::timeout(timeout, dir.modify(&entry.dn, &entry.changes))
                .await
            {
                Ok(Ok(())) => ApplyOutcome::Applied,
                Ok(Err(e @ DirError::Conflict { .. })) => ApplyOutcome::Conflict(e.to_string()),
                Ok(Err(e)) => ApplyOutcome::Failed(e.to_string()),
                Err(_) => ApplyOutcome::Failed(format!("no answer within {} s", timeout.as_secs())),
            };
            (i, entry, outcome)
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = results.next().await {
        indexed.push(r);
        progress(indexed.len(), total);
    }
    drop(results);
    indexed.sort_by_key(|(i, _, _)| *i);
    let mut report = ApplyReport {
        results: indexed.into_iter().map(|(_, e, o)| (e, o)).collect(),
        settings: None,
    };
    // Also after nothing applied: the commit ends the apply, releasing what the
    // directory holds for it (the embedded file's write lock).
    if let Err(e) = dir.commit().await {
        for (_, o) in &mut report.results {
            if *o == ApplyOutcome::Applied {
                *o = ApplyOutcome::Failed(format!("not saved: {e}"));
            }
        }
    }
    report
}
