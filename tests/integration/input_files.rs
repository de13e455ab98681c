//! Input files that are not regular files, or too large, are refused before they are
//! read: `/dev/zero` is not read until memory runs out, a FIFO does not hang the run,
//! for `--directory`, `--config`, `--password-file`, `--ca-file`, the script itself and
//! `read_csv`/`read_lines`.

use crate::support::Test;
use crate::support::harness::{Case, case};

/// Makes `name` a FIFO in the test's folder (no writer ever opens it).
#[cfg(unix)]
fn fifo(t: Test, name: &str) -> Test {
    let path = t.path(name);
    let made = std::process::Command::new("mkfifo").arg(&path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {path}");
    t
}

/// A sparse file of `len` bytes (no disk space used).
fn sparse(t: Test, name: &str, len: u64) -> Test {
    let f = std::fs::File::create(t.path(name)).unwrap();
    f.set_len(len).unwrap();
    t
}

fn refused_inputs() -> Vec<Case> {
    // (row, the file's kind, arguments with FILE for it, exit code, message)
    let rows: Vec<(&str, &str, Vec<&str>, i32, &str)> = vec![
        (
            "directory-dev-zero",
            "zero",
            vec!["-d", "FILE"],
            6,
            "a device, not a regular file",
        ),
        (
            "directory-fifo",
            "fifo",
            vec!["-d", "FILE"],
            6,
            "a FIFO, not a regular file",
        ),
        (
            "directory-folder",
            "folder",
            vec!["-d", "FILE"],
            6,
            "a folder, not a regular file",
        ),
        (
            "directory-5-gib",
            "huge",
            vec!["-d", "FILE"],
            6,
            "larger than the 4294967296 bytes",
        ),
        (
            "config-dev-zero",
            "zero",
            vec!["--config", "FILE"],
            2,
            "a device, not a regular file",
        ),
        (
            "config-fifo",
            "fifo",
            vec!["--config", "FILE"],
            2,
            "a FIFO, not a regular file",
        ),
        (
            "config-2-mib",
            "big",
            vec!["--config", "FILE"],
            2,
            "larger than the 1048576 bytes",
        ),
        (
            "password-file-dev-zero",
            "zero",
            vec![
                "-d",
                "ldap://127.0.0.1:1",
                "--bind-dn",
                "cn=x",
                "--password-file",
                "FILE",
            ],
            2,
            "password file /dev/zero: a device, not a regular file",
        ),
        (
            "password-file-fifo",
            "fifo",
            vec![
                "-d",
                "ldap://127.0.0.1:1",
                "--bind-dn",
                "cn=x",
                "--password-file",
                "FILE",
            ],
            2,
            "a FIFO, not a regular file",
        ),
        (
            "ca-file-dev-zero",
            "zero",
            vec!["-d", "ldap://127.0.0.1:1", "--ca-file", "FILE"],
            6,
            "--ca-file /dev/zero: a device, not a regular file",
        ),
        (
            "ca-file-fifo",
            "fifo",
            vec!["-d", "ldap://127.0.0.1:1", "--ca-file", "FILE"],
            6,
            "a FIFO, not a regular file",
        ),
        (
            "script-fifo",
            "fifo",
            vec![],
            1,
            "a FIFO, not a regular file",
        ),
    ];
    rows.into_iter()
        .map(|(row, kind, args, code, want)| {
            case(row, move || {
                let mut t = Test::new().file("one.rhai", "print(1);\n").in_tmp();
                let file = match kind {
                    "zero" => "/dev/zero".to_string(),
                    #[cfg(unix)]
                    "fifo" => {
                        t = fifo(t, "input");
                        "input".to_string()
                    }
                    "folder" => {
                        t = t.file("folder/x", "x");
                        "folder".to_string()
                    }
                    "huge" => {
                        t = sparse(t, "input", 5 << 30);
                        "input".to_string()
                    }
                    "big" => {
                        t = sparse(t, "input", 2 << 20);
                        "input".to_string()
                    }
                    _ => return,
                };
                let script = if row == "script-fifo" {
                    file.as_str()
                } else {
                    "one.rhai"
                };
                let args: Vec<String> = args
                    .iter()
                    .map(|a| {
                        if *a == "FILE" {
                            file.clone()
                        } else {
                            a.to_string()
                        }
                    })
                    .collect();
                t.args(["run", script])
                    .args(args)
                    .code(code)
                    .stderr_has(want)
                    .run();
            })
        })
        .collect()
}

/// `read_csv`/`read_lines` refuse a device and a FIFO even when granted.
#[cfg(unix)]
fn script_reads_refuse_devices_and_fifos() {
    let t = fifo(Test::new(), "pipe");
    t.file("r.rhai", "read_lines(\"pipe\");\n")
        .in_tmp()
        .args(["run", "r.rhai", "--allow-read", "pipe"])
        .code(4)
        .stderr_has("pipe is not a file")
        .run()
        .then()
        .file("z.rhai", "read_csv(\"/dev/zero\");\n")
        .in_tmp()
        .args(["run", "z.rhai", "--allow-read", "/dev/zero"])
        .code(4)
        .stderr_has("/dev/zero is not a file")
        .run();
}

crate::tests![
    #[cfg(unix)]
    script_reads_refuse_devices_and_fifos;
    tables:
    refused_inputs,
];
