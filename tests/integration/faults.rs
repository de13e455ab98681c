//! The server fails during a long apply (issue 9): slapd is killed (SIGKILL, then
//! restarted on the same data) or frozen (SIGSTOP for a few seconds, then SIGCONT) while
//! `ocsh run --apply` writes 2,000 entries. Each trial must end with every entry applied
//! after retries, or with a report whose failed entries are exactly the ones the server
//! does not have; a second run then converges and a third finds nothing to do. The trials
//! are counted and the counts printed.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Server, say};

/// Users written by each trial.
const ENTRIES: usize = 2000;

/// The disruptions, one trial each, every one on its own OU of never-enabled users.
const TRIALS: [Disruption; 4] = [
    Disruption::Kill,
    Disruption::Stop,
    Disruption::Kill,
    Disruption::Stop,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disruption {
    /// SIGKILL, 1.5 s down, started again on the same database.
    Kill,
    /// SIGSTOP for 3 s, then SIGCONT: connections stay, answers wait.
    Stop,
}

fn ou(trial: usize) -> String {
    format!("OU=Fault{trial},DC=example,DC=com")
}

/// The deployment and one OU of [`ENTRIES`] never-enabled users per trial.
fn start() -> Result<Server, String> {
    let server = Server::openldap()?;
    let r = server.load("deployment.ldif", &crate::scale::deployment());
    assert!(r.refused.is_empty(), "deployment refused: {r:?}");
    let mut ldif = String::new();
    for t in 0..TRIALS.len() {
        let ou = ou(t);
        ldif.push_str(&format!(
            "dn: {ou}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Fault{t}\n\n"
        ));
        for i in 0..ENTRIES {
            let sam = format!("fault{t}u{i:04}");
            ldif.push_str(&format!(
                "dn: CN={sam},{ou}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n\
                 objectClass: user\ncn: {sam}\nsn: {sam}\nsAMAccountName: {sam}\nmail: {sam}@example.com\n\n"
            ));
        }
    }
    let r = server.load("faults.ldif", &ldif);
    assert!(r.refused.is_empty(), "users refused: {r:?}");
    Ok(server)
}

/// slapd's PID and command line, from the setup script's pid file.
fn slapd(server: &Server) -> (i32, Vec<String>) {
    let pid: i32 = std::fs::read_to_string(server.dir.join("slapd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (pid, args)
}

fn signal(pid: i32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Kills slapd, waits, and starts it again with the same command line; the new PID goes
/// to the pid file, so that the server's guard stops this one.
fn kill_and_restart(server: &Server) {
    let (pid, args) = slapd(server);
    signal(pid, "-KILL");
    // Reap-free wait: the process is gone when /proc/PID/stat says so or disappears.
    let gone = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.contains(") Z ") && !s.contains(") X "))
    {
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "slapd {pid} does not die"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(server.dir.join("slapd.log"))
        .unwrap();
    let child = Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    std::fs::write(server.dir.join("slapd.pid"), child.id().to_string()).unwrap();
    // The child is reaped by nobody here: the stop script kills it by PID at the end.
    std::mem::forget(child);
}

/// The DNs (normalised) of the trial's users that are enabled now, read with ldapsearch.
fn enabled_now(server: &Server, trial: usize) -> BTreeSet<String> {
    server
        .ldapsearch(&ou(trial), "one", "(msRTCSIP-UserEnabled=TRUE)", &["1.1"])
        .into_iter()
        .map(|e| ocsh::ocs::dn::normalize(&e.dn).unwrap())
        .collect()
}

/// `ocsh run SCRIPT --apply --yes --format json` on the trial's OU, started in the
/// background.
fn spawn_ocsh(server: &Server, home: &Path, script: &Path) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocsh"));
    crate::support::clean_env(&mut cmd, home);
    cmd.arg("run")
        .arg(script)
        .args(["--directory", &server.env.ldap_url])
        .args(["--bind-dn", &server.env.bind_dn])
        .args(["--apply", "--yes", "--format", "json", "--op-timeout", "30"])
        .arg("--journal")
        .arg(home.join("journal.jsonl"))
        .env("OCSH_PASSWORD", &server.env.password)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn wait(mut child: std::process::Child) -> Run {
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// The entries the JSON report says did not land.
fn not_applied(run: &Run) -> BTreeSet<String> {
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", run.stdout, run.stderr));
    let Some(entries) = doc["applied"]["entries"].as_array() else {
        return BTreeSet::new();
    };
    entries
        .iter()
        .filter(|e| e["result"] != "applied")
        .map(|e| ocsh::ocs::dn::normalize(e["dn"].as_str().unwrap()).unwrap())
        .collect()
}

fn apply_of_2000_entries_survives_the_server_killed_or_stopped(server: &Server) {
    let home = tempfile::tempdir().unwrap();
    let mut finished = 0;
    let mut partial = 0;
    for (t, disruption) in TRIALS.iter().enumerate() {
        let script = home.path().join(format!("enable{t}.rhai"));
        std::fs::write(
            &script,
            format!(
                "let p = pool(\"pool01\");\nfor u in users_in({:?}, \"(!(msRTCSIP-UserEnabled=*))\") {{ u.enable(p); }}\n",
                ou(t)
            ),
        )
        .unwrap();
        let child = spawn_ocsh(server, home.path(), &script);
        // Disrupt once the apply is under way: 100 entries (trials 0, 1) or 1,000 in.
        let threshold = if t < 2 { 100 } else { 1000 };
        let start = Instant::now();
        loop {
            let n = enabled_now(server, t).len();
            if n >= threshold {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "trial {t}: the apply did not get under way ({n} entries)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        match disruption {
            Disruption::Kill => kill_and_restart(server),
            Disruption::Stop => {
                let (pid, _) = slapd(server);
                signal(pid, "-STOP");
                std::thread::sleep(Duration::from_secs(3));
                signal(pid, "-CONT");
            }
        }
        let run = wait(child);
        let enabled = enabled_now(server, t);
        let missing = not_applied(&run);
        match run.code {
            0 => {
                assert!(missing.is_empty(), "trial {t}: exit 0 but {missing:?}");
                assert_eq!(
                    enabled.len(),
                    ENTRIES,
                    "trial {t}: exit 0 but not all landed"
                );
                finished += 1;
            }
            5 => {
                // Exactly what did not land is reported: the report's failures and the
                // directory's missing entries are the same set.
                assert_eq!(
                    enabled.len() + missing.len(),
                    ENTRIES,
                    "trial {t}: {}",
                    run.stderr
                );
                assert!(
                    enabled.is_disjoint(&missing),
                    "trial {t}: reported as not applied but landed"
                );
                partial += 1;
            }
            code => panic!(
                "trial {t} ({disruption:?}): exit {code}\n{}{}",
                run.stdout, run.stderr
            ),
        }
        // A second run writes what is missing (nothing after a full finish); a third
        // finds nothing to do.
        let again = wait(spawn_ocsh(server, home.path(), &script));
        assert_eq!(
            again.code, 0,
            "trial {t}: re-run: {}{}",
            again.stdout, again.stderr
        );
        assert_eq!(
            enabled_now(server, t).len(),
            ENTRIES,
            "trial {t}: re-run did not converge"
        );
        let third = wait(spawn_ocsh(server, home.path(), &script));
        assert_eq!(third.code, 0, "trial {t}: third run: {}", third.stderr);
        let doc: serde_json::Value = serde_json::from_str(&third.stdout).unwrap();
        assert_eq!(
            doc["plan"]["entry_count"], 0,
            "trial {t}: third run: {doc:#}"
        );
        say(&format!(
            "faults: trial {t} ({disruption:?} after {threshold} entries): exit {}, {} of {ENTRIES} landed in the first run, re-run converged",
            run.code,
            ENTRIES - missing.len()
        ));
    }
    // The retries (27 s of budget per operation against 1.5 s or 3 s of outage) must
    // carry every trial through, not only leave an exact report.
    assert_eq!(finished, TRIALS.len(), "{partial} trials ended partial");
    say(&format!(
        "faults: {} trials ({} kill+restart, {} stop+continue): {finished} finished after retries, {partial} reported exactly what did not land; every re-run converged",
        TRIALS.len(),
        TRIALS.iter().filter(|d| **d == Disruption::Kill).count(),
        TRIALS.iter().filter(|d| **d == Disruption::Stop).count(),
    ));
}

pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
    vec![crate::support::harness::own_server(
        module_path!(),
        "openldap",
        "apply_of_2000_entries_survives_the_server_killed_or_stopped",
        start,
        apply_of_2000_entries_survives_the_server_killed_or_stopped,
    )]
}
