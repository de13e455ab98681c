//! The real binary against the demo forest: plans, records, apply, refusals, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a test failure

mod util;

use std::collections::BTreeMap;

use ocsh::directory::ldif;
use util::{DemoCopy, ocsh};

/// The arguments of a script's first `@example` header line.
fn example_args(path: &std::path::Path) -> Vec<String> {
    let source = std::fs::read_to_string(path).unwrap();
    let header = ocsh::script::header::Header::parse(&source).unwrap();
    assert!(
        !header.examples.is_empty(),
        "{} has no @example line",
        path.display()
    );
    header.examples[0]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Every ready script, run with its header's example against the built-in demo: plan and
/// records, as tables and JSON.
#[test]
fn scripts_against_the_demo_forest() {
    insta::glob!("../scripts", "*.rhai", |path| {
        let rel = format!("scripts/{}", path.file_name().unwrap().to_string_lossy());
        let extra = example_args(path);
        let mut args: Vec<&str> = vec!["run", &rel];
        args.extend(extra.iter().map(String::as_str));
        let table = ocsh(&args);
        assert_eq!(table.code, 0, "{}", table.transcript());
        insta::assert_snapshot!("table", table.transcript());
        args.extend(["--format", "json"]);
        let json = ocsh(&args);
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

/// --apply journals every change before it is written (a begin line, one intent per
/// attribute, one outcome per entry, an end line).
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
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events.len(), 1 + 8 + 8 + 1, "{text}");
    assert_eq!((events[0], events[17]), ("begin", "end"));
    let run = lines[0]["run"].as_str().unwrap();
    assert!(lines.iter().all(|l| l["run"] == run));
    assert!(lines[0]["directory"].as_str().unwrap().starts_with('/'));
    let intents: Vec<_> = lines.iter().filter(|l| l["event"] == "intent").collect();
    let outcomes: Vec<_> = lines.iter().filter(|l| l["event"] == "outcome").collect();
    assert_eq!((intents.len(), outcomes.len()), (8, 8));
    // Every intent comes before every outcome (the LDIF file is written at the commit).
    let last_intent = events.iter().rposition(|e| *e == "intent").unwrap();
    let first_outcome = events.iter().position(|e| *e == "outcome").unwrap();
    assert!(last_intent < first_outcome, "{text}");
    for l in &intents {
        assert_eq!(l["attribute"], "msRTCSIP-PrimaryHomeServer");
        assert!(l["time"].as_str().unwrap().ends_with('Z'));
        assert!(l["before"][0].as_str().unwrap().contains("ocspool-child"));
    }
    assert!(outcomes.iter().all(|l| l["result"] == "applied"));
    assert!(
        out.stdout.contains(&format!("Journal: run {run} in ")),
        "{}",
        out.stdout
    );
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

/// A shared snippet folder works from --lib (and OCSH_LIB) in run, check and the REPL;
/// imports stay inside the stdlib and the granted folders.
#[test]
fn snippet_libraries() {
    let demo = DemoCopy::new();
    let lib = demo.dir.path().join("teamlib");
    std::fs::create_dir_all(lib.join("team")).unwrap();
    std::fs::write(lib.join("team/naming.rhai"), "import \"ocs/flags\" as presets;\nfn shout(s) { s.to_upper() }\nfn voice_value() { presets::voice().value }\n").unwrap();
    std::fs::write(
        lib.join("team/a.rhai"),
        "import \"team/b\" as b;\nfn f() { 1 }\n",
    )
    .unwrap();
    std::fs::write(
        lib.join("team/b.rhai"),
        "import \"team/a\" as a;\nfn g() { 2 }\n",
    )
    .unwrap();
    let script = demo.script("uses-lib.rhai", "import \"team/naming\" as naming;\nprint(naming::shout(user(\"jdoe\").sam));\nprint(naming::voice_value());\n");
    let lib_arg = lib.to_str().unwrap();

    let out = demo.ocsh(&["run", &script, "--lib", lib_arg]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.starts_with("JDOE\n384\n"), "{}", out.stdout);
    let out = demo.ocsh(&["check", &script, "--lib", lib_arg]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let out = util::ocsh_piped(
        &["repl", "--lib", lib_arg],
        "import \"team/naming\" as n;\nprint(n::shout(\"ok\"));\n",
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.starts_with("OK\n"), "{}", out.stdout);
    let out = util::ocsh_piped_env(
        &["repl"],
        "import \"team/naming\" as n;\nprint(n::shout(\"env\"));\n",
        &[("OCSH_LIB", lib_arg)],
    );
    assert!(out.stdout.starts_with("ENV\n"), "{}", out.transcript());

    // Without the folder the module is not found, and the message says where it looked.
    let out = demo.ocsh(&["check", &script]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("module \"team/naming\" not found in the stdlib (no --lib folder given)"),
        "{}",
        out.stderr
    );
    // A cycle names the chain.
    let cyc = demo.script("cycle.rhai", "import \"team/a\" as a;\n");
    let out = demo.ocsh(&["run", &cyc, "--lib", lib_arg]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("import cycle (import chain: team/a → team/b → team/a)"),
        "{}",
        out.stderr
    );
    // Jail: absolute paths and `..` are refused before anything is read.
    for bad in ["/etc/passwd", "../teamlib/team/naming", "team/../../x"] {
        let s = demo.script("jail.rhai", &format!("import {bad:?} as x;\n"));
        let out = demo.ocsh(&["run", &s, "--lib", lib_arg]);
        assert_eq!(out.code, 3, "{bad}: {}", out.transcript());
        assert!(
            out.stderr.contains(&format!("import \"{bad}\" is refused")),
            "{bad}: {}",
            out.stderr
        );
    }
    let out = demo.ocsh(&["run", &script, "--lib", "no-such-dir"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("library folder no-such-dir does not exist"),
        "{}",
        out.stderr
    );
}

/// Files are read only where --allow-read grants it; the refusal names the flag.
#[test]
fn file_reads_need_a_grant() {
    let demo = DemoCopy::new();
    let s = demo.script("shadow.rhai", "read_csv(\"/etc/shadow\");\n");
    let out = demo.ocsh(&["run", &s]);
    assert_eq!(out.code, 4, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("reading /etc/shadow is not allowed: grant it with --allow-read /etc/shadow"),
        "{}",
        out.stderr
    );
    let list = demo.dir.path().join("ids.txt");
    std::fs::write(&list, "# ids\njdoe\n\nalex.kim\n").unwrap();
    let s = demo.script(
        "lines.rhai",
        &format!("print(read_lines({:?}));\n", list.to_str().unwrap()),
    );
    let out = demo.ocsh(&["run", &s]);
    assert_eq!(out.code, 4, "{}", out.transcript());
    assert!(out.stderr.contains("--allow-read"), "{}", out.stderr);
    let out = demo.ocsh(&["run", &s, "--allow-read", list.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.starts_with("[\"jdoe\", \"alex.kim\"]"),
        "{}",
        out.stdout
    );
    let out = demo.ocsh(&["run", &s, "--allow-read", "nowhere"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
}

/// Declared parameters are checked before anything runs, and `run SCRIPT --help` shows them.
#[test]
fn script_parameters() {
    let out = ocsh(&["run", "scripts/disable-leavers.rhai"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("missing required parameter: --param file=..."),
        "{}",
        out.stderr
    );
    let out = ocsh(&["run", "scripts/explain-flags.rhai", "--param", "value=lots"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("parameter value must be an integer, not \"lots\""),
        "{}",
        out.stderr
    );
    let out = ocsh(&["run", "scripts/move-users.rhai", "--param", "form=pool01"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("the script has no parameter \"form\"; it takes: from, to, ou"),
        "{}",
        out.stderr
    );
    let out = ocsh(&["run", "scripts/bulk-enable-csv.rhai", "--help"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains("Bulk-enable users from a CSV file"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("  file [required]\n      the CSV file (grant it with --allow-read)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("--allow-read <PATH>"), "{}", out.stdout);
}

/// --format csv puts the records on stdout as CSV; --output writes them to a file.
#[test]
fn csv_output() {
    let demo = DemoCopy::new();
    let out = ocsh(&[
        "run",
        "scripts/report-duplicate-sip.rhai",
        "--format",
        "csv",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(
        out.stdout,
        "user,holders,sip\nalex.kim,2,sip:alex.kim@example.com\nalexandra.kim,2,sip:alex.kim@example.com\n"
    );
    let file = demo.dir.path().join("dups.csv");
    let script = util::root().join("scripts/report-duplicate-sip.rhai");
    let out = demo.ocsh(&[
        "run",
        script.to_str().unwrap(),
        "--format",
        "csv",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("user,holders,sip\n")
    );
}

/// docs/api.md is what `ocsh docs` generates from the engine: a stale file fails here.
#[test]
fn the_api_reference_is_current() {
    let out = ocsh(&["docs"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let checked_in = std::fs::read_to_string(util::root().join("docs/api.md")).unwrap();
    assert!(
        checked_in == out.stdout,
        "docs/api.md is stale: regenerate it with `cargo run -- docs > docs/api.md`"
    );
    for want in [
        "| `user(value: string)` |",
        "| `enable(value: string, value: any)` |",
        "## Flags",
        "| `enhanced_presence` |",
    ] {
        assert!(out.stdout.contains(want), "missing {want}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = ocsh(&["docs", "--definitions", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let defs = std::fs::read_to_string(dir.path().join("ocsh.d.rhai")).unwrap();
    assert!(defs.starts_with("module static;"), "{defs}");
    assert!(defs.contains("/// Temporarily disables the user"), "{defs}");
    assert!(defs.contains("fn get sip(this: User) -> any;"), "{defs}");
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
