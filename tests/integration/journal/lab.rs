//! What the journal suites share: a directory to write to (an LDIF copy of the demo
//! forest, or a lab server loaded with it), generated users, and the real binary run
//! against it.

use std::path::{Path, PathBuf};
use std::process::Command;

use ocsh::directory::{Entry, ldif};
use ocsh::ocs::dn::normalize;

use crate::support::binary::Outcome;
use crate::support::{Server, ServerKind, Test, clean_env, fixtures};

/// The OU the generated users live in.
pub const OU: &str = "OU=Journal,DC=example,DC=com";

/// `n` users in [`OU`], each enabled on `pool` with OptionFlags 256 (`jrnl0001` ...).
pub fn generated_users(n: usize, pool: &str) -> String {
    let home = fixtures::r2_home(pool);
    let mut out =
        format!("dn: {OU}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Journal\n\n");
    for i in 1..=n {
        let sam = format!("jrnl{i:04}");
        out.push_str(&format!(
            "dn: CN=Journal User {i:04},{OU}
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
cn: Journal User {i:04}
sn: User {i:04}
givenName: Journal
sAMAccountName: {sam}
userPrincipalName: {sam}@example.com
mail: {sam}@example.com
userAccountControl: 512
msRTCSIP-UserEnabled: TRUE
msRTCSIP-PrimaryUserAddress: sip:{sam}@example.com
msRTCSIP-PrimaryHomeServer: {home}
msRTCSIP-OptionFlags: 256

"
        ));
    }
    out
}

/// Where the binary writes.
pub enum Target {
    /// An LDIF file (the demo forest and the extra entries) in its own folder.
    Ldif {
        path: PathBuf,
        dir: tempfile::TempDir,
    },
    /// A lab server loaded with the demo forest and the extra entries.
    Server {
        server: Box<Server>,
        dir: tempfile::TempDir,
    },
}

impl Target {
    /// The demo forest plus `extra` in an LDIF file.
    pub fn ldif(extra: &str) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("forest.ldif");
        std::fs::write(&path, format!("{}\n{extra}", fixtures::DEMO)).unwrap();
        Target::Ldif { path, dir }
    }

    /// A fresh server of `kind` loaded with the demo forest (without the users servers
    /// refuse by design) and `extra`; the error when it cannot start.
    pub fn server(kind: ServerKind, extra: &str) -> Result<Target, String> {
        let server = match kind {
            ServerKind::OpenLdap => Server::openldap(),
            ServerKind::Samba => Server::samba(),
        }?;
        let leftovers = match kind {
            ServerKind::OpenLdap => fixtures::LEFTOVERS.to_string(),
            ServerKind::Samba => fixtures::leftovers_for_samba(),
        };
        let r = server.load("leftovers.ldif", &leftovers);
        assert!(r.refused.is_empty(), "{r:?}");
        let r = server.load("demo.ldif", fixtures::DEMO);
        assert_eq!(r.refused.len(), fixtures::REFUSED_BY_SERVERS.len(), "{r:?}");
        let r = server.load("extra.ldif", extra);
        assert!(r.refused.is_empty(), "{r:?}");
        Ok(Target::Server {
            server: Box::new(server),
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
        })
    }

    /// A folder for scripts and journals.
    pub fn folder(&self) -> &Path {
        match self {
            Target::Ldif { dir, .. } | Target::Server { dir, .. } => dir.path(),
        }
    }

    /// The LDIF file, for the LDIF target.
    pub fn ldif_path(&self) -> Option<&Path> {
        match self {
            Target::Ldif { path, .. } => Some(path),
            Target::Server { .. } => None,
        }
    }

    /// The lab server, for a server target.
    pub fn lab(&self) -> Option<&Server> {
        match self {
            Target::Server { server, .. } => Some(server),
            Target::Ldif { .. } => None,
        }
    }

    /// A name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Ldif { .. } => "ldif",
            Target::Server { server, .. } => match server.kind {
                ServerKind::OpenLdap => "openldap",
                ServerKind::Samba => "samba",
            },
        }
    }

    /// `--directory ...` (and the bind DN for a server).
    pub fn directory_args(&self) -> Vec<String> {
        match self {
            Target::Ldif { path, .. } => vec!["--directory".into(), path.display().to_string()],
            Target::Server { server, .. } => vec![
                "--directory".into(),
                server.env.ldap_url.clone(),
                "--bind-dn".into(),
                server.env.bind_dn.clone(),
            ],
        }
    }

    /// The binary with `args`, in the target's folder, cleaned of the developer's
    /// environment, with the password in it for a server: for a test that watches the
    /// process while it runs (the fault trials). Everything else goes through [`Test`].
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocsh"));
        cmd.args(args).current_dir(self.folder());
        clean_env(&mut cmd, self.folder());
        if let Target::Server { server, .. } = self {
            cmd.env("OCSH_PASSWORD", &server.env.password);
        }
        cmd
    }

    /// Like [`Target::command`], with files limited to `blocks` of 512 bytes
    /// (`ulimit -f`) and SIGXFSZ ignored, so that a write past the limit fails (EFBIG)
    /// as on a full disk instead of killing the process. Pipes are not limited.
    pub fn command_with_file_limit(&self, blocks: u64, args: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_ocsh"))
            .args(args)
            .current_dir(self.folder());
        clean_env(&mut cmd, self.folder());
        if let Target::Server { server, .. } = self {
            cmd.env("OCSH_PASSWORD", &server.env.password);
        }
        cmd
    }

    /// Runs the binary with `args` (absolute paths: it runs in a folder of its own),
    /// which must exit with `code`.
    pub fn run(&self, code: i32, args: &[&str]) -> Outcome {
        let mut t = Test::new().args(args.iter().copied()).code(code);
        if let Target::Server { server, .. } = self {
            t = t.env("OCSH_PASSWORD", &server.env.password);
        }
        t.run()
    }

    /// `ocsh run SCRIPT` (written to the folder) against the target with `extra` args,
    /// which must exit with `code`.
    pub fn run_script(&self, code: i32, name: &str, script: &str, extra: &[&str]) -> Outcome {
        let path = self.folder().join(name);
        std::fs::write(&path, script).unwrap();
        let mut args: Vec<String> = vec!["run".into(), path.display().to_string()];
        args.extend(self.directory_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(code, &args)
    }

    /// Every entry under `base` as the directory holds it now, by normalized DN: the LDIF
    /// file parsed from disk, or `ldapsearch`.
    pub fn entries(&self, base: &str) -> std::collections::BTreeMap<String, Entry> {
        let list: Vec<Entry> = match self {
            Target::Ldif { path, .. } => {
                let text = std::fs::read_to_string(path).unwrap();
                let base = ocsh::ocs::dn::Dn::parse(base).unwrap();
                ldif::parse(&text, "forest.ldif")
                    .unwrap()
                    .into_iter()
                    .filter(|e| ocsh::ocs::dn::Dn::parse(&e.dn).is_ok_and(|d| d.is_within(&base)))
                    .collect()
            }
            Target::Server { server, .. } => {
                server.ldapsearch(base, "sub", "(objectClass=*)", &["*"])
            }
        };
        list.into_iter()
            .map(|e| (normalize(&e.dn).unwrap(), e))
            .collect()
    }
}

/// The OCS attributes of an entry (lower-case names, values as stored), for comparing
/// a restored entry with the original without the bookkeeping attributes a write adds
/// (uSNChanged, modifyTimestamp, whenChanged ...).
pub fn ocs_view(e: &Entry) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<(String, Vec<String>)> = e
        .attributes()
        .iter()
        .filter(|a| {
            let n = a.name.to_ascii_lowercase();
            n.starts_with("msrtcsip-") || n == "proxyaddresses"
        })
        .map(|a| {
            let mut values: Vec<String> = a.values.iter().map(|x| x.to_lowercase()).collect();
            values.sort();
            (a.name.to_ascii_lowercase(), values)
        })
        .collect();
    v.sort();
    v
}
