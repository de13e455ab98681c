//! The declared reach of a run, applied to its plan: every entry, attribute and count the
//! plan changes is checked against each reach the run's scripts declared (`ocs::reach`),
//! before anything is written.

use std::fmt;

use crate::ocs::reach::{Excess, Reach};

use super::Plan;

/// Entries named in a refusal before the rest are counted.
const SHOWN: usize = 20;

/// A plan that goes beyond a declared reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachRefusal {
    /// The reach, as the plan header shows it.
    pub reach: String,
    /// What goes beyond it.
    pub excesses: Vec<Excess>,
}

impl fmt::Display for ReachRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the plan goes beyond the script's declared reach ({}):",
            self.reach
        )?;
        for e in self.excesses.iter().take(SHOWN) {
            write!(f, "\n  {e}")?;
        }
        if self.excesses.len() > SHOWN {
            write!(f, "\n  ... and {} more", self.excesses.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// What `plan` changes beyond `reach`.
pub fn excesses(plan: &Plan, reach: &Reach) -> Vec<Excess> {
    reach.excesses(
        plan.entries().map(|e| {
            (
                e.dn.as_str(),
                e.changes.iter().map(|c| c.attr.as_str()).collect(),
            )
        }),
        plan.settings_change().is_some(),
    )
}

/// Refuses a plan that goes beyond any reach declared for it.
pub fn check(plan: &Plan) -> Result<(), ReachRefusal> {
    for reach in plan.reaches() {
        let excesses = excesses(plan, reach);
        if !excesses.is_empty() {
            return Err(ReachRefusal {
                reach: reach.describe(),
                excesses,
            });
        }
    }
    Ok(())
}
