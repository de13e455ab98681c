//! A tiny deterministic random source for the parsers' random-input tests: the same
//! inputs every run, no dependency.

/// A xorshift64 generator starting from `seed` (which must not be 0).
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
