//! The sandboxed Rhai engine: only the packages and objects ocsh chooses, with limits.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{Dynamic, Engine};

/// What a script may use: resource limits, and the folders it was granted.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Rhai operations before the script is stopped.
    pub max_operations: u64,
    /// Wall-clock time before the script is stopped (directory waits included).
    pub timeout: Option<Duration>,
    /// Set from outside (Ctrl-C) to stop the running script.
    pub interrupt: Arc<AtomicBool>,
    /// Snippet folders `import` may load from, after the stdlib (`--lib`).
    pub lib: Vec<std::path::PathBuf>,
    /// Files and folders `read_csv`/`read_lines` may read (`--allow-read`).
    pub allow_read: Vec<std::path::PathBuf>,
}

impl Default for Sandbox {
    fn default() -> Sandbox {
        Sandbox {
            max_operations: 200_000_000,
            timeout: None,
            interrupt: Arc::new(AtomicBool::new(false)),
            lib: Vec::new(),
            allow_read: Vec::new(),
        }
    }
}

/// Call depth: deep enough for helper libraries, shallow enough to stop runaway recursion
/// long before the native stack does.
const MAX_CALL_LEVELS: usize = 48;
const MAX_STRING: usize = 1 << 20;
/// Rhai re-measures a whole array or map after every operation that changes it, so a
/// script growing one element at a time costs quadratic time in the cap: the caps stay
/// modest, and large user sets are streamed with `for u in users(...)` instead.
const MAX_ARRAY: usize = 50_000;
const MAX_MAP: usize = 10_000;

/// When the current run started: reset by each run so a REPL session gets a fresh
/// timeout per statement.
pub type RunClock = Rc<Cell<Instant>>;

/// Builds the engine: `new_raw` plus the standard package (language core, strings,
/// arrays, maps, maths, time); imports only through ocsh's jailed resolver (stdlib, then
/// the granted folders), `eval` disabled, limits set, wall clock and interrupt checked on
/// progress.
pub fn build(limits: &Sandbox) -> (Engine, RunClock) {
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new().as_shared_module());
    engine.disable_symbol("eval");
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(MAX_CALL_LEVELS);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_string_size(MAX_STRING);
    engine.set_max_array_size(MAX_ARRAY);
    engine.set_max_map_size(MAX_MAP);
    engine.set_max_variables(10_000);
    engine.set_max_functions(2_000);
    engine.set_max_modules(100);
    engine.set_module_resolver(super::modules::Resolver::new(limits.lib.clone()));

    let clock: RunClock = Rc::new(Cell::new(Instant::now()));
    let started = clock.clone();
    let timeout = limits.timeout;
    let interrupt = limits.interrupt.clone();
    engine.on_progress(move |_| {
        if interrupt.load(Ordering::SeqCst) {
            return Some(Dynamic::from("interrupted"));
        }
        match timeout {
            Some(t) if started.get().elapsed() > t => {
                Some(Dynamic::from(format!("timeout after {} s", t.as_secs())))
            }
            _ => None,
        }
    });
    (engine, clock)
}
