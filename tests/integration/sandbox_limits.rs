//! The sandbox's limits through the real binary: every way a script used to crash or
//! exhaust the process ends with a clear error naming the limit and how to raise it,
//! exit code 3, and the directory file unchanged; each limit can be raised by its flag
//! and by the profile's `[limits]`; `exit()` keeps the plan, `exit(value)` aborts.

use crate::support::Test;
use crate::support::binary::Outcome;
use crate::support::harness::{Case, case};

/// The change each script stages before it breaks a limit, so "nothing written" means
/// something: with --apply, jdoe would be enabled.
const STAGE: &str = "user(\"jdoe\").enable(pool(\"pool01\"));\n";

/// What a broken limit's message must hold: the limit with its value, the flag and the
/// profile key, the place (file:line:col) and that nothing was written.
fn broke(t: Test, flag: &str, value: &str) -> Test {
    let key = flag.replace('-', "_");
    t.code(3)
        .stderr_has(format!("the script broke the limit {flag} = {value}"))
        .stderr_has(format!("raise it with --{flag}"))
        .stderr_has(format!("`{key} = ...` under [limits]"))
        .stderr_matches(r"(?m)^ocsh: \S+\.rhai:\d+:\d+: ")
        .stderr_has("nothing was written")
        .unchanged("forest.ldif")
}

/// A run of `script` with --apply on a copy of the demo forest.
fn apply(script: &str) -> Test {
    Test::new()
        .demo("forest.ldif")
        .file("script.rhai", format!("{STAGE}{script}\n"))
        .in_tmp()
        .args([
            "run",
            "script.rhai",
            "-d",
            "forest.ldif",
            "--apply",
            "--yes",
        ])
}

/// The reproductions of the nothing-lost issue that aborted the process (a stack
/// overflow, or the allocator giving up), each after staging a change and with
/// --apply: a clear error, exit 3, the file unchanged.
fn crashing_scripts_end_with_a_limit_error_and_write_nothing() -> Vec<Case> {
    let rows: Vec<(&str, &str, &[&str], &str, &str)> = vec![
        (
            "closure-chain-100000",
            "let a = 1; for i in 0..100000 { let b = a; a = || b; }",
            &[],
            "max-value-depth",
            "1000",
        ),
        (
            "closure-call-chain-100000",
            "let f = || 1; for i in 0..100000 { let g = f; f = || g.call(); } f.call();",
            &[],
            "max-value-depth",
            "1000",
        ),
        (
            "nested-arrays-50000",
            "let a = []; for i in 0..50000 { a = [a]; }",
            &[],
            "max-value-depth",
            "1000",
        ),
        (
            "curry-chain-100000",
            "let f = |x| x; for i in 0..100000 { let g = f; f = Fn(\"to_string\").curry(g); }",
            &[],
            "max-value-depth",
            "1000",
        ),
        (
            "recursion",
            "fn f(n) { f(n + 1) } f(0);",
            &[],
            "max-call-levels",
            "64",
        ),
        (
            "map-keys",
            "let m = #{}; let i = 0; loop { m[\"key number \" + i] = i; i += 1; }",
            &["--max-memory", "8M"],
            "max-memory",
            "8 MiB",
        ),
        (
            "emitted-records",
            "let i = 0; loop { emit(#{ n: i, text: \"an emitted record, kept until the end\" }); i += 1; }",
            &["--max-memory", "8M"],
            "max-memory",
            "8 MiB",
        ),
        (
            "closure-captures",
            "let fs = []; let i = 0; loop { let t = \"captured \" + i; fs.push(|| t); i += 1; }",
            &["--max-memory", "8M"],
            "max-memory",
            "8 MiB",
        ),
        (
            "curried-arguments",
            "let f = |a, b| a; let fs = []; let i = 0; loop { fs.push(f.curry(\"curried \" + i)); i += 1; }",
            &["--max-memory", "8M"],
            "max-memory",
            "8 MiB",
        ),
        (
            "array-pad-1e12",
            "let a = []; a.pad(1000000000000, 0);",
            &[],
            "max-memory",
            "1 GiB",
        ),
        (
            "blob-1e12",
            "let b = blob(1000000000000);",
            &[],
            "max-memory",
            "1 GiB",
        ),
        (
            "string-pad-1e12",
            "let s = \"x\"; s.pad(1000000000000, '!');",
            &[],
            "max-memory",
            "1 GiB",
        ),
    ];
    rows.into_iter()
        .map(|(name, body, extra, flag, value)| {
            case(name, move || {
                broke(apply(body).args(extra), flag, value).run();
            })
        })
        .collect()
}

/// `lib/m1.rhai` imports `m2` ... up to `m{modules}`.
fn import_chain(t: Test, folder: &str, modules: usize) -> Test {
    let mut t = t;
    for i in 1..modules {
        t = t.file(
            &format!("{folder}/m{i}.rhai"),
            format!("import \"m{}\" as n;\nexport const v = n::v + 1;\n", i + 1),
        );
    }
    t.file(
        &format!("{folder}/m{modules}.rhai"),
        "export const v = 1;\n",
    )
}

/// A 2,000-module import chain stops at the import depth under `run` (with --apply),
/// `check` and the REPL on a pipe; a 30-module chain loads with the limit raised.
fn an_import_chain_of_2000_modules_stops_at_the_import_depth() {
    let out = broke(
        import_chain(apply("import \"m1\" as m;\nprint(m::v);"), "lib", 2000)
            .args(["--lib", "lib"]),
        "max-import-depth",
        "16",
    )
    .run();
    let out = out
        .then()
        .in_tmp()
        .args(["check", "script.rhai", "--lib", "lib"])
        .code(3)
        .stderr_has("max-import-depth = 16")
        .run();
    let out = out
        .then()
        .in_tmp()
        .args(["repl", "--lib", "lib"])
        .stdin("import \"m1\" as m;\nprint(m::v);\n")
        .code(3)
        .stderr_has("max-import-depth = 16")
        .run();
    import_chain(out.then(), "short", 30)
        .file("short.rhai", "import \"m1\" as m;\nprint(m::v);\n")
        .in_tmp()
        .args([
            "run",
            "short.rhai",
            "--lib",
            "short",
            "--max-import-depth",
            "40",
        ])
        .stdout_has("30\n")
        .run();
}

/// The closure chain ends with the limit error in the REPL too, and `ocsh check`
/// compiles it (nothing runs there).
fn the_repl_stops_a_closure_chain_with_the_limit_error() {
    let chain = "let a = 1; for i in 0..100000 { let b = a; a = || b; }\n";
    let out = Test::new()
        .args(["repl"])
        .stdin(chain)
        .code(3)
        .stderr_has("max-value-depth = 1000")
        .run();
    out.then()
        .file("chain.rhai", chain)
        .in_tmp()
        .args(["check", "chain.rhai"])
        .stdout("ok: chain.rhai\n")
        .run();
}

/// With the default budget a script holds a map and an array of 200,000 users' names
/// and DNs (the old caps were 10,000 map entries and 50,000 array elements).
fn the_default_budget_holds_a_map_and_an_array_of_200000_names_and_dns() {
    Test::new()
        .file(
            "big.rhai",
            "let by_name = #{}; let dns = [];\n\
             for i in 0..200000 {\n\
               let name = \"user\" + i;\n\
               let dn = \"CN=\" + name + \",OU=Users,OU=Sales,DC=corp,DC=example,DC=com\";\n\
               by_name[name] = dn; dns.push(dn);\n\
             }\n\
             print(by_name.len()); print(dns.len()); print(by_name[\"user199999\"]);\n",
        )
        .in_tmp()
        .args(["run", "big.rhai"])
        .stdout_has("200000\n200000\nCN=user199999,OU=Users,OU=Sales,DC=corp,DC=example,DC=com\n")
        .run();
}

/// Each limit: a script that breaks it at a low value (by the flag, then by the
/// profile) gets the limit's message and exit 3 with nothing written; the same script
/// passes with the limit raised by the flag (over the profile's low value) and by the
/// profile alone.
fn each_limit_is_raised_by_its_flag_and_by_the_profile() -> Vec<Case> {
    let deep_expr = format!("print({}1{});", "(".repeat(100), ")".repeat(100));
    let rows: Vec<(&str, String, &str, &str, &str)> = vec![
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
    rows.into_iter()
        .map(|(flag, body, low, shown, high)| {
            case(flag, move || {
                let key = flag.replace('-', "_");
                let in_toml = |v: &str| {
                    if flag == "max-memory" {
                        format!("{v:?}")
                    } else {
                        v.to_string()
                    }
                };
                let profile = |v: &str| format!("[profiles.lab.limits]\n{key} = {}\n", in_toml(v));
                let run = |t: Test| {
                    import_chain(t, "lib", 20)
                        .file("script.rhai", format!("{STAGE}{body}\n"))
                        .in_tmp()
                        .args(["run", "script.rhai", "-d", "forest.ldif", "--lib", "lib"])
                        .args(["--apply", "--yes"])
                };
                let flag_arg = format!("--{flag}");
                let with_profile = ["--config", "ocsh.toml", "--profile", "lab"];
                broke(
                    run(Test::new().demo("forest.ldif")).args([flag_arg.as_str(), low]),
                    flag,
                    shown,
                )
                .run();
                broke(
                    run(Test::new()
                        .demo("forest.ldif")
                        .file("ocsh.toml", profile(low)))
                    .args(with_profile),
                    flag,
                    shown,
                )
                .run();
                let enabled = ["CN=Jane Doe,OU=Engineering,DC=example,DC=com"];
                run(Test::new()
                    .demo("forest.ldif")
                    .file("ocsh.toml", profile(low)))
                .args(with_profile)
                .args([flag_arg.as_str(), high])
                .changed_entries("forest.ldif", &enabled)
                .run();
                run(Test::new()
                    .demo("forest.ldif")
                    .file("ocsh.toml", profile(high)))
                .args(with_profile)
                .changed_entries("forest.ldif", &enabled)
                .run();
            })
        })
        .collect()
}

/// A limit above what the native stack was sized for is a usage error naming the range.
fn a_limit_above_its_ceiling_is_refused() {
    Test::new()
        .args([
            "run",
            "scripts/seed-enable-user.rhai",
            "--max-call-levels",
            "100000",
        ])
        .code(2)
        .stderr_has("max-call-levels must be between 1 and 1000")
        .run();
}

/// `ocsh run --help` lists every limit with its default and the profile table.
fn run_help_lists_the_limits() {
    let mut t = Test::new().args(["run", "--help"]);
    for want in [
        "--max-operations <N>",
        "[default: 1000000000]",
        "--max-memory <SIZE>",
        "[default: 1G]",
        "--max-call-levels <N>",
        "--max-expr-depth <N>",
        "--max-value-depth <N>",
        "--max-import-depth <N>",
        "--max-modules <N>",
        "[limits]",
    ] {
        t = t.stdout_has(want);
    }
    t.run();
}

/// `exit()` and `exit(0)` end the script and keep its plan; `exit(value)` with any
/// other value aborts: exit code 3, the value in the message, nothing written, and a
/// script cannot catch it.
fn exit_keeps_the_plan_only_for_no_value_or_zero() -> Vec<Case> {
    let mut rows: Vec<Case> = Vec::new();
    for (name, ending, want) in [
        (
            "string",
            "exit(\"abort: bad input\");",
            "exit(\"abort: bad input\")",
        ),
        ("one", "exit(1);", "exit(1)"),
        (
            "in-a-function",
            "fn f() { exit(false); } f();",
            "exit(false)",
        ),
        (
            "inside-try",
            "try { exit(2); } catch (e) { print(\"caught\"); }",
            "exit(2)",
        ),
    ] {
        rows.push(case(format!("aborts-{name}"), move || {
            let out = apply(&format!("{ending}\nprint(\"not reached\");"))
                .code(3)
                .stderr_has(want)
                .stderr_has("nothing was written")
                .unchanged("forest.ldif")
                .run();
            assert!(!out.stdout.contains("not reached"), "{}", out.transcript());
            assert!(!out.stdout.contains("caught"), "{}", out.transcript());
        }));
    }
    for (name, ending) in [("plain", "exit();"), ("zero", "exit(0);")] {
        rows.push(case(format!("keeps-{name}"), move || {
            let out: Outcome = apply(&format!("{ending}\nprint(\"not reached\");"))
                .changed_entries(
                    "forest.ldif",
                    &["CN=Jane Doe,OU=Engineering,DC=example,DC=com"],
                )
                .run();
            assert!(!out.stdout.contains("not reached"), "{}", out.transcript());
        }));
    }
    rows
}

crate::tests![
    an_import_chain_of_2000_modules_stops_at_the_import_depth,
    the_repl_stops_a_closure_chain_with_the_limit_error,
    the_default_budget_holds_a_map_and_an_array_of_200000_names_and_dns,
    a_limit_above_its_ceiling_is_refused,
    run_help_lists_the_limits;
    tables:
    crashing_scripts_end_with_a_limit_error_and_write_nothing,
    each_limit_is_raised_by_its_flag_and_by_the_profile,
    exit_keeps_the_plan_only_for_no_value_or_zero,
];
