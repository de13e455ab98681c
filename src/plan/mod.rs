//! The change set: staged modifications, the rules applied to them, rendering and apply.
//!
//! Scripts never write. Every operation stages attribute changes here, after the `ocs`
//! rules have accepted them; the runner shows the plan and writes it only on `--apply`.

pub mod apply;
pub mod error;
pub mod guard;
pub mod journal;
pub mod ldif;
pub mod reach;
pub mod render;
pub mod terminal;
pub mod undo;
pub mod workspace;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::directory::AttrChange;
use crate::ocs::dn::normalize;
use crate::ocs::values::same_values;
use crate::ocs::{OcsUser, ReplicatorSettings, UserChange};

pub use apply::{ApplyOutcome, ApplyReport, RunInfo};
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

/// A staged change of the replicator's settings (MSFT_SIPUserReplicatorSetting), written
/// to the replica by the runner after the directory entries, with `before` as its
/// precondition (only the settings that differ are written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingsChange {
    /// The replica file the settings live in.
    pub replica: PathBuf,
    /// The settings as read when the change was first staged.
    pub before: ReplicatorSettings,
    /// The settings to write.
    pub after: ReplicatorSettings,
}

impl SettingsChange {
    /// The settings that change, as `(name, before, after)`.
    pub fn changes(&self) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        if self.before.interval() != self.after.interval() {
            out.push((
                "ReplicationCycleInterval",
                self.before.interval().to_string(),
                self.after.interval().to_string(),
            ));
        }
        if self.before.regenerate_pending() != self.after.regenerate_pending() {
            out.push((
                "RegenerateCookiesNow",
                self.before.regenerate_pending().to_string(),
                self.after.regenerate_pending().to_string(),
            ));
        }
        out
    }
}

/// All staged changes of a session, keyed by DN, in the order they were first staged.
#[derive(Debug, Default)]
pub struct Plan {
    entries: Vec<StagedEntry>,
    /// normalized DN -> (index in entries, the user as read, the user with changes)
    users: HashMap<String, (usize, OcsUser, OcsUser)>,
    /// The replicator's settings, when a script changed them.
    settings: Option<SettingsChange>,
    /// Lower-cased SIP address -> normalized DNs of the staged views holding it, so that
    /// a uniqueness check costs the same with 10,000 staged users as with one.
    sips: HashMap<String, Vec<String>>,
    /// The reaches the run's scripts declared; the plan must stay within each.
    reaches: Vec<crate::ocs::reach::Reach>,
}

impl Plan {
    /// True when nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(|e| e.changes.is_empty()) && self.settings.is_none()
    }

    /// Bounds the plan by `reach` (a declared one; an undeclared reach bounds nothing). It
    /// stays when the changes are discarded: it belongs to the session's scripts.
    pub fn declare_reach(&mut self, reach: &crate::ocs::reach::Reach) {
        if reach.is_declared() && !self.reaches.contains(reach) {
            self.reaches.push(reach.clone());
        }
    }

    /// The declared reaches the plan must stay within.
    pub fn reaches(&self) -> &[crate::ocs::reach::Reach] {
        &self.reaches
    }

    /// The staged change of the replicator's settings, if any.
    pub fn settings_change(&self) -> Option<&SettingsChange> {
        self.settings.as_ref()
    }

    /// Stages new replicator settings for the replica `replica`, read as `read`. The
    /// first staged change keeps `before`; a change back to it drops out of the plan.
    pub fn stage_settings(
        &mut self,
        replica: &std::path::Path,
        read: &ReplicatorSettings,
        after: ReplicatorSettings,
    ) {
        let before = match self.settings.take() {
            Some(s) if s.replica == replica => s.before,
            _ => read.clone(),
        };
        if before != after {
            self.settings = Some(SettingsChange {
                replica: replica.to_path_buf(),
                before,
                after,
            });
        }
    }

    /// Takes the staged settings change out of the plan (the runner writes it).
    pub fn take_settings_change(&mut self) -> Option<SettingsChange> {
        self.settings.take()
    }

    /// The entries that have changes.
    pub fn entries(&self) -> impl Iterator<Item = &StagedEntry> {
        self.entries.iter().filter(|e| !e.changes.is_empty())
    }

    /// Number of entries with changes.
    pub fn entry_count(&self) -> usize {
        self.entries().count()
    }

    /// Number of attribute changes (and replicator settings changed).
    pub fn change_count(&self) -> usize {
        self.entries().map(|e| e.changes.len()).sum::<usize>()
            + self.settings.as_ref().map_or(0, |s| s.changes().len())
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

    /// The staged user views whose SIP address is `sip` (compared case-insensitively).
    pub fn staged_holders(&self, sip: &str) -> impl Iterator<Item = &OcsUser> {
        self.sips
            .get(&sip.to_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|key| self.users.get(key).map(|(_, _, current)| current))
    }

    /// Stages `changes` on the user `read` (as it was read from the directory). Changes
    /// that undo earlier ones drop out; `before` always stays the value first read.
    pub fn stage(&mut self, read: &OcsUser, changes: &[UserChange], warnings: Vec<String>) {
        let key = normalize(&read.dn).unwrap_or_else(|_| read.dn.to_lowercase());
        let fresh = !self.users.contains_key(&key);
        let (index, original, current) = self.users.entry(key.clone()).or_insert_with(|| {
            self.entries.push(StagedEntry {
                dn: read.dn.clone(),
                label: read.label().to_string(),
                changes: Vec::new(),
                warnings: Vec::new(),
            });
            (self.entries.len() - 1, read.clone(), read.clone())
        });
        // A user staged for the first time enters the index with the address it has.
        let sip_before = current.sip().filter(|_| !fresh).map(str::to_lowercase);
        current.apply(changes);
        let sip_after = current.sip().map(str::to_lowercase);
        if sip_before != sip_after {
            if let Some(old) = sip_before.and_then(|s| self.sips.get_mut(&s)) {
                old.retain(|k| *k != key);
            }
            if let Some(new) = sip_after {
                self.sips.entry(new).or_default().push(key);
            }
        }
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
        self.sips.clear();
        self.settings = None;
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

    #[test]
    fn settings_are_staged_like_attributes() {
        use crate::ocs::InstanceId;
        let mut plan = Plan::default();
        let path = std::path::Path::new("/tmp/r.sqlite");
        let read = ReplicatorSettings::new("b", InstanceId::from_bytes([7; 16]));
        let mut after = read.clone();
        after.set_interval(120).unwrap();
        plan.stage_settings(path, &read, after.clone());
        assert!(!plan.is_empty());
        assert_eq!(plan.change_count(), 1);
        assert_eq!(plan.entry_count(), 0);
        let staged = plan.settings_change().unwrap();
        assert_eq!(staged.before.interval(), 60);
        assert_eq!(
            staged.changes(),
            vec![("ReplicationCycleInterval", "60".into(), "120".into())]
        );
        // Restaging keeps the first before; going back to it drops the change.
        let mut again = after.clone();
        again.set_interval(300).unwrap();
        plan.stage_settings(path, &after, again);
        assert_eq!(plan.settings_change().unwrap().before.interval(), 60);
        plan.stage_settings(path, &after, read.clone());
        assert!(plan.is_empty());
        plan.stage_settings(path, &read, after);
        plan.discard();
        assert!(plan.settings_change().is_none());
    }
}
