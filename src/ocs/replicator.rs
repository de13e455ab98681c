//! The User Replicator's settings (MSFT_SIPUserReplicatorSetting).

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::OcsError;
use super::sip::SipUri;
use super::user::Problem;

/// Shortest allowed cycle, in seconds.
pub const MIN_INTERVAL: u32 = 5;
/// Longest allowed cycle, in seconds (one day).
pub const MAX_INTERVAL: u32 = 86_400;
/// The default cycle.
pub const DEFAULT_INTERVAL: u32 = 60;

/// A GUID written with braces, `{01234567-0123-4567-89AB-CDEF01234567}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId([u8; 16]);

impl InstanceId {
    /// Parses a braced GUID (hex digits in any case).
    pub fn parse(text: &str) -> Result<InstanceId, OcsError> {
        let bad = || {
            OcsError::InvalidSetting(format!(
                "InstanceID {text:?} is not a GUID in braces such as {{01234567-0123-4567-89AB-CDEF01234567}}"
            ))
        };
        let inner = text
            .trim()
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .ok_or_else(bad)?;
        let groups: Vec<&str> = inner.split('-').collect();
        if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
            return Err(bad());
        }
        let hex: String = groups.concat();
        let mut bytes = [0u8; 16];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = hex
                .get(i * 2..i * 2 + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad)?;
        }
        Ok(InstanceId(bytes))
    }

    /// An id from 16 bytes (taken in the order they are written).
    pub fn from_bytes(bytes: [u8; 16]) -> InstanceId {
        InstanceId(bytes)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        write!(
            f,
            "{{{}-{}-{}-{}-{}}}",
            h[..4].concat(),
            h[4..6].concat(),
            h[6..8].concat(),
            h[8..10].concat(),
            h[10..].concat()
        )
    }
}

/// The replicator's settings, as the WMI class has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicatorSettings {
    /// The back end the replica belongs to (read-only).
    pub backend: String,
    /// The instance's braced GUID (read-only).
    #[serde(serialize_with = "as_text")]
    pub instance_id: InstanceId,
    interval: u32,
    regenerate: bool,
}

fn as_text<S: serde::Serializer>(id: &InstanceId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

impl ReplicatorSettings {
    /// Settings with the default interval and no regeneration pending.
    pub fn new(backend: impl Into<String>, instance_id: InstanceId) -> ReplicatorSettings {
        ReplicatorSettings {
            backend: backend.into(),
            instance_id,
            interval: DEFAULT_INTERVAL,
            regenerate: false,
        }
    }

    /// `ReplicationCycleInterval` in seconds.
    pub fn interval(&self) -> u32 {
        self.interval
    }

    /// Sets the interval; outside 5..86400 it is refused and the old value kept.
    pub fn set_interval(&mut self, seconds: i64) -> Result<(), OcsError> {
        self.interval = check_interval(seconds)?;
        Ok(())
    }

    /// `RegenerateCookiesNow` as it reads now.
    pub fn regenerate_pending(&self) -> bool {
        self.regenerate
    }

    /// Asks for one full initial cycle at the next run.
    pub fn regenerate_cookies_now(&mut self) {
        self.regenerate = true;
    }

    /// Called by a cycle: true when this cycle must be an initial one, and the flag reads
    /// false from now on.
    pub fn take_regenerate(&mut self) -> bool {
        std::mem::take(&mut self.regenerate)
    }
}

/// Checks a `ReplicationCycleInterval` value.
pub fn check_interval(seconds: i64) -> Result<u32, OcsError> {
    u32::try_from(seconds)
        .ok()
        .filter(|s| (MIN_INTERVAL..=MAX_INTERVAL).contains(s))
        .ok_or_else(|| OcsError::InvalidSetting(format!(
            "ReplicationCycleInterval {seconds} is out of range: it must be {MIN_INTERVAL}..{MAX_INTERVAL} seconds"
        )))
}

/// The kinds of problem a replicator cycle reports about the users it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Enabled without `msRTCSIP-PrimaryUserAddress`.
    EnabledWithoutSip,
    /// Enabled without `msRTCSIP-PrimaryHomeServer`.
    EnabledWithoutHomeServer,
    /// The home server is not the LC Services object of a pool (an unassigned user).
    HomeServerNotAPool,
    /// The SIP address does not parse.
    InvalidSip,
    /// The SIP address's domain is not one the forest serves.
    SipDomainNotServed,
    /// Enabled, and OptionFlags lacks enhanced presence (256).
    FlagsLackEnhancedPresence,
    /// Several users hold the same SIP address.
    DuplicateSip,
}

impl ProblemKind {
    /// Every kind, in report order.
    pub const ALL: [ProblemKind; 7] = [
        ProblemKind::EnabledWithoutSip,
        ProblemKind::EnabledWithoutHomeServer,
        ProblemKind::HomeServerNotAPool,
        ProblemKind::InvalidSip,
        ProblemKind::SipDomainNotServed,
        ProblemKind::FlagsLackEnhancedPresence,
        ProblemKind::DuplicateSip,
    ];

    /// The kind of a user's problem.
    pub fn of(problem: &Problem) -> ProblemKind {
        match problem {
            Problem::EnabledWithoutSip => ProblemKind::EnabledWithoutSip,
            Problem::EnabledWithoutHomeServer => ProblemKind::EnabledWithoutHomeServer,
            Problem::HomeServerNotAPool(_) => ProblemKind::HomeServerNotAPool,
            Problem::InvalidSip(_) => ProblemKind::InvalidSip,
            Problem::SipDomainNotServed(_) => ProblemKind::SipDomainNotServed,
            Problem::FlagsLackEnhancedPresence(_) => ProblemKind::FlagsLackEnhancedPresence,
        }
    }

    /// The name used in the replica, in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::EnabledWithoutSip => "enabled_without_sip",
            ProblemKind::EnabledWithoutHomeServer => "enabled_without_home_server",
            ProblemKind::HomeServerNotAPool => "home_server_not_a_pool",
            ProblemKind::InvalidSip => "invalid_sip",
            ProblemKind::SipDomainNotServed => "sip_domain_not_served",
            ProblemKind::FlagsLackEnhancedPresence => "flags_lack_enhanced_presence",
            ProblemKind::DuplicateSip => "duplicate_sip",
        }
    }

    /// The inverse of [`ProblemKind::name`].
    pub fn from_name(name: &str) -> Option<ProblemKind> {
        ProblemKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One SIP address held by several users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateSip {
    /// The address as the first holder has it.
    pub sip: String,
    /// The DNs of its holders, in the order given.
    pub holders: Vec<String>,
}

/// The SIP addresses that more than one user holds. Addresses compare without regard to
/// case (as OCS and [`SipUri::key`] do); a value that is not a valid URI compares by its
/// trimmed lower-case text. `holders` are `(dn, msRTCSIP-PrimaryUserAddress)` pairs.
pub fn duplicate_sips<'a>(
    holders: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<DuplicateSip> {
    let mut order: Vec<String> = Vec::new();
    let mut by_key: HashMap<String, DuplicateSip> = HashMap::new();
    for (dn, sip) in holders {
        let key = SipUri::parse(sip).map_or_else(|_| sip.trim().to_lowercase(), |s| s.key());
        match by_key.get_mut(&key) {
            Some(d) => d.holders.push(dn.to_string()),
            None => {
                order.push(key.clone());
                by_key.insert(
                    key,
                    DuplicateSip {
                        sip: sip.trim().to_string(),
                        holders: vec![dn.to_string()],
                    },
                );
            }
        }
    }
    order
        .into_iter()
        .filter_map(|k| by_key.remove(&k))
        .filter(|d| d.holders.len() > 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_ignore_case_and_keep_order() {
        let dups = duplicate_sips([
            ("CN=A", "sip:Jane@example.com"),
            ("CN=B", "sip:bob@example.com"),
            ("CN=C", "SIP:jane@EXAMPLE.com"),
            ("CN=D", "sip:x y@example.com"),
            ("CN=E", " sip:X Y@example.com "),
            ("CN=F", "sip:carol@example.com"),
        ]);
        assert_eq!(
            dups,
            vec![
                DuplicateSip {
                    sip: "sip:Jane@example.com".into(),
                    holders: vec!["CN=A".into(), "CN=C".into()]
                },
                DuplicateSip {
                    sip: "sip:x y@example.com".into(),
                    holders: vec!["CN=D".into(), "CN=E".into()]
                },
            ]
        );
        assert!(duplicate_sips([("CN=A", "sip:a@example.com")]).is_empty());
    }

    #[test]
    fn problem_kinds_round_trip() {
        for k in ProblemKind::ALL {
            assert_eq!(ProblemKind::from_name(k.name()), Some(k));
        }
        assert_eq!(
            ProblemKind::of(&Problem::HomeServerNotAPool("x".into())),
            ProblemKind::HomeServerNotAPool
        );
    }

    #[test]
    fn instance_id_round_trip() {
        let id = InstanceId::parse("{01234567-0123-4567-89ab-CDEF01234567}").unwrap();
        assert_eq!(id.to_string(), "{01234567-0123-4567-89AB-CDEF01234567}");
        for bad in [
            "01234567-0123-4567-89AB-CDEF01234567",
            "{0123-4567}",
            "{0123456G-0123-4567-89AB-CDEF01234567}",
            "{é1234567-0123-4567-89AB-CDEF0123456}",
        ] {
            assert!(InstanceId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interval_range() {
        let mut s = ReplicatorSettings::new("sql01\\rtc", InstanceId::from_bytes([0; 16]));
        assert_eq!(s.interval(), 60);
        let err = s.set_interval(4).unwrap_err().to_string();
        assert!(err.contains("5..86400"), "{err}");
        assert!(s.set_interval(86_401).is_err());
        assert_eq!(s.interval(), 60);
        s.set_interval(5).unwrap();
        s.set_interval(86_400).unwrap();
        assert_eq!(s.interval(), 86_400);
    }

    #[test]
    fn regenerate_reads_false_after_one_use() {
        let mut s = ReplicatorSettings::new("b", InstanceId::from_bytes([1; 16]));
        assert!(!s.take_regenerate());
        s.regenerate_cookies_now();
        assert!(s.regenerate_pending());
        assert!(s.take_regenerate());
        assert!(!s.regenerate_pending());
        assert!(!s.take_regenerate());
    }
}
