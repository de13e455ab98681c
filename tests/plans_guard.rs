//! The blast-radius guard through the real binary, on a generated LDIF forest of 2,600
//! enabled users (more than five pages): a plan that disables, removes or moves more
//! users than the limit (500, a profile's `max_destructive`, `--allow-destructive N`) is
//! refused with exit code 4 before the first write, the plan is still shown, `--yes` does
//! not lift it, and the file stays byte for byte as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const USERS: usize = 2600;
const OU: &str = "OU=Guard,DC=example,DC=com";
const POOL02: &str = "CN=LC Services,CN=Microsoft,CN=pool02,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com";

/// The demo forest plus OU=Guard with `USERS` users enabled on pool02.
fn forest() -> String {
    let mut out = String::from(include_str!("../src/directory/demo-forest.ldif"));
    out.push_str(&format!(
        "\ndn: {OU}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Guard\n"
    ));
    for i in 1..=USERS {
        let sam = format!("g{i:05}");
        out.push_str(&format!(
            "\ndn: CN=Guard {i:05},{OU}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: user\ncn: Guard {i:05}\n\
             sAMAccountName: {sam}\nmail: {sam}@example.com\n\
             msRTCSIP-UserEnabled: TRUE\nmsRTCSIP-PrimaryUserAddress: sip:{sam}@example.com\n\
             msRTCSIP-PrimaryHomeServer: {POOL02}\nmsRTCSIP-OptionFlags: 256\n"
        ));
    }
    out
}

/// Loops over every user of OU=Guard (page by page) and disables the first
/// `params.disable`, removes the next `params.remove` and moves the next `params.move` to
/// pool01 (decided by the number in the name: the order of the loop is not fixed).
const SCRIPT: &str = r#"
let d = parse_int(params.disable);
let r = parse_int(params.remove);
let m = parse_int(params.move);
for u in users_in(params.ou, "") {
    let i = parse_int(u.sam.sub_string(1));
    if i <= d { u.disable(); }
    else if i <= d + r { u.remove(); }
    else if i <= d + r + m { u.move_to(pool("pool01")); }
}
"#;

struct Forest {
    dir: tempfile::TempDir,
    ldif: PathBuf,
    script: PathBuf,
}

impl Forest {
    fn new() -> Forest {
        let dir = tempfile::tempdir().unwrap();
        let ldif = dir.path().join("forest.ldif");
        std::fs::write(&ldif, forest()).unwrap();
        let script = dir.path().join("destroy.rhai");
        std::fs::write(&script, SCRIPT).unwrap();
        Forest { dir, ldif, script }
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.ldif).unwrap()
    }

    fn journal(&self) -> PathBuf {
        self.dir.path().join("journal.jsonl")
    }

    /// `ocsh run destroy.rhai` with the counts and `extra` arguments.
    fn run(&self, (disable, remove, moves): (usize, usize, usize), extra: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocsh"));
        cmd.arg("run")
            .arg(&self.script)
            .args(["--param", &format!("ou={OU}")])
            .args(["--param", &format!("disable={disable}")])
            .args(["--param", &format!("remove={remove}")])
            .args(["--param", &format!("move={moves}")])
            .arg("--directory")
            .arg(&self.ldif)
            .arg("--journal")
            .arg(self.journal())
            .args(extra)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("OCSH_") {
                cmd.env_remove(k);
            }
        }
        // No user config: the limit comes from the flag, the --config file, or the default.
        cmd.env("XDG_CONFIG_HOME", self.dir.path().join("no-config"));
        let out = cmd.output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn config(&self, max: usize) -> String {
        let path = self.dir.path().join("config.toml");
        std::fs::write(&path, format!("[profiles.lab]\nmax_destructive = {max}\n")).unwrap();
        path.display().to_string()
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The refusal: exit 4, the plan shown, the count and the flag named, the file and the
/// journal untouched.
fn assert_refused(f: &Forest, before: &[u8], out: &Run, count: usize, what: &str) {
    assert_eq!(out.code, 4, "{}", out.transcript());
    assert!(
        out.stdout
            .contains(&format!("change(s) to {count} entries")),
        "the plan is not shown: {}",
        out.transcript()
    );
    assert!(
        out.stderr.contains(&format!(
            "disables, removes or moves {count} users ({what})"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("run again with --allow-destructive {count}")),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("Applied"), "{}", out.stdout);
    assert!(f.bytes() == before, "the refused apply changed the file");
    assert!(
        !Path::new(&f.journal()).exists(),
        "a refused apply wrote a journal"
    );
}

fn assert_applied(f: &Forest, before: &[u8], out: &Run, count: usize) {
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains(&format!(
            "Applied {count} of {count} entries: 0 conflicted, 0 failed."
        )),
        "{}",
        out.transcript()
    );
    assert!(f.bytes() != before);
}

#[test]
fn guard_allows_500_disables_of_2600_users_and_refuses_501_even_with_yes() {
    let f = Forest::new();
    let before = f.bytes();
    let out = f.run((501, 0, 0), &["--apply", "--yes"]);
    assert_refused(&f, &before, &out, 501, "501 disabled");
    let out = f.run(
        (501, 0, 0),
        &["--apply", "--yes", "--allow-destructive", "500"],
    );
    assert_refused(&f, &before, &out, 501, "501 disabled");
    assert!(
        out.stderr.contains("limit of 500 (--allow-destructive)"),
        "{}",
        out.stderr
    );
    // A dry run is never refused: it writes nothing.
    let out = f.run((501, 0, 0), &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(f.bytes() == before);
    let out = f.run((500, 0, 0), &["--apply", "--yes"]);
    assert_applied(&f, &before, &out, 500);
}

#[test]
fn guard_counts_removes_and_moves_and_the_flag_allows_exactly_its_number() {
    let f = Forest::new();
    let before = f.bytes();
    let out = f.run((0, 250, 251), &["--apply", "--yes"]);
    assert_refused(&f, &before, &out, 501, "250 removed, 251 moved");
    let out = f.run(
        (0, 250, 251),
        &["--apply", "--yes", "--allow-destructive", "501"],
    );
    assert_applied(&f, &before, &out, 501);
}

#[test]
fn guard_takes_its_limit_from_the_profile_and_the_whole_ou_with_the_flag() {
    let f = Forest::new();
    let before = f.bytes();
    let config = f.config(100);
    let profile = ["--config", config.as_str(), "--profile", "lab"];
    let out = f.run((101, 0, 0), &[&["--apply", "--yes"], &profile[..]].concat());
    assert_refused(&f, &before, &out, 101, "101 disabled");
    assert!(
        out.stderr
            .contains("limit of 100 (the profile's max_destructive)"),
        "{}",
        out.stderr
    );
    // JSON keeps the plan beside the refusal.
    let out = f.run(
        (101, 0, 0),
        &[&["--apply", "--yes", "--format", "json"], &profile[..]].concat(),
    );
    assert_eq!(out.code, 4, "{}", out.transcript());
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["plan"]["entry_count"], 101);
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("--allow-destructive 101")
    );
    assert!(f.bytes() == before);
    // The flag wins over the profile: every user of the OU.
    let out = f.run(
        (USERS, 0, 0),
        &[
            &["--apply", "--yes", "--allow-destructive", "2600"],
            &profile[..],
        ]
        .concat(),
    );
    assert_applied(&f, &before, &out, USERS);
}
