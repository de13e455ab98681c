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

/// Lines a table row may take before its long cells are cut with `…` (the full text is
/// in `--format json` and `csv`).
pub(crate) const ROW_LINES: usize = 4;

/// The width tables must fit: the terminal's, else `COLUMNS` (as a shell exports it);
/// `None` on a pipe without `COLUMNS`, where rows are not cut, so that `grep` sees whole
/// lines.
pub(crate) fn output_width() -> Option<u16> {
    Table::new().width().filter(|w| *w > 0).or_else(|| {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|w| *w >= 20)
    })
}

/// Makes `t` fit `width`: comfy-table's dynamic arrangement wraps the long columns, and
/// rows added with [`add_row`] are cut after [`ROW_LINES`] lines; without a width the
/// table is laid out as is.
pub(crate) fn fit(t: &mut Table, width: Option<u16>) {
    match width {
        Some(w) => {
            t.set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(w)
                .set_truncation_indicator("…");
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
}

/// A column whose cells are all at most this wide is never wrapped.
const SHORT_COLUMN: usize = 24;

/// Adds a row that is cut after [`ROW_LINES`] lines, control characters from directory
/// values shown escaped.
pub(crate) fn add_row(t: &mut Table, cells: Vec<String>) {
    let cells: Vec<String> = cells.iter().map(|c| printable(c).into_owned()).collect();
    let mut row = comfy_table::Row::from(cells);
    row.max_height(ROW_LINES);
    t.add_row(row);
}

/// The records as a table whose columns are every key seen: identity keys first, the
/// rest in key order; it fits the terminal (or `COLUMNS`), see [`output_width`].
pub fn records_table(records: &[Map]) -> String {
    let columns = columns(records);
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    fit(&mut t, output_width());
    t.set_header(columns.iter().map(|c| printable(c).into_owned()));
    let mut widest = vec![0usize; columns.len()];
    for r in records {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| r.get(c.as_str()).map(to_text).unwrap_or_default())
            .collect();
        for (w, c) in widest.iter_mut().zip(&cells) {
            *w = (*w).max(c.chars().count());
        }
        add_row(&mut t, cells);
    }
    // Short columns (names, states, numbers) keep their width, so that the long ones (DNs,
    // messages) are the ones that wrap.
    for (i, w) in widest.iter().enumerate() {
        if *w <= SHORT_COLUMN {
            if let Some(c) = t.column_mut(i) {
                c.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
            }
        }
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
