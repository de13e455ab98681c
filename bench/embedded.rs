//! The embedded directory's benchmark: `cargo bench --bench embedded`.
//!
//! Prints, each against a yardstick measured in the same run (the machine is shared and
//! noisy, so only ratios within one run mean something):
//! - plan + apply of 5,500 enables in a 10,000-user LDIF, against a read-only pass over
//!   the same 5,500 users (both through the release binary; bound 3x);
//! - the load of a 100,000-user LDIF (bound 1 s);
//! - an indexed lookup after that load (bound 30 ms);
//! - the peak memory of a run on that file against its size (`/usr/bin/time -v`;
//!   bound 3x).
//!
//! `OCSH_BENCH_USERS=N` changes the size of the large file (default 100,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark: a failure is a crash

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ocsh::directory::{EmbeddedDirectory, SearchRequest, search_all};

const DEMO: &str = include_str!("../src/directory/demo-forest.ldif");
const OU: &str = "OU=Bench,DC=example,DC=com";
const POOL01: &str = "CN=LC Services,CN=Microsoft,CN=pool01,CN=Pools,CN=RTC Service,\
                      CN=Services,CN=Configuration,DC=example,DC=com";

/// The demo forest plus `users` users in OU=Bench; of every 20, 11 have never been
/// enabled (5,500 of 10,000) and the others are enabled on pool01.
fn forest(users: usize) -> String {
    let mut out = String::with_capacity(users * 640 + DEMO.len());
    out.push_str(DEMO.trim_end());
    out.push_str(&format!(
        "\n\ndn: {OU}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Bench\n\n"
    ));
    for i in 0..users {
        let sam = format!("bench{i:06}");
        out.push_str(&format!(
            "dn: CN=Bench User {i:06},{OU}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: user\n\
             objectCategory: CN=Person,CN=Schema,CN=Configuration,DC=example,DC=com\n\
             cn: Bench User {i:06}\nsn: User {i:06}\ngivenName: Bench\n\
             displayName: Bench User {i:06}\nsAMAccountName: {sam}\n\
             userPrincipalName: {sam}@example.com\nmail: {sam}@example.com\n\
             userAccountControl: 512\ntelephoneNumber: +1 555 {:04}\n\
             proxyAddresses: SMTP:{sam}@example.com\n",
            i % 10_000
        ));
        if i % 20 >= 11 {
            out.push_str(&format!(
                "proxyAddresses: SIP:{sam}@example.com\nmsRTCSIP-UserEnabled: TRUE\n\
                 msRTCSIP-PrimaryUserAddress: sip:{sam}@example.com\n\
                 msRTCSIP-PrimaryHomeServer: {POOL01}\nmsRTCSIP-OptionFlags: 256\n"
            ));
        }
        out.push('\n');
    }
    out
}

const NEVER_ENABLED: &str = "(!(msRTCSIP-UserEnabled=*))";

const ENABLE: &str = r#"//! Enable every never-enabled user on pool01.
let home = pool("pool01");
let n = 0;
for u in users_in("OU=Bench,DC=example,DC=com", "(!(msRTCSIP-UserEnabled=*))") { u.enable(home); n += 1; }
print(`${n} enabled`);
"#;

const READ_ONLY: &str = r#"//! Read the same users, change nothing.
let n = 0;
let chars = 0;
for u in users_in("OU=Bench,DC=example,DC=com", "(!(msRTCSIP-UserEnabled=*))") { chars += u.sam.len() + (u.mail ?? "").len(); n += 1; }
print(`${n} read (${chars})`);
"#;

/// One run of the release binary: wall time, CPU time (user + system, from
/// `/usr/bin/time`: on a shared machine the wall time includes waiting for a core), peak
/// resident memory in kB, stdout.
struct Run {
    wall: Duration,
    cpu: Option<Duration>,
    peak_kb: Option<u64>,
    stdout: String,
}

const TIME: &str = "/usr/bin/time";

fn ocsh(dir: &Path, args: &[&str]) -> Run {
    let report = dir.join("time.txt");
    let timed = Path::new(TIME).exists();
    let mut cmd = if timed {
        let mut c = Command::new(TIME);
        c.arg("-o")
            .arg(&report)
            .args(["-f", "%U %S %M"])
            .arg(env!("CARGO_BIN_EXE_ocsh"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_ocsh"))
    };
    let started = Instant::now();
    let out = cmd
        .current_dir(dir)
        .args(args)
        .env("OCSH_LOCK_WAIT", "60")
        .output()
        .unwrap();
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ocsh {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut cpu, mut peak_kb) = (None, None);
    if timed {
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        let fields: Vec<&str> = text.split_whitespace().collect();
        if let [user, system, peak] = fields.as_slice() {
            let user: f64 = user.parse().unwrap_or(0.0);
            let system: f64 = system.parse().unwrap_or(0.0);
            cpu = Some(Duration::from_secs_f64(user + system));
            peak_kb = peak.parse().ok();
        }
    }
    Run {
        wall,
        cpu,
        peak_kb,
        stdout,
    }
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64()),
        _ => "n/a".into(),
    }
}

fn cpu(d: Option<Duration>) -> String {
    d.map_or_else(|| "n/a".into(), secs)
}

/// The CPU time of this thread so far (Linux), so that a load is not charged for the
/// time it waited for a core.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn main() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let large_users: usize = std::env::var("OCSH_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    println!(
        "ocsh embedded-directory benchmark ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. Plan + apply of 5,500 enables against a read-only pass over the same users.
    let small = dir.join("users-10k.ldif");
    std::fs::write(&small, forest(10_000)).unwrap();
    std::fs::write(dir.join("enable.rhai"), ENABLE).unwrap();
    std::fs::write(dir.join("read.rhai"), READ_ONLY).unwrap();
    let small_arg = small.to_str().unwrap();
    let read = ocsh(dir, &["run", "read.rhai", "--directory", small_arg]);
    assert!(read.stdout.contains("5500 read"), "{}", read.stdout);
    let apply = ocsh(
        dir,
        &[
            "run",
            "enable.rhai",
            "--directory",
            small_arg,
            "--apply",
            "--yes",
            "--journal",
            "journal.jsonl",
        ],
    );
    assert!(
        apply.stdout.contains("Applied 5500 of 5500 entries"),
        "{}",
        apply.stdout
    );
    let again = ocsh(dir, &["run", "read.rhai", "--directory", small_arg]);
    assert!(
        again.stdout.contains("0 read"),
        "after the apply: {}",
        again.stdout
    );
    println!(
        "plan+apply of 5,500 enables in 10,000 users: {} wall, {} CPU | read-only pass over them: {} wall, {} CPU | ratio {:.2}x wall, {} CPU (bound 3x)",
        secs(apply.wall),
        cpu(apply.cpu),
        secs(read.wall),
        cpu(read.cpu),
        apply.wall.as_secs_f64() / read.wall.as_secs_f64(),
        ratio(apply.cpu, read.cpu),
    );

    // 2. Load of the large file, in this process.
    let large = dir.join("users-large.ldif");
    std::fs::write(&large, forest(large_users)).unwrap();
    let size = std::fs::metadata(&large).unwrap().len();
    let mut loads = Vec::new();
    let mut cpus = Vec::new();
    let mut loaded = None;
    for _ in 0..3 {
        drop(loaded.take());
        let started = Instant::now();
        let cpu_before = thread_cpu();
        let d = EmbeddedDirectory::open(&large).unwrap();
        loads.push(started.elapsed());
        if let (Some(a), Some(b)) = (cpu_before, thread_cpu()) {
            cpus.push(b.saturating_sub(a));
        }
        loaded = Some(d);
    }
    loads.sort();
    cpus.sort();
    let d = loaded.unwrap();
    println!(
        "load of {large_users} users ({:.1} MB): median {} wall, {} CPU, of 3 (bound 1 s)",
        size as f64 / 1e6,
        secs(loads[1]),
        cpu(cpus.get(1).copied())
    );

    // 3. Indexed lookups after the load: the workspace's user lookup, and its SIP check.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let lookups = [
        format!(
            "(&(objectCategory=person)(objectClass=user)(sAMAccountName=bench{:06}))",
            large_users / 2
        ),
        format!(
            "(&(objectCategory=person)(objectClass=user)(|(userPrincipalName=bench{0:06}@example.com)(mail=bench{0:06}@example.com)))",
            large_users / 3
        ),
        format!(
            "(&(objectCategory=person)(objectClass=user)(msRTCSIP-PrimaryUserAddress=sip:bench{:06}@example.com))",
            large_users - 1
        ),
    ];
    for filter in &lookups {
        let request = SearchRequest::subtree("DC=example,DC=com", filter.clone());
        let started = Instant::now();
        let found = rt.block_on(search_all(&d, &request)).unwrap();
        let took = started.elapsed();
        assert!(found.len() <= 1, "{filter}");
        println!(
            "lookup {filter}: {} found in {:.3} ms (bound 30 ms)",
            found.len(),
            took.as_secs_f64() * 1e3
        );
    }
    let request = SearchRequest::subtree("DC=example,DC=com", NEVER_ENABLED);
    let started = Instant::now();
    let never = rt.block_on(search_all(&d, &request)).unwrap().len();
    println!(
        "search {NEVER_ENABLED} over {large_users} users: {never} found in {}",
        secs(started.elapsed())
    );
    drop(d);

    // 4. Peak memory of a run on the large file (one lookup) against the file's size.
    std::fs::write(dir.join("one.rhai"), "print(user(\"bench000001\").sam);\n").unwrap();
    let one = ocsh(
        dir,
        &["run", "one.rhai", "--directory", large.to_str().unwrap()],
    );
    match one.peak_kb {
        Some(kb) => println!(
            "peak memory of a run on the {:.1} MB file: {:.1} MB, {:.2}x the file (bound 3x); the run took {} wall, {} CPU",
            size as f64 / 1e6,
            kb as f64 / 1e3,
            kb as f64 * 1e3 / size as f64,
            secs(one.wall),
            cpu(one.cpu)
        ),
        None => println!("peak memory: {TIME} is not installed (apt-get install time)"),
    }
}
