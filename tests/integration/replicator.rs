//! The user replicator against the three backends: the embedded directory (an LDIF
//! file), OpenLDAP slapd and Samba AD, each started by the test itself with the scripts
//! of `tests/servers/`.
//!
//! The same scenario runs on each: a first sync fills the replica; 10 users changed
//! behind ocsh's back (`ldapmodify`; for the embedded file a second
//! `EmbeddedDirectory::open` + `modify` + `commit`) are exactly the 10 rows the next,
//! incremental cycle changes; a renamed user keeps its row (servers: objectGUID,
//! entryUUID); a deleted user disappears; a user enabled with a home server that is no
//! pool is in `problems`; `RegenerateCookiesNow` makes the next cycle initial and reads
//! false after it; a script's `replicator.interval = 4` is refused and the stored
//! interval unchanged; `replicator.interval = 120` is planned, and written only with
//! `--apply`.
//!
//! The scenario is one trial per backend, `backend::replicator::scenario`. Servers come
//! from `support` (shared with the behaviour suite): OpenLDAP on free ports in a temp dir;
//! Samba (root, ports 389/636) restored from the shared snapshot, never at the same time as
//! another suite's Samba (`flock` on `/tmp/ocsh-samba.lock`). Under `CI=true` a backend that
//! is not selected or cannot start fails its trial; elsewhere it is ignored.
//! `OCSH_TEST_BACKENDS=embedded,openldap,samba` (the default) selects backends.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ocsh::directory::ldap::LdapOptions;
use ocsh::directory::{
    AttrChange, ChangeState, DirError, Directory, DirectorySpec, EmbeddedDirectory, Page,
    PageCursor, RootInfo, SearchRequest, ldif,
};
use ocsh::ocs::dn::{normalize, same_dn};
use ocsh::plan::Workspace;
use ocsh::replica::{CycleKind, CycleReport, Replica, ReplicaUser};
use ocsh::script::api_replicator::sync_now;

const LEFTOVERS: &str = include_str!("../fixtures/child-domain-leftovers.ldif");
const DEMO: &str = ocsh::directory::demo::DEMO_LDIF;

use crate::support::{self, Server, Test, block_on, say};

// ---------------------------------------------------------------------------------------

enum Store {
    Embedded(PathBuf),
    Server(Box<Server>),
}

pub(crate) struct Lab {
    name: &'static str,
    store: Store,
    spec: DirectorySpec,
    ldap: LdapOptions,
    replica: PathBuf,
    temp: tempfile::TempDir,
    timings: Mutex<Vec<(String, Duration)>>,
}

impl Lab {
    fn embedded() -> Lab {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("forest.ldif");
        std::fs::write(&path, DEMO).unwrap();
        Lab {
            name: "embedded",
            spec: DirectorySpec::Ldif(path.clone()),
            store: Store::Embedded(path),
            ldap: LdapOptions::default(),
            replica: temp.path().join("replica.sqlite"),
            temp,
            timings: Mutex::new(Vec::new()),
        }
    }

    fn server(name: &'static str, server: Server) -> Lab {
        let leftovers = match server.kind {
            support::ServerKind::OpenLdap => LEFTOVERS.to_string(),
            support::ServerKind::Samba => support::fixtures::leftovers_for_samba(),
        };
        server.load("child-domain-leftovers.ldif", &leftovers);
        server.load("demo-forest.ldif", DEMO);
        let temp = tempfile::tempdir().unwrap();
        let ldap = LdapOptions {
            url: server.env.ldap_url.clone(),
            connect_timeout: Duration::from_secs(10),
            op_timeout: Duration::from_secs(60),
            bind_dn: Some(server.env.bind_dn.clone()),
            password: Some(server.env.password.clone()),
            ..LdapOptions::default()
        };
        Lab {
            name,
            spec: DirectorySpec::Ldap(server.env.ldap_url.clone()),
            store: Store::Server(Box::new(server)),
            ldap,
            replica: temp.path().join("replica.sqlite"),
            temp,
            timings: Mutex::new(Vec::new()),
        }
    }

    fn workspace(&self) -> Workspace {
        Workspace::connect(&self.spec, &self.ldap, Duration::from_secs(60)).unwrap()
    }

    fn sync(&self, step: &str) -> CycleReport {
        let started = Instant::now();
        let ws = self.workspace();
        let mut replica = Replica::open(&self.replica).unwrap();
        let report = sync_now(&ws, &mut replica)
            .unwrap_or_else(|e| panic!("{}: sync ({step}) failed: {e}", self.name));
        self.timings
            .lock()
            .unwrap()
            .push((step.to_string(), started.elapsed()));
        assert!(
            report.errors.is_empty(),
            "{}: {step}: {:?}",
            self.name,
            report.errors
        );
        report
    }

    fn replica(&self) -> Replica {
        Replica::open(&self.replica).unwrap()
    }

    fn users(&self) -> Vec<ReplicaUser> {
        self.replica().users().unwrap()
    }

    /// Replaces `attr` of `dn` with `values` behind ocsh's back.
    fn replace(&self, dn: &str, attr: &str, values: &[&str]) {
        match &self.store {
            Store::Server(s) => s.replace(dn, attr, values),
            Store::Embedded(path) => support::replace_in_ldif(path, dn, attr, values),
        }
    }

    fn delete(&self, dn: &str) {
        match &self.store {
            Store::Server(s) => s.ldapmodify(&format!("dn: {dn}\nchangetype: delete\n")),
            Store::Embedded(path) => {
                let text = std::fs::read_to_string(path).unwrap();
                let kept: Vec<_> = ldif::parse(&text, "forest.ldif")
                    .unwrap()
                    .into_iter()
                    .filter(|e| !same_dn(&e.dn, dn))
                    .collect();
                std::fs::write(path, ldif::write(&kept)).unwrap();
            }
        }
    }

    /// Renames `dn` to `new_rdn` under the same parent (servers only).
    fn rename(&self, dn: &str, new_rdn: &str) {
        if let Store::Server(s) = &self.store {
            s.ldapmodify(&format!(
                "dn: {dn}\nchangetype: modrdn\nnewrdn: {new_rdn}\ndeleteoldrdn: 1\n"
            ));
        }
    }

    /// Moves `dn` below `new_parent`, keeping its RDN (servers only).
    fn move_to(&self, dn: &str, new_parent: &str) {
        if let Store::Server(s) = &self.store {
            let rdn = dn.split_once(",").map_or(dn, |(r, _)| r);
            s.ldapmodify(&format!(
                "dn: {dn}\nchangetype: modrdn\nnewrdn: {rdn}\ndeleteoldrdn: 1\nnewsuperior: {new_parent}\n"
            ));
        }
    }

    /// Asserts that an incremental cycle found deletions without listing every user
    /// (servers: tombstones, an RFC 4533 refresh) and read no more than `most` entries;
    /// the embedded directory lists (in memory) and says so.
    fn assert_no_listing(&self, r: &CycleReport, most: usize) {
        if matches!(self.store, Store::Server(_)) {
            assert!(
                !r.deletions.starts_with("listing"),
                "{}: {}",
                self.name,
                r.deletions
            );
            assert!(
                r.entries_read <= most,
                "{}: {} entries read: {r:?}",
                self.name,
                r.entries_read
            );
        } else {
            assert!(
                r.deletions.starts_with("listing every user"),
                "{}: {}",
                self.name,
                r.deletions
            );
        }
    }

    /// A run of `ocsh ARGS` with this lab's directory and replica (the password in
    /// OCSH_PASSWORD), in the lab's folder.
    fn ocsh(&self, args: &[&str]) -> Test {
        self.ocsh_on(&self.replica, args)
    }

    /// The same with another replica (a case that must not disturb the scenario's).
    fn ocsh_on(&self, replica: &std::path::Path, args: &[&str]) -> Test {
        let t = Test::new().args(args);
        let t = match &self.store {
            Store::Embedded(path) => t.arg("--directory").arg(path.display().to_string()),
            Store::Server(s) => t
                .args(["--directory", &s.env.ldap_url, "--bind-dn", &s.env.bind_dn])
                .env("OCSH_PASSWORD", &s.env.password),
        };
        t.arg("--replica").arg(replica.display().to_string())
    }

    /// Adds entries behind ocsh's back: `ldapadd` on a server, appended to the LDIF file
    /// on the embedded directory (so without a change number; the listing finds them).
    fn add(&self, ldif: &str) {
        match &self.store {
            Store::Server(s) => {
                let report = s.load("added.ldif", ldif);
                assert!(report.refused.is_empty(), "{}: {report:?}", self.name);
            }
            Store::Embedded(path) => {
                let mut text = std::fs::read_to_string(path).unwrap();
                text.push('\n');
                text.push_str(ldif);
                std::fs::write(path, text).unwrap();
            }
        }
    }

    fn script(&self, name: &str, text: &str) -> String {
        let p = self.temp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn interval(&self) -> u32 {
        self.replica().settings().unwrap().interval()
    }
}

fn keys<'a>(dns: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    dns.into_iter().map(|d| normalize(d).unwrap()).collect()
}

// ---------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------

fn scenario(lab: &Lab) {
    let name = lab.name;

    // A first sync fills the replica with every user the directory has.
    let first = lab.sync("first sync (initial)");
    assert_eq!(first.kind, CycleKind::Initial, "{name}: {first:?}");
    let tracking = match name {
        "embedded" => "counter",
        "openldap" => "entry_csn",
        _ => "usn",
    };
    assert_eq!(
        first.tracking.as_deref(),
        Some(tracking),
        "{name}: {first:?}"
    );
    assert!(first.cookie.is_some(), "{name}: {first:?}");
    let ws = lab.workspace();
    let mut in_directory = 0;
    let mut cursor = None;
    let req = ws.user_request("");
    loop {
        let (page, next) = ws.users_page(&req, cursor).unwrap();
        in_directory += page.len();
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    drop(ws);
    assert!(in_directory > 40, "{name}: only {in_directory} users");
    assert_eq!(first.added, in_directory, "{name}: {first:?}");
    assert_eq!(lab.users().len(), in_directory, "{name}");
    let enabled = lab
        .users()
        .iter()
        .filter(|u| u.enabled == Some(true))
        .count();
    assert!(enabled >= 12, "{name}: {enabled} enabled users");

    // Nothing changed: an incremental cycle touches nothing.
    let idle = lab.sync("idle incremental");
    assert_eq!(idle.kind, CycleKind::Incremental, "{name}: {idle:?}");
    assert_eq!(
        (idle.added, idle.changed, idle.deleted),
        (0, 0, 0),
        "{name}: {idle:?}"
    );

    // 10 users changed behind ocsh's back are exactly the 10 rows the next cycle touches.
    let users = lab.users();
    let ten: Vec<&ReplicaUser> = users
        .iter()
        .filter(|u| u.enabled == Some(true) && u.sam.is_some())
        .take(10)
        .collect();
    assert_eq!(ten.len(), 10);
    for u in &ten {
        let flipped = if u.federation { "FALSE" } else { "TRUE" };
        lab.replace(&u.dn, "msRTCSIP-FederationEnabled", &[flipped]);
    }
    let changed = lab.sync("incremental after 10 changes");
    assert_eq!(changed.kind, CycleKind::Incremental, "{name}: {changed:?}");
    assert_eq!(
        (changed.added, changed.changed, changed.deleted),
        (0, 10, 0),
        "{name}: {changed:?}"
    );
    let touched: Vec<ReplicaUser> = lab
        .users()
        .into_iter()
        .filter(|u| u.changed_in == Some(changed.cycle))
        .collect();
    assert_eq!(
        keys(touched.iter().map(|u| u.dn.as_str())),
        keys(ten.iter().map(|u| u.dn.as_str())),
        "{name}"
    );
    for u in &touched {
        let before = ten.iter().find(|t| same_dn(&t.dn, &u.dn)).unwrap();
        assert_eq!(u.federation, !before.federation, "{name}: {}", u.dn);
    }

    // Users no cycle has touched yet: one to rename, one to delete, one to break.
    let spare: Vec<ReplicaUser> = lab
        .users()
        .into_iter()
        .filter(|u| u.changed_in == Some(first.cycle) && u.sam.is_some())
        // Demo users only (OU=...): never Samba's Administrator, Guest or krbtgt.
        .filter(|u| normalize(&u.dn).unwrap().contains(",ou="))
        .filter(|u| u.enabled.is_none())
        .collect();
    assert!(
        spare.len() >= 4,
        "{name}: {} never-enabled users",
        spare.len()
    );

    // A rename keeps the row (servers give objectGUID / entryUUID).
    if matches!(lab.store, Store::Server(_)) {
        let moved = &spare[2];
        assert!(moved.guid.is_some(), "{name}: {} has no GUID", moved.dn);
        lab.rename(&moved.dn, "CN=Renamed By Replicator Test");
        let r = lab.sync("incremental after a rename");
        assert_eq!((r.added, r.changed, r.deleted), (0, 1, 0), "{name}: {r:?}");
        lab.assert_no_listing(&r, 6);
        let row = lab
            .users()
            .into_iter()
            .find(|u| u.guid == moved.guid)
            .unwrap();
        assert!(
            row.dn
                .to_lowercase()
                .starts_with("cn=renamed by replicator test,"),
            "{name}: {}",
            row.dn
        );
    }

    // A move to another OU keeps the row too, and is seen without a listing.
    if matches!(lab.store, Store::Server(_)) {
        let moved = &spare[3];
        let target = if normalize(&moved.dn).unwrap().contains(",ou=leavers,") {
            "sales"
        } else {
            "leavers"
        };
        lab.move_to(&moved.dn, &format!("OU={target},DC=example,DC=com"));
        let r = lab.sync("incremental after a move");
        assert_eq!((r.added, r.changed, r.deleted), (0, 1, 0), "{name}: {r:?}");
        lab.assert_no_listing(&r, 6);
        let row = lab
            .users()
            .into_iter()
            .find(|u| u.guid == moved.guid)
            .unwrap();
        assert!(
            normalize(&row.dn)
                .unwrap()
                .ends_with(&format!(",ou={target},dc=example,dc=com")),
            "{name}: {}",
            row.dn
        );
    }

    // A deleted user disappears.
    let gone = &spare[0];
    lab.delete(&gone.dn);
    let deleted = lab.sync("incremental after a delete");
    assert_eq!(
        (
            deleted.kind,
            deleted.added,
            deleted.changed,
            deleted.deleted
        ),
        (CycleKind::Incremental, 0, 0, 1),
        "{name}: {deleted:?}"
    );
    lab.assert_no_listing(&deleted, 6);
    assert!(
        !lab.users().iter().any(|u| same_dn(&u.dn, &gone.dn)),
        "{name}: {} is still there",
        gone.dn
    );

    // A user enabled with a home server that is no pool (the pool object's own DN,
    // which exists, so servers accept it) shows up in problems.
    let broken = &spare[1];
    let ws = lab.workspace();
    let pool_object = ws.pools()[0].dn.clone();
    drop(ws);
    let sam = broken.sam.clone().unwrap();
    lab.replace(&broken.dn, "msRTCSIP-PrimaryHomeServer", &[&pool_object]);
    lab.replace(
        &broken.dn,
        "msRTCSIP-PrimaryUserAddress",
        &[&format!("sip:{sam}.replica@example.com")],
    );
    lab.replace(&broken.dn, "msRTCSIP-OptionFlags", &["256"]);
    lab.replace(&broken.dn, "msRTCSIP-UserEnabled", &["TRUE"]);
    let r = lab.sync("incremental after a broken enable");
    assert_eq!((r.added, r.changed, r.deleted), (0, 1, 0), "{name}: {r:?}");
    let problems = lab.replica().problems().unwrap();
    let found: Vec<_> = problems
        .iter()
        .filter(|p| same_dn(&p.dn, &broken.dn))
        .collect();
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    assert_eq!(found[0].kind, "home_server_not_a_pool");
    assert!(
        found[0].detail.contains("not of its LC Services object"),
        "{name}: {}",
        found[0].detail
    );
    let out = lab
        .ocsh(&["replicator", "problems", "--kind", "home_server_not_a_pool"])
        .run();
    let stdout = &out.stdout;
    assert!(stdout.contains(&sam), "{name}: {stdout}");

    // RegenerateCookiesNow: the next cycle is initial, and the flag reads false after it.
    let mut replica = lab.replica();
    let before = replica.settings().unwrap();
    let mut regen = before.clone();
    regen.regenerate_cookies_now();
    replica.write_settings(&before, &regen).unwrap();
    drop(replica);
    assert!(lab.replica().settings().unwrap().regenerate_pending());
    let r = lab.sync("initial after RegenerateCookiesNow");
    assert_eq!(r.kind, CycleKind::Initial, "{name}: {r:?}");
    assert!(r.reason.contains("RegenerateCookiesNow"), "{}", r.reason);
    assert_eq!((r.added, r.changed, r.deleted), (0, 0, 0), "{name}: {r:?}");
    assert!(!lab.replica().settings().unwrap().regenerate_pending());
    let r = lab.sync("incremental after the initial one");
    assert_eq!(r.kind, CycleKind::Incremental, "{name}: {r:?}");

    // The script object: an interval of 4 is refused, the stored one is unchanged.
    let stored = lab.interval();
    let bad = lab.script("four.rhai", "replicator.interval = 4;\n");
    lab.ocsh(&["run", &bad, "--apply", "--yes"])
        .code(4)
        .stderr_has("ReplicationCycleInterval 4 is out of range: it must be 5..86400 seconds")
        .run();
    assert_eq!(lab.interval(), stored);

    // replicator.interval = 120 is planned, and written only with --apply.
    let good = lab.script(
        "interval.rhai",
        "replicator.interval = 120;\nprint(`reads ${replicator.interval}`);\n",
    );
    lab.ocsh(&["run", &good])
        .stdout_has("reads 120")
        .stdout_has(format!("ReplicationCycleInterval  {stored} → 120"))
        .stdout_has("Dry run: nothing was written")
        .run();
    assert_eq!(lab.interval(), stored);
    lab.ocsh(&["run", &good, "--apply", "--yes"])
        .stdout_has("Replicator settings written to")
        .run();
    assert_eq!(lab.interval(), 120);

    // status shows it.
    let out = lab
        .ocsh(&["replicator", "status", "--format", "json"])
        .run();
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status["replication_cycle_interval"], 120);
    assert_eq!(status["regenerate_cookies_now"], false);
    assert_eq!(
        status["problem_counts"]["home_server_not_a_pool"]
            .as_i64()
            .map(|n| n >= 1),
        Some(true)
    );

    // Incremental means incremental: with the CSN overlap (OpenLDAP without contextCSN)
    // taken out of the cookie, one changed user is read, plus at most the entry whose
    // marker is the mark itself (it comes back with `>=`, and is dropped as unchanged).
    let conn = rusqlite::Connection::open(&lab.replica).unwrap();
    conn.execute("UPDATE cookies SET overlap_secs = 0", [])
        .unwrap();
    drop(conn);
    let one = &ten[0];
    lab.replace(&one.dn, "msRTCSIP-FederationEnabled", &["TRUE"]);
    lab.replace(&one.dn, "msRTCSIP-FederationEnabled", &["FALSE"]);
    let r = lab.sync("incremental after one change");
    assert_eq!((r.added, r.deleted), (0, 0), "{name}: {r:?}");
    assert!(r.changed <= 1, "{name}: {r:?}");
    assert!(
        (1..=2).contains(&r.seen),
        "{name}: read {} entries for one change: {r:?}",
        r.seen
    );

    let timings: Vec<String> = lab
        .timings
        .lock()
        .unwrap()
        .iter()
        .map(|(s, d)| format!("{s} {:.3} s", d.as_secs_f64()))
        .collect();
    say(&format!("replicator::{name}: {}", timings.join("; ")));
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

/// The example policy (`scripts/policies/enable-ou.rhai`) on its own OU and replica: the
/// replica's first cycle is a baseline; a user added with `ldapadd` (appended to the file
/// on the embedded directory) is enabled by the next cycle's policy, on pool01 with the
/// SIP address derived from mail; the cycle after it changes nothing; on the servers, a
/// user moved out of the OU is disabled. The users are deleted at the end.
fn policy_enables_new_users_of_an_ou(lab: &Lab) {
    let name = lab.name;
    let ou = "OU=Policy Test,DC=example,DC=com";
    let example = std::fs::read_to_string(support::root().join("scripts/policies/enable-ou.rhai"))
        .unwrap()
        .replace("OU=Sales,DC=example,DC=com", ou);
    let policy = lab.script("enable-ou.rhai", &example);
    let replica = lab.temp.path().join("policy.sqlite");
    let sync = || {
        lab.ocsh_on(
            &replica,
            &["replicator", "sync", "--policy", &policy, "--apply"],
        )
    };
    sync()
        .stdout_has("policy enable-ou.rhai: no user changed since its last run")
        .run();

    let dn = format!("CN=Policy New,{ou}");
    lab.add(&format!(
        "dn: {ou}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Policy Test\n\n\
         dn: {dn}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n\
         cn: Policy New\nsn: New\nsAMAccountName: policy.new\nuserPrincipalName: policy.new@example.com\n\
         mail: policy.new@example.com\n"
    ));
    sync()
        .stdout_has("1 added")
        .stdout_has("policy enable-ou: 1 to enable, 0 to disable")
        .stdout_has("msRTCSIP-PrimaryUserAddress  (absent) → sip:policy.new@example.com")
        .stdout_has("Applied 1 of 1 entry")
        .stdout_has("policy enable-ou.rhai: done")
        .run();
    let user = lab.workspace().find_user(&dn).unwrap();
    assert_eq!(user.enabled(), Some(true), "{name}");
    assert_eq!(user.sip(), Some("sip:policy.new@example.com"), "{name}");
    assert!(
        user.home_server()
            .is_some_and(|h| h.to_lowercase().contains("cn=pool01,")),
        "{name}: {:?}",
        user.home_server()
    );
    // Applied once: the next cycle sees the user changed (by the apply), not added.
    sync()
        .stdout_has("policy enable-ou: 0 to enable, 0 to disable")
        .stdout_has("No changes planned")
        .stdout_has("policy enable-ou.rhai: done")
        .run();
    let mut left = dn.clone();
    if matches!(lab.store, Store::Server(_)) {
        lab.move_to(&dn, "OU=Leavers,DC=example,DC=com");
        left = "CN=Policy New,OU=Leavers,DC=example,DC=com".into();
        sync()
            .stdout_has("policy enable-ou: 0 to enable, 1 to disable")
            .stdout_has("msRTCSIP-UserEnabled  TRUE → FALSE")
            .stdout_has("policy enable-ou.rhai: done")
            .run();
        assert_eq!(
            lab.workspace().find_user(&left).unwrap().enabled(),
            Some(false),
            "{name}"
        );
    }
    lab.delete(&left);
    lab.delete(ou);
}

crate::suite! { "replicator", Lab, start_lab; scenario, policy_enables_new_users_of_an_ou }

fn start_lab(name: &'static str) -> Result<Lab, String> {
    Ok(match support::start_server(name)? {
        None => Lab::embedded(),
        Some(server) => Lab::server(name, server),
    })
}

/// A directory that fails the incremental read on demand, to interrupt a cycle half-way.
struct Flaky {
    inner: EmbeddedDirectory,
    fail: AtomicBool,
}

#[async_trait]
impl Directory for Flaky {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn root(&self) -> Result<RootInfo, DirError> {
        self.inner.root().await
    }
    async fn search_page(
        &self,
        request: &SearchRequest,
        cursor: Option<PageCursor>,
    ) -> Result<Page, DirError> {
        if self.fail.load(Ordering::SeqCst)
            && (request.filter.contains("uSNChanged>=") || request.attrs.len() > 2)
        {
            return Err(DirError::Server("the connection dropped".into()));
        }
        self.inner.search_page(request, cursor).await
    }
    async fn modify(&self, dn: &str, changes: &[AttrChange]) -> Result<(), DirError> {
        self.inner.modify(dn, changes).await
    }
    async fn commit(&self) -> Result<(), DirError> {
        self.inner.commit().await
    }
    async fn change_state(&self) -> Result<Option<ChangeState>, DirError> {
        self.inner.change_state().await
    }
}

/// A cycle that fails half-way leaves the replica as it was (rows, cookie and the
/// regenerate flag), and is recorded as failed.
fn a_failed_cycle_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let flaky = Arc::new(Flaky {
        inner: EmbeddedDirectory::from_ldif(DEMO, "demo forest").unwrap(),
        fail: AtomicBool::new(false),
    });
    let ws = Workspace::open(flaky.clone(), Duration::from_secs(30)).unwrap();
    let path = temp.path().join("r.sqlite");
    let mut replica = Replica::open(&path).unwrap();
    sync_now(&ws, &mut replica).unwrap();
    let users = replica.users().unwrap();
    let cookies = replica.cookies().unwrap();

    // Changes the next cycle would pick up, then a failure while it reads them.
    let jane = "CN=Jane Doe,OU=Engineering,DC=example,DC=com";
    block_on(flaky.inner.modify(
        jane,
        &[AttrChange {
            attr: "msRTCSIP-FederationEnabled".into(),
            before: vec![],
            after: vec!["TRUE".into()],
        }],
    ))
    .unwrap();
    let before = replica.settings().unwrap();
    let mut regen = before.clone();
    regen.regenerate_cookies_now();
    replica.write_settings(&before, &regen).unwrap();
    flaky.fail.store(true, Ordering::SeqCst);
    let err = sync_now(&ws, &mut replica).unwrap_err().to_string();
    assert!(err.contains("the connection dropped"), "{err}");
    assert_eq!(replica.users().unwrap(), users);
    assert_eq!(replica.cookies().unwrap(), cookies);
    assert!(replica.settings().unwrap().regenerate_pending());
    let last = &replica.cycles(1).unwrap()[0];
    assert_eq!(last.status, "failed");
    assert!(
        last.errors[0].contains("the connection dropped"),
        "{last:?}"
    );

    // The next cycle does the work: initial (the flag is still set), Jane changed.
    flaky.fail.store(false, Ordering::SeqCst);
    let r = sync_now(&ws, &mut replica).unwrap();
    assert_eq!(r.kind, CycleKind::Initial);
    assert_eq!((r.added, r.changed, r.deleted), (0, 1, 0), "{r:?}");
    assert!(!replica.settings().unwrap().regenerate_pending());
}

/// `ocsh replicator run` cycles, and stops after the cycle in progress on SIGTERM.
#[cfg(unix)]
fn run_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let lab = Lab::embedded();
    let Store::Embedded(path) = &lab.store else {
        unreachable!()
    };
    // A live process whose output is read while it runs, so not `Test` (which waits for
    // the end); the same clean environment.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocsh"));
    support::clean_env(&mut cmd, lab.temp.path());
    let mut child = cmd
        .args(["replicator", "run", "--directory"])
        .arg(path)
        .arg("--replica")
        .arg(&lab.replica)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    assert!(banner.starts_with("replicating "), "{banner}");
    let cycle = lines.next().unwrap().unwrap();
    assert!(cycle.starts_with("cycle 1 (initial"), "{cycle}");
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?} {rest:?}");
    assert_eq!(rest, ["stopped"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    let replica = Replica::open(&lab.replica).unwrap();
    assert_eq!(replica.cycles(10).unwrap().len(), 1);
}

/// An entry added to the LDIF file by hand has no change number: the incremental cycle
/// still finds it through its DN listing, reads it on its own and adds it.
fn an_entry_added_by_hand_is_found() {
    let lab = Lab::embedded();
    lab.sync("first");
    let Store::Embedded(path) = &lab.store else {
        unreachable!()
    };
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str(
        "\ndn: CN=Hand Made,OU=Sales,DC=example,DC=com\nobjectClass: top\nobjectClass: person\n\
         objectClass: organizationalPerson\nobjectClass: user\nobjectCategory: CN=Person,CN=Schema,CN=Configuration,DC=example,DC=com\n\
         cn: Hand Made\nsAMAccountName: hand.made\nmsRTCSIP-UserEnabled: TRUE\n",
    );
    std::fs::write(path, text).unwrap();
    let r = lab.sync("after a hand edit");
    assert_eq!(r.kind, CycleKind::Incremental, "{r:?}");
    assert_eq!((r.added, r.changed, r.deleted), (1, 0, 0), "{r:?}");
    let problems = lab.replica().problems().unwrap();
    let kinds: Vec<&str> = problems
        .iter()
        .filter(|p| p.sam.as_deref() == Some("hand.made"))
        .map(|p| p.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "enabled_without_sip",
            "enabled_without_home_server",
            "flags_lack_enhanced_presence"
        ]
    );
}

/// `replicator problems` and `status` fit the terminal: at `COLUMNS=80` no line is wider
/// than 80 characters, long cells are wrapped and cut with `…`, and `--format json` has
/// the full text. On a pipe without `COLUMNS`, rows are whole (for grep).
fn tables_fit_the_terminal_width() {
    let lab = Lab::embedded();
    lab.sync("first");
    let run = |args: &[&str], columns: Option<&str>| {
        let t = Test::new()
            .args(args)
            .arg("--replica")
            .arg(lab.replica.display().to_string());
        match columns {
            Some(c) => t.env("COLUMNS", c),
            None => t,
        }
        .run()
        .stdout
    };
    for args in [
        &["replicator", "problems"][..],
        &["replicator", "status"][..],
    ] {
        let narrow = run(args, Some("80"));
        let widest = narrow.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(
            widest <= 80,
            "{args:?}: a line of {widest} columns:\n{narrow}"
        );
    }
    let narrow = run(&["replicator", "problems"], Some("80"));
    assert!(narrow.contains('…'), "nothing was cut:\n{narrow}");
    let json: serde_json::Value =
        serde_json::from_str(&run(&["replicator", "problems", "--format", "json"], None)).unwrap();
    let longest = json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["detail"].as_str().unwrap().to_string())
        .max_by_key(String::len)
        .unwrap();
    assert!(longest.len() > 80, "{longest}");
    assert!(!narrow.contains(&longest), "{narrow}");
    let whole = run(&["replicator", "problems"], None);
    assert!(whole.contains(&longest), "{whole}");
    let wide = run(&["replicator", "problems"], Some("200"));
    assert!(
        wide.contains("CN=Daniel Novak,OU=Engineering,DC=example,DC=com"),
        "{wide}"
    );
}

/// OpenLDAP without the syncprov overlay has no change feed: an incremental cycle lists
/// every user to find a deletion, and `ocsh replicator status` says so.
fn without_syncprov_lists_and_says_so(lab: &Lab) {
    lab.sync("first");
    let gone = lab
        .users()
        .into_iter()
        .find(|u| u.enabled.is_none() && normalize(&u.dn).unwrap().contains(",ou="))
        .unwrap();
    lab.delete(&gone.dn);
    let r = lab.sync("after a delete");
    assert_eq!((r.kind, r.deleted), (CycleKind::Incremental, 1), "{r:?}");
    assert!(
        r.deletions
            .contains("listing every user: the server does not offer RFC 4533 content sync"),
        "{}",
        r.deletions
    );
    assert!(r.entries_read > r.users, "{r:?}");
    lab.ocsh(&["replicator", "status"])
        .stdout_has("Deletions")
        .stdout_has("listing every user")
        .run();
}

fn start_slapd_without_syncprov() -> Result<Lab, String> {
    Server::openldap_with(&[("SYNCPROV", "0")]).map(|server| Lab::server("openldap", server))
}

/// A policy that throws is reported (exit code 5, the cycle kept) and changes nothing;
/// the next cycle gives the same users to the policy again, and once it works they are
/// enabled.
fn a_policy_that_throws_is_reported_and_retried() {
    let lab = Lab::embedded();
    let policy = lab.script("p.rhai", "throw \"the pool is not ready\";\n");
    let sync = || lab.ocsh(&["replicator", "sync", "--policy", &policy, "--apply"]);
    sync().run();
    lab.add(
        "dn: CN=Retry Me,OU=Sales,DC=example,DC=com\nobjectClass: top\nobjectClass: person\n\
         objectClass: organizationalPerson\nobjectClass: user\ncn: Retry Me\nsAMAccountName: retry.me\n\
         mail: retry.me@example.com\n",
    );
    // The cycle that adds the user, then one that adds nothing: the policy fails on both
    // (it is given the same user again).
    for added in ["1 added", "0 added"] {
        sync()
            .code(5)
            .stdout_has(added)
            .stdout_has("policy p.rhai: not done, retried next cycle: the policy failed")
            .stdout_has("the pool is not ready")
            .run();
    }
    let state = lab
        .replica()
        .policy_state(
            &std::fs::canonicalize(&policy)
                .unwrap()
                .display()
                .to_string(),
        )
        .unwrap();
    assert!(
        state
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("the pool is not ready")),
        "{state:?}"
    );
    assert_eq!(state.runs, 3);
    let Store::Embedded(forest) = &lab.store else {
        unreachable!()
    };
    assert!(
        !std::fs::read_to_string(forest)
            .unwrap()
            .contains("sip:retry.me@")
    );
    // Fixed: the cycles that failed are handled now (the user was added two cycles ago).
    std::fs::write(
        &policy,
        "for u in changes.added { if u.sam == \"retry.me\" { u.enable(pool(\"pool02\")); } }\n",
    )
    .unwrap();
    sync()
        .stdout_has("0 added")
        .stdout_has("Applied 1 of 1 entry")
        .stdout_has("policy p.rhai: done")
        .run();
    assert!(
        std::fs::read_to_string(forest)
            .unwrap()
            .contains("sip:retry.me@example.com")
    );
}

/// The plain tests, and the one that needs a slapd of its own (without syncprov).
pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
    let plain = |name: &'static str, f: fn()| support::harness::plain(module_path!(), name, f);
    #[allow(unused_mut)] // the SIGTERM test is Unix-only
    let mut all = vec![
        plain(
            "a_failed_cycle_changes_nothing",
            a_failed_cycle_changes_nothing,
        ),
        plain(
            "an_entry_added_by_hand_is_found",
            an_entry_added_by_hand_is_found,
        ),
        plain(
            "tables_fit_the_terminal_width",
            tables_fit_the_terminal_width,
        ),
        plain(
            "a_policy_that_throws_is_reported_and_retried",
            a_policy_that_throws_is_reported_and_retried,
        ),
        support::harness::own_server(
            module_path!(),
            "openldap",
            "without_syncprov_lists_and_says_so",
            start_slapd_without_syncprov,
            without_syncprov_lists_and_says_so,
        ),
    ];
    #[cfg(unix)]
    all.push(plain("run_stops_on_sigterm", run_stops_on_sigterm));
    all
}
