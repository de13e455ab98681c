//! The change set: staged modifications, the rules applied to them, rendering and apply.
//!
//! Scripts never write. Every operation stages attribute changes here, after the `ocs`
//! rules have accepted them; the runner shows the plan and writes it only on `--apply`.

pub mod apply;
pub mod error;
pub mod journal;
pub mod render;
pub mod workspace;

use std::collections::HashMap;

use serde::Serialize;

use crate::directory::AttrChange;
use crate::ocs::dn::normalize;
use crate::ocs::values::same_values;
use crate::ocs::{OcsUser, UserChange};

pub use apply::{ApplyOutcome, ApplyReport};
pub use error::PlanError;
pub use workspace::Workspace;

/// The staged changes of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagedEntry {
    /// The entry's DN.
    pub dn: String,
    /// A short name for display (sAMAccountName).
    pub label: String,
    /// The attribute changes, in staging order; each with the value it was planned against.
    pub changes: Vec<AttrChange>,
    /// Problems the entry still has after the changes (shown as warnings).
    pub warnings: Vec<String>,
}

/// All staged changes of a session, keyed by DN, in the order they were first staged.
#[derive(Debug, Default)]
pub struct Plan {
    entries: Vec<StagedEntry>,
    /// normalized DN -> (index in entries, the user as read, the user with changes)
    users: HashMap<String, (usize, OcsUser, OcsUser)>,
}

impl Plan {
    /// True when nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(|e| e.changes.is_empty())
    }

    /// The entries that have changes.
    pub fn entries(&self) -> impl Iterator<Item = &StagedEntry> {
        self.entries.iter().filter(|e| !e.changes.is_empty())
    }

    /// Number of entries with changes.
    pub fn entry_count(&self) -> usize {
        self.entries().count()
    }

    /// Number of attribute changes.
    pub fn change_count(&self) -> usize {
        self.entries().map(|e| e.changes.len()).sum()
    }

    /// The user as it reads with its staged changes, when it has any.
    pub fn staged_view(&self, dn: &str) -> Option<&OcsUser> {
        let key = normalize(dn).ok()?;
        self.users.get(&key).map(|(_, _, current)| current)
    }

    /// Every staged user view (for uniqueness checks across the plan).
    pub fn staged_views(&self) -> impl Iterator<Item = &OcsUser> {
        self.users.values().map(|(_, _, current)| current)
    }

    /// Stages `changes` on the user `read` (as it was read from the directory). Changes
    /// that undo earlier ones drop out; `before` always stays the value first read.
    pub fn stage(&mut self, read: &OcsUser, changes: &[UserChange], warnings: Vec<String>) {
        let key = normalize(&read.dn).unwrap_or_else(|_| read.dn.to_lowercase());
        let (index, original, current) = self.users.entry(key).or_insert_with(|| {
            self.entries.push(StagedEntry {
                dn: read.dn.clone(),
                label: read.label().to_string(),
                changes: Vec::new(),
                warnings: Vec::new(),
            });
            (self.entries.len() - 1, read.clone(), read.clone())
        });
        current.apply(changes);
        let entry = &mut self.entries[*index];
        for change in changes {
            let before = original.get(&change.attr).to_vec();
            match entry
                .changes
                .iter()
                .position(|c| c.attr.eq_ignore_ascii_case(&change.attr))
            {
                Some(i) if same_values(&change.attr, &before, &change.after) => {
                    entry.changes.remove(i);
                }
                Some(i) => entry.changes[i].after = change.after.clone(),
                None if same_values(&change.attr, &before, &change.after) => {}
                None => entry.changes.push(AttrChange {
                    attr: change.attr.clone(),
                    before,
                    after: change.after.clone(),
                }),
            }
        }
        entry.warnings = warnings;
    }

    /// Forgets every staged change.
    pub fn discard(&mut self) {
        self.entries.clear();
        self.users.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> OcsUser {
        let flags = vec!["256".to_string()];
        OcsUser::from_pairs("CN=A,DC=x", [("msRTCSIP-OptionFlags", flags.as_slice())])
    }

    fn change(attr: &str, v: &[&str]) -> UserChange {
        UserChange {
            attr: attr.into(),
            after: v.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn restaging_keeps_the_first_before_and_undo_drops_out() {
        let mut plan = Plan::default();
        let u = user();
        plan.stage(&u, &[change("msRTCSIP-OptionFlags", &["257"])], vec![]);
        plan.stage(&u, &[change("msRTCSIP-OptionFlags", &["385"])], vec![]);
        let e: Vec<_> = plan.entries().collect();
        assert_eq!(
            e[0].changes,
            vec![AttrChange {
                attr: "msRTCSIP-OptionFlags".into(),
                before: vec!["256".into()],
                after: vec!["385".into()]
            }]
        );
        assert_eq!(
            plan.staged_view("cn=a,dc=x")
                .unwrap()
                .first("msrtcsip-optionflags"),
            Some("385")
        );
        plan.stage(&u, &[change("msRTCSIP-OptionFlags", &["256"])], vec![]);
        assert!(plan.is_empty());
        plan.stage(&u, &[change("msRTCSIP-Line", &["tel:+1"])], vec![]);
        assert_eq!(plan.change_count(), 1);
        plan.discard();
        assert!(plan.is_empty() && plan.staged_view("CN=A,DC=x").is_none());
    }
}
