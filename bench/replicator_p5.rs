//! P5: an incremental replicator cycle costs what changed.
//!
//! On each server (Samba AD, OpenLDAP with syncprov, and OpenLDAP without it for the
//! listing fallback), with the demo forest plus 10,000 generated users: an initial cycle,
//! then 10 changes made with `ldapmodify` behind ocsh's back (8 attribute changes, a
//! rename into another OU, a deletion), then an incremental cycle. ocsh talks to the
//! server through a counting TCP proxy on loopback, so "bytes read" is what really came
//! over the wire for the cycle (the workspace is opened before counting starts); "entries
//! read" is the cycle's own count of the entries and messages its searches returned.
//! The yardstick of the same run is `ldapsearch` reading every user (paged).
//!
//! P5 holds when the incremental cycle's entries and bytes are both at most 5% of the
//! initial cycle's. Run: `cargo bench --bench replicator_p5` (root and the lab servers, as
//! for the tests; `OCSH_BENCH_BACKENDS=samba,openldap,openldap-nosyncprov` selects,
//! `OCSH_BENCH_USERS` changes the 10,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark: a failure is a failure

// The lab servers of the integration tests; the bench uses a part of that module.
#[allow(dead_code, unused_imports)]
#[path = "../tests/integration/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ocsh::directory::DirectorySpec;
use ocsh::plan::Workspace;
use ocsh::replica::{CycleKind, CycleReport, Replica};
use ocsh::script::api_replicator::sync_now;

use support::{Server, ServerKind};

const OU: &str = "OU=Bench,DC=example,DC=com";

/// Forwards loopback connections to `target`, counting the bytes the server sends.
struct Proxy {
    port: u16,
    down: Arc<AtomicU64>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicU64::new(0));
        let counter = down.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server, None));
                let counter = counter.clone();
                std::thread::spawn(move || pump(s2, c2, Some(counter)));
            }
        });
        Proxy { port, down }
    }

    fn bytes(&self) -> u64 {
        self.down.load(Ordering::SeqCst)
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>) {
    let mut buf = [0u8; 65536];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(c) = &count {
                    c.fetch_add(n as u64, Ordering::SeqCst);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

fn users_ldif(n: usize) -> String {
    let mut out =
        format!("dn: {OU}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Bench\n\n");
    for i in 1..=n {
        out.push_str(&format!(
            "dn: CN=Bench User {i:05},{OU}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n\
             objectClass: user\ncn: Bench User {i:05}\nsn: User {i:05}\ngivenName: Bench\ndisplayName: Bench User {i:05}\n\
             sAMAccountName: bench{i:05}\nuserPrincipalName: bench{i:05}@example.com\nmail: bench{i:05}@example.com\n\n"
        ));
    }
    out
}

struct Measured {
    report: CycleReport,
    bytes: u64,
    elapsed: Duration,
}

fn cycle(ws: &Workspace, replica: &mut Replica, proxy: &Proxy) -> Measured {
    let before = proxy.bytes();
    let started = Instant::now();
    let report = sync_now(ws, replica).unwrap();
    let elapsed = started.elapsed();
    // The proxy's threads may still be forwarding the last bytes.
    std::thread::sleep(Duration::from_millis(100));
    Measured {
        report,
        bytes: proxy.bytes() - before,
        elapsed,
    }
}

fn run(name: &str, server: Server, users: usize) -> bool {
    let leftovers = match server.kind {
        ServerKind::OpenLdap => support::fixtures::LEFTOVERS.to_string(),
        ServerKind::Samba => support::fixtures::leftovers_for_samba(),
    };
    server.load("leftovers.ldif", &leftovers);
    server.load("demo.ldif", support::fixtures::DEMO);
    let (load, load_time) = support::timed(|| server.load("bench.ldif", &users_ldif(users)));
    assert!(load.refused.is_empty(), "{name}: {:?}", load.refused);
    let host = server.env.ldap_url.trim_start_matches("ldap://");
    let target = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:389")
    };
    let proxy = Proxy::start(target);
    let url = format!("ldap://127.0.0.1:{}", proxy.port);
    let ldap = ocsh::directory::ldap::LdapOptions {
        url: url.clone(),
        ..server.env.ldap_options()
    };
    let temp = tempfile::tempdir().unwrap();
    let mut replica = Replica::open(&temp.path().join("replica.sqlite")).unwrap();
    let ws =
        Workspace::connect(&DirectorySpec::Ldap(url), &ldap, Duration::from_secs(120)).unwrap();

    let (listed, yard) = support::timed(|| {
        server.ldapsearch(support::fixtures::BASE, "sub", "(objectClass=user)", &["*"])
    });
    let initial = cycle(&ws, &mut replica, &proxy);
    assert_eq!(initial.report.kind, CycleKind::Initial);

    // 10 changes: 8 attribute changes, a rename into another OU, a deletion.
    for i in 1..=8 {
        server.replace(
            &format!("CN=Bench User {:05},{OU}", i * 997 % users + 1),
            "telephoneNumber",
            &[&format!("+1555000{i:04}")],
        );
    }
    server.ldapmodify(&format!(
        "dn: CN=Bench User {:05},{OU}\nchangetype: modrdn\nnewrdn: CN=Bench Moved\ndeleteoldrdn: 1\nnewsuperior: OU=Support,DC=example,DC=com\n",
        users / 2
    ));
    server.ldapmodify(&format!(
        "dn: CN=Bench User {:05},{OU}\nchangetype: delete\n",
        users / 3
    ));
    let inc = cycle(&ws, &mut replica, &proxy);
    assert_eq!(inc.report.kind, CycleKind::Incremental, "{:?}", inc.report);
    assert_eq!(
        (inc.report.added, inc.report.changed, inc.report.deleted),
        (0, 1, 1),
        "{name}: only the move is an OCS-visible change, and the deletion: {:?}",
        inc.report
    );

    let pct = |a: f64, b: f64| 100.0 * a / b.max(1.0);
    let entries = pct(
        inc.report.entries_read as f64,
        initial.report.entries_read as f64,
    );
    let bytes = pct(inc.bytes as f64, initial.bytes as f64);
    let ok = entries <= 5.0 && bytes <= 5.0;
    println!(
        "{name:22} users {:>6}  initial: {:>6} entries {:>9} bytes {:>6} ms | incremental: {:>5} entries {:>7} bytes {:>5} ms | \
         ratio entries {entries:.2}% bytes {bytes:.2}% time {:.1}% | P5 {} | deletions: {}",
        initial.report.users,
        initial.report.entries_read,
        initial.bytes,
        initial.elapsed.as_millis(),
        inc.report.entries_read,
        inc.bytes,
        inc.elapsed.as_millis(),
        pct(inc.elapsed.as_secs_f64(), initial.elapsed.as_secs_f64()),
        if ok { "holds" } else { "FAILS" },
        inc.report.deletions
    );
    println!(
        "{:22} yardstick: ldapsearch of every user {} entries {} ms (initial cycle {:.2}x); load of {users} users {} ms",
        "",
        listed.len(),
        yard.as_millis(),
        initial.elapsed.as_secs_f64() / yard.as_secs_f64().max(1e-9),
        load_time.as_millis()
    );
    ok
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let users: usize = std::env::var("OCSH_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let backends = std::env::var("OCSH_BENCH_BACKENDS")
        .unwrap_or_else(|_| "samba,openldap,openldap-nosyncprov".into());
    println!(
        "P5 (replicator): incremental cycle after 10 changes in {users} users, against the initial cycle"
    );
    let mut all = true;
    for b in backends.split(',').map(str::trim) {
        let server = match b {
            "samba" => Server::samba(),
            "openldap" => Server::openldap(),
            "openldap-nosyncprov" => Server::openldap_with(&[("SYNCPROV", "0")]),
            other => panic!("unknown backend {other}"),
        };
        let server = server.unwrap_or_else(|e| panic!("{b}: the server does not start:\n{e}"));
        let ok = run(b, server, users);
        // The listing fallback is there for comparison; P5 is about the change feeds.
        if b != "openldap-nosyncprov" {
            all &= ok;
        }
    }
    if !all {
        std::process::exit(1);
    }
}
