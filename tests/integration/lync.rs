//! The Lync-era user attributes through the real binary: each refusal exits 4 with the
//! rule's message and leaves the directory file byte for byte as it was; a good write is
//! planned like the rest and applied.

use crate::support::Test;
use crate::support::harness::{Case, case};

/// One script per refused value, with the text its message must hold.
fn lync_refusals_exit_4_and_leave_the_file_unchanged() -> Vec<Case> {
    [
        ("line-with-spaces", r#"let p = user("priya.raman"); p.line = "tel:+1 555 0100";"#, "no spaces"),
        ("line-national-number", r#"let p = user("priya.raman"); p.line = "555-0100";"#, "tel:+ and the E.164 number"),
        ("line-letters-in-extension", r#"let p = user("priya.raman"); p.line = "tel:+15550100;ext=12a";"#, "the extension after ;ext= must be digits"),
        ("line-bad-sip", r#"let p = user("priya.raman"); p.line = "sip:no domain";"#, "must be a SIP address"),
        ("archiving-retired-bit-1", r#"let p = user("priya.raman"); p.archiving = 1;"#, "bits 1 and 2 are retired"),
        ("archiving-retired-bit-2", r#"let p = user("priya.raman"); p.archiving = 6;"#, "bits 1 and 2 are retired"),
        ("archiving-undefined-bit", r#"let p = user("priya.raman"); p.archiving = 32;"#, "only bits 4 (archive internal) and 8"),
        ("deployment-locator-read-only", r#"user("priya.raman").set_attr("msRTCSIP-DeploymentLocator", "sipfed.online.lync.com");"#, "read-only"),
        ("user-policies-read-only", r#"user("priya.raman").set_attr("msRTCSIP-UserPolicies", "0=1");"#, "read-only"),
    ]
    .into_iter()
    .map(|(name, script, why)| {
        case(name, move || {
            let t = Test::new().demo("forest.ldif").file("s.rhai", script);
            let (s, forest) = (t.path("s.rhai"), t.path("forest.ldif"));
            t.args(["run", &s, "--directory", &forest, "--apply", "--yes"])
                .code(4)
                .stderr_has(why)
                .stderr_has("refused: nothing was written")
                .unchanged("forest.ldif")
                .run();
        })
    })
    .collect()
}

/// A line with an extension, the archiving bits and federation are written to exactly
/// the one entry.
fn lync_writes_through_the_binary_change_exactly_the_entry() {
    let script = r#"let p = user("priya.raman");
        p.line = "tel:+15551230001;ext=4001"; p.archiving = 8; p.federation = true;"#;
    let t = Test::new().demo("forest.ldif").file("s.rhai", script);
    let (s, forest) = (t.path("s.rhai"), t.path("forest.ldif"));
    let o = t
        .args(["run", &s, "--directory", &forest, "--apply", "--yes"])
        .stdout_has("msRTCSIP-Line")
        .stdout_has("tel:+15551230001 → tel:+15551230001;ext=4001")
        .stdout_has("msRTCSIP-ArchivingEnabled")
        .stdout_has("Applied 1 of 1 entry")
        .changed_entries(
            "forest.ldif",
            &["CN=Priya Raman,OU=Sales,DC=example,DC=com"],
        )
        .run();
    let text = o.text("forest.ldif");
    assert!(
        text.contains("msRTCSIP-Line: tel:+15551230001;ext=4001"),
        "{text}"
    );
    assert!(text.contains("msRTCSIP-ArchivingEnabled: 8"), "{text}");
}

crate::tests![
    lync_writes_through_the_binary_change_exactly_the_entry;
    tables: lync_refusals_exit_4_and_leave_the_file_unchanged,
];
