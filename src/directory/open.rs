//! Turning `--directory` into a backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::embedded::DEFAULT_LOCK_WAIT;
use super::ldap::{LdapDirectory, LdapOptions};
use super::{DirError, Directory, EmbeddedDirectory, demo};

/// What `--directory` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectorySpec {
    /// The built-in demo forest, in memory.
    Demo,
    /// An LDIF file, changed in place by `--apply`.
    Ldif(PathBuf),
    /// An LDAP server.
    Ldap(String),
}

impl DirectorySpec {
    /// Reads a `--directory` value.
    pub fn parse(text: &str) -> DirectorySpec {
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        if lower == "demo" {
            DirectorySpec::Demo
        } else if lower.starts_with("ldap://") || lower.starts_with("ldaps://") {
            DirectorySpec::Ldap(t.to_string())
        } else {
            DirectorySpec::Ldif(PathBuf::from(t))
        }
    }

    /// True when applied changes are kept somewhere.
    pub fn is_persistent(&self) -> bool {
        !matches!(self, DirectorySpec::Demo)
    }
}

/// How long a writer of an LDIF file waits for another one: `OCSH_LOCK_WAIT` seconds,
/// else [`DEFAULT_LOCK_WAIT`].
fn lock_wait() -> Result<Duration, DirError> {
    let Ok(text) = std::env::var("OCSH_LOCK_WAIT") else {
        return Ok(DEFAULT_LOCK_WAIT);
    };
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            DirError::Unsupported(format!(
                "OCSH_LOCK_WAIT={text:?}: give the seconds to wait for another writer's lock, e.g. 10"
            ))
        })
}

/// Opens the directory a spec names; `ldap` holds the connection settings for an LDAP
/// URL (its `url` is taken from the spec). Runs inside the runtime that will drive the
/// directory's later operations.
pub async fn open(
    spec: &DirectorySpec,
    ldap: &LdapOptions,
) -> Result<Arc<dyn Directory>, DirError> {
    match spec {
        DirectorySpec::Demo => Ok(Arc::new(demo::demo_directory()?)),
        DirectorySpec::Ldif(path) => {
            super::input_file::check(path, super::input_file::MAX_LDIF).map_err(|source| {
                DirError::Io {
                    path: path.clone(),
                    source,
                }
            })?;
            Ok(Arc::new(
                EmbeddedDirectory::open(path)?.with_lock_wait(lock_wait()?),
            ))
        }
        DirectorySpec::Ldap(url) => {
            let opts = LdapOptions {
                url: url.clone(),
                ..ldap.clone()
            };
            Ok(Arc::new(LdapDirectory::connect(&opts).await?))
        }
    }
}
