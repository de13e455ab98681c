//! The sandbox's limits through the real binary: every way a script used to crash or
//! exhaust the process ends with a clear error naming the limit and how to raise it,
//! exit code 3, and the directory file unchanged; each limit can be raised by its flag
//! and by the profile's `[limits]`; `exit()` keeps the plan, `exit(value)` aborts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod util;

use util::{DemoCopy, Output};

/// Checks a broken limit: exit 3, the limit with its value, the flag and the profile
/// key in the message, nothing written.
fn assert_broke(out: &Output, demo: &DemoCopy, before: &[u8], flag: &str, value: &str) {
    assert_eq!(out.code, 3, "{}", out.transcript());
    let key = flag.replace('-', "_");
    for want in [
        format!("the script broke the limit {flag} = {value}"),
        format!("raise it with --{flag}"),
        format!("`{key} = ...` under [limits]"),
        "nothing was written".to_string(),
    ] {
        assert!(
            out.stderr.contains(&want),
            "want {want:?} in\n{}",
            out.stderr
        );
    }
    // file:line:col of the place the limit was reached
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("ocsh: ") && l.contains(".rhai:")),
        "{}",
        out.stderr
    );
    assert_eq!(before, demo.bytes(), "the directory file changed");
}

/// The reproductions of the nothing-lost issue that aborted the process (stack
/// overflow or the allocator), each run with --apply on a copy of the demo forest after
/// staging a change: a clear error, exit 3, the file unchanged.
#[test]
fn crashing_scripts_end_with_a_limit_error_and_write_nothing() {
    let demo = DemoCopy::new();
    let before = demo.bytes();
    let stage = "user(\"jdoe\").enable(pool(\"pool01\"));\n";
    let cases: &[(&str, &str, &[&str], &str, &str)] = &[
        (
            "closure-chain.rhai",
            "let a = 1; for i in 0..100000 { let b = a; a = || b; }",
            &[],
            "max-value-depth",
            "1000",
        ),
        (
            "closure-calls.rhai",
            "let f = || 1; for i in 0..100000 { let g = f; f = || g.call(); } f.call();",
            &[],
            "max-value-depth",
            "1000",
        ),
        (
            "nested-arrays.rhai",
            "let a = []; for i in 0..50000 { a = [a]; }",
            &[],
            "max-value-depth",
            "1000",
        ),
        (
            "curry-chain.rhai",
            "let f = |x| x; for i in 0..100000 { let g = f; f = Fn(\"to_string\").curry(g); }",
            &[],
            "max-value-depth",
            "1000",
        ),
        (
            "recursion.rhai",
            "fn f(n) { f(n + 1) } f(0);",
            &[],
            "max-call-levels",
            "64",
        ),
        (
            "map-keys.rhai",
            "let m = #{}; let i = 0; loop { m[\"key number \" + i] = i; i += 1; }",
            &["--max-memory", "8M"],
            "max-memory",
            "8 MiB",
        ),
        (
            "records.rhai",
            "let i = 0; loop { emit(#{ n: i, text: \"an emitted record, kept until the end\" }); i += 1; }",
            &["--max-memory", "8M"],
            "max-memory",
            "8 MiB",
        ),
        (
            "captures.rhai",
            "let fs = []; let i = 0; loop { let t = \"captured \" + i; fs.push(|| t); i += 1; }",
            &["--max-memory", "8M"],
            "max-memory",
            "8 MiB",
        ),
        (
            "curried.rhai",
            "let f = |a, b| a; let fs = []; let i = 0; loop { fs.push(f.curry(\"curried \" + i)); i += 1; }",
            &["--max-memory", "8M"],
            "max-memory",
            "8 MiB",
        ),
        (
            "pad.rhai",
            "let a = []; a.pad(1000000000000, 0);",
            &[],
            "max-memory",
            "1 GiB",
        ),
        (
            "blob.rhai",
            "let b = blob(1000000000000);",
            &[],
            "max-memory",
            "1 GiB",
        ),
        (
            "string-pad.rhai",
            "let s = \"x\"; s.pad(1000000000000, '!');",
            &[],
            "max-memory",
            "1 GiB",
        ),
    ];
    for (name, body, extra, flag, value) in cases {
        let script = demo.script(name, &format!("{stage}{body}\n"));
        let ldif = demo.ldif_arg();
        let mut args = vec!["run", &script, "-d", &ldif, "--apply", "--yes"];
        let journal = demo.dir.path().join("journal.jsonl");
        let journal = journal.to_str().unwrap();
        args.extend(["--journal", journal]);
        args.extend(extra.iter());
        let out = demo.ocsh(&args);
        assert_broke(&out, &demo, &before, flag, value);
    }
}

fn import_chain(dir: &std::path::Path, modules: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 1..modules {
        std::fs::write(
            dir.join(format!("m{i}.rhai")),
            format!("import \"m{}\" as n;\nexport const v = n::v + 1;\n", i + 1),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join(format!("m{modules}.rhai")),
        "export const v = 1;\n",
    )
    .unwrap();
}

/// A 2,000-module import chain stops at the import depth under `run`, `check` and the
/// REPL (on a pipe); a 30-module chain loads with the limit raised.
#[test]
fn an_import_chain_of_2000_modules_stops_at_the_import_depth() {
    let demo = DemoCopy::new();
    let before = demo.bytes();
    let lib = demo.dir.path().join("lib");
    import_chain(&lib, 2000);
    let lib = lib.to_str().unwrap();
    let script = demo.script(
        "chain.rhai",
        "user(\"jdoe\").enable(pool(\"pool01\"));\nimport \"m1\" as m;\nprint(m::v);\n",
    );
    let ldif = demo.ldif_arg();
    let out = demo.ocsh(&[
        "run", &script, "-d", &ldif, "--lib", lib, "--apply", "--yes",
    ]);
    assert_broke(&out, &demo, &before, "max-import-depth", "16");
    let out = demo.ocsh(&["check", &script, "--lib", lib]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(
        out.stderr.contains("max-import-depth = 16"),
        "{}",
        out.stderr
    );
    let out = util::ocsh_piped(
        &["repl", "--lib", lib],
        "import \"m1\" as m;\nprint(m::v);\n",
    );
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(
        out.stderr.contains("max-import-depth = 16"),
        "{}",
        out.stderr
    );

    let short = demo.dir.path().join("short");
    import_chain(&short, 30);
    let short = short.to_str().unwrap();
    let out = demo.ocsh(&[
        "run",
        &demo.script("short.rhai", "import \"m1\" as m;\nprint(m::v);\n"),
        "--lib",
        short,
        "--max-import-depth",
        "40",
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.starts_with("30\n"), "{}", out.stdout);
}

/// The crash reproductions also end cleanly under `ocsh check` (which resolves
/// imports) and in the REPL on a pipe.
#[test]
fn the_repl_stops_a_closure_chain_with_the_limit_error() {
    let out = util::ocsh_piped(
        &["repl"],
        "let a = 1; for i in 0..100000 { let b = a; a = || b; }\n",
    );
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(
        out.stderr.contains("max-value-depth = 1000"),
        "{}",
        out.stderr
    );
}

/// With the default budget a script holds a map and an array of 200,000 users' names
/// and DNs (the old caps were 10,000 map entries and 50,000 array elements).
#[test]
fn the_default_budget_holds_200000_names_and_dns() {
    let demo = DemoCopy::new();
    let script = demo.script(
        "big.rhai",
        "let by_name = #{}; let dns = [];\n\
         for i in 0..200000 {\n\
           let name = \"user\" + i;\n\
           let dn = \"CN=\" + name + \",OU=Users,OU=Sales,DC=corp,DC=example,DC=com\";\n\
           by_name[name] = dn; dns.push(dn);\n\
         }\n\
         print(by_name.len()); print(dns.len()); print(by_name[\"user199999\"]);\n",
    );
    let out = demo.ocsh(&["run", &script]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.starts_with(
            "200000\n200000\nCN=user199999,OU=Users,OU=Sales,DC=corp,DC=example,DC=com\n"
        ),
        "{}",
        out.stdout
    );
}

/// Each limit: a script that breaks it at a low value gets the limit's message and exit
/// 3 with nothing written; the same script passes with the limit raised by the flag
/// and by the profile's `[limits]`, and a flag wins over the profile.
#[test]
fn each_limit_is_raised_by_its_flag_and_by_the_profile() {
    let demo = DemoCopy::new();
    let before = demo.bytes();
    let lib = demo.dir.path().join("lib");
    import_chain(&lib, 20);
    let deep_expr = format!("print({}1{});", "(".repeat(100), ")".repeat(100));
    let cases: Vec<(&str, String, &str, &str, &str)> = vec![
        (
            "max-operations",
            "let n = 0; for i in 0..20000 { n += i; } print(n);".into(),
            "10000",
            "10000",
            "1000000",
        ),
        (
            "max-memory",
            "let a = []; for i in 0..100000 { a.push(\"element \" + i); } print(a.len());".into(),
            "4M",
            "4 MiB",
            "256M",
        ),
        (
            "max-call-levels",
            "fn f(n) { if n == 0 { 0 } else { 1 + f(n - 1) } } print(f(100));".into(),
            "50",
            "50",
            "200",
        ),
        ("max-expr-depth", deep_expr, "64", "64", "256"),
        (
            "max-value-depth",
            "let a = []; for i in 0..3000 { a = [a]; } print(\"deep\");".into(),
            "1000",
            "1000",
            "5000",
        ),
        (
            "max-import-depth",
            "import \"m1\" as m; print(m::v);".into(),
            "16",
            "16",
            "32",
        ),
        (
            "max-modules",
            "import \"m15\" as a; import \"m16\" as b; import \"m17\" as c;\n\
             import \"m18\" as d; import \"m19\" as e; import \"m20\" as f; print(a::v);"
                .into(),
            "5",
            "5",
            "100",
        ),
    ];
    let ldif = demo.ldif_arg();
    let lib = lib.to_str().unwrap().to_string();
    let config = demo.dir.path().join("ocsh.toml");
    let cfg = config.to_str().unwrap().to_string();
    for (flag, body, low, shown, high) in &cases {
        let key = flag.replace('-', "_");
        let script = demo.script(
            &format!("{flag}.rhai"),
            &format!("user(\"jdoe\").enable(pool(\"pool01\"));\n{body}\n"),
        );
        let run = |extra: &[&str]| {
            let mut args = vec![
                "run",
                &script,
                "-d",
                &ldif,
                "--lib",
                &lib,
                "--apply",
                "--yes",
                "--journal",
            ];
            let journal = demo.dir.path().join("j.jsonl");
            let journal = journal.to_str().unwrap().to_string();
            let mut args: Vec<String> = args.drain(..).map(String::from).collect();
            args.push(journal);
            args.extend(extra.iter().map(|s| s.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            demo.ocsh(&args)
        };
        let flag_low = format!("--{flag}");
        let out = run(&[&flag_low, low]);
        assert_broke(&out, &demo, &before, flag, shown);
        let profile = |value: &str| {
            let value = if *flag == "max-memory" {
                format!("{value:?}")
            } else {
                value.to_string()
            };
            std::fs::write(&config, format!("[profiles.lab.limits]\n{key} = {value}\n")).unwrap();
        };
        profile(low);
        let out = run(&["--config", &cfg, "--profile", "lab"]);
        assert_broke(&out, &demo, &before, flag, shown);
        // Raised by the flag (over the profile's low value), then by the profile alone:
        // the plan is applied each time; the demo copy is restored in between.
        let out = run(&["--config", &cfg, "--profile", "lab", &flag_low, high]);
        assert_eq!(out.code, 0, "{flag} {high}: {}", out.transcript());
        std::fs::write(&demo.ldif, &before).unwrap();
        profile(high);
        let out = run(&["--config", &cfg, "--profile", "lab"]);
        assert_eq!(out.code, 0, "{key} = {high}: {}", out.transcript());
        std::fs::write(&demo.ldif, &before).unwrap();
    }
}

/// A limit above what the native stack was sized for is a usage error naming the range.
#[test]
fn a_limit_above_its_ceiling_is_refused() {
    let out = util::ocsh(&[
        "run",
        "scripts/seed-enable-user.rhai",
        "--max-call-levels",
        "100000",
    ]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("max-call-levels must be between 1 and 1000"),
        "{}",
        out.stderr
    );
}

/// `ocsh run --help` lists every limit with its default.
#[test]
fn run_help_lists_the_limits() {
    let out = util::ocsh(&["run", "--help"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    for flag in [
        "--max-operations",
        "--max-memory",
        "--max-call-levels",
        "--max-expr-depth",
        "--max-value-depth",
        "--max-import-depth",
        "--max-modules",
        "[limits]",
    ] {
        assert!(out.stdout.contains(flag), "{flag} in\n{}", out.stdout);
    }
}

/// `exit()` and `exit(0)` end the script and keep its plan; `exit(value)` with any
/// other value aborts: exit code 3, the value in the message, nothing written.
#[test]
fn exit_keeps_the_plan_only_for_no_value_or_zero() {
    let demo = DemoCopy::new();
    let before = demo.bytes();
    let ldif = demo.ldif_arg();
    let journal = demo.dir.path().join("j.jsonl");
    let journal = journal.to_str().unwrap();
    let stage = "user(\"jdoe\").enable(pool(\"pool01\"));\n";
    for (name, ending, want) in [
        (
            "abort.rhai",
            "exit(\"abort: bad input\");",
            "exit(\"abort: bad input\")",
        ),
        ("one.rhai", "exit(1);", "exit(1)"),
        ("nested.rhai", "fn f() { exit(false); } f();", "exit(false)"),
    ] {
        let script = demo.script(name, &format!("{stage}{ending}\nprint(\"not reached\");\n"));
        let out = demo.ocsh(&[
            "run",
            &script,
            "-d",
            &ldif,
            "--apply",
            "--yes",
            "--journal",
            journal,
        ]);
        assert_eq!(out.code, 3, "{name}: {}", out.transcript());
        assert!(out.stderr.contains(want), "{name}: {}", out.stderr);
        assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
        assert!(!out.stdout.contains("not reached"), "{}", out.stdout);
        assert_eq!(before, demo.bytes(), "{name} changed the file");
    }
    // A script cannot catch its own abort.
    let script = demo.script(
        "caught.rhai",
        &format!("{stage}try {{ exit(2); }} catch (e) {{ print(\"caught\"); }}\n"),
    );
    let out = demo.ocsh(&[
        "run",
        &script,
        "-d",
        &ldif,
        "--apply",
        "--yes",
        "--journal",
        journal,
    ]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(!out.stdout.contains("caught"), "{}", out.stdout);
    assert_eq!(before, demo.bytes());
    for (name, ending) in [("plain.rhai", "exit();"), ("zero.rhai", "exit(0);")] {
        std::fs::write(&demo.ldif, &before).unwrap();
        let script = demo.script(name, &format!("{stage}{ending}\nprint(\"not reached\");\n"));
        let out = demo.ocsh(&[
            "run",
            &script,
            "-d",
            &ldif,
            "--apply",
            "--yes",
            "--journal",
            journal,
        ]);
        assert_eq!(out.code, 0, "{name}: {}", out.transcript());
        assert!(!out.stdout.contains("not reached"), "{}", out.stdout);
        let after = String::from_utf8(demo.bytes()).unwrap();
        assert!(
            after.contains("msRTCSIP-UserEnabled: TRUE"),
            "{name}: jdoe not enabled"
        );
    }
}
