//! Turning `--directory` into a backend.

use std::path::PathBuf;
use std::sync::Arc;

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

/// Opens the directory a spec names; `ldap` holds the connection settings for an LDAP
/// URL (its `url` is taken from the spec). Runs inside the runtime that will drive the
/// directory's later operations.
pub async fn open(
    spec: &DirectorySpec,
    ldap: &LdapOptions,
) -> Result<Arc<dyn Directory>, DirError> {
    match spec {
        DirectorySpec::Demo => Ok(Arc::new(demo::demo_directory()?)),
        DirectorySpec::Ldif(path) => Ok(Arc::new(EmbeddedDirectory::open(path)?)),
        DirectorySpec::Ldap(url) => {
            let opts = LdapOptions {
                url: url.clone(),
                ..ldap.clone()
            };
            Ok(Arc::new(LdapDirectory::connect(&opts).await?))
        }
    }
}
