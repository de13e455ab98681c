//! One behaviour suite, three backends: the embedded LDIF directory, OpenLDAP and Samba AD.
//!
//! Every case of [`cases`] is a trial of its own on each backend, named
//! `backend::behaviour::case`. The first trial of a backend builds its fixture (the demo
//! forest, an OCS 2007-layout pool `pool07`, and the users of OU=Bulk); its cases then run
//! one at a time on it, and the last one stops the server. A case reads back what it
//! applied through a fresh workspace, and on the servers also with `ldapsearch`.
//!
//! `OCSH_TEST_BACKENDS=embedded,openldap,samba` (the default) selects the backends. A
//! backend that is not selected or cannot start fails its trials under `CI=true` and
//! shows them as ignored otherwise (`support::harness`). The servers come from `tests/servers/`:
//! OpenLDAP on free loopback ports in a temp dir; Samba (root, ports 389/636) in
//! `target/tmp/ocsh-samba`, restored from its snapshot on every run.
use std::path::PathBuf;
use std::time::Duration;

use ocsh::directory::ldap::LdapOptions;
use ocsh::directory::{AttrChange, Directory, DirectorySpec, EmbeddedDirectory, Entry, ldif};
use ocsh::ocs::PoolLayout;
use ocsh::ocs::dn::{normalize, same_dn};
use ocsh::plan::{ApplyOutcome, ApplyReport, PlanError, Workspace};
use ocsh::script::{Sandbox, ScriptError, ScriptErrorKind, Session};

use crate::support;
use crate::support::fixtures::{self, BULK_ON_POOL02, BULK_OU, BULK_USERS, r2_home};
use crate::support::{Server, ServerKind, Test, say};

/// Bounds every directory operation of a workspace.
const TIMEOUT: Duration = Duration::from_secs(60);

const JDOE: &str = "CN=Jane Doe,OU=Engineering,DC=example,DC=com";
const TBECKER: &str = "CN=Thomas Becker,OU=Sales,DC=example,DC=com";
const PATRICK: &str = "CN=Patrick Doyle,OU=Leavers,DC=example,DC=com";
const GRACE: &str = "CN=Grace Hopkins,OU=Support,DC=example,DC=com";
const EMILY: &str = "CN=Emily Carter,OU=Engineering,DC=example,DC=com";
const MAXIMILIAN: &str = "CN=Maximilian Featherstonehaugh,OU=Sales,DC=example,DC=com";
const IVAN: &str = "CN=Ivan Kowalski,OU=Migrated,DC=example,DC=com";
const BIANCA: &str = "CN=Bianca Costa,OU=Migrated,DC=example,DC=com";
const COLIN: &str = "CN=Colin Fraser,OU=Leavers,DC=example,DC=com";
const MARCUS: &str = "CN=Marcus Lee,OU=Engineering,DC=example,DC=com";
const MATEO: &str = "CN=Mateo Rossi,OU=Fabrikam,DC=example,DC=com";
const NADIA: &str = "CN=Nadia Haddad,OU=Support,DC=example,DC=com";
const JEROME: &str = "CN=J\u{e9}r\u{f4}me M\u{fc}ller,OU=Engineering,DC=example,DC=com";
const DIANA: &str = "CN=Diana Markovic,OU=Leavers,DC=example,DC=com";
const YUKI: &str = "CN=Yuki Sato,OU=Fabrikam,DC=example,DC=com";
const KWAME: &str = "CN=Kwame Mensah,OU=Fabrikam,DC=example,DC=com";
const SOPHIE: &str = "CN=Sophie Martin,OU=Engineering,DC=example,DC=com";
const HENRIK: &str = "CN=Henrik Larsen,OU=Fabrikam,DC=example,DC=com";
const JANE_DOE2: &str = "CN=Doe\\, Jane,OU=Sales,DC=example,DC=com";

// ---------------------------------------------------------------------------------------
// The backend under test
// ---------------------------------------------------------------------------------------

enum Store {
    /// An LDIF file, opened afresh by every workspace.
    Embedded {
        path: PathBuf,
        _dir: tempfile::TempDir,
    },
    /// A running lab server (stopped when dropped).
    Server(Box<Server>),
}

/// A loaded backend: opens fresh workspaces and sessions on it, reads entries
/// independently of ocsh's directory layer, and changes them behind ocsh's back.
pub(crate) struct Backend {
    name: &'static str,
    store: Store,
}

impl Backend {
    /// The demo forest + pool07 + OU=Bulk in an LDIF file in a temp dir.
    fn embedded() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("forest.ldif");
        let text = format!(
            "{}\n{}\n{}",
            fixtures::DEMO,
            fixtures::pool07(),
            fixtures::bulk()
        );
        std::fs::write(&path, text).unwrap();
        Backend {
            name: "embedded",
            store: Store::Embedded { path, _dir: dir },
        }
    }

    /// Loads the fixture into a freshly started server: the child-domain leftovers, then
    /// the demo forest (all but the two users servers refuse by design), then pool07 and
    /// OU=Bulk in one ldapadd.
    fn server(name: &'static str, server: Server) -> Backend {
        let leftovers = match server.kind {
            ServerKind::OpenLdap => fixtures::LEFTOVERS.to_string(),
            ServerKind::Samba => fixtures::leftovers_for_samba(),
        };
        let r = server.load("child-domain-leftovers.ldif", &leftovers);
        assert!(r.refused.is_empty(), "leftovers refused: {r:?}");
        let r = server.load("demo-forest.ldif", fixtures::DEMO);
        let mut expected: Vec<String> = fixtures::REFUSED_BY_SERVERS
            .iter()
            .map(|d| normalize(d).unwrap())
            .collect();
        expected.sort();
        assert_eq!(r.refused_dns(), expected, "demo forest: {r:?}");
        let r = server.load(
            "pool07-and-bulk.ldif",
            &format!("{}\n{}", fixtures::pool07(), fixtures::bulk()),
        );
        assert!(r.refused.is_empty(), "pool07/OU=Bulk refused: {r:?}");
        // The setup scripts made the OCS 2007 containers (System, Microsoft, RTC Service,
        // Pools) already; everything else is new.
        assert_eq!(
            (r.existed, r.added),
            (4, 3 + 1 + fixtures::BULK_USERS),
            "{}",
            r.summary
        );
        Backend {
            name,
            store: Store::Server(Box::new(server)),
        }
    }

    fn lab(&self) -> Option<&Server> {
        match &self.store {
            Store::Server(s) => Some(s),
            Store::Embedded { .. } => None,
        }
    }

    /// A fresh workspace: the embedded file read anew, or a new LDAP connection.
    fn workspace(&self) -> Workspace {
        let ws = match &self.store {
            Store::Embedded { path, .. } => Workspace::connect(
                &DirectorySpec::Ldif(path.clone()),
                &LdapOptions::default(),
                TIMEOUT,
            ),
            Store::Server(s) => Workspace::connect(
                &DirectorySpec::Ldap(s.env.ldap_url.clone()),
                &s.env.ldap_options(),
                TIMEOUT,
            ),
        };
        ws.unwrap_or_else(|e| panic!("{}: cannot open a workspace: {e}", self.name))
    }

    /// A script session on a fresh workspace.
    fn session(&self) -> Session {
        Session::new(
            self.workspace(),
            rhai::Map::new(),
            &Sandbox::default(),
            Box::new(std::io::sink()),
        )
    }

    /// A user as a fresh workspace reads it.
    fn user(&self, id: &str) -> ocsh::ocs::OcsUser {
        self.workspace()
            .find_user(id)
            .unwrap_or_else(|e| panic!("{}: {id}: {e}", self.name))
    }

    /// An entry read without ocsh's directory layer: `ldapsearch` on a server, the LDIF
    /// file parsed from disk for the embedded backend.
    /// The `ocsh run` arguments that reach this backend, and the password for
    /// OCSH_PASSWORD on a server.
    fn binary_args(&self) -> (Vec<String>, Option<String>) {
        match &self.store {
            Store::Embedded { path, .. } => {
                (vec!["--directory".into(), path.display().to_string()], None)
            }
            Store::Server(s) => {
                let mut a = vec![
                    "--directory".into(),
                    s.env.ldap_url.clone(),
                    "--bind-dn".into(),
                    s.env.bind_dn.clone(),
                ];
                if let Some(ca) = &s.env.ca_cert {
                    a.extend([
                        "--starttls".into(),
                        "--ca-file".into(),
                        ca.display().to_string(),
                    ]);
                }
                (a, Some(s.env.password.clone()))
            }
        }
    }

    fn raw(&self, dn: &str) -> Entry {
        match &self.store {
            Store::Server(s) => s
                .entry(dn)
                .unwrap_or_else(|| panic!("{}: ldapsearch finds no {dn}", self.name)),
            Store::Embedded { path, .. } => {
                let text = std::fs::read_to_string(path).unwrap();
                ldif::parse(&text, "forest.ldif")
                    .unwrap()
                    .into_iter()
                    .find(|e| same_dn(&e.dn, dn))
                    .unwrap_or_else(|| panic!("the LDIF file has no {dn}"))
            }
        }
    }

    /// Replaces `attr` of `dn` behind ocsh's back: `ldapmodify` on a server; for the
    /// embedded backend a second `EmbeddedDirectory` on the same file, modify, commit.
    fn behind_back(&self, dn: &str, attr: &str, values: &[&str]) {
        match &self.store {
            Store::Server(s) => s.replace(dn, attr, values),
            Store::Embedded { path, .. } => support::replace_in_ldif(path, dn, attr, values),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

/// Runs script code, panicking with the error if it fails; the value as text.
fn run(s: &mut Session, code: &str) -> String {
    match s.run("<case>", code) {
        Ok(v) => ocsh::script::values::to_text(&v),
        Err(e) => panic!("{code}\n  failed: {e}"),
    }
}

/// Runs script code that must fail.
fn run_err(s: &mut Session, code: &str) -> ScriptError {
    match s.run("<case>", code) {
        Ok(v) => panic!(
            "{code}\n  should have failed, gave {}",
            ocsh::script::values::to_text(&v)
        ),
        Err(e) => e,
    }
}

/// The number of entries in the session's plan.
fn planned_entries(s: &Session) -> usize {
    s.host().ws.borrow().plan().entry_count()
}

/// The staged changes of `dn`.
fn planned(s: &Session, dn: &str) -> Vec<AttrChange> {
    let ws = s.host().ws.borrow();
    ws.plan()
        .entries()
        .find(|e| same_dn(&e.dn, dn))
        .map(|e| e.changes.clone())
        .unwrap_or_else(|| panic!("nothing staged for {dn}"))
}

fn apply(s: &Session) -> ApplyReport {
    apply_with(s, 4)
}

/// Applies the session's plan with `concurrency` writes in flight, journalled to a
/// journal of its own.
fn apply_with(s: &Session, concurrency: usize) -> ApplyReport {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = ocsh::plan::journal::Journal::open(&dir.path().join("j.jsonl")).unwrap();
    let info = ocsh::plan::RunInfo {
        command: "test".into(),
        ..Default::default()
    };
    s.host()
        .ws
        .borrow_mut()
        .apply(
            &mut journal,
            &info,
            concurrency,
            &mut |_, _| {},
            &mut |_| ApplyOutcome::Failed("no replica in this test".into()),
        )
        .unwrap()
}

fn assert_all_applied(report: &ApplyReport) {
    for (e, o) in &report.results {
        assert_eq!(*o, ApplyOutcome::Applied, "{}", e.dn);
    }
}

fn outcome<'a>(report: &'a ApplyReport, dn: &str) -> &'a ApplyOutcome {
    report
        .results
        .iter()
        .find(|(e, _)| same_dn(&e.dn, dn))
        .map(|(_, o)| o)
        .unwrap_or_else(|| panic!("{dn} is not in the apply report"))
}

/// Values as a sorted multiset, for attributes whose order the server may change.
fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Equal as multisets: DN-valued attributes compared as DNs (OpenLDAP gives back a DN
/// value with its attribute types in the schema's spelling, `cn=...,dc=com`), every other
/// value exactly.
fn assert_values(attr: &str, got: &[String], want: &[String], what: &str) {
    let dnish = ocsh::directory::filter::is_dn_attribute(attr);
    let same = got.len() == want.len()
        && sorted(got)
            .iter()
            .zip(sorted(want).iter())
            .all(|(g, w)| if dnish { same_dn(g, w) } else { g == w });
    assert!(same, "{what}: {attr} is {got:?}, expected {want:?}");
}

/// `values` as owned strings.
fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------

// Every case, each a trial on every backend. Each uses its own users, so the order does
// not matter, except that nothing here moves users on or off pool02, whose user count
// `paged_iteration` checks.
crate::suite! { "behaviour", Backend, start_backend;
    the_ou_fix_through_the_binary,
    lookups_by_every_id_form,
    lookups_cannot_be_injected,
    pools_in_both_layouts,
    paged_iteration,
    enable_writes_the_planned_values,
    disable_keeps_the_other_values,
    remove_clears_every_ocs_attribute,
    move_to_r2_and_ocs2007_pools,
    flags_or_in_and_overwrite_refused,
    conflicts_keep_the_other_writers_value,
    concurrent_proxy_address_survives,
    bad_values_are_refused_and_nothing_written,
    bulk_enable_of_360_users_in_one_page,
    a_missing_ou_is_an_error,
    tls_connections,
    lync_attributes_read_planned_and_written,
    a_plan_beyond_its_declared_reach_is_refused,
}

/// Builds a backend's fixture: in an LDIF file, or in a freshly started server.
fn start_backend(name: &'static str) -> Result<Backend, String> {
    Ok(match support::start_server(name)? {
        None => Backend::embedded(),
        Some(server) => Backend::server(name, server),
    })
}

/// sAMAccountName, UPN, mail, `sip:` and the DN in any case and spacing all find the same
/// user.
fn lookups_by_every_id_form(b: &Backend) {
    let ws = b.workspace();
    let forms: Vec<(&str, String)> = vec![
        (TBECKER, "tbecker".into()),
        (TBECKER, "TBecker".into()),
        (TBECKER, "tbecker@example.com".into()),
        (TBECKER, "TBECKER@EXAMPLE.COM".into()),
        (TBECKER, "thomas.becker@example.com".into()),
        (TBECKER, "sip:thomas.becker@example.com".into()),
        (TBECKER, "SIP:Thomas.Becker@example.com".into()),
        (TBECKER, TBECKER.into()),
        (TBECKER, TBECKER.to_lowercase()),
        (TBECKER, TBECKER.to_uppercase()),
        (
            TBECKER,
            "cn=Thomas Becker, ou=Sales, dc=example, dc=com".into(),
        ),
        (JANE_DOE2, "jane.doe2".into()),
        (JANE_DOE2, JANE_DOE2.into()),
        (
            JANE_DOE2,
            "cn=doe\\, jane,ou=sales,dc=example,dc=com".into(),
        ),
        (
            JANE_DOE2,
            "CN=Doe\\2C Jane,OU=Sales,DC=example,DC=com".into(),
        ),
        (JEROME, "jerome.mueller".into()),
        (JEROME, "sip:jerome.mueller@example.com".into()),
        (JEROME, JEROME.into()),
        (
            JEROME,
            "cn=J\u{e9}r\u{f4}me M\u{fc}ller,ou=engineering,dc=example,dc=com".into(),
        ),
        (BULK_USER_0500, "bulk0500".into()),
        (BULK_USER_0500, "sip:bulk0500@example.com".into()),
    ];
    for (dn, id) in &forms {
        match ws.find_user(id) {
            Ok(u) => assert!(same_dn(&u.dn, dn), "{id} found {} instead of {dn}", u.dn),
            Err(e) => panic!("{id}: {e}"),
        }
    }
    for id in [
        "nobody",
        "nobody@example.com",
        "sip:nobody@example.com",
        "CN=Nobody,OU=Sales,DC=example,DC=com",
    ] {
        match ws.find_user(id) {
            Err(PlanError::UserNotFound(..)) => {}
            other => panic!("{id}: expected not found, got {other:?}"),
        }
    }
    // The duplicate address of the demo: ambiguity is an error, never a guess.
    match ws.find_user("sip:alex.kim@example.com") {
        Err(PlanError::Ambiguous { count: 2, .. }) => {}
        other => panic!("sip:alex.kim@example.com: expected ambiguous, got {other:?}"),
    }
}

const BULK_USER_0500: &str = "CN=Bulk User 0500,OU=Bulk,DC=example,DC=com";

/// Filter metacharacters in an id are values, never filter syntax: nothing matches.
fn lookups_cannot_be_injected(b: &Backend) {
    let ws = b.workspace();
    for id in [
        "*",
        "(",
        ")",
        "\\",
        "\\2a",
        "t*",
        "*)(sAMAccountName=*",
        "tbecker)(|(sAMAccountName=*",
        "*@example.com",
        "tbecker@*",
        "sip:*",
        "sip:*@example.com",
        "sip:thomas.becker@example.com)(sAMAccountName=*",
        "(sAMAccountName=*)",
        "CN=*,OU=Sales,DC=example,DC=com",
    ] {
        match ws.find_user(id) {
            Err(PlanError::Ambiguous { .. }) | Ok(_) => {
                panic!("{id:?} matched something: {:?}", ws.find_user(id))
            }
            Err(PlanError::UserNotFound(..)) => {}
            // A DN-looking id that is no DN is refused as such.
            Err(e) if e.is_refusal() => {}
            Err(e) => panic!("{id:?}: expected not found, got a failure: {e}"),
        }
    }
    let mut s = b.session();
    let e = run_err(&mut s, r#"user("*")"#);
    assert!(e.message.contains("no user"), "{e}");
}

/// `pools()` lists the three R2 pools and the OCS 2007-layout pool07.
fn pools_in_both_layouts(b: &Backend) {
    let ws = b.workspace();
    let mut found: Vec<(String, Option<PoolLayout>)> = ws
        .pools()
        .iter()
        .map(|p| (p.name.to_ascii_lowercase(), p.layout))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![
            ("pool01".to_string(), Some(PoolLayout::R2)),
            ("pool02".to_string(), Some(PoolLayout::R2)),
            ("pool03".to_string(), Some(PoolLayout::R2)),
            ("pool07".to_string(), Some(PoolLayout::Ocs2007)),
        ]
    );
    let p7 = ws.pool("pool07.example.com").unwrap();
    assert_eq!((p7.pool_type, p7.version), (Some(5), Some(3)));
    assert!(same_dn(&p7.home_server_dn(), &fixtures::pool07_home()));
    let mut s = b.session();
    assert_eq!(run(&mut s, r#"pool("pool07").layout"#), "OCS 2007");
    assert_eq!(run(&mut s, r#"pool("pool03").layout"#), "R2");
    let mut domains: Vec<String> = ws.sip_domains().iter().map(|d| d.to_lowercase()).collect();
    domains.sort();
    assert_eq!(domains, ["example.com", "fabrikam.com"]);
}

/// 1,200 users come back exactly once each, in pages well under 1,200.
fn paged_iteration(b: &Backend) {
    let mut s = b.session();
    assert_eq!(
        run(&mut s, &format!("users_in({BULK_OU:?}).count()")),
        BULK_USERS.to_string()
    );
    assert_eq!(
        run(
            &mut s,
            &format!(
                "users_in({BULK_OU:?}, \"(msRTCSIP-PrimaryHomeServer={})\").count()",
                r2_home("pool02")
            )
        ),
        BULK_ON_POOL02.to_string()
    );
    // The pool's own query pages too: the demo's pool02 users plus every tenth bulk
    // user. (Neither user the servers refuse is on pool02.)
    let demo_on_pool02 = fixtures::homed_on(
        &fixtures::demo_without(&fixtures::REFUSED_BY_SERVERS),
        &r2_home("pool02"),
    );
    assert_eq!(
        run(&mut s, r#"pool("pool02").users().count()"#),
        (demo_on_pool02 + BULK_ON_POOL02).to_string()
    );
    // The same through the workspace with pages of 100: each DN once, 12 pages.
    let ws = b.workspace();
    let mut req = ws.user_request("");
    req.base = BULK_OU.to_string();
    req.page_size = 100;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut pages = 0;
    let mut cursor = None;
    loop {
        let (users, next) = ws.users_page(&req, cursor).unwrap();
        pages += 1;
        assert!(users.len() <= 100, "a page of {} users", users.len());
        total += users.len();
        for u in users {
            assert!(seen.insert(normalize(&u.dn).unwrap()), "{} twice", u.dn);
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 100, "the pages do not end");
    }
    assert_eq!((total, seen.len()), (BULK_USERS, BULK_USERS));
    assert!(pages >= BULK_USERS / 100, "{pages} pages");
}

/// enable stages the four attributes, 256 OR-ed in and the sip: proxy address; after
/// apply a fresh read gives exactly the planned values, Booleans as TRUE/FALSE.
/// The issue's own acceptance run: `ocsh run scripts/fix-ou-home-server.rhai --directory
/// D --bind-dn ... --apply` with the password from OCSH_PASSWORD changes exactly the
/// entries its plan showed, and a second run finds nothing left to do.
fn the_ou_fix_through_the_binary(b: &Backend) {
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("journal.jsonl");
    let script = format!(
        "{}/scripts/fix-ou-home-server.rhai",
        env!("CARGO_MANIFEST_DIR")
    );
    let (mut args, password) = b.binary_args();
    args.extend(["--journal".into(), journal.display().to_string()]);
    let ocsh = |extra: &[&str]| {
        let t = Test::new().arg("run").arg(&script).args(&args).args(extra);
        match &password {
            Some(pw) => t.env("OCSH_PASSWORD", pw),
            None => t,
        }
    };
    let out = ocsh(&["--format", "json"]).run();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let entries = plan["plan"]["entries"].as_array().unwrap().clone();
    assert_eq!(
        entries.len(),
        8,
        "{}: the 8 child-pool users: {plan:#}",
        b.name
    );
    ocsh(&["--apply", "--yes"])
        .stdout_has("Applied 8 of 8 entries: 0 conflicted, 0 failed.")
        .run();
    for e in &entries {
        let dn = e["dn"].as_str().unwrap();
        let raw = b.raw(dn);
        for c in e["changes"].as_array().unwrap() {
            let attr = c["attribute"].as_str().unwrap();
            let after: Vec<&str> = c["after"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let now = raw.get(attr);
            assert_eq!(now.len(), after.len(), "{}: {dn} {attr}", b.name);
            assert!(
                now.iter().zip(&after).all(|(x, y)| same_dn(x, y)),
                "{}: {dn} {attr}: {now:?}",
                b.name
            );
        }
    }
    let journal = ocsh::plan::journal::JournalFile::read(&journal).unwrap();
    let run = journal.run(None).unwrap();
    assert_eq!(
        (
            run.entries.len(),
            run.count(ocsh::plan::journal::Verdict::Applied)
        ),
        (8, 8),
        "{}: journal",
        b.name
    );
    ocsh(&[]).stdout_has("No changes planned").run();
}

fn enable_writes_the_planned_values(b: &Backend) {
    let mut s = b.session();
    run(
        &mut s,
        r#"user("jdoe").enable("sip:jane.doe@example.com", pool("pool01"));
           user("patrick.doyle").enable(pool("pool01"));"#,
    );
    let jdoe = planned(&s, JDOE);
    let want = [
        ("msRTCSIP-UserEnabled", strings(&["TRUE"])),
        (
            "msRTCSIP-PrimaryUserAddress",
            strings(&["sip:jane.doe@example.com"]),
        ),
        ("msRTCSIP-PrimaryHomeServer", vec![r2_home("pool01")]),
        ("msRTCSIP-OptionFlags", strings(&["256"])),
        (
            "proxyAddresses",
            strings(&["SMTP:jane.doe@example.com", "sip:jane.doe@example.com"]),
        ),
    ];
    assert_eq!(jdoe.len(), want.len(), "{jdoe:?}");
    for (attr, after) in &want {
        let c = jdoe
            .iter()
            .find(|c| c.attr.eq_ignore_ascii_case(attr))
            .unwrap_or_else(|| panic!("{attr} not planned: {jdoe:?}"));
        assert_values(attr, &c.after, after, "planned");
    }
    // Patrick Doyle is temporarily disabled with 257: enabling him flips UserEnabled and
    // keeps his flags (256 is OR-ed in, never overwrites), SIP address and home server.
    // (His console-written proxy address "SIP:..." is rewritten as "sip:...", ocsh's
    // spelling.) Checked after the read-back, so that a failure here does not hide it.
    let patrick = planned(&s, PATRICK);
    assert_eq!(patrick[0].attr, "msRTCSIP-UserEnabled");
    assert_eq!(patrick[0].after, ["TRUE"]);

    let report = apply(&s);
    assert_eq!(report.results.len(), 2);
    assert_all_applied(&report);

    let read = b.user("jdoe");
    for c in &jdoe {
        assert_values(&c.attr, read.get(&c.attr), &c.after, "read back");
    }
    let p = b.user("patrick.doyle");
    assert_eq!(p.get("msRTCSIP-UserEnabled"), ["TRUE"]);
    assert_eq!(p.get("msRTCSIP-OptionFlags"), ["257"]);

    let raw = b.raw(JDOE);
    assert_eq!(raw.get("msRTCSIP-UserEnabled"), ["TRUE"]);
    assert_eq!(raw.get("msRTCSIP-OptionFlags"), ["256"]);
    assert!(same_dn(
        raw.first("msRTCSIP-PrimaryHomeServer").unwrap(),
        &r2_home("pool01")
    ));
    assert_eq!(
        sorted(raw.get("proxyAddresses")),
        ["SMTP:jane.doe@example.com", "sip:jane.doe@example.com"]
    );
    assert_eq!(b.raw(PATRICK).get("msRTCSIP-UserEnabled"), ["TRUE"]);

    // Done is done: enabling her again with the same values plans nothing.
    let mut again = b.session();
    run(
        &mut again,
        r#"user("jdoe").enable("sip:jane.doe@example.com", pool("pool01"));"#,
    );
    let replanned: Vec<AttrChange> = again
        .host()
        .ws
        .borrow()
        .plan()
        .entries()
        .flat_map(|e| e.changes.clone())
        .collect();
    assert!(
        replanned.is_empty(),
        "enabling jdoe again plans {replanned:?}"
    );
    let unexpected: Vec<&AttrChange> = patrick
        .iter()
        .filter(|c| !["msRTCSIP-UserEnabled", "proxyAddresses"].contains(&c.attr.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "enabling Patrick Doyle on his own pool also plans {unexpected:?}"
    );
}

/// disable writes FALSE and keeps every other OCS value.
fn disable_keeps_the_other_values(b: &Backend) {
    let before = b.user(GRACE);
    assert_eq!(before.get("msRTCSIP-UserEnabled"), ["TRUE"]);
    let mut s = b.session();
    run(&mut s, r#"user("grace.hopkins").disable();"#);
    let changes = planned(&s, GRACE);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].attr.as_str(), changes[0].after.as_slice()),
        ("msRTCSIP-UserEnabled", strings(&["FALSE"]).as_slice())
    );
    assert_all_applied(&apply(&s));

    let after = b.user(GRACE);
    assert_eq!(after.get("msRTCSIP-UserEnabled"), ["FALSE"]);
    let mut kept = before.ocs_attribute_names();
    kept.push("proxyAddresses".into());
    for attr in kept
        .iter()
        .filter(|a| !a.eq_ignore_ascii_case("msRTCSIP-UserEnabled"))
    {
        assert_eq!(
            sorted(after.get(attr)),
            sorted(before.get(attr)),
            "{attr} changed"
        );
    }
    assert!(after.sip().is_some() && after.home_server().is_some());
    assert_eq!(b.raw(GRACE).get("msRTCSIP-UserEnabled"), ["FALSE"]);
}

/// remove clears every msRTCSIP-* attribute and the sip: proxy address, and keeps the
/// other proxy addresses.
fn remove_clears_every_ocs_attribute(b: &Backend) {
    let emily = b.user(EMILY);
    assert!(emily.first("msRTCSIP-Line").is_some());
    let mut s = b.session();
    run(
        &mut s,
        r#"user("ecarter").remove(); user("mfeatherstonehaugh").remove();"#,
    );
    assert_eq!(planned_entries(&s), 2);
    assert_all_applied(&apply(&s));

    for dn in [EMILY, MAXIMILIAN] {
        let u = b.user(dn);
        assert_eq!(u.ocs_attribute_names(), Vec::<String>::new(), "{dn}");
        assert!(
            u.get("proxyAddresses")
                .iter()
                .all(|p| !p.to_ascii_lowercase().starts_with("sip:")),
            "{dn}: {:?}",
            u.get("proxyAddresses")
        );
        let raw = b.raw(dn);
        let left: Vec<&str> = raw
            .attributes()
            .iter()
            .map(|a| a.name.as_str())
            .filter(|n| n.to_ascii_lowercase().starts_with("msrtcsip-"))
            .collect();
        assert!(left.is_empty(), "{dn} still has {left:?}");
    }
    assert_eq!(
        b.raw(MAXIMILIAN).get("proxyAddresses"),
        ["SMTP:maximilian.featherstonehaugh@example.com"]
    );
    assert!(b.raw(EMILY).get("proxyAddresses").is_empty());
}

/// move_to writes the LC Services DN of an R2 pool and of the OCS 2007-layout pool07.
fn move_to_r2_and_ocs2007_pools(b: &Backend) {
    let mut s = b.session();
    run(
        &mut s,
        r#"user("ikowalski").move_to(pool("pool03"));
           user("bianca.costa").move_to("pool07");"#,
    );
    assert_eq!(
        planned(&s, IVAN)
            .iter()
            .map(|c| c.attr.as_str())
            .collect::<Vec<_>>(),
        ["msRTCSIP-PrimaryHomeServer"]
    );
    assert_all_applied(&apply(&s));
    let ivan = b.user(IVAN);
    assert_values(
        "msRTCSIP-PrimaryHomeServer",
        ivan.get("msRTCSIP-PrimaryHomeServer"),
        &[r2_home("pool03")],
        "Ivan Kowalski",
    );
    let bianca = b.user(BIANCA);
    assert_values(
        "msRTCSIP-PrimaryHomeServer",
        bianca.get("msRTCSIP-PrimaryHomeServer"),
        &[fixtures::pool07_home()],
        "Bianca Costa",
    );
    let mut fresh = b.session();
    assert_eq!(run(&mut fresh, r#"user("ikowalski").home_pool"#), "pool03");
    assert_eq!(
        run(&mut fresh, r#"user("bianca.costa").home_pool"#),
        "pool07"
    );
    assert_eq!(
        run(&mut fresh, r#"user("bianca.costa").pool.layout"#),
        "OCS 2007"
    );
    assert!(same_dn(
        b.raw(BIANCA).first("msRTCSIP-PrimaryHomeServer").unwrap(),
        &fixtures::pool07_home()
    ));
}

/// Bits are OR-ed in and written; dropping 256 by overwriting is refused, nothing staged,
/// nothing written.
fn flags_or_in_and_overwrite_refused(b: &Backend) {
    let mut s = b.session();
    run(
        &mut s,
        r#"let t = user("tbecker"); t.flags = t.flags | flags(["public_im"]);
           let d = user("jane.doe2"); d.flags.enterprise_voice = true;"#,
    );
    let c = planned(&s, TBECKER);
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].before.as_slice(), c[0].after.as_slice()),
        (strings(&["256"]).as_slice(), strings(&["257"]).as_slice())
    );
    assert_all_applied(&apply(&s));
    assert_eq!(b.user(TBECKER).get("msRTCSIP-OptionFlags"), ["257"]);
    assert_eq!(b.raw(TBECKER).get("msRTCSIP-OptionFlags"), ["257"]);
    // The entry with a comma in its CN (CN=Doe\, Jane) is written as well.
    assert_eq!(b.raw(JANE_DOE2).get("msRTCSIP-OptionFlags"), ["384"]);

    let before = b.raw(COLIN);
    let mut s = b.session();
    for code in [
        r#"let c = user("colin.fraser"); c.flags = flags(512);"#,
        r#"user("colin.fraser").set_attr("msRTCSIP-OptionFlags", 512);"#,
        r#"let c = user("colin.fraser"); c.flags.enhanced_presence = false;"#,
    ] {
        let e = run_err(&mut s, code);
        assert_eq!(e.kind, ScriptErrorKind::Refused, "{code}: {e}");
        assert_eq!(planned_entries(&s), 0, "{code}");
    }
    let report = apply(&s);
    assert!(report.results.is_empty());
    assert_eq!(b.user(COLIN).get("msRTCSIP-OptionFlags"), ["256"]);
    assert_eq!(b.raw(COLIN), before, "Colin Fraser's entry changed");
}

/// A value changed behind ocsh's back after it was read: that entry is a conflict, the
/// other writer's value survives, and the other entries of the plan still apply. Covers
/// a replaced value (flags), a replaced DN value (home server) and a value added to an
/// attribute that was absent when read (federation).
fn conflicts_keep_the_other_writers_value(b: &Backend) {
    let mut s = b.session();
    run(
        &mut s,
        r#"let m = user("marcus.lee"); m.flags = m.flags | flags(["enterprise_voice"]);
           user("dmarkovic").move_to(pool("pool07"));
           let r = user("mrossi"); r.federation = true;
           let j = user("jerome.mueller"); j.federation = false;
           let y = user("yuki.sato"); y.federation = true;
           let k = user("kmensah"); k.remote_access = true;"#,
    );
    assert_eq!(planned_entries(&s), 6);
    // Someone else writes while the plan waits: 257 -> 320, pool01 -> pool03, and
    // FederationEnabled, absent when read, set FALSE.
    b.behind_back(MARCUS, "msRTCSIP-OptionFlags", &["320"]);
    b.behind_back(DIANA, "msRTCSIP-PrimaryHomeServer", &[&r2_home("pool03")]);
    b.behind_back(MATEO, "msRTCSIP-FederationEnabled", &["FALSE"]);

    let report = apply(&s);
    for (dn, who) in [
        (MARCUS, "Marcus Lee"),
        (DIANA, "Diana Markovic"),
        (MATEO, "Mateo Rossi"),
    ] {
        assert!(
            matches!(outcome(&report, dn), ApplyOutcome::Conflict(_)),
            "{who}: {:?}",
            outcome(&report, dn)
        );
    }
    for dn in [JEROME, YUKI, KWAME] {
        assert_eq!(*outcome(&report, dn), ApplyOutcome::Applied, "{dn}");
    }

    assert_eq!(b.user(MARCUS).get("msRTCSIP-OptionFlags"), ["320"]);
    assert_eq!(b.raw(MARCUS).get("msRTCSIP-OptionFlags"), ["320"]);
    assert!(same_dn(
        b.user(DIANA).home_server().unwrap(),
        &r2_home("pool03")
    ));
    assert_eq!(b.raw(MATEO).get("msRTCSIP-FederationEnabled"), ["FALSE"]);
    // The entries that applied, a non-ASCII DN among them.
    assert_eq!(b.user(JEROME).get("msRTCSIP-FederationEnabled"), ["FALSE"]);
    assert_eq!(b.user(YUKI).get("msRTCSIP-FederationEnabled"), ["TRUE"]);
    assert_eq!(b.raw(KWAME).get("msRTCSIP-InternetAccessEnabled"), ["TRUE"]);
}

/// Another tool adds an address to proxyAddresses (multi-valued) while an enable that
/// adds the sip: address waits. Whatever the backend does, that address survives: the
/// entry is a conflict (the Directory trait's contract: current values differ from
/// `before`), or the enable lands and merges with it. The outcome is reported, since the
/// backends differ here (see the report of the suite).
fn concurrent_proxy_address_survives(b: &Backend) {
    let mut s = b.session();
    run(
        &mut s,
        r#"user("nadia.haddad").enable("sip:nadia.haddad@example.com", pool("pool01"));"#,
    );
    b.behind_back(NADIA, "proxyAddresses", &["SMTP:nadia@example.com"]);
    let report = apply(&s);
    let proxies = sorted(b.raw(NADIA).get("proxyAddresses"));
    match outcome(&report, NADIA) {
        ApplyOutcome::Conflict(_) => {
            assert_eq!(proxies, ["SMTP:nadia@example.com"]);
            assert!(b.raw(NADIA).get("msRTCSIP-UserEnabled").is_empty());
        }
        ApplyOutcome::Applied => {
            assert_eq!(
                proxies,
                ["SMTP:nadia@example.com", "sip:nadia.haddad@example.com"]
            );
        }
        other => panic!("Nadia Haddad: {other:?}"),
    }
    say(&format!(
        "[{}] concurrent_proxy_address_survives: outcome {:?}",
        b.name,
        outcome(&report, NADIA)
    ));
}

/// Bad values are refused when staged: the plan stays empty and nothing is written.
fn bad_values_are_refused_and_nothing_written(b: &Backend) {
    let before = (b.raw(SOPHIE), b.raw(HENRIK));
    let mut s = b.session();
    for (code, says) in [
        (
            r#"user("smartin").enable("sip:jane doe@example.com", pool("pool01"))"#,
            "space",
        ),
        (
            r#"user("smartin").enable("sip:sophie.martin@example.com", "pool99")"#,
            "pool99",
        ),
        (
            r#"user("smartin").enable("sip:sophie.martin@example.com", pool("pool99"))"#,
            "pool99",
        ),
        (
            r#"user("smartin").enable("sip:diana.markovic@example.com", pool("pool01"))"#,
            "Diana Markovic",
        ),
        (
            r#"user("smartin").enable("sip:DIANA.MARKOVIC@example.com", pool("pool01"))"#,
            "Diana Markovic",
        ),
        (
            r#"user("hlarsen").set_attr("msRTCSIP-PrimaryHomeServer", "pool03.fabrikam.com")"#,
            "FQDN",
        ),
        (r#"user("hlarsen").move_to("pool99")"#, "pool99"),
        (
            r#"let h = user("hlarsen"); h.sip = "sip:diana.markovic@example.com";"#,
            "Diana Markovic",
        ),
    ] {
        let e = run_err(&mut s, code);
        assert_eq!(e.kind, ScriptErrorKind::Refused, "{code}: {e}");
        assert!(e.message.contains(says), "{code}: {e}");
        assert_eq!(planned_entries(&s), 0, "{code} staged something");
    }
    let report = apply(&s);
    assert!(report.results.is_empty());
    assert_eq!((b.raw(SOPHIE), b.raw(HENRIK)), before, "an entry changed");
}

/// A plan of hundreds of entries, staged while the query pages, applied with eight
/// operations in flight: every entry lands.
/// 360 users of OU=Bulk enabled in one loop: the filter selects fewer than a page, so this
/// case checks staging and applying many entries, not paging (the scale cases do that).
fn bulk_enable_of_360_users_in_one_page(b: &Backend) {
    // bulk0001-0003, bulk0011-0013, ...: never enabled, 360 users.
    let filter = "(|(sAMAccountName=bulk*1)(sAMAccountName=bulk*2)(sAMAccountName=bulk*3))";
    let mut s = b.session();
    let n = run(
        &mut s,
        &format!(
            "let n = 0; for u in users_in({BULK_OU:?}, {filter:?}) {{ u.enable(pool(\"pool03\")); n += 1; }} n"
        ),
    );
    assert_eq!(n, "360");
    assert_eq!(planned_entries(&s), 360);
    let report = apply_with(&s, 8);
    assert_eq!(report.results.len(), 360);
    assert_eq!(
        report.applied(),
        360,
        "{} conflicted, {} failed",
        report.conflicted(),
        report.failed()
    );

    let mut fresh = b.session();
    assert_eq!(
        run(
            &mut fresh,
            &format!("users_in({BULK_OU:?}, \"(&{filter}(msRTCSIP-UserEnabled=TRUE))\").count()")
        ),
        "360"
    );
    let u = b.user("bulk1193");
    assert_eq!(u.sip(), Some("sip:bulk1193@example.com"));
    assert_values(
        "msRTCSIP-PrimaryHomeServer",
        u.get("msRTCSIP-PrimaryHomeServer"),
        &[r2_home("pool03")],
        "bulk1193",
    );
}

/// A query below an OU that does not exist fails as a directory error, on every backend.
fn a_missing_ou_is_an_error(b: &Backend) {
    let mut s = b.session();
    let e = run_err(&mut s, r#"users_in("OU=Nope,DC=example,DC=com").count()"#);
    assert_eq!(e.kind, ScriptErrorKind::Directory, "{e}");
    assert!(e.message.contains("no such object"), "{e}");
}

/// The servers answer over ldaps:// and StartTLS, verified against the lab CA.
fn tls_connections(b: &Backend) {
    let Some(lab) = b.lab() else {
        return; // no network for the embedded backend
    };
    let ca = lab.env.ca_cert.clone().expect("the lab has a CA");
    let ldaps = lab.env.ldaps_url.clone().expect("the lab has ldaps");
    for (url, starttls) in [(ldaps, false), (lab.env.ldap_url.clone(), true)] {
        let opts = LdapOptions {
            starttls,
            ca_file: Some(ca.clone()),
            ..lab.env.ldap_options()
        };
        let ws = Workspace::connect(&DirectorySpec::Ldap(url.clone()), &opts, TIMEOUT)
            .unwrap_or_else(|e| panic!("{url} (starttls {starttls}): {e}"));
        assert!(same_dn(&ws.find_user("jdoe").unwrap().dn, JDOE));
    }
}

// ---------------------------------------------------------------------------------------
// Minimal reproductions of the src/ bugs the cases above found (embedded only, no server)
// ---------------------------------------------------------------------------------------

/// The demo forest in an LDIF file, with `edit` applied to its text.
fn demo_file(edit: impl Fn(&str) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.ldif");
    std::fs::write(&path, edit(fixtures::DEMO)).unwrap();
    (dir, path)
}

fn session_on(path: &std::path::Path) -> Session {
    let ws = Workspace::connect(
        &DirectorySpec::Ldif(path.to_path_buf()),
        &LdapOptions::default(),
        TIMEOUT,
    )
    .unwrap();
    Session::new(
        ws,
        rhai::Map::new(),
        &Sandbox::default(),
        Box::new(std::io::sink()),
    )
}

/// BUG: the embedded backend applies a plan to the copy of the LDIF file it read when
/// the workspace was opened, and commit writes that whole copy back. A change made to
/// the file in between (another ocsh run, an editor) is not seen as a conflict and is
/// silently overwritten. Found by `conflicts_keep_the_other_writers_value` and
/// `concurrent_proxy_address_survives` on the embedded backend.
fn embedded_apply_keeps_a_change_made_to_the_file_meanwhile() {
    let (_dir, path) = demo_file(str::to_string);
    let mut s = session_on(&path);
    run(
        &mut s,
        r#"let t = user("tbecker"); t.flags = t.flags | flags(["public_im"]);"#,
    );
    // Another writer changes the same value in the file: 256 -> 320.
    let other = EmbeddedDirectory::open(&path).unwrap();
    support::block_on(async {
        let change = AttrChange {
            attr: "msRTCSIP-OptionFlags".into(),
            before: strings(&["256"]),
            after: strings(&["320"]),
        };
        other.modify(TBECKER, &[change]).await.unwrap();
        other.commit().await.unwrap();
    });
    let report = apply(&s);
    let text = std::fs::read_to_string(&path).unwrap();
    let flags = ldif::parse(&text, "demo.ldif")
        .unwrap()
        .into_iter()
        .find(|e| same_dn(&e.dn, TBECKER))
        .unwrap()
        .get("msRTCSIP-OptionFlags")
        .to_vec();
    assert_eq!(flags, ["320"], "the other writer's value was overwritten");
    assert!(
        matches!(outcome(&report, TBECKER), ApplyOutcome::Conflict(_)),
        "{:?}",
        outcome(&report, TBECKER)
    );
}

/// BUG: a change is staged only when the new value differs from the stored one, and
/// that comparison is exact, also for DN-valued attributes. A home server stored in
/// another spelling of the same DN (OpenLDAP gives back `cn=LC Services,cn=Microsoft,...`;
/// an LDIF export from it does too) is "changed" to itself: `move_to` and `enable` plan
/// a no-op write, and `fix-ou-home-server.rhai` would rewrite every correct user. Found by
/// `enable_writes_the_planned_values` on OpenLDAP.
fn a_home_server_in_another_spelling_is_no_change() {
    let pool01 = r2_home("pool01");
    let (_dir, path) = demo_file(|text| {
        text.replace(
            &format!("msRTCSIP-PrimaryHomeServer: {pool01}"),
            &format!("msRTCSIP-PrimaryHomeServer: {}", pool01.to_lowercase()),
        )
    });
    let mut s = session_on(&path);
    assert_eq!(run(&mut s, r#"user("tbecker").home_pool"#), "pool01");
    run(&mut s, r#"user("tbecker").move_to(pool("pool01"));"#);
    assert_eq!(
        planned_entries(&s),
        0,
        "{:?}",
        s.host().ws.borrow().plan().entries().collect::<Vec<_>>()
    );
}

crate::tests![
    embedded_apply_keeps_a_change_made_to_the_file_meanwhile,
    a_home_server_in_another_spelling_is_no_change,
];

const PRIYA: &str = "CN=Priya Raman,OU=Sales,DC=example,DC=com";
const CHLOE: &str = "CN=Chloe Dubois,OU=Fabrikam,DC=example,DC=com";

/// The Lync-era attributes through scripts: the read-only views (deployment locator,
/// policies as a map, the target home server), the writes of line, archiving, federation
/// and remote access planned with their preconditions and applied, and the refusals
/// (a line with a space, the retired archiving bit 2, a read-only attribute), which
/// stage nothing.
fn lync_attributes_read_planned_and_written(b: &Backend) {
    let mut s = b.session();
    assert_eq!(run(&mut s, r#"user("priya.raman").archiving"#), "12");
    assert_eq!(
        run(&mut s, r#"user("priya.raman").deployment_locator"#),
        "SRV:"
    );
    assert_eq!(
        run(
            &mut s,
            r#"let p = user("priya.raman").user_policies; `${p["0"]} ${p["1"]} ${p.len()}`"#
        ),
        "1001 2002 2"
    );
    assert!(same_dn(
        &run(&mut s, r#"user("chloe.dubois").target_home_server"#),
        &r2_home("pool01")
    ));
    for (code, why) in [
        (
            r#"let p = user("priya.raman"); p.line = "tel:+1 555 0100";"#,
            "no spaces",
        ),
        (
            r#"let p = user("priya.raman"); p.archiving = 2;"#,
            "retired",
        ),
        (
            r#"let p = user("priya.raman"); p.archiving = 16;"#,
            "only bits 4",
        ),
        (
            r#"user("priya.raman").set_attr("msRTCSIP-DeploymentLocator", "x");"#,
            "read-only",
        ),
        (
            r#"user("priya.raman").set_attr("msRTCSIP-UserPolicies", "0=1");"#,
            "read-only",
        ),
    ] {
        let e = run_err(&mut s, code);
        assert_eq!(e.kind, ScriptErrorKind::Refused, "{code}: {e}");
        assert!(e.message.contains(why), "{code}: {e}");
    }
    assert_eq!(planned_entries(&s), 0);
    run(
        &mut s,
        r#"let p = user("priya.raman");
           p.line = "tel:+15551230001;ext=4001";
           p.archiving = 4;
           p.federation = true;
           p.remote_access = false;
           let c = user("chloe.dubois");
           c.line = "sip:chloe.line@fabrikam.com";
           c.archiving = 0;"#,
    );
    let changes = planned(&s, PRIYA);
    let archiving = changes
        .iter()
        .find(|c| c.attr == "msRTCSIP-ArchivingEnabled")
        .unwrap();
    assert_eq!(
        (archiving.before.as_slice(), archiving.after.as_slice()),
        (strings(&["12"]).as_slice(), strings(&["4"]).as_slice())
    );
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert_eq!(planned(&s, CHLOE).len(), 2);
    assert_all_applied(&apply(&s));

    let raw = b.raw(PRIYA);
    assert_eq!(raw.get("msRTCSIP-Line"), ["tel:+15551230001;ext=4001"]);
    assert_eq!(raw.get("msRTCSIP-ArchivingEnabled"), ["4"]);
    assert_eq!(raw.get("msRTCSIP-FederationEnabled"), ["TRUE"]);
    assert_eq!(raw.get("msRTCSIP-InternetAccessEnabled"), ["FALSE"]);
    assert_eq!(
        sorted(raw.get("msRTCSIP-UserPolicies")),
        strings(&["0=1001", "1=2002"])
    );
    assert_eq!(raw.get("msRTCSIP-DeploymentLocator"), ["SRV:"]);
    let raw = b.raw(CHLOE);
    assert_eq!(raw.get("msRTCSIP-Line"), ["sip:chloe.line@fabrikam.com"]);
    assert_eq!(raw.get("msRTCSIP-ArchivingEnabled"), ["0"]);
    let mut fresh = b.session();
    assert_eq!(
        run(
            &mut fresh,
            r#"let p = user("priya.raman"); `${p.line} ${p.archiving} ${p.federation} ${p.remote_access}`"#
        ),
        "tel:+15551230001;ext=4001 4 true false"
    );
    assert_eq!(run(&mut fresh, r#"user("chloe.dubois").archiving"#), "0");
}

/// A script whose plan goes beyond its declared reach: an attribute outside `@writes`, an
/// entry outside `@scope`, more entries than `@max`. Each `--apply --yes` is refused with
/// exit 4 naming the entries and the bound, and no entry changes; the same plan within
/// its reach is planned normally.
fn a_plan_beyond_its_declared_reach_is_refused(b: &Backend) {
    let toggle = |dns: &[&str]| -> String {
        dns.iter()
            .map(|dn| format!("let u = user({dn:?}); u.federation = !u.federation;\n"))
            .collect()
    };
    let (args, password) = b.binary_args();
    let users = [GRACE, NADIA, SOPHIE];
    let before: Vec<Entry> = users.iter().map(|dn| b.raw(dn)).collect();
    let rows: [(&str, String, Vec<String>); 3] = [
        (
            "//! @writes enabled, flags\n",
            toggle(&[GRACE]),
            vec![format!(
                "{GRACE}: writes msRTCSIP-FederationEnabled (not in @writes)"
            )],
        ),
        (
            "//! @writes federation\n//! @scope OU=Support,DC=example,DC=com\n",
            toggle(&[GRACE, SOPHIE]),
            vec![format!("{SOPHIE}: outside every @scope")],
        ),
        (
            "//! @writes federation\n//! @max 2\n",
            toggle(&users),
            vec!["3 entries changed, more than @max 2".to_string()],
        ),
    ];
    for (header, body, named) in rows {
        let t = Test::new().file("reach.rhai", format!("//! Reach.\n{header}{body}"));
        let script = t.path("reach.rhai");
        let journal = t.path("journal.jsonl");
        let mut t = t
            .args(["run", &script])
            .args(&args)
            .args(["--journal", &journal, "--apply", "--yes"])
            .code(4)
            .stderr_has("the plan goes beyond the script's declared reach")
            .stderr_has("refused: nothing was written");
        // Servers give DNs in their own case (OpenLDAP: cn=..., ou=...).
        for n in &named {
            t = t.stderr_matches(&format!("(?i){}", regex::escape(n)));
        }
        if let Some(pw) = &password {
            t = t.env("OCSH_PASSWORD", pw);
        }
        let out = t.run();
        assert!(
            !out.stdout.contains("Applied"),
            "{}: {}",
            b.name,
            out.transcript()
        );
        assert!(
            !out.path("journal.jsonl").exists(),
            "{}: a journal was written",
            b.name
        );
        for (dn, was) in users.iter().zip(&before) {
            assert_eq!(&b.raw(dn), was, "{}: {dn} changed", b.name);
        }
    }
    // Within its reach, the same kind of script plans (and shows its reach).
    let t = Test::new().file(
        "reach.rhai",
        format!(
            "//! Reach.\n//! @writes federation\n//! @scope OU=Support,DC=example,DC=com\n//! @max 2\n{}",
            toggle(&[GRACE, NADIA])
        ),
    );
    let script = t.path("reach.rhai");
    let mut t = t
        .args(["run", &script])
        .args(&args)
        .stdout_has("Declared reach: writes msRTCSIP-FederationEnabled; within OU=Support,DC=example,DC=com; at most 2 entries")
        .stdout_has("Dry run");
    if let Some(pw) = &password {
        t = t.env("OCSH_PASSWORD", pw);
    }
    t.run();
}
