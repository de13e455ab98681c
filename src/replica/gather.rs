//! The directory half of a cycle: everything a cycle reads, read before the replica is
//! written, so that the write transaction lasts as long as the SQLite work and not as
//! long as the directory's answers.
//!
//! - **Initial**: every user, in full.
//! - **Incremental**: first the change feed ([`Directory::change_feed`]: tombstones on
//!   AD, an RFC 4533 refresh on OpenLDAP), which names what was deleted or left the
//!   scope since the cookie; then, in full, the entries whose marker is at or above the
//!   cookie. The feed comes first: an entry that changes between the two reads is in the
//!   second, so a feed identity the second read does not return is really gone from the
//!   scope. Where the backend has no feed, every user is listed cheaply (DN and
//!   objectGUID/entryUUID only) instead, and entries of the listing that the replica lacks
//!   although their marker is below the cookie are read one by one.

use std::collections::HashSet;
use std::time::Duration;

use rusqlite::Connection;

use super::cycle::{
    CycleInput, CycleKind, IDENTITY_ATTRS, PAGE, USER_ATTRS, identity, row_from_entry,
};
use super::{ReplicaError, ReplicaUser};
use crate::directory::{
    ChangeFeed, ChangeTracking, DirError, Directory, Entry, FeedQuery, Scope, SearchRequest,
};
use crate::ocs::dn::normalize;

/// One listed user: DN, normalized DN, identity.
pub(crate) type Listed = (String, String, Option<String>);

/// How the apply step finds the rows that are gone.
pub(crate) enum Gone {
    /// Initial cycle: every row no entry came back for.
    Unseen,
    /// The listing of every user: rows whose identity (or, without one, DN) is not in it;
    /// rows whose identity is listed under another DN move there.
    Listing(Vec<Listed>),
    /// Identities changed, moved or deleted since the cookie: such a row that the
    /// marker read did not return.
    Since(HashSet<String>),
    /// Identities of every entry present and unchanged: a row with an identity that is
    /// not here and that the marker read did not return.
    Present(HashSet<String>),
}

/// What a cycle read from the directory.
pub(crate) struct Gathered {
    /// The users read in full, as rows with their normalized DN.
    pub rows: Vec<(ReplicaUser, String)>,
    /// Entries skipped, with why.
    pub errors: Vec<String>,
    /// How to find the rows that are gone.
    pub gone: Gone,
    /// How deletions were found (for the cycle's row and `status`).
    pub deletions: String,
    /// Entries (and other messages) the directory sent, every search counted.
    pub entries_read: usize,
    /// The highest marker read.
    pub max_marker: Option<String>,
}

/// What [`gather`] needs besides the directory.
pub(crate) struct GatherInput<'a> {
    pub input: &'a CycleInput<'a>,
    pub kind: CycleKind,
    pub tracking: Option<ChangeTracking>,
    /// The cookie's mark (incremental cycles).
    pub mark: Option<String>,
    /// The mark moved back by the cookie's overlap (what the marker read starts from).
    pub since: Option<String>,
    pub op_timeout: Duration,
}

pub(crate) async fn timed<T>(
    op_timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, DirError>>,
) -> Result<T, ReplicaError> {
    match tokio::time::timeout(op_timeout, fut).await {
        Ok(r) => r.map_err(ReplicaError::from),
        Err(_) => Err(ReplicaError::Timeout(op_timeout.as_secs())),
    }
}

/// Reads every page of `req`, handing each entry to `each`; returns how many came.
async fn for_each_entry(
    dir: &dyn Directory,
    req: &SearchRequest,
    op_timeout: Duration,
    mut each: impl FnMut(&Entry),
) -> Result<usize, ReplicaError> {
    let mut cursor = None;
    let mut n = 0;
    loop {
        let page = timed(op_timeout, dir.search_page(req, cursor)).await?;
        n += page.entries.len();
        for e in &page.entries {
            each(e);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(n),
        }
    }
}

impl Gathered {
    fn take(&mut self, e: &Entry, tracking: Option<ChangeTracking>) {
        match row_from_entry(e, tracking) {
            Ok((row, key)) => {
                if let (Some(t), Some(m)) = (tracking, &row.change_marker) {
                    if self
                        .max_marker
                        .as_deref()
                        .is_none_or(|max| t.compare(m, max).is_gt())
                    {
                        self.max_marker = Some(m.clone());
                    }
                }
                self.rows.push((row, key));
            }
            Err(message) => self.errors.push(message),
        }
    }
}

/// Reads what the cycle needs (see the module documentation). `conn` is only read (the
/// rows the replica has, for a listing).
pub(crate) async fn gather(
    dir: &dyn Directory,
    conn: &Connection,
    g: &GatherInput<'_>,
) -> Result<Gathered, ReplicaError> {
    let users = &g.input.users;
    let mut attrs: Vec<String> = USER_ATTRS.iter().map(|s| s.to_string()).collect();
    attrs.extend(IDENTITY_ATTRS.iter().map(|s| s.to_string()));
    if let Some(t) = g.tracking {
        attrs.push(t.marker_attr().to_string());
    }
    let full = |base: String, scope: Scope, filter: String| SearchRequest {
        base,
        scope,
        filter,
        attrs: attrs.clone(),
        page_size: PAGE,
    };
    let mut out = Gathered {
        rows: Vec::new(),
        errors: Vec::new(),
        gone: Gone::Unseen,
        deletions: String::new(),
        entries_read: 0,
        max_marker: None,
    };
    let tracking = g.tracking;
    let (CycleKind::Incremental, Some(t), Some(mark), Some(since)) =
        (g.kind, tracking, &g.mark, &g.since)
    else {
        let req = full(users.base.clone(), users.scope, users.filter.clone());
        let n = for_each_entry(dir, &req, g.op_timeout, |e| out.take(e, tracking)).await?;
        out.entries_read += n;
        out.deletions = "initial cycle: every user read".into();
        return Ok(out);
    };

    // The feed first (see the module documentation for why the order matters).
    let query = FeedQuery {
        base: users.base.clone(),
        tracking: t,
        mark: mark.clone(),
    };
    let feed = timed(g.op_timeout, dir.change_feed(&query)).await?;
    let listing = match feed {
        ChangeFeed::Since {
            method,
            identities,
            entries,
        } => {
            out.entries_read += entries;
            out.deletions = method;
            out.gone = Gone::Since(identities);
            None
        }
        ChangeFeed::Present {
            method,
            identities,
            entries,
        } => {
            out.entries_read += entries;
            out.deletions = method;
            out.gone = Gone::Present(identities);
            None
        }
        ChangeFeed::Unavailable(why) => {
            out.deletions = format!("listing every user: {why}");
            let req = SearchRequest {
                base: users.base.clone(),
                scope: users.scope,
                filter: users.filter.clone(),
                attrs: IDENTITY_ATTRS.iter().map(|s| s.to_string()).collect(),
                page_size: PAGE,
            };
            let mut listed: Vec<Listed> = Vec::new();
            let mut errors = Vec::new();
            out.entries_read +=
                for_each_entry(dir, &req, g.op_timeout, |e| match normalize(&e.dn) {
                    Ok(key) => listed.push((e.dn.clone(), key, identity(e))),
                    Err(err) => errors.push(format!("{}: skipped: {err}", e.dn)),
                })
                .await?;
            out.errors.extend(errors);
            Some(listed)
        }
    };

    let changed = full(
        users.base.clone(),
        users.scope,
        format!("(&{}{})", users.filter, t.since_filter(since)),
    );
    let n = for_each_entry(dir, &changed, g.op_timeout, |e| out.take(e, tracking)).await?;
    out.entries_read += n;

    if let Some(listed) = listing {
        // Listed entries neither the replica nor this read has: their marker is below
        // the cookie (added to an LDIF file by hand, restored): read each on its own.
        let mut stmt = conn.prepare("SELECT dn_key, guid FROM users")?;
        let mut known_keys: HashSet<String> = HashSet::new();
        let mut known_guids: HashSet<String> = HashSet::new();
        for row in stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })? {
            let (k, g) = row?;
            known_keys.insert(k);
            known_guids.extend(g);
        }
        drop(stmt);
        for (row, key) in &out.rows {
            known_keys.insert(key.clone());
            known_guids.extend(row.guid.clone());
        }
        let missing: Vec<String> = listed
            .iter()
            .filter(|(_, key, guid)| {
                !known_keys.contains(key) && guid.as_ref().is_none_or(|g| !known_guids.contains(g))
            })
            .map(|(dn, ..)| dn.clone())
            .collect();
        for dn in missing {
            let one = full(dn, Scope::Base, users.filter.clone());
            let read = for_each_entry(dir, &one, g.op_timeout, |e| out.take(e, tracking)).await;
            match read {
                Ok(n) => out.entries_read += n,
                // Deleted since the listing: the next cycle's listing will not have it.
                Err(ReplicaError::Directory(DirError::NoSuchObject(_))) => {}
                Err(e) => return Err(e),
            }
        }
        out.gone = Gone::Listing(listed);
    }
    Ok(out)
}
