//! Showing a plan and an apply report: a readable table for people, JSON for tools.

use serde_json::{Value, json};

use super::terminal::printable;
use super::{ApplyOutcome, ApplyReport, Plan, SettingsChange, StagedEntry};

fn values(v: &[String]) -> String {
    match v {
        [] => "(absent)".to_string(),
        [one] => printable(one).into_owned(),
        many => many
            .iter()
            .map(|x| printable(x))
            .collect::<Vec<_>>()
            .join(" | "),
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
    let mut out = format!(
        "\n{}  ({})\n",
        printable(&entry.dn),
        printable(&entry.label)
    );
    for c in &entry.changes {
        let (before, after) = (values(&c.before), values(&c.after));
        if before.len() + after.len() <= 64 {
            out.push_str(&format!("  {:width$}  {before} → {after}\n", c.attr));
        } else {
            out.push_str(&format!("  {}\n    - {before}\n    + {after}\n", c.attr));
        }
    }
    for w in &entry.warnings {
        out.push_str(&format!("  warning: {}\n", printable(w)));
    }
    out
}

/// The plan as text: each entry with its changes and its remaining problems.
pub fn plan_text(plan: &Plan, directory: &str) -> String {
    if plan.is_empty() {
        return format!("No changes planned against {directory}.\n");
    }
    let entries = plan.entry_count();
    let what = match (entries, plan.settings_change().is_some()) {
        (0, true) => "the replicator settings".to_string(),
        (n, settings) => format!(
            "{n} entr{}{}",
            if n == 1 { "y" } else { "ies" },
            if settings {
                " and the replicator settings"
            } else {
                ""
            }
        ),
    };
    let mut out = format!(
        "Plan against {directory}: {} change(s) to {what}\n",
        plan.change_count()
    );
    for r in plan.reaches() {
        out.push_str(&format!("Declared reach: {}\n", r.describe()));
    }
    for e in plan.entries() {
        out.push_str(&entry_text(e));
    }
    if let Some(change) = plan.settings_change() {
        out.push_str(&settings_text(change));
    }
    out
}

/// The replicator's settings change, shown like an entry.
fn settings_text(change: &SettingsChange) -> String {
    let rows = change.changes();
    let width = rows.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    let mut out = format!(
        "
Replicator settings  ({}, InstanceID {})
",
        change.replica.display(),
        change.before.instance_id
    );
    for (name, before, after) in rows {
        out.push_str(&format!("  {name:width$}  {before} → {after}\n"));
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
    let mut doc = json!({ "entries": entries, "entry_count": plan.entry_count(), "change_count": plan.change_count() });
    if let Some(change) = plan.settings_change() {
        doc["replicator"] = settings_json(change);
    }
    doc
}

fn settings_json(change: &SettingsChange) -> Value {
    json!({
        "replica": change.replica.display().to_string(),
        "instance_id": change.before.instance_id.to_string(),
        "changes": change.changes().into_iter().map(|(n, b, a)| json!({"setting": n, "before": b, "after": a})).collect::<Vec<_>>(),
    })
}

/// The apply summary as text: every entry that did not land, then the counts.
pub fn report_text(report: &ApplyReport) -> String {
    let mut out = String::new();
    for (e, o) in &report.results {
        match o {
            ApplyOutcome::Applied => {}
            ApplyOutcome::Conflict(m) => out.push_str(&format!(
                "conflict: {} ({}): {}\n",
                printable(&e.dn),
                printable(&e.label),
                printable(m)
            )),
            ApplyOutcome::Failed(m) => out.push_str(&format!(
                "failed: {} ({}): {}\n",
                printable(&e.dn),
                printable(&e.label),
                printable(m)
            )),
        }
    }
    if let Some((change, outcome)) = &report.settings {
        let what = change
            .changes()
            .into_iter()
            .map(|(n, _, a)| format!("{n} = {a}"))
            .collect::<Vec<_>>()
            .join(", ");
        match outcome {
            ApplyOutcome::Applied => out.push_str(&format!(
                "Replicator settings written to {}: {what}.\n",
                change.replica.display()
            )),
            ApplyOutcome::Conflict(m) => {
                out.push_str(&format!("conflict: replicator settings: {m}\n"))
            }
            ApplyOutcome::Failed(m) => out.push_str(&format!("failed: replicator settings: {m}\n")),
        }
    }
    if report.results.is_empty() && report.settings.is_some() {
        return out;
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
    let mut doc = report_entries_json(report);
    if let Some((change, outcome)) = &report.settings {
        let (result, message) = match outcome {
            ApplyOutcome::Applied => ("applied", None),
            ApplyOutcome::Conflict(m) => ("conflict", Some(m)),
            ApplyOutcome::Failed(m) => ("failed", Some(m)),
        };
        let mut s = settings_json(change);
        s["result"] = json!(result);
        s["message"] = json!(message);
        doc["replicator"] = s;
    }
    doc
}

fn report_entries_json(report: &ApplyReport) -> Value {
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
