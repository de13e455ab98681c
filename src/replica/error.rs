//! The replica layer's error type.

use crate::directory::DirError;
use crate::ocs::OcsError;

/// Why opening the replica, reading it or running a cycle failed. A failed cycle has
/// changed nothing in the replica (its transaction was rolled back).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// SQLite failed on the replica file.
    #[error("replica {path}: {source}")]
    Sqlite {
        /// The replica file (empty until the public API fills it in).
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The replica file or its folder cannot be created or read.
    #[error("replica {path}: {message}")]
    Io {
        /// The replica file.
        path: String,
        /// What failed.
        message: String,
    },
    /// No replica at that path (status and problems do not create one).
    #[error("no replica at {0}: run `ocsh replicator sync` first (or give the right --replica)")]
    Missing(String),
    /// The file was written by a newer ocsh.
    #[error(
        "replica {path} has schema version {found}, newer than the {known} this ocsh knows; use a newer ocsh or another --replica"
    )]
    TooNew {
        /// The replica file.
        path: String,
        /// Its version.
        found: u32,
        /// Ours.
        known: u32,
    },
    /// A stored setting breaks a rule (the file was edited by hand).
    #[error("replica {path}: {source}")]
    Setting {
        /// The replica file.
        path: String,
        /// The rule's message.
        #[source]
        source: OcsError,
    },
    /// A staged settings change whose precondition failed: someone changed the setting
    /// since the script read it.
    #[error("conflict on the replicator settings of {path}: {message}")]
    Conflict {
        /// The replica file.
        path: String,
        /// Which setting, expected and found.
        message: String,
    },
    /// The directory failed during a cycle.
    #[error(transparent)]
    Directory(#[from] DirError),
    /// A directory operation of a cycle took longer than allowed.
    #[error("the directory did not answer within {0} s")]
    Timeout(u64),
    /// The cycle was interrupted (Ctrl-C); the replica is as it was before it.
    #[error("interrupted; the replica is as it was before this cycle")]
    Interrupted,
}

impl From<rusqlite::Error> for ReplicaError {
    fn from(source: rusqlite::Error) -> ReplicaError {
        ReplicaError::Sqlite {
            path: String::new(),
            source,
        }
    }
}

impl ReplicaError {
    /// Names the replica file in an error that does not yet.
    pub fn at(self, path: &std::path::Path) -> ReplicaError {
        match self {
            ReplicaError::Sqlite { path: p, source } if p.is_empty() => ReplicaError::Sqlite {
                path: path.display().to_string(),
                source,
            },
            other => other,
        }
    }

    /// True for a failure of the directory (as opposed to the replica file).
    pub fn is_directory(&self) -> bool {
        matches!(
            self,
            ReplicaError::Directory(_) | ReplicaError::Timeout(_) | ReplicaError::Interrupted
        )
    }
}
