//! Distinguished names (RFC 4514): parsing, escaping and the comparisons AD uses.
//!
//! DNs come back from servers in different cases (OpenLDAP lower-cases them, AD keeps
//! the case it was given), so every comparison goes through [`Dn::normalized`].

use std::fmt;

use super::OcsError;

/// One relative distinguished name, `CN=LC Services`, with its escapes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    /// The attribute type, as written (`CN`, `OU`, `DC`).
    pub attr: String,
    /// The unescaped value.
    pub value: String,
}

/// A parsed distinguished name; keeps the text it was parsed from for display.
#[derive(Debug, Clone)]
pub struct Dn {
    text: String,
    rdns: Vec<Rdn>,
}

impl Dn {
    /// Parses `text` as an RFC 4514 DN. The empty string is the root DSE's DN.
    pub fn parse(text: &str) -> Result<Dn, OcsError> {
        let rdns = parse_rdns(text)?;
        Ok(Dn {
            text: text.trim().to_string(),
            rdns,
        })
    }

    /// Builds a DN from RDNs, escaping each value.
    pub fn from_rdns(rdns: Vec<Rdn>) -> Dn {
        let text = rdns
            .iter()
            .map(|r| format!("{}={}", r.attr, escape_value(&r.value)))
            .collect::<Vec<_>>()
            .join(",");
        Dn { text, rdns }
    }

    /// The DN as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The RDNs, leaf first.
    pub fn rdns(&self) -> &[Rdn] {
        &self.rdns
    }

    /// The leaf RDN, or `None` for the empty DN.
    pub fn rdn(&self) -> Option<&Rdn> {
        self.rdns.first()
    }

    /// The parent DN, or `None` for the empty DN.
    pub fn parent(&self) -> Option<Dn> {
        if self.rdns.is_empty() {
            return None;
        }
        Some(Dn::from_rdns(self.rdns[1..].to_vec()))
    }

    /// A canonical form for comparisons: types and values lower-cased, escapes normalised.
    pub fn normalized(&self) -> String {
        self.rdns
            .iter()
            .map(|r| {
                format!(
                    "{}={}",
                    r.attr.to_ascii_lowercase(),
                    escape_value(&r.value.to_lowercase())
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// True when `self` is `base` or lies below it.
    pub fn is_within(&self, base: &Dn) -> bool {
        let n = base.rdns.len();
        if n > self.rdns.len() {
            return false;
        }
        let tail = &self.rdns[self.rdns.len() - n..];
        tail.iter().zip(&base.rdns).all(|(a, b)| rdn_eq(a, b))
    }

    /// Number of RDNs.
    pub fn depth(&self) -> usize {
        self.rdns.len()
    }
}

impl PartialEq for Dn {
    fn eq(&self, other: &Dn) -> bool {
        self.rdns.len() == other.rdns.len()
            && self.rdns.iter().zip(&other.rdns).all(|(a, b)| rdn_eq(a, b))
    }
}

impl Eq for Dn {}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn rdn_eq(a: &Rdn, b: &Rdn) -> bool {
    a.attr.eq_ignore_ascii_case(&b.attr) && a.value.to_lowercase() == b.value.to_lowercase()
}

/// Compares two DN strings the way the directory does; unparseable DNs compare as text.
pub fn same_dn(a: &str, b: &str) -> bool {
    match (Dn::parse(a), Dn::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

/// The canonical comparison key of a DN string (see [`Dn::normalized`]).
pub fn normalize(dn: &str) -> Result<String, OcsError> {
    Ok(Dn::parse(dn)?.normalized())
}

/// Escapes an RDN value per RFC 4514 section 2.4.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
        } else {
            if special {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

fn parse_rdns(text: &str) -> Result<Vec<Rdn>, OcsError> {
    let bad = |why: &str, pos: usize| OcsError::InvalidDn {
        dn: text.to_string(),
        reason: format!("{why} at position {}", pos + 1),
    };
    let text_trim = text.trim();
    if text_trim.is_empty() {
        return Ok(Vec::new());
    }
    let bytes: Vec<char> = text_trim.chars().collect();
    let mut rdns = Vec::new();
    let mut i = 0;
    loop {
        // attribute type
        while i < bytes.len() && bytes[i] == ' ' {
            i += 1;
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '-' || bytes[i] == '.')
        {
            i += 1;
        }
        if i == start {
            return Err(bad("expected an attribute type such as CN, OU or DC", i));
        }
        let attr: String = bytes[start..i].iter().collect();
        while i < bytes.len() && bytes[i] == ' ' {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != '=' {
            return Err(bad("expected '=' after the attribute type", i));
        }
        i += 1;
        while i < bytes.len() && bytes[i] == ' ' {
            i += 1;
        }
        // value, with escapes; unescaped trailing spaces are not part of it
        let mut value = String::new();
        let mut pending_spaces = 0usize;
        let mut raw_bytes: Vec<u8> = Vec::new();
        let flush_raw =
            |raw: &mut Vec<u8>, value: &mut String, pos: usize| -> Result<(), OcsError> {
                if raw.is_empty() {
                    return Ok(());
                }
                let s = String::from_utf8(std::mem::take(raw))
                    .map_err(|_| bad("a hex escape that is not UTF-8", pos))?;
                value.push_str(&s);
                Ok(())
            };
        while i < bytes.len() {
            let c = bytes[i];
            if c == ',' || c == ';' {
                break;
            }
            if c == '+' {
                return Err(bad("multi-valued RDNs ('+') are not supported", i));
            }
            if c == '\\' {
                let next = bytes
                    .get(i + 1)
                    .copied()
                    .ok_or_else(|| bad("a '\\' at the end", i))?;
                if next.is_ascii_hexdigit() {
                    let hi = next;
                    let lo = bytes
                        .get(i + 2)
                        .copied()
                        .filter(char::is_ascii_hexdigit)
                        .ok_or_else(|| bad("an incomplete hex escape", i))?;
                    let byte = u8::from_str_radix(&format!("{hi}{lo}"), 16)
                        .map_err(|_| bad("an invalid hex escape", i))?;
                    value.extend(std::iter::repeat_n(' ', pending_spaces));
                    pending_spaces = 0;
                    raw_bytes.push(byte);
                    i += 3;
                    continue;
                }
                flush_raw(&mut raw_bytes, &mut value, i)?;
                value.extend(std::iter::repeat_n(' ', pending_spaces));
                pending_spaces = 0;
                value.push(next);
                i += 2;
                continue;
            }
            flush_raw(&mut raw_bytes, &mut value, i)?;
            if c == ' ' {
                pending_spaces += 1;
            } else {
                value.extend(std::iter::repeat_n(' ', pending_spaces));
                pending_spaces = 0;
                if c == '"' || c == '<' || c == '>' || c == '=' {
                    return Err(bad(&format!("an unescaped '{c}'"), i));
                }
                value.push(c);
            }
            i += 1;
        }
        flush_raw(&mut raw_bytes, &mut value, i)?;
        if value.is_empty() {
            return Err(bad(&format!("an empty value for {attr}"), i));
        }
        rdns.push(Rdn { attr, value });
        if i >= bytes.len() {
            break;
        }
        i += 1; // the separator
        if i >= bytes.len() {
            return Err(bad("a trailing ','", i - 1));
        }
    }
    Ok(rdns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares_case_insensitively() {
        let a =
            Dn::parse("CN=LC Services,CN=Microsoft,CN=pool01,CN=Pools,DC=Example,DC=com").unwrap();
        let b =
            Dn::parse("cn=lc services, cn=microsoft,cn=POOL01,cn=pools,dc=example,dc=com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.normalized(), b.normalized());
        assert_eq!(a.rdn().unwrap().value, "LC Services");
        assert_eq!(a.depth(), 6);
    }

    #[test]
    fn escapes_round_trip() {
        let dn = Dn::parse(r"CN=Doe\, Jane,OU=Sales,DC=example,DC=com").unwrap();
        assert_eq!(dn.rdn().unwrap().value, "Doe, Jane");
        let rebuilt = Dn::from_rdns(dn.rdns().to_vec());
        assert_eq!(
            rebuilt.as_str(),
            r"CN=Doe\, Jane,OU=Sales,DC=example,DC=com"
        );
        let hex = Dn::parse(r"CN=J\C3\A9r\C3\B4me,DC=example,DC=com").unwrap();
        assert_eq!(hex.rdn().unwrap().value, "Jérôme");
    }

    #[test]
    fn within_and_parent() {
        let dn = Dn::parse("CN=a,OU=Sales,DC=example,DC=com").unwrap();
        let base = Dn::parse("dc=EXAMPLE,dc=com").unwrap();
        assert!(dn.is_within(&base));
        assert!(!base.is_within(&dn));
        assert_eq!(
            dn.parent().unwrap(),
            Dn::parse("OU=Sales,DC=example,DC=com").unwrap()
        );
        assert!(Dn::parse("").unwrap().parent().is_none());
    }

    #[test]
    fn rejects_garbage_with_position() {
        for bad in [
            "pool01.example.com",
            "CN=",
            "=x",
            "CN=a,",
            "CN=a\\",
            "CN=a+OU=b",
        ] {
            let err = Dn::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("position") || err.contains("empty"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn escape_value_specials() {
        assert_eq!(escape_value(" a,b "), r"\ a\,b\ ");
        assert_eq!(escape_value("#x"), r"\#x");
    }
}
