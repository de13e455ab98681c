//! The directory layer's error type.

use std::path::PathBuf;

/// Why a directory operation failed. Messages name the file, line, position, DN or
/// attribute involved, so that an administrator can act on them.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// An LDIF file that does not parse.
    #[error("{path}:{line}: {message}")]
    Ldif {
        /// The file (or `<demo>` for the built-in forest).
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A search filter that does not parse.
    #[error("invalid LDAP filter {filter:?} at position {position}: {message}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// 1-based character position.
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// A DN that does not parse.
    #[error("invalid DN {dn:?}: {message}")]
    InvalidDn {
        /// The DN as given.
        dn: String,
        /// What is wrong.
        message: String,
    },
    /// The base of a search or the target of a modify does not exist.
    #[error("no such object: {0}")]
    NoSuchObject(String),
    /// A precondition failed: someone changed the value since it was read.
    #[error("conflict on {dn}: {attr} was expected to be {expected} but is {found}")]
    Conflict {
        /// The entry.
        dn: String,
        /// The attribute.
        attr: String,
        /// The values the change was planned against, rendered.
        expected: String,
        /// The values found, rendered.
        found: String,
    },
    /// The directory refused a value (schema or referential constraint).
    #[error("constraint violation on {dn}: {message}")]
    Constraint {
        /// The entry.
        dn: String,
        /// What the directory refused.
        message: String,
    },
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another writer held the file's write lock for longer than ocsh waits.
    #[error(
        "{}: another writer is changing it (its lock {} was held for more than {} s); nothing was written, run again",
        path.display(), lock.display(), waited.as_secs_f64()
    )]
    Locked {
        /// The LDIF file.
        path: PathBuf,
        /// The lock file beside it.
        lock: PathBuf,
        /// How long ocsh waited.
        waited: std::time::Duration,
    },
    /// A server-side failure, with the LDAP result code and the server's text.
    #[error("{0}")]
    Server(String),
    /// A directory specification ocsh cannot open.
    #[error("{0}")]
    Unsupported(String),
}

impl DirError {
    /// True for a failed precondition (the value changed under us).
    pub fn is_conflict(&self) -> bool {
        matches!(self, DirError::Conflict { .. })
    }
}
