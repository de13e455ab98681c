//! The one error type of the command line. Each layer's error is kept whole as the
//! source (plan, directory, replica, journal, script, I/O), and [`Error::exit_code`] is
//! the one place an exit code is decided; `ocsh --help` prints the table of
//! [`exit::CODES`].

use std::sync::Arc;

use crate::directory::DirError;
use crate::plan::PlanError;
use crate::plan::journal::JournalError;
use crate::replica::ReplicaError;
use crate::script::{ScriptError, ScriptErrorKind};

/// Exit codes, documented in the README and `ocsh --help` (generated from [`CODES`]).
pub mod exit {
    /// Everything worked (and with `--apply`, every change landed).
    pub const OK: u8 = 0;
    /// An unexpected failure: a file that cannot be read or written.
    pub const FAILURE: u8 = 1;
    /// Wrong usage: bad arguments or options.
    pub const USAGE: u8 = 2;
    /// The script does not compile, failed, or broke a limit.
    pub const SCRIPT: u8 = 3;
    /// A rule refused a change the script asked for; nothing was written.
    pub const REFUSED: u8 = 4;
    /// `--apply` wrote some entries but not all (conflicts or failures).
    pub const PARTIAL: u8 = 5;
    /// The directory cannot be opened or failed during the run.
    pub const DIRECTORY: u8 = 6;

    /// Every code with its meaning, for `--help` and the README.
    pub const CODES: [(u8, &str); 7] = [
        (OK, "success (with --apply: every change landed)"),
        (
            FAILURE,
            "a file could not be read or written (the journal too)",
        ),
        (USAGE, "usage error"),
        (
            SCRIPT,
            "script error (does not compile, failed, or broke a limit)",
        ),
        (REFUSED, "a rule refused a change (nothing written)"),
        (PARTIAL, "partial apply (some entries conflicted or failed)"),
        (
            DIRECTORY,
            "directory error (cannot open, lookup failed, timeout)",
        ),
    ];

    /// The table `ocsh --help` ends with.
    pub fn help() -> String {
        let mut out = String::from("Exit codes:");
        for (code, meaning) in CODES {
            out.push_str(&format!("\n  {code}  {meaning}"));
        }
        out
    }
}

/// A failure of an ocsh command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage.
    #[error("{0}")]
    Usage(String),
    /// The script failed; nothing was written.
    #[error("{}", script_text(.0))]
    Script(ScriptError),
    /// Staging or reading through the workspace failed (a rule, a lookup, the directory).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The directory failed.
    #[error(transparent)]
    Directory(#[from] DirError),
    /// The replicator's replica, or the directory it reads, failed.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The journal failed; `started` says whether the apply had written anything.
    #[error("{source}\n{}", journal_text(*.started))]
    Journal {
        /// The journal's error.
        source: Arc<JournalError>,
        /// False when the apply stopped before its first write.
        started: bool,
    },
    /// A journal could not be read (`ocsh journal`, `ocsh undo`).
    #[error(transparent)]
    JournalRead(#[from] JournalError),
    /// A file or stream could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written (`stdout`, a path).
        what: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A replicator policy did not finish after its cycle (the cycle is kept; the next
    /// cycle gives the policy the same users again).
    #[error("policy {policy}: {message}")]
    PolicyFailed {
        /// The policy's name.
        policy: String,
        /// Why.
        message: String,
    },
    /// `ocsh test`: some cases failed (each was reported already).
    #[error("{failed} of {total} case(s) failed")]
    TestsFailed {
        /// Cases that failed.
        failed: usize,
        /// Cases run.
        total: usize,
    },
    /// The blast-radius guard refused the apply before the first write.
    #[error("refused: {0}")]
    Guard(crate::plan::guard::TooDestructive),
    /// An apply wrote some entries but not all (the summary was printed already).
    #[error(
        "{} of {total} entries did not land ({conflicted} conflicted, {failed} failed); the summary above lists them",
        total - applied
    )]
    Partial {
        /// Entries that landed.
        applied: usize,
        /// Entries refused because a value had changed.
        conflicted: usize,
        /// Entries that failed otherwise.
        failed: usize,
        /// Entries in the plan.
        total: usize,
    },
}

fn script_text(e: &ScriptError) -> String {
    match e.kind {
        ScriptErrorKind::Refused => format!("{e}\nrefused: nothing was written"),
        _ => format!("{e}\nnothing was written"),
    }
}

fn journal_text(started: bool) -> &'static str {
    if started {
        "the apply stopped sending when its journal failed; the summary above says what landed"
    } else {
        "nothing was written: an apply does not start until its journal is written and synced"
    }
}

impl Error {
    /// A failed read or write of `what`.
    pub fn io(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Io {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// True when the directory failed (it may come back), as opposed to a file or a rule.
    pub fn is_directory(&self) -> bool {
        self.exit_code() == exit::DIRECTORY
    }

    /// The process exit code: decided here and nowhere else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Script(e) => match e.kind {
                ScriptErrorKind::Script => exit::SCRIPT,
                ScriptErrorKind::Refused => exit::REFUSED,
                ScriptErrorKind::Directory => exit::DIRECTORY,
            },
            Error::Plan(_) | Error::Directory(_) => exit::DIRECTORY,
            Error::Replica(e) if e.is_directory() => exit::DIRECTORY,
            Error::Replica(_)
            | Error::Journal { .. }
            | Error::JournalRead(_)
            | Error::Io { .. }
            | Error::TestsFailed { .. } => exit::FAILURE,
            Error::Partial { .. } | Error::PolicyFailed { .. } => exit::PARTIAL,
            Error::Guard(_) => exit::REFUSED,
        }
    }
}

impl From<ScriptError> for Error {
    fn from(e: ScriptError) -> Error {
        Error::Script(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_table_lists_every_code_once() {
        let help = exit::help();
        for (code, meaning) in exit::CODES {
            assert_eq!(help.matches(&format!("  {code}  {meaning}")).count(), 1);
        }
        let codes: Vec<u8> = exit::CODES.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, (0..=6).collect::<Vec<u8>>());
    }
}
