//! The demo forest grown to a directory's size (`ocsh demo FILE --users N`): the demo's
//! entries plus N generated users spread over its OUs, so that every shipped script has
//! work at any size (benchmarks, tests at scale, trying ocsh on a realistic forest).
//!
//! User `i` (from 1) is `CN=Scale User {i:06}` with sAMAccountName `su{i:06}` and mail
//! `su{i:06}@example.com`, in `OU=` [`SCALE_OUS`]`[i % 6]`. Of every ten users of an OU,
//! five are enabled, two are disabled (address kept) and three were never enabled.
//! Enabled users of Engineering and Migrated are homed on pool02 (what `move-users` and
//! `fix-ou-home-server` change); others on pool01 or pool03. Every thousandth user
//! (`i % 1000 == 0`) holds the SIP address of user `i - 1` as well: one planted duplicate
//! per thousand users, found by `report-duplicate-sip`.

use std::fmt::Write;

use super::demo::DEMO_LDIF;

/// The OUs generated users go to, in turn.
pub const SCALE_OUS: [&str; 6] = [
    "Sales",
    "Engineering",
    "Support",
    "Fabrikam",
    "Migrated",
    "Leavers",
];

fn home(pool: &str) -> String {
    format!(
        "CN=LC Services,CN=Microsoft,CN={pool},CN=Pools,CN=RTC Service,CN=Services,CN=Configuration,DC=example,DC=com"
    )
}

/// What generated user `i` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleState {
    /// Enabled, with a SIP address and a home pool.
    Enabled,
    /// Disabled, its address and pool kept.
    Disabled,
    /// Never enabled: no OCS attributes.
    Never,
}

/// The state of generated user `i`: planted duplicates and the users they copy are
/// always enabled.
pub fn scale_state(i: usize) -> ScaleState {
    if i % 1000 == 0 || i % 1000 == 999 {
        return ScaleState::Enabled;
    }
    match (i / SCALE_OUS.len()) % 10 {
        0..=4 => ScaleState::Enabled,
        5 | 6 => ScaleState::Disabled,
        _ => ScaleState::Never,
    }
}

/// The sAMAccountName of generated user `i`.
pub fn scale_sam(i: usize) -> String {
    format!("su{i:06}")
}

/// The demo forest plus `users` generated users, as LDIF.
pub fn scaled_ldif(users: usize) -> String {
    let mut out = String::with_capacity(DEMO_LDIF.len() + users * 700);
    out.push_str(DEMO_LDIF);
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    for i in 1..=users {
        let ou = SCALE_OUS[i % SCALE_OUS.len()];
        let sam = scale_sam(i);
        let _ = write!(
            out,
            "dn: CN=Scale User {i:06},OU={ou},DC=example,DC=com\n\
             objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n\
             cn: Scale User {i:06}\nsn: User {i:06}\ngivenName: Scale\ndisplayName: Scale User {i:06}\n\
             sAMAccountName: {sam}\nuserPrincipalName: {sam}@example.com\nmail: {sam}@example.com\n\
             userAccountControl: 512\n"
        );
        let address = if i % 1000 == 0 {
            scale_sam(i - 1)
        } else {
            sam.clone()
        };
        let pool = match ou {
            "Engineering" | "Migrated" => "pool02",
            _ if i % 2 == 0 => "pool01",
            _ => "pool03",
        };
        let enabled = match scale_state(i) {
            ScaleState::Never => None,
            ScaleState::Enabled => Some("TRUE"),
            ScaleState::Disabled => Some("FALSE"),
        };
        if let Some(enabled) = enabled {
            let _ = write!(
                out,
                "proxyAddresses: SIP:{address}@example.com\n\
                 msRTCSIP-UserEnabled: {enabled}\n\
                 msRTCSIP-PrimaryUserAddress: sip:{address}@example.com\n\
                 msRTCSIP-PrimaryHomeServer: {}\n\
                 msRTCSIP-OptionFlags: 256\n",
                home(pool)
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scaled_forest_loads_with_its_users_and_planted_duplicates() {
        let text = scaled_ldif(2000);
        let dir = super::super::EmbeddedDirectory::from_ldif(&text, "scaled").unwrap();
        drop(dir);
        assert_eq!(text.matches("sAMAccountName: su").count(), 2000);
        assert_eq!(
            text.matches("msRTCSIP-PrimaryUserAddress: sip:su000999@")
                .count(),
            2
        );
        assert_eq!(scale_state(1000), ScaleState::Enabled);
    }
}
