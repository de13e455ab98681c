//! The sandboxed Rhai engine: only the packages and objects ocsh chooses, with limits.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{Dynamic, Engine, EvalAltResult, Position};

use super::limits::{DEPTH_CHECK_EVERY, Limit, LimitBroken, Limits};

/// The fewest operations between two nesting checks of a call level.
const DEPTH_CHECK_MIN: u64 = 500;

/// What a script may use: resource limits, and the folders it was granted.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Operations, memory, nesting: see [`Limit`].
    pub limits: Limits,
    /// Wall-clock time before the script is stopped (directory waits included).
    pub timeout: Option<Duration>,
    /// Set from outside (Ctrl-C) to stop the running script.
    pub interrupt: Arc<AtomicBool>,
    /// Snippet folders `import` may load from, after the stdlib (`--lib`).
    pub lib: Vec<std::path::PathBuf>,
    /// Files and folders `read_csv`/`read_lines` may read (`--allow-read`).
    pub allow_read: Vec<std::path::PathBuf>,
    /// Print each run's figures (operations, time, memory) to stderr (`--stats`).
    pub stats: bool,
}

impl Default for Sandbox {
    fn default() -> Sandbox {
        Sandbox {
            limits: Limits::default(),
            timeout: None,
            interrupt: Arc::new(AtomicBool::new(false)),
            lib: Vec::new(),
            allow_read: Vec::new(),
            stats: false,
        }
    }
}

/// The variables and functions a session may define, and the functions the stdlib and
/// snippet modules bring: far above any script, far below what would slow lookups.
const MAX_VARIABLES: usize = 100_000;
const MAX_FUNCTIONS: usize = 10_000;

/// What the engine's callbacks share with the session: when the current run started
/// (each REPL input gets a fresh timeout), the operations counted so far, the memory
/// held when the session started, and when each call level's values were last
/// measured for nesting.
pub struct RunState {
    started: Cell<Instant>,
    operations: Cell<u64>,
    memory_base: Cell<usize>,
    depth_checked: RefCell<Vec<u64>>,
    /// Operations between two nesting checks of a call level: as many as the last check
    /// visited values (so checking costs at most one visit per operation), at least
    /// `DEPTH_CHECK_MIN` and at most `DEPTH_CHECK_EVERY`.
    depth_every: Cell<u64>,
    globals: RefCell<Option<GlobalVariable>>,
}

/// Resolves a variable the script did not define (by name, and Rhai's scope index:
/// 0 when the script has no variable of that name).
pub type GlobalVariable = Box<dyn Fn(&str, usize) -> Option<Dynamic>>;

impl RunState {
    /// Starts a run: the clock restarts; memory is still counted from the session's start.
    pub fn start(&self) {
        self.started.set(Instant::now());
    }

    /// Gives the engine's variable hook the variables the host provides (`replicator`).
    pub fn set_globals(&self, globals: GlobalVariable) {
        *self.globals.borrow_mut() = Some(globals);
    }

    /// Time since the current run started.
    pub fn elapsed(&self) -> Duration {
        self.started.get().elapsed()
    }

    /// Operations performed by the session so far (all runs, modules included).
    pub fn operations(&self) -> u64 {
        self.operations.get()
    }

    /// Bytes the session holds beyond what the process held when it started.
    pub fn memory_used(&self) -> usize {
        super::memory::allocated().saturating_sub(self.memory_base.get())
    }
}

fn broken(limit: Limit, limits: &Limits) -> Dynamic {
    Dynamic::from(LimitBroken {
        limit,
        value: limits.get(limit),
    })
}

/// Builds the engine: `new_raw` plus the standard package (language core, strings,
/// arrays, maps, maths, time); imports only through ocsh's jailed resolver (stdlib, then
/// the granted folders), `eval` disabled, limits set, and on progress: the interrupt,
/// the wall clock, the memory budget and the nesting of values.
///
/// Rhai's own array, map and string size limits stay off: they re-measure a whole
/// value after each change to it (quadratic in its size); the memory budget bounds
/// them all instead, and the functions that make a large value from a small argument
/// are checked against it first ([`super::api_budget`]).
pub fn build(sandbox: &Sandbox) -> (Engine, Rc<RunState>) {
    let limits = sandbox.limits.clone();
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new().as_shared_module());
    engine.disable_symbol("eval");
    register_exit(&mut engine);
    engine.set_max_operations(limits.get(Limit::Operations));
    engine.set_max_call_levels(limits.get_usize(Limit::CallLevels));
    let expr = limits.get_usize(Limit::ExprDepth);
    engine.set_max_expr_depths(expr, expr.div_ceil(2).max(1));
    engine.set_max_variables(MAX_VARIABLES);
    engine.set_max_functions(MAX_FUNCTIONS);
    engine.set_max_modules(limits.get_usize(Limit::Modules));
    engine.set_module_resolver(super::modules::Resolver::new(
        sandbox.lib.clone(),
        limits.get_usize(Limit::ImportDepth),
    ));
    let state = Rc::new(RunState {
        started: Cell::new(Instant::now()),
        operations: Cell::new(0),
        memory_base: Cell::new(super::memory::allocated()),
        depth_checked: RefCell::new(Vec::new()),
        depth_every: Cell::new(DEPTH_CHECK_MIN),
        globals: RefCell::new(None),
    });
    super::api_budget::register(&mut engine, &state, &limits);
    let s = state.clone();
    let timeout = sandbox.timeout;
    let interrupt = sandbox.interrupt.clone();
    let budget = usize::try_from(limits.get(Limit::Memory)).unwrap_or(usize::MAX);
    let l = limits.clone();
    engine.on_progress(move |_| {
        // Rhai restarts its count for every module and run; this one never does.
        s.operations.set(s.operations.get() + 1);
        if interrupt.load(Ordering::SeqCst) {
            return Some(Dynamic::from("interrupted"));
        }
        if s.memory_used() > budget {
            return Some(broken(Limit::Memory, &l));
        }
        match timeout {
            Some(t) if s.started.get().elapsed() > t => {
                Some(Dynamic::from(format!("timeout after {} s", t.as_secs())))
            }
            _ => None,
        }
    });

    // Values get deeper only through variables: each time one is read, the values of
    // the reading call level are measured if that level was last measured more than
    // `depth_every` (at most DEPTH_CHECK_EVERY) operations ago. Nothing can nest deeper than the limit plus
    // that interval in between, which the native stack holds (limits::NATIVE_STACK).
    let s = state.clone();
    let max_depth = limits.get_usize(Limit::ValueDepth);
    let l = limits;
    // `on_var` is marked volatile (not deprecated) by Rhai; it is the one hook that sees
    // the values of a running call level.
    #[allow(deprecated)]
    engine.on_var(move |name, index, ctx| {
        let level = ctx.call_level();
        let now = s.operations.get();
        let due = {
            let mut checked = s.depth_checked.borrow_mut();
            // Deeper levels seen before belong to calls that have returned; a new call
            // starts from its caller's last check.
            checked.truncate(level + 1);
            while checked.len() <= level {
                let parent = checked.last().copied().unwrap_or(0);
                checked.push(parent);
            }
            let due = now.saturating_sub(checked[level]) >= s.depth_every.get();
            if due {
                checked[level] = now;
            }
            due
        };
        if due {
            let values = ctx
                .scope()
                .iter_raw()
                .map(|(_, _, v)| v)
                .chain(ctx.this_ptr());
            match super::depth::check(values, max_depth) {
                Ok(visited) => s
                    .depth_every
                    .set((visited as u64).clamp(DEPTH_CHECK_MIN, DEPTH_CHECK_EVERY)),
                Err(super::depth::TooDeep) => {
                    return Err(Box::new(EvalAltResult::ErrorTerminated(
                        broken(Limit::ValueDepth, &l),
                        Position::NONE,
                    )));
                }
            }
        }
        Ok(s.globals.borrow().as_ref().and_then(|g| g(name, index)))
    });
    (engine, state)
}

/// `exit()` / `exit(value)`: Rhai's own `exit` ends a script like a normal end with a
/// value, so an abort could not be told from success. ocsh replaces it with a
/// statement that terminates the run (scripts cannot catch it) carrying the value; the
/// session keeps the plan only for `exit()` and `exit(0)`.
fn register_exit(engine: &mut Engine) {
    engine.disable_symbol("exit");
    engine.register_custom_syntax_with_state_raw(
        "exit",
        |symbols, look_ahead, _| {
            let next = match symbols.last().map(|s| s.as_str()) {
                // `exit()` reaches here as `exit` and the unit literal `()`.
                Some("exit") if look_ahead == "(" => Some("("),
                Some("exit") => Some("$expr$"),
                Some("(") if look_ahead == ")" => Some(")"),
                Some("(") => Some("$expr$"),
                Some("$expr$") if symbols.len() == 3 => Some(")"),
                _ => None,
            };
            Ok(next.map(Into::into))
        },
        false,
        |ctx, inputs, _| {
            let value = match inputs.first() {
                Some(e) => ctx.eval_expression_tree(e)?,
                None => Dynamic::UNIT,
            };
            Err(Box::new(EvalAltResult::ErrorTerminated(
                Dynamic::from(super::error::ExitRequest(value)),
                inputs.first().map_or(Position::NONE, |e| e.position()),
            )))
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str, limits: Limits) -> Result<Dynamic, String> {
        let sandbox = Sandbox {
            limits,
            ..Sandbox::default()
        };
        let (engine, _) = build(&sandbox);
        engine.eval::<Dynamic>(src).map_err(|e| e.to_string())
    }

    #[test]
    fn closure_chains_are_measured() {
        let mut l = Limits::default();
        l.set(Limit::ValueDepth, 5, "test").unwrap();
        let r = run("let a = 1; for i in 0..30000 { let b = a; a = || b; } 1", l);
        assert!(r.is_err(), "{r:?}");
    }
}
