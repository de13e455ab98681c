//! Tables that fit: `run`'s record table fits the terminal's width (`COLUMNS` when there
//! is no terminal), long cells wrap and rows are cut with `…` after four lines; on a pipe
//! without `COLUMNS` and in `--format json`/`csv` the full text stays.

use crate::support::Test;

/// Every user of OU=Sales with its DN and home server: wider than 80 columns.
const WIDE: &str = r#"for u in users_in("OU=Sales,DC=example,DC=com") {
    emit(#{ user: u.sam, dn: u.dn, home_server: u.home_server, note: "a long note that goes on and on to make this column wider than any terminal would show in one line, and longer still, so that it takes more than four lines" });
}"#;

fn a_wide_table_fits_80_columns() {
    let t = Test::new().file("wide.rhai", WIDE);
    let script = t.path("wide.rhai");
    let o = t.args(["run", &script]).env("COLUMNS", "80").run();
    for line in o.stdout.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(o.stdout.contains('…'), "{}", o.stdout);
    insta::assert_snapshot!(o.stdout);
    // The same on a pipe without COLUMNS: whole lines, for grep.
    let o = o.then().args(["run", &script]).run();
    assert!(
        o.stdout
            .contains("CN=Priya Raman,OU=Sales,DC=example,DC=com"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains('…'), "{}", o.stdout);
    // JSON keeps the full text at any width.
    let o = o
        .then()
        .args(["run", &script, "--format", "json"])
        .env("COLUMNS", "80")
        .stdout_has("so that it takes more than four lines")
        .run();
    assert!(!o.stdout.contains('…'));
}

crate::tests![a_wide_table_fits_80_columns];
