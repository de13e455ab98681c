//! The OCS attribute names and which of them a script may write.

use super::OcsError;

/// The msRTCSIP user attributes ocsh knows, with their syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    /// `msRTCSIP-PrimaryUserAddress`: the SIP URI.
    PrimaryUserAddress,
    /// `msRTCSIP-UserEnabled`: TRUE/FALSE, absent when never enabled.
    UserEnabled,
    /// `msRTCSIP-PrimaryHomeServer`: DN of a pool's LC Services object.
    PrimaryHomeServer,
    /// `msRTCSIP-TargetHomeServer`: destination pool during a move.
    TargetHomeServer,
    /// `msRTCSIP-OptionFlags`: the feature bitmask.
    OptionFlags,
    /// `msRTCSIP-FederationEnabled`.
    FederationEnabled,
    /// `msRTCSIP-InternetAccessEnabled` (remote access).
    InternetAccessEnabled,
    /// `msRTCSIP-ArchivingEnabled`: bit 4 internal, bit 8 federated.
    ArchivingEnabled,
    /// `msRTCSIP-Line`: `tel:+E164`.
    Line,
    /// `msRTCSIP-LineServer`: SIP URI of the CSTA gateway.
    LineServer,
    /// `msRTCSIP-OriginatorSid`.
    OriginatorSid,
    /// `msRTCSIP-UserExtension`: multi-valued name=value pairs.
    UserExtension,
    /// `msRTCSIP-UserPolicy`: multi-valued DN-Binary policy links.
    UserPolicy,
    /// `msRTCSIP-DeploymentLocator` (Lync 2010 on): where the user is homed, an
    /// on-premises SIP server or `sipfed.online.lync.com` for an online one. Read-only.
    DeploymentLocator,
    /// `msRTCSIP-UserPolicies` (Lync 2010 on): multi-valued `name=value` pairs, the policy
    /// type and the tag of the policy assigned. Read-only.
    UserPolicies,
}

/// The syntax of an attribute's values, which decides how a written value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// `TRUE` / `FALSE`.
    Boolean,
    /// A decimal integer.
    Integer,
    /// A distinguished name.
    Dn,
    /// A string (checked by the attribute's own rule where it has one).
    Text,
}

impl Attr {
    /// Every known attribute.
    pub const ALL: [Attr; 15] = [
        Attr::PrimaryUserAddress,
        Attr::UserEnabled,
        Attr::PrimaryHomeServer,
        Attr::TargetHomeServer,
        Attr::OptionFlags,
        Attr::FederationEnabled,
        Attr::InternetAccessEnabled,
        Attr::ArchivingEnabled,
        Attr::Line,
        Attr::LineServer,
        Attr::OriginatorSid,
        Attr::UserExtension,
        Attr::UserPolicy,
        Attr::DeploymentLocator,
        Attr::UserPolicies,
    ];

    /// The LDAP name.
    pub fn name(self) -> &'static str {
        match self {
            Attr::PrimaryUserAddress => "msRTCSIP-PrimaryUserAddress",
            Attr::UserEnabled => "msRTCSIP-UserEnabled",
            Attr::PrimaryHomeServer => "msRTCSIP-PrimaryHomeServer",
            Attr::TargetHomeServer => "msRTCSIP-TargetHomeServer",
            Attr::OptionFlags => "msRTCSIP-OptionFlags",
            Attr::FederationEnabled => "msRTCSIP-FederationEnabled",
            Attr::InternetAccessEnabled => "msRTCSIP-InternetAccessEnabled",
            Attr::ArchivingEnabled => "msRTCSIP-ArchivingEnabled",
            Attr::Line => "msRTCSIP-Line",
            Attr::LineServer => "msRTCSIP-LineServer",
            Attr::OriginatorSid => "msRTCSIP-OriginatorSid",
            Attr::UserExtension => "msRTCSIP-UserExtension",
            Attr::UserPolicy => "msRTCSIP-UserPolicy",
            Attr::DeploymentLocator => "msRTCSIP-DeploymentLocator",
            Attr::UserPolicies => "msRTCSIP-UserPolicies",
        }
    }

    /// The value syntax.
    pub fn syntax(self) -> Syntax {
        match self {
            Attr::UserEnabled | Attr::FederationEnabled | Attr::InternetAccessEnabled => {
                Syntax::Boolean
            }
            Attr::OptionFlags | Attr::ArchivingEnabled => Syntax::Integer,
            Attr::PrimaryHomeServer | Attr::TargetHomeServer => Syntax::Dn,
            _ => Syntax::Text,
        }
    }

    /// True for the multi-valued attributes.
    pub fn multi_valued(self) -> bool {
        matches!(
            self,
            Attr::UserExtension | Attr::UserPolicy | Attr::UserPolicies
        )
    }

    /// True for the attributes ocsh shows but never writes: Lync's own tools
    /// (Move-CsUser, Grant-Cs*Policy) maintain them, with state ocsh cannot see.
    pub fn read_only(self) -> bool {
        matches!(self, Attr::DeploymentLocator | Attr::UserPolicies)
    }

    /// Looks an attribute up by name, any case; `None` when it is not a known msRTCSIP one.
    pub fn from_name(name: &str) -> Option<Attr> {
        Attr::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The attribute a script may write under `name`, or an error that says why not and,
    /// for a near miss, which name was meant.
    pub fn writable(name: &str) -> Result<Attr, OcsError> {
        if let Some(a) = Attr::from_name(name) {
            if a.read_only() {
                return Err(OcsError::InvalidAttribute(format!(
                    "{} is read-only in ocsh: Lync's own tools (Move-CsUser, Grant-Cs*Policy) maintain it",
                    a.name()
                )));
            }
            return Ok(a);
        }
        if !name.trim().to_ascii_lowercase().starts_with("msrtcsip-") {
            return Err(OcsError::InvalidAttribute(format!(
                "{name:?} is not an msRTCSIP-* attribute; ocsh writes only OCS attributes"
            )));
        }
        let hint = suggest(name)
            .map(|s| format!("; did you mean {s}?"))
            .unwrap_or_default();
        Err(OcsError::InvalidAttribute(format!(
            "unknown OCS attribute {name:?}{hint}"
        )))
    }
}

/// Other directory attributes ocsh reads for users, beside the msRTCSIP ones.
pub const USER_READ_ATTRS: [&str; 9] = [
    "objectClass",
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "sn",
    "cn",
    "proxyAddresses",
];

/// `proxyAddresses`, where the console also writes the `sip:` address.
pub const PROXY_ADDRESSES: &str = "proxyAddresses";

/// The known name closest to `name` (edit distance at most 3), for "did you mean".
pub fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    Attr::ALL
        .iter()
        .map(|a| {
            (
                edit_distance(&lower, &a.name().to_ascii_lowercase()),
                a.name(),
            )
        })
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_any_case() {
        assert_eq!(
            Attr::from_name("msrtcsip-optionflags"),
            Some(Attr::OptionFlags)
        );
        assert_eq!(Attr::OptionFlags.syntax(), Syntax::Integer);
        assert!(Attr::UserPolicy.multi_valued());
    }

    #[test]
    fn misspelled_names_get_a_suggestion() {
        let err = Attr::writable("msRTCSIP-PrimaryHomeSever")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("did you mean msRTCSIP-PrimaryHomeServer"),
            "{err}"
        );
        let err = Attr::writable("mail").unwrap_err().to_string();
        assert!(err.contains("not an msRTCSIP-* attribute"), "{err}");
        let err = Attr::writable("msRTCSIP-Nonsense").unwrap_err().to_string();
        assert!(
            err.contains("unknown OCS attribute") && !err.contains("did you mean"),
            "{err}"
        );
    }
}
