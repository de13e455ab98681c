//! A script's header: the leading `//!` lines give its description, its parameters and
//! example invocations.
//!
//! ```text
//! //! Bulk-enable users from a CSV file.
//! //! @param file    required        CSV with columns user, sip, pool
//! //! @param pool    default=pool01  pool for rows that name none
//! //! @param limit   int default=0   stop after this many users (0: no limit)
//! //! @example --param file=users.csv --allow-read users.csv
//! @writes enabled, sip, home_server, flags
//! @scope OU=Sales,DC=example,DC=com
//! @max 500
//! ```
//!
//! `@writes`, `@scope` and `@max` declare the script's reach ([`Reach`]): a plan that goes
//! beyond it is refused before anything is written.

use rhai::{Dynamic, Map};

use crate::ocs::reach::Reach;

/// The type of a parameter's value in `params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A string (the default).
    String,
    /// An integer.
    Int,
    /// `true` or `false`.
    Bool,
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// Its name (`--param NAME=...`, `params.NAME`).
    pub name: String,
    /// Its type.
    pub kind: ParamKind,
    /// Whether the script needs it.
    pub required: bool,
    /// The value when not given.
    pub default: Option<String>,
    /// What it is for.
    pub description: String,
}

/// What a script's header declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// The description (the `//!` lines that are not `@` lines).
    pub description: String,
    /// The declared parameters; none declared means any `--param` is passed as a string.
    pub params: Vec<ParamSpec>,
    /// Example arguments, as typed after `ocsh run SCRIPT`.
    pub examples: Vec<String>,
    /// What the script declares it may change (`@writes`, `@scope`, `@max`).
    pub reach: Reach,
}

impl Header {
    /// Reads the header of `source`; a malformed `@param`, `@writes`, `@scope` or `@max`
    /// line is an error naming it.
    pub fn parse(source: &str) -> Result<Header, String> {
        let mut h = Header::default();
        let mut text = Vec::new();
        for (i, line) in source.lines().enumerate() {
            let Some(rest) = line.trim_start().strip_prefix("//!") else {
                break;
            };
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            if let Some(spec) = rest.strip_prefix("@param") {
                h.params
                    .push(parse_param(spec).map_err(|e| format!("line {}: {e}", i + 1))?);
            } else if let Some(list) = rest.strip_prefix("@writes") {
                h.reach
                    .add_writes(list)
                    .map_err(|e| format!("line {}: {e}", i + 1))?;
            } else if let Some(dn) = rest.strip_prefix("@scope") {
                h.reach
                    .add_scope(dn)
                    .map_err(|e| format!("line {}: @scope: {e}", i + 1))?;
            } else if let Some(n) = rest.strip_prefix("@max") {
                h.reach
                    .set_max(n)
                    .map_err(|e| format!("line {}: {e}", i + 1))?;
            } else if let Some(ex) = rest.strip_prefix("@example") {
                h.examples.push(ex.trim().to_string());
            } else {
                text.push(rest.trim_end());
            }
        }
        h.description = text.join("\n").trim().to_string();
        Ok(h)
    }

    /// The typed `params` map from `--param` pairs: declared types, defaults, required
    /// ones, unknown names refused. Without declarations every pair is a string.
    pub fn params(&self, given: &[(String, String)]) -> Result<Map, String> {
        let mut map = Map::new();
        if self.params.is_empty() {
            for (k, v) in given {
                map.insert(k.as_str().into(), Dynamic::from(v.clone()));
            }
            return Ok(map);
        }
        for (k, _) in given {
            if !self.params.iter().any(|p| p.name == *k) {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "the script has no parameter {k:?}; it takes: {}",
                    known.join(", ")
                ));
            }
        }
        for p in &self.params {
            let value = given
                .iter()
                .rev()
                .find(|(k, _)| *k == p.name)
                .map(|(_, v)| v.clone())
                .or_else(|| p.default.clone());
            let Some(value) = value else {
                if p.required {
                    return Err(format!(
                        "missing required parameter: --param {}=... ({})",
                        p.name, p.description
                    ));
                }
                continue;
            };
            let typed = match p.kind {
                ParamKind::String => Dynamic::from(value),
                ParamKind::Int => Dynamic::from(value.trim().parse::<i64>().map_err(|_| {
                    format!("parameter {} must be an integer, not {value:?}", p.name)
                })?),
                ParamKind::Bool => {
                    Dynamic::from(match value.trim().to_ascii_lowercase().as_str() {
                        "true" | "yes" | "1" => true,
                        "false" | "no" | "0" => false,
                        _ => {
                            return Err(format!(
                                "parameter {} must be true or false, not {value:?}",
                                p.name
                            ));
                        }
                    })
                }
            };
            map.insert(p.name.as_str().into(), typed);
        }
        Ok(map)
    }

    /// The header as help text for `ocsh run SCRIPT --help`.
    pub fn help(&self, script: &str) -> String {
        let mut out = format!("{script}\n");
        if !self.description.is_empty() {
            out.push_str(&format!("\n{}\n", self.description));
        }
        if !self.params.is_empty() {
            out.push_str("\nParameters (--param NAME=VALUE):\n");
            for p in &self.params {
                let mut tags = Vec::new();
                if p.required {
                    tags.push("required".to_string());
                }
                match p.kind {
                    ParamKind::Int => tags.push("integer".into()),
                    ParamKind::Bool => tags.push("true/false".into()),
                    ParamKind::String => {}
                }
                if let Some(d) = &p.default {
                    tags.push(format!("default {d}"));
                }
                let tags = if tags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", tags.join(", "))
                };
                out.push_str(&format!("  {}{tags}\n      {}\n", p.name, p.description));
            }
        }
        if self.reach.is_declared() {
            out.push_str(&format!("\nReach: {}\n", self.reach.describe()));
        }
        for e in &self.examples {
            out.push_str(&format!("\nExample:\n  ocsh run {script} {e}\n"));
        }
        out
    }
}

fn parse_param(spec: &str) -> Result<ParamSpec, String> {
    let mut words = spec.split_whitespace().peekable();
    let name = words.next().ok_or("@param needs a name")?.to_string();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "@param name {name:?} may hold only letters, digits and '_'"
        ));
    }
    let mut p = ParamSpec {
        name,
        kind: ParamKind::String,
        required: false,
        default: None,
        description: String::new(),
    };
    while let Some(w) = words.peek().copied() {
        match w {
            "required" => p.required = true,
            "int" => p.kind = ParamKind::Int,
            "bool" => p.kind = ParamKind::Bool,
            "string" => p.kind = ParamKind::String,
            w if w.starts_with("default=") => p.default = Some(w["default=".len()..].to_string()),
            _ => break,
        }
        words.next();
    }
    p.description = words.collect::<Vec<_>>().join(" ");
    if p.required && p.default.is_some() {
        return Err(format!(
            "@param {} cannot be both required and have a default",
            p.name
        ));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "//! Enable users.\n//!\n//! From a list.\n//! @param file required the list\n//! @param pool default=pool01 the pool\n//! @param limit int default=0 at most this many\n//! @param dry bool flag it\n//! @example --param file=x.txt\nlet x = 1;\n";

    #[test]
    fn parses_description_params_examples() {
        let h = Header::parse(SCRIPT).unwrap();
        assert_eq!(h.description, "Enable users.\n\nFrom a list.");
        assert_eq!(h.params.len(), 4);
        assert_eq!(
            h.params[2],
            ParamSpec {
                name: "limit".into(),
                kind: ParamKind::Int,
                required: false,
                default: Some("0".into()),
                description: "at most this many".into()
            }
        );
        assert_eq!(h.examples, ["--param file=x.txt"]);
        assert!(
            h.help("s.rhai")
                .contains("  file [required]\n      the list")
        );
    }

    #[test]
    fn typed_params_with_defaults_and_checks() {
        let h = Header::parse(SCRIPT).unwrap();
        let given = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let m = h
            .params(&given(&[("file", "a.txt"), ("limit", "5"), ("dry", "yes")]))
            .unwrap();
        assert_eq!(m["limit"].as_int().unwrap(), 5);
        assert!(m["dry"].as_bool().unwrap());
        assert_eq!(m["pool"].to_string(), "pool01");
        assert!(
            h.params(&given(&[]))
                .unwrap_err()
                .contains("missing required parameter: --param file=... (the list)")
        );
        assert!(
            h.params(&given(&[("file", "a"), ("limit", "x")]))
                .unwrap_err()
                .contains("must be an integer")
        );
        assert!(
            h.params(&given(&[("file", "a"), ("pol", "x")]))
                .unwrap_err()
                .contains("no parameter \"pol\"; it takes: file, pool, limit, dry")
        );
        assert!(
            Header::parse("//! @param a required default=1 x\n")
                .unwrap_err()
                .contains("line 1")
        );
        // no declarations: anything goes, as strings
        assert_eq!(
            Header::parse("let x = 1;")
                .unwrap()
                .params(&given(&[("a", "1")]))
                .unwrap()["a"]
                .to_string(),
            "1"
        );
    }

    #[test]
    fn reach_lines_are_parsed_and_bad_ones_name_their_line() {
        let h = Header::parse(
            "//! Fix.\n//! @writes home_server\n//! @writes msRTCSIP-OptionFlags\n//! @scope OU=Migrated,DC=example,DC=com\n//! @max 100\n",
        )
        .unwrap();
        assert_eq!(
            h.reach.describe(),
            "writes msRTCSIP-PrimaryHomeServer, msRTCSIP-OptionFlags; within OU=Migrated,DC=example,DC=com; at most 100 entries"
        );
        assert!(
            h.help("s.rhai")
                .contains("\nReach: writes msRTCSIP-PrimaryHomeServer")
        );
        assert!(!Header::parse("//! x\n").unwrap().reach.is_declared());
        for (text, message) in [
            ("//! x\n//! @writes mail\n", "line 2: @writes \"mail\""),
            ("//! @scope not a dn\n", "line 1: @scope: invalid DN"),
            ("//! x\n//!\n//! @max -3\n", "line 3: @max \"-3\""),
            ("//! @max 3\n//! @max 4\n", "line 2: @max is declared twice"),
        ] {
            let e = Header::parse(text).unwrap_err();
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }
}
