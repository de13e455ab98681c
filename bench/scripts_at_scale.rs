//! Issue 18: every shipped script on the demo forest grown to 100,000 generated users
//! (`ocsh demo --users`), through the real binary with `--stats`: operations, script
//! time, memory held, process heap peak, cost per directory user, and the ratio to the
//! yardstick of the same run, a read-only loop over every user.
//!
//! Run: `cargo bench --bench scripts_at_scale` (`--profile release` for release figures).
//! `OCSH_BENCH_USERS` changes the 100,000, `OCSH_BENCH_ROWS` the 1,000 rows of the CSV and
//! leavers list, `OCSH_BENCH_TIMEOUT` the 600 s each script may run. Not yet covered: the
//! stdlib entry points and the 10,000-user OpenLDAP run (docs/performance.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark: a failure is a failure

use std::process::Command;
use std::time::Instant;

use ocsh::directory::demo_scale::{ScaleState, scale_sam, scale_state};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `--stats` line's figures: operations, script seconds, memory held, heap peak.
fn stats(stderr: &str) -> Option<(u64, f64, String, String)> {
    let line = stderr.lines().find(|l| l.starts_with("ocsh: stats: "))?;
    let rest = line.rsplit_once(".rhai: ")?.1;
    let (ops, rest) = rest.split_once(" operations, ")?;
    let (secs, rest) = rest.split_once(" s, memory held ")?;
    let (held, rest) = rest.split_once(" (process peak ")?;
    Some((
        ops.parse().ok()?,
        secs.parse().ok()?,
        held.to_string(),
        rest.trim_end_matches(')').to_string(),
    ))
}

fn main() {
    let users = env_usize("OCSH_BENCH_USERS", 100_000);
    let rows = env_usize("OCSH_BENCH_ROWS", 1_000);
    let timeout = env_usize("OCSH_BENCH_TIMEOUT", 600).to_string();
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).display().to_string();
    let ocsh = env!("CARGO_BIN_EXE_ocsh");
    let forest = at("forest.ldif");
    let made = Command::new(ocsh)
        .args(["demo", &forest, "--users", &users.to_string()])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let mut csv = String::from("user,sip,pool\n");
    for i in (1..=users)
        .filter(|i| scale_state(*i) == ScaleState::Never)
        .take(rows)
    {
        csv.push_str(&format!("{},,\n", scale_sam(i)));
    }
    std::fs::write(at("rows.csv"), csv).unwrap();
    let leavers: String = (1..=users)
        .filter(|i| scale_state(*i) == ScaleState::Enabled)
        .take(rows)
        .map(|i| format!("{}\n", scale_sam(i)))
        .collect();
    std::fs::write(at("leavers.txt"), leavers).unwrap();
    std::fs::write(
        at("loop.rhai"),
        "let n = 0; for u in users(\"(objectClass=user)\") { n += 1; } print(n);\n",
    )
    .unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let script = |name: &str| format!("{root}/scripts/{name}.rhai");
    let (csv, leavers) = (at("rows.csv"), at("leavers.txt"));
    let runs: Vec<(String, String, Vec<String>)> = vec![
        ("read-only loop (yardstick)".into(), at("loop.rhai"), vec![]),
        (
            "report-duplicate-sip".into(),
            script("report-duplicate-sip"),
            vec![],
        ),
        (
            "report-never-enabled".into(),
            script("report-never-enabled"),
            vec!["--param".into(), "ou=OU=Support,DC=example,DC=com".into()],
        ),
        (
            "report-unassigned".into(),
            script("report-unassigned"),
            vec![],
        ),
        (
            "audit-federation".into(),
            script("audit-federation"),
            vec![],
        ),
        (
            "audit-remote-access".into(),
            script("audit-remote-access"),
            vec![],
        ),
        (
            "explain-flags".into(),
            script("explain-flags"),
            vec!["--param".into(), "value=385".into()],
        ),
        (
            "seed-enable-user".into(),
            script("seed-enable-user"),
            vec![
                "--param".into(),
                "user=jdoe".into(),
                "--param".into(),
                "pool=pool01".into(),
            ],
        ),
        (
            "fix-ou-home-server".into(),
            script("fix-ou-home-server"),
            vec![
                "--param".into(),
                "ou=OU=Migrated,DC=example,DC=com".into(),
                "--param".into(),
                "pool=pool01".into(),
            ],
        ),
        (
            "move-users".into(),
            script("move-users"),
            vec![
                "--param".into(),
                "from=pool02".into(),
                "--param".into(),
                "to=pool01".into(),
                "--param".into(),
                "ou=OU=Engineering,DC=example,DC=com".into(),
            ],
        ),
        (
            "remove-ou".into(),
            script("remove-ou"),
            vec!["--param".into(), "ou=OU=Leavers,DC=example,DC=com".into()],
        ),
        (
            format!("bulk-enable-csv ({rows} rows)"),
            script("bulk-enable-csv"),
            vec![
                "--param".into(),
                format!("file={csv}"),
                "--allow-read".into(),
                csv.clone(),
            ],
        ),
        (
            format!("disable-leavers ({rows} ids)"),
            script("disable-leavers"),
            vec![
                "--param".into(),
                format!("file={leavers}"),
                "--allow-read".into(),
                leavers.clone(),
            ],
        ),
    ];
    println!("{} users, {rows} rows, ocsh {ocsh}", users + 75);
    println!(
        "| script | operations | ops per user | script time | µs per user | vs loop | memory held | heap peak | wall |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut yardstick = None;
    for (name, path, args) in runs {
        let start = Instant::now();
        let out = Command::new(ocsh)
            .args([
                "run",
                &path,
                "-d",
                &forest,
                "--stats",
                "--timeout",
                &timeout,
                "-f",
                "json",
            ])
            .args(&args)
            .output()
            .unwrap();
        let wall = start.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let Some((ops, secs, held, peak)) = stats(&stderr) else {
            println!(
                "| {name} | (failed: {}) | | | | | | | {wall:.1} s |",
                stderr.lines().last().unwrap_or("")
            );
            continue;
        };
        let status = if out.status.success() {
            ""
        } else {
            " (stopped)"
        };
        let base = *yardstick.get_or_insert(secs);
        println!(
            "| {name}{status} | {ops} | {:.1} | {secs:.2} s | {:.1} | {:.2}x | {held} | {peak} | {wall:.1} s |",
            ops as f64 / users as f64,
            secs * 1e6 / users as f64,
            secs / base
        );
    }
}
