//! The script layer's error: a message with the file, line and column it comes from.

use std::fmt;

use rhai::EvalAltResult;

use super::limits::{Limit, LimitBroken, Limits};

/// What kind of failure stopped a script; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptErrorKind {
    /// The script does not compile, or failed at run time (incl. a broken limit).
    Script,
    /// A rule refused a change the script asked for.
    Refused,
    /// The directory failed (lookup error, timeout).
    Directory,
}

/// A script failure, pointing at the place in the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// The kind of failure.
    pub kind: ScriptErrorKind,
    /// The script file (or `<repl>`).
    pub file: String,
    /// 1-based line, if known.
    pub line: Option<usize>,
    /// 1-based column, if known.
    pub column: Option<usize>,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScriptError {}

/// A change refused by a rule, thrown into the script as a catchable value whose text is
/// the rule's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// A directory failure, thrown into the script like a [`Refusal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryFailure(pub String);

impl ScriptError {
    /// Converts a Rhai error, reaching through function-call and module wrappers to the
    /// innermost position and message; a broken limit is named with its value in
    /// `limits` and how to raise it.
    pub fn from_rhai(file: &str, err: &EvalAltResult, limits: &Limits) -> ScriptError {
        let inner = innermost(err);
        let mut pos = inner.position();
        if pos.is_none() {
            pos = err.position();
        }
        let (kind, message) = match inner {
            EvalAltResult::ErrorRuntime(v, _) if v.is::<Refusal>() => {
                (ScriptErrorKind::Refused, v.clone_cast::<Refusal>().0)
            }
            EvalAltResult::ErrorRuntime(v, _) if v.is::<DirectoryFailure>() => (
                ScriptErrorKind::Directory,
                v.clone_cast::<DirectoryFailure>().0,
            ),
            EvalAltResult::ErrorRuntime(v, _) => {
                (ScriptErrorKind::Script, format!("script threw: {v}"))
            }
            EvalAltResult::ErrorTerminated(v, _) if v.is::<LimitBroken>() => (
                ScriptErrorKind::Script,
                v.clone_cast::<LimitBroken>().to_string(),
            ),
            EvalAltResult::ErrorTerminated(v, _) if v.is::<ExitRequest>() => (
                ScriptErrorKind::Script,
                format!(
                    "the script called exit({:?}): it aborted, so nothing it planned is kept (exit() or exit(0) keeps the plan)",
                    v.clone_cast::<ExitRequest>().0
                ),
            ),
            EvalAltResult::ErrorTooManyOperations(_) => {
                (ScriptErrorKind::Script, broke(Limit::Operations, limits))
            }
            EvalAltResult::ErrorStackOverflow(_) => {
                (ScriptErrorKind::Script, broke(Limit::CallLevels, limits))
            }
            EvalAltResult::ErrorTooManyModules(_) => {
                (ScriptErrorKind::Script, broke(Limit::Modules, limits))
            }
            EvalAltResult::ErrorParsing(rhai::ParseErrorType::ExprTooDeep, _) => {
                (ScriptErrorKind::Script, broke(Limit::ExprDepth, limits))
            }
            EvalAltResult::ErrorTerminated(v, _) => {
                (ScriptErrorKind::Script, format!("script stopped: {v}"))
            }
            other => (
                ScriptErrorKind::Script,
                without_position(&other.to_string()),
            ),
        };
        ScriptError {
            kind,
            file: file.to_string(),
            line: pos.line(),
            column: pos.position(),
            message,
        }
    }
}

/// `exit(value)` called by a script, carried out of the engine as a termination; the
/// session decides whether it keeps the plan (`exit()`, `exit(0)`) or aborts.
#[derive(Debug, Clone)]
pub struct ExitRequest(pub rhai::Dynamic);

fn broke(limit: Limit, limits: &Limits) -> String {
    LimitBroken {
        limit,
        value: limits.get(limit),
    }
    .to_string()
}

/// The message of a compile error, naming the expression-depth limit when that broke.
pub fn parse_message(e: &rhai::ParseError, limits: &Limits) -> String {
    match e.err_type() {
        rhai::ParseErrorType::ExprTooDeep => broke(Limit::ExprDepth, limits),
        other => other.to_string(),
    }
}

/// The value of an `exit()` or `exit(0)`, which end a script as a success.
pub fn clean_exit(err: &EvalAltResult) -> Option<rhai::Dynamic> {
    match innermost(err) {
        EvalAltResult::ErrorTerminated(v, _) if v.is::<ExitRequest>() => {
            let value = v.clone_cast::<ExitRequest>().0;
            let clean = value.is_unit() || value.as_int().is_ok_and(|n| n == 0);
            clean.then_some(value)
        }
        _ => None,
    }
}

fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}

/// Rhai appends ` (line L, position C)` to its messages; ocsh shows the place itself.
fn without_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(i) if message.ends_with(')') => message[..i].to_string(),
        _ => message.to_string(),
    }
}
