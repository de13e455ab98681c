//! The `replicator` object: the user replicator's settings and its replica.
//!
//! Settings changes (`replicator.interval = 120`, `replicator.regenerate_cookies_now()`)
//! are staged in the plan like directory changes and written to the replica only by
//! `--apply`; reading a setting sees the staged value. `cycle()` runs one cycle at once
//! (it changes ocsh's own replica, never the directory), `status()` and `problems()` read
//! the replica. (Not `sync()`: `sync` is a reserved keyword in Rhai, so no script could
//! call a method of that name.)
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
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<ReplicatorObj>("Replicator");
    crate::doc_get!(
        engine,
        "interval",
        "ReplicationCycleInterval: seconds between cycles (5..86400, default 60).",
        |r: &mut ReplicatorObj| -> Res<i64> { Ok(i64::from(r.settings()?.2.interval())) }
    );
    // Pure: the object is a handle (the change goes to the plan), so the setter works on
    // `replicator`, which Rhai treats as a constant.
    FuncRegistration::new_setter("interval")
        .with_purity(true)
        .with_comments(crate::script::docs::comment_lines(
            "Sets ReplicationCycleInterval; outside 5..86400 it is refused. Planned, written with --apply.",
        ))
        .register_into_engine(engine, |r: &mut ReplicatorObj, seconds: i64| -> Res<()> {
            r.stage(|s| {
                s.set_interval(seconds)
                    .map_err(|e| to_rhai(crate::plan::PlanError::Rule(e)))
            })
        });
    crate::doc_fn!(
        engine,
        "regenerate_cookies_now",
        "Makes the next cycle a full initial cycle (RegenerateCookiesNow); the flag reads false after it. Planned, written with --apply.",
        |r: &mut ReplicatorObj| -> Res<()> {
            r.stage(|s| {
                s.regenerate_cookies_now();
                Ok(())
            })
        },
    );
    crate::doc_get!(
        engine,
        "regenerate_pending",
        "True while a regeneration is requested (RegenerateCookiesNow).",
        |r: &mut ReplicatorObj| -> Res<bool> { Ok(r.settings()?.2.regenerate_pending()) }
    );
    crate::doc_get!(
        engine,
        "instance_id",
        "The replica's InstanceID, a braced GUID.",
        |r: &mut ReplicatorObj| -> Res<String> { Ok(r.settings()?.1.instance_id.to_string()) }
    );
    crate::doc_get!(
        engine,
        "backend",
        "The Backend the replica belongs to (the directory it replicates).",
        |r: &mut ReplicatorObj| -> Res<String> { Ok(r.settings()?.1.backend) }
    );
    crate::doc_get!(
        engine,
        "replica",
        "The replica file's path.",
        |r: &mut ReplicatorObj| -> Res<String> { Ok(r.path()?.display().to_string()) }
    );
    crate::doc_fn!(
        engine,
        "cycle",
        "Runs one replication cycle now; returns #{ kind, added, changed, deleted, seen, users, problems }.",
        |r: &mut ReplicatorObj| -> Res<Dynamic> {
            let mut replica = r.open()?;
            let report = sync_now(&r.host.ws.borrow(), &mut replica).map_err(failure)?;
            Ok(serialized(&report))
        }
    );
    crate::doc_fn!(
        engine,
        "status",
        "The settings, cookies and last cycles of the replica, as a map.",
        |r: &mut ReplicatorObj| -> Res<Dynamic> {
            let status = r.open()?.status(10).map_err(failure)?;
            Ok(serialized(&status))
        }
    );
    crate::doc_fn!(
        engine,
        "problems",
        "The problems the last cycle found: an array of #{ kind, dn, user, sip, detail }.",
        |r: &mut ReplicatorObj| -> Res<Array> {
            let problems = r.open()?.problems().map_err(failure)?;
            Ok(problems.iter().map(serialized).collect())
        }
    );
    engine.register_fn("to_string", |r: &mut ReplicatorObj| {
        r.path().map_or_else(
            |_| "replicator".into(),
            |p| format!("replicator ({})", p.display()),
        )
    });
    engine.register_fn("to_debug", |_: &mut ReplicatorObj| "Replicator".to_string());
}

/// The global `replicator` variable, for the engine's variable hook: every script,
/// function and REPL input sees the same object unless it has its own variable of that
/// name (index > 0).
pub fn global_variable(host: &HostRef) -> impl Fn(&str, usize) -> Option<Dynamic> + 'static {
    let h = host.clone();
    move |name, index| {
        (name == "replicator" && index == 0)
            .then(|| Dynamic::from(ReplicatorObj { host: h.clone() }))
    }
}
