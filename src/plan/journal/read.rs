//! Reading a journal back: its runs, each entry's intended changes and outcome.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Begin, End, JournalError, Record, Verdict};
use crate::directory::AttrChange;

/// One entry of a run: what was intended and, when known, what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryLog {
    /// The entry's DN.
    pub dn: String,
    /// The intended changes, each with its precondition.
    pub changes: Vec<AttrChange>,
    /// The outcome; `None` when the process stopped before learning it.
    pub outcome: Option<(Verdict, Option<String>)>,
}

/// The replicator settings change of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsLog {
    /// The replica file.
    pub replica: String,
    /// `(setting, before, after)`.
    pub changes: Vec<(String, String, String)>,
    /// The outcome, when known.
    pub outcome: Option<(Verdict, Option<String>)>,
}

/// How far a run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// It ended and every entry landed.
    Complete,
    /// It ended, and some entries did not land.
    Partial,
    /// It never ended (killed, or its journal failed): some outcomes are unknown.
    Interrupted,
}

impl RunState {
    /// The word the listing uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Complete => "complete",
            RunState::Partial => "partial",
            RunState::Interrupted => "interrupted",
        }
    }
}

/// Everything the journal holds about one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLog {
    /// The run's id.
    pub id: String,
    /// Its first line (`None` when only later lines survived).
    pub begin: Option<Begin>,
    /// Its entries by number.
    pub entries: BTreeMap<usize, EntryLog>,
    /// Its replicator settings change.
    pub settings: Option<SettingsLog>,
    /// Its last line, when it ended.
    pub end: Option<End>,
}

impl RunLog {
    fn new(id: &str) -> RunLog {
        RunLog {
            id: id.to_string(),
            begin: None,
            entries: BTreeMap::new(),
            settings: None,
            end: None,
        }
    }

    /// The directory the run wrote to.
    pub fn directory(&self) -> Option<&str> {
        self.begin.as_ref().map(|b| b.directory.as_str())
    }

    /// Entries whose outcome is `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.entries
            .values()
            .filter(|e| e.outcome.as_ref().is_some_and(|(v, _)| *v == verdict))
            .count()
    }

    /// Entries with an intent and no outcome: they may or may not have changed.
    pub fn unknown(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.outcome.is_none())
            .count()
    }

    /// How far the run got.
    pub fn state(&self) -> RunState {
        let settings_ok = self
            .settings
            .as_ref()
            .is_none_or(|s| matches!(s.outcome, Some((Verdict::Applied, _))));
        match &self.end {
            None => RunState::Interrupted,
            Some(_) if self.unknown() > 0 => RunState::Interrupted,
            Some(_) if self.count(Verdict::Applied) == self.entries.len() && settings_ok => {
                RunState::Complete
            }
            Some(_) => RunState::Partial,
        }
    }
}

/// A journal file as read: its runs in the order they began, and the lines that could
/// not be read.
#[derive(Debug, Clone, Default)]
pub struct JournalFile {
    /// The runs, in order of their first line.
    pub runs: Vec<RunLog>,
    /// `(line number, why)` of every line that was skipped: not JSON (a line torn by a
    /// kill while it was written), or in the format of an older ocsh (no run id).
    pub skipped: Vec<(usize, String)>,
}

impl JournalFile {
    /// Reads and parses a journal file.
    pub fn read(path: &Path) -> Result<JournalFile, JournalError> {
        let fail = |message: String, source: Option<std::io::Error>| JournalError {
            path: path.to_path_buf(),
            message,
            source,
        };
        let meta =
            std::fs::metadata(path).map_err(|e| fail(format!("cannot read it: {e}"), Some(e)))?;
        if !meta.is_file() {
            return Err(fail("not a regular file".into(), None));
        }
        let bytes =
            std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}"), Some(e)))?;
        Ok(JournalFile::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// Parses journal text.
    pub fn parse(text: &str) -> JournalFile {
        let mut file = JournalFile::default();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = match serde_json::from_str(line) {
                Ok(r) => r,
                Err(e) => {
                    let why = match serde_json::from_str::<serde_json::Value>(line) {
                        Ok(v) if v.get("event").is_none() => {
                            "a line of an older ocsh's journal (no run id)".to_string()
                        }
                        Ok(_) => format!("not a journal record: {e}"),
                        Err(_) => {
                            "not JSON (torn: the writer was stopped while writing it?)".to_string()
                        }
                    };
                    file.skipped.push((line_no, why));
                    continue;
                }
            };
            let i = *index.entry(record.run().to_string()).or_insert_with(|| {
                file.runs.push(RunLog::new(record.run()));
                file.runs.len() - 1
            });
            let Some(run) = file.runs.get_mut(i) else {
                continue;
            };
            match record {
                Record::Begin(b) => run.begin = Some(b),
                Record::Intent(r) => {
                    let entry = run.entries.entry(r.entry).or_insert_with(|| EntryLog {
                        dn: r.dn.clone(),
                        changes: Vec::new(),
                        outcome: None,
                    });
                    entry.changes.push(AttrChange {
                        attr: r.attribute,
                        before: r.before,
                        after: r.after,
                    });
                }
                Record::Outcome(r) => {
                    let entry = run.entries.entry(r.entry).or_insert_with(|| EntryLog {
                        dn: r.dn.clone(),
                        changes: Vec::new(),
                        outcome: None,
                    });
                    entry.outcome = Some((r.result, r.message));
                }
                Record::SettingsIntent(r) => {
                    let s = run.settings.get_or_insert_with(|| SettingsLog {
                        replica: r.replica.clone(),
                        changes: Vec::new(),
                        outcome: None,
                    });
                    s.changes.push((r.setting, r.before, r.after));
                }
                Record::SettingsOutcome(r) => {
                    let s = run.settings.get_or_insert_with(|| SettingsLog {
                        replica: r.replica.clone(),
                        changes: Vec::new(),
                        outcome: None,
                    });
                    s.outcome = Some((r.result, r.message));
                }
                Record::End(r) => run.end = Some(r),
            }
        }
        file
    }

    /// The run with id `id`, or the last one when `id` is `None`.
    pub fn run(&self, id: Option<&str>) -> Option<&RunLog> {
        match id {
            Some(id) => self.runs.iter().find(|r| r.id == id),
            None => self.runs.last(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_interleaved_torn_and_old_lines() {
        let text = concat!(
            r#"{"time":"t","directory":"d","dn":"CN=X","attribute":"a","before":[],"after":["1"],"result":"applied"}"#,
            "\n",
            r#"{"event":"begin","run":"r1","time":"t","directory":"/d.ldif","command":"run","entries":2,"changes":3}"#,
            "\n",
            r#"{"event":"intent","run":"r1","time":"t","directory":"/d.ldif","entry":0,"dn":"CN=A","attribute":"x","before":[],"after":["1"]}"#,
            "\n",
            r#"{"event":"intent","run":"r1","time":"t","directory":"/d.ldif","entry":0,"dn":"CN=A","attribute":"y","before":["2"],"after":[]}"#,
            "\n",
            r#"{"event":"begin","run":"r2","time":"t","directory":"/d.ldif","command":"undo","undoes":"r1","entries":1,"changes":1}"#,
            "\n",
            r#"{"event":"intent","run":"r1","time":"t","directory":"/d.ldif","entry":1,"dn":"CN=B","attribute":"x","before":[],"after":["1"]}"#,
            "\n",
            r#"{"event":"outcome","run":"r1","time":"t","entry":0,"dn":"CN=A","result":"applied"}"#,
            "\n",
            r#"{"event":"end","run":"r1","time":"t","applied":1,"conflicted":0,"failed":0}"#,
            "\n",
            r#"{"event":"intent","run":"r2","time":"t","direc"#,
        );
        let f = JournalFile::parse(text);
        assert_eq!(f.runs.len(), 2);
        assert_eq!(f.skipped.len(), 2, "{:?}", f.skipped);
        assert!(f.skipped[0].1.contains("older"));
        assert!(f.skipped[1].1.contains("torn"));
        let r1 = f.run(Some("r1")).unwrap();
        assert_eq!(r1.entries.len(), 2);
        assert_eq!(r1.entries[&0].changes.len(), 2);
        assert_eq!(r1.count(Verdict::Applied), 1);
        assert_eq!(r1.unknown(), 1);
        assert_eq!(r1.state(), RunState::Interrupted);
        assert_eq!(f.run(None).unwrap().id, "r2");
        assert_eq!(
            f.run(None)
                .unwrap()
                .begin
                .as_ref()
                .unwrap()
                .undoes
                .as_deref(),
            Some("r1")
        );
    }
}
