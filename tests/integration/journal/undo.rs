//! The write-ahead journal and `ocsh undo` / `ocsh journal`, through the real binary:
//! an unwritable journal stops the apply before the first write; undo restores a run
//! (the demo forest, 2,500 users on every backend), never overwrites a change made since,
//! and is journalled itself.

use ocsh::plan::journal::{JournalFile, RunState, Verdict};

use super::lab::{OU, Target, generated_users, ocs_view};
use crate::support::{self, ServerKind};

const BASE: &str = "DC=example,DC=com";
const JDOE: &str = "CN=Jane Doe,OU=Engineering,DC=example,DC=com";
const ENABLE_JDOE: &str = "user(\"jdoe\").enable(pool(\"pool01\"));\n";

fn fix_ou_script() -> String {
    std::fs::read_to_string(support::root().join("scripts/fix-ou-home-server.rhai")).unwrap()
}

/// `--journal` on /dev/full, a device, a folder, or under a file: exit 1 with the
/// journal's error, no summary, and the directory file byte for byte as it was.
fn an_unwritable_journal_stops_the_apply_before_the_first_write() {
    let t = Target::ldif("");
    let before = std::fs::read(t.ldif_path().unwrap()).unwrap();
    let blocker = t.folder().join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let under_a_file = blocker.join("journal.jsonl");
    let folder = t.folder().display().to_string();
    for (journal, says) in [
        ("/dev/full", "not a regular file"),
        ("/dev/null", "not a regular file"),
        (folder.as_str(), "not a regular file"),
        (under_a_file.to_str().unwrap(), "cannot create its folder"),
    ] {
        let out = t.run_script(
            1,
            "p.rhai",
            ENABLE_JDOE,
            &["--apply", "--yes", "--journal", journal],
        );
        assert!(
            out.stderr
                .contains(&format!("ocsh: journal {journal}: {says}"))
                && out.stderr.contains("nothing was written"),
            "{journal}: {}",
            out.transcript()
        );
        assert!(!out.stdout.contains("Applied"), "{}", out.transcript());
        assert_eq!(
            std::fs::read(t.ldif_path().unwrap()).unwrap(),
            before,
            "{journal}: the directory changed"
        );
    }
}

/// Enables jdoe and moves every pool02 user to pool01.
const ENABLE_AND_MOVE: &str = r#"
user("jdoe").enable(pool("pool01"));
let p2 = pool("pool02");
let homed = `(&(msRTCSIP-UserEnabled=TRUE)(msRTCSIP-PrimaryUserAddress=*)(msRTCSIP-PrimaryHomeServer=${ldap_escape(p2.dn)}))`;
for u in users_in("DC=example,DC=com", homed) { u.move_to(pool("pool01")); }
"#;

/// A run on an LDIF copy of the demo forest (an enable and the moves of every pool02
/// user), then `ocsh undo`: the dry run writes nothing, --apply restores every OCS
/// attribute, the undo is a run of the journal, and undoing again finds nothing to do.
fn undo_restores_a_run_on_the_demo_forest() {
    let t = Target::ldif("");
    let journal = t.folder().join("journal.jsonl");
    let j = journal.to_str().unwrap();
    let original = t.entries(BASE);
    t.run_script(0, "run.rhai", ENABLE_AND_MOVE, &["--apply", "--journal", j]);
    let changed = t.entries(BASE);
    let touched: Vec<&String> = original
        .keys()
        .filter(|k| ocs_view(&original[*k]) != ocs_view(&changed[*k]))
        .collect();
    let n = touched.len();
    assert!(n >= 3, "{touched:?}");
    let run1 = JournalFile::read(&journal).unwrap().runs[0].id.clone();

    // From another folder, with no --directory: the journal names the file.
    let bytes = std::fs::read(t.ldif_path().unwrap()).unwrap();
    let plan = t.run(0, &["undo", j]);
    assert!(
        plan.stdout.contains(&format!(
            "Undo of run {run1} ({n} entries journalled: {n} to reverse, 0 left alone)"
        )) && plan.stdout.contains(&format!("to {n} entries"))
            && plan.stdout.contains("Dry run: nothing was written"),
        "{}",
        plan.stdout
    );
    assert_eq!(std::fs::read(t.ldif_path().unwrap()).unwrap(), bytes);

    let undo = t.run(0, &["undo", j, "--apply"]);
    assert!(
        undo.stdout.contains(&format!(
            "Applied {n} of {n} entries: 0 conflicted, 0 failed."
        )),
        "{}",
        undo.stdout
    );
    let restored = t.entries(BASE);
    for (k, e) in &original {
        assert_eq!(ocs_view(e), ocs_view(&restored[k]), "{k}");
    }

    let file = JournalFile::read(&journal).unwrap();
    assert_eq!(file.runs.len(), 2);
    let undo_run = &file.runs[1];
    assert_eq!(
        undo_run.begin.as_ref().unwrap().undoes.as_deref(),
        Some(run1.as_str())
    );
    assert_eq!(undo_run.state(), RunState::Complete);
    assert_eq!(undo_run.count(Verdict::Applied), n);

    let list = t.run(0, &["journal", j]);
    assert!(
        list.stdout.contains(&format!("undo {run1}")),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("2 run(s)"), "{}", list.stdout);

    let again = t.run(0, &["undo", j, "--run", &run1, "--apply"]);
    assert!(
        again.stdout.contains("0 to reverse")
            && again
                .stdout
                .contains("already holds the values from before the run")
            && again.stdout.contains("No changes planned"),
        "{}",
        again.stdout
    );
}

/// A value changed after the run is never overwritten: that entry is left alone and
/// named, the others are reversed.
fn undo_leaves_alone_what_changed_since() {
    let t = Target::ldif("");
    let journal = t.folder().join("journal.jsonl");
    let j = journal.to_str().unwrap();
    let patrick_before = t.entries("CN=Patrick Doyle,OU=Leavers,DC=example,DC=com");
    t.run_script(
        0,
        "both.rhai",
        &format!("{ENABLE_JDOE}user(\"patrick.doyle\").enable(pool(\"pool01\"));\n"),
        &["--apply", "--journal", j],
    );
    let run1 = JournalFile::read(&journal).unwrap().runs[0].id.clone();
    let patrick_dn = "CN=Patrick Doyle,OU=Leavers,DC=example,DC=com";
    // Someone adds a flag to jdoe afterwards (journalled elsewhere).
    let other = t.folder().join("other.jsonl");
    t.run_script(
        0,
        "flag.rhai",
        "let u = user(\"jdoe\"); u.flags = u.flags | flags([\"public_im\"]);\n",
        &["--apply", "--journal", other.to_str().unwrap()],
    );
    let before_undo = t.entries(JDOE);

    let undo = t.run(0, &["undo", j, "--run", &run1, "--apply"]);
    assert!(
        undo.stdout.contains(&format!(
            "{JDOE}: changed since the run (msRTCSIP-OptionFlags); left alone"
        )) && undo.stdout.contains("1 to reverse, 1 left alone")
            && undo.stdout.contains("Applied 1 of 1 entry"),
        "{}",
        undo.stdout
    );
    assert_eq!(
        ocs_view(&t.entries(JDOE)[&ocsh::ocs::dn::normalize(JDOE).unwrap()]),
        ocs_view(&before_undo[&ocsh::ocs::dn::normalize(JDOE).unwrap()]),
        "jdoe was touched"
    );
    let patrick = t.entries(patrick_dn);
    assert_eq!(
        ocs_view(patrick.values().next().unwrap()),
        ocs_view(patrick_before.values().next().unwrap())
    );

    // A run id that is not there, and a directory that is not the run's.
    let out = t.run(2, &["undo", j, "--run", "nope"]);
    assert!(out.stderr.contains("no run \"nope\""), "{}", out.stderr);
    let elsewhere = t.folder().join("elsewhere.ldif");
    std::fs::copy(t.ldif_path().unwrap(), &elsewhere).unwrap();
    let out = t.run(2, &["undo", j, "--directory", elsewhere.to_str().unwrap()]);
    assert!(out.stderr.contains("not to"), "{}", out.stderr);
}

/// The OU fix moves 8 users off a home server DN that names no object; undoing it would
/// write that DN back, which the directory refuses (as AD does): each entry is listed as
/// failed, exit 5, and the file keeps the fixed values.
fn undo_cannot_restore_what_the_directory_refuses() {
    let t = Target::ldif("");
    let journal = t.folder().join("journal.jsonl");
    let j = journal.to_str().unwrap();
    t.run_script(
        0,
        "fix.rhai",
        &fix_ou_script(),
        &["--apply", "--journal", j],
    );
    let fixed = std::fs::read(t.ldif_path().unwrap()).unwrap();
    let undo = t.run(5, &["undo", j, "--apply"]);
    assert!(
        undo.stdout
            .contains("Applied 0 of 8 entries: 0 conflicted, 8 failed.")
            && undo.stdout.contains("names no object"),
        "{}",
        undo.stdout
    );
    assert_eq!(std::fs::read(t.ldif_path().unwrap()).unwrap(), fixed);
}

/// `ocsh journal` on a journal cut short by a kill: the run shows as interrupted with
/// its unknown entries, the torn line is reported, `--run` lists the entries.
fn journal_lists_an_interrupted_run() {
    let t = Target::ldif("");
    let journal = t.folder().join("journal.jsonl");
    let j = journal.to_str().unwrap();
    t.run_script(
        0,
        "fix.rhai",
        &fix_ou_script(),
        &["--apply", "--journal", j],
    );
    // Keep the begin line and the 8 intents, and half of the first outcome.
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = format!("{}\n{}", lines[..9].join("\n"), &lines[9][..20]);
    std::fs::write(&journal, cut).unwrap();
    let list = t.run(0, &["journal", j]);
    assert!(list.stdout.contains("interrupted"), "{}", list.stdout);
    assert!(
        list.stderr.contains("line 10 skipped: not JSON"),
        "{}",
        list.stderr
    );
    let json = t.run(0, &["journal", j, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["runs"][0]["unknown"], 8, "{doc:#}");
    assert_eq!(doc["runs"][0]["applied"], 0, "{doc:#}");
    let id = doc["runs"][0]["run"].as_str().unwrap().to_string();
    let entries = t.run(0, &["journal", j, "--run", &id]);
    assert_eq!(
        entries.stdout.matches("unknown").count(),
        1 + 8,
        "{}",
        entries.stdout
    );
    // The entries did land (the file was committed): undo finds and reverses them.
    let undo = t.run(0, &["undo", j]);
    assert!(
        undo.stdout.contains("8 to reverse"),
        "{}",
        undo.transcript()
    );
}

/// A replicator settings change is journalled like an entry (intent, outcome) and undone
/// like one, with the run's value as the precondition.
fn replicator_settings_are_journalled_and_undone() {
    let t = Target::ldif("");
    let journal = t.folder().join("journal.jsonl");
    let replica = t.folder().join("replica.sqlite");
    let (j, r) = (journal.to_str().unwrap(), replica.to_str().unwrap());
    t.run_script(
        0,
        "interval.rhai",
        "replicator.interval = 120;\n",
        &["--replica", r, "--apply", "--yes", "--journal", j],
    );
    let text = std::fs::read_to_string(&journal).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["begin", "settings_intent", "settings_outcome", "end"],
        "{text}"
    );
    assert_eq!(
        (
            &events[1]["setting"],
            &events[1]["before"],
            &events[1]["after"]
        ),
        (
            &"ReplicationCycleInterval".into(),
            &"60".into(),
            &"120".into()
        )
    );
    assert_eq!(events[1]["replica"], r);
    assert_eq!(events[2]["result"], "applied");
    let undo = t.run(0, &["undo", j, "--apply", "--yes"]);
    assert!(
        undo.stdout.contains("replicator settings: reversed")
            && undo.stdout.contains("ReplicationCycleInterval  120 → 60"),
        "{}",
        undo.stdout
    );
    let status = t.run(
        0,
        &["replicator", "status", "--replica", r, "--format", "json"],
    );
    assert!(
        status.stdout.contains("\"replication_cycle_interval\": 60"),
        "{}",
        status.stdout
    );
}

const MOVE_AND_FLAG: &str = r#"
let target = pool("pool01");
for u in users_in("OU=Journal,DC=example,DC=com") {
    u.move_to(target);
    u.flags = u.flags | flags(["public_im"]);
}
"#;

/// 2,500 users moved (and given a flag) in one run, read in pages of 500, then undone:
/// every user is back as it was, on `t`.
fn undo_of_2500_users(t: &Target) {
    let journal = t.folder().join("journal.jsonl");
    let j = journal.to_str().unwrap().to_string();
    let original = t.entries(OU);
    assert_eq!(original.len(), 2501, "{}", t.name());
    let out = t.run_script(
        0,
        "move.rhai",
        MOVE_AND_FLAG,
        &[
            "--apply",
            "--yes",
            "--allow-destructive",
            "2500",
            "--journal",
            &j,
        ],
    );
    assert!(
        out.stdout.contains("Applied 2500 of 2500 entries"),
        "{}: {}",
        t.name(),
        out.stdout
    );
    let moved = t.entries(OU);
    let home1 = support::fixtures::r2_home("pool01");
    assert!(
        moved
            .values()
            .filter(|e| e.dn.starts_with("CN=") || e.dn.starts_with("cn="))
            .all(|e| {
                ocsh::ocs::dn::same_dn(e.first("msRTCSIP-PrimaryHomeServer").unwrap_or(""), &home1)
                    && e.first("msRTCSIP-OptionFlags") == Some("257")
            }),
        "{}: not every user moved",
        t.name()
    );
    let mut args = vec![
        "undo",
        j.as_str(),
        "--apply",
        "--yes",
        "--allow-destructive",
        "2500",
    ];
    let dir_args = t.directory_args();
    // A server's bind DN is not in the journal; the URL is.
    if t.lab().is_some() {
        args.extend(dir_args.iter().skip(2).map(String::as_str));
    }
    let undo = t.run(0, &args);
    assert!(
        undo.stdout.contains("Applied 2500 of 2500 entries"),
        "{}: {}",
        t.name(),
        undo.stdout
    );
    let restored = t.entries(OU);
    for (k, e) in &original {
        assert_eq!(ocs_view(e), ocs_view(&restored[k]), "{}: {k}", t.name());
    }
    let file = JournalFile::read(&journal).unwrap();
    assert_eq!(file.runs.len(), 2);
    assert!(
        file.runs
            .iter()
            .all(|r| r.count(Verdict::Applied) == 2500 && r.state() == RunState::Complete)
    );
    support::say(&format!(
        "undo_of_2500_users: {}: 2,500 users moved and restored",
        t.name()
    ));
}

fn undo_restores_2500_moved_users_ldif() {
    undo_of_2500_users(&Target::ldif(&generated_users(2500, "pool02")));
}

fn with_2500_users(kind: ServerKind) -> Result<Target, String> {
    Target::server(kind, &generated_users(2500, "pool02"))
}

/// The plain tests, and the 2,500-user undo on a server of its own per backend.
pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
    use crate::support::harness::{own_server, plain};
    let m = module_path!();
    vec![
        plain(
            m,
            "an_unwritable_journal_stops_the_apply_before_the_first_write",
            an_unwritable_journal_stops_the_apply_before_the_first_write,
        ),
        plain(
            m,
            "undo_restores_a_run_on_the_demo_forest",
            undo_restores_a_run_on_the_demo_forest,
        ),
        plain(
            m,
            "undo_leaves_alone_what_changed_since",
            undo_leaves_alone_what_changed_since,
        ),
        plain(
            m,
            "undo_cannot_restore_what_the_directory_refuses",
            undo_cannot_restore_what_the_directory_refuses,
        ),
        plain(
            m,
            "journal_lists_an_interrupted_run",
            journal_lists_an_interrupted_run,
        ),
        plain(
            m,
            "replicator_settings_are_journalled_and_undone",
            replicator_settings_are_journalled_and_undone,
        ),
        plain(
            m,
            "undo_restores_2500_moved_users_ldif",
            undo_restores_2500_moved_users_ldif,
        ),
        own_server(
            m,
            "openldap",
            "undo_restores_2500_moved_users",
            || with_2500_users(ServerKind::OpenLdap),
            undo_of_2500_users,
        ),
        own_server(
            m,
            "samba",
            "undo_restores_2500_moved_users",
            || with_2500_users(ServerKind::Samba),
            undo_of_2500_users,
        ),
    ]
}
