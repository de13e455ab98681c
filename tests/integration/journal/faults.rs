//! Faults during a 2,000-entry apply, through the real binary: ocsh killed with SIGKILL
//! at random points (LDIF file and OpenLDAP), and the server killed mid-apply (OpenLDAP).
//! After each trial every entry the directory changed is in the journal with its intent,
//! the LDIF file is whole (the old content or the new), and a re-run converges without
//! writing any entry twice. Each test prints its trial counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::lab::{OU, Target, generated_users};
use crate::support::{ServerKind, fixtures::r2_home, say};
use ocsh::directory::Entry;
use ocsh::ocs::dn::{normalize, same_dn};
use ocsh::plan::journal::{JournalFile, Verdict};

const USERS: usize = 2000;
const TRIALS: usize = 10;

/// Moves every user of OU=Journal to the pool `to`.
const MOVE: &str = r#"//! Moves the journal users.
//! @param to  required  the pool
let target = pool(params.to);
for u in users_in("OU=Journal,DC=example,DC=com") { u.move_to(target); }
"#;

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

fn seed() -> u64 {
    std::env::var("OCSH_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// The users' home servers, by normalized DN.
fn homes(t: &Target) -> BTreeMap<String, String> {
    t.entries(OU)
        .into_iter()
        .filter(|(_, e)| e.first("sAMAccountName").is_some())
        .map(|(k, e): (String, Entry)| {
            let home = e
                .first("msRTCSIP-PrimaryHomeServer")
                .unwrap_or_default()
                .to_string();
            (k, home)
        })
        .collect()
}

/// `ocsh run MOVE --param to=POOL --apply`, started and not waited for.
fn start_move(t: &Target, to: &str, journal: &Path, extra: &[&str]) -> Child {
    let script = t.folder().join("move.rhai");
    std::fs::write(&script, MOVE).unwrap();
    let mut args: Vec<String> = vec!["run".into(), script.display().to_string()];
    args.extend(t.directory_args());
    args.extend(
        [
            "--param",
            &format!("to={to}"),
            "--apply",
            "--yes",
            "--allow-destructive",
            "2000",
            "--journal",
            journal.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Files, not pipes: a 2,000-entry plan would fill a pipe nobody reads yet.
    let out = std::fs::File::create(t.folder().join("stdout.txt")).unwrap();
    let err = std::fs::File::create(t.folder().join("stderr.txt")).unwrap();
    t.command(&args).stdout(out).stderr(err).spawn().unwrap()
}

/// What the last started run printed on stdout.
fn last_stdout(t: &Target) -> String {
    std::fs::read_to_string(t.folder().join("stdout.txt")).unwrap_or_default()
}

/// Follows a journal as it grows, counting lines of one kind.
struct Follower {
    file: Option<std::fs::File>,
    path: std::path::PathBuf,
    tail: String,
    begins: usize,
    outcomes: usize,
}

impl Follower {
    fn new(path: &Path) -> Follower {
        Follower {
            file: None,
            path: path.to_path_buf(),
            tail: String::new(),
            begins: 0,
            outcomes: 0,
        }
    }

    /// Reads what was appended since the last call.
    fn poll(&mut self) {
        use std::io::Read as _;
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(f) = &mut self.file else { return };
        let mut buf = String::new();
        let _ = f.read_to_string(&mut buf);
        self.tail.push_str(&buf);
        while let Some(i) = self.tail.find('\n') {
            let line: String = self.tail.drain(..=i).collect();
            if line.contains("\"event\":\"begin\"") {
                self.begins += 1;
            } else if line.contains("\"event\":\"outcome\"") {
                self.outcomes += 1;
            }
        }
    }
}

/// Waits until `done(follower)` or the child has exited; true when the condition came
/// while the child still runs.
fn wait_for(child: &mut Child, f: &mut Follower, done: impl Fn(&Follower) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        f.poll();
        if done(f) {
            return child.try_wait().unwrap().is_none();
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the apply did not get there within 180 s");
}

/// How long the last run of a journal took from its begin line to its end line.
fn apply_duration(journal: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(journal).ok()?;
    let time = |line: &str| -> Option<std::time::SystemTime> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        humantime::parse_rfc3339(v["time"].as_str()?).ok()
    };
    let begin = text
        .lines()
        .rev()
        .find(|l| l.contains("\"event\":\"begin\""))?;
    let end = text.lines().last()?;
    time(end)?.duration_since(time(begin)?).ok()
}

/// Kills the child with SIGKILL (if it still runs); true when it was still running.
fn kill_9(child: &mut Child) -> bool {
    let running = child.try_wait().unwrap().is_none();
    if running {
        let _ = child.kill(); // SIGKILL on Unix
    }
    let _ = child.wait();
    running
}

/// Checks one trial's state after the fault: every user whose home differs from
/// `before` holds the home run `run` intended for it, with an intent journalled.
fn changed_entries_are_journalled(
    t: &Target,
    before: &BTreeMap<String, String>,
    journal: &Path,
    trial: usize,
) -> (BTreeSet<String>, String) {
    let file = JournalFile::read(journal).unwrap();
    let run = file.runs.last().unwrap();
    let intents: BTreeMap<String, &ocsh::plan::journal::EntryLog> = run
        .entries
        .values()
        .map(|e| (normalize(&e.dn).unwrap(), e))
        .collect();
    let now = homes(t);
    assert_eq!(now.len(), USERS, "{}: trial {trial}: users lost", t.name());
    let mut changed = BTreeSet::new();
    for (dn, home) in &now {
        if same_dn(home, &before[dn]) {
            continue;
        }
        let Some(e) = intents.get(dn) else {
            panic!(
                "{}: trial {trial}: {dn} changed ({} -> {home}) with no intent in the journal",
                t.name(),
                before[dn]
            );
        };
        let c = e
            .changes
            .iter()
            .find(|c| c.attr.eq_ignore_ascii_case("msRTCSIP-PrimaryHomeServer"))
            .unwrap();
        assert!(
            same_dn(&c.after[0], home) && same_dn(&c.before[0], &before[dn]),
            "{}: trial {trial}: {dn}: the directory holds {home}, the intent says {c:?}",
            t.name()
        );
        changed.insert(dn.clone());
    }
    (changed, run.id.clone())
}

/// The re-run after a fault: exits 0, writes only entries the fault left unchanged, and
/// leaves every user on `to`.
fn rerun_converges(t: &Target, to: &str, journal: &Path, changed: &BTreeSet<String>, trial: usize) {
    let runs_before = JournalFile::read(journal).map_or(0, |f| f.runs.len());
    let mut child = start_move(t, to, journal, &[]);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{}: trial {trial}: the re-run failed: {status}",
        t.name()
    );
    let file = JournalFile::read(journal).unwrap();
    // A re-run with nothing left to do applies nothing and journals no run.
    let rerun_entries: Vec<&ocsh::plan::journal::EntryLog> = match file.runs.get(runs_before) {
        Some(r) => r.entries.values().collect(),
        None => Vec::new(),
    };
    for e in &rerun_entries {
        let dn = normalize(&e.dn).unwrap();
        assert!(
            !changed.contains(&dn),
            "{}: trial {trial}: {dn} was written again by the re-run",
            t.name()
        );
        assert_eq!(e.outcome.as_ref().map(|(v, _)| *v), Some(Verdict::Applied));
    }
    assert_eq!(
        rerun_entries.len() + changed.len(),
        USERS,
        "{}: trial {trial}: re-run {} + before {}",
        t.name(),
        rerun_entries.len(),
        changed.len()
    );
    let home = r2_home(to);
    assert!(
        homes(t).values().all(|h| same_dn(h, &home)),
        "{}: trial {trial}: not every user is on {to}",
        t.name()
    );
}

/// Ten trials on `t`: each moves the 2,000 users to the other pool, kills ocsh at a
/// random moment of its apply, checks the journal and the directory, and re-runs. Against
/// a server the moment is a random number of entries answered; for the LDIF file (whose
/// apply ends in one rename) a random time within the last apply's duration.
fn kill_ocsh_trials(t: &Target) {
    let seed = seed();
    let mut rng = Lcg(seed);
    let (mut killed, mut finished, mut landed, mut partial) = (0, 0, 0, 0);
    let mut window = Duration::from_millis(1500);
    for trial in 0..TRIALS {
        let journal = t.folder().join(format!("journal-{trial}.jsonl"));
        let to = if trial % 2 == 0 { "pool01" } else { "pool02" };
        let before = homes(t);
        let ldif_before = t.ldif_path().map(|p| std::fs::read(p).unwrap());
        let mut child = start_move(t, to, &journal, &[]);
        let mut follow = Follower::new(&journal);
        let running = if t.ldif_path().is_some() {
            let started = wait_for(&mut child, &mut follow, |f| f.begins > 0);
            let ms = window.as_millis() as u64;
            std::thread::sleep(Duration::from_millis(rng.next(ms)));
            started
        } else {
            let n = rng.next(USERS as u64) as usize;
            wait_for(&mut child, &mut follow, |f| f.begins > 0 && f.outcomes >= n)
        };
        if running && kill_9(&mut child) {
            killed += 1;
        } else {
            let _ = child.wait();
            finished += 1;
        }
        if let Some(path) = t.ldif_path() {
            // Never torn: it parses, and it is the old file or a whole new one.
            let text = std::fs::read_to_string(path).unwrap();
            ocsh::directory::ldif::parse(&text, "forest.ldif").unwrap();
            if Some(text.as_bytes()) != ldif_before.as_deref() {
                let moved = homes(t)
                    .values()
                    .filter(|h| same_dn(h, &r2_home(to)))
                    .count();
                assert_eq!(moved, USERS, "ldif: trial {trial}: a partial file");
            }
        }
        let (changed, _) = changed_entries_are_journalled(t, &before, &journal, trial);
        match changed.len() {
            0 => {}
            USERS => landed += 1,
            _ => partial += 1,
        }
        rerun_converges(t, to, &journal, &changed, trial);
        if let Some(d) = apply_duration(&journal) {
            window = d;
        }
    }
    say(&format!(
        "kill -9 of ocsh, {}: {TRIALS} trials of {USERS} entries (seed {seed}): {killed} killed mid-apply, {finished} finished first; after the kill {landed} had every entry landed, {partial} some, {} none; every change journalled, every re-run converged",
        t.name(),
        TRIALS - landed - partial
    ));
    assert!(killed > 0, "{}: no trial was killed mid-apply", t.name());
}

fn kill_9_of_ocsh_during_a_2000_entry_apply_ldif() {
    let t = Target::ldif(&generated_users(USERS, "pool02"));
    kill_ocsh_trials(&t);
}

/// Starts slapd again on the lab's configuration and data (as the setup script does),
/// and waits until it answers. The stop guard of the lab stops it by its pid file.
fn restart_slapd(t: &Target) -> Child {
    let lab = t.lab().unwrap();
    let mut urls = format!("{}/", lab.env.ldap_url);
    if let Some(s) = &lab.env.ldaps_url {
        urls.push_str(&format!(" {s}/"));
    }
    let log = std::fs::File::create(lab.dir.join("slapd-restart.log")).unwrap();
    let mut child = std::process::Command::new("/usr/sbin/slapd")
        .args(["-h", &urls, "-F"])
        .arg(lab.dir.join("slapd.d"))
        .args(["-d", "0"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    std::fs::write(lab.dir.join("slapd.pid"), child.id().to_string()).unwrap();
    let addr = lab.env.ldap_url.trim_start_matches("ldap://").to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(&addr).is_ok()
            && !lab
                .ldapsearch("DC=example,DC=com", "base", "(objectClass=*)", &["1.1"])
                .is_empty()
        {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("slapd did not come back within 20 s");
}

fn slapd_pid(t: &Target) -> i32 {
    let lab = t.lab().unwrap();
    std::fs::read_to_string(lab.dir.join("slapd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Ten trials on OpenLDAP: slapd is killed (SIGKILL) at a random moment of a 2,000-entry
/// apply. ocsh ends by itself with the summary (exit 5: what landed and what failed),
/// every change the server kept is journalled, and after a restart a re-run converges
/// without writing any entry twice.
fn server_killed_during_a_2000_entry_apply(t: &Target) {
    let seed = seed();
    let mut rng = Lcg(seed);
    let (mut mid, mut after) = (0, 0);
    let mut restarted: Option<Child> = None;
    for trial in 0..TRIALS {
        let journal = t.folder().join(format!("journal-{trial}.jsonl"));
        let to = if trial % 2 == 0 { "pool01" } else { "pool02" };
        let before = homes(t);
        let mut child = start_move(t, to, &journal, &["--op-timeout", "10"]);
        let mut follow = Follower::new(&journal);
        let n = rng.next(USERS as u64) as usize;
        wait_for(&mut child, &mut follow, |f| f.begins > 0 && f.outcomes >= n);
        let pid = slapd_pid(t);
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        if let Some(mut c) = restarted.take() {
            let _ = c.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "trial {trial}: ocsh hangs after the server died"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = last_stdout(t);
        restarted = Some(restart_slapd(t));
        let (changed, _) = changed_entries_are_journalled(t, &before, &journal, trial);
        let file = JournalFile::read(&journal).unwrap();
        let run = file.runs.last().unwrap();
        if status.code() == Some(5) {
            mid += 1;
            assert!(
                out.contains("Applied "),
                "trial {trial}: no summary:\n{out}"
            );
            // ocsh learned every outcome: nothing is unknown; what it reports applied the
            // server kept, and what the server kept was applied or failed in transit (a
            // modify whose answer the killed server never sent may have landed).
            assert_eq!(run.unknown(), 0, "trial {trial}");
            for e in run.entries.values() {
                let dn = normalize(&e.dn).unwrap();
                match e.outcome.as_ref().map(|(v, _)| *v) {
                    Some(Verdict::Applied) => {
                        assert!(
                            changed.contains(&dn),
                            "trial {trial}: {dn} applied, not kept"
                        )
                    }
                    Some(Verdict::Conflict) => {
                        assert!(
                            !changed.contains(&dn),
                            "trial {trial}: {dn} conflict, but kept"
                        )
                    }
                    _ => {}
                }
            }
            assert!(
                out.contains("the directory failed") || run.count(Verdict::Failed) < 16,
                "trial {trial}: the apply went on sending to a dead server:\n{out}"
            );
        } else {
            assert_eq!(status.code(), Some(0), "trial {trial}: {status}\n{out}");
            after += 1;
        }
        rerun_converges(t, to, &journal, &changed, trial);
    }
    say(&format!(
        "slapd killed during a {USERS}-entry apply: {TRIALS} trials (seed {seed}): {mid} mid-apply (exit 5, summary printed), {after} after the apply had finished; every change journalled, every re-run converged"
    ));
    assert!(mid > 0, "no trial killed the server mid-apply");
}

/// The arguments of the move to `to`, journalled to `journal`.
fn move_args(t: &Target, to: &str, journal: &Path) -> Vec<String> {
    let script = t.folder().join("move.rhai");
    std::fs::write(&script, MOVE).unwrap();
    let mut args: Vec<String> = vec!["run".into(), script.display().to_string()];
    args.extend(t.directory_args());
    for a in [
        "--param",
        &format!("to={to}"),
        "--apply",
        "--yes",
        "--allow-destructive",
        "2000",
        "--journal",
    ] {
        args.push(a.to_string());
    }
    args.push(journal.display().to_string());
    args
}

/// A journal that fills up during a 2,000-entry apply (files limited to 100 KB, so a
/// write fails as on a full disk): against a server ocsh stops sending at the next
/// intent block, prints the summary of what landed, and exits 1 naming the journal;
/// every change the server holds has its intent, and a re-run converges. For the LDIF
/// file, whose intents all go first, the apply stops before its first write and the
/// file is unchanged.
fn a_journal_that_fills_up_stops_the_sending(t: &Target) {
    let journal = t.folder().join("full.jsonl");
    let before = homes(t);
    let ldif_before = t.ldif_path().map(|p| std::fs::read(p).unwrap());
    let args = move_args(t, "pool01", &journal);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = t.command_with_file_limit(200, &args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}: {stdout}\n{stderr}",
        t.name()
    );
    assert!(stderr.contains("ocsh: journal "), "{stderr}");
    let (changed, _) = changed_entries_are_journalled(t, &before, &journal, 0);
    match ldif_before {
        Some(bytes) => {
            assert!(stderr.contains("nothing was written"), "{stderr}");
            assert_eq!(std::fs::read(t.ldif_path().unwrap()).unwrap(), bytes);
            assert!(changed.is_empty());
        }
        None => {
            assert!(
                stderr.contains("the apply stopped sending when its journal failed"),
                "{stderr}"
            );
            let summary = format!("Applied {} of {USERS} entries", changed.len());
            assert!(stdout.contains(&summary), "{summary}:\n{stdout}");
            assert!(
                !changed.is_empty() && changed.len() < USERS,
                "{} landed",
                changed.len()
            );
            assert!(stdout.contains("not sent: journal "), "{stdout}");
        }
    }
    say(&format!(
        "{}: a journal full at 100 KB stopped a {USERS}-entry apply after {} entries",
        t.name(),
        changed.len()
    ));
    let again = t.folder().join("after-full.jsonl");
    rerun_converges(t, "pool01", &again, &changed, 0);
}

fn a_journal_that_fills_up_stops_the_sending_ldif() {
    a_journal_that_fills_up_stops_the_sending(&Target::ldif(&generated_users(USERS, "pool02")));
}

fn with_2000_users() -> Result<Target, String> {
    Target::server(ServerKind::OpenLdap, &generated_users(USERS, "pool02"))
}

/// The LDIF trials, and the OpenLDAP ones on a server of their own.
pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
    use crate::support::harness::{own_server, plain};
    let m = module_path!();
    vec![
        plain(
            m,
            "kill_9_of_ocsh_during_a_2000_entry_apply_ldif",
            kill_9_of_ocsh_during_a_2000_entry_apply_ldif,
        ),
        plain(
            m,
            "a_journal_that_fills_up_stops_the_sending_ldif",
            a_journal_that_fills_up_stops_the_sending_ldif,
        ),
        own_server(
            m,
            "openldap",
            "a_journal_that_fills_up_stops_the_sending",
            with_2000_users,
            a_journal_that_fills_up_stops_the_sending,
        ),
        own_server(
            m,
            "openldap",
            "kill_9_of_ocsh_during_a_2000_entry_apply",
            with_2000_users,
            kill_ocsh_trials,
        ),
        own_server(
            m,
            "openldap",
            "server_killed_during_a_2000_entry_apply",
            with_2000_users,
            server_killed_during_a_2000_entry_apply,
        ),
    ]
}
