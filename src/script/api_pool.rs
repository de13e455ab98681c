//! The `pool` object.

use rhai::{Dynamic, Engine, EvalAltResult};

use crate::ocs::Pool;

use super::api_user::UserQuery;
use super::host::HostRef;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// A pool in a script, with a handle on the host for `p.users()`.
#[derive(Clone)]
pub struct PoolObj {
    /// The pool.
    pub pool: Pool,
    /// The shared session state.
    pub host: HostRef,
}

fn opt_int(v: Option<i64>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Dynamic::from)
}

/// Registers the pool type.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<PoolObj>("Pool");
    crate::doc_get!(
        engine,
        "name",
        "The pool's name (its CN).",
        |p: &mut PoolObj| p.pool.name.clone()
    );
    crate::doc_get!(engine, "fqdn", "dNSHostName, or ().", |p: &mut PoolObj| {
        p.pool.fqdn.clone().map_or(Dynamic::UNIT, Dynamic::from)
    });
    crate::doc_get!(
        engine,
        "dn",
        "The home-server DN users point at: CN=LC Services,CN=Microsoft,<pool DN>.",
        |p: &mut PoolObj| p.pool.home_server_dn()
    );
    crate::doc_get!(
        engine,
        "pool_dn",
        "The pool object's own DN.",
        |p: &mut PoolObj| p.pool.dn.clone()
    );
    crate::doc_get!(
        engine,
        "pool_type",
        "msRTCSIP-PoolType: 5 Standard Edition, 10 Enterprise Edition; or ().",
        |p: &mut PoolObj| opt_int(p.pool.pool_type)
    );
    crate::doc_get!(
        engine,
        "version",
        "msRTCSIP-PoolVersion: 3 OCS 2007, 4 R2, 5 Lync 2010; or ().",
        |p: &mut PoolObj| opt_int(p.pool.version)
    );
    crate::doc_get!(
        engine,
        "backend",
        "msRTCSIP-BackEndServer, or ().",
        |p: &mut PoolObj| { p.pool.backend.clone().map_or(Dynamic::UNIT, Dynamic::from) }
    );
    crate::doc_get!(
        engine,
        "layout",
        "\"R2\" or \"OCS 2007\": where the pool lives.",
        |p: &mut PoolObj| match p.pool.layout {
            Some(crate::ocs::PoolLayout::R2) => Dynamic::from("R2"),
            Some(crate::ocs::PoolLayout::Ocs2007) => Dynamic::from("OCS 2007"),
            None => Dynamic::UNIT,
        }
    );
    crate::doc_fn!(
        engine,
        "users",
        "The users homed on this pool (a query).",
        |p: &mut PoolObj| -> Res<UserQuery> {
            let filter = format!(
                "(msRTCSIP-PrimaryHomeServer={})",
                crate::directory::filter::escape_value(&p.pool.home_server_dn())
            );
            UserQuery::new(p.host.clone(), None, &filter)
        }
    );
    engine.register_fn("to_string", |p: &mut PoolObj| match &p.pool.fqdn {
        Some(f) => format!("{} ({f})", p.pool.name),
        None => p.pool.name.clone(),
    });
    engine.register_fn("to_debug", |p: &mut PoolObj| {
        format!("Pool({})", p.pool.name)
    });
    engine.register_fn("==", |a: &mut PoolObj, b: PoolObj| {
        a.pool.dn.eq_ignore_ascii_case(&b.pool.dn)
    });
    engine.register_fn("!=", |a: &mut PoolObj, b: PoolObj| {
        !a.pool.dn.eq_ignore_ascii_case(&b.pool.dn)
    });
}
