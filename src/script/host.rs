//! The state a script's objects share: the workspace, emitted records and output.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult, Map, Position};

use crate::plan::{PlanError, Workspace};

use super::error::{DirectoryFailure, Refusal};

/// Shared by every object a script holds. Rhai without `sync` is single-threaded, so a
/// `RefCell` is enough; natives never call back into the script while borrowing it.
pub struct Host {
    /// The directory, the deployment and the plan.
    pub ws: RefCell<Workspace>,
    /// Records passed to `emit`, in order.
    pub records: RefCell<Vec<Map>>,
    /// Where `print` and `debug` write.
    pub out: RefCell<Box<dyn Write>>,
    /// Canonical paths `read_csv`/`read_lines` may read (`--allow-read`).
    pub allow_read: Vec<std::path::PathBuf>,
}

/// A handle on the host, cloned into every script object.
pub type HostRef = Rc<Host>;

/// Converts a plan-layer error into a script error the script can catch; its text is
/// the error's message. Rhai fills in the call position.
pub fn to_rhai(e: PlanError) -> Box<EvalAltResult> {
    let value = if e.is_refusal() {
        Dynamic::from(Refusal(e.to_string()))
    } else {
        Dynamic::from(DirectoryFailure(e.to_string()))
    };
    Box::new(EvalAltResult::ErrorRuntime(value, Position::NONE))
}

/// A refusal raised by the glue itself (a wrong argument type, an unknown name).
pub fn refuse(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(Refusal(message.into())),
        Position::NONE,
    ))
}
