//! One replicator cycle, in two halves.
//!
//! 1. Ask the directory where its change sequence stands ([`Directory::change_state`]),
//!    before reading anything, so that a change made while the cycle reads is at or
//!    above that mark and comes back next time.
//! 2. Without a write lock: read `RegenerateCookiesNow` and the cookie, and decide the
//!    kind. **Initial** when the flag is set, on the first cycle, when the directory
//!    cannot track changes, when the cookie belongs to another change sequence (another
//!    DC, a restored DC, another server or file), or when the sequence went back below
//!    the cookie. **Incremental** otherwise.
//! 3. Read the directory (`gather.rs`): everything on an initial cycle; on an
//!    incremental one the change feed (deletions and scope exits: tombstones on AD, an
//!    RFC 4533 refresh on OpenLDAP; a cheap listing of every user where the backend has
//!    neither) and the entries whose marker is at or above the cookie
//!    (`(uSNChanged>=N)`, `(entryCSN>=csn)`).
//! 4. One short SQLite transaction: take the flag (if it was what made the cycle
//!    initial), compare each entry read with its row (insert, update, or only note the new
//!    marker: a row is *changed* only when its OCS view changed or it moved), delete the
//!    rows that are gone, store the new cookie (the mark of step 1; for OpenLDAP without
//!    a `contextCSN`, the highest `entryCSN` seen, and the next cycle reads back an overlap
//!    of this cycle's duration plus a minute to cover entries committed while it read),
//!    the pools and SIP domains, the problems of every user, and the cycle's row; commit.
//!
//! Any failure leaves the replica as it was (the transaction is rolled back, or was never
//! begun), the flag still set; the failed cycle is recorded in a transaction of its own.
//! Readers (`status`, `problems`, scripts) never wait: WAL lets them read during the
//! write, and the write no longer spans the directory's answers.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use super::gather::{GatherInput, Gathered, Gone, gather, timed};
use super::{ReplicaError, ReplicaUser, now_text, read_settings};
use crate::directory::changes::guid_text;
use crate::directory::{ChangeState, ChangeTracking, Directory, Entry, SearchRequest};
use crate::ocs::dn::normalize;
use crate::ocs::replicator::{ProblemKind, duplicate_sips};
use crate::ocs::{Context, OcsUser, Pool, PoolLayout};

/// The attributes a cycle reads of each user (besides the marker and the identity).
pub(crate) const USER_ATTRS: &[&str] = &[
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "displayName",
    "msRTCSIP-UserEnabled",
    "msRTCSIP-PrimaryUserAddress",
    "msRTCSIP-PrimaryHomeServer",
    "msRTCSIP-OptionFlags",
    "msRTCSIP-FederationEnabled",
    "msRTCSIP-InternetAccessEnabled",
];

/// The identity attributes: AD's objectGUID, OpenLDAP's entryUUID. Servers ignore the
/// one they do not have.
pub(crate) const IDENTITY_ATTRS: &[&str] = &["objectGUID", "entryUUID"];

/// Entries per page of a cycle's searches.
pub(crate) const PAGE: usize = 1000;

/// How many cycles the last-known rows of deleted users are kept for policy scripts.
const DEPARTED_CYCLES: i64 = 10_000;

/// Seconds added to a CSN cycle's duration for the overlap of the next one.
const CSN_SLACK: u64 = 60;

/// The columns of [`user_from_row`], in order.
pub(crate) const USER_COLUMNS: &str = "dn, guid, sam, upn, mail, display_name, enabled, sip, home_server, flags, federation, remote_access, change_marker, changed_in";

/// Reads a [`ReplicaUser`] from a row selected with [`USER_COLUMNS`].
pub(crate) fn user_from_row(r: &Row<'_>) -> rusqlite::Result<ReplicaUser> {
    user_from_row_at(r, 0)
}

/// The same, with [`USER_COLUMNS`] starting at column `at`.
fn user_from_row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<ReplicaUser> {
    Ok(ReplicaUser {
        dn: r.get(at)?,
        guid: r.get(at + 1)?,
        sam: r.get(at + 2)?,
        upn: r.get(at + 3)?,
        mail: r.get(at + 4)?,
        display_name: r.get(at + 5)?,
        enabled: r.get(at + 6)?,
        sip: r.get(at + 7)?,
        home_server: r.get(at + 8)?,
        flags: r.get(at + 9)?,
        federation: r.get(at + 10)?,
        remote_access: r.get(at + 11)?,
        change_marker: r.get(at + 12)?,
        changed_in: r.get(at + 13)?,
    })
}

/// What a cycle needs besides the directory: its name, the user search, and the
/// deployment the rules check against (the workspace found them).
#[derive(Debug, Clone)]
pub struct CycleInput<'a> {
    /// The directory as it describes itself (recorded in the replica).
    pub directory: String,
    /// The search that finds users (base, scope, filter); its attribute list is ignored.
    pub users: SearchRequest,
    /// The pools.
    pub pools: &'a [Pool],
    /// The SIP domains the forest serves.
    pub sip_domains: &'a [String],
}

/// Initial or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleKind {
    /// Everything read and compared; rows not found deleted.
    Initial,
    /// Only entries changed since the cookie read; deletions from the change feed, or a
    /// listing where the directory has none.
    Incremental,
}

impl CycleKind {
    /// `initial` or `incremental`.
    pub fn name(self) -> &'static str {
        match self {
            CycleKind::Initial => "initial",
            CycleKind::Incremental => "incremental",
        }
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    /// The cycle's number in the replica.
    pub cycle: i64,
    /// Initial or incremental.
    pub kind: CycleKind,
    /// Why.
    pub reason: String,
    /// Start (RFC 3339, UTC).
    pub started_at: String,
    /// End.
    pub ended_at: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Rows added.
    pub added: usize,
    /// Rows whose OCS view changed, or that moved.
    pub changed: usize,
    /// Rows deleted.
    pub deleted: usize,
    /// Entries read in full.
    pub seen: usize,
    /// Entries (and other messages) the directory sent in all the cycle's searches: the
    /// listing, the change feed, the entries read in full.
    pub entries_read: usize,
    /// How deletions were found: the change feed's method, or why every user was listed.
    pub deletions: String,
    /// Rows in the replica after the cycle.
    pub users: usize,
    /// Problems found.
    pub problems: usize,
    /// Entries skipped, with why.
    pub errors: Vec<String>,
    /// The change tracking used (`usn`, `entry_csn`, `counter`), if any.
    pub tracking: Option<String>,
    /// The cookie stored for the next cycle.
    pub cookie: Option<String>,
}

#[derive(Debug, Default)]
struct Counts {
    added: usize,
    changed: usize,
    deleted: usize,
    seen: usize,
    errors: Vec<String>,
}

struct StoredCookie {
    tracking: String,
    source: String,
    high_water: String,
    overlap_secs: u64,
}

/// Runs one cycle on `conn`; see the module documentation.
pub(crate) async fn run(
    conn: &mut Connection,
    path: &Path,
    dir: &dyn Directory,
    input: &CycleInput<'_>,
    op_timeout: Duration,
) -> Result<CycleReport, ReplicaError> {
    let started = now_text();
    let clock = Instant::now();
    let mut decided = (CycleKind::Incremental, String::new());
    match run_cycle(
        conn,
        path,
        dir,
        input,
        op_timeout,
        &started,
        clock,
        &mut decided,
    )
    .await
    {
        Ok(report) => Ok(report),
        Err(e) => {
            // Nothing of the cycle was kept; record the failure on its own.
            let errors = serde_json::to_string(&[e.to_string()]).unwrap_or_default();
            let _ = conn.execute(
                "INSERT INTO cycles (started_at, ended_at, kind, reason, status, errors) VALUES (?1, ?2, ?3, ?4, 'failed', ?5)",
                params![started, now_text(), decided.0.name(), decided.1, errors],
            );
            Err(e)
        }
    }
}

fn read_cookie(conn: &Connection, nc: &str) -> rusqlite::Result<Option<StoredCookie>> {
    conn.query_row(
        "SELECT tracking, source, high_water, overlap_secs FROM cookies WHERE naming_context = ?1",
        [nc],
        |r| {
            Ok(StoredCookie {
                tracking: r.get(0)?,
                source: r.get(1)?,
                high_water: r.get(2)?,
                overlap_secs: r.get::<_, i64>(3)?.max(0).unsigned_abs(),
            })
        },
    )
    .optional()
}

fn decide(
    regenerate: bool,
    cookie: Option<&StoredCookie>,
    state: Option<&ChangeState>,
) -> (CycleKind, String) {
    let initial = |why: String| (CycleKind::Initial, why);
    if regenerate {
        return initial("RegenerateCookiesNow was set".into());
    }
    let Some(state) = state else {
        return initial(
            "the directory cannot tell what changed, so every cycle reads everything".into(),
        );
    };
    let Some(cookie) = cookie else {
        return initial("first cycle (no cookie yet)".into());
    };
    if cookie.tracking != state.tracking.name() || cookie.source != state.source {
        return initial(format!(
            "the cookie belongs to another change sequence ({} {}; the directory is now {} {}): another or a restored server",
            cookie.tracking,
            cookie.source,
            state.tracking.name(),
            state.source
        ));
    }
    if let Some(h) = &state.high_water {
        if state.tracking.compare(h, &cookie.high_water) == std::cmp::Ordering::Less {
            return initial(format!(
                "the directory's change sequence went back from {} to {h} (restored or rewritten)",
                cookie.high_water
            ));
        }
    }
    (
        CycleKind::Incremental,
        format!(
            "changes since {} {}",
            state.tracking.marker_attr(),
            cookie.high_water
        ),
    )
}

/// The identity of an entry: objectGUID as AD writes it, or entryUUID.
pub(crate) fn identity(e: &Entry) -> Option<String> {
    if let Some(bytes) = e.get_binary("objectGUID").first() {
        return Some(guid_text(bytes));
    }
    if let Some(text) = e.first("objectGUID") {
        // A GUID whose 16 bytes happen to be UTF-8 arrives as text.
        return Some(if text.len() == 16 {
            guid_text(text.as_bytes())
        } else {
            text.to_string()
        });
    }
    e.first("entryUUID").map(|u| u.trim().to_ascii_lowercase())
}

/// The replica's view of an entry, with its normalized DN.
pub(crate) fn row_from_entry(
    e: &Entry,
    tracking: Option<ChangeTracking>,
) -> Result<(ReplicaUser, String), String> {
    let key = normalize(&e.dn).map_err(|err| format!("{}: skipped: {err}", e.dn))?;
    let u = OcsUser::from_pairs(
        &e.dn,
        e.attributes()
            .iter()
            .map(|a| (a.name.as_str(), a.values.as_slice())),
    );
    let text = |a: &str| u.first(a).map(str::to_string);
    Ok((
        ReplicaUser {
            dn: e.dn.clone(),
            guid: identity(e),
            sam: text("sAMAccountName"),
            upn: text("userPrincipalName"),
            mail: text("mail"),
            display_name: text("displayName"),
            enabled: u.enabled(),
            sip: u.sip().map(str::to_string),
            home_server: u.home_server().map(str::to_string),
            flags: u.flags().map(|f| i64::from(f.value())),
            federation: u.federation(),
            remote_access: u.remote_access(),
            change_marker: tracking.and_then(|t| e.first(t.marker_attr()).map(str::to_string)),
            changed_in: None,
        },
        key,
    ))
}

/// A user's columns as named SQL parameters, for both the insert and the update.
// `&String`, not `&str`: an unsized `str` cannot become a `&dyn ToSql`.
#[allow(clippy::ptr_arg)]
fn user_row<'a>(
    u: &'a ReplicaUser,
    key: &'a String,
    cycle: &'a i64,
) -> Vec<(&'static str, &'a dyn rusqlite::ToSql)> {
    vec![
        (":dn", &u.dn),
        (":dn_key", key),
        (":guid", &u.guid),
        (":sam", &u.sam),
        (":upn", &u.upn),
        (":mail", &u.mail),
        (":display_name", &u.display_name),
        (":enabled", &u.enabled),
        (":sip", &u.sip),
        (":home_server", &u.home_server),
        (":flags", &u.flags),
        (":federation", &u.federation),
        (":remote_access", &u.remote_access),
        (":change_marker", &u.change_marker),
        (":changed_in", cycle),
    ]
}

/// True when the OCS view differs (the marker and the cycle do not count).
fn content_differs(a: &ReplicaUser, b: &ReplicaUser) -> bool {
    let strip = |u: &ReplicaUser| ReplicaUser {
        change_marker: None,
        changed_in: None,
        ..u.clone()
    };
    strip(a) != strip(b)
}

fn select_user(
    tx: &Transaction<'_>,
    column: &str,
    value: &str,
) -> rusqlite::Result<Option<(i64, ReplicaUser)>> {
    tx.prepare_cached(&format!(
        "SELECT id, {USER_COLUMNS} FROM users WHERE {column} = ?1"
    ))?
    .query_row([value], |r| Ok((r.get(0)?, user_from_row_at(r, 1)?)))
    .optional()
}

struct Upsert<'t, 'c> {
    tx: &'t Transaction<'c>,
    cycle: i64,
    counts: Counts,
    /// Rows this cycle found an entry for.
    seen_rows: HashSet<i64>,
}

impl Upsert<'_, '_> {
    /// Compares one entry read with its row: insert, update, or only note the marker.
    fn row(&mut self, new: &ReplicaUser, key: &String) -> Result<(), ReplicaError> {
        self.counts.seen += 1;
        let tx = self.tx;
        let by_guid = match &new.guid {
            Some(g) => select_user(tx, "guid", g)?,
            None => None,
        };
        let by_key = select_user(tx, "dn_key", key)?;
        let existing = match (by_guid, by_key) {
            (Some(g), Some(k)) if g.0 != k.0 => {
                // Another object had this DN before; it is gone (this one moved here).
                self.delete(k.0)?;
                Some(g)
            }
            (Some(g), _) => Some(g),
            (None, Some(k)) if k.1.guid.is_some() && new.guid.is_some() => {
                // Same DN, another object: deleted and created again.
                self.delete(k.0)?;
                None
            }
            (None, k) => k,
        };
        match existing {
            Some((id, old)) => {
                if content_differs(&old, new) {
                    let mut row = user_row(new, key, &self.cycle);
                    row.push((":id", &id));
                    tx.prepare_cached(
                        "UPDATE users SET dn = :dn, dn_key = :dn_key, guid = :guid, sam = :sam, upn = :upn, mail = :mail,
                         display_name = :display_name, enabled = :enabled, sip = :sip, home_server = :home_server,
                         flags = :flags, federation = :federation, remote_access = :remote_access,
                         change_marker = :change_marker, changed_in = :changed_in WHERE id = :id",
                    )?
                    .execute(row.as_slice())?;
                    if normalize(&old.dn).is_ok_and(|k| k != *key) {
                        tx.prepare_cached(
                            "UPDATE users SET moved_from = ?2, moved_in = ?3 WHERE id = ?1",
                        )?
                        .execute(params![id, old.dn, self.cycle])?;
                    }
                    self.counts.changed += 1;
                } else if old.change_marker != new.change_marker {
                    tx.prepare_cached("UPDATE users SET change_marker = ?2 WHERE id = ?1")?
                        .execute(params![id, new.change_marker])?;
                }
                self.seen_rows.insert(id);
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO users (dn, dn_key, guid, sam, upn, mail, display_name, enabled, sip, home_server, flags,
                     federation, remote_access, change_marker, changed_in, added_in)
                     VALUES (:dn, :dn_key, :guid, :sam, :upn, :mail, :display_name, :enabled, :sip, :home_server, :flags,
                     :federation, :remote_access, :change_marker, :changed_in, :changed_in)",
                )?
                .execute(user_row(new, key, &self.cycle).as_slice())?;
                self.counts.added += 1;
                self.seen_rows.insert(tx.last_insert_rowid());
            }
        }
        Ok(())
    }

    /// Deletes a row, keeping what the replica last knew of it in `departed` (policy
    /// scripts see it as `changes.deleted`).
    fn delete(&mut self, id: i64) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO departed (cycle, dn, guid, sam, upn, mail, display_name, enabled, sip, home_server, flags,
                 federation, remote_access)
                 SELECT ?2, dn, guid, sam, upn, mail, display_name, enabled, sip, home_server, flags, federation,
                 remote_access FROM users WHERE id = ?1",
            )?
            .execute([id, self.cycle])?;
        self.tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
        self.counts.deleted += 1;
        Ok(())
    }

    /// Deletes the rows that are gone, as `gone` tells.
    fn remove_gone(&mut self, gone: &Gone) -> Result<(), ReplicaError> {
        let mut stmt = self.tx.prepare("SELECT id, dn_key, guid FROM users")?;
        let rows: Vec<(i64, String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        let unseen: Vec<(i64, String, Option<String>)> = rows
            .into_iter()
            .filter(|(id, ..)| !self.seen_rows.contains(id))
            .collect();
        match gone {
            Gone::Unseen => {
                for (id, ..) in unseen {
                    self.delete(id)?;
                }
            }
            Gone::Since(ids) => {
                for (id, _, guid) in unseen {
                    if guid.as_ref().is_some_and(|g| ids.contains(g)) {
                        self.delete(id)?;
                    }
                }
            }
            Gone::Present(ids) => {
                for (id, _, guid) in unseen {
                    if guid.as_ref().is_some_and(|g| !ids.contains(g)) {
                        self.delete(id)?;
                    }
                }
            }
            Gone::Listing(listed) => self.reconcile(unseen, listed)?,
        }
        Ok(())
    }

    /// After an incremental read with a listing: rows whose entry is gone are deleted,
    /// rows whose entry moved (same objectGUID/entryUUID, new DN) follow it.
    fn reconcile(
        &mut self,
        rows: Vec<(i64, String, Option<String>)>,
        listed: &[super::gather::Listed],
    ) -> Result<(), ReplicaError> {
        let by_guid: HashMap<&str, (&str, &str)> = listed
            .iter()
            .filter_map(|(dn, key, g)| g.as_deref().map(|g| (g, (dn.as_str(), key.as_str()))))
            .collect();
        let keys: HashSet<&str> = listed.iter().map(|(_, k, _)| k.as_str()).collect();
        let mut stmt = self.tx.prepare("SELECT dn_key FROM users")?;
        let mut known_keys: HashSet<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        for (id, key, guid) in &rows {
            match guid.as_deref().and_then(|g| by_guid.get(g)) {
                Some((dn, new_key)) => {
                    if key != new_key && !known_keys.contains(*new_key) {
                        self.tx.execute(
                            "UPDATE users SET moved_from = dn, moved_in = ?4, dn = ?2, dn_key = ?3, changed_in = ?4
                             WHERE id = ?1",
                            params![id, dn, new_key, self.cycle],
                        )?;
                        known_keys.insert((*new_key).to_string());
                        self.counts.changed += 1;
                    }
                }
                None if keys.contains(key.as_str()) => {}
                None => {
                    self.delete(*id)?;
                    known_keys.remove(key);
                }
            }
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_cycle(
    conn: &mut Connection,
    path: &Path,
    dir: &dyn Directory,
    input: &CycleInput<'_>,
    op_timeout: Duration,
    started: &str,
    clock: Instant,
    decided: &mut (CycleKind, String),
) -> Result<CycleReport, ReplicaError> {
    // Step 1: the directory's mark, before anything is read.
    let state = timed(op_timeout, dir.change_state()).await?;
    let tracking = state.as_ref().map(|s| s.tracking);

    // Step 2: the flag, the cookie, the kind; read without a write lock.
    let nc = input.users.base.clone();
    let regenerate = read_settings(conn, path)?.regenerate_pending();
    let cookie = read_cookie(conn, &nc)?;
    let (kind, reason) = decide(regenerate, cookie.as_ref(), state.as_ref());
    *decided = (kind, reason.clone());

    // Step 3: the directory.
    let g = GatherInput {
        input,
        kind,
        tracking,
        mark: cookie.as_ref().map(|c| c.high_water.clone()),
        since: match (&cookie, tracking) {
            (Some(c), Some(t)) => Some(t.rewind(&c.high_water, c.overlap_secs)),
            _ => None,
        },
        op_timeout,
    };
    let Gathered {
        rows,
        errors,
        gone,
        deletions,
        entries_read,
        max_marker,
    } = gather(dir, conn, &g).await?;

    // Step 4: one transaction.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if regenerate {
        // Taken only now, so that a cycle that fails before this point leaves it set.
        let mut settings = read_settings(&tx, path)?;
        if settings.take_regenerate() {
            tx.execute(
                "UPDATE settings SET regenerate_cookies_now = 0 WHERE id = 1",
                [],
            )?;
        }
    }
    tx.execute(
        "INSERT INTO cycles (started_at, kind, reason, status, deletions) VALUES (?1, ?2, ?3, 'running', ?4)",
        params![started, kind.name(), reason, deletions],
    )?;
    let cycle = tx.last_insert_rowid();
    let mut up = Upsert {
        tx: &tx,
        cycle,
        counts: Counts {
            errors,
            ..Counts::default()
        },
        seen_rows: HashSet::new(),
    };
    for (row, key) in &rows {
        up.row(row, key)?;
    }
    up.remove_gone(&gone)?;
    let Upsert { counts, .. } = up;
    // The cookie, the deployment, the problems, the cycle's row.
    let elapsed = clock.elapsed();
    let mut stored_cookie = None;
    match &state {
        Some(s) => {
            let mark = match (&s.high_water, max_marker, &cookie) {
                (Some(h), _, _) => Some(h.clone()),
                (None, Some(m), Some(c)) if kind == CycleKind::Incremental => {
                    Some(if s.tracking.compare(&m, &c.high_water).is_gt() {
                        m
                    } else {
                        c.high_water.clone()
                    })
                }
                (None, m, _) => m,
            };
            if let Some(mark) = mark {
                let overlap = if s.high_water.is_none() {
                    elapsed.as_secs() + 1 + CSN_SLACK
                } else {
                    0
                };
                tx.execute(
                    "INSERT INTO cookies (naming_context, tracking, source, high_water, overlap_secs, cycle, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (naming_context) DO UPDATE SET tracking = ?2, source = ?3, high_water = ?4,
                     overlap_secs = ?5, cycle = ?6, updated_at = ?7",
                    params![
                        nc,
                        s.tracking.name(),
                        s.source,
                        mark,
                        i64::try_from(overlap).unwrap_or(i64::MAX),
                        cycle,
                        now_text()
                    ],
                )?;
                stored_cookie = Some(mark);
            }
        }
        None => {
            tx.execute("DELETE FROM cookies WHERE naming_context = ?1", [&nc])?;
        }
    }
    // What the replica knew of deleted users is kept for the policies of the next
    // DEPARTED_CYCLES cycles (deletions are few; a policy that falls further behind
    // misses them).
    tx.execute(
        "DELETE FROM departed WHERE cycle <= ?1",
        [cycle - DEPARTED_CYCLES],
    )?;
    store_deployment(&tx, input)?;
    let problems = store_problems(&tx, input, cycle)?;
    let users: i64 = tx.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
    tx.execute(
        "UPDATE settings SET directory = ?1 WHERE id = 1",
        [&input.directory],
    )?;
    let ended = now_text();
    let errors = serde_json::to_string(&counts.errors).unwrap_or_else(|_| "[]".into());
    let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    tx.execute(
        "UPDATE cycles SET ended_at = ?2, status = 'ok', added = ?3, changed = ?4, deleted = ?5, seen = ?6,
         users = ?7, problems = ?8, errors = ?9, entries_read = ?10 WHERE id = ?1",
        params![
            cycle,
            ended,
            n(counts.added),
            n(counts.changed),
            n(counts.deleted),
            n(counts.seen),
            users,
            n(problems),
            errors,
            n(entries_read)
        ],
    )?;
    tx.commit()?;
    Ok(CycleReport {
        cycle,
        kind,
        reason,
        started_at: started.to_string(),
        ended_at: ended,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        added: counts.added,
        changed: counts.changed,
        deleted: counts.deleted,
        seen: counts.seen,
        entries_read,
        deletions,
        users: usize::try_from(users).unwrap_or(0),
        problems,
        errors: counts.errors,
        tracking: tracking.map(|t| t.name().to_string()),
        cookie: stored_cookie,
    })
}

fn store_deployment(tx: &Transaction<'_>, input: &CycleInput<'_>) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM pools", [])?;
    for p in input.pools {
        tx.execute(
            "INSERT OR REPLACE INTO pools (dn, name, fqdn, home_server_dn, layout, pool_type, version, backend)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                p.dn,
                p.name,
                p.fqdn,
                p.home_server_dn(),
                p.layout.map(|l| match l {
                    PoolLayout::R2 => "R2",
                    PoolLayout::Ocs2007 => "OCS 2007",
                }),
                p.pool_type,
                p.version,
                p.backend
            ],
        )?;
    }
    tx.execute("DELETE FROM sip_domains", [])?;
    for d in input.sip_domains {
        tx.execute("INSERT OR IGNORE INTO sip_domains (name) VALUES (?1)", [d])?;
    }
    Ok(())
}

/// What the problems of a row are computed from: dn, sam, sip, enabled, home server, flags.
type ProblemInput = (
    String,
    Option<String>,
    Option<String>,
    Option<bool>,
    Option<String>,
    Option<i64>,
);

/// Recomputes the problems of every user against the deployment; returns how many.
fn store_problems(
    tx: &Transaction<'_>,
    input: &CycleInput<'_>,
    cycle: i64,
) -> rusqlite::Result<usize> {
    tx.execute("DELETE FROM problems", [])?;
    let ctx = Context {
        pools: input.pools,
        sip_domains: input.sip_domains,
    };
    let mut stmt =
        tx.prepare("SELECT dn, sam, sip, enabled, home_server, flags FROM users ORDER BY dn_key")?;
    let rows: Vec<ProblemInput> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    let mut insert = tx.prepare(
        "INSERT INTO problems (cycle, kind, dn, sam, sip, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut count = 0;
    for (dn, sam, sip, enabled, home, flags) in &rows {
        let mut pairs: Vec<(&str, Vec<String>)> = Vec::new();
        if let Some(e) = enabled {
            pairs.push((
                "msRTCSIP-UserEnabled",
                vec![crate::ocs::values::ad_bool(*e)],
            ));
        }
        if let Some(s) = sip {
            pairs.push(("msRTCSIP-PrimaryUserAddress", vec![s.clone()]));
        }
        if let Some(h) = home {
            pairs.push(("msRTCSIP-PrimaryHomeServer", vec![h.clone()]));
        }
        if let Some(f) = flags {
            pairs.push(("msRTCSIP-OptionFlags", vec![f.to_string()]));
        }
        let user = OcsUser::from_pairs(dn, pairs.iter().map(|(n, v)| (*n, v.as_slice())));
        for p in user.problems(&ctx) {
            insert.execute(params![
                cycle,
                ProblemKind::of(&p).name(),
                dn,
                sam,
                sip,
                p.to_string()
            ])?;
            count += 1;
        }
    }
    let sams: HashMap<&str, (&Option<String>, &Option<String>)> = rows
        .iter()
        .map(|(dn, sam, sip, ..)| (dn.as_str(), (sam, sip)))
        .collect();
    let holders = rows
        .iter()
        .filter_map(|(dn, _, sip, ..)| sip.as_deref().map(|s| (dn.as_str(), s)));
    for dup in duplicate_sips(holders) {
        for dn in &dup.holders {
            let others: Vec<&str> = dup
                .holders
                .iter()
                .filter(|h| *h != dn)
                .map(String::as_str)
                .collect();
            let (sam, sip) = sams.get(dn.as_str()).copied().unwrap_or((&None, &None));
            insert.execute(params![
                cycle,
                ProblemKind::DuplicateSip.name(),
                dn,
                sam,
                sip,
                format!(
                    "SIP address {} is held by {} users; also by {}",
                    dup.sip,
                    dup.holders.len(),
                    others.join("; ")
                )
            ])?;
            count += 1;
        }
    }
    Ok(count)
}
