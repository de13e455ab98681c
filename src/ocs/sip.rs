//! SIP addresses (`msRTCSIP-PrimaryUserAddress`): validation and derivation.

use std::fmt;

use super::OcsError;

/// A valid `sip:local@domain.tld` address.
///
/// ```
/// use ocsh::ocs::SipUri;
/// assert_eq!(SipUri::parse("sip:jane.doe@example.com").unwrap().domain(), "example.com");
/// let err = SipUri::parse("sip:jane doe@example.com").unwrap_err();
/// assert!(err.to_string().contains("space at position 9"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    local: String,
    domain: String,
}

/// How to derive a SIP address from a user's attributes, as Enable-CsUser's
/// `-SipAddressType` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipDerivation {
    /// From `mail`.
    Mail,
    /// From `userPrincipalName`.
    Upn,
    /// `givenName.sn@domain`.
    FirstLast(String),
    /// `sAMAccountName@domain`.
    Sam(String),
}

fn invalid(value: &str, reason: impl Into<String>) -> OcsError {
    OcsError::InvalidSip {
        value: value.to_string(),
        reason: reason.into(),
    }
}

const CURLY: [char; 6] = [
    '\u{201C}', '\u{201D}', '\u{2018}', '\u{2019}', '\u{00AB}', '\u{00BB}',
];

impl SipUri {
    /// Parses and validates `sip:local@domain`. The scheme is matched in any case and
    /// written in lower case; local part and domain keep their case.
    pub fn parse(value: &str) -> Result<SipUri, OcsError> {
        if let Some((i, c)) = value.chars().enumerate().find(|(_, c)| CURLY.contains(c)) {
            return Err(invalid(
                value,
                format!(
                    "it contains the curly quote {c} at position {} (pasted from a word processor?); use plain ASCII",
                    i + 1
                ),
            ));
        }
        if let Some(i) = value.chars().position(char::is_whitespace) {
            return Err(invalid(
                value,
                format!("it contains a space at position {}", i + 1),
            ));
        }
        if value.is_empty() {
            return Err(invalid(value, "it is empty"));
        }
        let Some(rest) = value
            .get(..4)
            .filter(|s| s.eq_ignore_ascii_case("sip:"))
            .and_then(|_| value.get(4..))
        else {
            let hint = if value.contains('@') {
                format!("; did you mean \"sip:{value}\"?")
            } else {
                String::new()
            };
            return Err(invalid(value, format!("it must start with \"sip:\"{hint}")));
        };
        let ats = rest.matches('@').count();
        if ats != 1 {
            return Err(invalid(
                value,
                format!("it must contain exactly one '@', found {ats}"),
            ));
        }
        let (local, domain) = rest
            .split_once('@')
            .ok_or_else(|| invalid(value, "no '@'"))?;
        if local.is_empty() {
            return Err(invalid(value, "the part before '@' is empty"));
        }
        if let Some(c) = local
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._-+'&!~*%".contains(*c)))
        {
            return Err(invalid(
                value,
                format!("the user part contains {c:?}, which a SIP URI user part cannot hold"),
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(invalid(
                value,
                "the user part cannot start or end with '.' or hold '..'",
            ));
        }
        check_domain(value, domain)?;
        Ok(SipUri {
            local: local.to_string(),
            domain: domain.to_string(),
        })
    }

    /// The part before `@`.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The SIP domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The case-insensitive comparison key (SIP addresses are unique regardless of case).
    pub fn key(&self) -> String {
        self.to_string().to_lowercase()
    }

    /// The `proxyAddresses` value the management console writes beside it.
    pub fn proxy_address(&self) -> String {
        format!("sip:{}@{}", self.local, self.domain)
    }

    /// Builds `sip:local@domain` from an e-mail-like `local@domain` value.
    fn from_address(user: &str, source: &str, value: Option<&str>) -> Result<SipUri, OcsError> {
        let value = value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OcsError::CannotDeriveSip {
                user: user.to_string(),
                reason: format!("it has no {source}"),
            })?;
        SipUri::parse(&format!("sip:{value}")).map_err(|e| OcsError::CannotDeriveSip {
            user: user.to_string(),
            reason: format!("its {source} {value:?} does not make a SIP address ({e})"),
        })
    }

    /// Derives an address for `user` (named in errors) by `how` from the user's attributes.
    pub fn derive(
        how: &SipDerivation,
        user: &str,
        mail: Option<&str>,
        upn: Option<&str>,
        given_name: Option<&str>,
        sn: Option<&str>,
        sam: Option<&str>,
    ) -> Result<SipUri, OcsError> {
        match how {
            SipDerivation::Mail => SipUri::from_address(user, "mail", mail),
            SipDerivation::Upn => SipUri::from_address(user, "userPrincipalName", upn),
            SipDerivation::FirstLast(domain) => {
                let part = |label: &str, v: Option<&str>| {
                    let v = v.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| {
                        OcsError::CannotDeriveSip {
                            user: user.to_string(),
                            reason: format!("it has no {label}"),
                        }
                    })?;
                    fold_name(v).ok_or_else(|| OcsError::CannotDeriveSip {
                        user: user.to_string(),
                        reason: format!("its {label} {v:?} has characters with no ASCII form"),
                    })
                };
                let local = format!("{}.{}", part("givenName", given_name)?, part("sn", sn)?);
                SipUri::from_address(
                    user,
                    "first and last name",
                    Some(&format!("{local}@{domain}")),
                )
            }
            SipDerivation::Sam(domain) => {
                let sam = sam
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| OcsError::CannotDeriveSip {
                        user: user.to_string(),
                        reason: "it has no sAMAccountName".into(),
                    })?;
                SipUri::from_address(
                    user,
                    "sAMAccountName",
                    Some(&format!("{}@{domain}", sam.to_lowercase())),
                )
            }
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sip:{}@{}", self.local, self.domain)
    }
}

fn check_domain(value: &str, domain: &str) -> Result<(), OcsError> {
    if !domain.contains('.') {
        return Err(invalid(
            value,
            format!("the domain {domain:?} has no dot; a SIP domain looks like example.com"),
        ));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(invalid(
                value,
                format!("the domain {domain:?} has an empty label"),
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(
                value,
                format!("the domain label {label:?} starts or ends with '-'"),
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(invalid(
                value,
                format!("the domain {domain:?} contains {c:?}"),
            ));
        }
    }
    Ok(())
}

/// Lower-cases a name and folds common Latin letters with diacritics to ASCII; spaces,
/// apostrophes and hyphens are dropped. `None` when a character has no ASCII form.
pub fn fold_name(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let folded: &str = match c {
            'a'..='z' | '0'..='9' => {
                out.push(c);
                continue;
            }
            ' ' | '\'' | '-' | '\u{2019}' | '.' => continue,
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' => "a",
            'æ' => "ae",
            'ç' | 'ć' | 'č' => "c",
            'ď' | 'đ' | 'ð' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
            'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
            'ł' | 'ľ' => "l",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
            'œ' => "oe",
            'ř' => "r",
            'ś' | 'š' | 'ş' => "s",
            'ß' => "ss",
            'ť' | 'ţ' => "t",
            'þ' => "th",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
            'ý' | 'ÿ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            _ => return None,
        };
        out.push_str(folded);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses() {
        let s = SipUri::parse("sip:jane.doe@example.com").unwrap();
        assert_eq!(s.to_string(), "sip:jane.doe@example.com");
        assert_eq!(
            SipUri::parse("SIP:Jane@Example.COM").unwrap().key(),
            "sip:jane@example.com"
        );
        assert_eq!(s.proxy_address(), "sip:jane.doe@example.com");
    }

    #[test]
    fn invalid_addresses_say_why() {
        let cases = [
            ("sip:jane doe@example.com", "space at position 9"),
            ("\u{201C}sip:jane@example.com\u{201D}", "curly quote"),
            ("jane@example.com", "did you mean \"sip:jane@example.com\""),
            ("sip:jane@doe@example.com", "exactly one '@', found 2"),
            ("sip:jane.example.com", "exactly one '@', found 0"),
            ("sip:@example.com", "before '@' is empty"),
            ("sip:jane@localhost", "has no dot"),
            ("sip:jane@example..com", "empty label"),
            ("sip:ja<ne@example.com", "user part contains '<'"),
            ("sip:jane@exa_mple.com", "contains '_'"),
            ("", "empty"),
        ];
        for (value, want) in cases {
            let err = SipUri::parse(value).unwrap_err().to_string();
            assert!(err.contains(want), "{value:?}: {err}");
        }
    }

    #[test]
    fn derivations() {
        let d = |how: SipDerivation| {
            SipUri::derive(
                &how,
                "jdoe",
                Some("Jane.Doe@example.com"),
                Some("jdoe@corp.example.com"),
                Some("Jérôme"),
                Some("Müller-Smith"),
                Some("JDoe"),
            )
        };
        assert_eq!(
            d(SipDerivation::Mail).unwrap().to_string(),
            "sip:Jane.Doe@example.com"
        );
        assert_eq!(
            d(SipDerivation::Upn).unwrap().to_string(),
            "sip:jdoe@corp.example.com"
        );
        assert_eq!(
            d(SipDerivation::FirstLast("example.com".into()))
                .unwrap()
                .to_string(),
            "sip:jerome.mullersmith@example.com"
        );
        assert_eq!(
            d(SipDerivation::Sam("fabrikam.com".into()))
                .unwrap()
                .to_string(),
            "sip:jdoe@fabrikam.com"
        );
    }

    #[test]
    fn derivation_failures_name_the_user() {
        let err = SipUri::derive(&SipDerivation::Mail, "bob", None, None, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bob") && err.contains("no mail"), "{err}");
        let err = SipUri::derive(
            &SipDerivation::Mail,
            "bob",
            Some("bob smith@x.com"),
            None,
            None,
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("does not make a SIP address"), "{err}");
        let err = SipUri::derive(
            &SipDerivation::FirstLast("x.com".into()),
            "li",
            None,
            None,
            Some("李"),
            Some("x"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no ASCII form"), "{err}");
    }
}
