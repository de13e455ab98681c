//! The `user` object and user queries, translated to workspace calls.

use std::collections::VecDeque;
use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use crate::directory::{PageCursor, SearchRequest};
use crate::ocs::sip::SipDerivation;
use crate::ocs::{Attr, Flags, OcsUser};

use super::api_pool::PoolObj;
use super::host::{HostRef, refuse, to_rhai};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// A user in a script: the entry as read plus a handle on the host. Every copy of it
/// reads the staged state, so a change made through any copy is seen by all.
#[derive(Clone)]
pub struct UserObj {
    /// The user as read from the directory.
    pub read: Rc<OcsUser>,
    /// The shared session state.
    pub host: HostRef,
}

impl UserObj {
    fn now(&self) -> OcsUser {
        self.host.ws.borrow().view(&self.read)
    }

    fn text(&self, attr: &str) -> Dynamic {
        self.now()
            .first(attr)
            .map_or(Dynamic::UNIT, |v| Dynamic::from(v.to_string()))
    }

    fn with_ws<T>(
        &self,
        f: impl FnOnce(&mut crate::plan::Workspace, &OcsUser) -> Result<T, crate::plan::PlanError>,
    ) -> Res<T> {
        f(&mut self.host.ws.borrow_mut(), &self.read).map_err(to_rhai)
    }
}

/// A lazy user search: iterating it reads the directory page by page.
#[derive(Clone)]
pub struct UserQuery {
    host: HostRef,
    request: SearchRequest,
    what: String,
}

impl UserQuery {
    /// A query for users matching `filter` below `base` (the domain NC when `None`).
    pub fn new(host: HostRef, base: Option<&str>, filter: &str) -> Res<UserQuery> {
        let canonical = crate::plan::Workspace::check_filter(filter).map_err(to_rhai)?;
        let mut request = host.ws.borrow().user_request(&canonical);
        if let Some(b) = base {
            crate::ocs::Dn::parse(b).map_err(|e| to_rhai(e.into()))?;
            request.base = b.to_string();
        }
        let what = match base {
            Some(b) => format!("users_in({b:?}, {filter:?})"),
            None => format!("users({filter:?})"),
        };
        Ok(UserQuery {
            host,
            request,
            what,
        })
    }
}

/// The iterator behind `for u in users(...)`.
pub struct UserIter {
    query: UserQuery,
    buffer: VecDeque<OcsUser>,
    cursor: Option<PageCursor>,
    started: bool,
    done: bool,
}

impl Iterator for UserIter {
    type Item = Res<UserObj>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(u) = self.buffer.pop_front() {
                return Some(Ok(UserObj {
                    read: Rc::new(u),
                    host: self.query.host.clone(),
                }));
            }
            if self.done || (self.started && self.cursor.is_none()) {
                return None;
            }
            self.started = true;
            let page = self
                .query
                .host
                .ws
                .borrow()
                .users_page(&self.query.request, self.cursor.take());
            match page {
                Ok((users, next)) => {
                    self.buffer.extend(users);
                    self.cursor = next;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(to_rhai(e)));
                }
            }
        }
    }
}

/// A loop left before the last page (`break`, `return`, an error) gives its search up, so
/// that an LDAP server connection is not held open for nothing.
impl Drop for UserIter {
    fn drop(&mut self) {
        if let Some(cursor) = self.cursor.take() {
            if let Ok(ws) = self.query.host.ws.try_borrow() {
                ws.release_cursor(&cursor);
            }
        }
    }
}

impl IntoIterator for UserQuery {
    type Item = Res<UserObj>;
    type IntoIter = UserIter;

    fn into_iter(self) -> UserIter {
        UserIter {
            query: self,
            buffer: VecDeque::new(),
            cursor: None,
            started: false,
            done: false,
        }
    }
}

fn pool_arg(host: &HostRef, pool: &Dynamic) -> Res<PoolObj> {
    if let Some(p) = pool.clone().try_cast::<PoolObj>() {
        return Ok(p);
    }
    if let Ok(name) = pool.clone().into_immutable_string() {
        let p = host.ws.borrow().pool(&name).map_err(to_rhai)?;
        return Ok(PoolObj {
            pool: p,
            host: host.clone(),
        });
    }
    Err(refuse(format!(
        "expected a pool (pool(\"name\")) or a pool name, not {}",
        pool.type_name()
    )))
}

fn value_strings(attr: &str, v: Dynamic) -> Res<Vec<String>> {
    if v.is_unit() {
        return Ok(Vec::new());
    }
    if v.is_array() {
        return v
            .cast::<Array>()
            .into_iter()
            .map(|x| scalar_string(attr, x))
            .collect();
    }
    scalar_string(attr, v).map(|s| vec![s])
}

fn scalar_string(attr: &str, v: Dynamic) -> Res<String> {
    if let Some(b) = v.clone().try_cast::<bool>() {
        return Ok(crate::ocs::values::ad_bool(b));
    }
    if let Some(i) = v.clone().try_cast::<i64>() {
        return Ok(i.to_string());
    }
    if let Some(f) = v.clone().try_cast::<Flags>() {
        return Ok(f.value().to_string());
    }
    if let Some(p) = v.clone().try_cast::<PoolObj>() {
        return Ok(p.pool.home_server_dn());
    }
    match v.into_immutable_string() {
        Ok(s) => Ok(s.to_string()),
        Err(t) => Err(refuse(format!("cannot write a {t} to {attr}"))),
    }
}

fn derivation(how: &str, domain: Option<&str>) -> Res<SipDerivation> {
    let need_domain = || {
        domain.map(str::to_string).ok_or_else(|| {
            refuse(format!(
                "derive_sip(\"{how}\", domain) needs the SIP domain"
            ))
        })
    };
    match how.to_ascii_lowercase().replace(['-', '.'], "_").as_str() {
        "mail" | "email" | "emailaddress" => Ok(SipDerivation::Mail),
        "upn" | "userprincipalname" => Ok(SipDerivation::Upn),
        "first_last" | "firstlast" | "firstlastname" => {
            Ok(SipDerivation::FirstLast(need_domain()?))
        }
        "sam" | "samaccountname" => Ok(SipDerivation::Sam(need_domain()?)),
        _ => Err(refuse(format!(
            "unknown SIP derivation {how:?}; use \"mail\", \"upn\", \"first_last\" or \"sam\""
        ))),
    }
}

/// Registers the user type and its query.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<UserObj>("User");
    crate::doc_get!(
        engine,
        "dn",
        "The user's distinguished name.",
        |u: &mut UserObj| u.read.dn.clone()
    );
    crate::doc_get!(
        engine,
        "sam",
        "sAMAccountName, or () when absent.",
        |u: &mut UserObj| u.text("sAMAccountName")
    );
    crate::doc_get!(
        engine,
        "upn",
        "userPrincipalName, or ().",
        |u: &mut UserObj| u.text("userPrincipalName")
    );
    crate::doc_get!(engine, "mail", "mail, or ().", |u: &mut UserObj| u
        .text("mail"));
    crate::doc_get!(
        engine,
        "display_name",
        "displayName, or ().",
        |u: &mut UserObj| u.text("displayName")
    );
    crate::doc_get!(
        engine,
        "given_name",
        "givenName, or ().",
        |u: &mut UserObj| u.text("givenName")
    );
    crate::doc_get!(
        engine,
        "surname",
        "sn (surname), or ().",
        |u: &mut UserObj| u.text("sn")
    );
    crate::doc_get!(
        engine,
        "line",
        "msRTCSIP-Line: the line URI (tel:+E164[;ext=N] or a sip: URI), or ().",
        |u: &mut UserObj| u.text(Attr::Line.name())
    );
    crate::doc_get!(
        engine,
        "archiving",
        "msRTCSIP-ArchivingEnabled: 0 none, 4 internal, 8 federated, 12 both (0 when absent; () when not a number).",
        |u: &mut UserObj| u.now().archiving().map_or(Dynamic::UNIT, Dynamic::from)
    );
    crate::doc_get!(
        engine,
        "deployment_locator",
        "msRTCSIP-DeploymentLocator (Lync: where the user is homed), or (). Read-only.",
        |u: &mut UserObj| u.text(Attr::DeploymentLocator.name())
    );
    crate::doc_get!(
        engine,
        "user_policies",
        "msRTCSIP-UserPolicies as a map of name to value (Lync's policy type and tag; empty when absent). Read-only.",
        |u: &mut UserObj| {
            u.now()
                .user_policies()
                .into_iter()
                .map(|(k, v)| (k.into(), Dynamic::from(v)))
                .collect::<Map>()
        }
    );
    crate::doc_get!(
        engine,
        "target_home_server",
        "msRTCSIP-TargetHomeServer: the destination pool's LC Services DN while a move is in progress, or (). Read-only.",
        |u: &mut UserObj| u.text(Attr::TargetHomeServer.name())
    );
    crate::doc_get!(
        engine,
        "sip",
        "msRTCSIP-PrimaryUserAddress, or () when the user has none.",
        |u: &mut UserObj| { u.text(Attr::PrimaryUserAddress.name()) }
    );
    crate::doc_get!(
        engine,
        "home_server",
        "msRTCSIP-PrimaryHomeServer (a DN), or ().",
        |u: &mut UserObj| { u.text(Attr::PrimaryHomeServer.name()) }
    );
    crate::doc_get!(
        engine,
        "enabled",
        "msRTCSIP-UserEnabled: true, false (temporarily disabled), or () when never enabled.",
        |u: &mut UserObj| { u.now().enabled().map_or(Dynamic::UNIT, Dynamic::from) }
    );
    crate::doc_get!(
        engine,
        "federation",
        "msRTCSIP-FederationEnabled (false when absent).",
        |u: &mut UserObj| u.now().federation()
    );
    crate::doc_get!(
        engine,
        "remote_access",
        "msRTCSIP-InternetAccessEnabled (false when absent).",
        |u: &mut UserObj| u.now().remote_access()
    );
    crate::doc_get!(
        engine,
        "flags",
        "msRTCSIP-OptionFlags as Flags (0 when absent); `u.flags.public_im = true` writes back.",
        |u: &mut UserObj| { u.now().flags().unwrap_or_default() }
    );
    crate::doc_get!(
        engine,
        "home_pool",
        "The home pool's name, or what is wrong with the home server (`pool00 (no such pool)`, `x.example.com (FQDN, not a DN)`); () when absent.",
        |u: &mut UserObj| {
            let now = u.now();
            let ws = u.host.ws.borrow();
            now.home_server().map_or(Dynamic::UNIT, |h| {
                Dynamic::from(crate::ocs::pool::describe_home_server(h, ws.pools()))
            })
        }
    );
    crate::doc_get!(
        engine,
        "pool",
        "The home pool when the home server is a pool's LC Services object, else ().",
        |u: &mut UserObj| {
            let now = u.now();
            let ws = u.host.ws.borrow();
            now.pool(ws.pools()).map_or(Dynamic::UNIT, |p| {
                Dynamic::from(PoolObj {
                    pool: p.clone(),
                    host: u.host.clone(),
                })
            })
        }
    );
    crate::doc_set!(
        engine,
        "flags",
        "Writes new flags: bits are OR-ed in; dropping a bit not cleared by name, or 256, is refused.",
        |u: &mut UserObj, f: Flags| { u.with_ws(|ws, r| ws.set_flags(r, f)) }
    );
    crate::doc_set!(
        engine,
        "sip",
        "Changes the SIP address (validated, unique in the forest; the sip: proxy address follows).",
        |u: &mut UserObj, s: ImmutableString| { u.with_ws(|ws, r| ws.set_sip(r, &s)) }
    );
    crate::doc_set!(
        engine,
        "federation",
        "Sets msRTCSIP-FederationEnabled.",
        |u: &mut UserObj, b: bool| {
            u.with_ws(|ws, r| ws.set_bool(r, Attr::FederationEnabled, b))
        }
    );
    crate::doc_set!(
        engine,
        "line",
        "Sets msRTCSIP-Line: tel:+ and 1 to 15 digits, optionally ;ext= and digits, or a sip: URI; () clears it.",
        |u: &mut UserObj, line: Dynamic| {
            if line.is_unit() {
                return u.with_ws(|ws, r| ws.set_line(r, None));
            }
            let text = line
                .into_immutable_string()
                .map_err(|t| refuse(format!("u.line takes a string or (), not a {t}")))?;
            u.with_ws(|ws, r| ws.set_line(r, Some(&text)))
        }
    );
    crate::doc_set!(
        engine,
        "archiving",
        "Sets msRTCSIP-ArchivingEnabled: 0, 4 (internal), 8 (federated) or 12 (both); the retired bits 1 and 2 are refused.",
        |u: &mut UserObj, v: i64| { u.with_ws(|ws, r| ws.set_archiving(r, v)) }
    );
    crate::doc_set!(
        engine,
        "remote_access",
        "Sets msRTCSIP-InternetAccessEnabled.",
        |u: &mut UserObj, b: bool| {
            u.with_ws(|ws, r| ws.set_bool(r, Attr::InternetAccessEnabled, b))
        }
    );

    crate::doc_fn!(
        engine,
        "enable",
        "Enables the user with this SIP address on this pool (a Pool or a pool name): the four attributes, 256 OR-ed into the flags, the sip: proxy address.",
        |u: &mut UserObj, sip: ImmutableString, pool: Dynamic| -> Res<()> {
            let p = pool_arg(&u.host, &pool)?;
            u.with_ws(|ws, r| ws.enable(r, Some(&sip), &p.pool))
        },
    );
    crate::doc_fn!(
        engine,
        "enable",
        "Enables the user on this pool with the SIP address derived from mail.",
        |u: &mut UserObj, pool: Dynamic| -> Res<()> {
            let p = pool_arg(&u.host, &pool)?;
            u.with_ws(|ws, r| ws.enable(r, None, &p.pool))
        }
    );
    crate::doc_fn!(
        engine,
        "disable",
        "Temporarily disables the user: msRTCSIP-UserEnabled FALSE, every other setting kept.",
        |u: &mut UserObj| { u.with_ws(|ws, r| ws.disable(r)) }
    );
    crate::doc_fn!(
        engine,
        "remove",
        "Removes OCS from the user: every msRTCSIP-* attribute and the sip: proxy address.",
        |u: &mut UserObj| u.with_ws(|ws, r| ws.remove(r))
    );
    crate::doc_fn!(
        engine,
        "move_to",
        "Moves an enabled user to another pool (a Pool or a pool name).",
        |u: &mut UserObj, pool: Dynamic| -> Res<()> {
            let p = pool_arg(&u.host, &pool)?;
            u.with_ws(|ws, r| ws.move_to(r, &p.pool))
        }
    );
    crate::doc_fn!(
        engine,
        "attr",
        "Any attribute's value as read (with staged changes): a string, an array for several values, () when absent.",
        |u: &mut UserObj, name: ImmutableString| -> Dynamic {
            let now = u.now();
            match now.get(&name) {
                [] => Dynamic::UNIT,
                [one] => Dynamic::from(one.clone()),
                many => Dynamic::from_array(many.iter().cloned().map(Dynamic::from).collect()),
            }
        },
    );
    crate::doc_fn!(
        engine,
        "set_attr",
        "Writes a raw msRTCSIP-* attribute; the value is checked by the same rule as the named operations.",
        |u: &mut UserObj, name: ImmutableString, value: Dynamic| -> Res<()> {
            let values = value_strings(&name, value)?;
            u.with_ws(|ws, r| ws.set_raw(r, &name, values))
        },
    );
    crate::doc_fn!(
        engine,
        "derive_sip",
        "A SIP address derived by \"mail\" or \"upn\" (nothing is staged).",
        |u: &mut UserObj, how: ImmutableString| -> Res<String> {
            let d = derivation(&how, None)?;
            u.with_ws(|ws, r| ws.derive_sip(r, &d))
                .map(|s| s.to_string())
        },
    );
    crate::doc_fn!(
        engine,
        "derive_sip",
        "A SIP address derived by \"first_last\" or \"sam\" in this SIP domain (nothing is staged).",
        |u: &mut UserObj, how: ImmutableString, domain: ImmutableString| -> Res<String> {
            let d = derivation(&how, Some(&domain))?;
            u.with_ws(|ws, r| ws.derive_sip(r, &d))
                .map(|s| s.to_string())
        },
    );
    crate::doc_fn!(
        engine,
        "problems",
        "What is wrong with an enabled user: missing SIP or home server, a home server that is no pool, flags without 256.",
        |u: &mut UserObj| -> Array {
            let now = u.now();
            let ws = u.host.ws.borrow();
            now.problems(&ws.context())
                .iter()
                .map(|p| Dynamic::from(p.to_string()))
                .collect()
        }
    );
    crate::doc_fn!(
        engine,
        "to_map",
        "The OCS attributes as a map.",
        |u: &mut UserObj| -> Map { user_map(&u.now()) }
    );
    engine.register_fn("to_string", |u: &mut UserObj| {
        format!("{} ({})", u.now().label(), u.read.dn)
    });
    engine.register_fn("to_debug", |u: &mut UserObj| format!("User({})", u.read.dn));
    engine.register_fn("==", |a: &mut UserObj, b: UserObj| {
        crate::ocs::dn::same_dn(&a.read.dn, &b.read.dn)
    });
    engine.register_fn("!=", |a: &mut UserObj, b: UserObj| {
        !crate::ocs::dn::same_dn(&a.read.dn, &b.read.dn)
    });

    engine.register_type_with_name::<UserQuery>("UserQuery");
    engine.register_iterator_result::<UserQuery, UserObj>();
    crate::doc_fn!(
        engine,
        "to_array",
        "The users of the query as an array (at most 50,000: iterate larger sets with for).",
        |q: &mut UserQuery| -> Res<Array> {
            q.clone()
                .into_iter()
                .map(|r| r.map(Dynamic::from))
                .collect()
        }
    );
    crate::doc_fn!(
        engine,
        "count",
        "Counts the users of the query (reads every page).",
        |q: &mut UserQuery| -> Res<i64> {
            let mut n = 0i64;
            for r in q.clone() {
                r?;
                n += 1;
            }
            Ok(n)
        }
    );
    engine.register_fn("to_string", |q: &mut UserQuery| q.what.clone());
    engine.register_fn("to_debug", |q: &mut UserQuery| q.what.clone());
}

/// The OCS attributes of a user as a map (for `to_map` and records).
pub fn user_map(u: &OcsUser) -> Map {
    let mut m = Map::new();
    let opt = |v: Option<&str>| v.map_or(Dynamic::UNIT, |s| Dynamic::from(s.to_string()));
    m.insert("dn".into(), Dynamic::from(u.dn.clone()));
    m.insert("sam".into(), opt(u.sam()));
    m.insert("sip".into(), opt(u.sip()));
    m.insert(
        "enabled".into(),
        u.enabled().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert("home_server".into(), opt(u.home_server()));
    m.insert(
        "flags".into(),
        u.flags()
            .map_or(Dynamic::UNIT, |f| Dynamic::from(f.to_string())),
    );
    m.insert("federation".into(), Dynamic::from(u.federation()));
    m.insert("remote_access".into(), Dynamic::from(u.remote_access()));
    m
}
