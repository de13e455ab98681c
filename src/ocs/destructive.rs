//! Which changes take service away from a user: the rule the blast-radius guard counts
//! with (`plan/guard.rs`). A plan that disables, removes or moves more users than an
//! administrator expects is the typical mistake of a bulk script (a filter that matched
//! the whole domain); the guard refuses it before the first write.

use serde::Serialize;

use super::attrs::Attr;
use super::values::parse_ad_bool;

/// What a user's changes do to the user's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Destructive {
    /// Moved to another home server (its users sign in again, meetings and contacts move).
    Move,
    /// Temporarily disabled: `msRTCSIP-UserEnabled` TRUE becomes FALSE.
    Disable,
    /// OCS removed: `msRTCSIP-UserEnabled`, the SIP address or the home server cleared.
    Remove,
}

impl Destructive {
    /// The past participle for messages (`disabled`, `removed`, `moved`).
    pub fn done(self) -> &'static str {
        match self {
            Destructive::Move => "moved",
            Destructive::Disable => "disabled",
            Destructive::Remove => "removed",
        }
    }

    /// What one user's changes (`(attribute, before, after)`) do, the worst first:
    /// a removal also clears the home server, so it is not counted as a move too.
    pub fn of<'a>(
        changes: impl IntoIterator<Item = (&'a str, &'a [String], &'a [String])>,
    ) -> Option<Destructive> {
        let mut worst = None;
        for (attr, before, after) in changes {
            let kind =
                match Attr::from_name(attr) {
                    Some(
                        Attr::UserEnabled | Attr::PrimaryUserAddress | Attr::PrimaryHomeServer,
                    ) if !before.is_empty() && after.is_empty() => Some(Destructive::Remove),
                    Some(Attr::UserEnabled) if is_true(before) && !is_true(after) => {
                        Some(Destructive::Disable)
                    }
                    Some(Attr::PrimaryHomeServer) if !before.is_empty() && before != after => {
                        Some(Destructive::Move)
                    }
                    _ => None,
                };
            worst = worst.max(kind);
        }
        worst
    }
}

fn is_true(values: &[String]) -> bool {
    values
        .first()
        .is_some_and(|v| parse_ad_bool(Attr::UserEnabled.name(), v).is_ok_and(|b| b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    fn kind(changes: &[(&str, Vec<String>, Vec<String>)]) -> Option<Destructive> {
        Destructive::of(
            changes
                .iter()
                .map(|(a, b, c)| (*a, b.as_slice(), c.as_slice())),
        )
    }

    #[test]
    fn disable_remove_and_move_are_recognised_and_the_worst_wins() {
        let enabled = "msRTCSIP-UserEnabled";
        let home = "msRTCSIP-PrimaryHomeServer";
        assert_eq!(
            kind(&[(enabled, v(&["TRUE"]), v(&["FALSE"]))]),
            Some(Destructive::Disable)
        );
        assert_eq!(
            kind(&[(enabled, v(&["true"]), v(&["FALSE"]))]),
            Some(Destructive::Disable)
        );
        assert_eq!(
            kind(&[(home, v(&["CN=a"]), v(&["CN=b"]))]),
            Some(Destructive::Move)
        );
        assert_eq!(
            kind(&[
                (home, v(&["CN=a"]), v(&[])),
                (enabled, v(&["TRUE"]), v(&[]))
            ]),
            Some(Destructive::Remove)
        );
        assert_eq!(
            kind(&[
                (home, v(&["CN=a"]), v(&["CN=b"])),
                (enabled, v(&["TRUE"]), v(&["FALSE"]))
            ]),
            Some(Destructive::Disable)
        );
        assert_eq!(
            kind(&[("MSRTCSIP-PRIMARYUSERADDRESS", v(&["sip:a@b.c"]), v(&[]))]),
            Some(Destructive::Remove)
        );
    }

    #[test]
    fn enables_first_homes_re_enables_and_other_attributes_are_not_destructive() {
        let enabled = "msRTCSIP-UserEnabled";
        let home = "msRTCSIP-PrimaryHomeServer";
        assert_eq!(kind(&[(enabled, v(&[]), v(&["TRUE"]))]), None);
        assert_eq!(kind(&[(enabled, v(&["FALSE"]), v(&["TRUE"]))]), None);
        assert_eq!(kind(&[(home, v(&[]), v(&["CN=b"]))]), None);
        assert_eq!(
            kind(&[("msRTCSIP-FederationEnabled", v(&["TRUE"]), v(&[]))]),
            None
        );
        assert_eq!(kind(&[("proxyAddresses", v(&["sip:a@b.c"]), v(&[]))]), None);
        assert_eq!(kind(&[]), None);
    }
}
