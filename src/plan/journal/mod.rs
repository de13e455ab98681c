//! The write-ahead journal: a JSON-lines file to which every apply appends, before it
//! writes an entry, what it is about to change (the intent, synced to disk), and after,
//! what became of it (the outcome). So a run that was killed, lost its server or had its
//! journal fill up still leaves the truth about every entry it may have changed, and
//! `ocsh undo` can reverse a run from it.
//!
//! Lines, each with the run's id and a time (`event` tells them apart):
//! `begin` (directory, command, counts), `intent` (one per attribute: entry number, dn,
//! attribute, before, after), `outcome` (one per entry: applied, conflict or failed),
//! `settings_intent` / `settings_outcome` (the replicator's settings), `end` (counts).
//! An intent without an outcome means the process stopped before it learned the result:
//! the entry may or may not have changed.

mod read;
mod write;

use serde::{Deserialize, Serialize};

pub use read::{EntryLog, JournalFile, RunLog, RunState, SettingsLog};
pub use write::{Journal, new_run_id};

/// The journal failed: it cannot be opened, written or synced, or read back.
#[derive(Debug, thiserror::Error)]
#[error("journal {}: {message}", path.display())]
pub struct JournalError {
    /// The journal file.
    pub path: std::path::PathBuf,
    /// What failed.
    pub message: String,
    /// The I/O error, when there is one.
    #[source]
    pub source: Option<std::io::Error>,
}

/// What became of one entry or settings change, as the journal records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It landed.
    Applied,
    /// A value had changed since it was read; nothing of it was written.
    Conflict,
    /// The directory refused or failed (or it was never sent).
    Failed,
}

impl Verdict {
    /// The word the journal and its listing use.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Applied => "applied",
            Verdict::Conflict => "conflict",
            Verdict::Failed => "failed",
        }
    }
}

/// A run begins: what and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Begin {
    /// The run's id (unique per apply).
    pub run: String,
    /// RFC 3339 time.
    pub time: String,
    /// The directory written to: an LDIF file's absolute path or an LDAP URL.
    pub directory: String,
    /// `run`, `repl` or `undo`.
    pub command: String,
    /// The script, for `run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// The run an `undo` reverses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
    /// Entries in the plan.
    pub entries: usize,
    /// Attribute changes in the plan (and replicator settings).
    pub changes: usize,
}

/// The intent to change one attribute of one entry, journalled and synced before the
/// entry is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The run.
    pub run: String,
    /// RFC 3339 time.
    pub time: String,
    /// The directory.
    pub directory: String,
    /// The entry's number in the run (the changes of one entry share it).
    pub entry: usize,
    /// The entry's DN.
    pub dn: String,
    /// The attribute.
    pub attribute: String,
    /// The values planned against (the precondition).
    pub before: Vec<String>,
    /// The values to write.
    pub after: Vec<String>,
}

/// What became of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The run.
    pub run: String,
    /// RFC 3339 time.
    pub time: String,
    /// The entry's number in the run.
    pub entry: usize,
    /// The entry's DN.
    pub dn: String,
    /// Applied, conflict or failed.
    pub result: Verdict,
    /// Why, when it did not land.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The intent to change one replicator setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsIntent {
    /// The run.
    pub run: String,
    /// RFC 3339 time.
    pub time: String,
    /// The replica file.
    pub replica: String,
    /// The setting (`ReplicationCycleInterval`, `RegenerateCookiesNow`).
    pub setting: String,
    /// Its value as read.
    pub before: String,
    /// The value to write.
    pub after: String,
}

/// What became of the replicator's settings change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsOutcome {
    /// The run.
    pub run: String,
    /// RFC 3339 time.
    pub time: String,
    /// The replica file.
    pub replica: String,
    /// Applied, conflict or failed.
    pub result: Verdict,
    /// Why, when it did not land.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A run ends: its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// The run.
    pub run: String,
    /// RFC 3339 time.
    pub time: String,
    /// Entries that landed.
    pub applied: usize,
    /// Entries refused because a value had changed.
    pub conflicted: usize,
    /// Entries that failed or were not sent.
    pub failed: usize,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// A run begins.
    Begin(Begin),
    /// An attribute is about to be written.
    Intent(Intent),
    /// An entry's result.
    Outcome(Outcome),
    /// A replicator setting is about to be written.
    SettingsIntent(SettingsIntent),
    /// The settings change's result.
    SettingsOutcome(SettingsOutcome),
    /// A run ends.
    End(End),
}

impl Record {
    /// The run the line belongs to.
    pub fn run(&self) -> &str {
        match self {
            Record::Begin(r) => &r.run,
            Record::Intent(r) => &r.run,
            Record::Outcome(r) => &r.run,
            Record::SettingsIntent(r) => &r.run,
            Record::SettingsOutcome(r) => &r.run,
            Record::End(r) => &r.run,
        }
    }
}
