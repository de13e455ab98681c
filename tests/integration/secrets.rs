//! Secrets and the terminal, through the real binary: a config file's password is
//! refused without being echoed, directory values cannot paint the terminal, and a read
//! outside the grants is refused alike for files that exist and files that do not.

use crate::support::Test;

/// `password = ...` in a profile (quoted, unquoted, under another name) is refused with
/// exit 2, and the value appears in no output; the directory file is untouched.
fn a_config_password_is_refused_and_never_echoed() {
    for (name, line, says) in [
        (
            "quoted",
            "password = \"SuperSecret123\"",
            "`profiles.lab.password`: passwords are never read from a config file",
        ),
        ("unquoted", "password = SuperSecret123", "line 4:"),
        (
            "other-name",
            "bind_password = \"SuperSecret123\"",
            "`profiles.lab.bind_password`: passwords are never read",
        ),
        (
            "wrong-type",
            "password_env = 123456789",
            "`profiles.lab.password_env` must be text",
        ),
        ("broken-line", "password = \"SuperSecret123", "line 4:"),
    ] {
        let t = Test::new()
            .demo("forest.ldif")
            .file("p.rhai", "user(\"jdoe\").enable(pool(\"pool01\"));\n");
        let (forest, config) = (t.path("forest.ldif"), t.path("ocsh.toml"));
        let t = t.file(
            "ocsh.toml",
            format!(
                "default_profile = \"lab\"\n\n[profiles.lab]\n{line}\ndirectory = {forest:?}\n"
            ),
        );
        let script = t.path("p.rhai");
        let out = t
            .args(["run", &script, "--config", &config, "--apply", "--yes"])
            .code(2)
            .stderr_has(says)
            .unchanged("forest.ldif")
            .run();
        for secret in ["SuperSecret123", "123456789"] {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "{name}: the value was echoed:\n{}",
                out.transcript()
            );
        }
    }
}

/// Escape sequences and other control characters stored in directory values are shown
/// escaped in records tables and plans; the raw ESC byte never reaches the terminal.
fn control_characters_from_the_directory_are_shown_escaped() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let demo = ocsh::directory::demo::DEMO_LDIF
        .replacen(
            "displayName: Jane Doe",
            &format!(
                "displayName:: {}",
                b64("Jane\u{1b}[2J\u{1b}[1;1HAPPROVED\r")
            ),
            1,
        )
        .replacen(
            "proxyAddresses: SMTP:jane.doe@example.com",
            &format!(
                "proxyAddresses:: {}",
                b64("SMTP:jane\u{1b}[8m.doe@example.com\u{202e}")
            ),
            1,
        );
    let t = Test::new().file("forest.ldif", &demo).file(
        "p.rhai",
        "let u = user(\"jdoe\");\nemit(#{ user: u.sam, name: u.display_name });\nu.enable(pool(\"pool01\"));\n",
    );
    let (forest, script) = (t.path("forest.ldif"), t.path("p.rhai"));
    let out = t
        .args(["run", &script, "--directory", &forest])
        .stdout_has("Jane\\x1b[2J\\x1b[1;1HAPPROVED\\x0d")
        .stdout_has("SMTP:jane\\x1b[8m.doe@example.com\\u{202e}")
        .run();
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\r'),
        "{}",
        out.stdout
    );
}

/// read_csv outside the grants says the same for a file that exists and one that does
/// not; inside a granted folder a missing file is named as missing.
fn a_read_outside_the_grants_looks_the_same_for_existing_and_missing_files() {
    let t = Test::new()
        .file("granted/ok.csv", "user\njdoe\n")
        .file("elsewhere/exists.csv", "user\njdoe\n");
    let granted = t.path("granted");
    let exists = t.path("elsewhere/exists.csv");
    let missing = t.path("elsewhere/missing.csv");
    let inside_missing = t.path("granted/missing.csv");
    let escape = format!("{granted}/../elsewhere/exists.csv");
    let t = t.file(
        "r.rhai",
        "let r = []; for p in params.paths.split(\",\") { try { read_csv(p); r.push(\"read\"); } catch (e) { r.push(`${e}`); } }\nfor x in r { print(x); }\n",
    );
    let script = t.path("r.rhai");
    let paths = [
        exists.as_str(),
        missing.as_str(),
        inside_missing.as_str(),
        escape.as_str(),
    ]
    .join(",");
    let out = t
        .args([
            "run",
            &script,
            "--allow-read",
            &granted,
            "--param",
            &format!("paths={paths}"),
        ])
        .run();
    let lines: Vec<&str> = out.stdout.lines().take(4).collect();
    let refusal = |p: &str| format!("reading {p} is not allowed: grant it with --allow-read {p}");
    assert!(lines[0].contains(&refusal(&exists)), "{}", out.stdout);
    assert!(lines[1].contains(&refusal(&missing)), "{}", out.stdout);
    assert!(lines[2].contains("No such file"), "{}", out.stdout);
    assert!(lines[3].contains(&refusal(&escape)), "{}", out.stdout);
}

crate::tests![
    a_config_password_is_refused_and_never_echoed,
    control_characters_from_the_directory_are_shown_escaped,
    a_read_outside_the_grants_looks_the_same_for_existing_and_missing_files,
];
