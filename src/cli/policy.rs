//! Replicator policies: a Rhai script run after each cycle (`ocsh replicator sync|run
//! --policy FILE [--apply]`) with `changes`, the users the cycles since its last
//! finished run added, changed, moved and deleted.
//!
//! The script runs in the same sandbox and stages into the same plan as `ocsh run`: the
//! plan is printed, and written only with `--apply`, each entry with its preconditions,
//! journalled. A run is *finished* when its plan was applied in full or was empty; only
//! then does the policy's progress (`done_through` in the replica) move on, so a policy
//! that throws, whose apply meets a conflict, or that runs without `--apply` sees the
//! same users again on the next cycle, together with the new ones. A failing policy
//! never stops the replicator.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rhai::{Array, Dynamic, Map};

use crate::error::Error;
use crate::ocs::OcsUser;
use crate::ocs::dn::normalize;
use crate::plan::{PlanError, render};
use crate::replica::policy::ChangeSet;
use crate::replica::{Replica, ReplicaUser};
use crate::script::Session;
use crate::script::api_replicator::to_dynamic;
use crate::script::api_user::UserObj;

use super::ApplySettings;

/// Above this many users, `changes` is filled by one paged read of every user instead of
/// one lookup each (an initial cycle adds every user).
const LOOKUPS: usize = 200;

/// A policy script, read once.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its file's absolute path: the name its progress is kept under.
    pub name: String,
    /// The script.
    pub source: String,
    /// How to write its plan; `None`: only show it.
    pub apply: Option<ApplySettings>,
}

impl Policy {
    /// Reads the policy at `path`.
    pub fn load(path: &Path, apply: Option<ApplySettings>) -> Result<Policy, Error> {
        let full = std::fs::canonicalize(path)
            .map_err(|e| Error::Usage(format!("--policy {}: {e}", path.display())))?;
        let source = std::fs::read_to_string(&full)
            .map_err(|e| Error::Usage(format!("--policy {}: {e}", path.display())))?;
        Ok(Policy {
            name: full.display().to_string(),
            source,
            apply,
        })
    }
}

/// What one run of a policy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// No user changed since its last finished run.
    Nothing,
    /// It ran; its plan (shown) was empty or applied in full.
    Done,
    /// It ran without `--apply`: the plan was shown, nothing written.
    DryRun,
    /// It did not finish (it threw, or its apply did not land in full): why. The next
    /// cycle gives it the same users again.
    Failed(String),
}

/// Runs `policy` on the session's workspace after a cycle of `replica`, writing its
/// output (the plan, the apply report) to `out`.
pub fn run(
    session: &mut Session,
    policy: &Policy,
    replica: &mut Replica,
    out: &mut dyn Write,
) -> Result<PolicyOutcome, Error> {
    let io = Error::Replica;
    let state = replica.policy_state(&policy.name).map_err(io)?;
    let set = replica.changes_since(state.done_through).map_err(io)?;
    if set.is_empty() {
        replica
            .record_policy(&policy.name, Some(set.through), None)
            .map_err(io)?;
        return Ok(PolicyOutcome::Nothing);
    }
    let outcome = match attempt(session, policy, &set, out) {
        Ok(o) => o,
        Err(e) => PolicyOutcome::Failed(e),
    };
    session.host().ws.borrow_mut().discard();
    let (done, error) = match &outcome {
        PolicyOutcome::Done | PolicyOutcome::Nothing => (Some(set.through), None),
        PolicyOutcome::DryRun => (None, None),
        PolicyOutcome::Failed(e) => (None, Some(e.as_str())),
    };
    replica
        .record_policy(&policy.name, done, error)
        .map_err(io)?;
    Ok(outcome)
}

fn write(out: &mut dyn Write, s: &str) -> Result<(), String> {
    out.write_all(s.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

fn attempt(
    session: &mut Session,
    policy: &Policy,
    set: &ChangeSet,
    out: &mut dyn Write,
) -> Result<PolicyOutcome, String> {
    session.host().ws.borrow_mut().discard();
    let changes = changes_value(session, set).map_err(|e| e.to_string())?;
    // Each run starts clean: no variables or functions of the previous cycle's run.
    session.clear();
    session.set_constant("changes", changes);
    let _ = session
        .run(&policy.name, &policy.source)
        .map_err(|e| format!("the policy failed: {e}"))?;
    let host = session.host().clone();
    let mut ws = host.ws.borrow_mut();
    let directory = ws.describe();
    write(out, &render::plan_text(ws.plan(), &directory))?;
    if ws.plan().is_empty() {
        return Ok(PolicyOutcome::Done);
    }
    let Some(settings) = &policy.apply else {
        write(
            out,
            "Dry run: nothing was written (--apply writes the policy's plan).\n",
        )?;
        return Ok(PolicyOutcome::DryRun);
    };
    // The blast-radius guard of `ocsh run --apply`: a policy that would disable, remove
    // or move more users than allowed writes nothing.
    crate::plan::guard::check(ws.plan(), settings.limit).map_err(|e| format!("refused: {e}"))?;
    let report =
        super::apply_plan(&mut ws, settings, Some(&policy.name)).map_err(|e| e.to_string())?;
    if let Some(e) = &report.journal_error {
        write(out, &render::report_text(&report))?;
        return Err(format!(
            "{e}; the apply stopped sending when its journal failed"
        ));
    }
    write(out, &render::report_text(&report))?;
    if report.all_applied() {
        Ok(PolicyOutcome::Done)
    } else {
        Err(format!(
            "{} of {} entries were not applied (conflicts or refusals); the next cycle retries",
            report.results.len() - report.applied(),
            report.results.len()
        ))
    }
}

/// `changes` as the script sees it: `added`, `changed` (User objects read afresh),
/// `moved` (`#{ from, user }`) and `deleted` (maps of what the replica last knew).
fn changes_value(session: &Session, set: &ChangeSet) -> Result<Dynamic, PlanError> {
    let wanted: Vec<&ReplicaUser> = set.added.iter().chain(&set.changed).collect();
    let found = read_users(session, &wanted)?;
    let host = session.host().clone();
    let object = |u: &ReplicaUser| {
        let key = normalize(&u.dn).unwrap_or_else(|_| u.dn.to_lowercase());
        found.get(&key).map(|read| {
            Dynamic::from(UserObj {
                read: Rc::new(read.clone()),
                host: host.clone(),
            })
        })
    };
    // A user deleted since the cycle read it is left out (the next cycle has it in
    // `deleted`).
    let added: Array = set.added.iter().filter_map(object).collect();
    let changed: Array = set.changed.iter().filter_map(object).collect();
    let moved: Array = set
        .moved
        .iter()
        .filter_map(|(from, u)| {
            object(u).map(|user| {
                let mut m = Map::new();
                m.insert("from".into(), from.clone().into());
                m.insert("user".into(), user);
                Dynamic::from_map(m)
            })
        })
        .collect();
    let deleted: Array = set
        .deleted
        .iter()
        .map(|u| {
            let mut v = serde_json::to_value(u).unwrap_or(serde_json::Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.remove("change_marker");
                o.remove("changed_in");
            }
            to_dynamic(v)
        })
        .collect();
    let mut map = Map::new();
    map.insert("added".into(), Dynamic::from_array(added));
    map.insert("changed".into(), Dynamic::from_array(changed));
    map.insert("moved".into(), Dynamic::from_array(moved));
    map.insert("deleted".into(), Dynamic::from_array(deleted));
    map.insert("cycle".into(), Dynamic::from(set.through));
    Ok(Dynamic::from_map(map))
}

/// The users of `wanted` as the directory has them now, by normalized DN.
fn read_users(
    session: &Session,
    wanted: &[&ReplicaUser],
) -> Result<HashMap<String, OcsUser>, PlanError> {
    let ws = session.host().ws.borrow();
    let mut out = HashMap::new();
    if wanted.len() <= LOOKUPS {
        for u in wanted {
            match ws.find_user(&u.dn) {
                Ok(read) => {
                    let key = normalize(&u.dn).unwrap_or_else(|_| u.dn.to_lowercase());
                    out.insert(key, read);
                }
                Err(PlanError::UserNotFound(..)) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(out);
    }
    let keys: HashSet<String> = wanted
        .iter()
        .filter_map(|u| normalize(&u.dn).ok())
        .collect();
    let req = ws.user_request("");
    let mut cursor = None;
    loop {
        let (page, next) = ws.users_page(&req, cursor)?;
        for u in page {
            if let Ok(key) = normalize(&u.dn) {
                if keys.contains(&key) {
                    out.insert(key, u);
                }
            }
        }
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(out),
        }
    }
}

/// A policy's outcome in one line, for the cycle's log.
pub fn outcome_line(name: &str, outcome: &PolicyOutcome) -> String {
    let file = PathBuf::from(name)
        .file_name()
        .map_or_else(|| name.to_string(), |f| f.to_string_lossy().into_owned());
    match outcome {
        PolicyOutcome::Nothing => format!("policy {file}: no user changed since its last run\n"),
        PolicyOutcome::Done => format!("policy {file}: done\n"),
        PolicyOutcome::DryRun => {
            format!("policy {file}: dry run (the same users come again until --apply)\n")
        }
        PolicyOutcome::Failed(e) => format!("policy {file}: not done, retried next cycle: {e}\n"),
    }
}
