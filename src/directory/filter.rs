//! RFC 4515 search filters, parsed once and evaluated with Active Directory's semantics.
//!
//! The embedded backend must answer the same filters as a domain controller and give
//! the same answers, or a plan tested against an LDIF export would select different
//! users in production. So evaluation follows AD where AD differs from a naive reading
//! of the RFC: case-insensitive strings, DN-valued attributes compared as DNs, the
//! `objectCategory=person` shortcut, and AD's bitwise matching rules.

use std::cmp::Ordering;
use std::fmt;

use super::entry::Entry;
use super::error::DirError;
use crate::ocs::dn::{Dn, same_dn};

/// AD's LDAP_MATCHING_RULE_BIT_AND: true when every bit of the assertion is set.
pub const MATCHING_RULE_BIT_AND: &str = "1.2.840.113556.1.4.803";

/// AD's LDAP_MATCHING_RULE_BIT_OR: true when any bit of the assertion is set.
pub const MATCHING_RULE_BIT_OR: &str = "1.2.840.113556.1.4.804";

/// Nesting beyond this is refused before it can exhaust the stack; real filters stay
/// well below it.
const MAX_DEPTH: usize = 64;

/// Attributes whose values are DNs: equal when they name the same object, whatever the
/// case or spacing the writer used.
const DN_ATTRIBUTES: &[&str] = &[
    "distinguishedName",
    "msRTCSIP-PrimaryHomeServer",
    "msRTCSIP-TargetHomeServer",
    "member",
    "memberOf",
    "manager",
    "objectCategory",
];

/// True for the attributes whose values are compared as DNs
/// ([`crate::ocs::dn::same_dn`]) rather than as strings.
pub fn is_dn_attribute(name: &str) -> bool {
    DN_ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// A parsed RFC 4515 filter. Attribute names are kept as written; assertion values are
/// stored unescaped (`\2a` is held as `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `(&...)`: all of them; the empty `(&)` is true (RFC 4526).
    And(Vec<Filter>),
    /// `(|...)`: any of them; the empty `(|)` is false (RFC 4526).
    Or(Vec<Filter>),
    /// `(!...)`: the negation.
    Not(Box<Filter>),
    /// `(attr=value)`.
    Equal {
        /// The attribute name.
        attr: String,
        /// The assertion value.
        value: String,
    },
    /// `(attr~=value)`; AD treats it as equality, and so does ocsh.
    Approx {
        /// The attribute name.
        attr: String,
        /// The assertion value.
        value: String,
    },
    /// `(attr>=value)`.
    GreaterOrEqual {
        /// The attribute name.
        attr: String,
        /// The assertion value.
        value: String,
    },
    /// `(attr<=value)`.
    LessOrEqual {
        /// The attribute name.
        attr: String,
        /// The assertion value.
        value: String,
    },
    /// `(attr=*)`.
    Present {
        /// The attribute name.
        attr: String,
    },
    /// `(attr=initial*any*...*final)`.
    Substring {
        /// The attribute name.
        attr: String,
        /// The text the value starts with, if given.
        initial: Option<String>,
        /// Texts that must appear in order between `initial` and `final_`.
        any: Vec<String>,
        /// The text the value ends with, if given.
        final_: Option<String>,
    },
    /// `(attr:dn:rule:=value)` and its shorter forms.
    Extensible {
        /// The attribute name, if given.
        attr: Option<String>,
        /// The matching rule OID, if given.
        rule: Option<String>,
        /// The assertion value.
        value: String,
        /// True for `:dn` (match the DN's components too). Never produced by
        /// [`Filter::parse`], which refuses it; evaluates to false.
        dn_attributes: bool,
    },
}

/// Escapes `value` for use as an RFC 4515 assertion value, so that text from a user can
/// be placed in a filter without changing its structure.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

impl Filter {
    /// Parses an RFC 4515 filter. A bare item without the outer parentheses
    /// (`msRTCSIP-UserEnabled=TRUE`) is accepted, as OpenLDAP's tools do, and so is
    /// whitespace around the filter and between the operands of `&`, `|` and `!`.
    pub fn parse(text: &str) -> Result<Filter, DirError> {
        let chars: Vec<char> = text.chars().collect();
        let start = chars
            .iter()
            .position(|c| !c.is_whitespace())
            .unwrap_or(chars.len());
        let end = chars
            .iter()
            .rposition(|c| !c.is_whitespace())
            .map_or(start, |i| i + 1);
        let mut parser = Parser {
            text,
            chars,
            pos: start,
            end,
        };
        if start == end {
            return Err(parser.error(0, "empty filter; to match every entry use (objectClass=*)"));
        }
        let filter = if parser.peek() == Some('(') {
            parser.filter(1)?
        } else {
            parser.component(1, None)?
        };
        match parser.peek() {
            None => Ok(filter),
            Some(')') => Err(parser.error(
                parser.pos,
                "unexpected ')' after the end of the filter (unbalanced parentheses)",
            )),
            Some('(') => Err(parser.error(
                parser.pos,
                "a second filter after the end of the first; combine them with (&...) or (|...)",
            )),
            Some(c) => Err(parser.error(
                parser.pos,
                &format!("unexpected '{c}' after the end of the filter"),
            )),
        }
    }

    /// True when `entry` matches, with Active Directory's semantics (see the module
    /// documentation). A filter [`Filter::parse`] would refuse (an unsupported matching
    /// rule, `:dn`) is LDAP's Undefined and matches nothing.
    pub fn matches(&self, entry: &Entry) -> bool {
        match self {
            Filter::And(filters) => filters.iter().all(|f| f.matches(entry)),
            Filter::Or(filters) => filters.iter().any(|f| f.matches(entry)),
            Filter::Not(filter) => !filter.matches(entry),
            Filter::Equal { attr, value } | Filter::Approx { attr, value } => {
                equality(entry, attr, value)
            }
            Filter::GreaterOrEqual { attr, value } => {
                values_of(entry, attr).any(|v| compare(v, value) != Ordering::Less)
            }
            Filter::LessOrEqual { attr, value } => {
                values_of(entry, attr).any(|v| compare(v, value) != Ordering::Greater)
            }
            Filter::Present { attr } => {
                // Every AD object has these, whether or not an export listed them.
                attr.eq_ignore_ascii_case("objectClass")
                    || attr.eq_ignore_ascii_case("distinguishedName")
                    || entry.has(attr)
            }
            Filter::Substring {
                attr,
                initial,
                any,
                final_,
            } => {
                // DN syntax has no substring matching rule in AD or OpenLDAP: such a
                // filter selects nothing there, so it must here too.
                !is_dn_attribute(attr)
                    && values_of(entry, attr)
                        .any(|v| substring_match(v, initial.as_deref(), any, final_.as_deref()))
            }
            Filter::Extensible {
                attr,
                rule,
                value,
                dn_attributes,
            } => {
                if *dn_attributes {
                    return false;
                }
                match (attr, rule.as_deref()) {
                    (Some(attr), None) => equality(entry, attr, value),
                    (Some(attr), Some(rule)) => {
                        let Some(assertion) = ad_u32(value) else {
                            return false;
                        };
                        let test: fn(u32, u32) -> bool = if rule == MATCHING_RULE_BIT_AND {
                            |v, a| v & a == a
                        } else if rule == MATCHING_RULE_BIT_OR {
                            |v, a| v & a != 0
                        } else {
                            return false;
                        };
                        entry
                            .get(attr)
                            .iter()
                            .filter_map(|v| ad_u32(v))
                            .any(|v| test(v, assertion))
                    }
                    (None, _) => false,
                }
            }
        }
    }
}

/// The text values of `attr`, plus the entry's own DN for `distinguishedName`, which AD
/// always has even when an LDIF export left it out.
fn values_of<'a>(entry: &'a Entry, attr: &str) -> impl Iterator<Item = &'a str> {
    let own_dn = attr
        .eq_ignore_ascii_case("distinguishedName")
        .then_some(entry.dn.as_str());
    entry.get(attr).iter().map(String::as_str).chain(own_dn)
}

fn equality(entry: &Entry, attr: &str, value: &str) -> bool {
    if attr.eq_ignore_ascii_case("objectCategory") && !value.contains('=') {
        return category_matches(entry, value);
    }
    values_of(entry, attr).any(|v| values_equal(attr, v, value))
}

/// What two values of `attr` are compared by for equality, as a key: equal keys for
/// every pair [`Filter::matches`] finds equal (the embedded store indexes by it). DN
/// values by their normalized DN, other values case-insensitively.
pub(crate) fn equality_key(attr: &str, value: &str) -> String {
    if is_dn_attribute(attr) {
        Dn::parse(value)
            .map(|dn| dn.normalized())
            .unwrap_or_else(|_| value.trim().to_lowercase())
    } else {
        value.to_lowercase()
    }
}

fn values_equal(attr: &str, stored: &str, assertion: &str) -> bool {
    if is_dn_attribute(attr) {
        same_dn(stored, assertion)
    } else {
        stored.to_lowercase() == assertion.to_lowercase()
    }
}

/// AD's shortcut: `objectCategory=person` names a class, which AD turns into the DN of
/// its category (`CN=Person,CN=Schema,...`). Exports often lack objectCategory, so then
/// the class itself is checked.
fn category_matches(entry: &Entry, name: &str) -> bool {
    let stored = entry.get("objectCategory");
    if stored.is_empty() {
        return entry.is_a(name);
    }
    let wanted = name.to_lowercase();
    stored.iter().any(|v| {
        v.to_lowercase() == wanted
            || Dn::parse(v)
                .ok()
                .and_then(|dn| dn.rdn().map(|rdn| rdn.value.to_lowercase() == wanted))
                .unwrap_or(false)
    })
}

/// Equal as multisets, compared the way the directory compares values of `attr`.
pub fn same_values(attr: &str, current: &[String], expected: &[String]) -> bool {
    if current.len() != expected.len() {
        return false;
    }
    let equal = |a: &str, b: &str| {
        if is_dn_attribute(attr) {
            same_dn(a, b)
        } else {
            a.to_lowercase() == b.to_lowercase()
        }
    };
    let mut unmatched: Vec<&str> = current.iter().map(String::as_str).collect();
    for value in expected {
        match unmatched.iter().position(|c| equal(c, value)) {
            Some(i) => {
                unmatched.swap_remove(i);
            }
            None => return false,
        }
    }
    true
}

/// Integers compare as numbers (`uSNChanged>=9` must not be a string comparison), other
/// values as case-insensitive strings.
fn compare(stored: &str, assertion: &str) -> Ordering {
    match (stored.parse::<i64>(), assertion.parse::<i64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => stored.to_lowercase().cmp(&assertion.to_lowercase()),
    }
}

fn substring_match(
    value: &str,
    initial: Option<&str>,
    any: &[String],
    final_: Option<&str>,
) -> bool {
    let value = value.to_lowercase();
    let mut rest = value.as_str();
    if let Some(initial) = initial {
        let initial = initial.to_lowercase();
        match rest.strip_prefix(initial.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for part in any {
        let part = part.to_lowercase();
        match rest.find(part.as_str()) {
            Some(i) => rest = rest.get(i + part.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    match final_ {
        Some(final_) => rest.ends_with(final_.to_lowercase().as_str()),
        None => true,
    }
}

/// Reads an integer as AD's bitwise rules see it: an unsigned 32-bit value, a negative
/// stored value being its two's complement (`-2147483648` is bit 31).
fn ad_u32(value: &str) -> Option<u32> {
    let v: i64 = value.trim().parse().ok()?;
    if v < 0 {
        i32::try_from(v)
            .ok()
            .map(|v| u32::from_ne_bytes(v.to_ne_bytes()))
    } else {
        u32::try_from(v).ok()
    }
}

impl fmt::Display for Filter {
    /// Writes the canonical RFC 4515 form, values escaped, always parenthesised.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(filters) | Filter::Or(filters) => {
                f.write_str(if matches!(self, Filter::And(_)) {
                    "(&"
                } else {
                    "(|"
                })?;
                for filter in filters {
                    write!(f, "{filter}")?;
                }
                f.write_str(")")
            }
            Filter::Not(filter) => write!(f, "(!{filter})"),
            Filter::Equal { attr, value } => write!(f, "({attr}={})", escape_value(value)),
            Filter::Approx { attr, value } => write!(f, "({attr}~={})", escape_value(value)),
            Filter::GreaterOrEqual { attr, value } => {
                write!(f, "({attr}>={})", escape_value(value))
            }
            Filter::LessOrEqual { attr, value } => {
                write!(f, "({attr}<={})", escape_value(value))
            }
            Filter::Present { attr } => write!(f, "({attr}=*)"),
            Filter::Substring {
                attr,
                initial,
                any,
                final_,
            } => {
                write!(f, "({attr}=")?;
                if let Some(initial) = initial {
                    f.write_str(&escape_value(initial))?;
                }
                f.write_str("*")?;
                for part in any {
                    write!(f, "{}*", escape_value(part))?;
                }
                if let Some(final_) = final_ {
                    f.write_str(&escape_value(final_))?;
                }
                f.write_str(")")
            }
            Filter::Extensible {
                attr,
                rule,
                value,
                dn_attributes,
            } => {
                f.write_str("(")?;
                if let Some(attr) = attr {
                    f.write_str(attr)?;
                }
                if *dn_attributes {
                    f.write_str(":dn")?;
                }
                if let Some(rule) = rule {
                    write!(f, ":{rule}")?;
                }
                write!(f, ":={})", escape_value(value))
            }
        }
    }
}

/// A recursive-descent parser over the characters of the filter; `pos` and `end` are
/// 0-based indexes, reported 1-based.
struct Parser<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
    end: usize,
}

/// Which operator introduced a value, for messages and for where `*` may appear.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Equality,
    Ordered(&'static str),
    Extensible,
}

impl Parser<'_> {
    fn error(&self, at: usize, message: &str) -> DirError {
        DirError::Filter {
            filter: self.text.to_string(),
            position: at + 1,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<char> {
        if self.pos < self.end {
            self.chars.get(self.pos).copied()
        } else {
            None
        }
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        let at = self.pos + offset;
        if at < self.end {
            self.chars.get(at).copied()
        } else {
            None
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// `( filtercomp )`, the cursor on the `(`.
    fn filter(&mut self, depth: usize) -> Result<Filter, DirError> {
        let open = self.pos;
        if self.peek() != Some('(') {
            return Err(self.error(open, "expected '('"));
        }
        if depth > MAX_DEPTH {
            return Err(self.error(
                open,
                &format!("the filter is nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.pos += 1;
        let filter = self.component(depth, Some(open))?;
        match self.peek() {
            Some(')') => {
                self.pos += 1;
                Ok(filter)
            }
            Some(c) => Err(self.error(
                self.pos,
                &format!(
                    "expected ')' to close the '(' at position {}, found '{c}'",
                    open + 1
                ),
            )),
            None => Err(self.error(
                self.pos,
                &format!("missing ')' to close the '(' at position {}", open + 1),
            )),
        }
    }

    /// What goes between the parentheses; `open` is the `(` it sits in, if any.
    fn component(&mut self, depth: usize, open: Option<usize>) -> Result<Filter, DirError> {
        match self.peek() {
            Some('&') => {
                self.pos += 1;
                Ok(Filter::And(self.list(depth, '&')?))
            }
            Some('|') => {
                self.pos += 1;
                Ok(Filter::Or(self.list(depth, '|')?))
            }
            Some('!') => {
                self.pos += 1;
                self.skip_whitespace();
                if self.peek() != Some('(') {
                    return Err(self.error(
                        self.pos,
                        "'!' must be followed by one filter in parentheses, as in (!(cn=x))",
                    ));
                }
                let inner = self.filter(depth + 1)?;
                self.skip_whitespace();
                if self.peek() == Some('(') {
                    return Err(self.error(
                        self.pos,
                        "'!' takes exactly one filter; wrap several in (&...) or (|...)",
                    ));
                }
                Ok(Filter::Not(Box::new(inner)))
            }
            None => Err(self.error(
                self.pos,
                &match open {
                    Some(open) => format!("missing ')' to close the '(' at position {}", open + 1),
                    None => "empty filter".to_string(),
                },
            )),
            Some(')') => Err(self.error(self.pos, "empty filter between '(' and ')'")),
            Some(_) => self.item(),
        }
    }

    /// The operands of `&` or `|`: zero or more parenthesised filters.
    fn list(&mut self, depth: usize, op: char) -> Result<Vec<Filter>, DirError> {
        let mut filters = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some('(') => filters.push(self.filter(depth + 1)?),
                None | Some(')') => return Ok(filters),
                Some(c) => {
                    return Err(self.error(
                        self.pos,
                        &format!(
                            "expected '(' or ')' in the '{op}' list, found '{c}' \
                             (each operand needs its own parentheses)"
                        ),
                    ));
                }
            }
        }
    }

    fn item(&mut self) -> Result<Filter, DirError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';'))
        {
            self.pos += 1;
        }
        let attr: String = self
            .chars
            .get(start..self.pos)
            .unwrap_or_default()
            .iter()
            .collect();
        let next = self.peek();
        if attr.is_empty() {
            return match next {
                Some(':') => self.extensible(None, start),
                Some('=' | '~' | '>' | '<') => Err(self.error(start, "empty attribute name")),
                Some(c) => Err(self.error(
                    start,
                    &format!("expected an attribute name, '&', '|' or '!', found '{c}'"),
                )),
                None => Err(self.error(start, "expected an attribute name")),
            };
        }
        if !attr.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(self.error(
                start,
                &format!("attribute name {attr:?} must start with a letter or a digit"),
            ));
        }
        match next {
            Some('=') => {
                self.pos += 1;
                let (mut parts, stars) = self.value(ValueKind::Equality)?;
                if parts.len() == 1 {
                    let value = parts.pop().unwrap_or_default();
                    return Ok(Filter::Equal { attr, value });
                }
                if parts.len() == 2 && parts.iter().all(String::is_empty) {
                    return Ok(Filter::Present { attr });
                }
                let last = parts.len() - 1;
                for (i, part) in parts.iter().enumerate() {
                    if part.is_empty() && i > 0 && i < last {
                        let at = stars.get(i + 1).copied().unwrap_or(self.pos);
                        return Err(self.error(
                            at,
                            "two '*' in a row in a substring filter; write a literal '*' as \\2a",
                        ));
                    }
                }
                let final_ = parts.pop().filter(|s| !s.is_empty());
                let mut parts = parts.into_iter();
                let initial = parts.next().filter(|s| !s.is_empty());
                Ok(Filter::Substring {
                    attr,
                    initial,
                    any: parts.collect(),
                    final_,
                })
            }
            Some(op @ ('~' | '>' | '<')) => {
                if self.peek_at(1) != Some('=') {
                    return Err(self.error(self.pos + 1, &format!("expected '=' after '{op}'")));
                }
                self.pos += 2;
                let kind = match op {
                    '~' => "~=",
                    '>' => ">=",
                    _ => "<=",
                };
                let value = self.single_value(ValueKind::Ordered(kind))?;
                Ok(match op {
                    '~' => Filter::Approx { attr, value },
                    '>' => Filter::GreaterOrEqual { attr, value },
                    _ => Filter::LessOrEqual { attr, value },
                })
            }
            Some(':') => self.extensible(Some(attr), start),
            Some(c) => Err(self.error(
                self.pos,
                &format!(
                    "invalid character '{c}' after the attribute name {attr}; \
                     expected '=', '~=', '>=', '<=' or ':'"
                ),
            )),
            None => Err(self.error(
                self.pos,
                &format!("expected '=', '~=', '>=' or '<=' after {attr}"),
            )),
        }
    }

    /// `[:dn][:rule]:=value`, the cursor on the first `:`.
    fn extensible(&mut self, attr: Option<String>, start: usize) -> Result<Filter, DirError> {
        let mut dn_at = None;
        let mut rule: Option<(usize, String)> = None;
        loop {
            // On a ':'.
            self.pos += 1;
            if self.peek() == Some('=') {
                self.pos += 1;
                break;
            }
            let token_start = self.pos;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            {
                self.pos += 1;
            }
            let token: String = self
                .chars
                .get(token_start..self.pos)
                .unwrap_or_default()
                .iter()
                .collect();
            if token.is_empty() {
                return Err(self.error(
                    self.pos,
                    "expected 'dn', a matching rule OID or '=' after ':'",
                ));
            }
            if token.eq_ignore_ascii_case("dn") && dn_at.is_none() && rule.is_none() {
                dn_at = Some(token_start);
            } else if rule.is_none() {
                rule = Some((token_start, token));
            } else {
                return Err(self.error(
                    token_start,
                    &format!("unexpected {token:?} after the matching rule; expected ':='"),
                ));
            }
            if self.peek() != Some(':') {
                return Err(self.error(self.pos, "expected ':=' in the extensible match"));
            }
        }
        let value_start = self.pos;
        let value = self.single_value(ValueKind::Extensible)?;

        if attr.is_none() && rule.is_none() {
            return Err(self.error(
                start,
                "an extensible match needs an attribute name, a matching rule or both",
            ));
        }
        if let Some(at) = dn_at {
            return Err(self.error(
                at,
                "':dn' (matching the components of the entry's DN) is not supported by ocsh",
            ));
        }
        if let Some((at, name)) = &rule {
            if name != MATCHING_RULE_BIT_AND && name != MATCHING_RULE_BIT_OR {
                return Err(self.error(
                    *at,
                    &format!(
                        "unsupported matching rule {name} (ocsh supports \
                         {MATCHING_RULE_BIT_AND} and .804)"
                    ),
                ));
            }
            if attr.is_none() {
                return Err(self.error(
                    start,
                    "a bitwise matching rule needs an attribute name, as in \
                     (msRTCSIP-OptionFlags:1.2.840.113556.1.4.803:=256)",
                ));
            }
            if ad_u32(&value).is_none() {
                return Err(self.error(
                    value_start,
                    &format!("a bitwise match needs a 32-bit decimal integer, found {value:?}"),
                ));
            }
        }
        Ok(Filter::Extensible {
            attr,
            rule: rule.map(|(_, name)| name),
            value,
            dn_attributes: false,
        })
    }

    fn single_value(&mut self, kind: ValueKind) -> Result<String, DirError> {
        let (mut parts, _) = self.value(kind)?;
        Ok(parts.pop().unwrap_or_default())
    }

    /// Reads an assertion value up to the closing `)`, unescaping it. Returns the parts
    /// between unescaped `*` (one part when there is none) and the positions of the `*`
    /// before each part.
    fn value(&mut self, kind: ValueKind) -> Result<(Vec<String>, Vec<usize>), DirError> {
        let mut parts = Vec::new();
        let mut stars = vec![self.pos];
        let mut bytes: Vec<u8> = Vec::new();
        // The character position each byte came from, to report bad UTF-8 precisely.
        let mut origins: Vec<usize> = Vec::new();
        loop {
            let here = self.pos;
            match self.peek() {
                None | Some(')') => break,
                Some('*') if kind == ValueKind::Equality => {
                    parts.push(self.finish_part(&mut bytes, &mut origins)?);
                    stars.push(here);
                    self.pos += 1;
                }
                Some('*') => {
                    let what = match kind {
                        ValueKind::Ordered(op) => format!("a {op} value"),
                        _ => "an extensible-match value".to_string(),
                    };
                    return Err(self.error(
                        here,
                        &format!("an unescaped '*' in {what}; write a literal '*' as \\2a"),
                    ));
                }
                Some('(') => {
                    return Err(self.error(
                        here,
                        "an unescaped '(' in a value; write it as \\28 (and ')' as \\29)",
                    ));
                }
                Some('\0') => {
                    return Err(self.error(here, "a NUL character in a value; write it as \\00"));
                }
                Some('\\') => {
                    let first = self.peek_at(1);
                    let digits = (
                        first.and_then(|c| c.to_digit(16)),
                        self.peek_at(2).and_then(|c| c.to_digit(16)),
                    );
                    if let (Some(hi), Some(lo)) = digits {
                        bytes.push(u8::try_from(hi * 16 + lo).unwrap_or_default());
                        origins.push(here);
                        self.pos += 3;
                    } else if let Some(c @ ('*' | '(' | ')' | '\\')) = first {
                        // RFC 1960's escapes, which older tools still write.
                        push_char(&mut bytes, &mut origins, c, here);
                        self.pos += 2;
                    } else {
                        return Err(self.error(
                            here,
                            "bad escape: '\\' must be followed by two hex digits \
                             (\\2a for '*', \\28 for '(', \\29 for ')', \\5c for '\\')",
                        ));
                    }
                }
                Some(c) => {
                    push_char(&mut bytes, &mut origins, c, here);
                    self.pos += 1;
                }
            }
        }
        parts.push(self.finish_part(&mut bytes, &mut origins)?);
        Ok((parts, stars))
    }

    fn finish_part(
        &self,
        bytes: &mut Vec<u8>,
        origins: &mut Vec<usize>,
    ) -> Result<String, DirError> {
        let taken = std::mem::take(bytes);
        let origins = std::mem::take(origins);
        String::from_utf8(taken).map_err(|e| {
            let at = origins
                .get(e.utf8_error().valid_up_to())
                .copied()
                .unwrap_or(self.pos);
            self.error(at, "the escaped bytes are not valid UTF-8")
        })
    }
}

fn push_char(bytes: &mut Vec<u8>, origins: &mut Vec<usize>, c: char, at: usize) {
    let mut buf = [0u8; 4];
    let encoded = c.encode_utf8(&mut buf).as_bytes();
    bytes.extend_from_slice(encoded);
    origins.extend(std::iter::repeat_n(at, encoded.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "CN=LC Services,CN=Microsoft,CN=pool01,CN=Pools,CN=RTC Service,\
                        CN=Microsoft,CN=System,DC=example,DC=com";

    fn jane() -> Entry {
        let mut e = Entry::new("CN=Jane Doe,OU=Sales,DC=example,DC=com");
        for class in ["top", "person", "organizationalPerson", "user"] {
            e.add("objectClass", class);
        }
        e.add("cn", "Jane Doe");
        e.add("sn", "Doe");
        e.add("displayName", "Jérôme Dupré");
        e.add("mail", "Jane.Doe@Example.com");
        e.add("description", "a (b) * c\\d");
        e.add("msRTCSIP-UserEnabled", "TRUE");
        e.add("msRTCSIP-OptionFlags", "257");
        e.add("msRTCSIP-PrimaryHomeServer", POOL);
        e.add("memberOf", "CN=Sales,OU=Groups,DC=example,DC=com");
        e.add("memberOf", "CN=All,OU=Groups,DC=example,DC=com");
        e.add("uSNChanged", "12000");
        e.add("userAccountControl", "-2147483136");
        e.add_binary("objectGUID", vec![0xff; 16]);
        e
    }

    fn with_category() -> Entry {
        let mut e = Entry::new("CN=Room,OU=Sales,DC=example,DC=com");
        e.add("objectClass", "user");
        e.add(
            "objectCategory",
            "CN=Person,CN=Schema,CN=Configuration,DC=example,DC=com",
        );
        e
    }

    fn check(filter: &str, entry: &Entry) -> bool {
        match Filter::parse(filter) {
            Ok(f) => f.matches(entry),
            Err(e) => panic!("{filter}: {e}"),
        }
    }

    #[test]
    fn evaluation_follows_active_directory() {
        let jane = jane();
        let room = with_category();
        let cases: &[(&str, &Entry, bool)] = &[
            // Equality, case-insensitive names and values, Unicode lower case.
            ("(cn=Jane Doe)", &jane, true),
            ("(CN=jane doe)", &jane, true),
            ("(cn=Jane)", &jane, false),
            ("(displayName=JÉRÔME DUPRÉ)", &jane, true),
            ("(mail=jane.doe@example.com)", &jane, true),
            ("(missing=x)", &jane, false),
            ("(description=a \\28b\\29 \\2a c\\5cd)", &jane, true),
            ("msRTCSIP-UserEnabled=TRUE", &jane, true),
            ("  (msrtcsip-userenabled=true)  ", &jane, true),
            // Approximate is equality.
            ("(sn~=doe)", &jane, true),
            ("(sn~=do)", &jane, false),
            // DN-valued attributes compare as DNs.
            (
                "(msRTCSIP-PrimaryHomeServer=cn=lc services, cn=microsoft,cn=POOL01,cn=pools,\
                 cn=rtc service,cn=microsoft,cn=system,dc=example,dc=com)",
                &jane,
                true,
            ),
            (
                "(memberOf=cn=all, ou=groups, dc=EXAMPLE, dc=com)",
                &jane,
                true,
            ),
            (
                "(memberOf=CN=Other,OU=Groups,DC=example,DC=com)",
                &jane,
                false,
            ),
            (
                "(distinguishedName=cn=jane doe, ou=sales,dc=example,dc=com)",
                &jane,
                true,
            ),
            (
                "(distinguishedName=OU=Sales,DC=example,DC=com)",
                &jane,
                false,
            ),
            ("(distinguishedName=*)", &jane, true),
            // Presence.
            ("(objectClass=*)", &Entry::new("DC=x"), true),
            ("(mail=*)", &jane, true),
            ("(telephoneNumber=*)", &jane, false),
            ("(objectGUID=*)", &jane, true),
            ("(objectGUID=x)", &jane, false),
            // objectCategory shortcut.
            ("(objectCategory=person)", &jane, true),
            ("(objectCategory=computer)", &jane, false),
            ("(objectCategory=person)", &room, true),
            ("(objectCategory=Person)", &room, true),
            ("(objectCategory=user)", &room, false),
            (
                "(objectCategory=cn=person,cn=schema,cn=configuration,dc=example,dc=com)",
                &room,
                true,
            ),
            // Ordering: numeric when both are integers, else strings.
            ("(uSNChanged>=9000)", &jane, true),
            ("(uSNChanged<=9000)", &jane, false),
            ("(uSNChanged>=12000)", &jane, true),
            ("(uSNChanged<=12000)", &jane, true),
            ("(sn>=c)", &jane, true),
            ("(sn>=E)", &jane, false),
            ("(sn<=DOE)", &jane, true),
            ("(userAccountControl<=0)", &jane, true),
            // Substrings.
            ("(cn=jane*)", &jane, true),
            ("(cn=*DOE)", &jane, true),
            ("(cn=*e d*)", &jane, true),
            ("(cn=J*n*e*e)", &jane, true),
            ("(cn=J*x*e)", &jane, false),
            ("(cn=jane*doe*)", &jane, true),
            ("(cn=Jane D*oe)", &jane, true),
            ("(cn=Jane Do*oe)", &jane, false),
            ("(displayName=*rôme*)", &jane, true),
            ("(mail=*@example.com)", &jane, true),
            // Bitwise rules on OptionFlags (257 = 256 | 1).
            (
                "(msRTCSIP-OptionFlags:1.2.840.113556.1.4.803:=256)",
                &jane,
                true,
            ),
            (
                "(msRTCSIP-OptionFlags:1.2.840.113556.1.4.803:=257)",
                &jane,
                true,
            ),
            (
                "(msRTCSIP-OptionFlags:1.2.840.113556.1.4.803:=258)",
                &jane,
                false,
            ),
            (
                "(msRTCSIP-OptionFlags:1.2.840.113556.1.4.804:=258)",
                &jane,
                true,
            ),
            (
                "(msRTCSIP-OptionFlags:1.2.840.113556.1.4.804:=6)",
                &jane,
                false,
            ),
            ("(missing:1.2.840.113556.1.4.804:=1)", &jane, false),
            ("(cn:1.2.840.113556.1.4.804:=1)", &jane, false),
            // A negative stored value is its two's complement: bit 31 and 512.
            (
                "(userAccountControl:1.2.840.113556.1.4.803:=2147483648)",
                &jane,
                true,
            ),
            (
                "(userAccountControl:1.2.840.113556.1.4.803:=512)",
                &jane,
                true,
            ),
            (
                "(userAccountControl:1.2.840.113556.1.4.803:=-2147483648)",
                &jane,
                true,
            ),
            (
                "(userAccountControl:1.2.840.113556.1.4.803:=2)",
                &jane,
                false,
            ),
            // Extensible without a rule is equality.
            ("(sn:=DOE)", &jane, true),
            ("(sn:=x)", &jane, false),
            // Boolean structure.
            ("(&)", &jane, true),
            ("(|)", &jane, false),
            ("(!(cn=x))", &jane, true),
            ("(!(cn=jane doe))", &jane, false),
            (
                "(&(objectCategory=person)(msRTCSIP-UserEnabled=TRUE))",
                &jane,
                true,
            ),
            (
                "(&(objectCategory=person)(msRTCSIP-UserEnabled=FALSE))",
                &jane,
                false,
            ),
            ("(|(cn=x)(sn=doe))", &jane, true),
            ("(& (cn=x*) (sn=doe) )", &jane, false),
            ("(&(|(cn=x)(cn=jane*))(!(mail=*@other.com)))", &jane, true),
            ("&(sn=doe)(cn=jane*)", &jane, true),
        ];
        for (filter, entry, expected) in cases {
            assert_eq!(check(filter, entry), *expected, "{filter} on {}", entry.dn);
        }
    }

    #[test]
    fn malformed_filters_report_the_position() {
        let deep_ok = format!("{}(a=b){}", "(&".repeat(63), ")".repeat(63));
        assert!(Filter::parse(&deep_ok).is_ok());
        let too_deep = format!("{}(a=b){}", "(&".repeat(64), ")".repeat(64));
        let huge = "(&".repeat(100_000);
        let opens = "(".repeat(100_000);
        let cases: Vec<(&str, usize, &str)> = vec![
            ("", 1, "empty filter"),
            ("   ", 1, "empty filter"),
            ("(", 2, "missing ')' to close the '(' at position 1"),
            ("(cn=x", 6, "missing ')' to close the '(' at position 1"),
            ("(&(cn=x)", 9, "missing ')' to close the '(' at position 1"),
            (
                "(&(cn=x)(sn=y",
                14,
                "missing ')' to close the '(' at position 9",
            ),
            ("(cn=x))", 7, "unexpected ')'"),
            ("(cn=x)y", 7, "unexpected 'y'"),
            ("(cn=a)(sn=b)", 7, "combine them"),
            ("()", 2, "empty filter between"),
            ("(=x)", 2, "empty attribute name"),
            ("=x", 1, "empty attribute name"),
            ("((cn=a))", 2, "expected an attribute name"),
            ("( cn=a)", 2, "expected an attribute name"),
            ("(c n=a)", 3, "invalid character ' '"),
            ("(-cn=a)", 2, "must start with a letter"),
            ("(cn)", 4, "expected '=', '~=', '>=', '<=' or ':'"),
            ("cn", 3, "expected '='"),
            ("(cn=\\zz)", 5, "bad escape"),
            ("(cn=\\4)", 5, "bad escape"),
            ("(cn=ab\\", 7, "bad escape"),
            ("(cn=a\\)", 8, "missing ')'"),
            ("(cn=a\\c3)", 6, "not valid UTF-8"),
            ("(cn=ab\\ff\\41)", 7, "not valid UTF-8"),
            ("(cn=a(b)", 6, "unescaped '('"),
            ("(cn=a\0)", 6, "NUL"),
            ("(cn~x)", 5, "expected '=' after '~'"),
            ("(cn>x)", 5, "expected '=' after '>'"),
            ("(cn>=a*)", 7, "unescaped '*' in a >= value"),
            ("(cn=a**b)", 7, "two '*' in a row"),
            ("(&(cn=a)b)", 9, "expected '(' or ')' in the '&' list"),
            ("(!)", 3, "'!' must be followed"),
            ("(!(a=b)(c=d))", 8, "exactly one filter"),
            (
                "(x:1.2.3:=1)",
                4,
                "unsupported matching rule 1.2.3 (ocsh supports 1.2.840.113556.1.4.803 and .804)",
            ),
            (
                "(x:1.2.840.113556.1.4.1941:=CN=a)",
                4,
                "unsupported matching rule 1.2.840.113556.1.4.1941",
            ),
            ("(x:dn:=1)", 4, "':dn'"),
            ("(x:dn:1.2.840.113556.1.4.803:=1)", 4, "':dn'"),
            (
                "(:=x)",
                2,
                "needs an attribute name, a matching rule or both",
            ),
            ("(:1.2.840.113556.1.4.803:=1)", 2, "needs an attribute name"),
            (
                "(x:1.2.840.113556.1.4.803:=abc)",
                28,
                "32-bit decimal integer",
            ),
            (
                "(x:1.2.840.113556.1.4.803:=4294967296)",
                28,
                "32-bit decimal integer",
            ),
            ("(x::=1)", 4, "expected 'dn', a matching rule OID or '='"),
            ("(x:1.2.840.113556.1.4.803)", 26, "expected ':='"),
            (
                "(x:1.2.840.113556.1.4.803:foo:=1)",
                27,
                "after the matching rule",
            ),
            ("(x:=a*)", 6, "unescaped '*' in an extensible-match value"),
            (&too_deep, 129, "nested deeper than 64"),
            (&huge, 129, "nested deeper than 64"),
            (&opens, 2, "expected an attribute name"),
        ];
        for (filter, position, message) in cases {
            match Filter::parse(filter) {
                Err(DirError::Filter {
                    filter: f,
                    position: p,
                    message: m,
                }) => {
                    assert_eq!(f, filter);
                    let shown: String = filter.chars().take(40).collect();
                    assert_eq!(p, position, "{shown:?}: {m}");
                    assert!(m.contains(message), "{shown:?}: {m}");
                }
                other => panic!("{filter:?}: expected a filter error, got {other:?}"),
            }
        }
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        let canonical: &[(&str, &str)] = &[
            ("msRTCSIP-UserEnabled=TRUE", "(msRTCSIP-UserEnabled=TRUE)"),
            ("(cn=a\\2A\\28\\29\\5C\\00b)", "(cn=a\\2a\\28\\29\\5c\\00b)"),
            ("(cn=a\\*)", "(cn=a\\2a)"),
            ("(cn=J\\c3\\a9r\\C3\\B4me)", "(cn=Jérôme)"),
            ("(& (a=b)\n (c=d) )", "(&(a=b)(c=d))"),
            ("(!  (a=b) )", "(!(a=b))"),
            ("(a=*)", "(a=*)"),
            ("(a=)", "(a=)"),
            ("(sn:=x)", "(sn:=x)"),
        ];
        for (input, expected) in canonical {
            assert_eq!(Filter::parse(input).unwrap().to_string(), *expected);
        }
        let filters = [
            "(&)",
            "(|)",
            "(&(objectCategory=person)(|(msRTCSIP-UserEnabled=TRUE)(!(mail=*))))",
            "(cn~=jane)",
            "(uSNChanged>=100)",
            "(uSNChanged<=100)",
            "(cn=*)",
            "(cn=a*)",
            "(cn=*a)",
            "(cn=a*b*c*d)",
            "(cn=*b*c*)",
            "(cn=\\2a*\\28*\\29)",
            "(description= spaces  inside )",
            "(msRTCSIP-OptionFlags:1.2.840.113556.1.4.803:=256)",
            "(msRTCSIP-OptionFlags:1.2.840.113556.1.4.804:=-1)",
            "(userCertificate;binary=*)",
            "(2.5.4.3=x)",
            "(cn=Jérôme \\5c Dupré)",
        ];
        for text in filters {
            let parsed = Filter::parse(text).unwrap();
            let shown = parsed.to_string();
            assert_eq!(Filter::parse(&shown).unwrap(), parsed, "{text} → {shown}");
        }
    }

    #[test]
    fn parse_gives_the_expected_tree() {
        assert_eq!(
            Filter::parse("(cn=a*b*c)").unwrap(),
            Filter::Substring {
                attr: "cn".into(),
                initial: Some("a".into()),
                any: vec!["b".into()],
                final_: Some("c".into()),
            }
        );
        assert_eq!(
            Filter::parse("(x:1.2.840.113556.1.4.803:=2)").unwrap(),
            Filter::Extensible {
                attr: Some("x".into()),
                rule: Some(MATCHING_RULE_BIT_AND.into()),
                value: "2".into(),
                dn_attributes: false,
            }
        );
        assert_eq!(
            Filter::parse("(description=a\\2ab)").unwrap(),
            Filter::Equal {
                attr: "description".into(),
                value: "a*b".into()
            }
        );
    }

    #[test]
    fn escape_value_makes_user_input_literal() {
        let hostile = "*)(objectClass=*";
        let filter = format!("(cn={})", escape_value(hostile));
        assert_eq!(filter, "(cn=\\2a\\29\\28objectClass=\\2a)");
        let parsed = Filter::parse(&filter).unwrap();
        assert_eq!(
            parsed,
            Filter::Equal {
                attr: "cn".into(),
                value: hostile.into()
            }
        );
        assert_eq!(escape_value("a\\b\0"), "a\\5cb\\00");
        assert_eq!(escape_value("Jérôme"), "Jérôme");
    }

    #[test]
    fn hand_built_unsupported_filters_match_nothing() {
        let e = jane();
        let unsupported = Filter::Extensible {
            attr: Some("msRTCSIP-OptionFlags".into()),
            rule: Some("1.2.3".into()),
            value: "1".into(),
            dn_attributes: false,
        };
        assert!(!unsupported.matches(&e));
        let dn = Filter::Extensible {
            attr: Some("cn".into()),
            rule: None,
            value: "Jane Doe".into(),
            dn_attributes: true,
        };
        assert!(!dn.matches(&e));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let samples = [
            "(",
            ")",
            "(&",
            "(|(",
            "(!",
            "(!(",
            "\\",
            "(a=\\",
            "(a=\\4",
            "(a:",
            "(a:dn",
            "(a:dn:",
            "(:",
            "(::",
            "(a~",
            "(a>",
            "(a<=",
            "(a=*",
            "(a=**",
            "(a=***)",
            "*",
            "(a=\u{1F600}*\\f0\\9f\\98\\80)",
            "(é=x)",
            "(a=é\\",
            ")(",
            "&",
            "|",
            "!",
        ];
        for sample in samples {
            let _ = Filter::parse(sample);
        }
    }

    /// A cheap deterministic fuzzer over the characters that matter to the grammar; every
    /// filter that parses must also evaluate and survive a Display round trip.
    #[test]
    fn random_inputs_never_panic() {
        let mut next = crate::directory::test_rng::xorshift(0x2545_F491_4F6C_DD1D);
        let alphabet = [
            "(",
            ")",
            "&",
            "|",
            "!",
            "=",
            "~=",
            ">=",
            "<=",
            "*",
            ":",
            ":=",
            "dn",
            "cn",
            "a",
            "\\",
            "\\2a",
            "\\c3",
            "\\a9",
            "\\ff",
            " ",
            "é",
            "\0",
            "-",
            ".",
            ";",
            "1.2.840.113556.1.4.803",
            "257",
            "objectCategory",
            "person",
        ];
        let entry = jane();
        for _ in 0..50_000 {
            let len = next() % 16;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if let Ok(filter) = Filter::parse(&text) {
                let _ = filter.matches(&entry);
                let shown = filter.to_string();
                assert_eq!(
                    Filter::parse(&shown).ok(),
                    Some(filter),
                    "{text:?} → {shown:?}"
                );
            }
        }
    }
}
