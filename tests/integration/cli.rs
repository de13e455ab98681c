//! The real binary against the demo forest: plans, records, apply, refusals, bad input.
use std::collections::BTreeMap;

use ocsh::directory::ldif;

use crate::support::harness::{Case, case};
use crate::support::{Test, root, shipped_scripts};

/// Every ready script, run with its header's example against the built-in demo: plan and
/// records, as tables and JSON. One trial per script.
fn scripts_against_the_demo_forest() -> Vec<Case> {
    shipped_scripts()
        .into_iter()
        .map(|(rel, extra)| {
            let file = rel.trim_start_matches("scripts/").to_string();
            let path = root().join(&rel);
            case(file.clone(), move || {
                let table = Test::new().args(["run", &rel]).args(&extra).run();
                let json = Test::new()
                    .args(["run", &rel])
                    .args(&extra)
                    .args(["--format", "json"])
                    .run();
                let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
                let mut settings = insta::Settings::clone_current();
                settings.set_snapshot_suffix(&file);
                settings.set_input_file(&path);
                settings.bind(|| {
                    insta::assert_snapshot!("table", table.transcript());
                    insta::assert_json_snapshot!("json", doc);
                });
            })
        })
        .collect()
}

/// The seed snippet from the README's first command prints a correct plan.
fn seed_snippet_plans_the_four_attributes() {
    let mut t = Test::new().args(["run", "scripts/seed-enable-user.rhai"]);
    for want in [
        "msRTCSIP-UserEnabled",
        "msRTCSIP-PrimaryUserAddress",
        "sip:jane.doe@example.com",
        "CN=LC Services,CN=Microsoft,CN=pool01,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com",
        "msRTCSIP-OptionFlags",
        "Dry run: nothing was written",
    ] {
        t = t.stdout_has(want);
    }
    t.run();
}

/// A plan without --apply leaves the directory file byte-identical.
fn a_plan_writes_nothing() {
    let t = Test::new().demo("forest.ldif");
    let forest = t.path("forest.ldif");
    t.args([
        "run",
        "scripts/fix-ou-home-server.rhai",
        "--directory",
        &forest,
    ])
    .stdout_has("Dry run")
    .stderr("")
    .unchanged("forest.ldif")
    .run();
}

/// One planned change: attribute (lowercase), before, after.
type Change = (String, Vec<String>, Vec<String>);

/// The plan's entries as normalized DN → changes.
fn planned_changes(plan_json: &str) -> BTreeMap<String, Vec<Change>> {
    let plan: serde_json::Value = serde_json::from_str(plan_json).unwrap();
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    plan["plan"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let dn = ocsh::ocs::dn::normalize(e["dn"].as_str().unwrap()).unwrap();
            let changes = e["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["attribute"].as_str().unwrap().to_ascii_lowercase(),
                        strings(&c["before"]),
                        strings(&c["after"]),
                    )
                })
                .collect();
            (dn, changes)
        })
        .collect()
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
fn apply_changes_exactly_the_planned_attributes() {
    let t = Test::new().demo("forest.ldif");
    let forest = t.path("forest.ldif");
    let script = "scripts/fix-ou-home-server.rhai";
    let planned = t
        .args(["run", script, "--directory", &forest, "--format", "json"])
        .unchanged("forest.ldif")
        .run();
    let plan = planned_changes(&planned.stdout);
    assert_eq!(plan.len(), 8, "{}", planned.stdout);
    let before_text = planned.text("forest.ldif");
    let dns: Vec<&str> = plan.keys().map(String::as_str).collect();
    let applied = planned
        .then()
        .args(["run", script, "--directory", &forest, "--apply", "--yes"])
        .stdout_has("Applied 8 of 8 entries: 0 conflicted, 0 failed.")
        .changed_entries("forest.ldif", &dns)
        .run();

    let mut expected = entries_by_dn(&before_text);
    for (dn, changes) in &plan {
        let attrs = expected.get_mut(dn).unwrap();
        for (attr, before, after) in changes {
            assert_eq!(
                attrs.get(attr).cloned().unwrap_or_default(),
                *before,
                "{dn} {attr}"
            );
            if after.is_empty() {
                attrs.remove(attr);
            } else {
                attrs.insert(attr.clone(), after.clone());
            }
        }
    }
    // Like a domain controller, the embedded directory numbers every modify in the
    // entry's uSNChanged (the replicator's change marker): each changed entry has one,
    // and it is the only attribute besides the planned ones.
    let mut after = entries_by_dn(&applied.text("forest.ldif"));
    for dn in plan.keys() {
        let marker = after.get_mut(dn).unwrap().remove("usnchanged");
        assert!(marker.is_some(), "{dn} has no uSNChanged");
    }
    assert_eq!(after, expected);

    // Running it again finds nothing left to do.
    applied
        .then()
        .args(["run", script, "--directory", &forest])
        .stdout_has("No changes planned")
        .unchanged("forest.ldif")
        .run();
}

/// The refusals of the issue: each exits 4, names the problem with its line and column,
/// and writes nothing even with --apply (nor a change staged before it).
fn bad_values_are_refused_and_nothing_is_written() -> Vec<Case> {
    let cases: [(&str, &str, &str); 13] = [
        (
            "remove-then-raw-write-drops-256",
            r#"let u = user("alex.kim"); u.remove(); u.set_attr("msRTCSIP-OptionFlags", 512);"#,
            "enhanced_presence (256) can never be cleared once set",
        ),
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
    cases
        .into_iter()
        .map(|(name, text, want)| {
            case(name, move || {
                let file = format!("{name}.rhai");
                let t = Test::new().demo("forest.ldif").file(
                    &file,
                    format!("user(\"jdoe\").enable(pool(\"pool02\"));\n{text}\n"),
                );
                let (script, forest) = (t.path(&file), t.path("forest.ldif"));
                t.args(["run", &script, "--directory", &forest, "--apply", "--yes"])
                    .code(4)
                    .stderr_has(want)
                    .stderr_has(format!("{file}:2:"))
                    .stderr_has("nothing was written")
                    .unchanged("forest.ldif")
                    .run();
            })
        })
        .collect()
}

/// AD's Integer is signed: a stored negative OptionFlags (bit 31 set, as another tool
/// may write it) comes back in the same signed form after a bit is added, not as
/// 2147483905.
fn negative_option_flags_are_written_back_signed() {
    let demo = ocsh::directory::demo::DEMO_LDIF.replacen(
        "msRTCSIP-OptionFlags: 256",
        "msRTCSIP-OptionFlags: -2147483392",
        1,
    );
    let first = ocsh::directory::ldif::parse(&demo, "demo")
        .unwrap()
        .into_iter()
        .find(|e| e.first("msRTCSIP-OptionFlags") == Some("-2147483392"))
        .unwrap();
    let sam = first.first("sAMAccountName").unwrap().to_string();
    let t = Test::new().file("forest.ldif", &demo).file(
        "flag.rhai",
        format!("let u = user({sam:?}); u.flags = u.flags | flags([\"public_im\"]);\n"),
    );
    let (script, forest) = (t.path("flag.rhai"), t.path("forest.ldif"));
    let out = t
        .args(["run", &script, "--directory", &forest, "--apply", "--yes"])
        .stdout_has("-2147483392 → -2147483391")
        .changed_entries("forest.ldif", &[&first.dn])
        .run();
    let text = out.text("forest.ldif");
    assert!(text.contains("msRTCSIP-OptionFlags: -2147483391"), "{text}");
    assert!(!text.contains("2147483905"), "{text}");
}

/// A refusal as the user sees it, whole.
fn refusal_transcript() {
    let out = Test::new()
        .file(
            "seed.rhai",
            "let u = user(\"alex.kim\");\nu.set_attr(\"msRTCSIP-OptionFlags\", 512);\n",
        )
        .in_tmp()
        .args(["run", "seed.rhai"])
        .code(4)
        .run();
    insta::assert_snapshot!(out.transcript());
}

/// Bad arguments and inputs: each exits with its code and a message naming the problem,
/// and the directory file is untouched.
fn bad_inputs_exit_non_zero_with_a_message() -> Vec<Case> {
    const BROKEN: &str = "dn: DC=example,DC=com\nobjectClass: domain\n\ndn: CN=x,DC=example,DC=com\nthis line has no colon\n";
    let rows: Vec<(&str, &[&str], i32, &str)> = vec![
        (
            "missing-script",
            &["run", "missing.rhai"],
            1,
            "missing.rhai",
        ),
        (
            "malformed-ldif",
            &["run", "ok.rhai", "--directory", "broken.ldif"],
            6,
            "broken.ldif:5",
        ),
        (
            "missing-ldif",
            &["run", "ok.rhai", "--directory", "nope.ldif"],
            6,
            "nope.ldif",
        ),
        (
            "param-without-value",
            &["run", "ok.rhai", "--param", "novalue"],
            2,
            "must be NAME=VALUE",
        ),
        (
            "apply-to-the-demo",
            &["run", "ok.rhai", "--apply"],
            2,
            "ocsh demo demo.ldif",
        ),
        (
            "syntax-error",
            &["run", "syntax.rhai"],
            3,
            "syntax.rhai:1:9",
        ),
        (
            "malformed-filter",
            &["run", "filter.rhai"],
            4,
            "missing ')'",
        ),
        (
            "no-such-user",
            &["run", "nouser.rhai"],
            6,
            "no user \"nobody\"",
        ),
        (
            "uncaught-throw",
            &["run", "throw.rhai"],
            3,
            "throw.rhai:3:1: script threw: stop here",
        ),
        (
            "demo-over-a-file",
            &["demo", "forest.ldif"],
            2,
            "exists; use --force",
        ),
        (
            "unreachable-server",
            &["run", "ok.rhai", "--directory", "ldap://127.0.0.1:1"],
            6,
            "cannot reach ldap://127.0.0.1:1",
        ),
        (
            "url-without-host",
            &["run", "ok.rhai", "--directory", "ldap://"],
            2,
            "\"ldap://\" is not a usable LDAP URL: it names no host",
        ),
        (
            "ldaps-url-without-host",
            &["run", "ok.rhai", "--directory", "ldaps://"],
            2,
            "\"ldaps://\" is not a usable LDAP URL: it names no host",
        ),
        (
            "url-with-empty-host",
            &["run", "ok.rhai", "--directory", "ldap:///"],
            2,
            "\"ldap:///\" is not a usable LDAP URL: it names no host",
        ),
        (
            "dc-list-with-a-malformed-url",
            &[
                "run",
                "ok.rhai",
                "--directory",
                "ldap://127.0.0.1:1,ldap://:389",
            ],
            2,
            "\"ldap://:389\" is not a usable LDAP URL",
        ),
        (
            "bind-without-password",
            &[
                "run",
                "ok.rhai",
                "-d",
                "ldap://127.0.0.1:1",
                "--bind-dn",
                "CN=x",
            ],
            2,
            "no password for CN=x: set OCSH_PASSWORD, use --password-file",
        ),
        (
            "starttls-on-ldaps",
            &["run", "ok.rhai", "-d", "ldaps://127.0.0.1:1", "--starttls"],
            6,
            "--starttls is for ldap:// URLs",
        ),
        (
            "missing-config",
            &["run", "ok.rhai", "--config", "nope.toml"],
            2,
            "config file nope.toml",
        ),
    ];
    rows.into_iter()
        .map(|(name, args, code, want)| {
            case(name, move || {
                Test::new()
                    .demo("forest.ldif")
                    .file("broken.ldif", BROKEN)
                    .file("ok.rhai", "print(pools().len());\n")
                    .file("syntax.rhai", "let x = ;\n")
                    .file("filter.rhai", "for u in users(\"(&(mail=x)\") {}\n")
                    .file("nouser.rhai", "user(\"nobody\");\n")
                    .file("throw.rhai", "\n\nthrow \"stop here\";\n")
                    .in_tmp()
                    .args(args)
                    .code(code)
                    .stderr_has(want)
                    .unchanged("forest.ldif")
                    .run();
            })
        })
        .collect()
}

/// The sandbox: no eval, no runaway loops or recursion, bounded memory; each exits 3.
fn the_sandbox_stops_scripts() -> Vec<Case> {
    let rows: Vec<(&str, &str, &[&str], &str)> = vec![
        (
            "loop",
            "loop {}\n",
            &["--timeout", "1"],
            "timeout after 1 s",
        ),
        (
            "operations",
            "let i = 0; loop { i += 1; }\n",
            &["--max-operations", "10000"],
            "max-operations = 10000",
        ),
        ("eval", "eval(\"40 + 2\");\n", &[], "eval"),
        (
            "recursion",
            "fn f(n) { f(n + 1) } f(0);\n",
            &[],
            "max-call-levels = 64",
        ),
        (
            "string",
            "let s = \"x\"; loop { s += s; }\n",
            &["--max-memory", "64M"],
            "max-memory = 64 MiB",
        ),
        (
            "array",
            "let a = []; loop { a += [1, 2, 3, 4, 5, 6, 7, 8]; }\n",
            &["--max-memory", "16M"],
            "max-memory = 16 MiB",
        ),
    ];
    rows.into_iter()
        .map(|(name, text, extra, want)| {
            case(name, move || {
                Test::new()
                    .file("script.rhai", text)
                    .in_tmp()
                    .args(["run", "script.rhai"])
                    .args(extra)
                    .code(3)
                    .stderr_has(want)
                    .run();
            })
        })
        .collect()
}

/// Profiles in a TOML config file: a named profile supplies the directory; a flag wins;
/// an unknown profile or key is a usage error naming it.
fn config_profiles() {
    let t = Test::new()
        .demo("forest.ldif")
        .file("where.rhai", "print(pools().len());\n");
    let (forest, config) = (t.path("forest.ldif"), t.path("ocsh.toml"));
    let t = t.file(
        "ocsh.toml",
        format!("default_profile = \"lab\"\n\n[profiles.lab]\ndirectory = {forest:?}\nconcurrency = 4\n\n[profiles.broken]\ndirectory = \"nope.ldif\"\n"),
    );
    let run = ["run", "where.rhai", "--config", config.as_str()];
    let out = t
        .in_tmp()
        .args(run)
        .args(["--format", "json"])
        .stdout_has(forest.as_str())
        .run();
    let out = out
        .then()
        .in_tmp()
        .args(run)
        .args(["--profile", "broken"])
        .code(6)
        .stderr_has("nope.ldif")
        .run();
    // A flag wins over the profile.
    let out = out
        .then()
        .in_tmp()
        .args(run)
        .args(["--profile", "broken", "-d", "demo"])
        .run();
    let out = out
        .then()
        .in_tmp()
        .args(run)
        .args(["--profile", "prod"])
        .code(2)
        .stderr_has("no profile \"prod\" in the config file (profiles: broken, lab)")
        .run();
    out.then()
        .file("ocsh.toml", "[profiles.lab]\npasword_file = \"x\"\n")
        .in_tmp()
        .args(run)
        .args(["--profile", "lab"])
        .code(2)
        .stderr_has("unknown field `pasword_file`")
        .run();
}

/// --apply journals every change before it is written (a begin line, one intent per
/// attribute, one outcome per entry, an end line; for the LDIF file every intent comes
/// before every outcome, which follow the file's rename).
fn apply_writes_the_journal() {
    let t = Test::new().demo("forest.ldif");
    let (forest, journal) = (t.path("forest.ldif"), t.path("state/journal.jsonl"));
    let out = t
        .args(["run", "scripts/fix-ou-home-server.rhai", "-d", &forest])
        .args(["--apply", "--journal", &journal])
        .stdout_has("Journal: run ")
        .run();
    let text = out.text("state/journal.jsonl");
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
fn repl_on_a_pipe_runs_the_input_as_a_script() {
    Test::new()
        .arg("repl")
        .stdin("let u = user(\"jdoe\");\nu.enable(pool(\"pool01\"));\nprint(u.sip);\n")
        .stdout_matches(r"\Asip:jane\.doe@example\.com\n")
        .stdout_has("Plan against demo forest: 5 change(s) to 1 entry")
        .run();
    Test::new()
        .stdin("flags(2)\n")
        .code(4)
        .stderr_has("<stdin>:1:1: OptionFlags 2 sets reserved")
        .run();
}

/// A shared snippet folder works from --lib (and OCSH_LIB) in run, check and the REPL;
/// imports stay inside the stdlib and the granted folders.
fn snippet_libraries() {
    let lib_files = |t: Test| {
        t.file("teamlib/team/naming.rhai", "import \"ocs/flags\" as presets;\nfn shout(s) { s.to_upper() }\nfn voice_value() { presets::voice().value }\n")
            .file("teamlib/team/a.rhai", "import \"team/b\" as b;\nfn f() { 1 }\n")
            .file("teamlib/team/b.rhai", "import \"team/a\" as a;\nfn g() { 2 }\n")
            .file("uses-lib.rhai", "import \"team/naming\" as naming;\nprint(naming::shout(user(\"jdoe\").sam));\nprint(naming::voice_value());\n")
            .file("cycle.rhai", "import \"team/a\" as a;\n")
            .in_tmp()
    };
    let lib = ["--lib", "teamlib"];
    lib_files(Test::new())
        .args(["run", "uses-lib.rhai"])
        .args(lib)
        .stdout_matches(r"\AJDOE\n384\n")
        .run();
    lib_files(Test::new())
        .args(["check", "uses-lib.rhai"])
        .args(lib)
        .run();
    lib_files(Test::new())
        .arg("repl")
        .args(lib)
        .stdin("import \"team/naming\" as n;\nprint(n::shout(\"ok\"));\n")
        .stdout_matches(r"\AOK\n")
        .run();
    let t = lib_files(Test::new());
    let folder = t.path("teamlib");
    t.arg("repl")
        .env("OCSH_LIB", folder)
        .stdin("import \"team/naming\" as n;\nprint(n::shout(\"env\"));\n")
        .stdout_matches(r"\AENV\n")
        .run();
    // Without the folder the module is not found, and the message says where it looked.
    lib_files(Test::new())
        .args(["check", "uses-lib.rhai"])
        .code(3)
        .stderr_has("module \"team/naming\" not found in the stdlib (no --lib folder given)")
        .run();
    // A cycle names the chain.
    lib_files(Test::new())
        .args(["run", "cycle.rhai"])
        .args(lib)
        .code(3)
        .stderr_has("import cycle (import chain: team/a → team/b → team/a)")
        .run();
    // Jail: absolute paths and `..` are refused before anything is read.
    for bad in ["/etc/passwd", "../teamlib/team/naming", "team/../../x"] {
        lib_files(Test::new())
            .file("jail.rhai", format!("import {bad:?} as x;\n"))
            .args(["run", "jail.rhai"])
            .args(lib)
            .code(3)
            .stderr_has(format!("import \"{bad}\" is refused"))
            .run();
    }
    lib_files(Test::new())
        .args(["run", "uses-lib.rhai", "--lib", "no-such-dir"])
        .code(2)
        .stderr_has("library folder no-such-dir does not exist")
        .run();
}

/// Files are read only where --allow-read grants it; the refusal names the flag.
fn file_reads_need_a_grant() {
    Test::new()
        .file("shadow.rhai", "read_csv(\"/etc/shadow\");\n")
        .in_tmp()
        .args(["run", "shadow.rhai"])
        .code(4)
        .stderr_has("reading /etc/shadow is not allowed: grant it with --allow-read /etc/shadow")
        .run();
    let with_list = || {
        let t = Test::new().file("ids.txt", "# ids\njdoe\n\nalex.kim\n");
        let list = t.path("ids.txt");
        t.file("lines.rhai", format!("print(read_lines({list:?}));\n"))
            .in_tmp()
            .args(["run", "lines.rhai"])
    };
    with_list().code(4).stderr_has("--allow-read").run();
    with_list()
        .args(["--allow-read", "ids.txt"])
        .stdout_matches(r#"\A\["jdoe", "alex.kim"\]"#)
        .run();
    with_list().args(["--allow-read", "nowhere"]).code(2).run();
}

/// Declared parameters are checked before anything runs, and `run SCRIPT --help` shows them.
fn script_parameters() {
    Test::new()
        .args(["run", "scripts/disable-leavers.rhai"])
        .code(2)
        .stderr_has("missing required parameter: --param file=...")
        .run();
    Test::new()
        .args(["run", "scripts/explain-flags.rhai", "--param", "value=lots"])
        .code(2)
        .stderr_has("parameter value must be an integer, not \"lots\"")
        .run();
    Test::new()
        .args(["run", "scripts/move-users.rhai", "--param", "form=pool01"])
        .code(2)
        .stderr_has("the script has no parameter \"form\"; it takes: from, to, ou")
        .run();
    Test::new()
        .args(["run", "scripts/bulk-enable-csv.rhai", "--help"])
        .stdout_has("Bulk-enable users from a CSV file")
        .stdout_has("  file [required]\n      the CSV file (grant it with --allow-read)")
        .stdout_has("--allow-read <PATH>")
        .run();
}

/// --format csv puts the records on stdout as CSV; --output writes them to a file.
fn csv_output() {
    Test::new()
        .args(["run", "scripts/report-duplicate-sip.rhai", "--format", "csv"])
        .stdout("user,holders,sip\nalex.kim,2,sip:alex.kim@example.com\nalexandra.kim,2,sip:alex.kim@example.com\n")
        .run();
    let t = Test::new();
    let file = t.path("dups.csv");
    let out = t
        .args([
            "run",
            "scripts/report-duplicate-sip.rhai",
            "--format",
            "csv",
            "--output",
            &file,
        ])
        .stdout("")
        .run();
    assert!(out.text("dups.csv").starts_with("user,holders,sip\n"));
}

/// docs/api.md is what `ocsh docs` generates from the engine: a stale file fails here.
fn the_api_reference_is_current() {
    let checked_in = std::fs::read_to_string(root().join("docs/api.md")).unwrap();
    let out = Test::new().arg("docs").run();
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
    let t = Test::new();
    let dir = t.path("defs");
    let out = t.args(["docs", "--definitions", &dir]).run();
    let defs = out.text("defs/ocsh.d.rhai");
    assert!(defs.starts_with("module static;"), "{defs}");
    assert!(defs.contains("/// Temporarily disables the user"), "{defs}");
    assert!(defs.contains("fn get sip(this: User) -> any;"), "{defs}");
}

/// `ocsh check` compiles scripts without opening a directory, and points at errors.
fn check_compiles_without_a_directory() {
    Test::new()
        .args([
            "check",
            "scripts/seed-enable-user.rhai",
            "scripts/fix-ou-home-server.rhai",
        ])
        .run();
    Test::new()
        .file("bad.rhai", "fn (x) {}\n")
        .in_tmp()
        .args(["check", "bad.rhai"])
        .code(3)
        .stderr_matches(r"bad\.rhai:1:\d+: ")
        .run();
}

crate::tests![
    seed_snippet_plans_the_four_attributes,
    a_plan_writes_nothing,
    apply_changes_exactly_the_planned_attributes,
    refusal_transcript,
    config_profiles,
    apply_writes_the_journal,
    repl_on_a_pipe_runs_the_input_as_a_script,
    snippet_libraries,
    file_reads_need_a_grant,
    script_parameters,
    csv_output,
    the_api_reference_is_current,
    check_compiles_without_a_directory,
    negative_option_flags_are_written_back_signed;
    tables:
    scripts_against_the_demo_forest,
    bad_values_are_refused_and_nothing_is_written,
    bad_inputs_exit_non_zero_with_a_message,
    the_sandbox_stops_scripts,
];
