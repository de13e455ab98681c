//! Running one case: the script in plan mode in `ocsh run`'s sandbox against its fixture,
//! and what it produced compared with what the case expects.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use rhai::Map;

use super::case::{Case, Expected, Fixture, parse_records};
use crate::directory::ldap::LdapOptions;
use crate::directory::{DirectorySpec, demo, ldif};
use crate::error::Error;
use crate::plan::Workspace;
use crate::script::header::Header;
use crate::script::{Sandbox, Session};

/// What a case expects that it did not get.
#[derive(Debug, Clone)]
pub(crate) enum Mismatch {
    /// Another exit code; `message` is the error the run ended with.
    Exit {
        /// The case's `exit`.
        expected: u8,
        /// The run's.
        actual: u8,
        /// The run's error, if it failed.
        message: Option<String>,
    },
    /// An expected file differs (or is missing while something was produced).
    Differs {
        /// What (`plan`, `records`, `after`).
        what: &'static str,
        /// The expected file, or the file the case should name.
        file: String,
        /// The expected text.
        expected: String,
        /// The actual text.
        actual: String,
    },
    /// Something the case cannot check.
    Other(String),
}

/// A case's result.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Empty when the case passed.
    pub mismatches: Vec<Mismatch>,
    /// Expected files `--update` rewrote because they differed.
    pub updated: Vec<PathBuf>,
    /// The script's `print` output.
    pub printed: String,
}

/// `print` output of the script, kept in memory.
#[derive(Clone, Default)]
struct Capture(Rc<RefCell<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a run produced.
struct Actual {
    exit: u8,
    message: Option<String>,
    plan: String,
    planned: bool,
    records: Vec<serde_json::Value>,
    /// The copy's text after the apply, when the case has `after`.
    after: Option<String>,
}

/// Runs `case` with `lib` as the snippet folders; with `update`, writes what it produced
/// into the expected files.
pub(crate) fn run_case(case: &Case, lib: &[PathBuf], update: bool) -> Outcome {
    let capture = Capture::default();
    let actual = match produce(case, lib, &capture) {
        Ok(a) => a,
        Err(message) => {
            return Outcome {
                mismatches: vec![Mismatch::Other(message)],
                ..Outcome::default()
            };
        }
    };
    let mut out = Outcome {
        printed: String::from_utf8_lossy(&capture.0.borrow()).into_owned(),
        ..Outcome::default()
    };
    if actual.exit != case.exit {
        out.mismatches.push(Mismatch::Exit {
            expected: case.exit,
            actual: actual.exit,
            message: actual.message.clone(),
        });
    }
    // Without a file, a passing case must plan nothing and emit nothing; a failing one is
    // checked by its exit code only.
    let implicit_empty = case.exit == 0;
    let records_text: String = actual.records.iter().map(|r| format!("{r}\n")).collect();
    compare(
        &mut out,
        "plan",
        case.plan.as_ref(),
        &actual.plan,
        (implicit_empty && actual.planned).then_some(("plan", ".plan.ldif")),
        update,
        &case.name,
        |expected, file| {
            let parse = |t: &str| ldif::parse_modify_records(t, file).ok();
            parse(expected).is_some() && parse(expected) == parse(&actual.plan)
        },
    );
    compare(
        &mut out,
        "records",
        case.records.as_ref(),
        &records_text,
        (implicit_empty && !actual.records.is_empty()).then_some(("records", ".records.jsonl")),
        update,
        &case.name,
        |expected, file| parse_records(expected, file).ok().as_ref() == Some(&actual.records),
    );
    if let (Some(exp), Some(after)) = (&case.after, &actual.after) {
        compare(
            &mut out,
            "after",
            Some(exp),
            after,
            None,
            update,
            &case.name,
            |expected, file| {
                canonical(expected, file).is_some()
                    && canonical(expected, file) == canonical(after, file)
            },
        );
    }
    out
}

/// Compares one expected file with the actual text (`same` decides equality, ignoring
/// what does not matter: comments, folding, order), and under `update` rewrites it.
/// `unnamed` is set when the case names no file but expected nothing and got something.
#[allow(clippy::too_many_arguments)]
fn compare(
    out: &mut Outcome,
    what: &'static str,
    expected: Option<&Expected>,
    actual: &str,
    unnamed: Option<(&str, &str)>,
    update: bool,
    case_name: &str,
    same: impl Fn(&str, &str) -> bool,
) {
    let Some(exp) = expected else {
        if let Some((key, suffix)) = unnamed {
            let stem = Path::new(case_name)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.mismatches.push(Mismatch::Differs {
                what,
                file: format!(
                    "(none: the case names no {key} file; add {key} = \"{stem}{suffix}\")"
                ),
                expected: String::new(),
                actual: actual.to_string(),
            });
        }
        return;
    };
    let file = exp.path.display().to_string();
    let matches = exp.text.as_deref().is_some_and(|t| same(t, &file));
    if matches {
        return;
    }
    if update {
        match std::fs::write(&exp.path, actual) {
            Ok(()) => out.updated.push(exp.path.clone()),
            Err(e) => out
                .mismatches
                .push(Mismatch::Other(format!("cannot write {file}: {e}"))),
        }
        return;
    }
    out.mismatches.push(Mismatch::Differs {
        what,
        file,
        expected: exp.text.clone().unwrap_or_default(),
        actual: actual.to_string(),
    });
}

/// Runs the script; `Err` only for what is not the script's doing (a fixture that does
/// not load, a temp copy that cannot be made).
fn produce(case: &Case, lib: &[PathBuf], capture: &Capture) -> Result<Actual, String> {
    let source = std::fs::read_to_string(&case.script)
        .map_err(|e| format!("{}: {e}", case.script.display()))?;
    let name = case.script_label.clone();
    let failed = |e: Error| Actual {
        exit: e.exit_code(),
        message: Some(e.to_string()),
        plan: String::new(),
        planned: false,
        records: Vec::new(),
        after: None,
    };
    let header = match Header::parse(&source) {
        Ok(h) => h,
        Err(e) => return Ok(failed(Error::Usage(format!("{name}: header {e}")))),
    };
    let params: Map = match header.params(&case.params) {
        Ok(p) => p,
        Err(e) => return Ok(failed(Error::Usage(format!("{name}: {e}")))),
    };
    // With `after`, the run reads and writes a copy; the fixture itself is only read.
    let copy = match &case.after {
        None => None,
        Some(_) => {
            let dir = tempfile::Builder::new()
                .prefix("ocsh-case-")
                .tempdir()
                .map_err(|e| format!("cannot make a temp folder: {e}"))?;
            let path = dir.path().join("fixture.ldif");
            let text = match &case.fixture {
                Fixture::Demo => demo::DEMO_LDIF.as_bytes().to_vec(),
                Fixture::Ldif(p) => {
                    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?
                }
            };
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Some((dir, path))
        }
    };
    let spec = match (&copy, &case.fixture) {
        (Some((_, path)), _) => DirectorySpec::Ldif(path.clone()),
        (None, Fixture::Demo) => DirectorySpec::Demo,
        (None, Fixture::Ldif(p)) => DirectorySpec::Ldif(p.clone()),
    };
    let ws = Workspace::connect(&spec, &LdapOptions::default(), Duration::from_secs(60))
        .map_err(|e| format!("fixture {}: {e}", case.fixture_label))?;
    let sandbox = Sandbox {
        timeout: Some(Duration::from_secs(600)),
        lib: lib.to_vec(),
        allow_read: case.allow_read.clone(),
        ..Sandbox::default()
    };
    let mut ws = ws;
    ws.declare_reach(&header.reach);
    let mut session = Session::new(ws, params, &sandbox, Box::new(capture.clone()));
    let result = session
        .run(&name, &source)
        .map_err(Error::Script)
        .and_then(|_| crate::cli::enforce_reach(session.host().ws.borrow().plan(), &name));
    let records = crate::cli::output::records_json(&session.take_records());
    let records = match records {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    let host = session.host().clone();
    let mut ws = host.ws.borrow_mut();
    let plan = crate::plan::ldif::plan_ldif(ws.plan(), &case.fixture_label);
    let planned = !ws.plan().is_empty();
    let (exit, message) = match result {
        Ok(()) => (crate::error::exit::OK, None),
        Err(e) => (e.exit_code(), Some(e.to_string())),
    };
    let mut after = None;
    if let Some((_dir, path)) = &copy {
        if exit == crate::error::exit::OK {
            // The copy's journal is thrown away with the copy.
            let dir = _dir.path();
            let mut journal = crate::plan::journal::Journal::open(&dir.join("journal.jsonl"))
                .map_err(|e| e.to_string())?;
            let info = crate::plan::RunInfo {
                command: "test".into(),
                ..Default::default()
            };
            let report = ws
                .apply(&mut journal, &info, 1, &mut |_, _| {}, &mut |_| {
                    crate::plan::ApplyOutcome::Failed(
                        "a case does not write replicator settings".into(),
                    )
                })
                .map_err(|e| e.to_string())?;
            if !report.all_applied() {
                return Err(format!(
                    "applying the plan to a copy of the fixture: {} of {} entries landed",
                    report.applied(),
                    report.results.len()
                ));
            }
            after = Some(std::fs::read_to_string(path).map_err(|e| format!("{e}"))?);
        }
    }
    Ok(Actual {
        exit,
        message,
        plan,
        planned,
        records,
        after,
    })
}

/// Content LDIF in a form where order, folding and comments do not matter: entries by
/// DN, each entry's `name: value` lines sorted.
fn canonical(text: &str, file: &str) -> Option<Vec<(String, Vec<String>)>> {
    let entries = ldif::parse(text, file).ok()?;
    let mut out: Vec<(String, Vec<String>)> = entries
        .iter()
        .map(|e| {
            let mut lines: Vec<String> = e
                .attributes()
                .iter()
                .flat_map(|a| {
                    a.values
                        .iter()
                        .map(|v| ldif::value_line(&a.name.to_ascii_lowercase(), v))
                })
                .collect();
            for (name, values) in e.binary_attributes() {
                for v in values {
                    lines.push(format!("{}:: {v:?}", name.to_ascii_lowercase()));
                }
            }
            lines.sort();
            let dn = crate::ocs::dn::normalize(&e.dn).unwrap_or_else(|_| e.dn.clone());
            (dn, lines)
        })
        .collect();
    out.sort();
    Some(out)
}
