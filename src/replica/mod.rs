//! The replicator's store: an SQLite replica of the OCS view of a directory's users,
//! pools and SIP domains, kept in step by cycles (`cycle.rs`), with the replicator's
//! settings (MSFT_SIPUserReplicatorSetting), the cookie of each naming context, a row per
//! cycle and the problems the last cycle found.
//!
//! This layer depends on `ocs` (the rules, the settings type, the problems) and
//! `directory` (the trait it reads through); the script and CLI layers use it. The
//! schema and its migrations are in `schema.rs` and `docs/replica.md`.

pub mod cycle;
pub mod error;
mod gather;
pub mod policy;
pub mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::ocs::replicator::{InstanceId, ProblemKind, ReplicatorSettings};

pub use cycle::{CycleInput, CycleKind, CycleReport};
pub use error::ReplicaError;

/// How long a command waits for another process's write lock (a cycle in progress)
/// before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// An open replica file.
pub struct Replica {
    conn: Connection,
    path: PathBuf,
}

/// One row of the `cycles` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleRecord {
    /// The cycle's number.
    pub id: i64,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// `initial` or `incremental`.
    pub kind: String,
    /// Why it was of that kind.
    pub reason: String,
    /// `ok`, `failed` (nothing of it was kept) or `running`.
    pub status: String,
    /// Users added to the replica.
    pub added: i64,
    /// Users whose OCS view changed (or that moved).
    pub changed: i64,
    /// Users removed.
    pub deleted: i64,
    /// Entries the directory returned with their attributes.
    pub seen: i64,
    /// Entries the directory sent in all of the cycle's searches.
    pub entries_read: i64,
    /// How deletions were found (the change feed, or why every user was listed).
    pub deletions: String,
    /// Users in the replica after the cycle.
    pub users: i64,
    /// Problems found.
    pub problems: i64,
    /// What went wrong (entries skipped; for a failed cycle, why it failed).
    pub errors: Vec<String>,
}

/// One problem found by the last cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProblemRecord {
    /// The kind (`home_server_not_a_pool`, `duplicate_sip`, ...).
    pub kind: String,
    /// The user's DN.
    pub dn: String,
    /// The user's sAMAccountName.
    pub sam: Option<String>,
    /// The user's SIP address.
    pub sip: Option<String>,
    /// What is wrong, in words.
    pub detail: String,
}

/// One user as the replica holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaUser {
    /// The DN as the directory gave it.
    pub dn: String,
    /// `objectGUID` (braced) or `entryUUID`, when the directory has one.
    pub guid: Option<String>,
    /// sAMAccountName.
    pub sam: Option<String>,
    /// userPrincipalName.
    pub upn: Option<String>,
    /// mail.
    pub mail: Option<String>,
    /// displayName.
    pub display_name: Option<String>,
    /// msRTCSIP-UserEnabled: `None` when never enabled.
    pub enabled: Option<bool>,
    /// msRTCSIP-PrimaryUserAddress.
    pub sip: Option<String>,
    /// msRTCSIP-PrimaryHomeServer.
    pub home_server: Option<String>,
    /// msRTCSIP-OptionFlags.
    pub flags: Option<i64>,
    /// msRTCSIP-FederationEnabled.
    pub federation: bool,
    /// msRTCSIP-InternetAccessEnabled.
    pub remote_access: bool,
    /// The directory's change marker when the entry was last read (uSNChanged, entryCSN).
    pub change_marker: Option<String>,
    /// The cycle that last added or changed this row.
    pub changed_in: Option<i64>,
}

/// A naming context's cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cookie {
    /// The naming context (the base of the user search).
    pub naming_context: String,
    /// `usn`, `entry_csn` or `counter`.
    pub tracking: String,
    /// Whose change sequence (DC, server, file).
    pub source: String,
    /// The high-water mark the next incremental cycle starts from.
    pub high_water: String,
    /// Seconds the next cycle reads back before the mark (CSNs without contextCSN).
    pub overlap_secs: i64,
    /// The cycle that wrote it.
    pub cycle: Option<i64>,
    /// When.
    pub updated_at: String,
}

/// Everything `ocsh replicator status` and `replicator.status()` show.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The replica file.
    pub replica: String,
    /// Its schema version.
    pub schema_version: u32,
    /// The directory it replicates (as the last cycle described it).
    pub directory: Option<String>,
    /// `Backend`.
    pub backend: String,
    /// `InstanceID`.
    pub instance_id: String,
    /// `ReplicationCycleInterval`, seconds.
    pub replication_cycle_interval: u32,
    /// `RegenerateCookiesNow`.
    pub regenerate_cookies_now: bool,
    /// Users in the replica.
    pub users: i64,
    /// Of which enabled for OCS.
    pub enabled_users: i64,
    /// Pools.
    pub pools: i64,
    /// SIP domains.
    pub sip_domains: i64,
    /// The cookies.
    pub cookies: Vec<Cookie>,
    /// The last cycles, newest first.
    pub cycles: Vec<CycleRecord>,
    /// How the last successful incremental cycle found deletions: the change feed it used
    /// (tombstones, an RFC 4533 refresh), or why it listed every user.
    pub deletions: Option<String>,
    /// Problems of the last successful cycle, by kind.
    pub problem_counts: BTreeMap<String, i64>,
}

/// Now, as RFC 3339 UTC with milliseconds.
pub(crate) fn now_text() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The default replica of a directory: `<state dir>/ocsh/replica-<name>.sqlite`, the name
/// made from the directory (`demo`, an LDIF file's name, an LDAP URL's host and port)
/// and a short hash of its full identity (the file's absolute path, the URL and base).
pub fn default_path(directory: &str, base: Option<&str>) -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "ocsh")?;
    let state = dirs
        .state_dir()
        .unwrap_or_else(|| dirs.data_local_dir())
        .to_path_buf();
    Some(state.join(format!("replica-{}.sqlite", replica_name(directory, base))))
}

/// The distinguishing part of a default replica's file name.
pub fn replica_name(directory: &str, base: Option<&str>) -> String {
    let d = directory.trim();
    let lower = d.to_ascii_lowercase();
    let (label, identity) = if lower == "demo" || lower == "demo forest" {
        ("demo".to_string(), "demo".to_string())
    } else if lower.starts_with("ldap://") || lower.starts_with("ldaps://") {
        let host = lower.split("://").nth(1).unwrap_or_default();
        let host = host.split('/').next().unwrap_or_default();
        (host.to_string(), lower.clone())
    } else {
        let path = Path::new(d);
        let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        (
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            full.display().to_string(),
        )
    };
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if label == "demo" && base.is_none() {
        return label;
    }
    let identity = format!("{identity}\n{}", base.unwrap_or_default().to_lowercase());
    format!("{label}-{:08x}", fnv1a(identity.as_bytes()) as u32)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn settings_from_row(
    backend: String,
    instance_id: &str,
    interval: i64,
    regenerate: bool,
) -> Result<ReplicatorSettings, crate::ocs::OcsError> {
    let mut s = ReplicatorSettings::new(backend, InstanceId::parse(instance_id)?);
    s.set_interval(interval)?;
    if regenerate {
        s.regenerate_cookies_now();
    }
    Ok(s)
}

/// Reads the settings row through any connection (the replica's, or a cycle's
/// transaction).
pub(crate) fn read_settings(
    conn: &Connection,
    path: &Path,
) -> Result<ReplicatorSettings, ReplicaError> {
    let (backend, id, interval, regenerate): (String, String, i64, bool) = conn.query_row(
        "SELECT backend, instance_id, replication_cycle_interval, regenerate_cookies_now FROM settings WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    settings_from_row(backend, &id, interval, regenerate).map_err(|source| ReplicaError::Setting {
        path: path.display().to_string(),
        source,
    })
}

impl Replica {
    /// Opens the replica at `path`, creating it (and its folder) when missing, and
    /// brings its schema up to date. A new replica gets a new InstanceID and the
    /// default interval.
    pub fn open(path: &Path) -> Result<Replica, ReplicaError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| ReplicaError::Io {
                path: path.display().to_string(),
                message: format!("cannot create {}: {e}", parent.display()),
            })?;
        }
        Replica::open_conn(path, Connection::open(path))
    }

    /// Opens an existing replica (for status and problems, which must not create one).
    pub fn open_existing(path: &Path) -> Result<Replica, ReplicaError> {
        if !path.exists() {
            return Err(ReplicaError::Missing(path.display().to_string()));
        }
        Replica::open_conn(
            path,
            Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE),
        )
    }

    fn open_conn(path: &Path, conn: rusqlite::Result<Connection>) -> Result<Replica, ReplicaError> {
        let mut conn = conn.map_err(|e| ReplicaError::from(e).at(path))?;
        let setup = |conn: &mut Connection| -> Result<(), ReplicaError> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // WAL: status, problems and scripts read while a cycle writes. Set only when
            // it is not yet (a running cycle holds the write lock).
            let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
            }
            conn.pragma_update(None, "foreign_keys", true)?;
            schema::migrate(conn).map_err(|e| match e {
                schema::MigrateError::TooNew(found) => ReplicaError::TooNew {
                    path: path.display().to_string(),
                    found,
                    known: schema::VERSION,
                },
                schema::MigrateError::Sqlite(e) => e.into(),
            })?;
            Ok(())
        };
        setup(&mut conn).map_err(|e| e.at(path))?;
        let mut replica = Replica {
            conn,
            path: path.to_path_buf(),
        };
        replica.ensure_settings().map_err(|e| e.at(path))?;
        Ok(replica)
    }

    /// The settings row exists from the first open on; `Backend` follows the file.
    fn ensure_settings(&mut self) -> Result<(), ReplicaError> {
        let backend = self.backend_name();
        // Usually there is nothing to write: then no write lock is taken (a cycle in
        // another process may hold it for a while).
        let stored: Option<String> = self
            .conn
            .query_row("SELECT backend FROM settings WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        if stored.as_deref() == Some(backend.as_str()) {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let stored: Option<String> = tx
            .query_row("SELECT backend FROM settings WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        match stored {
            None => {
                let bytes: Vec<u8> = tx.query_row("SELECT randomblob(16)", [], |r| r.get(0))?;
                let mut id = [0u8; 16];
                id.copy_from_slice(&bytes);
                // A version-4 (random) GUID.
                id[6] = (id[6] & 0x0f) | 0x40;
                id[8] = (id[8] & 0x3f) | 0x80;
                tx.execute(
                    "INSERT INTO settings (id, backend, instance_id, replication_cycle_interval, regenerate_cookies_now) VALUES (1, ?1, ?2, ?3, 0)",
                    params![
                        backend,
                        InstanceId::from_bytes(id).to_string(),
                        crate::ocs::replicator::DEFAULT_INTERVAL
                    ],
                )?;
            }
            Some(b) if b != backend => {
                tx.execute("UPDATE settings SET backend = ?1 WHERE id = 1", [backend])?;
            }
            Some(_) => {}
        }
        tx.commit()?;
        Ok(())
    }

    fn backend_name(&self) -> String {
        let full = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        format!("sqlite:{}", full.display())
    }

    /// The replica file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn wrap<T>(&self, r: Result<T, ReplicaError>) -> Result<T, ReplicaError> {
        r.map_err(|e| e.at(&self.path))
    }

    /// The schema version of the file.
    pub fn schema_version(&self) -> Result<u32, ReplicaError> {
        self.wrap(schema::version(&self.conn).map_err(Into::into))
    }

    /// The replicator's settings as stored.
    pub fn settings(&self) -> Result<ReplicatorSettings, ReplicaError> {
        read_settings(&self.conn, &self.path).map_err(|e| e.at(&self.path))
    }

    /// Writes the settings that differ between `before` (as they were read when the
    /// change was planned) and `after`, each only if its stored value is still the
    /// `before` one; otherwise nothing is written and the result is a conflict.
    /// `Backend` and `InstanceID` are read-only and never written.
    pub fn write_settings(
        &mut self,
        before: &ReplicatorSettings,
        after: &ReplicatorSettings,
    ) -> Result<(), ReplicaError> {
        let path = self.path.clone();
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = read_settings(&tx, &path)?;
            let conflict = |message: String| ReplicaError::Conflict {
                path: path.display().to_string(),
                message,
            };
            if before.interval() != after.interval() {
                if now.interval() != before.interval() {
                    return Err(conflict(format!(
                        "ReplicationCycleInterval was expected to be {} but is {}",
                        before.interval(),
                        now.interval()
                    )));
                }
                tx.execute(
                    "UPDATE settings SET replication_cycle_interval = ?1 WHERE id = 1",
                    [after.interval()],
                )?;
            }
            if before.regenerate_pending() != after.regenerate_pending() {
                if now.regenerate_pending() != before.regenerate_pending() {
                    return Err(conflict(format!(
                        "RegenerateCookiesNow was expected to be {} but is {}",
                        before.regenerate_pending(),
                        now.regenerate_pending()
                    )));
                }
                tx.execute(
                    "UPDATE settings SET regenerate_cookies_now = ?1 WHERE id = 1",
                    [after.regenerate_pending()],
                )?;
            }
            tx.commit()?;
            Ok(())
        })();
        self.wrap(result)
    }

    /// Runs one cycle (see [`cycle`]): reads what changed in `dir` since the stored
    /// cookie (everything on an initial cycle), updates the replica, records the cycle
    /// and its problems. All of it is one transaction: a failed or interrupted cycle
    /// leaves the replica as it was (a failed one is recorded as such afterwards).
    pub async fn sync(
        &mut self,
        dir: &dyn crate::directory::Directory,
        input: &CycleInput<'_>,
        op_timeout: Duration,
    ) -> Result<CycleReport, ReplicaError> {
        let path = self.path.clone();
        cycle::run(&mut self.conn, &path, dir, input, op_timeout)
            .await
            .map_err(|e| e.at(&path))
    }

    /// The last `limit` cycles, newest first.
    pub fn cycles(&self, limit: usize) -> Result<Vec<CycleRecord>, ReplicaError> {
        let result = (|| {
            let mut stmt = self.conn.prepare(
                "SELECT id, started_at, ended_at, kind, reason, status, added, changed, deleted, seen, users, problems, errors,
                 entries_read, deletions FROM cycles ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                let errors: String = r.get(12)?;
                Ok(CycleRecord {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    ended_at: r.get(2)?,
                    kind: r.get(3)?,
                    reason: r.get(4)?,
                    status: r.get(5)?,
                    added: r.get(6)?,
                    changed: r.get(7)?,
                    deleted: r.get(8)?,
                    seen: r.get(9)?,
                    entries_read: r.get(13)?,
                    deletions: r.get(14)?,
                    users: r.get(10)?,
                    problems: r.get(11)?,
                    errors: serde_json::from_str(&errors).unwrap_or_else(|_| vec![errors]),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })();
        self.wrap(result)
    }

    /// The problems found by the last successful cycle, in report order (kind, then DN).
    pub fn problems(&self) -> Result<Vec<ProblemRecord>, ReplicaError> {
        let result = (|| {
            let mut stmt = self
                .conn
                .prepare("SELECT kind, dn, sam, sip, detail FROM problems ORDER BY id")?;
            let rows = stmt.query_map([], |r| {
                Ok(ProblemRecord {
                    kind: r.get(0)?,
                    dn: r.get(1)?,
                    sam: r.get(2)?,
                    sip: r.get(3)?,
                    detail: r.get(4)?,
                })
            })?;
            let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            let order = |k: &str| ProblemKind::from_name(k).map_or(usize::MAX, |k| k as usize);
            out.sort_by(|a, b| {
                order(&a.kind)
                    .cmp(&order(&b.kind))
                    .then_with(|| a.dn.to_lowercase().cmp(&b.dn.to_lowercase()))
            });
            Ok(out)
        })();
        self.wrap(result)
    }

    /// Every user of the replica, by DN.
    pub fn users(&self) -> Result<Vec<ReplicaUser>, ReplicaError> {
        let result = (|| {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT {} FROM users ORDER BY dn_key",
                cycle::USER_COLUMNS
            ))?;
            let rows = stmt.query_map([], cycle::user_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })();
        self.wrap(result)
    }

    /// The cookies, by naming context.
    pub fn cookies(&self) -> Result<Vec<Cookie>, ReplicaError> {
        let result = (|| {
            let mut stmt = self.conn.prepare(
                "SELECT naming_context, tracking, source, high_water, overlap_secs, cycle, updated_at FROM cookies ORDER BY naming_context",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Cookie {
                    naming_context: r.get(0)?,
                    tracking: r.get(1)?,
                    source: r.get(2)?,
                    high_water: r.get(3)?,
                    overlap_secs: r.get(4)?,
                    cycle: r.get(5)?,
                    updated_at: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })();
        self.wrap(result)
    }

    /// Settings, counts, cookies, the last `cycles` cycles and the problem counts.
    pub fn status(&self, cycles: usize) -> Result<Status, ReplicaError> {
        let settings = self.settings()?;
        let result = (|| {
            let count =
                |sql: &str| -> rusqlite::Result<i64> { self.conn.query_row(sql, [], |r| r.get(0)) };
            let directory: Option<String> =
                self.conn
                    .query_row("SELECT directory FROM settings WHERE id = 1", [], |r| {
                        r.get(0)
                    })?;
            let mut problem_counts = BTreeMap::new();
            let mut stmt = self
                .conn
                .prepare("SELECT kind, count(*) FROM problems GROUP BY kind")?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (k, n) = row?;
                problem_counts.insert(k, n);
            }
            let deletions: Option<String> = self
                .conn
                .query_row(
                    "SELECT deletions FROM cycles WHERE status = 'ok' AND kind = 'incremental' ORDER BY id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok::<_, ReplicaError>((
                deletions,
                directory,
                count("SELECT count(*) FROM users")?,
                count("SELECT count(*) FROM users WHERE enabled = 1")?,
                count("SELECT count(*) FROM pools")?,
                count("SELECT count(*) FROM sip_domains")?,
                problem_counts,
            ))
        })();
        let (deletions, directory, users, enabled_users, pools, sip_domains, problem_counts) =
            self.wrap(result)?;
        Ok(Status {
            replica: self.path.display().to_string(),
            schema_version: self.schema_version()?,
            directory,
            backend: settings.backend.clone(),
            instance_id: settings.instance_id.to_string(),
            replication_cycle_interval: settings.interval(),
            regenerate_cookies_now: settings.regenerate_pending(),
            users,
            enabled_users,
            pools,
            sip_domains,
            cookies: self.cookies()?,
            cycles: self.cycles(cycles)?,
            deletions,
            problem_counts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_replica_has_settings_that_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/r.sqlite");
        let first = Replica::open(&path).unwrap().settings().unwrap();
        assert_eq!(first.interval(), 60);
        assert!(!first.regenerate_pending());
        assert!(first.backend.starts_with("sqlite:"), "{}", first.backend);
        let id = first.instance_id.to_string();
        assert!(InstanceId::parse(&id).is_ok(), "{id}");
        let again = Replica::open(&path).unwrap().settings().unwrap();
        assert_eq!(again.instance_id, first.instance_id);
        assert_eq!(
            Replica::open(&path).unwrap().schema_version().unwrap(),
            schema::VERSION
        );
    }

    #[test]
    fn settings_writes_carry_preconditions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let mut r = Replica::open(&path).unwrap();
        let before = r.settings().unwrap();
        let mut after = before.clone();
        after.set_interval(120).unwrap();
        r.write_settings(&before, &after).unwrap();
        assert_eq!(r.settings().unwrap().interval(), 120);
        // Planned against 60, but it is 120 now: refused, nothing written.
        let mut other = before.clone();
        other.set_interval(300).unwrap();
        other.regenerate_cookies_now();
        let err = r.write_settings(&before, &other).unwrap_err().to_string();
        assert!(err.contains("expected to be 60 but is 120"), "{err}");
        assert!(!r.settings().unwrap().regenerate_pending());
        // A change of the flag alone does not care about the interval.
        let mut regen = before.clone();
        regen.regenerate_cookies_now();
        r.write_settings(&before, &regen).unwrap();
        let now = r.settings().unwrap();
        assert!(now.regenerate_pending());
        assert_eq!(now.interval(), 120);
    }

    #[test]
    fn readers_do_not_wait_for_a_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        drop(Replica::open(&path).unwrap());
        // A cycle in another process holds the write lock.
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("BEGIN IMMEDIATE; UPDATE settings SET directory = 'x' WHERE id = 1;")
            .unwrap();
        let started = std::time::Instant::now();
        let r = Replica::open(&path).unwrap();
        assert_eq!(r.settings().unwrap().interval(), 60);
        assert_eq!(r.status(5).unwrap().directory, None);
        assert!(started.elapsed() < Duration::from_secs(2));
        writer.execute_batch("ROLLBACK").unwrap();
    }

    #[test]
    fn status_and_problems_need_an_existing_replica() {
        let dir = tempfile::tempdir().unwrap();
        let err = Replica::open_existing(&dir.path().join("none.sqlite"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("run `ocsh replicator sync` first"), "{err}");
    }

    #[test]
    fn a_replica_from_a_newer_ocsh_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        drop(Replica::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", schema::VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Replica::open(&path).err().unwrap().to_string();
        assert!(
            err.contains(&format!(
                "newer than the {} this ocsh knows",
                schema::VERSION
            )),
            "{err}"
        );
    }

    #[test]
    fn default_names() {
        assert_eq!(replica_name("demo", None), "demo");
        let a = replica_name("ldaps://DC01.example.com:636", Some("DC=example,DC=com"));
        assert!(a.starts_with("dc01-example-com-636-"), "{a}");
        assert_ne!(
            a,
            replica_name(
                "ldaps://dc01.example.com:636",
                Some("OU=x,DC=example,DC=com")
            )
        );
        let b = replica_name("/tmp/some dir/forest.ldif", None);
        assert!(b.starts_with("forest-"), "{b}");
    }
}
