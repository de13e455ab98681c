//! Connection settings from flags, `OCSH_*` variables and TOML profiles, and the
//! password: from the environment, a file, or a prompt, never the command line.
//!
//! Precedence: a flag, then its `OCSH_*` variable (clap merges those two), then the
//! profile, then the built-in default.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::directory::ldap::LdapOptions;
use crate::directory::{DirectorySpec, input_file};
use crate::error::Error;

use super::args::DirectoryArgs;

/// One named profile of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `demo`, an LDIF file or an LDAP URL.
    pub directory: Option<String>,
    /// Base DN override.
    pub base: Option<String>,
    /// Bind DN.
    pub bind_dn: Option<String>,
    /// A file holding the password (first line).
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// A PEM file of CA certificates.
    pub ca_file: Option<PathBuf>,
    /// Use StartTLS on ldap://.
    pub starttls: Option<bool>,
    /// Writes in flight during --apply.
    pub concurrency: Option<u64>,
    /// Seconds for each directory operation.
    pub op_timeout: Option<u64>,
    /// Seconds to connect.
    pub connect_timeout: Option<u64>,
    /// The journal file for applied changes.
    pub journal: Option<PathBuf>,
    /// The most users one apply may disable, remove or move (default 500).
    pub max_destructive: Option<usize>,
    /// Snippet folders for `import`.
    pub lib: Option<Vec<PathBuf>>,
    /// The sandbox limits (`[profiles.NAME.limits]`).
    pub limits: Option<super::limits::ProfileLimits>,
}

/// The config file: profiles and which one is the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The profile used when none is named.
    pub default_profile: Option<String>,
    /// The profiles by name.
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, Profile>,
}

/// Everything needed to open the directory and apply to it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What to open.
    pub spec: DirectorySpec,
    /// LDAP settings (used for LDAP URLs).
    pub ldap: LdapOptions,
    /// Per-operation timeout.
    pub op_timeout: Duration,
    /// Default concurrency from the profile.
    pub concurrency: Option<u64>,
    /// The journal path from the profile.
    pub journal: Option<PathBuf>,
    /// The blast-radius limit from the profile.
    pub max_destructive: Option<usize>,
    /// Snippet folders from the profile.
    pub lib: Vec<PathBuf>,
    /// The profile's sandbox limits.
    pub limits: Option<super::limits::ProfileLimits>,
}

fn dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "ocsh")
}

/// The default config file: `<config dir>/ocsh/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    dirs().map(|d| d.config_dir().join("config.toml"))
}

/// The default journal: `<state dir>/ocsh/journal.jsonl`.
pub fn default_journal_path() -> Option<PathBuf> {
    dirs().map(|d| {
        d.state_dir()
            .unwrap_or_else(|| d.data_local_dir())
            .join("journal.jsonl")
    })
}

/// Reads a config file; a missing default file is an empty config, a missing named one
/// an error.
pub fn load_config(path: Option<&Path>) -> Result<ConfigFile, Error> {
    let (path, named) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => match default_config_path() {
            Some(p) => (p, false),
            None => return Ok(ConfigFile::default()),
        },
    };
    let text = match input_file::read_text(&path, input_file::MAX_SMALL) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => {
            return Ok(ConfigFile::default());
        }
        Err(e) => return Err(Error::Usage(format!("config file {}: {e}", path.display()))),
    };
    parse_config(&text, &path)
}

/// True for a key that names a secret (`password`, `bind_password`, `pwd`, `secret`).
fn names_a_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("pass") || k.contains("pwd") || k.contains("secret")
}

/// A TOML error as a line number and the parser's message, without the source line it
/// quotes: that line may hold a password.
fn toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |t| t.matches('\n').count())
                + 1;
            format!("line {line}: {message}")
        }
        None => message.to_string(),
    }
}

/// Refuses every key that names a secret, except `password_file` and `password_env`
/// holding text; the value is never shown.
fn refuse_secrets(table: &toml::Table, at: &str, path: &Path) -> Result<(), Error> {
    for (key, value) in table {
        let name = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        if let toml::Value::Table(inner) = value {
            refuse_secrets(inner, &name, path)?;
            continue;
        }
        if !names_a_secret(key) {
            continue;
        }
        let allowed = matches!(key.as_str(), "password_file" | "password_env");
        let message = match (allowed, value.is_str()) {
            (true, true) => continue,
            (true, false) => format!("`{name}` must be text (its value is not shown)"),
            (false, _) => format!(
                "`{name}`: passwords are never read from a config file (its value is not shown); \
                 use password_file, password_env, OCSH_PASSWORD or the prompt"
            ),
        };
        return Err(Error::Usage(format!(
            "config file {}: {message}",
            path.display()
        )));
    }
    Ok(())
}

/// Parses a config file; no error quotes the file, so none can echo a secret.
fn parse_config(text: &str, path: &Path) -> Result<ConfigFile, Error> {
    let fail = |e: toml::de::Error| {
        Error::Usage(format!(
            "config file {}: {}",
            path.display(),
            toml_error(&e, text)
        ))
    };
    let table: toml::Table = toml::from_str(text).map_err(fail)?;
    refuse_secrets(&table, "", path)?;
    toml::from_str(text).map_err(fail)
}

fn read_password_file(path: &Path) -> Result<String, Error> {
    let text = input_file::read_text(path, input_file::MAX_SMALL)
        .map_err(|e| Error::Usage(format!("password file {}: {e}", path.display())))?;
    let pw = text.lines().next().unwrap_or("").to_string();
    if pw.is_empty() {
        return Err(Error::Usage(format!(
            "password file {} is empty",
            path.display()
        )));
    }
    Ok(pw)
}

/// Resolves the directory settings of a command.
pub fn resolve(d: &DirectoryArgs) -> Result<Resolved, Error> {
    let config = load_config(d.config.as_deref())?;
    let profile = match d.profile.as_deref().or(config.default_profile.as_deref()) {
        Some(name) => config.profiles.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
            Error::Usage(format!(
                "no profile {name:?} in the config file (profiles: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?,
        None => Profile::default(),
    };
    let directory = d
        .directory
        .clone()
        .or(profile.directory.clone())
        .unwrap_or_else(|| "demo".into());
    let spec = DirectorySpec::parse(&directory);
    if let DirectorySpec::Ldap(urls) = &spec {
        crate::directory::ldap::check_urls(urls).map_err(|e| Error::Usage(e.to_string()))?;
    }
    let bind_dn = d.bind_dn.clone().or(profile.bind_dn.clone());
    let password = match &spec {
        DirectorySpec::Ldap(_) if bind_dn.is_some() => {
            Some(password(d, &profile, bind_dn.as_deref().unwrap_or(""))?)
        }
        _ => None,
    };
    let op_timeout = Duration::from_secs(d.op_timeout.or(profile.op_timeout).unwrap_or(30).max(1));
    let ldap = LdapOptions {
        url: directory,
        starttls: d.starttls || profile.starttls.unwrap_or(false),
        ca_file: d.ca_file.clone().or(profile.ca_file.clone()),
        insecure_no_tls_verify: d.insecure_no_tls_verify,
        connect_timeout: Duration::from_secs(
            d.connect_timeout
                .or(profile.connect_timeout)
                .unwrap_or(10)
                .max(1),
        ),
        op_timeout,
        bind_dn,
        password,
        base: d.base.clone().or(profile.base.clone()),
    };
    if ldap.insecure_no_tls_verify {
        eprintln!(
            "ocsh: WARNING: --insecure-no-tls-verify: the server's certificate is NOT checked; anyone on the path can read the password and the changes"
        );
    }
    if let (DirectorySpec::Ldap(_), Some(w)) =
        (&spec, crate::directory::ldap::cleartext_warning(&ldap))
    {
        eprintln!("ocsh: WARNING: {w}");
    }
    Ok(Resolved {
        spec,
        ldap,
        op_timeout,
        concurrency: profile.concurrency,
        journal: profile.journal,
        max_destructive: profile.max_destructive,
        lib: profile.lib.unwrap_or_default(),
        limits: profile.limits,
    })
}

/// The snippet folders in order: `--lib` flags, the profile's, then `OCSH_LIB`. Each must
/// be an existing folder.
pub fn lib_folders(flags: &[PathBuf], profile: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut all: Vec<PathBuf> = flags.iter().chain(profile).cloned().collect();
    if let Some(list) = std::env::var_os("OCSH_LIB") {
        all.extend(std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()));
    }
    for dir in &all {
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "library folder {} does not exist (from --lib, the profile or OCSH_LIB)",
                dir.display()
            )));
        }
    }
    Ok(all)
}

fn password(d: &DirectoryArgs, profile: &Profile, bind_dn: &str) -> Result<String, Error> {
    if let Ok(pw) = std::env::var("OCSH_PASSWORD") {
        if !pw.is_empty() {
            return Ok(pw);
        }
    }
    if let Some(f) = d
        .password_file
        .as_deref()
        .or(profile.password_file.as_deref())
    {
        return read_password_file(f);
    }
    if let Some(var) = &profile.password_env {
        return std::env::var(var)
            .map_err(|_| Error::Usage(format!("the profile's password_env {var} is not set")));
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Password for {bind_dn}: "))
            .map_err(|e| Error::Usage(format!("cannot read the password: {e}")));
    }
    Err(Error::Usage(format!(
        "no password for {bind_dn}: set OCSH_PASSWORD, use --password-file, or run on a terminal to be asked"
    )))
}
