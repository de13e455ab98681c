//! The functions of the standard package that build a large value from a small
//! argument (`pad`, `blob`), replaced by ones that first check the size against the
//! memory budget: the budget is otherwise checked between operations, and one such
//! call could ask for more memory than the machine has before the next check.

use std::rc::Rc;

use rhai::{Array, Blob, Dynamic, Engine, EvalAltResult, INT, ImmutableString, Position};

use super::engine::RunState;
use super::limits::{Limit, LimitBroken, Limits};

/// Bytes one array element takes (a Rhai value).
const VALUE_BYTES: usize = std::mem::size_of::<Dynamic>();

fn guard(state: &RunState, limits: &Limits, bytes: usize) -> Result<(), Box<EvalAltResult>> {
    let budget = usize::try_from(limits.get(Limit::Memory)).unwrap_or(usize::MAX);
    if state.memory_used().saturating_add(bytes) > budget {
        return Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(LimitBroken {
                limit: Limit::Memory,
                value: limits.get(Limit::Memory),
            }),
            Position::NONE,
        )));
    }
    Ok(())
}

fn len_of(n: INT) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// Registers the checked `pad` (arrays, strings, BLOBs) and `blob(len)`.
pub fn register(engine: &mut Engine, state: &Rc<RunState>, limits: &Limits) {
    let (s, l) = (state.clone(), limits.clone());
    engine.register_fn(
        "pad",
        move |a: &mut Array, len: INT, item: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let len = len_of(len);
            if len > a.len() {
                guard(&s, &l, (len - a.len()).saturating_mul(VALUE_BYTES))?;
                a.resize(len, item);
            }
            Ok(())
        },
    );
    let (s, l) = (state.clone(), limits.clone());
    engine.register_fn(
        "pad",
        move |b: &mut Blob, len: INT, value: INT| -> Result<(), Box<EvalAltResult>> {
            let len = len_of(len);
            if len > b.len() {
                guard(&s, &l, len - b.len())?;
                b.resize(len, (value & 0xff) as u8);
            }
            Ok(())
        },
    );
    let (s, l) = (state.clone(), limits.clone());
    engine.register_fn(
        "pad",
        move |t: &mut ImmutableString, len: INT, c: char| -> Result<(), Box<EvalAltResult>> {
            let len = len_of(len);
            let have = t.chars().count();
            if len > have {
                guard(&s, &l, (len - have).saturating_mul(c.len_utf8()))?;
                let p = t.make_mut();
                p.extend(std::iter::repeat_n(c, len - have));
            }
            Ok(())
        },
    );
    let (s, l) = (state.clone(), limits.clone());
    engine.register_fn(
        "pad",
        move |t: &mut ImmutableString, len: INT, padding: &str| -> Result<(), Box<EvalAltResult>> {
            let len = len_of(len);
            let have = t.chars().count();
            if len > have && !padding.is_empty() {
                guard(&s, &l, (len - have).saturating_mul(4))?;
                let p = t.make_mut();
                p.extend(padding.chars().cycle().take(len - have));
            }
            Ok(())
        },
    );
    let (s, l) = (state.clone(), limits.clone());
    engine.register_fn(
        "blob",
        move |len: INT| -> Result<Blob, Box<EvalAltResult>> {
            guard(&s, &l, len_of(len))?;
            Ok(vec![0; len_of(len)])
        },
    );
    let (s, l) = (state.clone(), limits.clone());
    engine.register_fn(
        "blob",
        move |len: INT, value: INT| -> Result<Blob, Box<EvalAltResult>> {
            guard(&s, &l, len_of(len))?;
            Ok(vec![(value & 0xff) as u8; len_of(len)])
        },
    );
}
