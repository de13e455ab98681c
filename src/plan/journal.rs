//! The journal: every change an apply attempted, appended as JSON lines
//! (time, dn, attribute, before, after, result), so that what was done can be audited
//! and undone by hand.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ApplyOutcome, ApplyReport};

/// One line of the journal. Fields in alphabetical order, the order the lines have
/// always had (serde_json's maps are sorted); a struct of borrowed fields instead of a
/// `json!` map per change, which cost a fifth of a 5,500-entry apply.
#[derive(Serialize)]
struct Line<'a> {
    after: &'a [String],
    attribute: &'a str,
    before: &'a [String],
    directory: &'a str,
    dn: &'a str,
    message: Option<&'a String>,
    result: &'a str,
    time: &'a str,
}

/// An open journal file.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens (creating it and its folder if needed) the journal for appending. Called
    /// before anything is written, so an unwritable journal stops the apply.
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per attempted change of the report, and syncs the file.
    pub fn record(&mut self, directory: &str, report: &ApplyReport) -> std::io::Result<()> {
        let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let mut out = String::new();
        for (entry, outcome) in &report.results {
            let (result, message) = match outcome {
                ApplyOutcome::Applied => ("applied", None),
                ApplyOutcome::Conflict(m) => ("conflict", Some(m)),
                ApplyOutcome::Failed(m) => ("failed", Some(m)),
            };
            for c in &entry.changes {
                let line = Line {
                    after: &c.after,
                    attribute: &c.attr,
                    before: &c.before,
                    directory,
                    dn: &entry.dn,
                    message,
                    result,
                    time: &time,
                };
                out.push_str(&serde_json::to_string(&line).map_err(std::io::Error::other)?);
                out.push('\n');
            }
        }
        self.file.write_all(out.as_bytes())?;
        self.file.sync_data()
    }
}
