//! Every shipped script through the real binary on the demo forest grown to 12,000
//! generated users (`ocsh demo --users 12000`), above every old sandbox cap (10,000 map
//! entries, 50,000 array elements), with its output checked against what the generator
//! planted: the duplicate report finds the planted duplicates, the fixes plan every user
//! they must. The CSV and list scripts read 100 rows: each row is a directory lookup, and
//! the embedded directory's lookups are still a scan at 12,000 users (docs/performance.md).

use ocsh::directory::demo_scale::{SCALE_OUS, ScaleState, scale_sam, scale_state};

use crate::support::Test;
use crate::support::binary::Outcome;

const USERS: usize = 12_000;

/// Generated users of `ou` whose state is one of `states`.
fn generated(ou: &str, states: &[ScaleState]) -> Vec<usize> {
    (1..=USERS)
        .filter(|i| SCALE_OUS[i % SCALE_OUS.len()] == ou && states.contains(&scale_state(*i)))
        .collect()
}

/// Runs `script` with `args` on a fresh 12,000-user forest, as JSON.
fn run(script: &str, args: &[&str], files: &[(&str, String)]) -> (Outcome, serde_json::Value) {
    let mut t = Test::new()
        .in_tmp()
        .args(["demo", "forest.ldif", "--users", "12000"])
        .stdout_has("with 12000 generated users")
        .run()
        .then();
    for (name, text) in files {
        t = t.file(name, text);
    }
    let root = crate::support::root();
    let script = root.join("scripts").join(format!("{script}.rhai"));
    let out = t
        .in_tmp()
        .args(["run", &script.display().to_string(), "-d", "forest.ldif"])
        .args(args)
        .args(["--format", "json"])
        .run();
    let doc = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{script:?}: {e}\n{}", out.transcript()));
    (out, doc)
}

fn records(doc: &serde_json::Value) -> &Vec<serde_json::Value> {
    doc["records"].as_array().expect("records")
}

fn planned_dns(doc: &serde_json::Value) -> Vec<String> {
    doc["plan"]["entries"]
        .as_array()
        .expect("plan entries")
        .iter()
        .map(|e| e["dn"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn dn(i: usize) -> String {
    format!(
        "CN=Scale User {i:06},OU={},DC=example,DC=com",
        SCALE_OUS[i % SCALE_OUS.len()]
    )
}

/// Every planted duplicate (user 1000k holds user 1000k-1's address) is reported with
/// both holders.
fn report_duplicate_sip_at_12000_users_finds_the_planted_duplicates() {
    let (out, doc) = run("report-duplicate-sip", &[], &[]);
    for k in 1..=USERS / 1000 {
        let sip = format!("sip:{}@example.com", scale_sam(1000 * k - 1));
        let holders: Vec<&str> = records(&doc)
            .iter()
            .filter(|r| r["sip"].as_str() == Some(sip.as_str()))
            .filter_map(|r| r["user"].as_str())
            .collect();
        let mut holders = holders;
        holders.sort();
        assert_eq!(
            holders,
            [scale_sam(1000 * k - 1), scale_sam(1000 * k)],
            "{sip}"
        );
    }
    let planted = USERS / 1000;
    let generated_records = records(&doc)
        .iter()
        .filter(|r| r["user"].as_str().is_some_and(|u| u.starts_with("su")))
        .count();
    assert_eq!(generated_records, 2 * planted, "{}", out.stderr);
}

/// The enabled users of OU=Migrated homed on pool02 are all moved to pool01.
fn fix_ou_home_server_at_12000_users_plans_every_misplaced_user() {
    let (_, doc) = run(
        "fix-ou-home-server",
        &[
            "--param",
            "ou=OU=Migrated,DC=example,DC=com",
            "--param",
            "pool=pool01",
        ],
        &[],
    );
    let planned = planned_dns(&doc);
    let want = generated("Migrated", &[ScaleState::Enabled]);
    assert!(want.len() > 1_000, "{}", want.len());
    for i in &want {
        assert!(planned.contains(&dn(*i)), "{} not planned", dn(*i));
    }
}

/// Every Engineering user on pool02 is moved to pool01.
fn move_users_at_12000_users_plans_every_user_of_the_pool() {
    let (_, doc) = run(
        "move-users",
        &[
            "--param",
            "from=pool02",
            "--param",
            "to=pool01",
            "--param",
            "ou=OU=Engineering,DC=example,DC=com",
        ],
        &[],
    );
    let planned = planned_dns(&doc);
    let want = generated("Engineering", &[ScaleState::Enabled, ScaleState::Disabled]);
    assert!(want.len() > 1_000, "{}", want.len());
    for i in &want {
        assert!(planned.contains(&dn(*i)), "{} not planned", dn(*i));
    }
}

/// Every OCS user of OU=Leavers has its OCS attributes removed.
fn remove_ou_at_12000_users_plans_every_ocs_user_of_the_ou() {
    let (_, doc) = run(
        "remove-ou",
        &["--param", "ou=OU=Leavers,DC=example,DC=com"],
        &[],
    );
    let planned = planned_dns(&doc);
    let want = generated("Leavers", &[ScaleState::Enabled, ScaleState::Disabled]);
    for i in &want {
        assert!(planned.contains(&dn(*i)), "{} not planned", dn(*i));
    }
    for i in generated("Leavers", &[ScaleState::Never]) {
        assert!(!planned.contains(&dn(i)), "{} planned", dn(i));
    }
}

/// The never-enabled users of OU=Support are all listed.
fn report_never_enabled_at_12000_users_lists_every_one() {
    let (_, doc) = run(
        "report-never-enabled",
        &["--param", "ou=OU=Support,DC=example,DC=com"],
        &[],
    );
    let listed = serde_json::to_string(records(&doc)).unwrap();
    let want = generated("Support", &[ScaleState::Never]);
    assert!(want.len() > 500, "{}", want.len());
    for i in want {
        assert!(
            listed.contains(&scale_sam(i)),
            "{} not listed",
            scale_sam(i)
        );
    }
    assert!(planned_dns(&doc).is_empty());
}

/// The reports that find nothing among the generated users (all are assigned, none is
/// federated or remote) report at 12,000 users what they report on the demo.
fn reports_at_12000_users_find_what_they_find_on_the_demo() {
    for (script, args) in [
        ("report-unassigned", vec![]),
        ("audit-federation", vec![]),
        ("audit-remote-access", vec![]),
        ("explain-flags", vec!["--param", "value=385"]),
    ] {
        let (_, doc) = run(script, &args, &[]);
        let demo = Test::new()
            .args(["run", &format!("scripts/{script}.rhai"), "--format", "json"])
            .args(&args)
            .run();
        let demo: serde_json::Value = serde_json::from_str(&demo.stdout).unwrap();
        assert_eq!(records(&doc), records(&demo), "{script}");
    }
}

/// The seed snippet plans its one user.
fn seed_enable_user_at_12000_users_plans_one_user() {
    let (_, doc) = run(
        "seed-enable-user",
        &["--param", "user=jdoe", "--param", "pool=pool01"],
        &[],
    );
    assert_eq!(doc["plan"]["entry_count"], 1, "{doc:#}");
}

/// 100 never-enabled users of the CSV are all planned.
fn bulk_enable_csv_at_12000_users_plans_the_csv_rows() {
    let rows: Vec<usize> = (1..=USERS)
        .filter(|i| scale_state(*i) == ScaleState::Never)
        .take(100)
        .collect();
    let mut csv = String::from("user,sip,pool\n");
    for i in &rows {
        csv.push_str(&format!("{},,\n", scale_sam(*i)));
    }
    let (out, doc) = run(
        "bulk-enable-csv",
        &["--param", "file=rows.csv", "--allow-read", "rows.csv"],
        &[("rows.csv", csv)],
    );
    let planned = planned_dns(&doc);
    assert_eq!(planned.len(), rows.len(), "{}", out.stderr);
    for i in rows {
        assert!(planned.contains(&dn(i)), "{} not planned", dn(i));
    }
}

/// 100 enabled users of the leavers list are all disabled.
fn disable_leavers_at_12000_users_plans_the_listed_users() {
    let rows: Vec<usize> = (1..=USERS)
        .filter(|i| scale_state(*i) == ScaleState::Enabled)
        .take(100)
        .collect();
    let list: String = rows
        .iter()
        .map(|i| format!("{}\n", scale_sam(*i)))
        .collect();
    let (out, doc) = run(
        "disable-leavers",
        &["--param", "file=leavers.txt", "--allow-read", "leavers.txt"],
        &[("leavers.txt", list)],
    );
    let planned = planned_dns(&doc);
    assert_eq!(planned.len(), rows.len(), "{}", out.stderr);
}

crate::tests![
    report_duplicate_sip_at_12000_users_finds_the_planted_duplicates,
    fix_ou_home_server_at_12000_users_plans_every_misplaced_user,
    move_users_at_12000_users_plans_every_user_of_the_pool,
    remove_ou_at_12000_users_plans_every_ocs_user_of_the_ou,
    report_never_enabled_at_12000_users_lists_every_one,
    reports_at_12000_users_find_what_they_find_on_the_demo,
    seed_enable_user_at_12000_users_plans_one_user,
    bulk_enable_csv_at_12000_users_plans_the_csv_rows,
    disable_leavers_at_12000_users_plans_the_listed_users,
];
