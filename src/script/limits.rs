//! The sandbox's limits: one table gives each its flag, profile key, default and the
//! ceiling the native stack of the script thread was sized for.

use std::fmt;

/// A limit the sandbox enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Rhai operations a run may perform.
    Operations,
    /// Bytes of memory a session may hold beyond what it held when it started.
    Memory,
    /// Nested function and closure calls.
    CallLevels,
    /// Nesting of expressions in the source (statements at the top, in functions).
    ExprDepth,
    /// Nesting of values: arrays, maps, closures and curried arguments inside each other.
    ValueDepth,
    /// Modules importing modules.
    ImportDepth,
    /// Modules a run may load.
    Modules,
}

/// Every limit, in the order `ocsh run --help` lists them.
pub const ALL: [Limit; 7] = [
    Limit::Operations,
    Limit::Memory,
    Limit::CallLevels,
    Limit::ExprDepth,
    Limit::ValueDepth,
    Limit::ImportDepth,
    Limit::Modules,
];

impl Limit {
    /// The command-line flag that sets it (without `--`).
    pub fn flag(self) -> &'static str {
        match self {
            Limit::Operations => "max-operations",
            Limit::Memory => "max-memory",
            Limit::CallLevels => "max-call-levels",
            Limit::ExprDepth => "max-expr-depth",
            Limit::ValueDepth => "max-value-depth",
            Limit::ImportDepth => "max-import-depth",
            Limit::Modules => "max-modules",
        }
    }

    /// The key under a profile's `[limits]` table.
    pub fn key(self) -> &'static str {
        match self {
            Limit::Operations => "max_operations",
            Limit::Memory => "max_memory",
            Limit::CallLevels => "max_call_levels",
            Limit::ExprDepth => "max_expr_depth",
            Limit::ValueDepth => "max_value_depth",
            Limit::ImportDepth => "max_import_depth",
            Limit::Modules => "max_modules",
        }
    }

    /// What it bounds, for messages and help.
    pub fn what(self) -> &'static str {
        match self {
            Limit::Operations => "Rhai operations in one run",
            Limit::Memory => "memory the script holds (values, records, plan)",
            Limit::CallLevels => "nested function and closure calls",
            Limit::ExprDepth => "nesting of expressions in the source",
            Limit::ValueDepth => "nesting of arrays, maps and closures inside each other",
            Limit::ImportDepth => "modules importing modules",
            Limit::Modules => "modules loaded by one run",
        }
    }

    /// The built-in value.
    ///
    /// `Operations` leaves about ten times the operations of the heaviest shipped script
    /// at 100,000 users (docs/performance.md); `Memory` holds maps and arrays of a few
    /// hundred thousand users' names and DNs.
    pub fn default_value(self) -> u64 {
        match self {
            Limit::Operations => 1_000_000_000,
            Limit::Memory => 1 << 30,
            Limit::CallLevels => 64,
            Limit::ExprDepth => 64,
            Limit::ValueDepth => 1_000,
            Limit::ImportDepth => 16,
            Limit::Modules => 100,
        }
    }

    /// The largest value accepted: what the script thread's native stack
    /// ([`NATIVE_STACK`]) holds at once (measured on debug builds, whose frames are the
    /// largest), or what the machine could not give anyway.
    pub fn ceiling(self) -> u64 {
        match self {
            Limit::Operations => u64::MAX,
            Limit::Memory => 1 << 40,
            Limit::CallLevels => 1_000,
            Limit::ExprDepth => 256,
            Limit::ValueDepth => 10_000,
            Limit::ImportDepth => 64,
            Limit::Modules => 10_000,
        }
    }

    /// A value of this limit as people read it (`1 GiB`, `64`).
    pub fn show(self, value: u64) -> String {
        match self {
            Limit::Memory => show_bytes(value),
            _ => value.to_string(),
        }
    }
}

/// The native stack of the thread that runs scripts, sized so that every limit at its
/// ceiling fits (see `docs/architecture.md`, "Sandbox limits"). Only the touched part
/// is ever backed by memory.
pub const NATIVE_STACK: usize = 1 << 30;

/// Operations between two checks of the values' nesting: a value grows by at most one
/// level per operation (plus what one expression can build), so between checks nothing
/// gets deeper than `max-value-depth` + this + [`EXPR_SLACK`], which the native stack holds.
pub const DEPTH_CHECK_EVERY: u64 = 20_000;

/// The levels one operation can add at most (a literal nests up to the expression depth).
pub const EXPR_SLACK: u64 = 256;

/// The values of all limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    values: [u64; ALL.len()],
}

impl Default for Limits {
    fn default() -> Limits {
        let mut values = [0; ALL.len()];
        for (v, l) in values.iter_mut().zip(ALL) {
            *v = l.default_value();
        }
        Limits { values }
    }
}

impl Limits {
    fn index(limit: Limit) -> usize {
        ALL.iter().position(|l| *l == limit).unwrap_or(0)
    }

    /// The value of `limit`.
    pub fn get(&self, limit: Limit) -> u64 {
        self.values[Self::index(limit)]
    }

    /// Sets `limit`; refuses zero and values above its ceiling, naming where it came from.
    pub fn set(&mut self, limit: Limit, value: u64, from: &str) -> Result<(), String> {
        if value == 0 || value > limit.ceiling() {
            return Err(format!(
                "{from}: {} must be between 1 and {} ({}), not {}",
                limit.flag(),
                limit.show(limit.ceiling()),
                limit.what(),
                limit.show(value)
            ));
        }
        self.values[Self::index(limit)] = value;
        Ok(())
    }

    /// `get` as a `usize` (the values are bounded by their ceilings).
    pub fn get_usize(&self, limit: Limit) -> usize {
        usize::try_from(self.get(limit)).unwrap_or(usize::MAX)
    }
}

/// A limit the script broke, carried out of the engine as the value of a termination
/// (which scripts cannot catch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitBroken {
    /// Which limit.
    pub limit: Limit,
    /// Its value in this run.
    pub value: u64,
}

impl fmt::Display for LimitBroken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.limit;
        write!(
            f,
            "the script broke the limit {} = {} ({}); raise it with --{} or `{} = ...` under [limits] in the profile",
            l.flag(),
            l.show(self.value),
            l.what(),
            l.flag(),
            l.key()
        )
    }
}

/// `1073741824` → `1 GiB`; exact multiples only, else bytes.
pub fn show_bytes(n: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// A size rounded to one decimal in the largest fitting unit (`12.3 MiB`), for figures.
pub fn show_bytes_approx(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift {
            return format!("{:.1} {unit}", n as f64 / (1u64 << shift) as f64);
        }
    }
    format!("{n} bytes")
}

/// Reads a size: a number of bytes, or one with a binary unit `K`, `M`, `G`, `T`
/// (`KiB`, `MB`... are read the same: powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 512M, 2G, 1073741824)"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_show() {
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("1073741824"), Ok(1 << 30));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5X").is_err());
        assert_eq!(show_bytes(1 << 30), "1 GiB");
        assert_eq!(show_bytes(1000), "1000 bytes");
    }

    #[test]
    fn defaults_fit_under_ceilings_and_zero_is_refused() {
        let mut l = Limits::default();
        for limit in ALL {
            assert!(limit.default_value() <= limit.ceiling(), "{limit:?}");
            assert_eq!(l.get(limit), limit.default_value());
        }
        assert!(l.set(Limit::CallLevels, 0, "--max-call-levels").is_err());
        let e = l
            .set(Limit::ValueDepth, 1_000_000, "--max-value-depth")
            .unwrap_err();
        assert!(e.contains("between 1 and 10000"), "{e}");
        assert!(l.set(Limit::CallLevels, 200, "--max-call-levels").is_ok());
        assert_eq!(l.get(Limit::CallLevels), 200);
    }

    #[test]
    fn a_broken_limit_says_how_to_raise_it() {
        let m = LimitBroken {
            limit: Limit::Memory,
            value: 1 << 30,
        }
        .to_string();
        assert!(m.contains("max-memory = 1 GiB"), "{m}");
        assert!(m.contains("--max-memory"), "{m}");
        assert!(m.contains("`max_memory = ...` under [limits]"), "{m}");
    }
}
