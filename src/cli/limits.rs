//! The sandbox limits on the command line (`--max-...`) and in a profile's `[limits]`
//! table; a flag wins over the profile, the profile over the default.

use serde::Deserialize;

use crate::error::Error;
use crate::script::limits::{self, Limit, Limits};

/// The limit flags of `run`, `repl` and `check` (defaults in the help; ceilings are
/// checked when the limits are resolved).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Limits (also `[limits]` in a profile, as max_operations = ...)")]
pub struct LimitArgs {
    /// Rhai operations one run may perform [default: 1000000000].
    #[arg(long, value_name = "N")]
    pub max_operations: Option<u64>,
    /// Memory the script may hold: its values, emitted records and planned changes
    /// (512M, 2G...) [default: 1G].
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_bytes)]
    pub max_memory: Option<u64>,
    /// Nested function and closure calls [default: 64, at most 1000].
    #[arg(long, value_name = "N")]
    pub max_call_levels: Option<u64>,
    /// Nesting of expressions in the source (half of it inside functions)
    /// [default: 64, at most 256].
    #[arg(long, value_name = "N")]
    pub max_expr_depth: Option<u64>,
    /// Nesting of arrays, maps and closures inside each other [default: 1000, at most
    /// 10000].
    #[arg(long, value_name = "N")]
    pub max_value_depth: Option<u64>,
    /// Modules importing modules [default: 16, at most 64].
    #[arg(long, value_name = "N")]
    pub max_import_depth: Option<u64>,
    /// Modules one run may load [default: 100].
    #[arg(long, value_name = "N")]
    pub max_modules: Option<u64>,
}

impl LimitArgs {
    fn get(&self, limit: Limit) -> Option<u64> {
        match limit {
            Limit::Operations => self.max_operations,
            Limit::Memory => self.max_memory,
            Limit::CallLevels => self.max_call_levels,
            Limit::ExprDepth => self.max_expr_depth,
            Limit::ValueDepth => self.max_value_depth,
            Limit::ImportDepth => self.max_import_depth,
            Limit::Modules => self.max_modules,
        }
    }
}

/// A size in a profile: bytes, or text with a unit (`"2G"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Size {
    /// A number of bytes.
    Bytes(u64),
    /// A size with a unit.
    Text(String),
}

/// A profile's `[limits]` table (`[profiles.NAME.limits]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileLimits {
    /// See `--max-operations`.
    pub max_operations: Option<u64>,
    /// See `--max-memory`.
    pub max_memory: Option<Size>,
    /// See `--max-call-levels`.
    pub max_call_levels: Option<u64>,
    /// See `--max-expr-depth`.
    pub max_expr_depth: Option<u64>,
    /// See `--max-value-depth`.
    pub max_value_depth: Option<u64>,
    /// See `--max-import-depth`.
    pub max_import_depth: Option<u64>,
    /// See `--max-modules`.
    pub max_modules: Option<u64>,
}

impl ProfileLimits {
    fn get(&self, limit: Limit) -> Result<Option<u64>, String> {
        Ok(match limit {
            Limit::Operations => self.max_operations,
            Limit::Memory => match &self.max_memory {
                None => None,
                Some(Size::Bytes(n)) => Some(*n),
                Some(Size::Text(t)) => Some(limits::parse_bytes(t)?),
            },
            Limit::CallLevels => self.max_call_levels,
            Limit::ExprDepth => self.max_expr_depth,
            Limit::ValueDepth => self.max_value_depth,
            Limit::ImportDepth => self.max_import_depth,
            Limit::Modules => self.max_modules,
        })
    }
}

/// The limits of a run: each flag, else the profile's `[limits]`, else the default.
pub fn resolve(flags: &LimitArgs, profile: Option<&ProfileLimits>) -> Result<Limits, Error> {
    let mut out = Limits::default();
    for limit in limits::ALL {
        let (value, from) = match flags.get(limit) {
            Some(v) => (Some(v), format!("--{}", limit.flag())),
            None => {
                let from = format!("the profile's [limits] {}", limit.key());
                let v = match profile {
                    Some(p) => p
                        .get(limit)
                        .map_err(|e| Error::Usage(format!("{from}: {e}")))?,
                    None => None,
                };
                (v, from)
            }
        };
        if let Some(v) = value {
            out.set(limit, v, &from).map_err(Error::Usage)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_wins_over_the_profile_and_the_profile_over_the_default() {
        let profile: ProfileLimits =
            toml::from_str("max_memory = \"2G\"\nmax_call_levels = 100\n").unwrap();
        let flags = LimitArgs {
            max_call_levels: Some(200),
            ..LimitArgs::default()
        };
        let l = resolve(&flags, Some(&profile)).unwrap();
        assert_eq!(l.get(Limit::CallLevels), 200);
        assert_eq!(l.get(Limit::Memory), 2 << 30);
        assert_eq!(l.get(Limit::Operations), Limit::Operations.default_value());
        let bad: ProfileLimits = toml::from_str("max_value_depth = 99999999\n").unwrap();
        let e = resolve(&LimitArgs::default(), Some(&bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[limits] max_value_depth"), "{e}");
        assert!(toml::from_str::<ProfileLimits>("max_bananas = 1\n").is_err());
    }

    /// The defaults written in the flags' help are the engine's.
    #[test]
    fn the_help_shows_the_defaults_and_ceilings() {
        use clap::CommandFactory;
        let help = super::super::args::Cli::command()
            .find_subcommand_mut("run")
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        for limit in limits::ALL {
            let default = match limit {
                Limit::Memory => "1G".to_string(),
                _ => limit.default_value().to_string(),
            };
            let flag = format!("--{}", limit.flag());
            let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
            let at = help
                .find(&flag)
                .unwrap_or_else(|| panic!("{flag} in\n{help}"));
            let text = &help[at + flag.len()..];
            let text = &text[..text.find(" --").unwrap_or(text.len())];
            assert!(
                text.contains(&format!("default: {default}")),
                "{flag}: {text}"
            );
            if limit.ceiling() <= 10_000 && limit != Limit::Modules {
                assert!(
                    text.contains(&format!("at most {}", limit.ceiling())),
                    "{flag}: {text}"
                );
            }
        }
    }
}
