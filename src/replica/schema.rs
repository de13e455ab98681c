//! The replica's schema and its migrations.
//!
//! The schema version is SQLite's `PRAGMA user_version`: 0 for a new file, then the
//! number of the last migration applied. Migrations run in order, each in its own
//! transaction together with the version bump, so a failed migration leaves the file at
//! the version before it. A file whose version is higher than [`VERSION`] was written by
//! a newer ocsh and is refused rather than guessed at. `docs/replica.md` describes each
//! table.

use rusqlite::Connection;

/// The migrations, in order: `MIGRATIONS[i]` takes the schema from version `i` to
/// `i + 1`. Append only; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
CREATE TABLE settings (
    id                          INTEGER PRIMARY KEY CHECK (id = 1),
    backend                     TEXT NOT NULL,
    instance_id                 TEXT NOT NULL,
    replication_cycle_interval  INTEGER NOT NULL
                                CHECK (replication_cycle_interval BETWEEN 5 AND 86400),
    regenerate_cookies_now      INTEGER NOT NULL DEFAULT 0 CHECK (regenerate_cookies_now IN (0, 1)),
    directory                   TEXT
);

CREATE TABLE cycles (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    kind        TEXT NOT NULL CHECK (kind IN ('initial', 'incremental')),
    reason      TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
    added       INTEGER NOT NULL DEFAULT 0,
    changed     INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    seen        INTEGER NOT NULL DEFAULT 0,
    users       INTEGER NOT NULL DEFAULT 0,
    problems    INTEGER NOT NULL DEFAULT 0,
    errors      TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    dn             TEXT NOT NULL,
    dn_key         TEXT NOT NULL UNIQUE,
    guid           TEXT UNIQUE,
    sam            TEXT,
    upn            TEXT,
    mail           TEXT,
    display_name   TEXT,
    enabled        INTEGER CHECK (enabled IN (0, 1)),
    sip            TEXT,
    home_server    TEXT,
    flags          INTEGER,
    federation     INTEGER NOT NULL DEFAULT 0,
    remote_access  INTEGER NOT NULL DEFAULT 0,
    change_marker  TEXT,
    changed_in     INTEGER REFERENCES cycles(id)
);
CREATE INDEX users_sip ON users (lower(sip));
CREATE INDEX users_changed_in ON users (changed_in);

CREATE TABLE pools (
    dn              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    fqdn            TEXT,
    home_server_dn  TEXT NOT NULL,
    layout          TEXT,
    pool_type       INTEGER,
    version         INTEGER,
    backend         TEXT
);

CREATE TABLE sip_domains (
    name  TEXT PRIMARY KEY COLLATE NOCASE
);

CREATE TABLE cookies (
    naming_context  TEXT PRIMARY KEY,
    tracking        TEXT NOT NULL,
    source          TEXT NOT NULL,
    high_water      TEXT NOT NULL,
    overlap_secs    INTEGER NOT NULL DEFAULT 0,
    cycle           INTEGER REFERENCES cycles(id),
    updated_at      TEXT NOT NULL
);

CREATE TABLE problems (
    id      INTEGER PRIMARY KEY,
    cycle   INTEGER NOT NULL REFERENCES cycles(id),
    kind    TEXT NOT NULL,
    dn      TEXT NOT NULL,
    sam     TEXT,
    sip     TEXT,
    detail  TEXT NOT NULL
);
"#,
    // 2: how each cycle found deletions, and how many entries it read.
    r#"
ALTER TABLE cycles ADD COLUMN deletions TEXT NOT NULL DEFAULT '';
ALTER TABLE cycles ADD COLUMN entries_read INTEGER NOT NULL DEFAULT 0;
"#,
    // 3: what each cycle added, moved and deleted, for policy scripts, and their progress.
    r#"
ALTER TABLE users ADD COLUMN added_in INTEGER REFERENCES cycles(id);
ALTER TABLE users ADD COLUMN moved_from TEXT;
ALTER TABLE users ADD COLUMN moved_in INTEGER REFERENCES cycles(id);

CREATE TABLE departed (
    id             INTEGER PRIMARY KEY,
    cycle          INTEGER NOT NULL REFERENCES cycles(id),
    dn             TEXT NOT NULL,
    guid           TEXT,
    sam            TEXT,
    upn            TEXT,
    mail           TEXT,
    display_name   TEXT,
    enabled        INTEGER,
    sip            TEXT,
    home_server    TEXT,
    flags          INTEGER,
    federation     INTEGER NOT NULL DEFAULT 0,
    remote_access  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX departed_cycle ON departed (cycle);
CREATE INDEX users_added_in ON users (added_in);

CREATE TABLE policies (
    name          TEXT PRIMARY KEY,
    done_through  INTEGER NOT NULL DEFAULT 0,
    runs          INTEGER NOT NULL DEFAULT 0,
    last_run_at   TEXT,
    last_error    TEXT
);
"#,
];

/// The schema version this ocsh writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Why the schema cannot be brought up to date.
#[derive(Debug)]
pub enum MigrateError {
    /// The file is from a newer ocsh.
    TooNew(u32),
    /// SQLite failed.
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> MigrateError {
        MigrateError::Sqlite(e)
    }
}

/// The file's schema version.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))
}

/// Applies the migrations the file lacks; returns the version it had before.
pub fn migrate(conn: &mut Connection) -> Result<u32, MigrateError> {
    let found = version(conn)?;
    if found > VERSION {
        return Err(MigrateError::TooNew(found));
    }
    if found == VERSION {
        return Ok(found);
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated meanwhile (the check and the lock are one
        // step only inside the transaction).
        if version(&tx)? > i as u32 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_new_file_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(version(&conn).unwrap(), VERSION);
        assert_eq!(migrate(&mut conn).unwrap(), VERSION);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 9);
    }

    #[test]
    fn refuses_a_newer_file() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(MigrateError::TooNew(v)) if v == VERSION + 1));
    }
}
