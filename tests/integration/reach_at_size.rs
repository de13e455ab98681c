//! The declared reach at the size admins run it: a script that loops page by page over
//! 2,600 users (more than five pages), looks each one up again and stages a change, under
//! a reach that allows it (it plans and applies all 2,600) and under three that it
//! exceeds (`@max 2599`, an `@scope` elsewhere, an `@writes` without the attribute):
//! each refused with exit 4 and the directory unchanged, on the embedded directory and
//! on OpenLDAP.
use ocsh::directory::{Entry, ldif};
use ocsh::ocs::dn::Dn;

use crate::support::fixtures::{DEMO, LEFTOVERS};
use crate::support::harness::{own_server, plain};
use crate::support::{Server, Test};

const USERS: usize = 2600;
const OU: &str = "OU=Reach,DC=example,DC=com";
const POOL02: &str = "CN=LC Services,CN=Microsoft,CN=pool02,CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com";

/// OU=Reach with `USERS` users enabled on pool02, federation off.
fn users_ldif() -> String {
    let mut out =
        format!("dn: {OU}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Reach\n");
    for i in 1..=USERS {
        let sam = format!("r{i:05}");
        out.push_str(&format!(
            "\ndn: CN=Reach {i:05},{OU}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: user\ncn: Reach {i:05}\n\
             sn: Reach\nsAMAccountName: {sam}\nmail: {sam}@example.com\n\
             msRTCSIP-UserEnabled: TRUE\nmsRTCSIP-PrimaryUserAddress: sip:{sam}@example.com\n\
             msRTCSIP-PrimaryHomeServer: {POOL02}\nmsRTCSIP-OptionFlags: 256\n"
        ));
    }
    out
}

/// Every user of the OU, page by page, looked up again inside the loop, gets federation.
const BODY: &str = r#"
for u in users_in(params.ou, "") {
    let again = user(u.dn);
    again.federation = true;
}
"#;

/// (name, header lines, what the refusal must say; empty: within the reach). The
/// refused rows come first, so each finds the directory untouched; the last one applies.
const ROWS: [(&str, &str, &[&str]); 4] = [
    (
        "max",
        "//! @writes federation\n//! @max 2599\n",
        &["2600 entries changed, more than @max 2599"],
    ),
    (
        "scope",
        "//! @writes federation\n//! @scope OU=Sales,DC=example,DC=com\n",
        &[
            "ou=reach,dc=example,dc=com: outside every @scope",
            "... and 2580 more",
        ],
    ),
    (
        "writes",
        "//! @writes enabled, flags\n",
        &[
            "ou=reach,dc=example,dc=com: writes msRTCSIP-FederationEnabled (not in @writes)",
            "... and 2580 more",
        ],
    ),
    (
        "within",
        "//! @writes federation\n//! @scope OU=Reach,DC=example,DC=com\n//! @max 2600\n",
        &[],
    ),
];

/// Runs the rows against a directory: `args` reach it, `federated` counts the users of
/// the OU with federation on (independently of ocsh's directory layer).
fn rows(args: &[String], password: Option<&str>, federated: &dyn Fn() -> usize) {
    assert_eq!(federated(), 0, "federation is off before the runs");
    for (name, header, refusal) in ROWS {
        let t = Test::new().file("reach.rhai", format!("//! Reach ({name}).\n{header}{BODY}"));
        let (script, journal) = (t.path("reach.rhai"), t.path("journal.jsonl"));
        let mut t = t
            .args(["run", &script, "--param", &format!("ou={OU}")])
            .args(args)
            .args(["--journal", &journal, "--apply", "--yes"]);
        if let Some(pw) = password {
            t = t.env("OCSH_PASSWORD", pw);
        }
        if refusal.is_empty() {
            t.stdout_has(format!("change(s) to {USERS} entries"))
                .stdout_has("Declared reach: writes msRTCSIP-FederationEnabled")
                .stdout_has(format!("Applied {USERS} of {USERS} entries"))
                .run();
            assert_eq!(federated(), USERS, "{name}: every user applied");
            continue;
        }
        t = t
            .code(4)
            .stdout_has(format!("change(s) to {USERS} entries"))
            .stderr_has("the plan goes beyond the script's declared reach")
            .stderr_has("refused: nothing was written");
        // Servers give DNs in their own case.
        for r in refusal {
            t = t.stderr_matches(&format!("(?i){}", regex::escape(r)));
        }
        let out = t.run();
        assert!(
            !out.stdout.contains("Applied"),
            "{name}: {}",
            out.transcript()
        );
        assert!(
            !out.path("journal.jsonl").exists(),
            "{name}: a journal was written"
        );
        assert_eq!(federated(), 0, "{name}: nothing may have changed");
    }
}

fn in_ou(e: &Entry) -> bool {
    let ou = Dn::parse(OU).unwrap();
    Dn::parse(&e.dn).is_ok_and(|d| d.is_within(&ou) && d != ou)
}

fn embedded_2600_users() {
    let t = Test::new().file("forest.ldif", format!("{DEMO}\n{}", users_ldif()));
    let forest = t.path("forest.ldif");
    let path = std::path::PathBuf::from(&forest);
    let federated = || {
        let text = std::fs::read_to_string(&path).unwrap();
        ldif::parse(&text, "forest.ldif")
            .unwrap()
            .iter()
            .filter(|e| in_ou(e) && e.get("msRTCSIP-FederationEnabled") == ["TRUE"])
            .count()
    };
    rows(&["--directory".into(), forest], None, &federated);
    drop(t);
}

/// OpenLDAP with the child-domain leftovers, the demo forest and OU=Reach.
fn start_openldap() -> Result<Server, String> {
    let server = Server::openldap()?;
    server.load("child-domain-leftovers.ldif", LEFTOVERS);
    server.load("demo-forest.ldif", DEMO);
    let r = server.load("reach.ldif", &users_ldif());
    if !r.refused.is_empty() || r.added != USERS + 1 {
        return Err(format!("OU=Reach did not load: {}", r.summary));
    }
    Ok(server)
}

fn openldap_2600_users(server: &Server) {
    let mut args = vec![
        "--directory".to_string(),
        server.env.ldap_url.clone(),
        "--bind-dn".into(),
        server.env.bind_dn.clone(),
    ];
    if let Some(ca) = &server.env.ca_cert {
        args.extend([
            "--starttls".into(),
            "--ca-file".into(),
            ca.display().to_string(),
        ]);
    }
    let federated = || {
        server
            .ldapsearch(OU, "one", "(msRTCSIP-FederationEnabled=TRUE)", &["cn"])
            .len()
    };
    rows(&args, Some(&server.env.password), &federated);
}

pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
    vec![
        plain(
            module_path!(),
            "embedded_2600_users_within_and_beyond_their_reach",
            embedded_2600_users,
        ),
        own_server(
            module_path!(),
            "openldap",
            "openldap_2600_users_within_and_beyond_their_reach",
            start_openldap,
            openldap_2600_users,
        ),
    ]
}
