//! Emitted records as a table or JSON.

use comfy_table::{ContentArrangement, Table, presets};
use rhai::Map;
use serde_json::Value;

use crate::plan::terminal::printable;
use crate::script::values::{map_to_json, to_text};

/// Keys that name the record's subject lead the table; Rhai maps are sorted by key, so
/// without this `user` would often come last.
const LEADING: [&str; 5] = ["user", "sam", "name", "dn", "pool"];

fn columns(records: &[Map]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for r in records {
        for k in r.keys() {
            if !columns.iter().any(|c| c == k.as_str()) {
                columns.push(k.to_string());
            }
        }
    }
    columns.sort_by_key(|c| {
        (
            LEADING.iter().position(|l| l == c).unwrap_or(LEADING.len()),
            c.clone(),
        )
    });
    columns
}

/// The records as CSV with a header row (same columns as the table).
pub fn records_csv(records: &[Map]) -> Result<String, crate::error::Error> {
    let columns = columns(records);
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| crate::error::Error::io("csv", e);
    if !records.is_empty() {
        w.write_record(&columns).map_err(fail)?;
    }
    for r in records {
        w.write_record(
            columns
                .iter()
                .map(|c| r.get(c.as_str()).map(to_text).unwrap_or_default()),
        )
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| crate::error::Error::io("csv", e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The records as a table whose columns are every key seen: identity keys first, the
/// rest in key order.
pub fn records_table(records: &[Map]) -> String {
    let columns = columns(records);
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(columns.iter().map(|c| printable(c).into_owned()));
    for r in records {
        t.add_row(columns.iter().map(|c| {
            r.get(c.as_str())
                .map(|v| printable(&to_text(v)).into_owned())
                .unwrap_or_default()
        }));
    }
    format!("{t}\n{} record(s)\n", records.len())
}

/// The records as JSON objects.
pub fn records_json(records: &[Map]) -> Value {
    Value::Array(
        records
            .iter()
            .map(|r| Value::Object(map_to_json(r)))
            .collect(),
    )
}
