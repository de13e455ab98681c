//! Global functions: lookups (`user`, `users`, `users_in`, `pool`, `pools`), output
//! (`emit`) and the plan (`plan`, `discard`).

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::api_pool::PoolObj;
use super::api_user::{UserObj, UserQuery};
use super::host::{HostRef, refuse, to_rhai};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Registers the functions that need the session's host.
pub fn register(engine: &mut Engine, host: &HostRef) {
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "user",
        "The one user whose sAMAccountName, userPrincipalName, mail, sip: address or DN is `id`; an error when none or several match.",
        move |id: ImmutableString| -> Res<UserObj> {
            let read = h.ws.borrow().find_user(&id).map_err(to_rhai)?;
            Ok(UserObj {
                read: std::rc::Rc::new(read),
                host: h.clone(),
            })
        }
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "users",
        "Users matching an RFC 4515 filter, read page by page as the loop runs.",
        move |filter: ImmutableString| { UserQuery::new(h.clone(), None, &filter) }
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "users",
        "Every user of the directory, page by page.",
        move || UserQuery::new(h.clone(), None, "")
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "users_in",
        "Users below `ou` matching an RFC 4515 filter, read page by page.",
        move |base: ImmutableString, filter: ImmutableString| {
            UserQuery::new(h.clone(), Some(&base), &filter)
        },
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "users_in",
        "Every user below `ou`.",
        move |base: ImmutableString| { UserQuery::new(h.clone(), Some(&base), "") }
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "pool",
        "A pool by name, FQDN, pool DN or LC Services DN.",
        move |q: ImmutableString| -> Res<PoolObj> {
            let pool = h.ws.borrow().pool(&q).map_err(to_rhai)?;
            Ok(PoolObj {
                pool,
                host: h.clone(),
            })
        }
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "pools",
        "Every pool of the directory (both the R2 and the OCS 2007 layout).",
        move || -> Array {
            let ws = h.ws.borrow();
            ws.pools()
                .iter()
                .map(|p| {
                    Dynamic::from(PoolObj {
                        pool: p.clone(),
                        host: h.clone(),
                    })
                })
                .collect()
        }
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "sip_domains",
        "The SIP domains the deployment serves (msRTCSIP-Domain).",
        move || -> Array {
            h.ws.borrow()
                .sip_domains()
                .iter()
                .cloned()
                .map(Dynamic::from)
                .collect()
        }
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "emit",
        "Emits a record (a map), shown as a table, JSON or CSV.",
        move |record: Map| {
            h.records.borrow_mut().push(record);
        }
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "emit",
        "Emits a user's OCS attributes as a record.",
        move |record: Dynamic| -> Res<()> {
            if let Some(u) = record.clone().try_cast::<UserObj>() {
                h.records
                    .borrow_mut()
                    .push(super::api_user::user_map(&u.host.ws.borrow().view(&u.read)));
                return Ok(());
            }
            Err(refuse(format!(
                "emit() takes a map such as #{{ sam: u.sam }} or a user, not {}",
                record.type_name()
            )))
        }
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "discard",
        "Forgets every staged change.",
        move || h.ws.borrow_mut().discard()
    );
    crate::doc_fn!(
        engine,
        "ldap_escape",
        "Escapes a value for use inside an LDAP filter (RFC 4515).",
        |value: ImmutableString| { crate::directory::filter::escape_value(&value) }
    );
}
