//! A small harness that runs the real `ocsh` binary, as users do.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one run of the binary did.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Exit code, stdout and stderr in one text, for snapshots.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The repository root (scripts/ and tests/ are found from here).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `ocsh ARGS` in `cwd` with no terminal on stdin and no OCSH_* environment.
pub fn ocsh_in(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocsh"));
    cmd.args(args).current_dir(cwd).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("OCSH_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("the ocsh binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `ocsh ARGS` with `input` piped to its stdin.
pub fn ocsh_piped(args: &[&str], input: &str) -> Output {
    ocsh_piped_env(args, input, &[])
}

/// Runs `ocsh ARGS` with `input` piped to its stdin and extra environment variables.
pub fn ocsh_piped_env(args: &[&str], input: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocsh"));
    cmd.envs(env.iter().copied());
    cmd.args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env_remove("OCSH_DIRECTORY");
    let mut child = cmd.spawn().expect("the ocsh binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("input written");
    let out = child.wait_with_output().expect("ocsh finishes");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `ocsh ARGS` from the repository root.
pub fn ocsh(args: &[&str]) -> Output {
    ocsh_in(&root(), args)
}

/// A temporary folder holding a copy of the demo forest as `demo.ldif`.
pub struct DemoCopy {
    pub dir: tempfile::TempDir,
    pub ldif: PathBuf,
}

impl DemoCopy {
    pub fn new() -> DemoCopy {
        let dir = tempfile::tempdir().expect("temp dir");
        let ldif = dir.path().join("demo.ldif");
        let out = ocsh_in(dir.path(), &["demo", "demo.ldif"]);
        assert_eq!(out.code, 0, "{}", out.transcript());
        DemoCopy { dir, ldif }
    }

    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.ldif).expect("demo.ldif readable")
    }

    /// Writes a script into the folder and returns its path.
    pub fn script(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("script written");
        p.display().to_string()
    }

    pub fn ldif_arg(&self) -> String {
        self.ldif.display().to_string()
    }

    /// Runs `ocsh ARGS` in the folder.
    pub fn ocsh(&self, args: &[&str]) -> Output {
        ocsh_in(self.dir.path(), args)
    }
}
