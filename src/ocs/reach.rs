//! A script's declared reach (`@writes`, `@scope`, `@max`): the names it may declare,
//! and which planned changes go beyond it.

use super::OcsError;
use super::attrs::{Attr, PROXY_ADDRESSES, suggest};
use super::dn::Dn;

/// The name under which `@writes` allows the replicator's settings (they live in the
/// replica, not in a directory attribute).
pub const REPLICATOR: &str = "replicator";

/// Every msRTCSIP attribute, known to ocsh or not (`remove()` clears them all).
pub const ALL_OCS: &str = "msRTCSIP-*";

/// Script property names and the directory attributes a write through them changes.
const PROPERTIES: [(&str, &[&str]); 10] = [
    ("sip", &["msRTCSIP-PrimaryUserAddress", PROXY_ADDRESSES]),
    ("enabled", &["msRTCSIP-UserEnabled"]),
    ("home_server", &["msRTCSIP-PrimaryHomeServer"]),
    ("pool", &["msRTCSIP-PrimaryHomeServer"]),
    ("flags", &["msRTCSIP-OptionFlags"]),
    ("federation", &["msRTCSIP-FederationEnabled"]),
    ("remote_access", &["msRTCSIP-InternetAccessEnabled"]),
    ("archiving", &["msRTCSIP-ArchivingEnabled"]),
    ("line", &["msRTCSIP-Line"]),
    ("line_server", &["msRTCSIP-LineServer"]),
];

/// The attributes a `@writes` name stands for: a script property (`sip`, `flags`, ...),
/// an msRTCSIP attribute, `proxyAddresses`, `msRTCSIP-*` (every OCS attribute),
/// `replicator` (its settings), or `none`.
pub fn write_names(name: &str) -> Result<Vec<&'static str>, OcsError> {
    let n = name.trim();
    if n.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    if n.eq_ignore_ascii_case(ALL_OCS) {
        return Ok(vec![ALL_OCS]);
    }
    if n.eq_ignore_ascii_case(PROXY_ADDRESSES) {
        return Ok(vec![PROXY_ADDRESSES]);
    }
    if n.eq_ignore_ascii_case(REPLICATOR) {
        return Ok(vec![REPLICATOR]);
    }
    if let Some((_, attrs)) = PROPERTIES.iter().find(|(p, _)| p.eq_ignore_ascii_case(n)) {
        return Ok(attrs.to_vec());
    }
    if let Some(a) = Attr::from_name(n) {
        return Ok(vec![a.name()]);
    }
    let hint = suggest(n)
        .map(|s| format!("; did you mean {s}?"))
        .unwrap_or_default();
    let props: Vec<&str> = PROPERTIES.iter().map(|(p, _)| *p).collect();
    Err(OcsError::InvalidAttribute(format!(
        "@writes {n:?} is neither an attribute ocsh writes (msRTCSIP-*, proxyAddresses) nor a \
         script property ({}), replicator or none{hint}",
        props.join(", ")
    )))
}

/// What a script declares it may change. Each part is a bound only when declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// The attributes it may write (canonical names), when `@writes` is declared.
    pub writes: Option<Vec<&'static str>>,
    /// The subtrees whose entries it may change (`@scope`, repeatable); none: anywhere.
    pub scopes: Vec<Dn>,
    /// The most entries it may change (`@max`).
    pub max: Option<usize>,
}

/// One way a plan goes beyond a reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Excess {
    /// An entry's changes to attributes outside `@writes`.
    Attributes {
        /// The entry.
        dn: String,
        /// The attributes not declared.
        attrs: Vec<String>,
    },
    /// An entry outside every `@scope`.
    Scope {
        /// The entry.
        dn: String,
    },
    /// More entries than `@max`.
    Count {
        /// Entries the plan changes.
        entries: usize,
        /// The declared bound.
        max: usize,
    },
    /// The replicator settings change while `@writes` does not name `replicator`.
    Replicator,
}

impl std::fmt::Display for Excess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Excess::Attributes { dn, attrs } => {
                write!(f, "{dn}: writes {} (not in @writes)", attrs.join(", "))
            }
            Excess::Scope { dn } => write!(f, "{dn}: outside every @scope"),
            Excess::Count { entries, max } => {
                write!(f, "{entries} entries changed, more than @max {max}")
            }
            Excess::Replicator => write!(f, "the replicator settings change (not in @writes)"),
        }
    }
}

impl Reach {
    /// True when the script declared any bound.
    pub fn is_declared(&self) -> bool {
        self.writes.is_some() || !self.scopes.is_empty() || self.max.is_some()
    }

    /// Adds the names of one `@writes` line (comma- or space-separated).
    pub fn add_writes(&mut self, list: &str) -> Result<(), OcsError> {
        let names: Vec<&str> = list
            .split([',', ' ', '\t'])
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            return Err(OcsError::InvalidAttribute(
                "@writes needs attribute or property names, or none".into(),
            ));
        }
        let writes = self.writes.get_or_insert_with(Vec::new);
        for n in names {
            for a in write_names(n)? {
                if !writes.contains(&a) {
                    writes.push(a);
                }
            }
        }
        Ok(())
    }

    /// Adds one `@scope DN`.
    pub fn add_scope(&mut self, dn: &str) -> Result<(), OcsError> {
        if dn.trim().is_empty() {
            return Err(OcsError::InvalidDn {
                dn: String::new(),
                reason: "@scope needs the DN of a subtree".into(),
            });
        }
        self.scopes.push(Dn::parse(dn.trim())?);
        Ok(())
    }

    /// Sets `@max N` (a positive integer).
    pub fn set_max(&mut self, n: &str) -> Result<(), OcsError> {
        let v = n
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| {
                OcsError::InvalidAttribute(format!(
                    "@max {:?}: give the most entries the script may change, a whole number above 0",
                    n.trim()
                ))
            })?;
        if self.max.is_some() {
            return Err(OcsError::InvalidAttribute("@max is declared twice".into()));
        }
        self.max = Some(v);
        Ok(())
    }

    /// True when `@writes` allows `attr` (any case).
    pub fn allows(&self, attr: &str) -> bool {
        self.writes
            .as_ref()
            .is_none_or(|w| w.iter().any(|a| matches(a, attr)))
    }

    /// True when `dn` lies in a declared scope (or none is declared). A DN that does not
    /// parse is outside.
    pub fn in_scope(&self, dn: &str) -> bool {
        self.scopes.is_empty()
            || Dn::parse(dn).is_ok_and(|d| self.scopes.iter().any(|s| d.is_within(s)))
    }

    /// What the planned entries (`(dn, attributes changed)`) and a replicator settings
    /// change go beyond; empty when they stay within.
    pub fn excesses<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>,
        replicator: bool,
    ) -> Vec<Excess> {
        let mut out = Vec::new();
        let mut count = 0;
        for (dn, attrs) in entries {
            count += 1;
            if !self.in_scope(dn) {
                out.push(Excess::Scope { dn: dn.to_string() });
            }
            let mut outside: Vec<String> = attrs
                .into_iter()
                .filter(|a| !self.allows(a))
                .map(str::to_string)
                .collect();
            outside.dedup();
            if !outside.is_empty() {
                out.push(Excess::Attributes {
                    dn: dn.to_string(),
                    attrs: outside,
                });
            }
        }
        if let Some(max) = self.max.filter(|m| count > *m) {
            out.push(Excess::Count {
                entries: count,
                max,
            });
        }
        if replicator && !self.allows(REPLICATOR) {
            out.push(Excess::Replicator);
        }
        out
    }

    /// The reach in one line, as the plan header shows it.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match &self.writes {
            Some(w) if w.is_empty() => parts.push("writes nothing".to_string()),
            Some(w) => parts.push(format!("writes {}", w.join(", "))),
            None => {}
        }
        if !self.scopes.is_empty() {
            let s: Vec<&str> = self.scopes.iter().map(|d| d.as_str()).collect();
            parts.push(format!("within {}", s.join("; ")));
        }
        if let Some(m) = self.max {
            parts.push(format!(
                "at most {m} entr{}",
                if m == 1 { "y" } else { "ies" }
            ));
        }
        parts.join("; ")
    }
}

/// `attr` (any case) is `allowed`, or starts with its prefix when it ends in `*`.
fn matches(allowed: &str, attr: &str) -> bool {
    match allowed.strip_suffix('*') {
        Some(prefix) => attr
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix)),
        None => allowed.eq_ignore_ascii_case(attr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(writes: &str, scopes: &[&str], max: Option<&str>) -> Reach {
        let mut r = Reach::default();
        r.add_writes(writes).unwrap();
        for s in scopes {
            r.add_scope(s).unwrap();
        }
        if let Some(m) = max {
            r.set_max(m).unwrap();
        }
        r
    }

    #[test]
    fn properties_and_attribute_names_map_to_attributes() {
        let r = reach("sip, flags msRTCSIP-PrimaryHomeServer", &[], None);
        assert_eq!(
            r.writes.as_deref().unwrap(),
            [
                "msRTCSIP-PrimaryUserAddress",
                "proxyAddresses",
                "msRTCSIP-OptionFlags",
                "msRTCSIP-PrimaryHomeServer"
            ]
        );
        assert!(r.allows("msrtcsip-optionflags"));
        assert!(!r.allows("msRTCSIP-UserEnabled"));
        let all = reach("msRTCSIP-*", &[], None);
        assert!(all.allows("msRTCSIP-UserPolicy") && all.allows("msrtcsip-SomethingNew"));
        assert!(!all.allows("proxyAddresses") && !all.allows("msRTCSI"));
        assert_eq!(reach("none", &[], None).describe(), "writes nothing");
        let e = Reach::default()
            .add_writes("msRTCSIP-PrimaryHomeSever")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean msRTCSIP-PrimaryHomeServer"), "{e}");
        assert!(Reach::default().add_writes("mail").is_err());
        assert!(Reach::default().add_writes("  ").is_err());
        assert!(Reach::default().set_max("0").is_err());
        assert!(Reach::default().set_max("ten").is_err());
        assert!(Reach::default().add_scope("not a dn").is_err());
    }

    #[test]
    fn excesses_name_each_entry_and_bound() {
        let r = reach("enabled", &["OU=Sales,DC=example,DC=com"], Some("2"));
        let plan = [
            (
                "CN=a,OU=Sales,DC=example,DC=com",
                vec!["msRTCSIP-UserEnabled"],
            ),
            (
                "CN=b,OU=Sales,DC=example,DC=com",
                vec!["msRTCSIP-UserEnabled", "msRTCSIP-OptionFlags"],
            ),
            (
                "CN=c,OU=Support,DC=example,DC=com",
                vec!["msRTCSIP-UserEnabled"],
            ),
        ];
        let ex = r.excesses(plan.iter().map(|(d, a)| (*d, a.clone())), true);
        let text: Vec<String> = ex.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "CN=b,OU=Sales,DC=example,DC=com: writes msRTCSIP-OptionFlags (not in @writes)",
                "CN=c,OU=Support,DC=example,DC=com: outside every @scope",
                "3 entries changed, more than @max 2",
                "the replicator settings change (not in @writes)",
            ]
        );
        assert!(
            r.excesses(plan.iter().take(1).map(|(d, a)| (*d, a.clone())), false)
                .is_empty()
        );
        assert_eq!(
            r.describe(),
            "writes msRTCSIP-UserEnabled; within OU=Sales,DC=example,DC=com; at most 2 entries"
        );
        // The scope is a subtree: its own entry and those below, in any case.
        assert!(r.in_scope("cn=x,ou=east,ou=sales,dc=EXAMPLE,dc=com"));
        assert!(!r.in_scope("OU=Salesforce,DC=example,DC=com"));
    }
}
