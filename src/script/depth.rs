//! How deeply a script's values nest. Dropping, copying and printing a value recurse
//! once per level on the native stack, so nesting is kept below what that stack holds.

use std::collections::HashSet;

use rhai::{Array, Dynamic, FnPtr, Map};

/// A value nests deeper than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep;

/// The number of values visited when no value of `values` nests more than `max` levels
/// (arrays, maps, closures with their captured variables and curried arguments, and
/// shared cells each count one). Stops at the first level past `max`, so its own
/// recursion stays within it.
pub fn check<'a>(values: impl Iterator<Item = &'a Dynamic>, max: usize) -> Result<usize, TooDeep> {
    let mut seen = HashSet::new();
    let mut visited = 0;
    for v in values {
        walk(v, 1, max, &mut seen, &mut visited)?;
    }
    Ok(visited)
}

fn walk(
    v: &Dynamic,
    level: usize,
    max: usize,
    seen: &mut HashSet<usize>,
    visited: &mut usize,
) -> Result<(), TooDeep> {
    *visited += 1;
    let container = v.is_shared() || v.is_array() || v.is_map() || v.is::<FnPtr>();
    if !container {
        return Ok(());
    }
    if level > max {
        return Err(TooDeep);
    }
    if v.is_shared() {
        // A shared cell can be reached many times (every closure that captured it) and
        // can hold itself: each is walked once. One being written right now is skipped;
        // the next check sees it.
        if let Some(inner) = v.read_lock::<Dynamic>() {
            let at = &*inner as *const Dynamic as usize;
            if seen.insert(at) {
                walk(&inner, level + 1, max, seen, visited)?;
            }
        }
        return Ok(());
    }
    if let Some(a) = v.read_lock::<Array>() {
        for x in a.iter() {
            walk(x, level + 1, max, seen, visited)?;
        }
    } else if let Some(m) = v.read_lock::<Map>() {
        for x in m.values() {
            walk(x, level + 1, max, seen, visited)?;
        }
    } else if let Some(f) = v.read_lock::<FnPtr>() {
        for x in f.iter_curry() {
            walk(x, level + 1, max, seen, visited)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Dynamic {
        let mut v = Dynamic::from(1_i64);
        for _ in 0..levels {
            v = Dynamic::from_array(vec![v]);
        }
        v
    }

    #[test]
    fn nesting_is_measured_up_to_the_limit() {
        let v = nested(10);
        assert!(check(std::iter::once(&v), 10).is_ok());
        assert!(check(std::iter::once(&v), 9).is_err());
        let flat = Dynamic::from_array((0..1000).map(Dynamic::from).collect());
        assert!(check(std::iter::once(&flat), 1).is_ok());
    }
}
