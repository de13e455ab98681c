//! RFC 2849 content LDIF: reading what `ldapsearch -LLL` and Microsoft `ldifde` write,
//! and writing it back in `ldapsearch -LLL` style.
//!
//! Only content records (entries) are accepted. Change records are refused rather than
//! half-understood: a `changetype: modify` file read as entries would silently load the
//! wrong data. The one exception is `changetype: add`, which `ldifde` puts on every
//! exported entry and which means exactly "this is an entry".

use std::collections::HashMap;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::entry::Entry;
use super::error::DirError;
use crate::ocs::dn::Dn;

/// Writes padded base64 and reads it with or without padding, since hand-made files and
/// some tools drop the trailing `=`.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The longest line [`write`] produces; RFC 2849 suggests folding at 76 columns.
const FOLD_WIDTH: usize = 76;

/// Turns the bytes of an LDIF file into text: UTF-8 (with or without a byte order mark)
/// or UTF-16 with a byte order mark, which is what `ldifde -u` writes.
pub fn decode_bytes(bytes: &[u8], source: &str) -> Result<String, DirError> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return decode_utf8(rest, source);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return decode_utf16(rest, source, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return decode_utf16(rest, source, u16::from_be_bytes);
    }
    decode_utf8(bytes, source)
}

fn decode_utf8(bytes: &[u8], source: &str) -> Result<String, DirError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => {
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            Err(DirError::Ldif {
                path: source.to_string(),
                line: count_lines(valid),
                message: format!(
                    "the file is not UTF-8 (invalid byte 0x{:02X}); save it as UTF-8, or \
                     export it with ldifde -u",
                    bytes.get(e.valid_up_to()).copied().unwrap_or_default()
                ),
            })
        }
    }
}

fn decode_utf16(bytes: &[u8], source: &str, unit: fn([u8; 2]) -> u16) -> Result<String, DirError> {
    let chunks = bytes.chunks_exact(2);
    if !chunks.remainder().is_empty() {
        let lines = count_lines_utf16(bytes, unit);
        return Err(DirError::Ldif {
            path: source.to_string(),
            line: lines,
            message: "the UTF-16 file has an odd number of bytes (truncated?)".into(),
        });
    }
    let units = chunks.map(|c| unit([c[0], c[1]]));
    let mut out = String::with_capacity(bytes.len() / 2);
    let mut line = 1;
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => {
                if c == '\n' {
                    line += 1;
                }
                out.push(c);
            }
            Err(e) => {
                return Err(DirError::Ldif {
                    path: source.to_string(),
                    line,
                    message: format!(
                        "invalid UTF-16: unpaired surrogate 0x{:04X}",
                        e.unpaired_surrogate()
                    ),
                });
            }
        }
    }
    Ok(out)
}

fn count_lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count() + 1
}

fn count_lines_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> usize {
    bytes
        .chunks_exact(2)
        .filter(|c| unit([c[0], c[1]]) == u16::from(b'\n'))
        .count()
        + 1
}

/// One unfolded line, with the number of the physical line it started on.
struct Logical {
    line: usize,
    text: String,
    comment: bool,
}

/// An attribute value as the line gave it.
enum Value {
    Text(String),
    Bytes(Vec<u8>),
}

/// Parses content LDIF into entries, in file order. `source` names the file in errors,
/// which carry the 1-based number of the offending line.
pub fn parse(text: &str, source: &str) -> Result<Vec<Entry>, DirError> {
    let err = |line: usize, message: String| DirError::Ldif {
        path: source.to_string(),
        line,
        message,
    };
    let records = split_records(text, source)?;

    let mut entries = Vec::new();
    // Normalized DN → line of its `dn:`, to name both lines of a duplicate.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut version_allowed = true;
    for record in records {
        let mut lines = record.iter().filter(|l| !l.comment).peekable();
        let Some(first) = lines.peek() else {
            continue;
        };
        if version_allowed {
            version_allowed = false;
            let (name, value) = parse_line(first, source)?;
            if name.eq_ignore_ascii_case("version") {
                match value {
                    Value::Text(v) if v.trim() == "1" => {}
                    Value::Text(v) => {
                        return Err(err(
                            first.line,
                            format!(
                                "unsupported LDIF version {:?}; only version 1 exists",
                                v.trim()
                            ),
                        ));
                    }
                    Value::Bytes(_) => {
                        return Err(err(
                            first.line,
                            "the version must be written 'version: 1'".into(),
                        ));
                    }
                }
                lines.next();
            }
        }
        let Some(dn_line) = lines.next() else {
            continue;
        };
        let (name, value) = parse_line(dn_line, source)?;
        if !name.eq_ignore_ascii_case("dn") {
            return Err(err(
                dn_line.line,
                format!(
                    "expected 'dn:' to start an entry, found the attribute '{name}' before any dn: line"
                ),
            ));
        }
        let dn = match value {
            Value::Text(t) => t,
            Value::Bytes(b) => String::from_utf8(b)
                .map_err(|_| err(dn_line.line, "the base64 DN is not UTF-8 text".into()))?,
        };
        if dn.trim().is_empty() && !entries.is_empty() {
            return Err(err(
                dn_line.line,
                "empty DN: only the first record (the root DSE) may have an empty DN".into(),
            ));
        }
        let parsed = Dn::parse(&dn).map_err(|e| err(dn_line.line, e.to_string()))?;
        if let Some(previous) = seen.insert(parsed.normalized(), dn_line.line) {
            return Err(err(
                dn_line.line,
                format!("duplicate entry {dn:?}: already defined at line {previous}"),
            ));
        }

        let mut entry = Entry::new(dn);
        for line in lines {
            let (name, value) = parse_line(line, source)?;
            if name.eq_ignore_ascii_case("dn") {
                return Err(err(
                    line.line,
                    "a second dn: line in one entry (is the blank line between entries missing?)"
                        .into(),
                ));
            }
            if name.eq_ignore_ascii_case("changetype") {
                let kind = match &value {
                    Value::Text(t) => t.trim().to_string(),
                    Value::Bytes(b) => String::from_utf8_lossy(b).trim().to_string(),
                };
                if kind.eq_ignore_ascii_case("add") {
                    continue;
                }
                return Err(err(
                    line.line,
                    format!("only content LDIF (entries) is supported; found changetype: {kind}"),
                ));
            }
            match value {
                Value::Text(t) => entry.add(&name, t),
                Value::Bytes(b) => match String::from_utf8(b) {
                    Ok(t) => entry.add(&name, t),
                    Err(e) => entry.add_binary(&name, e.into_bytes()),
                },
            }
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// One `changetype: modify` record of a change file: the entry and its operations, each
/// `(operation, attribute, values)` with the operation `add`, `delete` or `replace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyRecord {
    /// The entry's DN.
    pub dn: String,
    /// The operations in file order.
    pub ops: Vec<(String, String, Vec<String>)>,
}

/// Parses an LDIF change file of `changetype: modify` records, the form `ocsh run
/// --format ldif` writes (comments and folding allowed). Other change types, a value line
/// of another attribute than its operation's, or an operation not ended by `-` are errors
/// naming the line.
pub fn parse_modify_records(text: &str, source: &str) -> Result<Vec<ModifyRecord>, DirError> {
    let err = |line: usize, message: String| DirError::Ldif {
        path: source.to_string(),
        line,
        message,
    };
    let as_text = |value: Value, line: usize| match value {
        Value::Text(t) => Ok(t),
        Value::Bytes(b) => String::from_utf8(b)
            .map_err(|_| err(line, "a base64 value that is not UTF-8 text".into())),
    };
    let mut out = Vec::new();
    let mut version_allowed = true;
    for record in split_records(text, source)? {
        let mut lines = record.iter().filter(|l| !l.comment).peekable();
        let Some(first) = lines.peek() else {
            continue;
        };
        if version_allowed {
            version_allowed = false;
            let (name, value) = parse_line(first, source)?;
            if name.eq_ignore_ascii_case("version") {
                if as_text(value, first.line)?.trim() != "1" {
                    return Err(err(first.line, "only 'version: 1' exists".into()));
                }
                lines.next();
            }
        }
        let Some(dn_line) = lines.next() else {
            continue;
        };
        let (name, value) = parse_line(dn_line, source)?;
        if !name.eq_ignore_ascii_case("dn") {
            return Err(err(
                dn_line.line,
                format!("expected 'dn:' to start a change record, found '{name}:'"),
            ));
        }
        let dn = as_text(value, dn_line.line)?;
        Dn::parse(&dn).map_err(|e| err(dn_line.line, e.to_string()))?;
        let Some(ct_line) = lines.next() else {
            return Err(err(
                dn_line.line,
                "a change record needs 'changetype: modify' after its dn: line".into(),
            ));
        };
        let (name, value) = parse_line(ct_line, source)?;
        let kind = as_text(value, ct_line.line)?;
        if !name.eq_ignore_ascii_case("changetype") || !kind.trim().eq_ignore_ascii_case("modify") {
            return Err(err(
                ct_line.line,
                format!(
                    "expected 'changetype: modify', found '{name}: {}'",
                    shorten(&kind)
                ),
            ));
        }
        let mut ops = Vec::new();
        let mut open: Option<(usize, String, String, Vec<String>)> = None;
        for line in lines {
            if line.text == "-" {
                let Some((_, op, attr, values)) = open.take() else {
                    return Err(err(line.line, "'-' with no operation to end".into()));
                };
                ops.push((op, attr, values));
                continue;
            }
            let (name, value) = parse_line(line, source)?;
            let value = as_text(value, line.line)?;
            match &mut open {
                None => {
                    let op = name.to_ascii_lowercase();
                    if !matches!(op.as_str(), "add" | "delete" | "replace") {
                        return Err(err(
                            line.line,
                            format!("expected 'add:', 'delete:' or 'replace:', found '{name}:'"),
                        ));
                    }
                    open = Some((line.line, op, value.trim().to_string(), Vec::new()));
                }
                Some((_, _, attr, values)) => {
                    if !name.eq_ignore_ascii_case(attr) {
                        return Err(err(
                            line.line,
                            format!(
                                "a value of '{name}' inside the operation on '{attr}' (is the '-' line missing?)"
                            ),
                        ));
                    }
                    values.push(value);
                }
            }
        }
        if let Some((line, op, attr, _)) = open {
            return Err(err(
                line,
                format!("the '{op}: {attr}' operation is not ended by a '-' line"),
            ));
        }
        out.push(ModifyRecord { dn, ops });
    }
    Ok(out)
}

/// Unfolds lines and groups them into records separated by blank lines.
fn split_records(text: &str, source: &str) -> Result<Vec<Vec<Logical>>, DirError> {
    let mut records = Vec::new();
    let mut current: Vec<Logical> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let number = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = if i == 0 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        if let Some(rest) = line.strip_prefix(' ') {
            if let Some(last) = current.last_mut() {
                last.text.push_str(rest);
                continue;
            }
            if !line.trim().is_empty() {
                return Err(DirError::Ldif {
                    path: source.to_string(),
                    line: number,
                    message: "a line starting with a space continues the previous line, but \
                              there is none (the line before is blank or the file starts here)"
                        .into(),
                });
            }
        }
        if line.trim().is_empty() {
            if !current.is_empty() {
                records.push(std::mem::take(&mut current));
            }
            continue;
        }
        current.push(Logical {
            line: number,
            text: line.to_string(),
            comment: line.starts_with('#'),
        });
    }
    if !current.is_empty() {
        records.push(current);
    }
    Ok(records)
}

/// Splits `name: value`, `name:: base64` and refuses `name:< URL`.
fn parse_line(logical: &Logical, source: &str) -> Result<(String, Value), DirError> {
    let err = |message: String| DirError::Ldif {
        path: source.to_string(),
        line: logical.line,
        message,
    };
    let text = logical.text.as_str();
    let Some((name, rest)) = text.split_once(':') else {
        return Err(err(format!(
            "expected 'name: value' but the line has no ':': {:?}",
            shorten(text)
        )));
    };
    if name.is_empty() {
        return Err(err("empty attribute name before ':'".into()));
    }
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';'));
    if !valid_name {
        return Err(err(format!("invalid attribute name {:?}", shorten(name))));
    }
    if let Some(encoded) = rest.strip_prefix(':') {
        let encoded = encoded.trim_matches(' ');
        let bytes = BASE64
            .decode(encoded)
            .map_err(|e| err(format!("invalid base64 value for {name}: {e}")))?;
        return Ok((name.to_string(), Value::Bytes(bytes)));
    }
    if rest.starts_with('<') {
        return Err(err(format!(
            "URL values ({name}:< ...) are not supported; put the value in the file, \
             base64-encoded with '{name}::' if needed"
        )));
    }
    Ok((
        name.to_string(),
        Value::Text(rest.trim_start_matches(' ').to_string()),
    ))
}

/// Keeps error messages readable when a line is a huge base64 blob.
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}...")
    }
}

/// Writes entries as content LDIF in `ldapsearch -LLL` style: no `version:` line, text
/// attributes in order, then binary ones base64-encoded, a blank line between entries,
/// lines folded at 76 characters.
pub fn write(entries: &[Entry]) -> String {
    write_all(entries)
}

/// [`write`] for entries held elsewhere (the embedded store writes its own without
/// copying them into a slice first).
pub fn write_all<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> String {
    let mut out = String::new();
    for (i, entry) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        push_text(&mut out, "dn", &entry.dn);
        for attr in entry.attributes() {
            for value in &attr.values {
                push_text(&mut out, &attr.name, value);
            }
        }
        for (name, values) in entry.binary_attributes() {
            for value in values {
                push_folded(&mut out, &format!("{name}:: {}", BASE64.encode(value)));
            }
        }
    }
    out
}

fn push_text(out: &mut String, name: &str, value: &str) {
    push_folded(out, &value_line(name, value));
}

/// One unfolded `name: value` line, base64 (`name:: ...`) when the value is not an RFC
/// 2849 SAFE-STRING. Also used for change records (`plan/ldif.rs`).
pub(crate) fn value_line(name: &str, value: &str) -> String {
    if value.is_empty() {
        format!("{name}:")
    } else if is_safe_string(value) {
        format!("{name}: {value}")
    } else {
        format!("{name}:: {}", BASE64.encode(value))
    }
}

/// RFC 2849's SAFE-STRING, plus its advice to encode a trailing space, which editors and
/// line-trimming tools would otherwise lose.
fn is_safe_string(value: &str) -> bool {
    let bytes = value.as_bytes();
    let bad_start = matches!(bytes.first(), Some(b' ' | b':' | b'<'));
    let bad_end = bytes.last() == Some(&b' ');
    let bad_byte = bytes
        .iter()
        .any(|&b| matches!(b, 0 | b'\r' | b'\n') || !b.is_ascii());
    !(bad_start || bad_end || bad_byte)
}

fn push_folded(out: &mut String, line: &str) {
    let mut chars = line.chars();
    let first: String = chars.by_ref().take(FOLD_WIDTH).collect();
    out.push_str(&first);
    out.push('\n');
    loop {
        let chunk: String = chars.by_ref().take(FOLD_WIDTH - 1).collect();
        if chunk.is_empty() {
            break;
        }
        out.push(' ');
        out.push_str(&chunk);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ldif_err(result: Result<Vec<Entry>, DirError>) -> (usize, String) {
        match result {
            Err(DirError::Ldif {
                path,
                line,
                message,
            }) => {
                assert_eq!(path, "t.ldif");
                (line, message)
            }
            other => panic!("expected an LDIF error, got {other:?}"),
        }
    }

    const SAMPLE: &str = "\
version: 1

# Jane, Sales, example.com
dn: CN=Jane Doe,OU=Sales,DC=example,DC=com
objectClass: top
objectClass: user
cn: Jane Doe
description: a long description that ldapsearch folds because it is longer tha
 n seventy-six characters
msRTCSIP-UserEnabled: TRUE

dn: DC=example,DC=com
objectClass: domainDNS
";

    #[test]
    fn parses_ldapsearch_output() {
        let entries = parse(SAMPLE, "t.ldif").unwrap();
        assert_eq!(entries.len(), 2);
        let jane = &entries[0];
        assert_eq!(jane.dn, "CN=Jane Doe,OU=Sales,DC=example,DC=com");
        assert_eq!(jane.get("objectclass"), ["top", "user"]);
        assert_eq!(
            jane.first("description"),
            Some(
                "a long description that ldapsearch folds because it is longer than \
                 seventy-six characters"
            )
        );
        assert_eq!(jane.first("msRTCSIP-UserEnabled"), Some("TRUE"));
        assert_eq!(entries[1].dn, "DC=example,DC=com");
    }

    #[test]
    fn version_may_share_the_first_record() {
        let entries = parse("version: 1\ndn: DC=x\ndc: x\n", "t.ldif").unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].first("dc"), Some("x"));
        let (line, message) = ldif_err(parse("version: 2\n\ndn: DC=x\n", "t.ldif"));
        assert_eq!(line, 1);
        assert!(message.contains("version"), "{message}");
    }

    #[test]
    fn comments_and_their_continuations_are_skipped() {
        let text = "# a comment\n that is folded\ndn: DC=x\n# inside\n  still comment\ndc: x\n";
        let entries = parse(text, "t.ldif").unwrap();
        assert_eq!(entries[0].attributes().len(), 1);
        assert_eq!(entries[0].first("dc"), Some("x"));
    }

    #[test]
    fn crlf_bom_and_blank_line_runs() {
        let text = "\u{feff}dn: DC=x\r\ndc: x\r\n\r\n\r\n\r\ndn: CN=a,DC=x\r\ncn: a\r\n";
        let entries = parse(text, "t.ldif").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].first("dc"), Some("x"));
        assert_eq!(entries[1].first("cn"), Some("a"));
    }

    #[test]
    fn base64_values_and_dns() {
        // "CN=Jérôme,DC=x" and "Jérôme"
        let text = "dn:: Q049SsOpcsO0bWUsREM9eA==\ncn:: SsOpcsO0bWU=\n\
                    objectGUID:: AAECA/+AgICAgICAgICAgA==\nsn::U2Fucw\n";
        let entries = parse(text, "t.ldif").unwrap();
        let e = &entries[0];
        assert_eq!(e.dn, "CN=Jérôme,DC=x");
        assert_eq!(e.first("cn"), Some("Jérôme"));
        assert_eq!(e.first("sn"), Some("Sans"));
        assert!(e.get("objectGUID").is_empty());
        assert_eq!(
            e.get_binary("objectGUID"),
            [vec![
                0, 1, 2, 3, 0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80
            ]]
        );
    }

    #[test]
    fn options_spaces_and_empty_values() {
        let text = "dn: DC=x\nuserCertificate;binary:: AP8=\ndescription:    two words  \ninfo:\n";
        let e = &parse(text, "t.ldif").unwrap()[0];
        assert_eq!(e.get_binary("userCertificate;binary"), [vec![0u8, 0xff]]);
        assert_eq!(e.first("description"), Some("two words  "));
        assert_eq!(e.first("info"), Some(""));
    }

    #[test]
    fn ldifde_export_with_changetype_add() {
        let text =
            "dn: CN=a,DC=x\nchangetype: add\ncn: a\n\ndn: CN=b,DC=x\nchangetype: Add\ncn: b\n";
        let entries = parse(text, "t.ldif").unwrap();
        assert_eq!(entries.len(), 2);
        assert!(!entries[0].has("changetype"));
    }

    #[test]
    fn utf16_ldifde_unicode_export() {
        let text = "dn: CN=Jérôme,DC=x\r\nchangetype: add\r\ncn: Jérôme\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        for unit in text.encode_utf16() {
            bytes.extend(unit.to_le_bytes());
        }
        let decoded = decode_bytes(&bytes, "t.ldif").unwrap();
        let entries = parse(&decoded, "t.ldif").unwrap();
        assert_eq!(entries[0].first("cn"), Some("Jérôme"));

        let mut be = vec![0xFE, 0xFF];
        for unit in text.encode_utf16() {
            be.extend(unit.to_be_bytes());
        }
        assert_eq!(decode_bytes(&be, "t.ldif").unwrap(), text);
    }

    #[test]
    fn decode_bytes_errors_name_the_line() {
        let utf8_bom = b"\xEF\xBB\xBFdn: DC=x\n";
        assert_eq!(decode_bytes(utf8_bom, "t.ldif").unwrap(), "dn: DC=x\n");
        let (line, message) =
            ldif_err(decode_bytes(b"dn: DC=x\ncn: \xE9\n", "t.ldif").map(|_| vec![]));
        assert_eq!(line, 2);
        assert!(message.contains("0xE9"), "{message}");
        let odd = [0xFF, 0xFE, b'd', 0, b'\n'];
        assert!(decode_bytes(&odd, "t.ldif").is_err());
        // An unpaired high surrogate on the second line.
        let surrogate = [0xFF, 0xFE, b'a', 0, b'\n', 0, 0x00, 0xD8, b'b', 0];
        let (line, _) = ldif_err(decode_bytes(&surrogate, "t.ldif").map(|_| vec![]));
        assert_eq!(line, 2);
    }

    #[test]
    fn errors_carry_the_line_number() {
        let cases: &[(&str, usize, &str)] = &[
            ("dn: DC=x\ncn: a\nno colon here\n", 3, "no ':'"),
            ("# c\ncn: a\ndn: DC=x\n", 2, "before any dn:"),
            ("dn: DC=x\n\ncn: a\n", 3, "before any dn:"),
            ("dn: DC=x\ncn:: ###\n", 2, "invalid base64"),
            ("dn: DC=x\n\ndn:\ncn: a\n", 3, "empty DN"),
            ("dn: DC=x\n\ndn: pool01.example.com\n", 3, "invalid DN"),
            (
                "dn: DC=x\nchangetype: modify\nreplace: cn\n",
                2,
                "found changetype: modify",
            ),
            ("dn: DC=x\nchangetype: delete\n", 2, "changetype: delete"),
            ("dn: DC=x\nchangetype: modrdn\n", 2, "changetype: modrdn"),
            ("dn: DC=x\njpegPhoto:< file:///tmp/a.jpg\n", 2, "URL values"),
            ("dn: DC=x\n: value\n", 2, "empty attribute name"),
            ("dn: DC=x\ncn a: b\n", 2, "invalid attribute name"),
            ("dn: DC=x\ncn: a\ndn: CN=y,DC=x\n", 3, "second dn:"),
            ("dn: DC=x\n\n continued\n", 3, "continues the previous line"),
            (" continued\n", 1, "continues the previous line"),
            ("dn:: //79\n", 1, "not UTF-8"),
        ];
        for (text, want_line, want_message) in cases {
            let (line, message) = ldif_err(parse(text, "t.ldif"));
            assert_eq!(line, *want_line, "{text:?}: {message}");
            assert!(message.contains(want_message), "{text:?}: {message}");
        }
    }

    #[test]
    fn changetype_message_is_the_documented_one() {
        let err = parse("\n\ndn: CN=a,DC=x\nchangetype: modify\n", "t.ldif").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.ldif:4: only content LDIF (entries) is supported; found changetype: modify"
        );
    }

    #[test]
    fn duplicate_dns_name_both_lines() {
        let text = "dn: CN=a,DC=x\ncn: a\n\ndn: cn=A, dc=X\ncn: a\n";
        let (line, message) = ldif_err(parse(text, "t.ldif"));
        assert_eq!(line, 4);
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn empty_dn_allowed_first_only() {
        let entries = parse("dn:\nnamingContexts: DC=x\n\ndn: DC=x\n", "t.ldif").unwrap();
        assert_eq!(entries[0].dn, "");
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn empty_input_is_no_entries() {
        assert!(parse("", "t.ldif").unwrap().is_empty());
        assert!(
            parse("version: 1\n\n# nothing\n", "t.ldif")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn writes_ldapsearch_style() {
        let mut e = Entry::new("CN=a,DC=x");
        e.add("cn", "a");
        e.add("info", "");
        e.add("description", " leading space");
        e.add_binary("objectGUID", vec![0xff, 0]);
        let mut f = Entry::new("DC=x");
        f.add("dc", "x");
        assert_eq!(
            write(&[e, f]),
            "dn: CN=a,DC=x\ncn: a\ninfo:\ndescription:: IGxlYWRpbmcgc3BhY2U=\nobjectGUID:: /wA=\n\
             \ndn: DC=x\ndc: x\n"
        );
        assert_eq!(write(&[]), "");
    }

    #[test]
    fn long_lines_are_folded_at_76() {
        let mut e = Entry::new("DC=x");
        e.add("description", "x".repeat(200));
        let text = write(std::slice::from_ref(&e));
        for line in text.lines() {
            assert!(line.chars().count() <= 76, "{line}");
        }
        assert!(text.lines().nth(2).unwrap().starts_with(' '));
        assert_eq!(parse(&text, "t.ldif").unwrap(), vec![e]);
    }

    #[test]
    fn safe_string_rules() {
        for safe in ["a", "a b", "a:b", "a<b", "TRUE", "sip:jane@example.com"] {
            assert!(is_safe_string(safe), "{safe:?}");
        }
        for unsafe_ in [" a", "a ", ":a", "<a", "a\nb", "a\rb", "a\0b", "Jérôme"] {
            assert!(!is_safe_string(unsafe_), "{unsafe_:?}");
        }
    }

    #[test]
    fn write_then_parse_gives_back_the_entries() {
        let tricky = [
            " leading space",
            "trailing space ",
            ":colon start",
            "<angle start",
            "Jérôme",
            "line\nbreak",
            "carriage\r\nreturn",
            "",
            "#not a comment",
            "  ",
            "tab\tinside",
        ];
        let long: String = "abcdefghij".repeat(20);
        let mut entries = Vec::new();
        for (i, value) in tricky.iter().enumerate() {
            let mut e = Entry::new(format!("CN=user{i},OU=Sales,DC=example,DC=com"));
            e.add("objectClass", "user");
            e.add("description", *value);
            e.add("info", long.as_str());
            e.add("otherTelephone", *value);
            e.add("otherTelephone", "second");
            e.add_binary(
                "objectGUID",
                vec![0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff],
            );
            entries.push(e);
        }
        let mut odd_dn = Entry::new("CN=Jérôme Dupré\\, Jr,OU=Ventes,DC=example,DC=com");
        odd_dn.add("cn", "Jérôme Dupré, Jr");
        entries.push(odd_dn);
        let mut long_dn = Entry::new(format!("CN={},DC=example,DC=com", "x".repeat(150)));
        long_dn.add("userCertificate;binary", "text");
        entries.push(long_dn);

        let text = write(&entries);
        assert!(text.ends_with('\n'));
        assert_eq!(parse(&text, "t.ldif").unwrap(), entries);
        // And through the byte decoder, as a file load does.
        let decoded = decode_bytes(text.as_bytes(), "t.ldif").unwrap();
        assert_eq!(parse(&decoded, "t.ldif").unwrap(), entries);
    }

    #[test]
    fn never_panics_on_odd_input() {
        let samples = [
            "\u{feff}",
            "\r",
            "\r\n\r\n",
            ":",
            "::",
            ":<",
            "dn",
            "dn:",
            "dn::",
            "dn::=",
            "dn:<",
            "dn: DC=x\n a",
            "dn: DC=x\n\u{00e9}: x",
            "dn: DC=x\nversion: 1",
            "version:",
            "version:: MQ==\ndn: DC=x",
            "dn: DC=x\nchangetype:: //8=",
            "\n \n  \n",
            "dn: DC=x\ncn:: A",
            "dn: \u{0}",
            "dn: CN=a\\",
        ];
        for sample in samples {
            let _ = parse(sample, "t.ldif");
            let _ = decode_bytes(sample.as_bytes(), "t.ldif");
        }
        for len in 0..8 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| [0xFF, 0xFE, 0xD8, 0xDC, b'\n'][i % 5])
                .collect();
            let _ = decode_bytes(&bytes, "t.ldif");
        }
    }

    /// A cheap deterministic fuzzer: random mixes of the characters that matter to the
    /// grammar, and random cuts and splices of a valid file.
    #[test]
    fn random_inputs_never_panic() {
        let mut next = crate::directory::test_rng::xorshift(0x9E37_79B9_7F4A_7C15);
        let alphabet = [
            "dn",
            ":",
            "::",
            ":<",
            " ",
            "\n",
            "\r\n",
            "\n ",
            "#",
            "=",
            ",",
            "CN",
            "cn",
            "changetype",
            "add",
            "modify",
            "version",
            "1",
            "AA==",
            "//8=",
            "\u{feff}",
            "é",
            "\\",
            "\0",
            "-",
            ";binary",
        ];
        for _ in 0..20_000 {
            let len = next() % 24;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse(&text, "t.ldif");
            let _ = decode_bytes(text.as_bytes(), "t.ldif");
        }
        let valid = write(&parse(SAMPLE, "t.ldif").unwrap());
        for _ in 0..5_000 {
            let a = (next() % (valid.len() as u64 + 1)) as usize;
            let b = (next() % (valid.len() as u64 + 1)) as usize;
            let (a, b) = (a.min(b), a.max(b));
            let spliced = [&valid.as_bytes()[..a], &valid.as_bytes()[b..]].concat();
            let text = String::from_utf8_lossy(&spliced);
            let _ = parse(&text, "t.ldif");
            let _ = decode_bytes(&spliced, "t.ldif");
        }
    }

    #[test]
    fn modify_records_are_read_and_bad_ones_name_their_line() {
        let text = "version: 1\n# c\n\n# jdoe\ndn: CN=a,DC=x\nchangetype: modify\ndelete: f\nf: 1\n-\nadd: f\nf: 2\n-\n";
        let recs = parse_modify_records(text, "p.ldif").unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].dn, "CN=a,DC=x");
        assert_eq!(
            recs[0].ops,
            [
                ("delete".to_string(), "f".to_string(), vec!["1".to_string()]),
                ("add".to_string(), "f".to_string(), vec!["2".to_string()])
            ]
        );
        for (bad, line, message) in [
            ("dn: CN=a,DC=x\ncn: a\n", 2, "expected 'changetype: modify'"),
            (
                "dn: CN=a,DC=x\nchangetype: modify\nadd: f\nf: 1\n",
                3,
                "not ended by a '-'",
            ),
            (
                "dn: CN=a,DC=x\nchangetype: modify\nadd: f\ng: 1\n-\n",
                4,
                "a value of 'g'",
            ),
            ("cn: a\n", 1, "expected 'dn:'"),
            (
                "dn: CN=a,DC=x\nchangetype: modify\nfrob: f\n-\n",
                3,
                "expected 'add:'",
            ),
            (
                "dn: CN=a,DC=x\nchangetype: modify\nno colon here\n",
                3,
                "no ':'",
            ),
        ] {
            let e = parse_modify_records(bad, "p.ldif").unwrap_err().to_string();
            assert!(e.contains(&format!("p.ldif:{line}:")), "{bad:?}: {e}");
            assert!(e.contains(message), "{bad:?}: {e}");
        }
    }
}
