//! AD's textual forms of values: Booleans as `TRUE`/`FALSE`, integers in decimal.

use super::OcsError;

/// AD's form of a Boolean.
pub fn ad_bool(value: bool) -> String {
    if value { "TRUE" } else { "FALSE" }.to_string()
}

/// Reads an AD Boolean. AD itself only writes upper case; lower case is accepted on read.
pub fn parse_ad_bool(attr: &str, value: &str) -> Result<bool, OcsError> {
    match value.trim() {
        v if v.eq_ignore_ascii_case("TRUE") => Ok(true),
        v if v.eq_ignore_ascii_case("FALSE") => Ok(false),
        _ => Err(OcsError::InvalidValue {
            attr: attr.to_string(),
            value: value.to_string(),
            reason: "a Boolean must be TRUE or FALSE".into(),
        }),
    }
}

/// AD's form of a 32-bit Integer value: signed, as AD stores it (the bits of
/// `2147483905` are written `-2147483391`), so that a value read back is written back
/// in the same form.
pub fn ad_int(bits: u32) -> String {
    i32::from_ne_bytes(bits.to_ne_bytes()).to_string()
}

/// Reads an AD integer (32-bit signed, as AD's Integer syntax stores it).
pub fn parse_ad_int(attr: &str, value: &str) -> Result<i64, OcsError> {
    let v = value.trim();
    let parsed: i64 = v.parse().map_err(|_| OcsError::InvalidValue {
        attr: attr.to_string(),
        value: value.to_string(),
        reason: "expected a decimal integer".into(),
    })?;
    if !(i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&parsed) {
        return Err(OcsError::InvalidValue {
            attr: attr.to_string(),
            value: value.to_string(),
            reason: "out of the range of AD's 32-bit Integer syntax".into(),
        });
    }
    Ok(parsed)
}

/// True when two value lists of `attr` are the same values: DN-syntax attributes compare
/// as DNs (servers return them in their own case), others exactly.
pub fn same_values(attr: &str, a: &[String], b: &[String]) -> bool {
    let is_dn =
        super::Attr::from_name(attr).is_some_and(|x| x.syntax() == super::attrs::Syntax::Dn);
    if !is_dn {
        return a == b;
    }
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| super::dn::same_dn(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        assert_eq!(ad_bool(true), "TRUE");
        assert_eq!(ad_bool(false), "FALSE");
        assert!(parse_ad_bool("x", "true").unwrap());
        assert!(!parse_ad_bool("x", "FALSE").unwrap());
        assert!(parse_ad_bool("x", "yes").is_err());
    }

    #[test]
    fn dn_values_compare_as_dns() {
        let a = vec!["CN=LC Services,CN=Microsoft,cn=pool01,cn=Pools,DC=x".to_string()];
        let b = vec!["cn=LC Services,cn=Microsoft,CN=pool01,CN=Pools,dc=x".to_string()];
        assert!(same_values("msRTCSIP-PrimaryHomeServer", &a, &b));
        assert!(!same_values("msRTCSIP-Line", &a, &b));
    }

    #[test]
    fn integers() {
        assert_eq!(parse_ad_int("x", " 385 ").unwrap(), 385);
        assert!(parse_ad_int("x", "4294967296").is_err());
        assert!(parse_ad_int("x", "12a").is_err());
    }
}
