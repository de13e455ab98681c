//! The blast-radius guard through the real binary, on a generated LDIF forest of 2,600
//! enabled users (more than five pages): a plan that disables, removes or moves more
//! users than the limit (500, a profile's `max_destructive`, `--allow-destructive N`) is
//! refused with exit code 4 before the first write, the plan is still shown, `--yes` does
//! not lift it, and the file stays byte for byte as it was.

use crate::support::Test;
use crate::support::fixtures::DEMO;

const USERS: usize = 2600;
const OU: &str = "OU=Guard,DC=example,DC=com";
const POOL02: &str = "CN=LC Services,CN=Microsoft,CN=pool02,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com";

fn dn(i: usize) -> String {
    format!("CN=Guard {i:05},{OU}")
}

/// The demo forest plus OU=Guard with `USERS` users enabled on pool02.
fn forest() -> String {
    let mut out = String::from(DEMO);
    out.push_str(&format!(
        "\ndn: {OU}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Guard\n"
    ));
    for i in 1..=USERS {
        let sam = format!("g{i:05}");
        out.push_str(&format!(
            "\ndn: {}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: user\ncn: Guard {i:05}\n\
             sAMAccountName: {sam}\nmail: {sam}@example.com\n\
             msRTCSIP-UserEnabled: TRUE\nmsRTCSIP-PrimaryUserAddress: sip:{sam}@example.com\n\
             msRTCSIP-PrimaryHomeServer: {POOL02}\nmsRTCSIP-OptionFlags: 256\n",
            dn(i)
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

/// A fresh folder with the forest, the script and (when `max` is given) a config file
/// whose profile `lab` sets `max_destructive`.
fn folder(max: Option<usize>) -> Test {
    let t = Test::new()
        .file("forest.ldif", forest())
        .file("destroy.rhai", SCRIPT);
    match max {
        Some(max) => t.file(
            "config.toml",
            format!("[profiles.lab]\nmax_destructive = {max}\n"),
        ),
        None => t,
    }
}

/// `ocsh run destroy.rhai` on the forest with the counts to disable, remove and move.
fn run(t: Test, (disable, remove, moves): (usize, usize, usize)) -> Test {
    let (script, forest, journal) = (
        t.path("destroy.rhai"),
        t.path("forest.ldif"),
        t.path("journal.jsonl"),
    );
    t.args([
        "run",
        &script,
        "--directory",
        &forest,
        "--journal",
        &journal,
    ])
    .args(["--param", &format!("ou={OU}")])
    .args(["--param", &format!("disable={disable}")])
    .args(["--param", &format!("remove={remove}")])
    .args(["--param", &format!("move={moves}")])
}

/// The refusal: exit 4, the plan shown, the count and the flag named, the file
/// byte-identical and no journal (nothing was attempted).
fn refused(t: Test, count: usize, what: &str) -> Test {
    t.code(4)
        .stdout_has(format!("change(s) to {count} entries"))
        .stderr_has(format!("disables, removes or moves {count} users ({what})"))
        .stderr_has(format!("run again with --allow-destructive {count}"))
        .unchanged("forest.ldif")
}

fn no_journal(o: &crate::support::binary::Outcome) {
    assert!(
        !o.path("journal.jsonl").exists(),
        "a refused apply wrote a journal:\n{}",
        o.transcript()
    );
    assert!(!o.stdout.contains("Applied"), "{}", o.transcript());
}

fn guard_allows_500_disables_of_2600_users_and_refuses_501_even_with_yes() {
    let o = refused(
        run(folder(None), (501, 0, 0)).args(["--apply", "--yes"]),
        501,
        "501 disabled",
    )
    .stderr_has("more than the limit of 500 (the default")
    .run();
    no_journal(&o);
    let o = refused(
        run(o.then(), (501, 0, 0)).args(["--apply", "--yes", "--allow-destructive", "500"]),
        501,
        "501 disabled",
    )
    .stderr_has("limit of 500 (--allow-destructive)")
    .run();
    no_journal(&o);
    // A dry run is never refused: it writes nothing.
    let o = run(o.then(), (501, 0, 0))
        .stdout_has("Dry run: nothing was written")
        .unchanged("forest.ldif")
        .run();
    let first_500: Vec<String> = (1..=500).map(dn).collect();
    let dns: Vec<&str> = first_500.iter().map(String::as_str).collect();
    run(o.then(), (500, 0, 0))
        .args(["--apply", "--yes"])
        .stdout_has("Applied 500 of 500 entries: 0 conflicted, 0 failed.")
        .changed_entries("forest.ldif", &dns)
        .run();
}

fn guard_counts_removes_and_moves_and_the_flag_allows_exactly_its_number() {
    let o = refused(
        run(folder(None), (0, 250, 251)).args(["--apply", "--yes"]),
        501,
        "250 removed, 251 moved",
    )
    .run();
    no_journal(&o);
    let all: Vec<String> = (1..=501).map(dn).collect();
    let dns: Vec<&str> = all.iter().map(String::as_str).collect();
    run(o.then(), (0, 250, 251))
        .args(["--apply", "--yes", "--allow-destructive", "501"])
        .stdout_has("Applied 501 of 501 entries: 0 conflicted, 0 failed.")
        .changed_entries("forest.ldif", &dns)
        .run();
}

fn guard_takes_its_limit_from_the_profile_and_the_flag_allows_all_2600() {
    let t = folder(Some(100));
    let config = t.path("config.toml");
    let profile = ["--config", config.as_str(), "--profile", "lab"];
    let o = refused(
        run(t, (101, 0, 0)).args(["--apply", "--yes"]).args(profile),
        101,
        "101 disabled",
    )
    .stderr_has("limit of 100 (the profile's max_destructive)")
    .run();
    no_journal(&o);
    // JSON keeps the plan beside the refusal.
    let o = run(o.then(), (101, 0, 0))
        .args(["--apply", "--yes", "--format", "json"])
        .args(profile)
        .code(4)
        .unchanged("forest.ldif")
        .run();
    let doc: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(doc["plan"]["entry_count"], 101, "{}", o.stdout);
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("--allow-destructive 101")),
        "{}",
        o.stdout
    );
    // Within the profile's limit, and the flag over it: every user of the OU.
    let o = run(o.then(), (100, 0, 0))
        .args(["--apply", "--yes"])
        .args(profile)
        .stdout_has("Applied 100 of 100 entries")
        .run();
    run(o.then(), (USERS, 0, 0))
        .args(["--apply", "--yes", "--allow-destructive", "2600"])
        .args(profile)
        .stdout_has(format!(
            "Applied {} of {} entries",
            USERS - 100,
            USERS - 100
        ))
        .run();
}

crate::tests![
    guard_allows_500_disables_of_2600_users_and_refuses_501_even_with_yes,
    guard_counts_removes_and_moves_and_the_flag_allows_exactly_its_number,
    guard_takes_its_limit_from_the_profile_and_the_flag_allows_all_2600,
];
