//! How the REPL shows values: a user as a short card, a pool with its user count, flags
//! with their names, arrays of users as a table.

use comfy_table::{Table, presets};
use rhai::{Array, Dynamic};

use crate::ocs::Flags;
use crate::plan::terminal::printable;
use crate::script::api_pool::PoolObj;
use crate::script::api_user::{UserObj, UserQuery};
use crate::script::values::to_text;

/// At most this many rows of a query are shown.
const QUERY_ROWS: usize = 50;

fn card(u: &UserObj) -> String {
    let now = u.host.ws.borrow().view(&u.read);
    let ws = u.host.ws.borrow();
    let home = now
        .home_server()
        .map(|h| crate::ocs::pool::describe_home_server(h, ws.pools()));
    let enabled = match now.enabled() {
        Some(true) => "true",
        Some(false) => "false (temporarily disabled)",
        None => "never enabled",
    };
    let row = |k: &str, v: Option<String>| {
        format!(
            "  {k:<14}{}\n",
            v.map_or_else(|| "-".into(), |v| printable(&v).into_owned())
        )
    };
    let mut out = format!("{}  {}\n", printable(now.label()), printable(&now.dn));
    out.push_str(&row("enabled", Some(enabled.into())));
    out.push_str(&row("sip", now.sip().map(str::to_string)));
    out.push_str(&row("home pool", home));
    out.push_str(&row("flags", now.flags().map(|f| f.to_string())));
    out.push_str(&row("federation", Some(now.federation().to_string())));
    out.push_str(&row("remote access", Some(now.remote_access().to_string())));
    // The Lync-era attributes only when the user has them: an OCS 2007 user's card
    // stays as short as it was.
    let mut lync = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push_str(&row(k, Some(v)));
        }
    };
    lync("line", now.line().map(str::to_string));
    lync(
        "archiving",
        match now.archiving() {
            Some(0) => None,
            Some(v) => Some(archiving_text(v)),
            None => now
                .first(crate::ocs::Attr::ArchivingEnabled.name())
                .map(|v| format!("{v} (not a number)")),
        },
    );
    lync("deployment", now.deployment_locator().map(str::to_string));
    let policies = now.user_policies();
    lync(
        "policies",
        (!policies.is_empty()).then(|| {
            policies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }),
    );
    lync(
        "moving to",
        now.target_home_server()
            .map(|h| crate::ocs::pool::describe_home_server(h, ws.pools())),
    );
    for p in now.problems(&ws.context()) {
        out.push_str(&format!("  problem       {}\n", printable(&p.to_string())));
    }
    out.trim_end().to_string()
}

/// `12 (internal, federated)`.
fn archiving_text(v: i64) -> String {
    let parts: Vec<&str> = [(4, "internal"), (8, "federated")]
        .iter()
        .filter(|(bit, _)| v & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    format!("{v} ({})", parts.join(", "))
}

fn users_table<'a>(users: impl Iterator<Item = &'a UserObj>) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    super::output::fit(&mut t, super::output::output_width());
    t.set_header(["user", "enabled", "sip", "home pool", "flags"]);
    for u in users {
        let now = u.host.ws.borrow().view(&u.read);
        let ws = u.host.ws.borrow();
        let cells = [
            now.label().to_string(),
            now.enabled().map_or_else(|| "-".into(), |b| b.to_string()),
            now.sip().unwrap_or("-").to_string(),
            now.home_server().map_or_else(
                || "-".into(),
                |h| crate::ocs::pool::describe_home_server(h, ws.pools()),
            ),
            now.flags().map_or_else(|| "-".into(), |f| f.to_string()),
        ];
        super::output::add_row(&mut t, cells.to_vec());
    }
    t
}

/// The text the REPL prints for a result; `None` for `()`.
pub fn show(value: &Dynamic) -> Option<String> {
    if value.is_unit() {
        return None;
    }
    if let Some(u) = value.read_lock::<UserObj>() {
        return Some(card(&u));
    }
    if let Some(p) = value.read_lock::<PoolObj>() {
        let count = UserQuery::new(
            p.host.clone(),
            None,
            &format!(
                "(msRTCSIP-PrimaryHomeServer={})",
                crate::directory::filter::escape_value(&p.pool.home_server_dn())
            ),
        )
        .ok()
        .map(|q| q.into_iter().filter(Result::is_ok).count());
        return Some(format!(
            "{}  {}  ({} users)",
            printable(&p.pool.name),
            printable(p.pool.fqdn.as_deref().unwrap_or("-")),
            count.map_or_else(|| "?".into(), |c| c.to_string())
        ));
    }
    if let Some(f) = value.read_lock::<Flags>() {
        return Some(f.to_string());
    }
    if let Some(q) = value.read_lock::<UserQuery>() {
        let mut users = Vec::new();
        let mut more = 0usize;
        for u in q.clone() {
            match u {
                Ok(u) if users.len() < QUERY_ROWS => users.push(u),
                Ok(_) => more += 1,
                Err(e) => return Some(format!("error: {e}")),
            }
        }
        let mut out = users_table(users.iter()).to_string();
        if more > 0 {
            out.push_str(&format!(
                "\n… and {more} more (iterate with for, or .count())"
            ));
        }
        return Some(out);
    }
    if value.is_array() {
        let arr = value.clone().cast::<Array>();
        let users: Vec<UserObj> = arr
            .iter()
            .filter_map(|v| v.clone().try_cast::<UserObj>())
            .collect();
        if !arr.is_empty() && users.len() == arr.len() {
            return Some(users_table(users.iter()).to_string());
        }
        return Some(format!(
            "[{}]",
            arr.iter().map(show_inline).collect::<Vec<_>>().join(", ")
        ));
    }
    if value.is_string() {
        return Some(format!("{:?}", value.to_string()));
    }
    if value.is_map() {
        let m = value.clone().cast::<rhai::Map>();
        let body = m
            .iter()
            .map(|(k, v)| format!("{k}: {}", show_inline(v)))
            .collect::<Vec<_>>()
            .join(", ");
        return Some(format!("#{{{body}}}"));
    }
    Some(to_text(value))
}

fn show_inline(v: &Dynamic) -> String {
    if v.is_string() {
        format!("{:?}", v.to_string())
    } else if v.is_unit() {
        "()".into()
    } else {
        to_text(v)
    }
}
