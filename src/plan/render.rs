//! Showing a plan and an apply report: a readable table for people, JSON for tools.

use serde_json::{Value, json};

use super::{ApplyOutcome, ApplyReport, Plan, StagedEntry};

fn values(v: &[String]) -> String {
    match v {
        [] => "(absent)".to_string(),
        [one] => one.clone(),
        many => many.join(" | "),
    }
}

/// Changes whose values fit on one line are shown `attr  before → after`; longer ones
/// (DNs) as a `-`/`+` pair, so that a DN never wraps into a table cell.
fn entry_text(entry: &StagedEntry) -> String {
    let width = entry
        .changes
        .iter()
        .map(|c| c.attr.len())
        .max()
        .unwrap_or(0);
    let mut out = format!("\n{}  ({})\n", entry.dn, entry.label);
    for c in &entry.changes {
        let (before, after) = (values(&c.before), values(&c.after));
        if before.len() + after.len() <= 64 {
            out.push_str(&format!("  {:width$}  {before} → {after}\n", c.attr));
        } else {
            out.push_str(&format!("  {}\n    - {before}\n    + {after}\n", c.attr));
        }
    }
    for w in &entry.warnings {
        out.push_str(&format!("  warning: {w}\n"));
    }
    out
}

/// The plan as text: each entry with its changes and its remaining problems.
pub fn plan_text(plan: &Plan, directory: &str) -> String {
    if plan.is_empty() {
        return format!("No changes planned against {directory}.\n");
    }
    let entries = plan.entry_count();
    let mut out = format!(
        "Plan against {directory}: {} change(s) to {entries} entr{}\n",
        plan.change_count(),
        if entries == 1 { "y" } else { "ies" }
    );
    for e in plan.entries() {
        out.push_str(&entry_text(e));
    }
    out
}

/// The plan as JSON.
pub fn plan_json(plan: &Plan) -> Value {
    let entries: Vec<Value> = plan
        .entries()
        .map(|e| {
            json!({
                "dn": e.dn,
                "user": e.label,
                "changes": e.changes.iter().map(|c| json!({"attribute": c.attr, "before": c.before, "after": c.after})).collect::<Vec<_>>(),
                "warnings": e.warnings,
            })
        })
        .collect();
    json!({ "entries": entries, "entry_count": plan.entry_count(), "change_count": plan.change_count() })
}

/// The apply summary as text: every entry that did not land, then the counts.
pub fn report_text(report: &ApplyReport) -> String {
    let mut out = String::new();
    for (e, o) in &report.results {
        match o {
            ApplyOutcome::Applied => {}
            ApplyOutcome::Conflict(m) => {
                out.push_str(&format!("conflict: {} ({}): {m}\n", e.dn, e.label))
            }
            ApplyOutcome::Failed(m) => {
                out.push_str(&format!("failed: {} ({}): {m}\n", e.dn, e.label))
            }
        }
    }
    out.push_str(&format!(
        "Applied {} of {} entr{}: {} conflicted, {} failed.\n",
        report.applied(),
        report.results.len(),
        if report.results.len() == 1 {
            "y"
        } else {
            "ies"
        },
        report.conflicted(),
        report.failed()
    ));
    out
}

/// The apply summary as JSON.
pub fn report_json(report: &ApplyReport) -> Value {
    json!({
        "applied": report.applied(),
        "conflicted": report.conflicted(),
        "failed": report.failed(),
        "entries": report.results.iter().map(|(e, o)| {
            let (result, message) = match o {
                ApplyOutcome::Applied => ("applied", None),
                ApplyOutcome::Conflict(m) => ("conflict", Some(m)),
                ApplyOutcome::Failed(m) => ("failed", Some(m)),
            };
            json!({"dn": e.dn, "user": e.label, "result": result, "message": message})
        }).collect::<Vec<_>>(),
    })
}
