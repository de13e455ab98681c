//! `ocsh journal JOURNAL`: the runs a journal holds and what became of them.

use std::io::Write;
use std::path::PathBuf;

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::{Value, json};

use super::args::Format;
use super::undo::pick_run;
use super::write_out;
use crate::error::Error;
use crate::plan::journal::{EntryLog, JournalFile, RunLog, Verdict};

/// `ocsh journal`.
#[derive(Debug, clap::Args)]
pub struct JournalArgs {
    /// The journal file.
    #[arg(value_name = "JOURNAL")]
    pub file: PathBuf,
    /// Show this run's entries, one by one.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn outcome_word(e: &EntryLog) -> &'static str {
    match &e.outcome {
        Some((v, _)) => v.as_str(),
        None => "unknown",
    }
}

fn run_json(r: &RunLog) -> Value {
    let b = r.begin.as_ref();
    json!({
        "run": r.id,
        "time": b.map(|b| b.time.clone()),
        "command": b.map(|b| b.command.clone()),
        "script": b.and_then(|b| b.script.clone()),
        "undoes": b.and_then(|b| b.undoes.clone()),
        "directory": r.directory(),
        "entries": r.entries.len(),
        "applied": r.count(Verdict::Applied),
        "conflicted": r.count(Verdict::Conflict),
        "failed": r.count(Verdict::Failed),
        "unknown": r.unknown(),
        "replicator": r.settings.as_ref().map(|s| json!({
            "replica": s.replica,
            "result": s.outcome.as_ref().map_or("unknown", |(v, _)| v.as_str()),
        })),
        "state": r.state().as_str(),
    })
}

fn entries_json(r: &RunLog) -> Value {
    Value::Array(
        r.entries
            .iter()
            .map(|(i, e)| {
                json!({
                    "entry": i,
                    "dn": e.dn,
                    "result": outcome_word(e),
                    "message": e.outcome.as_ref().and_then(|(_, m)| m.clone()),
                    "changes": e.changes.iter().map(|c| json!({"attribute": c.attr, "before": c.before, "after": c.after})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled);
    t
}

fn runs_table(file: &JournalFile) -> String {
    let mut t = table();
    t.set_header([
        "run",
        "time",
        "command",
        "directory",
        "entries",
        "applied",
        "conflict",
        "failed",
        "unknown",
        "state",
    ]);
    for r in &file.runs {
        let b = r.begin.as_ref();
        let command = match b {
            Some(b) => match &b.undoes {
                Some(u) => format!("undo {u}"),
                None => match &b.script {
                    Some(s) => format!("{} {s}", b.command),
                    None => b.command.clone(),
                },
            },
            None => "?".into(),
        };
        t.add_row([
            r.id.clone(),
            b.map(|b| b.time.clone()).unwrap_or_default(),
            command,
            r.directory().unwrap_or("?").to_string(),
            r.entries.len().to_string(),
            r.count(Verdict::Applied).to_string(),
            r.count(Verdict::Conflict).to_string(),
            r.count(Verdict::Failed).to_string(),
            r.unknown().to_string(),
            r.state().as_str().to_string(),
        ]);
    }
    format!("{t}\n{} run(s)\n", file.runs.len())
}

fn entries_table(r: &RunLog) -> String {
    let mut t = table();
    t.set_header(["entry", "dn", "result", "changes"]);
    for (i, e) in &r.entries {
        let changes = e
            .changes
            .iter()
            .map(|c| c.attr.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let result = match &e.outcome {
            Some((v, Some(m))) => format!("{}: {m}", v.as_str()),
            _ => outcome_word(e).to_string(),
        };
        t.add_row([i.to_string(), e.dn.clone(), result, changes]);
    }
    format!(
        "Run {} ({}): {} entries, {} applied, {} unknown\n{t}\n",
        r.id,
        r.state().as_str(),
        r.entries.len(),
        r.count(Verdict::Applied),
        r.unknown()
    )
}

/// Runs `ocsh journal`.
pub fn list(args: &JournalArgs, out: &mut dyn Write) -> Result<(), Error> {
    let file = JournalFile::read(&args.file)?;
    let skipped = file
        .skipped
        .iter()
        .map(|(n, why)| format!("line {n} skipped: {why}\n"))
        .collect::<String>();
    match (&args.run, args.format) {
        (Some(id), Format::Json) => {
            let r = pick_run(&file, Some(id), &args.file)?;
            let mut doc = run_json(r);
            doc["entry_log"] = entries_json(r);
            write_out(out, &format!("{doc:#}\n"))?;
        }
        (Some(id), _) => {
            let r = pick_run(&file, Some(id), &args.file)?;
            write_out(out, &entries_table(r))?;
        }
        (None, Format::Json) => {
            let doc = json!({
                "journal": args.file.display().to_string(),
                "runs": file.runs.iter().map(run_json).collect::<Vec<_>>(),
                "skipped": file.skipped.iter().map(|(n, why)| json!({"line": n, "why": why})).collect::<Vec<_>>(),
            });
            write_out(out, &format!("{doc:#}\n"))?;
        }
        (None, _) => write_out(out, &runs_table(&file))?,
    }
    if !skipped.is_empty() && args.format != Format::Json {
        eprint!("{skipped}");
    }
    Ok(())
}
