//! The real binary against the demo forest: plans, records, apply, refusals, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a test failure

mod util;

use std::collections::BTreeMap;

use ocsh::directory::ldif;
use util::{DemoCopy, ocsh};

/// Every ready script, run against the built-in demo: plan and records, as tables and JSON.
#[test]
fn scripts_against_the_demo_forest() {
    insta::glob!("../scripts", "*.rhai", |path| {
        let rel = format!("scripts/{}", path.file_name().unwrap().to_string_lossy());
        let table = ocsh(&["run", &rel]);
        assert_eq!(table.code, 0, "{}", table.transcript());
        insta::assert_snapshot!("table", table.transcript());
        let json = ocsh(&["run", &rel, "--format", "json"]);
        assert_eq!(json.code, 0, "{}", json.transcript());
        let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        insta::assert_json_snapshot!("json", doc);
    });
}

/// The seed snippet from the README's first command prints a correct plan.
#[test]
fn seed_snippet_plans_the_four_attributes() {
    let out = ocsh(&["run", "scripts/seed-enable-user.rhai"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    for want in [
        "msRTCSIP-UserEnabled",
        "msRTCSIP-PrimaryUserAddress",
        "sip:jane.doe@example.com",
        "CN=LC Services,CN=Microsoft,CN=pool01,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com",
        "msRTCSIP-OptionFlags",
        "Dry run: nothing was written",
    ] {
        assert!(out.stdout.contains(want), "missing {want}:\n{}", out.stdout);
    }
}

#[test]
fn a_plan_writes_nothing() {
    let demo = DemoCopy::new();
    let before = demo.bytes();
    let script = util::root().join("scripts/fix-ou-home-server.rhai");
    let out = demo.ocsh(&[
        "run",
        script.to_str().unwrap(),
        "--directory",
        &demo.ldif_arg(),
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains("Dry run"), "{}", out.stdout);
    assert_eq!(
        before,
        demo.bytes(),
        "a plan without --apply changed the file"
    );
}

fn entries_by_dn(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    ldif::parse(text, "test")
        .unwrap()
        .into_iter()
        .map(|e| {
            let attrs = e
                .attributes()
                .iter()
                .map(|a| (a.name.to_ascii_lowercase(), a.values.clone()))
                .collect();
            (ocsh::ocs::dn::normalize(&e.dn).unwrap(), attrs)
        })
        .collect()
}

/// --apply changes exactly the attributes the plan showed, and nothing else.
#[test]
fn apply_changes_exactly_the_planned_attributes() {
    let demo = DemoCopy::new();
    let before_text = String::from_utf8(demo.bytes()).unwrap();
    let script = util::root().join("scripts/fix-ou-home-server.rhai");
    let script = script.to_str().unwrap();
    let planned = demo.ocsh(&[
        "run",
        script,
        "--directory",
        &demo.ldif_arg(),
        "--format",
        "json",
    ]);
    assert_eq!(planned.code, 0, "{}", planned.transcript());
    let plan: serde_json::Value = serde_json::from_str(&planned.stdout).unwrap();
    let applied = demo.ocsh(&[
        "run",
        script,
        "--directory",
        &demo.ldif_arg(),
        "--apply",
        "--yes",
    ]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    assert!(
        applied
            .stdout
            .contains("Applied 8 of 8 entries: 0 conflicted, 0 failed."),
        "{}",
        applied.stdout
    );

    let mut expected = entries_by_dn(&before_text);
    let entries = plan["plan"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 8);
    for e in entries {
        let dn = ocsh::ocs::dn::normalize(e["dn"].as_str().unwrap()).unwrap();
        let attrs = expected.get_mut(&dn).unwrap();
        for c in e["changes"].as_array().unwrap() {
            let attr = c["attribute"].as_str().unwrap().to_ascii_lowercase();
            let after: Vec<String> = c["after"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            let before: Vec<String> = c["before"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                attrs.get(&attr).cloned().unwrap_or_default(),
                before,
                "{dn} {attr}"
            );
            if after.is_empty() {
                attrs.remove(&attr);
            } else {
                attrs.insert(attr, after);
            }
        }
    }
    let after_text = String::from_utf8(demo.bytes()).unwrap();
    // Like a domain controller, the embedded directory numbers every modify in the
    // entry's uSNChanged (the replicator's change marker): each changed entry has one,
    // and it is the only attribute besides the planned ones.
    let mut after = entries_by_dn(&after_text);
    for e in entries {
        let dn = ocsh::ocs::dn::normalize(e["dn"].as_str().unwrap()).unwrap();
        let marker = after.get_mut(&dn).unwrap().remove("usnchanged");
        assert!(marker.is_some(), "{dn} has no uSNChanged");
    }
    assert_eq!(after, expected);

    // Running it again finds nothing left to do.
    let again = demo.ocsh(&["run", script, "--directory", &demo.ldif_arg()]);
    assert!(
        again.stdout.contains("No changes planned"),
        "{}",
        again.stdout
    );
}

/// The refusals of the issue: each exits 4, names the problem, and writes nothing even
/// with --apply.
#[test]
fn bad_values_are_refused_and_nothing_is_written() {
    let cases = [
        (
            "overwrite-256",
            r#"let u = user("alex.kim"); u.set_attr("msRTCSIP-OptionFlags", 512);"#,
            "enhanced_presence (256) can never be cleared once set",
        ),
        (
            "overwrite-flags-object",
            r#"let u = user("alex.kim"); u.flags = flags(512);"#,
            "enhanced_presence (256) can never be cleared once set",
        ),
        (
            "fqdn-home-server",
            r#"let u = user("alex.kim"); u.set_attr("msRTCSIP-PrimaryHomeServer", "pool02.example.com");"#,
            "is the FQDN of pool pool02, not a DN",
        ),
        (
            "unknown-pool",
            r#"user("jdoe").enable("sip:jane.doe@example.com", pool("pool09"));"#,
            "unknown pool \"pool09\"",
        ),
        (
            "unknown-pool-name",
            r#"user("jdoe").enable("sip:jane.doe@example.com", "pool09");"#,
            "unknown pool \"pool09\"",
        ),
        (
            "space-in-sip",
            r#"user("jdoe").enable("sip:jane doe@example.com", pool("pool01"));"#,
            "contains a space at position 9",
        ),
        (
            "curly-quote",
            "user(\"jdoe\").enable(\"\u{201C}sip:jane.doe@example.com\u{201D}\", pool(\"pool01\"));",
            "curly quote",
        ),
        (
            "duplicate-sip",
            r#"user("jdoe").enable("sip:alex.kim@example.com", pool("pool01"));"#,
            "sip:alex.kim@example.com is already held by",
        ),
        (
            "reserved-bit",
            r#"let u = user("alex.kim"); u.flags = u.flags | flags(32);"#,
            "reserved or undocumented bit(s) 32",
        ),
        (
            "clear-256-by-name",
            r#"let u = user("alex.kim"); u.flags.enhanced_presence = false;"#,
            "can never be cleared",
        ),
        (
            "foreign-sip-domain",
            r#"user("jdoe").enable("sip:jane.doe@example.org", pool("pool01"));"#,
            "example.org is not a SIP domain of this deployment",
        ),
        (
            "misspelled-attribute",
            r#"user("alex.kim").set_attr("msRTCSIP-PrimaryHomeSever", "x");"#,
            "did you mean msRTCSIP-PrimaryHomeServer",
        ),
    ];
    for (name, text, want) in cases {
        let demo = DemoCopy::new();
        let before = demo.bytes();
        // A change staged before the refusal must not be written either.
        let script = demo.script(
            &format!("{name}.rhai"),
            &format!("user(\"jdoe\").enable(pool(\"pool02\"));\n{text}\n"),
        );
        let out = demo.ocsh(&[
            "run",
            &script,
            "--directory",
            &demo.ldif_arg(),
            "--apply",
            "--yes",
        ]);
        assert_eq!(out.code, 4, "{name}: {}", out.transcript());
        assert!(
            out.stderr.contains(want),
            "{name}: want {want:?} in\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("{name}.rhai:2:")),
            "{name}: no line/column in\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("nothing was written"),
            "{name}: {}",
            out.stderr
        );
        assert_eq!(before, demo.bytes(), "{name}: the directory changed");
    }
}

#[test]
fn refusal_transcript() {
    let demo = DemoCopy::new();
    let script = demo.script(
        "seed.rhai",
        "let u = user(\"alex.kim\");\nu.set_attr(\"msRTCSIP-OptionFlags\", 512);\n",
    );
    let out = demo.ocsh(&["run", "seed.rhai"]);
    assert_eq!(out.code, 4);
    let _ = script;
    insta::assert_snapshot!(out.transcript());
}

#[test]
fn bad_inputs_exit_non_zero_with_a_message() {
    let demo = DemoCopy::new();
    let broken_ldif = demo.dir.path().join("broken.ldif");
    std::fs::write(&broken_ldif, "dn: DC=example,DC=com\nobjectClass: domain\n\ndn: CN=x,DC=example,DC=com\nthis line has no colon\n").unwrap();
    let ok = demo.script("ok.rhai", "print(pools().len());\n");
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["run".into(), "missing.rhai".into()], 1, "missing.rhai"),
        (
            vec![
                "run".into(),
                ok.clone(),
                "--directory".into(),
                broken_ldif.display().to_string(),
            ],
            6,
            "broken.ldif:5",
        ),
        (
            vec![
                "run".into(),
                ok.clone(),
                "--directory".into(),
                "nope.ldif".into(),
            ],
            6,
            "nope.ldif",
        ),
        (
            vec!["run".into(), ok.clone(), "--param".into(), "novalue".into()],
            2,
            "must be NAME=VALUE",
        ),
        (
            vec!["run".into(), ok.clone(), "--apply".into()],
            2,
            "ocsh demo demo.ldif",
        ),
        (
            vec!["run".into(), demo.script("syntax.rhai", "let x = ;\n")],
            3,
            "syntax.rhai:1:9",
        ),
        (
            vec![
                "run".into(),
                demo.script("filter.rhai", "for u in users(\"(&(mail=x)\") {}\n"),
            ],
            4,
            "missing ')'",
        ),
        (
            vec![
                "run".into(),
                demo.script("nouser.rhai", "user(\"nobody\");\n"),
            ],
            6,
            "no user \"nobody\"",
        ),
        (
            vec![
                "run".into(),
                demo.script("throw.rhai", "\n\nthrow \"stop here\";\n"),
            ],
            3,
            "throw.rhai:3:1: script threw: stop here",
        ),
        (
            vec!["demo".into(), demo.ldif_arg()],
            2,
            "exists; use --force",
        ),
        (
            vec![
                "run".into(),
                ok.clone(),
                "--directory".into(),
                "ldap://127.0.0.1:1".into(),
            ],
            6,
            "cannot reach ldap://127.0.0.1:1",
        ),
        (
            vec![
                "run".into(),
                ok.clone(),
                "-d".into(),
                "ldap://127.0.0.1:1".into(),
                "--bind-dn".into(),
                "CN=x".into(),
            ],
            2,
            "no password for CN=x: set OCSH_PASSWORD, use --password-file",
        ),
        (
            vec![
                "run".into(),
                ok.clone(),
                "-d".into(),
                "ldaps://127.0.0.1:1".into(),
                "--starttls".into(),
            ],
            6,
            "--starttls is for ldap:// URLs",
        ),
        (
            vec![
                "run".into(),
                ok.clone(),
                "--config".into(),
                "nope.toml".into(),
            ],
            2,
            "config file nope.toml",
        ),
    ];
    for (args, code, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = demo.ocsh(&args);
        assert_eq!(out.code, code, "{args:?}: {}", out.transcript());
        assert!(
            out.stderr.contains(want),
            "{args:?}: want {want:?} in\n{}",
            out.stderr
        );
    }
}

/// The sandbox: no eval, no runaway loops or recursion, bounded memory.
#[test]
fn the_sandbox_stops_scripts() {
    let demo = DemoCopy::new();
    let cases = [
        (
            "loop.rhai",
            "loop {}\n",
            vec!["--timeout", "1"],
            "timeout after 1 s",
        ),
        (
            "ops.rhai",
            "let i = 0; loop { i += 1; }\n",
            vec!["--max-operations", "10000"],
            "Too many operations",
        ),
        ("eval.rhai", "eval(\"40 + 2\");\n", vec![], "eval"),
        (
            "recurse.rhai",
            "fn f(n) { f(n + 1) } f(0);\n",
            vec![],
            "Stack overflow",
        ),
        (
            "string.rhai",
            "let s = \"x\"; loop { s += s; }\n",
            vec![],
            "Length of string",
        ),
        (
            "array.rhai",
            "let a = []; loop { a += [1, 2, 3, 4, 5, 6, 7, 8]; }\n",
            vec![],
            "Size of array",
        ),
    ];
    for (name, text, extra, want) in cases {
        let script = demo.script(name, text);
        let mut args = vec!["run", script.as_str()];
        args.extend(extra);
        let out = demo.ocsh(&args);
        assert_eq!(out.code, 3, "{name}: {}", out.transcript());
        assert!(
            out.stderr.contains(want),
            "{name}: want {want:?} in\n{}",
            out.stderr
        );
    }
}

/// Profiles in a TOML config file: a named profile supplies the directory; a flag wins;
/// an unknown profile or key is a usage error naming it.
#[test]
fn config_profiles() {
    let demo = DemoCopy::new();
    let script = demo.script("where.rhai", "print(pools().len());\n");
    let config = demo.dir.path().join("ocsh.toml");
    std::fs::write(
        &config,
        format!("default_profile = \"lab\"\n\n[profiles.lab]\ndirectory = {:?}\nconcurrency = 4\n\n[profiles.broken]\ndirectory = \"nope.ldif\"\n", demo.ldif_arg()),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let out = demo.ocsh(&["run", &script, "--config", cfg, "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains(&demo.ldif_arg()), "{}", out.stdout);
    let out = demo.ocsh(&["run", &script, "--config", cfg, "--profile", "broken"]);
    assert_eq!(out.code, 6, "{}", out.transcript());
    assert!(out.stderr.contains("nope.ldif"), "{}", out.stderr);
    let out = demo.ocsh(&[
        "run",
        &script,
        "--config",
        cfg,
        "--profile",
        "broken",
        "-d",
        "demo",
    ]);
    assert_eq!(
        out.code,
        0,
        "a flag must win over the profile: {}",
        out.transcript()
    );
    let out = demo.ocsh(&["run", &script, "--config", cfg, "--profile", "prod"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("no profile \"prod\" in the config file (profiles: broken, lab)"),
        "{}",
        out.stderr
    );
    std::fs::write(&config, "[profiles.lab]\npasword_file = \"x\"\n").unwrap();
    let out = demo.ocsh(&["run", &script, "--config", cfg, "--profile", "lab"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unknown field `pasword_file`"),
        "{}",
        out.stderr
    );
}

/// --apply appends every change to the journal, one JSON line each.
#[test]
fn apply_writes_the_journal() {
    let demo = DemoCopy::new();
    let script = util::root().join("scripts/fix-ou-home-server.rhai");
    let journal = demo.dir.path().join("state/journal.jsonl");
    let out = demo.ocsh(&[
        "run",
        script.to_str().unwrap(),
        "-d",
        &demo.ldif_arg(),
        "--apply",
        "--journal",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    for l in &lines {
        assert_eq!(l["result"], "applied");
        assert_eq!(l["attribute"], "msRTCSIP-PrimaryHomeServer");
        assert!(l["time"].as_str().unwrap().ends_with('Z'));
        assert!(l["before"][0].as_str().unwrap().contains("ocspool-child"));
    }
}

/// The REPL on a pipe runs its input as one script and exits with the script's status.
#[test]
fn repl_on_a_pipe_runs_the_input_as_a_script() {
    let out = util::ocsh_piped(
        &["repl"],
        "let u = user(\"jdoe\");\nu.enable(pool(\"pool01\"));\nprint(u.sip);\n",
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.starts_with("sip:jane.doe@example.com\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Plan against demo forest: 5 change(s) to 1 entry"),
        "{}",
        out.stdout
    );
    let out = util::ocsh_piped(&[], "flags(2)\n");
    assert_eq!(out.code, 4, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("<stdin>:1:1: OptionFlags 2 sets reserved"),
        "{}",
        out.stderr
    );
}

#[test]
fn check_compiles_without_a_directory() {
    let out = ocsh(&[
        "check",
        "scripts/seed-enable-user.rhai",
        "scripts/fix-ou-home-server.rhai",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let demo = DemoCopy::new();
    let bad = demo.script("bad.rhai", "fn (x) {}\n");
    let out = demo.ocsh(&["check", &bad]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(out.stderr.contains("bad.rhai:1:"), "{}", out.stderr);
}
