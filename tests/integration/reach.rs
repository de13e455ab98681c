//! A script's declared reach through the binary: `ocsh check --strict` wants one, a
//! malformed `@writes`/`@scope`/`@max` names its line, an imported module runs under the
//! entry script's reach, and `ocsh test` sees the refusal. The refusal on each backend is
//! `behaviour::a_plan_beyond_its_declared_reach_is_refused`.
use crate::support::Test;

const GRACE: &str = "CN=Grace Hopkins,OU=Support,DC=example,DC=com";

/// Every shipped script declares its reach, so `--strict` passes on scripts/; a script
/// without one fails it (and passes without `--strict`).
fn check_strict_needs_a_declared_reach() {
    let root = crate::support::root();
    let mut scripts: Vec<String> = std::fs::read_dir(root.join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .map(|p| p.display().to_string())
        .collect();
    scripts.sort();
    Test::new()
        .arg("check")
        .arg("--strict")
        .args(&scripts)
        .stdout_has("ok: ")
        .run();
    let t = Test::new().file("open.rhai", "//! Touches anything.\nlet x = 1;\n");
    let open = t.path("open.rhai");
    let out = t
        .args(["check", "--strict", &open])
        .code(3)
        .stderr_has("open.rhai: declares no reach: --strict needs @writes")
        .run();
    out.then().args(["check", &open]).stdout_has("ok: ").run();
}

/// A malformed reach line stops the run before the directory is opened, naming the line.
fn malformed_reach_lines_name_their_line() {
    for (header, message) in [
        (
            "//! @writes mail\n",
            "header line 2: @writes \"mail\" is neither",
        ),
        (
            "//! @writes msRTCSIP-PrimaryHomeSever\n",
            "did you mean msRTCSIP-PrimaryHomeServer?",
        ),
        (
            "//! @scope OU=Sales,,DC=x\n",
            "header line 2: @scope: invalid DN",
        ),
        ("//! @max 0\n", "header line 2: @max \"0\""),
    ] {
        let t = Test::new().file("bad.rhai", format!("//! Bad.\n{header}let x = 1;\n"));
        let bad = t.path("bad.rhai");
        t.args(["run", &bad]).code(2).stderr_has(message).run();
    }
}

/// A module imported from a --lib folder stages a change the entry script did not
/// declare: refused (exit 4), whatever the module itself declares.
fn an_imported_module_runs_under_the_entry_scripts_reach() {
    let t = Test::new()
        .file(
            "lib/team/fed.rhai",
            "//! @writes federation\nfn on(u) { u.federation = true; }\n",
        )
        .file(
            "entry.rhai",
            format!(
                "//! Entry.\n//! @writes enabled\nimport \"team/fed\" as fed;\nfed::on(user({GRACE:?}));\n"
            ),
        );
    let (lib, entry) = (t.path("lib"), t.path("entry.rhai"));
    let out = t
        .args(["run", &entry, "--lib", &lib])
        .code(4)
        .stderr_has(format!(
            "{GRACE}: writes msRTCSIP-FederationEnabled (not in @writes)"
        ))
        .run();
    // Declared by the entry script, the same import plans.
    out.then()
        .file(
            "entry.rhai",
            format!(
                "//! Entry.\n//! @writes federation\nimport \"team/fed\" as fed;\nfed::on(user({GRACE:?}));\n"
            ),
        )
        .args(["run", &entry, "--lib", &lib])
        .stdout_has("Declared reach: writes msRTCSIP-FederationEnabled")
        .run();
}

/// `ocsh test` runs cases under the script's reach: a case may expect the refusal.
fn a_case_can_expect_the_refusal() {
    Test::new()
        .in_tmp()
        .file(
            "scripts/wide.rhai",
            format!("//! Wide.\n//! @max 1\nlet a = user({GRACE:?});\na.federation = true;\nlet b = user(\"jdoe\");\nb.federation = true;\n"),
        )
        .file(
            "tests/wide.case.toml",
            "script = \"../scripts/wide.rhai\"\ndirectory = \"demo\"\nexit = 4\n",
        )
        .file(
            "tests/wide-unexpected.case.toml",
            "script = \"../scripts/wide.rhai\"\ndirectory = \"demo\"\n",
        )
        .args(["test"])
        .code(1)
        .stdout_has("PASS tests/wide (")
        .stdout_has("FAIL tests/wide-unexpected (")
        .stdout_has("expected exit 0, got 4")
        .stdout_has("2 entries changed, more than @max 1")
        .stdout_has("1 passed, 1 failed\n")
        .run();
}

/// `ocsh run SCRIPT --help` shows the declared reach.
fn help_shows_the_reach() {
    Test::new()
        .args(["run", "scripts/seed-enable-user.rhai", "--help"])
        .stdout_has("\nReach: writes msRTCSIP-UserEnabled, msRTCSIP-PrimaryUserAddress, proxyAddresses, msRTCSIP-PrimaryHomeServer, msRTCSIP-OptionFlags; at most 1 entry\n")
        .run();
}

crate::tests![
    check_strict_needs_a_declared_reach,
    malformed_reach_lines_name_their_line,
    an_imported_module_runs_under_the_entry_scripts_reach,
    a_case_can_expect_the_refusal,
    help_shows_the_reach,
];
