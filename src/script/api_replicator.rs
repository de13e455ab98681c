//! The `replicator` object: the user replicator's settings and its replica.
//!
//! Settings changes (`replicator.interval = 120`, `replicator.regenerate_cookies_now()`)
//! are staged in the plan like directory changes and written to the replica only by
//! `--apply`; reading a setting sees the staged value. `sync()` runs one cycle at once
//! (it changes ocsh's own replica, never the directory), `status()` and `problems()` read
//! the replica.
//!
//! `replicator` is not a scope variable but resolved by name (Rhai's variable resolver),
//! so it is there in functions and after the REPL's `:clear`; a script's own variable of
//! that name hides it.

use std::path::PathBuf;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FuncRegistration, Map};
use serde_json::Value;

use crate::ocs::ReplicatorSettings;
use crate::plan::Workspace;
use crate::replica::{CycleInput, CycleReport, Replica, ReplicaError};

use super::error::DirectoryFailure;
use super::host::{HostRef, refuse, to_rhai};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// The `replicator` object: a handle on the session's host.
#[derive(Clone)]
pub struct ReplicatorObj {
    host: HostRef,
}

fn failure(e: ReplicaError) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(DirectoryFailure(e.to_string())),
        rhai::Position::NONE,
    ))
}

/// The replica a workspace's replicator uses: the one the command line chose, else the
/// default for its directory.
pub fn replica_path(ws: &Workspace) -> Option<PathBuf> {
    ws.replica_path()
        .map(PathBuf::from)
        .or_else(|| crate::replica::default_path(&ws.describe(), None))
}

/// Runs one replicator cycle on the workspace's directory, pools and SIP domains (the
/// CLI's `replicator sync` and `run` use it too). Ctrl-C abandons it, and the replica
/// stays as it was.
pub fn sync_now(ws: &Workspace, replica: &mut Replica) -> Result<CycleReport, ReplicaError> {
    let input = CycleInput {
        directory: ws.describe(),
        users: ws.user_request(""),
        pools: ws.pools(),
        sip_domains: ws.sip_domains(),
    };
    let dir = ws.directory();
    ws.run_long(replica.sync(dir.as_ref(), &input, ws.op_timeout()))
        .map_err(|_| ReplicaError::Interrupted)?
}

/// A serde value as a Rhai value.
pub fn to_dynamic(v: Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from(b),
        Value::Number(n) => n
            .as_i64()
            .map(Dynamic::from)
            .or_else(|| n.as_f64().map(Dynamic::from))
            .unwrap_or(Dynamic::UNIT),
        Value::String(s) => Dynamic::from(s),
        Value::Array(a) => Dynamic::from_array(a.into_iter().map(to_dynamic).collect()),
        Value::Object(o) => {
            let map: Map = o
                .into_iter()
                .map(|(k, v)| (k.into(), to_dynamic(v)))
                .collect();
            Dynamic::from_map(map)
        }
    }
}

fn serialized(v: &impl serde::Serialize) -> Dynamic {
    to_dynamic(serde_json::to_value(v).unwrap_or(Value::Null))
}

impl ReplicatorObj {
    fn path(&self) -> Res<PathBuf> {
        replica_path(&self.host.ws.borrow()).ok_or_else(|| {
            refuse(
                "no replica: there is no state directory for the default one; give --replica FILE",
            )
        })
    }

    fn open(&self) -> Res<Replica> {
        Replica::open(&self.path()?).map_err(failure)
    }

    /// The settings as stored, and as they read with the plan's staged change.
    fn settings(&self) -> Res<(PathBuf, ReplicatorSettings, ReplicatorSettings)> {
        let path = self.path()?;
        let stored = Replica::open(&path)
            .and_then(|r| r.settings())
            .map_err(failure)?;
        let ws = self.host.ws.borrow();
        let current = match ws.plan().settings_change() {
            Some(c) if c.replica == path => c.after.clone(),
            _ => stored.clone(),
        };
        Ok((path, stored, current))
    }

    fn stage(&self, change: impl FnOnce(&mut ReplicatorSettings) -> Res<()>) -> Res<()> {
        let (path, stored, mut next) = self.settings()?;
        change(&mut next)?;
        self.host
            .ws
            .borrow_mut()
            .stage_settings(&path, &stored, next);
        Ok(())
    }
}

/// Registers the `Replicator` type and resolves the name `replicator`.
pub fn register(engine: &mut Engine, host: &HostRef) {
    engine.register_type_with_name::<ReplicatorObj>("Replicator");
    engine.register_get("interval", |r: &mut ReplicatorObj| -> Res<i64> {
        Ok(i64::from(r.settings()?.2.interval()))
    });
    // Pure: the object is a handle (the change goes to the plan), so the setter works on
    // `replicator`, which Rhai treats as a constant.
    FuncRegistration::new_setter("interval")
        .with_purity(true)
        .register_into_engine(engine, |r: &mut ReplicatorObj, seconds: i64| -> Res<()> {
            r.stage(|s| {
                s.set_interval(seconds)
                    .map_err(|e| to_rhai(crate::plan::PlanError::Rule(e)))
            })
        });
    engine.register_fn(
        "regenerate_cookies_now",
        |r: &mut ReplicatorObj| -> Res<()> {
            r.stage(|s| {
                s.regenerate_cookies_now();
                Ok(())
            })
        },
    );
    engine.register_get("regenerate_pending", |r: &mut ReplicatorObj| -> Res<bool> {
        Ok(r.settings()?.2.regenerate_pending())
    });
    engine.register_get("instance_id", |r: &mut ReplicatorObj| -> Res<String> {
        Ok(r.settings()?.1.instance_id.to_string())
    });
    engine.register_get("backend", |r: &mut ReplicatorObj| -> Res<String> {
        Ok(r.settings()?.1.backend)
    });
    engine.register_get("replica", |r: &mut ReplicatorObj| -> Res<String> {
        Ok(r.path()?.display().to_string())
    });
    engine.register_fn("sync", |r: &mut ReplicatorObj| -> Res<Dynamic> {
        let mut replica = r.open()?;
        let report = sync_now(&r.host.ws.borrow(), &mut replica).map_err(failure)?;
        Ok(serialized(&report))
    });
    engine.register_fn("status", |r: &mut ReplicatorObj| -> Res<Dynamic> {
        let status = r.open()?.status(10).map_err(failure)?;
        Ok(serialized(&status))
    });
    engine.register_fn("problems", |r: &mut ReplicatorObj| -> Res<Array> {
        let problems = r.open()?.problems().map_err(failure)?;
        Ok(problems.iter().map(serialized).collect())
    });
    engine.register_fn("to_string", |r: &mut ReplicatorObj| {
        r.path().map_or_else(
            |_| "replicator".into(),
            |p| format!("replicator ({})", p.display()),
        )
    });
    engine.register_fn("to_debug", |_: &mut ReplicatorObj| "Replicator".to_string());

    let h = host.clone();
    // Rhai marks this API volatile (it may change between versions); it is the one way to
    // give every script, function and REPL input the same global object.
    #[allow(deprecated)]
    engine.on_var(move |name, index, _| {
        // index > 0: the script has its own variable of that name in scope.
        if name == "replicator" && index == 0 {
            Ok(Some(Dynamic::from(ReplicatorObj { host: h.clone() })))
        } else {
            Ok(None)
        }
    });
}
