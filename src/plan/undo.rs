//! Undo: the reverse of a journalled run, planned against the directory as it is now.
//!
//! Each entry the run may have changed (applied, or whose outcome never reached the
//! journal) is read again. Only when every attribute still holds the run's after-value is
//! the reverse staged, with that after-value as its precondition, so an undo never
//! overwrites what someone changed since; the apply's preconditions catch a change made
//! between this plan and its apply. The values restored are those the directory held
//! before the run, so they are not put through the rules a script's changes are: they
//! were there already.

use crate::directory::filter::same_values;
use crate::ocs::UserChange;

use super::journal::{RunLog, Verdict};
use super::{PlanError, Workspace};

/// What undo decided for one entry of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoNote {
    /// The reverse is staged.
    Reversed,
    /// The entry holds the run's before-values: the run's change never landed, or was
    /// undone already.
    AlreadyBefore,
    /// The run did not change the entry (its outcome was a conflict).
    NotChanged,
    /// Someone changed these attributes since the run; the entry is left alone.
    ChangedSince(Vec<String>),
    /// The entry is no longer in the directory.
    Missing,
}

impl UndoNote {
    /// The note as a sentence.
    pub fn text(&self) -> String {
        match self {
            UndoNote::Reversed => "reversed".into(),
            UndoNote::AlreadyBefore => {
                "already holds the values from before the run (never landed, or undone); nothing to do"
                    .into()
            }
            UndoNote::NotChanged => "the run did not change it (conflict); nothing to do".into(),
            UndoNote::ChangedSince(attrs) => format!(
                "changed since the run ({}); left alone",
                attrs.join(", ")
            ),
            UndoNote::Missing => "no longer in the directory; left alone".into(),
        }
    }
}

/// Undo's decision for every entry of the run, in run order.
#[derive(Debug, Clone, Default)]
pub struct UndoSummary {
    /// `(dn, note)` per entry.
    pub entries: Vec<(String, UndoNote)>,
}

impl UndoSummary {
    /// Entries whose reverse is staged.
    pub fn reversed(&self) -> usize {
        self.entries
            .iter()
            .filter(|(_, n)| *n == UndoNote::Reversed)
            .count()
    }

    /// Entries left alone because they changed since or are gone.
    pub fn left_alone(&self) -> usize {
        self.entries
            .iter()
            .filter(|(_, n)| matches!(n, UndoNote::ChangedSince(_) | UndoNote::Missing))
            .count()
    }
}

impl Workspace {
    /// Stages the reverse of `run`'s changes to entries (see the module documentation).
    pub fn stage_undo(&mut self, run: &RunLog) -> Result<UndoSummary, PlanError> {
        let mut summary = UndoSummary::default();
        for entry in run.entries.values() {
            if matches!(entry.outcome, Some((Verdict::Conflict, _))) {
                summary
                    .entries
                    .push((entry.dn.clone(), UndoNote::NotChanged));
                continue;
            }
            let read = match self.find_user(&entry.dn) {
                Ok(u) => u,
                Err(PlanError::UserNotFound(..)) => {
                    summary.entries.push((entry.dn.clone(), UndoNote::Missing));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let now = self.view(&read);
            let mut changed = Vec::new();
            let mut at_before = 0;
            for c in &entry.changes {
                let current = now.get(&c.attr);
                if same_values(&c.attr, current, &c.after) {
                    continue;
                }
                if same_values(&c.attr, current, &c.before) {
                    at_before += 1;
                } else {
                    changed.push(c.attr.clone());
                }
            }
            let note = if at_before == entry.changes.len() {
                UndoNote::AlreadyBefore
            } else if !changed.is_empty() || at_before > 0 {
                // A modify lands whole: an entry partly at its before-values was changed
                // by someone else too.
                let mut attrs = changed;
                for c in &entry.changes {
                    if same_values(&c.attr, now.get(&c.attr), &c.before) {
                        attrs.push(c.attr.clone());
                    }
                }
                UndoNote::ChangedSince(attrs)
            } else {
                let changes: Vec<UserChange> = entry
                    .changes
                    .iter()
                    .map(|c| UserChange {
                        attr: c.attr.clone(),
                        after: c.before.clone(),
                    })
                    .collect();
                self.stage_restore(&read, changes);
                UndoNote::Reversed
            };
            summary.entries.push((entry.dn.clone(), note));
        }
        Ok(summary)
    }
}
