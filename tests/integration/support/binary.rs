//! `Test`: runs the real `ocsh` binary as a user does, and checks the exit code, stdout,
//! stderr and the directory file together.
//!
//! ```ignore
//! let t = Test::new().demo("forest.ldif");
//! let forest = t.path("forest.ldif");
//! t.args(["run", "scripts/fix-ou-home-server.rhai", "--directory", &forest])
//!     .stdout_has("Dry run")
//!     .unchanged("forest.ldif")
//!     .run();
//! ```
//!
//! Every run gets a fresh temporary folder, which is also its `HOME` (no profile, history or
//! journal of the developer's is touched, and no `OCSH_*` variable leaks in); the working
//! directory is the repository root unless [`Test::in_tmp`] says otherwise. The exit code
//! must be 0 unless [`Test::code`] says otherwise. A failed expectation panics with every
//! failed check and the whole transcript.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ocsh::directory::ldif;
use ocsh::ocs::dn::normalize;

use super::{clean_env, fixtures, root};

/// An expectation on a text stream.
enum Text {
    Exact(String),
    Has(String),
    Matches(regex::Regex),
}

impl Text {
    fn check(&self, stream: &str, got: &str) -> Option<String> {
        match self {
            Text::Exact(want) if got != want => Some(format!("{stream} is not exactly:\n{want}")),
            Text::Has(want) if !got.contains(want.as_str()) => {
                Some(format!("{stream} does not contain {want:?}"))
            }
            Text::Matches(re) if !re.is_match(got) => {
                Some(format!("{stream} does not match /{re}/"))
            }
            _ => None,
        }
    }
}

/// What must hold of a file of the test's folder after the run.
enum FileCheck {
    /// Byte-identical to before the run.
    Unchanged(String),
    /// An LDIF file in which exactly these entries (DNs) differ from before, no other.
    ChangedEntries(String, Vec<String>),
}

/// One run of the binary: what to run, and what must hold afterwards.
pub struct Test {
    tmp: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    in_tmp: bool,
    code: i32,
    stdout: Vec<Text>,
    stderr: Vec<Text>,
    files: Vec<FileCheck>,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    /// A run in a fresh folder, no arguments yet.
    pub fn new() -> Test {
        Test {
            tmp: tempfile::Builder::new()
                .prefix("ocsh-test-")
                .tempdir()
                .expect("a temp dir"),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            in_tmp: false,
            code: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            files: Vec::new(),
        }
    }

    /// A file of the test's folder, as an argument.
    pub fn path(&self, name: &str) -> String {
        self.tmp.path().join(name).display().to_string()
    }

    /// Writes `content` to `name` in the test's folder (folders made as needed).
    pub fn file(self, name: &str, content: impl AsRef<[u8]>) -> Test {
        let p = self.tmp.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("folder made");
        }
        std::fs::write(&p, content).expect("fixture written");
        self
    }

    /// A copy of the built-in demo forest as the LDIF file `name`.
    pub fn demo(self, name: &str) -> Test {
        self.file(name, fixtures::DEMO)
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<str>) -> Test {
        self.args.push(arg.as_ref().to_string());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Sets an environment variable for the run.
    pub fn env(mut self, key: &str, value: impl AsRef<str>) -> Test {
        self.env.push((key.to_string(), value.as_ref().to_string()));
        self
    }

    /// Pipes `input` to the binary's stdin (default: no stdin at all).
    pub fn stdin(mut self, input: impl AsRef<[u8]>) -> Test {
        self.stdin = Some(input.as_ref().to_vec());
        self
    }

    /// Runs in the test's folder instead of the repository root.
    pub fn in_tmp(mut self) -> Test {
        self.in_tmp = true;
        self
    }

    /// The exit code the run must end with (default 0).
    pub fn code(mut self, code: i32) -> Test {
        self.code = code;
        self
    }

    /// stdout must be exactly `text`.
    pub fn stdout(mut self, text: impl Into<String>) -> Test {
        self.stdout.push(Text::Exact(text.into()));
        self
    }

    /// stdout must contain `text`.
    pub fn stdout_has(mut self, text: impl Into<String>) -> Test {
        self.stdout.push(Text::Has(text.into()));
        self
    }

    /// stdout must match the regular expression `re`.
    pub fn stdout_matches(mut self, re: &str) -> Test {
        self.stdout
            .push(Text::Matches(regex::Regex::new(re).expect("a valid regex")));
        self
    }

    /// stderr must be exactly `text`.
    pub fn stderr(mut self, text: impl Into<String>) -> Test {
        self.stderr.push(Text::Exact(text.into()));
        self
    }

    /// stderr must contain `text`.
    pub fn stderr_has(mut self, text: impl Into<String>) -> Test {
        self.stderr.push(Text::Has(text.into()));
        self
    }

    /// stderr must match the regular expression `re`.
    pub fn stderr_matches(mut self, re: &str) -> Test {
        self.stderr
            .push(Text::Matches(regex::Regex::new(re).expect("a valid regex")));
        self
    }

    /// The file `name` of the test's folder must be byte-identical after the run.
    pub fn unchanged(mut self, name: &str) -> Test {
        self.files.push(FileCheck::Unchanged(name.to_string()));
        self
    }

    /// In the LDIF file `name`, exactly the entries `dns` must differ after the run (in
    /// any attribute), and no other entry may have changed, appeared or gone.
    pub fn changed_entries(mut self, name: &str, dns: &[&str]) -> Test {
        self.files.push(FileCheck::ChangedEntries(
            name.to_string(),
            dns.iter().map(|d| d.to_string()).collect(),
        ));
        self
    }

    /// Runs the binary, checks every expectation, and returns what it did.
    pub fn run(self) -> Outcome {
        let before: Vec<Vec<u8>> = self
            .files
            .iter()
            .map(|f| {
                let name = match f {
                    FileCheck::Unchanged(n) | FileCheck::ChangedEntries(n, _) => n,
                };
                std::fs::read(self.tmp.path().join(name))
                    .unwrap_or_else(|e| panic!("{name} must exist before the run: {e}"))
            })
            .collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocsh"));
        cmd.args(&self.args)
            .current_dir(if self.in_tmp {
                self.tmp.path().to_path_buf()
            } else {
                root()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        clean_env(&mut cmd, self.tmp.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the ocsh binary starts");
        if let Some(input) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // A binary that exits before reading all of it closes the pipe: not our failure.
            let _ = pipe.write_all(input);
        }
        let out = child.wait_with_output().expect("ocsh finishes");
        let outcome = Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            args: self.args.clone(),
            tmp: self.tmp,
        };
        let mut failures = Vec::new();
        if outcome.code != self.code {
            failures.push(format!(
                "exit code {} where {} was expected",
                outcome.code, self.code
            ));
        }
        failures.extend(
            self.stdout
                .iter()
                .filter_map(|t| t.check("stdout", &outcome.stdout)),
        );
        failures.extend(
            self.stderr
                .iter()
                .filter_map(|t| t.check("stderr", &outcome.stderr)),
        );
        for (check, before) in self.files.iter().zip(before) {
            match check {
                FileCheck::Unchanged(name) => {
                    if outcome.bytes(name) != before {
                        failures.push(format!("{name} changed"));
                    }
                }
                FileCheck::ChangedEntries(name, dns) => {
                    let old = entries(&String::from_utf8_lossy(&before), name);
                    let new = entries(&outcome.text(name), name);
                    let mut want: Vec<String> = dns
                        .iter()
                        .map(|d| normalize(d).unwrap_or_else(|_| d.clone()))
                        .collect();
                    want.sort();
                    let got = differing(&old, &new);
                    if got != want {
                        failures.push(format!(
                            "{name}: the entries that changed are {got:#?}\nwhere exactly {want:#?} should have"
                        ));
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "ocsh {}\n{}\n{}",
            outcome.args.join(" "),
            failures.join("\n"),
            outcome.transcript()
        );
        outcome
    }
}

type Entries = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// An LDIF text as normalized DN → attribute (lowercase) → values.
fn entries(text: &str, name: &str) -> Entries {
    ldif::parse(text, name)
        .unwrap_or_else(|e| panic!("{name} is no longer valid LDIF: {e}"))
        .into_iter()
        .map(|e| {
            let dn = normalize(&e.dn).unwrap_or_else(|_| e.dn.clone());
            let mut attrs: BTreeMap<String, Vec<String>> = e
                .attributes()
                .iter()
                .map(|a| (a.name.to_ascii_lowercase(), a.values.clone()))
                .collect();
            for (name, values) in e.binary_attributes() {
                let hex = values.iter().map(|v| format!("{v:02x?}")).collect();
                attrs.insert(name.to_ascii_lowercase(), hex);
            }
            (dn, attrs)
        })
        .collect()
}

/// The DNs whose entries differ between two readings (changed, added or removed), sorted.
fn differing(old: &Entries, new: &Entries) -> Vec<String> {
    let mut out: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|dn| old.get(*dn) != new.get(*dn))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What one run of the binary did. Keeps the test's folder alive.
pub struct Outcome {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
    args: Vec<String>,
    tmp: tempfile::TempDir,
}

impl Outcome {
    /// Exit code, stdout and stderr in one text, for snapshots and messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// A file of the test's folder as it is now.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A file's bytes (empty when it does not exist).
    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_default()
    }

    /// A file's text (empty when it does not exist).
    pub fn text(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.bytes(name)).into_owned()
    }

    /// A next run in the same folder (its files as this run left them), with no
    /// arguments or expectations yet.
    pub fn then(self) -> Test {
        Test {
            tmp: self.tmp,
            ..Test::new()
        }
    }
}
