//! What policy scripts see: the users each cycle added, changed, moved and deleted, and
//! how far each policy has got.
//!
//! A policy is known by its file's absolute path. Its `done_through` is the last cycle
//! whose changes it has handled (its plan applied, or nothing to apply); the next run
//! gets everything after it, so a policy that fails, or runs without `--apply`, sees the
//! same users again on the next cycle, together with the new ones.
//!
//! The replica's first cycle is the baseline: the users it found were there before the
//! replicator, so they are not `added` (a policy that enables "new users" does not enable
//! every user the first time it runs); a later change of one of them is `changed`.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::cycle::{USER_COLUMNS, user_from_row};
use super::{Replica, ReplicaError, ReplicaUser, now_text};

/// A policy's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyState {
    /// The policy (its file's absolute path).
    pub name: String,
    /// The last cycle whose changes it handled (0: none yet).
    pub done_through: i64,
    /// How many times it ran.
    pub runs: i64,
    /// When it last ran.
    pub last_run_at: Option<String>,
    /// Why its last run did not finish, if it did not.
    pub last_error: Option<String>,
}

/// The users changed by the cycles after a policy's `done_through`, up to `through`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChangeSet {
    /// The last cycle included.
    pub through: i64,
    /// Users added by those cycles.
    pub added: Vec<ReplicaUser>,
    /// Users already there before whose OCS view changed, or that moved.
    pub changed: Vec<ReplicaUser>,
    /// Of the changed ones, those that moved: the DN before the move, and the user.
    pub moved: Vec<(String, ReplicaUser)>,
    /// What the replica last knew of the users those cycles deleted.
    pub deleted: Vec<ReplicaUser>,
}

impl ChangeSet {
    /// True when no user was added, changed or deleted.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.deleted.is_empty()
    }
}

impl Replica {
    /// The progress of the policy `name` (a new policy has done nothing yet).
    pub fn policy_state(&self, name: &str) -> Result<PolicyState, ReplicaError> {
        let found = self
            .conn
            .query_row(
                "SELECT done_through, runs, last_run_at, last_error FROM policies WHERE name = ?1",
                [name],
                |r| {
                    Ok(PolicyState {
                        name: name.to_string(),
                        done_through: r.get(0)?,
                        runs: r.get(1)?,
                        last_run_at: r.get(2)?,
                        last_error: r.get(3)?,
                    })
                },
            )
            .optional();
        let found = found.map_err(|e| ReplicaError::from(e).at(&self.path))?;
        Ok(found.unwrap_or_else(|| PolicyState {
            name: name.to_string(),
            ..PolicyState::default()
        }))
    }

    /// The users the successful cycles after `done` changed.
    pub fn changes_since(&self, done: i64) -> Result<ChangeSet, ReplicaError> {
        let result = (|| -> Result<ChangeSet, ReplicaError> {
            let through: i64 = self.conn.query_row(
                "SELECT coalesce(max(id), 0) FROM cycles WHERE status = 'ok'",
                [],
                |r| r.get(0),
            )?;
            let baseline: i64 = self.conn.query_row(
                "SELECT coalesce(min(id), 0) FROM cycles WHERE status = 'ok'",
                [],
                |r| r.get(0),
            )?;
            let mut set = ChangeSet {
                through,
                ..ChangeSet::default()
            };
            let mut stmt = self.conn.prepare(&format!(
                "SELECT {USER_COLUMNS}, added_in, moved_from, moved_in FROM users
                 WHERE changed_in > ?1 OR added_in > ?1 ORDER BY dn_key"
            ))?;
            let rows = stmt.query_map([done], |r| {
                Ok((
                    user_from_row(r)?,
                    r.get::<_, Option<i64>>(14)?,
                    r.get::<_, Option<String>>(15)?,
                    r.get::<_, Option<i64>>(16)?,
                ))
            })?;
            for row in rows {
                let (user, added_in, moved_from, moved_in) = row?;
                let changed_after = user.changed_in.is_some_and(|c| c > done);
                if added_in == Some(baseline)
                    && !(changed_after && user.changed_in != Some(baseline))
                {
                    continue;
                }
                if added_in.is_some_and(|c| c > done && c != baseline) {
                    set.added.push(user);
                    continue;
                }
                if let (Some(from), Some(_)) = (moved_from, moved_in.filter(|c| *c > done)) {
                    set.moved.push((from, user.clone()));
                }
                set.changed.push(user);
            }
            drop(stmt);
            let mut stmt = self.conn.prepare(
                "SELECT dn, guid, sam, upn, mail, display_name, enabled, sip, home_server, flags, federation,
                 remote_access, NULL, cycle FROM departed WHERE cycle > ?1 ORDER BY id",
            )?;
            set.deleted = stmt
                .query_map([done], user_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(set)
        })();
        result.map_err(|e| e.at(&self.path))
    }

    /// Records a run of the policy `name`: `done` (the last cycle it handled) when it
    /// finished, else the error, and its `done_through` stays.
    pub fn record_policy(
        &mut self,
        name: &str,
        done: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), ReplicaError> {
        let result = self.conn.execute(
            "INSERT INTO policies (name, done_through, runs, last_run_at, last_error) VALUES (?1, coalesce(?2, 0), 1, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET done_through = coalesce(?2, done_through), runs = runs + 1,
             last_run_at = ?3, last_error = ?4",
            params![name, done, now_text(), error],
        );
        result
            .map(|_| ())
            .map_err(|e| ReplicaError::from(e).at(&self.path))
    }

    /// Every policy's progress, by name.
    pub fn policies(&self) -> Result<Vec<PolicyState>, ReplicaError> {
        let result = (|| {
            let mut stmt = self.conn.prepare(
                "SELECT name, done_through, runs, last_run_at, last_error FROM policies ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(PolicyState {
                    name: r.get(0)?,
                    done_through: r.get(1)?,
                    runs: r.get(2)?,
                    last_run_at: r.get(3)?,
                    last_error: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })();
        result.map_err(|e: ReplicaError| e.at(&self.path))
    }
}
