//! The blast-radius guard: an apply whose plan disables, removes or moves more users than
//! a limit is refused before the first write. The default limit is 500, the figure
//! Microsoft Entra Connect uses for its accidental-deletion threshold; a profile's
//! `max_destructive` changes it, and `--allow-destructive N` allows one plan of up to N.
//! `--yes` only skips the question: it never lifts the limit.

use std::fmt;

use serde::Serialize;

use crate::ocs::Destructive;

use super::Plan;

/// The limit when neither a profile nor a flag sets one.
pub const DEFAULT_MAX_DESTRUCTIVE: usize = 500;

/// Where the limit in force came from, for the refusal message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    /// [`DEFAULT_MAX_DESTRUCTIVE`].
    Default,
    /// The profile's `max_destructive`.
    Profile,
    /// `--allow-destructive N`.
    Flag,
}

/// The most users one apply may disable, remove or move, and where that figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// The most destructive entries allowed.
    pub max: usize,
    /// Who set it.
    pub source: LimitSource,
}

impl Default for Limit {
    fn default() -> Limit {
        Limit {
            max: DEFAULT_MAX_DESTRUCTIVE,
            source: LimitSource::Default,
        }
    }
}

impl Limit {
    /// The flag's value, else the profile's, else the default.
    pub fn resolve(flag: Option<usize>, profile: Option<usize>) -> Limit {
        match (flag, profile) {
            (Some(max), _) => Limit {
                max,
                source: LimitSource::Flag,
            },
            (None, Some(max)) => Limit {
                max,
                source: LimitSource::Profile,
            },
            (None, None) => Limit::default(),
        }
    }
}

/// How many users a plan disables, removes and moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlastRadius {
    /// Users temporarily disabled.
    pub disabled: usize,
    /// Users whose OCS attributes are removed.
    pub removed: usize,
    /// Users moved to another home server.
    pub moved: usize,
}

impl BlastRadius {
    /// Every destructive entry of `plan`, each counted once, by its worst change.
    pub fn of(plan: &Plan) -> BlastRadius {
        let mut r = BlastRadius::default();
        for entry in plan.entries() {
            let kind = Destructive::of(
                entry
                    .changes
                    .iter()
                    .map(|c| (c.attr.as_str(), c.before.as_slice(), c.after.as_slice())),
            );
            match kind {
                Some(Destructive::Disable) => r.disabled += 1,
                Some(Destructive::Remove) => r.removed += 1,
                Some(Destructive::Move) => r.moved += 1,
                None => {}
            }
        }
        r
    }

    /// The users the plan takes service from, in all.
    pub fn total(&self) -> usize {
        self.disabled + self.removed + self.moved
    }
}

impl fmt::Display for BlastRadius {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            (self.disabled, Destructive::Disable),
            (self.removed, Destructive::Remove),
            (self.moved, Destructive::Move),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, k)| format!("{n} {}", k.done()))
        .collect();
        if parts.is_empty() {
            f.write_str("no user disabled, removed or moved")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// An apply refused by the guard; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct TooDestructive {
    /// What the plan would do.
    pub radius: BlastRadius,
    /// The limit it exceeds.
    pub limit: Limit,
}

impl TooDestructive {
    fn message(&self) -> String {
        let total = self.radius.total();
        let from = match self.limit.source {
            LimitSource::Default => "the default; a profile's max_destructive changes it",
            LimitSource::Profile => "the profile's max_destructive",
            LimitSource::Flag => "--allow-destructive",
        };
        format!(
            "the plan disables, removes or moves {total} users ({}), more than the limit of {} ({from}); \
             nothing was written. If that many is intended, run again with --allow-destructive {total}",
            self.radius, self.limit.max
        )
    }
}

/// Checks `plan` against `limit`: the blast radius when it is within it.
pub fn check(plan: &Plan, limit: Limit) -> Result<BlastRadius, TooDestructive> {
    let radius = BlastRadius::of(plan);
    if radius.total() > limit.max {
        return Err(TooDestructive { radius, limit });
    }
    Ok(radius)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocs::{OcsUser, UserChange};

    /// A plan that disables `disable` users and moves `moves` others.
    fn plan(disable: usize, moves: usize) -> Plan {
        let mut plan = Plan::default();
        for i in 0..disable + moves {
            let enabled = vec!["TRUE".to_string()];
            let home = vec!["CN=LC Services,CN=Microsoft,CN=a".to_string()];
            let u = OcsUser::from_pairs(
                &format!("CN=u{i},DC=x"),
                [
                    ("msRTCSIP-UserEnabled", enabled.as_slice()),
                    ("msRTCSIP-PrimaryHomeServer", home.as_slice()),
                ],
            );
            let change = if i < disable {
                UserChange {
                    attr: "msRTCSIP-UserEnabled".into(),
                    after: vec!["FALSE".into()],
                }
            } else {
                UserChange {
                    attr: "msRTCSIP-PrimaryHomeServer".into(),
                    after: vec!["CN=LC Services,CN=Microsoft,CN=b".into()],
                }
            };
            plan.stage(&u, &[change], vec![]);
        }
        plan
    }

    #[test]
    fn the_limit_is_inclusive_and_counts_every_kind() {
        let at = plan(300, 200);
        assert_eq!(
            check(&at, Limit::default()),
            Ok(BlastRadius {
                disabled: 300,
                removed: 0,
                moved: 200
            })
        );
        let over = plan(300, 201);
        let err = check(&over, Limit::default()).unwrap_err();
        assert_eq!(err.radius.total(), 501);
        let text = err.to_string();
        assert!(
            text.contains("moves 501 users (300 disabled, 201 moved), more than the limit of 500"),
            "{text}"
        );
        assert!(text.contains("--allow-destructive 501"), "{text}");
        assert!(text.contains("nothing was written"), "{text}");
    }

    #[test]
    fn flag_beats_profile_beats_default() {
        let p = plan(20, 0);
        assert_eq!(Limit::resolve(None, None), Limit::default());
        let profile = Limit::resolve(None, Some(10));
        let err = check(&p, profile).unwrap_err().to_string();
        assert!(
            err.contains("limit of 10 (the profile's max_destructive)"),
            "{err}"
        );
        assert!(check(&p, Limit::resolve(Some(20), Some(10))).is_ok());
        let err = check(&p, Limit::resolve(Some(19), Some(1000))).unwrap_err();
        assert_eq!(err.limit.source, LimitSource::Flag);
        assert!(check(&Plan::default(), Limit::resolve(Some(0), None)).is_ok());
    }
}
