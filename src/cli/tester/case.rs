//! Reading a `*.case.toml` file: every path resolved against the case's folder and
//! checked before anything runs, every problem named with its file and line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::directory::ldif;

/// A case file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    script: Spanned<String>,
    directory: Spanned<String>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    allow_read: Vec<Spanned<String>>,
    exit: Option<Spanned<i64>>,
    plan: Option<Spanned<String>>,
    records: Option<Spanned<String>>,
    after: Option<Spanned<String>>,
}

/// The directory a case runs against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fixture {
    /// The built-in demo forest (`directory = "demo"`).
    Demo,
    /// An LDIF file, read and never written.
    Ldif(PathBuf),
}

/// An expected file: where it is, and its content when it exists (it may not yet under
/// `--update`).
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    /// The file.
    pub path: PathBuf,
    /// Its text; `None` when it does not exist yet.
    pub text: Option<String>,
}

/// A case, checked and ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    /// Its name: the case file's path without `.case.toml`.
    pub name: String,
    /// The script.
    pub script: PathBuf,
    /// The script's path in the library folder, for messages.
    pub script_label: String,
    /// The fixture.
    pub fixture: Fixture,
    /// The fixture as the case names it (the plan's header shows this, not a temp path).
    pub fixture_label: String,
    /// `--param` pairs.
    pub params: Vec<(String, String)>,
    /// `--allow-read` grants.
    pub allow_read: Vec<PathBuf>,
    /// The expected exit code.
    pub exit: u8,
    /// The expected plan (LDIF change records).
    pub plan: Option<Expected>,
    /// The expected records (JSON lines).
    pub records: Option<Expected>,
    /// The expected fixture after the plan is applied to a copy.
    pub after: Option<Expected>,
}

/// A case file that cannot be used, with the file and line at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaseError {
    /// The file at fault (the case, or an expected file it names).
    pub file: String,
    /// The 1-based line, when one is at fault.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .unwrap_or(text)
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The case's name: its path without `.case.toml`.
pub(crate) fn case_name(path: &Path) -> String {
    let shown = path.display().to_string();
    shown
        .strip_suffix(".case.toml")
        .unwrap_or(&shown)
        .to_string()
}

/// Reads and checks the case file `path`. `root` is the library folder the script must
/// lie in; `update` allows expected files that do not exist yet (they are written).
pub(crate) fn load(path: &Path, root: &Path, update: bool) -> Result<Case, CaseError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CaseError {
        file: file.clone(),
        line: None,
        message: e.to_string(),
    })?;
    let at = |offset: usize, message: String| CaseError {
        file: file.clone(),
        line: Some(line_of(&text, offset)),
        message,
    };
    let raw: CaseFile = toml::from_str(&text).map_err(|e| CaseError {
        file: file.clone(),
        line: e.span().map(|s| line_of(&text, s.start)),
        message: e.message().trim().to_string(),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &str| dir.join(p);

    let script = resolve(raw.script.get_ref());
    let script_at = |m: String| at(raw.script.span().start, m);
    let canonical = script.canonicalize().map_err(|e| {
        script_at(format!(
            "script {:?}: {e} (paths are relative to the case file)",
            raw.script.get_ref()
        ))
    })?;
    let root_canonical = root
        .canonicalize()
        .map_err(|e| script_at(format!("library folder {}: {e}", root.display())))?;
    if !canonical.starts_with(&root_canonical) {
        return Err(script_at(format!(
            "script {:?} is outside the library folder {} (a case tests the library's own scripts)",
            raw.script.get_ref(),
            root_canonical.display()
        )));
    }
    if !canonical.is_file() {
        return Err(script_at(format!(
            "script {:?} is not a file",
            raw.script.get_ref()
        )));
    }

    let d = raw.directory.get_ref();
    let lower = d.trim().to_ascii_lowercase();
    let fixture = if lower == "demo" {
        Fixture::Demo
    } else if lower.starts_with("ldap://") || lower.starts_with("ldaps://") {
        return Err(at(
            raw.directory.span().start,
            format!("directory {d:?}: a case runs against a fixture file, never a live directory"),
        ));
    } else {
        let p = resolve(d);
        if !p.is_file() {
            return Err(at(
                raw.directory.span().start,
                format!(
                    "missing fixture {d:?} (looked for {}; paths are relative to the case file)",
                    p.display()
                ),
            ));
        }
        Fixture::Ldif(p)
    };

    let mut params = Vec::new();
    for (name, value) in &raw.params {
        let v = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(at(
                    value.span().start,
                    format!(
                        "params.{name}: an {} is not a parameter value (give a string, integer or boolean)",
                        other.type_str()
                    ),
                ));
            }
        };
        params.push((name.clone(), v));
    }

    let mut allow_read = Vec::new();
    for grant in &raw.allow_read {
        let p = resolve(grant.get_ref());
        if !p.exists() {
            return Err(at(
                grant.span().start,
                format!(
                    "allow_read {:?}: no such file or folder ({})",
                    grant.get_ref(),
                    p.display()
                ),
            ));
        }
        allow_read.push(p);
    }

    let exit = match &raw.exit {
        None => 0,
        Some(e) => u8::try_from(*e.get_ref())
            .map_err(|_| at(e.span().start, format!("exit {}: not 0..255", e.get_ref())))?,
    };

    let expected = |key: &Option<Spanned<String>>,
                    check: fn(&str, &str) -> Result<(), CaseError>|
     -> Result<Option<Expected>, CaseError> {
        let Some(name) = key else {
            return Ok(None);
        };
        let p = resolve(name.get_ref());
        match std::fs::read(&p) {
            Ok(bytes) => {
                let shown = p.display().to_string();
                let text = ldif::decode_bytes(&bytes, &shown).map_err(|e| CaseError {
                    file: shown.clone(),
                    line: None,
                    message: e.to_string(),
                })?;
                check(&text, &shown)?;
                Ok(Some(Expected {
                    path: p,
                    text: Some(text),
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && update => Ok(Some(Expected {
                path: p,
                text: None,
            })),
            Err(e) => Err(at(
                name.span().start,
                format!(
                    "{:?}: {e} (run ocsh test --update to write it)",
                    name.get_ref()
                ),
            )),
        }
    };
    Ok(Case {
        name: case_name(path),
        script_label: canonical
            .strip_prefix(&root_canonical)
            .unwrap_or(&canonical)
            .display()
            .to_string(),
        script: canonical,
        fixture,
        fixture_label: d.clone(),
        params,
        allow_read,
        exit,
        plan: expected(&raw.plan, check_plan)?,
        records: expected(&raw.records, check_records)?,
        after: expected(&raw.after, check_after)?,
    })
}

fn ldif_error(file: &str, e: crate::directory::DirError) -> CaseError {
    match e {
        crate::directory::DirError::Ldif {
            path,
            line,
            message,
        } => CaseError {
            file: path,
            line: Some(line),
            message: format!("not a valid LDIF plan: {message}"),
        },
        other => CaseError {
            file: file.to_string(),
            line: None,
            message: other.to_string(),
        },
    }
}

fn check_plan(text: &str, file: &str) -> Result<(), CaseError> {
    ldif::parse_modify_records(text, file)
        .map(|_| ())
        .map_err(|e| ldif_error(file, e))
}

fn check_after(text: &str, file: &str) -> Result<(), CaseError> {
    ldif::parse(text, file)
        .map(|_| ())
        .map_err(|e| ldif_error(file, e))
}

fn check_records(text: &str, file: &str) -> Result<(), CaseError> {
    parse_records(text, file).map(|_| ())
}

/// Reads JSON lines (blank lines skipped); each line must be a JSON object.
pub(crate) fn parse_records(text: &str, file: &str) -> Result<Vec<serde_json::Value>, CaseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| CaseError {
            file: file.to_string(),
            line: Some(i + 1),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(format!("not a JSON record: {e}")))?;
        if !value.is_object() {
            return Err(err("a record is a JSON object, one a line".into()));
        }
        out.push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn lib() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "s.rhai", "let x = 1;\n");
        write(t.path(), "f.ldif", "dn: DC=x\ndc: x\n");
        t
    }

    fn error_of(root: &Path, case: &str) -> String {
        write(root, "c.case.toml", case);
        load(&root.join("c.case.toml"), root, false)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_case_resolves_against_its_folder() {
        let t = lib();
        write(
            t.path(),
            "c.case.toml",
            "script = \"s.rhai\"\ndirectory = \"f.ldif\"\nexit = 4\n[params]\nou = \"OU=x\"\nn = 3\n",
        );
        let c = load(&t.path().join("c.case.toml"), t.path(), false).unwrap();
        assert_eq!(c.exit, 4);
        assert_eq!(
            c.params,
            [("n".into(), "3".into()), ("ou".into(), "OU=x".into())]
        );
        assert_eq!(c.fixture, Fixture::Ldif(t.path().join("f.ldif")));
        assert!(c.name.ends_with("/c"));
    }

    #[test]
    fn bad_cases_name_file_and_line() {
        let t = lib();
        let root = t.path();
        for (case, line, message) in [
            (
                "script = \"s.rhai\"\ndirectory = \"f.ldif\"\nplna = \"x\"\n",
                3,
                "unknown field `plna`",
            ),
            (
                "script = \"s.rhai\"\ndirectory = \"nope.ldif\"\n",
                2,
                "missing fixture \"nope.ldif\"",
            ),
            (
                "directory = \"f.ldif\"\nscript = \"../s.rhai\"\n",
                2,
                "script \"../s.rhai\"",
            ),
            (
                "script = \"s.rhai\"\ndirectory = \"ldap://dc01\"\n",
                2,
                "never a live directory",
            ),
            (
                "script = \"s.rhai\"\ndirectory = \"f.ldif\"\nexit = 300\n",
                3,
                "not 0..255",
            ),
            (
                "script = \"s.rhai\"\ndirectory = \"f.ldif\"\nplan = \"p.ldif\"\n",
                3,
                "run ocsh test --update",
            ),
            (
                "script = \"s.rhai\"\ndirectory = \"f.ldif\"\n[params]\nx = [1]\n",
                4,
                "params.x: an array is not a parameter value",
            ),
            ("script = \"s.rhai\"\n", 1, "missing field `directory`"),
        ] {
            let e = error_of(root, case);
            assert!(
                e.contains(&format!("c.case.toml:{line}: ")),
                "{case:?}: {e}"
            );
            assert!(e.contains(message), "{case:?}: {e}");
        }
    }

    #[test]
    fn a_script_outside_the_library_is_refused() {
        let outer = lib();
        let inner = outer.path().join("lib");
        std::fs::create_dir(&inner).unwrap();
        write(&inner, "f.ldif", "dn: DC=x\ndc: x\n");
        let e = error_of(&inner, "script = \"../s.rhai\"\ndirectory = \"f.ldif\"\n");
        assert!(e.contains("c.case.toml:1: "), "{e}");
        assert!(e.contains("outside the library folder"), "{e}");
    }

    #[test]
    fn an_expected_plan_that_is_not_ldif_names_its_line() {
        let t = lib();
        write(
            t.path(),
            "p.ldif",
            "version: 1\n\ndn: DC=x\nchangetype: modify\nadd: cn\ncn: y\n",
        );
        let e = error_of(
            t.path(),
            "script = \"s.rhai\"\ndirectory = \"f.ldif\"\nplan = \"p.ldif\"\n",
        );
        assert!(e.contains("p.ldif:5: not a valid LDIF plan"), "{e}");
        write(t.path(), "r.jsonl", "{\"a\":1}\n[1]\n");
        let e = error_of(
            t.path(),
            "script = \"s.rhai\"\ndirectory = \"f.ldif\"\nrecords = \"r.jsonl\"\n",
        );
        assert!(e.contains("r.jsonl:2: a record is a JSON object"), "{e}");
    }
}
