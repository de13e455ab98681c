//! Rhai values as text and JSON, for emitted records and REPL output.

use rhai::Dynamic;
use serde_json::{Map as JsonMap, Value};

use crate::ocs::Flags;

use super::api_pool::PoolObj;
use super::api_user::UserObj;

/// A value as a table cell: `()` empty, arrays joined, objects by their usual text.
pub fn to_text(v: &Dynamic) -> String {
    if v.is_unit() {
        return String::new();
    }
    if let Some(f) = v.read_lock::<Flags>() {
        return f.to_string();
    }
    if let Some(u) = v.read_lock::<UserObj>() {
        return u.host.ws.borrow().view(&u.read).label().to_string();
    }
    if let Some(p) = v.read_lock::<PoolObj>() {
        return p.pool.name.clone();
    }
    if v.is_array() {
        let arr = v.clone().cast::<rhai::Array>();
        return arr.iter().map(to_text).collect::<Vec<_>>().join(", ");
    }
    v.to_string()
}

/// A value as JSON; objects become their text form.
pub fn to_json(v: &Dynamic) -> Value {
    if v.is_unit() {
        return Value::Null;
    }
    if let Some(b) = v.clone().try_cast::<bool>() {
        return Value::Bool(b);
    }
    if let Some(i) = v.clone().try_cast::<i64>() {
        return Value::from(i);
    }
    if let Some(f) = v.clone().try_cast::<f64>() {
        return serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    if v.is_array() {
        return Value::Array(
            v.clone()
                .cast::<rhai::Array>()
                .iter()
                .map(to_json)
                .collect(),
        );
    }
    if v.is_map() {
        return Value::Object(map_to_json(&v.clone().cast::<rhai::Map>()));
    }
    Value::String(to_text(v))
}

/// A Rhai map as a JSON object.
pub fn map_to_json(m: &rhai::Map) -> JsonMap<String, Value> {
    m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()
}
