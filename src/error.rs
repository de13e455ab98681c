//! The one error type of the command line, with the exit code of each kind.

use std::fmt;

use crate::directory::DirError;
use crate::plan::PlanError;
use crate::script::{ScriptError, ScriptErrorKind};

/// Exit codes, documented in the README and `ocsh --help`.
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
}

/// A failure of an ocsh command.
#[derive(Debug)]
pub enum Error {
    /// Bad usage.
    Usage(String),
    /// The script failed.
    Script(ScriptError),
    /// The directory failed.
    Directory(String),
    /// A file could not be read or written.
    Io(String),
    /// Some changes did not land (the summary was already printed).
    Partial(String),
    /// The blast-radius guard refused the apply before the first write.
    Guard(crate::plan::guard::TooDestructive),
}

impl Error {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Script(e) => match e.kind {
                ScriptErrorKind::Script => exit::SCRIPT,
                ScriptErrorKind::Refused => exit::REFUSED,
                ScriptErrorKind::Directory => exit::DIRECTORY,
            },
            Error::Directory(_) => exit::DIRECTORY,
            Error::Io(_) => exit::FAILURE,
            Error::Partial(_) => exit::PARTIAL,
            Error::Guard(_) => exit::REFUSED,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Directory(m) | Error::Io(m) | Error::Partial(m) => {
                f.write_str(m)
            }
            Error::Script(e) => match e.kind {
                ScriptErrorKind::Refused => write!(f, "{e}\nrefused: nothing was written"),
                _ => write!(f, "{e}\nnothing was written"),
            },
            Error::Guard(e) => write!(f, "refused: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<DirError> for Error {
    fn from(e: DirError) -> Error {
        Error::Directory(e.to_string())
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Error {
        Error::Directory(e.to_string())
    }
}

impl From<ScriptError> for Error {
    fn from(e: ScriptError) -> Error {
        Error::Script(e)
    }
}
