//! Bulk jobs at directory scale, on the embedded directory, OpenLDAP and Samba AD (issue 9):
//! lookups and staged changes inside paged loops, nested paged loops, loops left early,
//! and the issue's own bulk enable through the real binary with `--apply`.
//!
//! Each backend gets the demo forest's pools (no demo users) and OU=Scale: 10,000 users on
//! OpenLDAP (the issue's size), 3,100 on Samba AD and the embedded directory, 45% of them
//! enabled on pool01..pool03, the rest never enabled. With pages of 1,000 (AD's
//! MaxPageSize) that is 4 to 10 pages; OpenLDAP is also capped at 500 entries a page
//! (`size.pr`), so its searches must step down. Fixtures are generated here, not committed.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ocsh::directory::ldap::LdapOptions;
use ocsh::directory::{DirectorySpec, Entry, ldif};
use ocsh::ocs::dn::normalize;
use ocsh::plan::Workspace;
use ocsh::script::{Sandbox, Session};

use crate::support::fixtures::{self, r2_home};
use crate::support::{Server, Test, say, timed};

const TIMEOUT: Duration = Duration::from_secs(120);
const SCALE_OU: &str = "OU=Scale,DC=example,DC=com";
const POOLS: [&str; 3] = ["pool01", "pool02", "pool03"];

/// The OpenLDAP lab's page limit in these tests: below ocsh's 1,000, so that a search
/// must learn it.
const OPENLDAP_PAGE_LIMIT: usize = 500;

/// User `i` (0-based) of OU=Scale: enabled (on `POOLS[i % 3]`) when `i % 20 < 9`.
fn enabled_pool(i: usize) -> Option<&'static str> {
    (i % 20 < 9).then(|| POOLS[i % 3])
}

fn sam(i: usize) -> String {
    format!("scale{i:05}")
}

/// The demo forest without its users: the domain, containers, pools, SIP domains.
pub(crate) fn deployment() -> String {
    let entries: Vec<Entry> = ldif::parse(fixtures::DEMO, "demo forest")
        .unwrap()
        .into_iter()
        .filter(|e| {
            !e.get("objectClass")
                .iter()
                .any(|c| c.eq_ignore_ascii_case("user"))
        })
        .collect();
    ldif::write(&entries)
}

/// OU=Scale with `n` users.
fn scale_users(n: usize) -> String {
    let mut out =
        format!("dn: {SCALE_OU}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Scale\n\n");
    for i in 0..n {
        let s = sam(i);
        out.push_str(&format!(
            "dn: CN=Scale User {i:05},{SCALE_OU}
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
cn: Scale User {i:05}
sn: User {i:05}
givenName: Scale
sAMAccountName: {s}
userPrincipalName: {s}@example.com
mail: {s}@example.com
userAccountControl: 512
"
        ));
        if let Some(pool) = enabled_pool(i) {
            out.push_str(&format!(
                "proxyAddresses: SIP:{s}@example.com
msRTCSIP-UserEnabled: TRUE
msRTCSIP-PrimaryUserAddress: sip:{s}@example.com
msRTCSIP-PrimaryHomeServer: {}
msRTCSIP-OptionFlags: 256
",
                r2_home(pool)
            ));
        }
        out.push('\n');
    }
    out
}

pub(crate) enum Store {
    Embedded {
        path: PathBuf,
        _dir: tempfile::TempDir,
    },
    Server(Box<Server>),
}

pub(crate) struct Backend {
    name: &'static str,
    users: usize,
    store: Store,
}

impl Backend {
    fn embedded(users: usize) -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("forest.ldif");
        std::fs::write(&path, format!("{}\n{}", deployment(), scale_users(users))).unwrap();
        Backend {
            name: "embedded",
            users,
            store: Store::Embedded { path, _dir: dir },
        }
    }

    fn server(name: &'static str, server: Server, users: usize) -> Backend {
        let r = server.load("deployment.ldif", &deployment());
        assert!(r.refused.is_empty(), "{name}: deployment refused: {r:?}");
        let (r, took) = timed(|| server.load("scale.ldif", &scale_users(users)));
        assert!(r.refused.is_empty(), "{name}: OU=Scale refused: {r:?}");
        assert_eq!(r.added, users + 1, "{name}: {}", r.summary);
        say(&format!(
            "{name}: loaded {users} users in {:.1} s",
            took.as_secs_f64()
        ));
        Backend {
            name,
            users,
            store: Store::Server(Box::new(server)),
        }
    }

    fn lab(&self) -> Option<&Server> {
        match &self.store {
            Store::Server(s) => Some(s),
            Store::Embedded { .. } => None,
        }
    }

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

    fn session(&self) -> Session {
        Session::new(
            self.workspace(),
            rhai::Map::new(),
            &Sandbox::default(),
            Box::new(std::io::sink()),
        )
    }

    /// Every entry of OU=Scale as read without ocsh: ldapsearch, or the file parsed.
    fn snapshot(&self) -> BTreeMap<String, Entry> {
        let entries = match &self.store {
            Store::Server(s) => s.ldapsearch(SCALE_OU, "one", "(objectClass=user)", &["*"]),
            Store::Embedded { path, .. } => {
                let text = std::fs::read_to_string(path).unwrap();
                ldif::parse(&text, "forest.ldif")
                    .unwrap()
                    .into_iter()
                    .filter(|e| {
                        e.get("sAMAccountName")
                            .first()
                            .is_some_and(|s| s.starts_with("scale"))
                    })
                    .collect()
            }
        };
        entries
            .into_iter()
            .map(|e| (e.first("sAMAccountName").unwrap().to_string(), e))
            .collect()
    }

    /// `ocsh ARGS --directory D [--bind-dn ...]` with the password in OCSH_PASSWORD.
    fn ocsh(&self, args: &[&str]) -> Test {
        let t = Test::new().args(args);
        match &self.store {
            Store::Embedded { path, .. } => t.arg("--directory").arg(path.display().to_string()),
            Store::Server(s) => t
                .args(["--directory", &s.env.ldap_url, "--bind-dn", &s.env.bind_dn])
                .env("OCSH_PASSWORD", &s.env.password),
        }
    }
}

fn run(s: &mut Session, code: &str) -> String {
    match s.run("<case>", code) {
        Ok(v) => ocsh::script::values::to_text(&v),
        Err(e) => panic!("{code}\n  failed: {e}"),
    }
}

/// What OU=Scale holds now, read without ocsh (the cases share the fixture and run in
/// any order; the last one enables users): enabled users, and users per pool.
struct Census {
    enabled: usize,
    on_pool: BTreeMap<&'static str, usize>,
}

fn census(b: &Backend) -> Census {
    let snapshot = b.snapshot();
    assert_eq!(snapshot.len(), b.users, "{}", b.name);
    let mut c = Census {
        enabled: 0,
        on_pool: POOLS.iter().map(|p| (*p, 0)).collect(),
    };
    for e in snapshot.values() {
        if e.first("msRTCSIP-UserEnabled").is_some() {
            c.enabled += 1;
        }
        if let Some(home) = e.first("msRTCSIP-PrimaryHomeServer") {
            for p in POOLS {
                if ocsh::ocs::dn::same_dn(home, &r2_home(p)) {
                    *c.on_pool.entry(p).or_default() += 1;
                }
            }
        }
    }
    c
}

// ---------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------

/// Every user of OU=Scale (3,100 or 10,000: 4 to 25 pages) is looked up again inside the
/// loop (by DN, every tenth by sAMAccountName), and every one gets a staged change: enable (with its
/// SIP-uniqueness search) for the never-enabled, a flag for the enabled.
fn each_user_looked_up_and_staged_in_one_paged_loop_3100_or_10000_users(b: &Backend) {
    let census = census(b);
    let mut s = b.session();
    let code = format!(
        r#"let n = 0; let enabled = 0;
        for u in users_in({SCALE_OU:?}) {{
            // By DN (a base search), and every tenth user by sAMAccountName (a filter).
            let again = if n % 10 == 0 {{ user(u.sam) }} else {{ user(u.dn) }};
            if again.dn != u.dn {{ throw `${{u.sam}} found as ${{again.dn}}`; }}
            if u.enabled == () {{ u.enable(pool("pool02")); }}
            else {{ u.flags = u.flags | flags(["public_im"]); enabled += 1; }}
            n += 1;
        }}
        `${{n}} ${{enabled}}`"#
    );
    let (got, took) = timed(|| run(&mut s, &code));
    assert_eq!(got, format!("{} {}", b.users, census.enabled), "{}", b.name);
    assert_eq!(
        s.host().ws.borrow().plan().entry_count(),
        b.users,
        "{}: one staged entry per user",
        b.name
    );
    say(&format!(
        "[{}] {} users looked up and staged in one paged loop: {:.1} s",
        b.name,
        b.users,
        took.as_secs_f64()
    ));
}

/// Users of each pool inside a loop over the pools, with a lookup in the inner loop (by
/// DN, every tenth by SIP address); and a paged loop inside a paged loop (every 1,000th user of OU=Scale counts
/// pool02's users), so that two searches are open at once on one directory.
fn nested_paged_loops_3100_or_10000_users(b: &Backend) {
    let census = census(b);
    let mut s = b.session();
    let code = r#"let counts = #{};
        for p in pools() {
            let n = 0;
            for u in p.users() {
                if u.sip != () {
                    let same = if n % 10 == 0 { user(u.sip) } else { user(u.dn) };
                    if same.dn != u.dn { throw `${u.sip} found as ${same.dn}`; }
                    n += 1;
                }
            }
            counts[p.name] = n;
        }
        let inner = [];
        let i = 0;
        for u in users_in("OU=Scale,DC=example,DC=com") {
            if i % 1000 == 0 { inner.push(pool("pool02").users().count()); }
            i += 1;
        }
        `${counts.pool01} ${counts.pool02} ${counts.pool03} ${i} ${inner.len()} ${inner[0]} ${inner[inner.len() - 1]}`"#;
    let got = run(&mut s, code);
    let p2 = census.on_pool["pool02"];
    let loops = b.users.div_ceil(1000);
    assert_eq!(
        got,
        format!(
            "{} {p2} {} {} {loops} {p2} {p2}",
            census.on_pool["pool01"], census.on_pool["pool03"], b.users
        ),
        "{}",
        b.name
    );
}

/// Loops left after a few users, three times as many as the backend keeps searches open,
/// then a full loop: it sees every user, and (on a server) the loops left no more than a
/// few connections open.
fn loops_left_early_release_their_search(b: &Backend) {
    let mut s = b.session();
    let code = format!(
        r#"for k in 0..24 {{
            let n = 0;
            for u in users_in({SCALE_OU:?}) {{ n += 1; if n == 3 {{ break; }} }}
        }}
        users_in({SCALE_OU:?}).count()"#
    );
    assert_eq!(run(&mut s, &code), b.users.to_string(), "{}", b.name);
    if let Some(lab) = b.lab() {
        let port = url::Url::parse(&lab.env.ldap_url)
            .unwrap()
            .port()
            .unwrap_or(389);
        let open = established_to(port);
        // One shared lane, a few idle links kept for reuse, nothing per abandoned loop.
        assert!(
            open <= 6,
            "{}: {open} connections to the server are still open after 24 abandoned loops",
            b.name
        );
    }
}

/// `--directory` with a list: a first DC that does not answer is left for the next, and
/// the summary names the one used.
fn a_dc_list_uses_the_first_that_answers(b: &Backend) {
    let Some(lab) = b.lab() else {
        return; // a list of servers means nothing to an LDIF file
    };
    let url = url::Url::parse(&lab.env.ldap_url).unwrap();
    let used = format!(
        "ldap://{}:{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(389)
    );
    let list = format!("ldap://127.0.0.1:1, {}", lab.env.ldap_url);
    Test::new()
        .file(
            "count.rhai",
            format!("print(users_in({SCALE_OU:?}).count());\n"),
        )
        .in_tmp()
        .args([
            "run",
            "count.rhai",
            "--directory",
            &list,
            "--bind-dn",
            &lab.env.bind_dn,
        ])
        .env("OCSH_PASSWORD", &lab.env.password)
        .stdout_has(format!("No changes planned against {used}."))
        .run();
}

/// Established TCP connections from this process's side to `port` on loopback (the
/// server's side of each has the port as its local one; ours as the remote one).
fn established_to(port: u16) -> usize {
    let mut n = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 || cols[3] != "01" {
                continue;
            }
            let remote_port = cols[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if remote_port == Some(port) {
                n += 1;
            }
        }
    }
    n
}

/// The issue's loop, run as a new user would: `ocsh run` with `--apply --yes`. It enables
/// every never-enabled user on pool01 with the SIP address derived from mail, and changes
/// nothing else: each entry is compared before and after.
fn the_issue_loop_enables_every_never_enabled_user_through_the_binary(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("enable-never-enabled.rhai");
    std::fs::write(
        &script,
        r#"let p = pool("ocspool1");
for u in users("(&(objectClass=user)(!(msRTCSIP-UserEnabled=*))(mail=*))") { u.enable(p); }
"#
        .replace("ocspool1", "pool01"),
    )
    .unwrap();
    let before = b.snapshot();
    assert_eq!(before.len(), b.users, "{}", b.name);
    let never = b.users - census(b).enabled;
    assert!(never > 0, "{}: no never-enabled user left", b.name);
    let script = script.display().to_string();
    let (out, took) = timed(|| {
        b.ocsh(&["run", &script, "--apply", "--yes"])
            .stdout_has(format!(
                "Applied {never} of {never} entries: 0 conflicted, 0 failed."
            ))
            .run()
    });
    drop(out);
    let after = b.snapshot();
    assert_eq!(after.len(), b.users, "{}", b.name);
    let home = normalize(&r2_home("pool01")).unwrap();
    let mut changed = 0;
    for (sam, was) in &before {
        let now = &after[sam];
        if was.first("msRTCSIP-UserEnabled").is_some() {
            assert_eq!(
                comparable(was),
                comparable(now),
                "{}: {sam} was enabled already and changed",
                b.name
            );
            continue;
        }
        changed += 1;
        let got = |a: &str| now.first(a).unwrap_or_default().to_string();
        assert_eq!(got("msRTCSIP-UserEnabled"), "TRUE", "{}: {sam}", b.name);
        assert_eq!(
            got("msRTCSIP-PrimaryUserAddress"),
            format!("sip:{sam}@example.com"),
            "{}: {sam}",
            b.name
        );
        assert_eq!(
            normalize(&got("msRTCSIP-PrimaryHomeServer")).unwrap(),
            home,
            "{}: {sam}",
            b.name
        );
        assert_eq!(got("msRTCSIP-OptionFlags"), "256", "{}: {sam}", b.name);
        // Nothing but the OCS attributes and the sip: proxy address changed.
        let rest = |e: &Entry| {
            comparable(e)
                .into_iter()
                .filter(|(a, _)| !a.starts_with("msrtcsip-") && a != "proxyaddresses")
                .collect::<Vec<_>>()
        };
        assert_eq!(rest(was), rest(now), "{}: {sam}", b.name);
    }
    assert_eq!(changed, never, "{}", b.name);
    say(&format!(
        "[{}] the issue's loop enabled {never} of {} users through the binary in {:.1} s",
        b.name,
        b.users,
        took.as_secs_f64()
    ));
    // A second run finds nothing left to do.
    b.ocsh(&["run", &script])
        .stdout_has("No changes planned")
        .run();
}

/// An entry's attributes, names folded, values sorted, without the ones a server changes
/// on every write (USNs, timestamps, CSNs).
fn comparable(e: &Entry) -> Vec<(String, Vec<String>)> {
    let volatile = [
        "usnchanged",
        "whenchanged",
        "modifytimestamp",
        "entrycsn",
        "modifiersname",
        "dscorepropagationdata",
    ];
    let mut out: Vec<(String, Vec<String>)> = e
        .attributes()
        .iter()
        .map(|a| {
            let mut v = a.values.clone();
            v.sort();
            (a.name.to_ascii_lowercase(), v)
        })
        .filter(|(n, _)| !volatile.contains(&n.as_str()))
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// The suite: one trial per case and backend, on one fixture per backend
// ---------------------------------------------------------------------------------------

crate::suite! { "scale", Backend, start_backend;
    each_user_looked_up_and_staged_in_one_paged_loop_3100_or_10000_users,
    nested_paged_loops_3100_or_10000_users,
    loops_left_early_release_their_search,
    a_dc_list_uses_the_first_that_answers,
    // Last: it changes the directory.
    the_issue_loop_enables_every_never_enabled_user_through_the_binary,
}

/// 3,100 users on the embedded directory and Samba AD, 10,000 (the issue's size) on
/// OpenLDAP, whose pages are also capped below ocsh's 1,000.
fn start_backend(name: &'static str) -> Result<Backend, String> {
    match name {
        "embedded" => Ok(Backend::embedded(3100)),
        "openldap" => Server::openldap().map(|server| {
            server.limit_paged_results(OPENLDAP_PAGE_LIMIT);
            Backend::server("openldap", server, 10_000)
        }),
        "samba" => Server::samba().map(|server| Backend::server("samba", server, 3100)),
        other => Err(format!("no backend {other}")),
    }
}
