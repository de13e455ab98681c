//! `ocsh test` through the binary: the project's own cases (one or more for every shipped
//! script, with expected plans as LDIF) pass, and the tester itself fails when it must: a
//! wrong expected plan (with a diff, then fixed by `--update`), a script that errors, bad
//! case files, and a JUnit file that counts the same cases.
use std::collections::BTreeSet;

use quick_xml::events::Event;

use crate::support::harness::{Case, case};
use crate::support::{Test, root};

const SEED: &str = include_str!("../../scripts/seed-enable-user.rhai");

/// A library folder with the seed script, as `tests/` cases expect it.
fn library() -> Test {
    Test::new()
        .in_tmp()
        .file("scripts/seed.rhai", SEED)
        .file("scripts/boom.rhai", "//! Fails.\nthrow \"boom\";\n")
}

const SEED_CASE: &str =
    "script = \"../scripts/seed.rhai\"\ndirectory = \"demo\"\nplan = \"seed.plan.ldif\"\n";

/// Every case under tests/cases passes through the binary, and every script of scripts/
/// has at least one; the fixtures are byte-identical afterwards.
fn the_project_cases_pass_and_cover_every_script() {
    let root = root();
    let cases = root.join("tests/cases");
    let mut covered = BTreeSet::new();
    let mut count = 0;
    for entry in std::fs::read_dir(&cases).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".case.toml") {
            continue;
        }
        count += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let script = table["script"].as_str().unwrap();
        assert!(table.contains_key("plan"), "{name} has no expected plan");
        covered.insert(script.rsplit('/').next().unwrap().to_string());
    }
    let shipped: BTreeSet<String> = std::fs::read_dir(root.join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rhai"))
        .collect();
    let missing: Vec<_> = shipped.difference(&covered).collect();
    assert!(missing.is_empty(), "scripts without a case: {missing:?}");
    let fixture = root.join("tests/cases/fixtures/broken-home-servers.ldif");
    let before = std::fs::read(&fixture).unwrap();
    let t = Test::new();
    let junit = t.path("junit.xml");
    let out = t
        .args(["test", "tests/cases", "--junit", &junit])
        .stdout_has(format!("{count} passed, 0 failed\n"))
        .stdout_matches(r"(?m)^PASS tests/cases/fix-ou-home-server@broken \(\d+ ms\)$")
        .run();
    assert!(!out.stdout.contains("FAIL"), "{}", out.transcript());
    assert_eq!(
        std::fs::read(&fixture).unwrap(),
        before,
        "the fixture changed"
    );
    assert_eq!(junit_counts(&out.text("junit.xml")), (count, 0, 0));
}

/// (tests, failures, errors) of a JUnit file, checked against its testcase elements.
fn junit_counts(xml: &str) -> (usize, usize, usize) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut cases, mut failures, mut errors) = (0, 0, 0);
    let mut declared = None;
    loop {
        match reader
            .read_event()
            .expect("the JUnit file is well-formed XML")
        {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| {
                    e.try_get_attribute(name)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().parse::<usize>().unwrap())
                };
                match e.name().as_ref() {
                    b"testsuite" => {
                        declared = Some((
                            attr("tests").unwrap(),
                            attr("failures").unwrap(),
                            attr("errors").unwrap(),
                        ))
                    }
                    b"testcase" => cases += 1,
                    b"failure" => failures += 1,
                    b"error" => errors += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!(declared, Some((cases, failures, errors)), "{xml}");
    (cases, failures, errors)
}

/// An expected plan naming pool02 where the script plans pool01: the case fails with a
/// unified diff and exit 1; `--update` rewrites the file and says so; then it passes.
fn a_wrong_expected_plan_fails_with_a_diff_until_update() {
    let first = library()
        .file("tests/seed.case.toml", SEED_CASE)
        .args(["test", "--update"])
        .stdout_has("updated tests/seed.plan.ldif\n")
        .stdout_has("1 passed, 0 failed\n")
        .run();
    let good = first.text("tests/seed.plan.ldif");
    assert!(good.contains("CN=pool01,"), "{good}");
    let wrong = good.replace("CN=pool01,", "CN=pool02,");
    let out = first
        .then()
        .in_tmp()
        .file("tests/seed.plan.ldif", &wrong)
        .args(["test"])
        .code(1)
        .stdout_has("FAIL tests/seed (")
        .stdout_has("plan differs from tests/seed.plan.ldif:")
        .stdout_has("--- tests/seed.plan.ldif\n")
        .stdout_has("+++ actual\n")
        .stdout_matches(
            r"(?m)^    -msRTCSIP-PrimaryHomeServer: CN=LC Services,CN=Microsoft,CN=pool02,",
        )
        .stdout_matches(
            r"(?m)^    \+msRTCSIP-PrimaryHomeServer: CN=LC Services,CN=Microsoft,CN=pool01,",
        )
        .stdout_has("0 passed, 1 failed\n")
        .run();
    // No colour codes on a pipe.
    assert!(!out.stdout.contains('\x1b'), "{}", out.transcript());
    let updated = out
        .then()
        .in_tmp()
        .args(["test", "--update"])
        .stdout_has("updated tests/seed.plan.ldif\n")
        .stdout_has("1 passed, 0 failed\n")
        .run();
    assert_eq!(updated.text("tests/seed.plan.ldif"), good);
    updated
        .then()
        .in_tmp()
        .args(["test"])
        .stdout_has("PASS tests/seed (")
        .stdout_has("1 passed, 0 failed\n")
        .run();
}

/// A script that throws fails its case (exit 3 where 0 was expected), with the error;
/// one that expects exit 3 passes; a plan the case names no file for fails.
fn a_case_whose_script_errors_fails() {
    library()
        .file(
            "tests/boom.case.toml",
            "script = \"../scripts/boom.rhai\"\ndirectory = \"demo\"\n",
        )
        .file(
            "tests/boom-expected.case.toml",
            "script = \"../scripts/boom.rhai\"\ndirectory = \"demo\"\nexit = 3\n",
        )
        .file(
            "tests/unnamed.case.toml",
            "script = \"../scripts/seed.rhai\"\ndirectory = \"demo\"\n",
        )
        .args(["test"])
        .code(1)
        .stdout_has("FAIL tests/boom (")
        .stdout_has("    expected exit 0, got 3\n")
        .stdout_has("boom")
        .stdout_has("PASS tests/boom-expected (")
        .stdout_has("FAIL tests/unnamed (")
        .stdout_has("add plan = \"unnamed.plan.ldif\"")
        .stdout_has("1 passed, 2 failed\n")
        .run();
}

/// The JUnit file parses and counts what the summary counts: one pass, one failure, one
/// case file that cannot be used (an error), and `--filter` runs only the matching ones.
fn the_junit_file_counts_the_same_cases() {
    let out = library()
        .file("tests/a-seed.case.toml", SEED_CASE)
        .file(
            "tests/b-boom.case.toml",
            "script = \"../scripts/boom.rhai\"\ndirectory = \"demo\"\n",
        )
        .file(
            "tests/c-bad.case.toml",
            "script = \"../scripts/seed.rhai\"\ndirectory = \"demo\"\nexpect = 1\n",
        )
        .args(["test", "--update", "--junit", "junit.xml"])
        .code(1)
        .stdout_has("1 passed, 2 failed\n")
        .run();
    assert_eq!(junit_counts(&out.text("junit.xml")), (3, 1, 1));
    let xml = out.text("junit.xml");
    assert!(xml.contains("expected exit 0, got 3"), "{xml}");
    let filtered = out
        .then()
        .in_tmp()
        .args(["test", "--filter", "seed", "--junit", "junit.xml"])
        .stdout_has("1 passed, 0 failed\n")
        .run();
    assert!(
        !filtered.stdout.contains("boom"),
        "{}",
        filtered.transcript()
    );
    assert_eq!(junit_counts(&filtered.text("junit.xml")), (1, 0, 0));
}

/// `after`: the plan applied to a copy matches; the fixture itself is never written, and
/// an `after` that differs fails with a diff.
fn after_is_checked_on_a_copy_and_the_fixture_never_changes() {
    let first = library()
        .demo("forest.ldif")
        .file(
            "tests/seed.case.toml",
            "script = \"../scripts/seed.rhai\"\ndirectory = \"../forest.ldif\"\nplan = \"seed.plan.ldif\"\nafter = \"seed.after.ldif\"\n",
        )
        .args(["test", "--update"])
        .stdout_has("updated tests/seed.after.ldif\n")
        .unchanged("forest.ldif")
        .run();
    let after = first.text("tests/seed.after.ldif");
    assert!(
        after.contains("msRTCSIP-PrimaryUserAddress: sip:jane.doe@example.com"),
        "{after}"
    );
    let stale = after.replace(
        "msRTCSIP-PrimaryUserAddress: sip:jane.doe@example.com",
        "msRTCSIP-PrimaryUserAddress: sip:jd@example.com",
    );
    first
        .then()
        .in_tmp()
        .file("tests/seed.after.ldif", stale)
        .args(["test"])
        .code(1)
        .stdout_has("after differs from tests/seed.after.ldif:")
        .stdout_has("-msRTCSIP-PrimaryUserAddress: sip:jd@example.com")
        .unchanged("forest.ldif")
        .run();
}

/// Bad case files: each an error naming the file and line, never a pass.
fn bad_case_files_name_file_and_line() -> Vec<Case> {
    // A script that exists, but outside the library folder (the test's own folder).
    let outside = root().join("scripts/seed-enable-user.rhai");
    let outside = outside.display().to_string();
    // (row name, case file, other files, what stdout must say)
    type Row = (
        &'static str,
        String,
        &'static [(&'static str, &'static str)],
        String,
    );
    let rows: Vec<Row> = vec![
        (
            "unknown-key",
            "script = \"../scripts/seed.rhai\"\ndirectory = \"demo\"\nplna = \"x.ldif\"\n".into(),
            &[],
            "tests/x.case.toml:3: unknown field `plna`".into(),
        ),
        (
            "missing-fixture",
            "script = \"../scripts/seed.rhai\"\ndirectory = \"nope.ldif\"\n".into(),
            &[],
            "tests/x.case.toml:2: missing fixture \"nope.ldif\"".into(),
        ),
        (
            "script-outside-the-library",
            format!("directory = \"demo\"\nscript = \"{outside}\"\n"),
            &[],
            format!("tests/x.case.toml:2: script \"{outside}\" is outside the library folder"),
        ),
        (
            "plan-not-ldif",
            "script = \"../scripts/seed.rhai\"\ndirectory = \"demo\"\nplan = \"p.ldif\"\n".into(),
            &[(
                "tests/p.ldif",
                "version: 1\n\ndn: CN=x,DC=example,DC=com\nchangetype: modify\nreplace: cn\ncn: y\n",
            )],
            "tests/p.ldif:5: not a valid LDIF plan: the 'replace: cn' operation is not ended by a '-' line".into(),
        ),
        (
            "records-not-json",
            "script = \"../scripts/seed.rhai\"\ndirectory = \"demo\"\nrecords = \"r.jsonl\"\n".into(),
            &[("tests/r.jsonl", "{\"a\": 1}\n{oops\n")],
            "tests/r.jsonl:2: not a JSON record".into(),
        ),
    ];
    rows.into_iter()
        .map(|(name, case_text, extra, message)| {
            case(name, move || {
                let mut t = library().file("tests/x.case.toml", case_text);
                for (f, text) in extra {
                    t = t.file(f, text);
                }
                let out = t
                    .args(["test"])
                    .code(1)
                    .stdout_has("FAIL tests/x (")
                    .stdout_has(message)
                    .stdout_has("0 passed, 1 failed\n")
                    .run();
                assert!(!out.stdout.contains("PASS"), "{}", out.transcript());
            })
        })
        .collect()
}

/// No case found is a usage error, not an empty success.
fn no_cases_is_an_error() {
    library()
        .file("tests/seed.case.toml", SEED_CASE)
        .args(["test", "--filter", "nothing-matches"])
        .code(2)
        .stderr_has("no *.case.toml under tests matching --filter \"nothing-matches\"")
        .run();
}

crate::tests![
    the_project_cases_pass_and_cover_every_script,
    a_wrong_expected_plan_fails_with_a_diff_until_update,
    a_case_whose_script_errors_fails,
    the_junit_file_counts_the_same_cases,
    after_is_checked_on_a_copy_and_the_fixture_never_changes,
    no_cases_is_an_error;
    tables: bad_case_files_name_file_and_line,
];
