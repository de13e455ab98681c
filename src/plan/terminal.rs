//! Directory values on a terminal. Whoever can write a value (a displayName, a
//! proxyAddresses entry) must not be able to paint what the operator reads before
//! confirming an apply: control characters (C0, DEL, C1: escape sequences, carriage
//! returns, backspaces) and the Unicode controls that reorder text are shown escaped,
//! `\x1b` and `\u{202e}`, in plans, cards and tables. JSON output escapes them itself.

use std::borrow::Cow;

/// True for the format characters that change the order or direction of the text
/// around them (bidirectional embeddings, overrides and isolates, and the marks).
fn reorders(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character escaped; borrowed when there is none.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || reorders(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() && u32::from(c) <= 0xff {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else if c.is_control() || reorders(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("Jane Doe"), "Jane Doe");
        assert!(matches!(printable("Jérôme Müller, 日本"), Cow::Borrowed(_)));
        assert_eq!(
            printable("Eve\u{1b}[2J\u{1b}[1;1HApproved\r\n\u{7f}\u{9b}"),
            "Eve\\x1b[2J\\x1b[1;1HApproved\\x0d\\x0a\\x7f\\x9b"
        );
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(printable("CN=Doe\\, Jane"), "CN=Doe\\, Jane");
    }
}
