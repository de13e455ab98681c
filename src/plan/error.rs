//! The plan layer's error type: a refused change, a lookup that failed, or the directory.

use crate::directory::DirError;
use crate::ocs::OcsError;

/// Why staging, validating or applying a change failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A domain rule refused the change.
    #[error(transparent)]
    Rule(#[from] OcsError),
    /// The directory failed.
    #[error(transparent)]
    Directory(#[from] DirError),
    /// No user matches an id.
    #[error("no user {0:?} in the directory (looked up by {1})")]
    UserNotFound(String, &'static str),
    /// More than one user matches an id.
    #[error("{id:?} is ambiguous: it matches {count} users ({sample}); use the DN")]
    Ambiguous {
        /// The id as given.
        id: String,
        /// How many matched.
        count: usize,
        /// The first few DNs.
        sample: String,
    },
    /// The operation was interrupted (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
    /// A directory operation took longer than allowed.
    #[error("the directory did not answer within {0} s")]
    Timeout(u64),
}

impl PlanError {
    /// True when a rule refused the change (as opposed to a failure to look something up).
    pub fn is_refusal(&self) -> bool {
        // A malformed filter or DN in a script is a bad value, refused like a rule's.
        matches!(
            self,
            PlanError::Rule(_)
                | PlanError::Directory(DirError::Filter { .. } | DirError::InvalidDn { .. })
        )
    }
}
