//! Writers of one LDIF file, through the real binary: two `ocsh run --apply` at once lose
//! nothing, an outside writer's change made while ocsh runs is never reverted (an atomic
//! rename, an edit that keeps the size and the modification time), a planned attribute
//! changed outside is a conflict, a writer that cannot take the lock writes nothing, and
//! the file keeps its owner and mode.
//!
//! The concurrent runs are live processes that the tests pause and release while they run,
//! so they are started with `Command` (and `support::clean_env`), not `support::Test`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{self, fixtures, fixtures::bulk_sam};
use ocsh::directory::{EmbeddedDirectory, Entry};

/// Enables `user` on pool01, or ORs `flags` into an enabled user's OptionFlags; with
/// `signal`, prints `planned` and waits until that file has a line before the plan is
/// applied, so that a test can change the file between ocsh's read and its write.
const SCRIPT: &str = r#"//! Test script.
//! @param user
//! @param flags  int
//! @param signal
let u = user(params.user);
if params.flags == () {
    u.enable(pool("pool01"));
} else {
    u.flags = u.flags | flags(params.flags);
}
if params.signal != () {
    print("planned");
    while read_lines(params.signal).len() == 0 {}
}
"#;

/// A folder with the demo forest plus OU=Bulk (1,200 users) as `forest.ldif`, and the
/// script.
struct Lab {
    dir: tempfile::TempDir,
    ldif: PathBuf,
    script: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let ldif = dir.path().join("forest.ldif");
        let demo = fixtures::DEMO.trim_end();
        std::fs::write(&ldif, format!("{demo}\n\n{}", fixtures::bulk())).unwrap();
        let script = dir.path().join("writer.rhai");
        std::fs::write(&script, SCRIPT).unwrap();
        Lab { dir, ldif, script }
    }

    /// `ocsh run writer.rhai --apply --yes` with these parameters, started, stdout piped.
    fn spawn(&self, params: &[(&str, &str)], env: &[(&str, &str)]) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocsh"));
        cmd.current_dir(self.dir.path())
            .arg("run")
            .arg(&self.script)
            .arg("--directory")
            .arg(&self.ldif)
            .args(["--apply", "--yes", "--journal"])
            .arg(self.dir.path().join("journal.jsonl"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in params {
            cmd.arg("--param").arg(format!("{name}={value}"));
            if *name == "signal" {
                cmd.arg("--allow-read").arg(value);
            }
        }
        support::clean_env(&mut cmd, self.dir.path());
        cmd.envs(env.iter().copied());
        cmd.spawn().unwrap()
    }

    fn entries(&self) -> Vec<Entry> {
        EmbeddedDirectory::open(&self.ldif).unwrap().entries()
    }

    fn user(&self, sam: &str) -> Entry {
        self.entries()
            .into_iter()
            .find(|e| e.first("sAMAccountName") == Some(sam))
            .unwrap_or_else(|| panic!("no {sam}"))
    }

    fn signal_path(&self) -> PathBuf {
        self.dir.path().join("go.txt")
    }
}

/// What a finished run did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn transcript(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts a run that stops after planning until [`release`] is called.
fn start_paused(
    lab: &Lab,
    params: &[(&str, &str)],
) -> (Child, BufReader<std::process::ChildStdout>) {
    std::fs::write(lab.signal_path(), "").unwrap();
    let signal = lab.signal_path().display().to_string();
    let mut all: Vec<(&str, &str)> = params.to_vec();
    all.push(("signal", &signal));
    let mut child = lab.spawn(&all, &[]);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

/// Waits for the paused run's `planned` line: it has read the file and planned.
fn wait_planned(stdout: &mut BufReader<std::process::ChildStdout>) {
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "planned", "the script did not reach its pause");
}

fn release(lab: &Lab, child: Child, mut stdout: BufReader<std::process::ChildStdout>) -> Run {
    std::fs::write(lab.signal_path(), "go\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut run = finish(child);
    run.stdout = format!("planned\n{rest}");
    run
}

fn enabled(entry: &Entry) -> bool {
    entry.first("msRTCSIP-UserEnabled") == Some("TRUE")
}

/// Rewrites the file in place with `from` replaced by `to` (same length), and puts the
/// modification time back: what `cp -p`, `rsync -t` or a restore leaves.
fn edit_keeping_size_and_mtime(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?}");
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    let edited = text.replace(from, to);
    let mut file = std::fs::File::options().write(true).open(path).unwrap();
    std::io::Write::write_all(&mut file, edited.as_bytes()).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    let meta = std::fs::metadata(path).unwrap();
    assert_eq!(meta.len() as usize, text.len());
    assert_eq!(meta.modified().unwrap(), modified);
}

/// Replaces the file by an atomic rename of an edited copy, as an editor or a
/// provisioning tool does.
fn rename_edited_copy(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?}");
    let temp = path.with_extension("outside");
    std::fs::write(&temp, text.replace(from, to)).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

const TRIALS: usize = 20;

fn twenty_trials_of_two_concurrent_applies_lose_no_update() {
    let lab = Lab::new();
    for trial in 0..TRIALS {
        // Never-enabled users (every tenth is enabled in the fixture).
        let a = bulk_sam(trial * 10 + 1);
        let b = bulk_sam(trial * 10 + 2);
        let first = lab.spawn(&[("user", &a)], &[]);
        let second = lab.spawn(&[("user", &b)], &[]);
        let (first, second) = (finish(first), finish(second));
        assert_eq!(first.code, 0, "trial {trial}, {a}: {}", first.transcript());
        assert_eq!(
            second.code,
            0,
            "trial {trial}, {b}: {}",
            second.transcript()
        );
        assert!(
            enabled(&lab.user(&a)),
            "trial {trial}: {a}'s update was lost"
        );
        assert!(
            enabled(&lab.user(&b)),
            "trial {trial}: {b}'s update was lost"
        );
    }
    // Every earlier trial's users are still enabled: no later write reverted one.
    for trial in 0..TRIALS {
        assert!(enabled(&lab.user(&bulk_sam(trial * 10 + 1))));
        assert!(enabled(&lab.user(&bulk_sam(trial * 10 + 2))));
    }
    support::say(&format!(
        "two concurrent applies: {TRIALS} trials, {} updates, none lost",
        2 * TRIALS
    ));
}

fn an_outside_edit_that_keeps_size_and_mtime_is_not_reverted() {
    let lab = Lab::new();
    let (child, mut stdout) = start_paused(&lab, &[("user", "bulk0001")]);
    wait_planned(&mut stdout);
    edit_keeping_size_and_mtime(
        &lab.ldif,
        "displayName: Bulk User 0002\n",
        "displayName: BULK USER 0002\n",
    );
    let run = release(&lab, child, stdout);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(enabled(&lab.user("bulk0001")), "{}", run.transcript());
    assert_eq!(
        lab.user("bulk0002").first("displayName"),
        Some("BULK USER 0002")
    );
}

fn an_outside_rename_while_ocsh_loads_and_runs_is_not_reverted() {
    let lab = Lab::new();
    // The rename lands at a different moment of each run: while the file is read, while
    // it is parsed, while the script runs. The apply waits for the signal, so it always
    // comes after the rename.
    let delays = [0, 2, 5, 10, 20, 40, 80];
    for (trial, delay) in delays.iter().enumerate() {
        let sam = bulk_sam(trial * 10 + 1);
        let other = trial * 10 + 2;
        let (child, mut stdout) = start_paused(&lab, &[("user", &sam)]);
        std::thread::sleep(Duration::from_millis(*delay));
        rename_edited_copy(
            &lab.ldif,
            &format!("displayName: Bulk User {other:04}\n"),
            &format!("displayName: Renamed {other:04}\n"),
        );
        wait_planned(&mut stdout);
        let run = release(&lab, child, stdout);
        assert_eq!(run.code, 0, "delay {delay} ms: {}", run.transcript());
        assert!(enabled(&lab.user(&sam)), "delay {delay} ms");
        let renamed = format!("Renamed {other:04}");
        assert_eq!(
            lab.user(&bulk_sam(other)).first("displayName"),
            Some(renamed.as_str()),
            "delay {delay} ms: the outside change was reverted"
        );
    }
    support::say(&format!(
        "outside rename during a run: {} trials, none reverted",
        delays.len()
    ));
}

fn an_outside_change_to_a_planned_attribute_is_a_conflict() {
    let lab = Lab::new();
    let before = lab.user("bulk0010");
    assert_eq!(before.first("msRTCSIP-OptionFlags"), Some("256"));
    let (child, mut stdout) = start_paused(&lab, &[("user", "bulk0010"), ("flags", "1")]);
    wait_planned(&mut stdout);
    let from = format!(
        "sAMAccountName: bulk0010\nuserPrincipalName: bulk0010@example.com\n\
         mail: bulk0010@example.com\nuserAccountControl: 512\n\
         proxyAddresses: SIP:bulk0010@example.com\nmsRTCSIP-UserEnabled: TRUE\n\
         msRTCSIP-PrimaryUserAddress: sip:bulk0010@example.com\n\
         msRTCSIP-PrimaryHomeServer: {}\nmsRTCSIP-OptionFlags: 256\n",
        fixtures::r2_home("pool02")
    );
    let to = from.replace("OptionFlags: 256", "OptionFlags: 320");
    edit_keeping_size_and_mtime(&lab.ldif, &from, &to);
    let run = release(&lab, child, stdout);
    assert_ne!(run.code, 0, "{}", run.transcript());
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("conflict"), "{}", run.transcript());
    assert_eq!(
        lab.user("bulk0010").first("msRTCSIP-OptionFlags"),
        Some("320"),
        "the outside value was overwritten"
    );
}

fn a_writer_that_cannot_take_the_lock_writes_nothing() {
    let lab = Lab::new();
    let before = std::fs::read(&lab.ldif).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lab.dir.path().join(".forest.ldif.ocsh-lock"))
        .unwrap();
    fs4::FileExt::lock(&lock).unwrap();
    let run = finish(lab.spawn(&[("user", "bulk0001")], &[("OCSH_LOCK_WAIT", "0.3")]));
    assert_ne!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("another writer is changing it"),
        "{}",
        run.transcript()
    );
    assert_eq!(std::fs::read(&lab.ldif).unwrap(), before);
    drop(lock);
    let run = finish(lab.spawn(&[("user", "bulk0001")], &[]));
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(enabled(&lab.user("bulk0001")));
}

#[cfg(unix)]
fn the_file_keeps_its_owner_and_mode_and_leftover_temps_go() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let lab = Lab::new();
    std::fs::set_permissions(&lab.ldif, std::fs::Permissions::from_mode(0o640)).unwrap();
    // Only root may give a file away; as another user the owner is ours anyway.
    let root = std::fs::metadata(&lab.ldif).unwrap().uid() == 0;
    if root {
        std::os::unix::fs::chown(&lab.ldif, Some(4321), Some(4322)).unwrap();
    }
    let leftover = lab.dir.path().join(".forest.ldif.ocsh-killed.tmp");
    std::fs::write(&leftover, "half a file").unwrap();
    let run = finish(lab.spawn(&[("user", "bulk0001")], &[]));
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(enabled(&lab.user("bulk0001")));
    let meta = std::fs::metadata(&lab.ldif).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    if root {
        assert_eq!((meta.uid(), meta.gid()), (4321, 4322));
    }
    assert!(!leftover.exists(), "a killed run's temporary file is left");
}

crate::tests![
    twenty_trials_of_two_concurrent_applies_lose_no_update,
    an_outside_edit_that_keeps_size_and_mtime_is_not_reverted,
    an_outside_rename_while_ocsh_loads_and_runs_is_not_reverted,
    an_outside_change_to_a_planned_attribute_is_a_conflict,
    a_writer_that_cannot_take_the_lock_writes_nothing,
    the_file_keeps_its_owner_and_mode_and_leftover_temps_go,
];
