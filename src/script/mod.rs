//! The Rhai layer: a sandboxed engine with the user, flags and pool objects. It only
//! translates between Rhai values and the plan layer's workspace.

pub mod api_budget;
pub mod api_files;
pub mod api_flags;
pub mod api_global;
pub mod api_plan;
pub mod api_pool;
pub mod api_replicator;
pub mod api_user;
pub mod depth;
pub mod docs;
pub mod engine;
pub mod error;
pub mod header;
pub mod host;
pub mod limits;
pub mod memory;
pub mod modules;
pub mod values;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use rhai::{AST, Dynamic, Engine, Map, Scope};

use crate::plan::Workspace;

pub use engine::Sandbox;
pub use error::{ScriptError, ScriptErrorKind};
pub use host::{Host, HostRef};
pub use limits::{Limit, Limits};

/// A script session: engine, shared host state and the variables that persist between
/// runs (one run for `ocsh run`, one per input in the REPL).
pub struct Session {
    engine: Engine,
    host: HostRef,
    scope: Scope<'static>,
    state: std::rc::Rc<engine::RunState>,
    limits: Limits,
    /// Functions defined by earlier runs (the REPL keeps them between inputs).
    functions: AST,
    interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Session {
    /// A session on `ws`, with `params` as the `params` constant and `out` receiving
    /// `print` and `debug` output.
    pub fn new(ws: Workspace, params: Map, limits: &Sandbox, out: Box<dyn Write>) -> Session {
        let (mut engine, state) = engine::build(limits);
        let host: HostRef = Rc::new(Host {
            ws: RefCell::new(ws),
            records: RefCell::new(Vec::new()),
            out: RefCell::new(out),
            allow_read: limits
                .allow_read
                .iter()
                .filter_map(|p| p.canonicalize().ok())
                .collect(),
        });
        api_flags::register(&mut engine);
        api_pool::register(&mut engine);
        api_user::register(&mut engine);
        api_global::register(&mut engine, &host);
        api_plan::register(&mut engine, &host);
        api_files::register(&mut engine, &host);
        api_replicator::register(&mut engine);
        state.set_globals(Box::new(api_replicator::global_variable(&host)));
        engine.register_type_with_name::<error::Refusal>("Refusal");
        engine.register_fn("to_string", |r: &mut error::Refusal| r.0.clone());
        engine.register_fn("to_debug", |r: &mut error::Refusal| {
            format!("Refusal({:?})", r.0)
        });
        engine.register_type_with_name::<error::DirectoryFailure>("DirectoryFailure");
        engine.register_fn("to_string", |r: &mut error::DirectoryFailure| r.0.clone());
        let h = host.clone();
        engine.on_print(move |s| {
            let _ = writeln!(h.out.borrow_mut(), "{s}");
        });
        let h = host.clone();
        engine.on_debug(move |s, src, pos| {
            let at = match (src, pos.line()) {
                (Some(src), Some(l)) => format!("{src}:{l}: "),
                _ => String::new(),
            };
            let _ = writeln!(h.out.borrow_mut(), "{at}{s}");
        });
        let mut scope = Scope::new();
        scope.push_constant("params", params);
        host.ws.borrow_mut().set_interrupt(limits.interrupt.clone());
        Session {
            engine,
            host,
            scope,
            state,
            limits: limits.limits.clone(),
            functions: AST::empty(),
            interrupt: limits.interrupt.clone(),
        }
    }

    /// The shared state (workspace, records).
    pub fn host(&self) -> &HostRef {
        &self.host
    }

    /// The engine (for completion and docs).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `source` (named `name` in errors) without running it.
    pub fn compile(&self, name: &str, source: &str) -> Result<AST, ScriptError> {
        let mut ast = self
            .engine
            .compile_with_scope(&self.scope, source)
            .map_err(|e| {
                let pos = e.position();
                ScriptError {
                    kind: ScriptErrorKind::Script,
                    file: name.to_string(),
                    line: pos.line(),
                    column: pos.position(),
                    message: error::parse_message(&e, &self.limits),
                }
            })?;
        ast.set_source(name);
        Ok(ast)
    }

    /// Compiles `source` and resolves its imports (stdlib and library folders) without
    /// running it: what `ocsh check` does.
    pub fn check(&self, name: &str, source: &str) -> Result<(), ScriptError> {
        self.compile(name, source)?;
        self.engine
            .compile_into_self_contained(&self.scope, source)
            .map(|_| ())
            .map_err(|e| ScriptError::from_rhai(name, &e, &self.limits))
    }

    /// Compiles and runs `source`; the variables and functions it defines stay in the
    /// session for later runs. `exit()` and `exit(0)` end it as a success; `exit` with
    /// any other value is an error carrying that value.
    pub fn run(&mut self, name: &str, source: &str) -> Result<Dynamic, ScriptError> {
        let ast = self.compile(name, source)?;
        self.state.start();
        self.interrupt
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let with_functions = self.functions.merge(&ast);
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &with_functions)
            .or_else(|e| match error::clean_exit(&e) {
                Some(value) => Ok(value),
                None => Err(ScriptError::from_rhai(name, &e, &self.limits)),
            });
        if result.is_ok() {
            self.functions += ast.clone_functions_only();
        }
        result
    }

    /// Rhai operations the session has performed (all runs, modules included).
    pub fn operations(&self) -> u64 {
        self.state.operations()
    }

    /// One line of figures: operations, time since the last run started, memory held
    /// beyond the session's start and the process's peak (for `--stats`).
    pub fn stats_line(&self) -> String {
        format!(
            "{} operations, {:.3} s, memory held {} (process peak {})",
            self.state.operations(),
            self.state.elapsed().as_secs_f64(),
            limits::show_bytes_approx(self.state.memory_used() as u64),
            limits::show_bytes_approx(memory::peak() as u64),
        )
    }

    /// The flag that stops the running script (set it from a Ctrl-C handler).
    pub fn interrupt_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.interrupt.clone()
    }

    /// The session's variables with the type names of their values.
    pub fn variables(&self) -> Vec<(String, String, Dynamic)> {
        self.scope
            .iter()
            .map(|(name, _, value)| {
                (
                    name.to_string(),
                    self.engine.map_type_name(value.type_name()).to_string(),
                    value,
                )
            })
            .collect()
    }

    /// Sets a constant the next runs see (a replicator policy's `changes`), replacing one
    /// of that name.
    pub fn set_constant(&mut self, name: &str, value: Dynamic) {
        let _ = self.scope.remove::<Dynamic>(name);
        self.scope.push_constant_dynamic(name.to_string(), value);
    }

    /// Forgets every variable and function (but keeps `params` and the plan).
    pub fn clear(&mut self) {
        let params = self.scope.get_value::<Map>("params").unwrap_or_default();
        self.scope.clear();
        self.scope.push_constant("params", params);
        self.functions = AST::empty();
    }

    /// The signatures of the registered functions (for completion and docs).
    pub fn signatures(&self) -> Vec<String> {
        self.engine.gen_fn_signatures(false)
    }

    /// Takes the records emitted so far.
    pub fn take_records(&self) -> Vec<Map> {
        std::mem::take(&mut self.host.records.borrow_mut())
    }
}
