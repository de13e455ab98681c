//! The one support module of the integration tests: the harness (trials, shared labs,
//! backend selection), the `Test` builder for the real binary, the lab servers of
//! `tests/servers/` (started by their own scripts, stopped by a guard), the OpenLDAP
//! client tools, and the LDIF fixtures.

pub mod binary;
pub mod fixtures;
pub mod harness;

pub use binary::Test;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ocsh::directory::Entry;
use ocsh::directory::ldap::LdapOptions;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A script of `tests/servers/`.
pub fn server_script(name: &str) -> PathBuf {
    root().join("tests/servers").join(name)
}

/// Writes a line to the process's real stderr, past the test harness's capture, so that
/// skips and timings show in a plain `cargo test` run.
pub fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// True under CI (`CI=true`, as GitHub Actions, GitLab and most others set it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The backends `OCSH_TEST_BACKENDS` selects (comma list; default all three).
pub fn selected_backends() -> Vec<String> {
    let list =
        std::env::var("OCSH_TEST_BACKENDS").unwrap_or_else(|_| "embedded,openldap,samba".into());
    list.split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Makes `cmd` independent of the developer's environment, the one way every test
/// does: no `OCSH_*` variable, no terminal size (`COLUMNS`, `LINES`: tables are laid out
/// for a pipe unless a test sets them), and `HOME` and the XDG folders in `home`, so that
/// no profile, history, journal or replica of the user's is read or written.
pub fn clean_env(cmd: &mut Command, home: &Path) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OCSH_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("COLUMNS").env_remove("LINES");
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"));
}

/// A check that the harness itself holds: no test file outside this crate (Cargo.toml has
/// `autotests = false`, so a stray `tests/*.rs` would never be built or run).
pub fn harness_self_checks() -> Vec<libtest_mimic::Trial> {
    vec![libtest_mimic::Trial::test(
        "harness::no_test_file_outside_the_integration_crate",
        || {
            let stray: Vec<String> = std::fs::read_dir(root().join("tests"))
                .map_err(|e| format!("tests/: {e}"))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .map(|p| p.display().to_string())
                .collect();
            if stray.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "these test files are never built (autotests = false): {}; \
                     move them into tests/integration/ (see its README)",
                    stray.join(", ")
                )
                .into())
            }
        },
    )]
}

/// Runs a future to completion on a fresh current-thread runtime (I/O and timers on):
/// tests are synchronous, the directory trait is not.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Replaces `attr` of `dn` in an LDIF file as another writer would: a second
/// `EmbeddedDirectory` on the same file, modify (against the current values), commit.
pub fn replace_in_ldif(path: &Path, dn: &str, attr: &str, values: &[&str]) {
    use ocsh::directory::{AttrChange, Directory, EmbeddedDirectory};
    let other = EmbeddedDirectory::open(path).unwrap();
    let before = other
        .entries()
        .into_iter()
        .find(|e| ocsh::ocs::dn::same_dn(&e.dn, dn))
        .unwrap_or_else(|| panic!("no {dn} in {}", path.display()))
        .get(attr)
        .to_vec();
    let change = AttrChange {
        attr: attr.to_string(),
        before,
        after: values.iter().map(|v| v.to_string()).collect(),
    };
    block_on(async {
        other.modify(dn, &[change]).await.unwrap();
        other.commit().await.unwrap();
    });
}

/// The settings a setup script writes to `DIR/env`.
#[derive(Debug, Clone)]
pub struct ServerEnv {
    pub ldap_url: String,
    pub ldaps_url: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub bind_dn: String,
    pub password: String,
}

/// Reads one `KEY='value'` line as the setup scripts quote it (`'\''` for a quote).
fn unquote(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '\\' if !quoted => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c => out.push(c),
        }
    }
    out
}

impl ServerEnv {
    /// Reads `dir/env`.
    pub fn read(dir: &Path) -> Result<ServerEnv, String> {
        let path = dir.join("env");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut vars = std::collections::HashMap::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                vars.insert(k.trim().to_string(), unquote(v));
            }
        }
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .ok_or_else(|| format!("{} has no {k}", path.display()))
        };
        Ok(ServerEnv {
            ldap_url: get("OCSH_TEST_LDAP_URL")?,
            ldaps_url: vars.get("OCSH_TEST_LDAPS_URL").cloned(),
            ca_cert: vars.get("OCSH_TEST_CA_CERT").map(PathBuf::from),
            bind_dn: get("OCSH_TEST_BIND_DN")?,
            password: get("OCSH_TEST_PASSWORD")?,
        })
    }

    /// ocsh's connection settings for this server (plain LDAP; `url` is set by the
    /// directory spec).
    pub fn ldap_options(&self) -> LdapOptions {
        LdapOptions {
            url: self.ldap_url.clone(),
            connect_timeout: Duration::from_secs(10),
            op_timeout: Duration::from_secs(60),
            bind_dn: Some(self.bind_dn.clone()),
            password: Some(self.password.clone()),
            ..LdapOptions::default()
        }
    }
}

/// The server of a backend, started: `None` for the embedded directory (no server).
pub fn start_server(backend: &str) -> Result<Option<Server>, String> {
    match backend {
        "embedded" => Ok(None),
        "openldap" => Server::openldap().map(Some),
        "samba" => Server::samba().map(Some),
        other => Err(format!("no backend {other}")),
    }
}

/// The shipped scripts (`scripts/*.rhai`, relative to the repository root), each with the
/// arguments of its first `@example` header line, in name order.
pub fn shipped_scripts() -> Vec<(String, Vec<String>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let source = std::fs::read_to_string(p).unwrap();
            let header = ocsh::script::header::Header::parse(&source).unwrap();
            let example = header
                .examples
                .first()
                .unwrap_or_else(|| panic!("{} has no @example line", p.display()));
            (
                format!("scripts/{}", p.file_name().unwrap().to_string_lossy()),
                example.split_whitespace().map(str::to_string).collect(),
            )
        })
        .collect()
}

/// A loopback TCP port nothing listens on now (the system picks it).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| format!("no free loopback port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Which lab server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    OpenLdap,
    Samba,
}

impl ServerKind {
    fn stop_script(self) -> &'static str {
        match self {
            ServerKind::OpenLdap => "openldap-stop.sh",
            ServerKind::Samba => "samba-stop.sh",
        }
    }
}

/// Stops the server started from `dir` when dropped, also while a panic unwinds. Made
/// before the setup script runs: the stop scripts do nothing when nothing runs.
struct StopGuard {
    kind: ServerKind,
    dir: PathBuf,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        let out = Command::new(server_script(self.kind.stop_script()))
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "stopping the {:?} server in {} failed: {}{}",
                self.kind,
                self.dir.display(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cannot run {}: {e}", self.kind.stop_script()),
        }
    }
}

/// A running lab server, stopped when dropped.
pub struct Server {
    pub kind: ServerKind,
    pub dir: PathBuf,
    pub env: ServerEnv,
    /// The password for the client tools' `-y`.
    secrets: tempfile::TempDir,
    // Field order matters: the guard stops the server before the temp dir goes.
    _guard: StopGuard,
    /// Samba only: the lock all Samba tests share (ports 389/636 are fixed), released
    /// after the guard has stopped the server.
    _lock: Option<std::fs::File>,
    _temp: Option<tempfile::TempDir>,
}

/// What `load-ldif.sh` reported.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub summary: String,
    /// Entries added, and entries that were there already.
    pub added: usize,
    pub existed: usize,
    /// `(rc, DN)` of every refused entry other than "already exists".
    pub refused: Vec<(u32, String)>,
}

impl LoadReport {
    /// The refused DNs, normalised, sorted.
    pub fn refused_dns(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .refused
            .iter()
            .map(|(_, dn)| ocsh::ocs::dn::normalize(dn).unwrap_or_else(|_| dn.clone()))
            .collect();
        v.sort();
        v
    }
}

fn transcript(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Server {
    fn start(
        kind: ServerKind,
        dir: PathBuf,
        temp: Option<tempfile::TempDir>,
        vars: &[(&str, String)],
    ) -> Result<Server, String> {
        let guard = StopGuard {
            kind,
            dir: dir.clone(),
        };
        let script = match kind {
            ServerKind::OpenLdap => "openldap-setup.sh",
            ServerKind::Samba => "samba-setup.sh",
        };
        let mut cmd = Command::new(server_script(script));
        cmd.arg(&dir).stdin(Stdio::null());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run tests/servers/{script}: {e}"))?;
        if !out.status.success() {
            return Err(transcript(
                &format!("tests/servers/{script} {}", dir.display()),
                &out,
            ));
        }
        let env = ServerEnv::read(&dir)?;
        let secrets = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::write(secrets.path().join("pw"), &env.password).map_err(|e| e.to_string())?;
        Ok(Server {
            kind,
            dir,
            env,
            secrets,
            _guard: guard,
            _lock: None,
            _temp: temp,
        })
    }

    /// A fresh slapd in a new temp dir, on two free loopback ports the system picks: fixed
    /// ports collide when two suites or two checkouts run at once.
    pub fn openldap() -> Result<Server, String> {
        Server::openldap_with(&[])
    }

    /// The same, with more settings for `openldap-setup.sh` (`SYNCPROV=0`: no syncprov).
    pub fn openldap_with(vars: &[(&str, &str)]) -> Result<Server, String> {
        let (port, tls_port) = (free_port()?, free_port()?);
        let temp = tempfile::Builder::new()
            .prefix("ocsh-slapd-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let dir = temp.path().to_path_buf();
        Server::start(
            ServerKind::OpenLdap,
            dir,
            Some(temp),
            &[
                ("PORT", port.to_string()),
                ("TLSPORT", tls_port.to_string()),
            ]
            .into_iter()
            .chain(vars.iter().map(|(k, v)| (*k, v.to_string())))
            .collect::<Vec<_>>(),
        )
    }

    /// Samba AD in a fixed folder of the target dir, so that its snapshot (`DIR.snapshot`)
    /// is reused between runs: each run restores it (about a second) instead of
    /// provisioning (about 9 s). Needs root and ports 389/636.
    pub fn samba() -> Result<Server, String> {
        let lock_path = std::env::temp_dir().join("ocsh-samba.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("{}: {e}", lock_path.display()))?;
        fs4::FileExt::lock(&lock).map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocsh-samba");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut server = Server::start(ServerKind::Samba, dir, None, &[])?;
        server._lock = Some(lock);
        Ok(server)
    }

    fn pw_file(&self) -> PathBuf {
        self.secrets.path().join("pw")
    }

    /// An OpenLDAP client tool bound as `bind_dn` with the lab password (the OpenLDAP
    /// lab's `cn=admin,cn=config` has the same password as the Administrator).
    fn client_as(&self, tool: &str, bind_dn: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.args(["-x", "-H", &self.env.ldap_url, "-D", bind_dn, "-y"])
            .arg(self.pw_file());
        cmd
    }

    /// Loads LDIF with `tests/servers/load-ldif.sh` (one `ldapadd -c`) and reports the
    /// refused entries; entries that already exist are not refusals. Panics when ldapadd
    /// could not process the file at all.
    pub fn load(&self, name: &str, ldif: &str) -> LoadReport {
        let path = self.secrets.path().join(name);
        std::fs::write(&path, ldif).unwrap();
        let out = Command::new(server_script("load-ldif.sh"))
            .arg(&self.env.ldap_url)
            .arg(&path)
            .env("OCSH_TEST_BIND_DN", &self.env.bind_dn)
            .env("OCSH_TEST_PASSWORD", &self.env.password)
            .env("ALLOW_ERRORS", "1")
            .env_remove("QUIET")
            .stdin(Stdio::null())
            .output()
            .expect("load-ldif.sh runs");
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "{}",
            transcript(&format!("load-ldif.sh {name}"), &out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut report = LoadReport::default();
        for line in stdout.lines() {
            if line.starts_with("load-ldif: ") && line.contains(" records: ") {
                // "load-ldif: NAME -> URL: 84 records: 75 added, 7 already existed, 2 failed (14 ms)"
                report.summary = line.to_string();
                let counts = line.rsplit(" records: ").next().unwrap_or_default();
                let number_before = |what: &str| -> usize {
                    counts
                        .split(", ")
                        .find(|part| part.contains(what))
                        .and_then(|part| part.split_whitespace().next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                };
                report.added = number_before("added");
                report.existed = number_before("already existed");
            } else if let Some(rest) = line.trim_start().strip_prefix("rc ") {
                // "rc 19: CN=...,DC=com: Constraint violation (19), ..."
                let (rc, rest) = rest.split_once(": ").unwrap_or(("0", rest));
                let dn = rest.split_once(": ").map_or(rest, |(dn, _)| dn);
                report
                    .refused
                    .push((rc.parse().unwrap_or(0), dn.to_string()));
            }
        }
        report
    }

    /// `ldapmodify` with `ldif` (change records) on stdin; panics on failure.
    pub fn ldapmodify(&self, ldif: &str) {
        self.ldapmodify_as(&self.env.bind_dn.clone(), ldif);
    }

    /// `ldapmodify` bound as `bind_dn`.
    pub fn ldapmodify_as(&self, bind_dn: &str, ldif: &str) {
        use std::io::Write as _;
        let mut child = self
            .client_as("ldapmodify", bind_dn)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n--- input\n{ldif}",
            transcript("ldapmodify", &out)
        );
    }

    /// OpenLDAP only: at most `n` entries a page for a paged search (`size.pr`), refused
    /// with rc 11 above that, as a server with a lower MaxPageSize than AD's would.
    pub fn limit_paged_results(&self, n: usize) {
        assert_eq!(self.kind, ServerKind::OpenLdap, "a slapd setting");
        self.ldapmodify_as(
            "cn=admin,cn=config",
            &format!(
                "dn: olcDatabase={{1}}mdb,cn=config\nchangetype: modify\nreplace: olcSizeLimit\n\
                 olcSizeLimit: size.soft=1000 size.hard=1000 size.pr={n} size.prtotal=unlimited\n-\n"
            ),
        );
    }

    /// Replaces `attr` of `dn` with `values` (none: deletes it), with ldapmodify.
    pub fn replace(&self, dn: &str, attr: &str, values: &[&str]) {
        let mut ldif = format!("dn: {dn}\nchangetype: modify\nreplace: {attr}\n");
        for v in values {
            ldif.push_str(&format!("{attr}: {v}\n"));
        }
        ldif.push_str("-\n");
        self.ldapmodify(&ldif);
    }

    /// `ldapsearch` (paged, so that no size limit cuts it short), parsed.
    pub fn ldapsearch(&self, base: &str, scope: &str, filter: &str, attrs: &[&str]) -> Vec<Entry> {
        self.ldapsearch_as(&self.env.bind_dn.clone(), base, scope, filter, attrs)
    }

    /// `ldapsearch` bound as `bind_dn`.
    pub fn ldapsearch_as(
        &self,
        bind_dn: &str,
        base: &str,
        scope: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Vec<Entry> {
        let out = self
            .client_as("ldapsearch", bind_dn)
            .args(["-LLL", "-o", "ldif-wrap=no", "-E", "pr=500/noprompt"])
            .args(["-b", base, "-s", scope, filter])
            .args(attrs)
            .stdin(Stdio::null())
            .output()
            .expect("ldapsearch runs");
        // 32: no such object, an empty answer.
        if out.status.code() == Some(32) {
            return Vec::new();
        }
        assert!(
            out.status.success(),
            "{}",
            transcript(&format!("ldapsearch -b {base} {filter}"), &out)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        // Samba answers subtree searches of the domain with search references
        // ("# refldap://..." lines with -LLL); ldif::parse takes them for comments.
        ocsh::directory::ldif::parse(&text, "ldapsearch output").unwrap()
    }

    /// One entry by DN (all user attributes), if it exists.
    pub fn entry(&self, dn: &str) -> Option<Entry> {
        self.ldapsearch(dn, "base", "(objectClass=*)", &["*"])
            .into_iter()
            .next()
    }
}

/// Runs `f`, returning its result and how long it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = std::time::Instant::now();
    let v = f();
    (v, start.elapsed())
}
