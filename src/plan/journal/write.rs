//! Appending to the journal. Intents are synced (`fsync`) before the entries they
//! describe are sent; outcomes are written (not synced) as they come, since losing one
//! only turns a known result into an unknown one, which the directory itself answers.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    Begin, End, Intent, JournalError, Outcome, Record, SettingsIntent, SettingsOutcome, Verdict,
};
use crate::plan::{ApplyOutcome, SettingsChange, StagedEntry};

/// Runs started by this process, so that two applies in one second get different ids.
static RUNS: AtomicUsize = AtomicUsize::new(0);

/// A new run id: UTC time, process id and a counter (`20261202T004941Z-4242-1`), unique
/// per apply and sortable by time.
pub fn new_run_id() -> String {
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let compact: String = time.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!(
        "{compact}-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst) + 1
    )
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// An open journal, appending the records of one run at a time.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    run: String,
    directory: String,
    /// Lines not yet handed to the file.
    pending: String,
}

impl Journal {
    /// Opens the journal for appending, creating it and its folder if needed. It must be
    /// a regular file: a device (`/dev/null`, `/dev/full`) or a FIFO cannot keep intents.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let fail = |message: String, source: Option<std::io::Error>| JournalError {
            path: path.to_path_buf(),
            message,
            source,
        };
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.is_file() {
                return Err(fail(
                    "not a regular file; the journal must be a file that ocsh can append to and sync to disk".into(),
                    None,
                ));
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create its folder: {e}"), Some(e)))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| fail(format!("cannot open it for appending: {e}"), Some(e)))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            run: String::new(),
            directory: String::new(),
            pending: String::new(),
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of the run being journalled (empty before [`Journal::begin`]).
    pub fn run(&self) -> &str {
        &self.run
    }

    fn error(&self, what: &str, e: std::io::Error) -> JournalError {
        JournalError {
            path: self.path.clone(),
            message: format!("cannot {what}: {e}"),
            source: Some(e),
        }
    }

    fn push(&mut self, record: &Record) {
        // Serialising plain strings and numbers cannot fail.
        if let Ok(line) = serde_json::to_string(record) {
            self.pending.push_str(&line);
            self.pending.push('\n');
        }
    }

    /// Hands the pending lines to the file (one `write`, so that the lines of two
    /// processes appending to one journal never mix within a line).
    pub fn flush(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let text = std::mem::take(&mut self.pending);
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| self.error("write", e))
    }

    /// Flushes and syncs to disk: what was journalled survives a crash.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.flush()?;
        self.file.sync_data().map_err(|e| self.error("sync", e))
    }

    /// Starts a run (a new id); written with the first intents.
    pub fn begin(&mut self, mut begin: Begin) {
        begin.run = new_run_id();
        begin.time = now();
        self.run = begin.run.clone();
        self.directory = begin.directory.clone();
        self.push(&Record::Begin(begin));
    }

    /// Queues the intents of entry number `index` (one line per attribute).
    pub fn intent(&mut self, index: usize, entry: &StagedEntry) {
        let time = now();
        for c in &entry.changes {
            let record = Record::Intent(Intent {
                run: self.run.clone(),
                time: time.clone(),
                directory: self.directory.clone(),
                entry: index,
                dn: entry.dn.clone(),
                attribute: c.attr.clone(),
                before: c.before.clone(),
                after: c.after.clone(),
            });
            self.push(&record);
        }
    }

    /// Queues the outcome of entry number `index`.
    pub fn outcome(&mut self, index: usize, entry: &StagedEntry, outcome: &ApplyOutcome) {
        let (result, message) = verdict(outcome);
        let record = Record::Outcome(Outcome {
            run: self.run.clone(),
            time: now(),
            entry: index,
            dn: entry.dn.clone(),
            result,
            message,
        });
        self.push(&record);
    }

    /// Queues the intents of a replicator settings change.
    pub fn settings_intent(&mut self, change: &SettingsChange) {
        let time = now();
        let replica = replica_name(change);
        for (setting, before, after) in change.changes() {
            let record = Record::SettingsIntent(SettingsIntent {
                run: self.run.clone(),
                time: time.clone(),
                replica: replica.clone(),
                setting: setting.to_string(),
                before,
                after,
            });
            self.push(&record);
        }
    }

    /// Queues the outcome of the settings change.
    pub fn settings_outcome(&mut self, change: &SettingsChange, outcome: &ApplyOutcome) {
        let (result, message) = verdict(outcome);
        let record = Record::SettingsOutcome(SettingsOutcome {
            run: self.run.clone(),
            time: now(),
            replica: replica_name(change),
            result,
            message,
        });
        self.push(&record);
    }

    /// Queues the end of the run with its counts.
    pub fn end(&mut self, applied: usize, conflicted: usize, failed: usize) {
        let record = Record::End(End {
            run: self.run.clone(),
            time: now(),
            applied,
            conflicted,
            failed,
        });
        self.push(&record);
    }
}

/// The replica by its absolute path, so that `ocsh undo` finds it from any folder.
fn replica_name(change: &SettingsChange) -> String {
    std::fs::canonicalize(&change.replica)
        .unwrap_or_else(|_| change.replica.clone())
        .display()
        .to_string()
}

fn verdict(outcome: &ApplyOutcome) -> (Verdict, Option<String>) {
    match outcome {
        ApplyOutcome::Applied => (Verdict::Applied, None),
        ApplyOutcome::Conflict(m) => (Verdict::Conflict, Some(m.clone())),
        ApplyOutcome::Failed(m) => (Verdict::Failed, Some(m.clone())),
    }
}
