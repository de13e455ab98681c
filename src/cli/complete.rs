//! Tab completion for the REPL. The members of each object type come from the engine's
//! own function metadata, so completion never drifts from what is registered.

use std::collections::{BTreeMap, BTreeSet};

use crate::ocs::{Attr, Flag};

/// The REPL's `:commands`.
pub const COMMANDS: [&str; 8] = [
    ":help", ":plan", ":apply", ":discard", ":load", ":vars", ":clear", ":quit",
];

const KEYWORDS: [&str; 16] = [
    "let", "const", "for", "in", "if", "else", "while", "loop", "break", "continue", "fn",
    "return", "true", "false", "print", "throw",
];

/// What can be completed: global functions, and the members of each object type.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    globals: BTreeSet<String>,
    members: BTreeMap<String, BTreeSet<String>>,
}

impl Catalog {
    /// Builds the catalog from `Engine::gen_fn_signatures` lines such as
    /// `get$sip(_: &mut User) -> ...` (a property) or `enable(_: &mut User, ...)` (a method).
    pub fn from_signatures<S: AsRef<str>>(signatures: &[S]) -> Catalog {
        let mut cat = Catalog::default();
        for sig in signatures {
            let sig = sig.as_ref();
            let Some((name, rest)) = sig.split_once('(') else {
                continue;
            };
            if !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
            {
                continue; // operators
            }
            let first = rest.split([',', ')']).next().unwrap_or("");
            let receiver = first.split_once("&mut ").map(|(_, t)| t.trim().to_string());
            // `get$x` / `set$x` are the property `x`.
            let name = name.split_once('$').map_or(name, |(_, n)| n);
            if name == "to_debug" {
                continue;
            }
            match receiver {
                Some(t) if t.chars().next().is_some_and(char::is_uppercase) => {
                    cat.members.entry(t).or_default().insert(name.to_string());
                }
                _ => {
                    cat.globals.insert(name.to_string());
                }
            }
        }
        cat
    }

    /// The members of a type (`User`, `Pool`, `Flags`, `UserQuery`).
    pub fn members_of(&self, type_name: &str) -> Vec<String> {
        self.members
            .get(type_name)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn all_members(&self) -> BTreeSet<String> {
        self.members.values().flatten().cloned().collect()
    }
}

/// What the session knows at the moment of completion.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Variables and the type name of their value.
    pub vars: Vec<(String, String)>,
    /// The directory's pool names.
    pub pools: Vec<String>,
}

/// The type a function or property returns, where the API makes it certain.
fn type_of_call(name: &str) -> Option<&'static str> {
    match name {
        "user" => Some("User"),
        "pool" => Some("Pool"),
        "flags" => Some("Flags"),
        "users" | "users_in" | "users()" => Some("UserQuery"),
        _ => None,
    }
}

fn type_of_property(name: &str) -> Option<&'static str> {
    match name {
        "flags" => Some("Flags"),
        "pool" => Some("Pool"),
        _ => None,
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Completes `line` at byte offset `pos`: the start of the word being completed and the
/// candidates for it.
pub fn complete(line: &str, pos: usize, cat: &Catalog, known: &Known) -> (usize, Vec<String>) {
    let before = line.get(..pos).unwrap_or(line);
    if before.trim_start().starts_with(':') && !before.trim_start().contains(' ') {
        let start = before.len() - before.trim_start().len();
        return (
            start,
            filter(COMMANDS.iter().map(|s| s.to_string()), before.trim_start()),
        );
    }
    if let Some(q) = open_quote(before) {
        let prefix = &before[q + 1..];
        let head = before[..q].trim_end();
        let candidates: Vec<String> = if head.ends_with("pool(") || head.ends_with("move_to(") {
            known.pools.clone()
        } else if head.ends_with("attr(") {
            Attr::ALL.iter().map(|a| a.name().to_string()).collect()
        } else if head.ends_with("has(") || head.ends_with("flags(") || inside_flags_array(head) {
            Flag::ALL.iter().map(|f| f.name().to_string()).collect()
        } else {
            Vec::new()
        };
        return (q + 1, filter(candidates.into_iter(), prefix));
    }
    let prefix = trailing_ident(before);
    let start = before.len() - prefix.len();
    if before[..start].ends_with('.') {
        let receiver_end = start - 1;
        let candidates = match receiver_type(&before[..receiver_end], known) {
            Some(t) => cat.members_of(t),
            None => cat.all_members().into_iter().collect(),
        };
        return (start, filter(candidates.into_iter(), prefix));
    }
    let mut words: BTreeSet<String> = cat.globals.clone();
    words.extend(known.vars.iter().map(|(n, _)| n.clone()));
    words.extend(KEYWORDS.iter().map(|s| s.to_string()));
    words.insert("replicator".to_string());
    (start, filter(words.into_iter(), prefix))
}

fn filter(candidates: impl Iterator<Item = String>, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = candidates.filter(|c| c.starts_with(prefix)).collect();
    v.sort();
    v.dedup();
    v
}

/// The byte offset of the quote that opens the string the cursor is in, if it is in one.
fn open_quote(text: &str) -> Option<usize> {
    let mut open = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if open.is_some() => escaped = !escaped,
            '"' if !escaped => open = if open.is_some() { None } else { Some(i) },
            _ => escaped = false,
        }
    }
    open
}

fn inside_flags_array(head: &str) -> bool {
    match head.rfind("flags([") {
        Some(i) => !head[i..].contains(']'),
        None => false,
    }
}

/// The identifier that ends `text` (empty if none).
fn trailing_ident(text: &str) -> &str {
    let start = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident(*c))
        .last()
        .map_or(text.len(), |(i, _)| i);
    &text[start..]
}

/// The type of the expression that ends `text` (just before a `.`), when it can be known.
fn receiver_type(text: &str, known: &Known) -> Option<&'static str> {
    let text = text.trim_end();
    if let Some(inner) = text.strip_suffix(')') {
        // a call: find its name before the matching parenthesis
        let mut depth = 1;
        let mut open = None;
        for (i, c) in inner.char_indices().rev() {
            match c {
                ')' => depth += 1,
                '(' => {
                    depth -= 1;
                    if depth == 0 {
                        open = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let head = &inner[..open?];
        return type_of_call(trailing_ident(head));
    }
    let name = trailing_ident(text);
    let rest = &text[..text.len() - name.len()];
    if rest.ends_with('.') {
        // a property of something: `u.flags.`
        return type_of_property(name);
    }
    // A name the engine provides (not a scope variable).
    if name == "replicator" {
        return Some("Replicator");
    }
    let t = known
        .vars
        .iter()
        .rev()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.as_str())?;
    ["User", "Pool", "Flags", "UserQuery", "Replicator"]
        .into_iter()
        .find(|k| *k == t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_signatures(&[
            "get$sip(_: &mut User) -> Dynamic",
            "get$flags(_: &mut User) -> Flags",
            "enable(_: &mut User, _: string, _: Dynamic) -> Result",
            "get$name(_: &mut Pool) -> string",
            "users(_: &mut Pool) -> UserQuery",
            "get$public_im(_: &mut Flags) -> bool",
            "has(_: &mut Flags, _: string) -> bool",
            "user(_: string) -> User",
            "users(_: string) -> UserQuery",
            "pool(_: string) -> Pool",
            "sync(_: &mut Replicator) -> Dynamic",
            "|(_: Flags, _: Flags) -> Flags",
        ])
    }

    fn known() -> Known {
        Known {
            vars: vec![("u".into(), "User".into()), ("n".into(), "i64".into())],
            pools: vec!["pool01".into(), "pool02".into()],
        }
    }

    fn c(line: &str) -> Vec<String> {
        complete(line, line.len(), &catalog(), &known()).1
    }

    #[test]
    fn pool_names_inside_pool_call() {
        assert_eq!(c("let p = pool(\""), ["pool01", "pool02"]);
        assert_eq!(c("u.move_to(\"pool0"), ["pool01", "pool02"]);
        assert_eq!(complete("pool(\"po", 8, &catalog(), &known()).0, 6);
    }

    #[test]
    fn flags_and_attributes_inside_strings() {
        assert!(c("flags([\"public_im\", \"en").contains(&"enhanced_presence".to_string()));
        assert_eq!(c("u.flags.has(\"rcc"), ["rcc_dual_mode"]);
        assert_eq!(
            c("u.attr(\"msRTCSIP-Prim"),
            ["msRTCSIP-PrimaryHomeServer", "msRTCSIP-PrimaryUserAddress"]
        );
        assert!(c("print(\"hello ").is_empty());
    }

    #[test]
    fn members_by_receiver_type() {
        assert_eq!(c("u."), ["enable", "flags", "sip"]);
        assert_eq!(c("u.flags."), ["has", "public_im"]);
        assert_eq!(c("user(\"jdoe\").s"), ["sip"]);
        assert_eq!(c("pool(\"pool01\")."), ["name", "users"]);
        assert_eq!(c("replicator.sy"), ["sync"]);
        // unknown receiver: everything
        assert!(c("x.na").contains(&"name".to_string()));
    }

    #[test]
    fn globals_vars_keywords_and_commands() {
        assert_eq!(c("us"), ["user", "users"]);
        assert!(c("").contains(&"let".to_string()));
        assert_eq!(c("po"), ["pool"]);
        assert_eq!(c(":p"), [":plan"]);
        assert_eq!(c("  :q"), [":quit"]);
    }
}
