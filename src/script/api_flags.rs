//! The `flags` object: OptionFlags by name, with the OR-only rules of `ocs::flags`.

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString};

use crate::ocs::{Flag, Flags};

use super::host::{refuse, to_rhai};

type Res<T> = Result<T, Box<EvalAltResult>>;

fn rule(e: crate::ocs::OcsError) -> Box<EvalAltResult> {
    to_rhai(e.into())
}

fn from_dynamic(v: Dynamic) -> Res<Flags> {
    if let Some(f) = v.clone().try_cast::<Flags>() {
        return Ok(f);
    }
    if let Some(i) = v.clone().try_cast::<i64>() {
        return Flags::new(i).map_err(rule);
    }
    if v.is_array() {
        let names: Vec<String> = v
            .cast::<Array>()
            .into_iter()
            .map(|n| {
                n.into_immutable_string()
                    .map(|s| s.to_string())
                    .map_err(|t| refuse(format!("a flag name must be a string, not {t}")))
            })
            .collect::<Res<_>>()?;
        return Flags::from_names(&names).map_err(rule);
    }
    match v.into_immutable_string() {
        Ok(name) => Flags::from_names(&[name.as_str()]).map_err(rule),
        Err(t) => Err(refuse(format!(
            "flags() takes a number, a flag name or an array of names, not {t}"
        ))),
    }
}

/// Registers `flags(...)`, the Flags type, its bit properties and operators.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Flags>("Flags");
    crate::doc_fn!(
        engine,
        "flags",
        "Flags from a number, a flag name or an array of names; reserved bits are refused.",
        from_dynamic
    );
    crate::doc_fn!(engine, "flags", "Empty flags (0).", Flags::default);
    crate::doc_get!(engine, "value", "The integer value.", |f: &mut Flags| {
        i64::from(f.value())
    });
    crate::doc_fn!(
        engine,
        "names",
        "The names of the set bits.",
        |f: &mut Flags| -> Array { f.names().into_iter().map(Dynamic::from).collect() }
    );
    crate::doc_fn!(
        engine,
        "has",
        "True when the named flag is set.",
        |f: &mut Flags, name: ImmutableString| -> Res<bool> {
            Ok(f.has(Flag::from_name(&name).map_err(rule)?))
        }
    );
    for flag in Flag::ALL {
        let doc = format!("Bit {}: {}.", flag.bit(), flag.meaning());
        crate::doc_get!(engine, flag.name(), &doc, move |f: &mut Flags| f.has(flag));
        crate::doc_set!(engine, flag.name(), &doc, move |f: &mut Flags, on: bool| f
            .set(flag, on)
            .map_err(rule));
    }
    engine.register_fn("|", |a: Flags, b: Flags| a.union(b));
    engine.register_fn("|", |a: Flags, b: i64| -> Res<Flags> {
        Ok(a.union(Flags::new(b).map_err(rule)?))
    });
    engine.register_fn("==", |a: Flags, b: Flags| a.value() == b.value());
    engine.register_fn("!=", |a: Flags, b: Flags| a.value() != b.value());
    engine.register_fn("==", |a: Flags, b: i64| i64::from(a.value()) == b);
    engine.register_fn("!=", |a: Flags, b: i64| i64::from(a.value()) != b);
    engine.register_fn("to_string", |f: &mut Flags| f.to_string());
    engine.register_fn("to_debug", |f: &mut Flags| format!("flags({f})"));
    crate::doc_fn!(engine, "to_int", "The integer value.", |f: &mut Flags| {
        i64::from(f.value())
    });
    crate::doc_fn!(
        engine,
        "flag_info",
        "Every documented OptionFlags bit as #{ name, bit, meaning }.",
        || -> Array {
            Flag::ALL
                .iter()
                .map(|f| {
                    let mut m = rhai::Map::new();
                    m.insert("name".into(), f.name().into());
                    m.insert("bit".into(), Dynamic::from(i64::from(f.bit())));
                    m.insert("meaning".into(), f.meaning().into());
                    Dynamic::from_map(m)
                })
                .collect()
        }
    );
}
