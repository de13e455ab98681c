//! `ocsh undo JOURNAL`: plan the reverse of a journalled run, and write it with --apply.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use super::args::{DirectoryArgs, Format};
use super::{ApplySettings, apply_plan, confirm, journal_directory, journal_footer, write_out};
use crate::error::Error;
use crate::plan::journal::{JournalFile, RunLog, SettingsLog, Verdict};
use crate::plan::undo::UndoNote;
use crate::plan::{Workspace, render};
use crate::replica::Replica;

/// `ocsh undo`.
#[derive(Debug, clap::Args)]
pub struct UndoArgs {
    /// The journal that holds the run; the undo is journalled there too, unless
    /// --journal says otherwise.
    #[arg(value_name = "JOURNAL")]
    pub file: PathBuf,
    /// The run to undo (its id, as `ocsh journal JOURNAL` lists them); default: the
    /// journal's last run.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// The directory (default: the one the run wrote to).
    #[command(flatten)]
    pub directory: DirectoryArgs,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the reverse changes.
    #[arg(long)]
    pub apply: bool,
    /// With --apply: do not ask for confirmation on a terminal.
    #[arg(long, short = 'y', requires = "apply")]
    pub yes: bool,
    /// Directory writes in flight at once during --apply (default 8).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub concurrency: Option<u64>,
    /// With --apply: allow an undo that disables, removes or moves up to N users (default
    /// 500, or the profile's max_destructive); --yes does not.
    #[arg(long, value_name = "N")]
    pub allow_destructive: Option<usize>,
    /// Journal the undo in this file instead of JOURNAL.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
}

/// Picks the run: by id, or the last one.
pub(crate) fn pick_run<'a>(
    file: &'a JournalFile,
    id: Option<&str>,
    path: &std::path::Path,
) -> Result<&'a RunLog, Error> {
    file.run(id).ok_or_else(|| match id {
        Some(id) => Error::Usage(format!(
            "no run {id:?} in {}; `ocsh journal {}` lists its runs",
            path.display(),
            path.display()
        )),
        None => Error::Usage(format!("{} holds no runs", path.display())),
    })
}

/// Runs `ocsh undo`.
pub fn undo(args: &UndoArgs, out: &mut dyn Write) -> Result<(), Error> {
    let file = JournalFile::read(&args.file)?;
    let run = pick_run(&file, args.run.as_deref(), &args.file)?;
    let recorded = run.directory().ok_or_else(|| {
        Error::Usage(format!(
            "run {} in {} has no begin line, so its directory is unknown",
            run.id,
            args.file.display()
        ))
    })?;
    let mut d = args.directory.clone();
    if d.directory.is_none() {
        d.directory = Some(recorded.to_string());
    }
    let (mut ws, resolved) = super::open_workspace(&d)?;
    let here = journal_directory(&resolved.spec);
    if here != recorded {
        return Err(Error::Usage(format!(
            "run {} wrote to {recorded}, not to {here}; give --directory {recorded} (or leave --directory out)",
            run.id
        )));
    }
    let summary = ws.stage_undo(run)?;
    let settings_note = match &run.settings {
        Some(s) => Some(stage_settings_undo(&mut ws, s)?),
        None => None,
    };
    let directory = ws.describe();
    let mut notes = String::new();
    for (dn, note) in &summary.entries {
        if !matches!(note, UndoNote::Reversed) {
            notes.push_str(&format!("{dn}: {}\n", note.text()));
        }
    }
    if let Some(n) = &settings_note {
        notes.push_str(&format!("replicator settings: {n}\n"));
    }
    let header = format!(
        "Undo of run {} ({} entries journalled: {} to reverse, {} left alone)\n",
        run.id,
        summary.entries.len(),
        summary.reversed(),
        summary.left_alone()
    );
    if args.format != Format::Json {
        write_out(out, &header)?;
        if !notes.is_empty() {
            write_out(out, &notes)?;
        }
        write_out(
            out,
            &format!("\n{}", render::plan_text(ws.plan(), &directory)),
        )?;
    }
    let plan_json = render::plan_json(ws.plan());
    let mut report_json = serde_json::Value::Null;
    let mut outcome = Ok(());
    if ws.plan().is_empty() {
        // Nothing to write.
    } else if !args.apply {
        if args.format != Format::Json {
            write_out(
                out,
                "\nDry run: nothing was written. Run again with --apply to write these changes.\n",
            )?;
        }
    } else {
        let settings = ApplySettings {
            command: "undo",
            directory: here,
            undoes: Some(run.id.clone()),
            yes: args.yes,
            concurrency: args
                .concurrency
                .or(resolved.concurrency)
                .unwrap_or(8)
                .clamp(1, 64) as usize,
            journal: Some(args.journal.clone().unwrap_or_else(|| args.file.clone())),
            limit: crate::plan::guard::Limit::resolve(
                args.allow_destructive,
                resolved.max_destructive,
            ),
        };
        // As for run: the guard before the question, so --yes cannot lift it.
        crate::plan::guard::check(ws.plan(), settings.limit).map_err(Error::Guard)?;
        let question = format!(
            "Apply {} change(s) to {} entries of {directory}?",
            ws.plan().change_count(),
            ws.plan().entry_count()
        );
        if std::io::stdin().is_terminal() && !args.yes && !confirm(&question)? {
            write_out(out, "Not applied.\n")?;
            return Ok(());
        }
        let report = apply_plan(&mut ws, &settings, None)?;
        if args.format != Format::Json {
            write_out(
                out,
                &format!(
                    "\n{}{}",
                    render::report_text(&report),
                    journal_footer(&report, &settings)
                ),
            )?;
        }
        report_json = render::report_json(&report);
        report_json["run"] = serde_json::json!(report.run);
        outcome = super::apply_outcome(&report);
    }
    if args.format == Format::Json {
        let doc = serde_json::json!({
            "directory": directory,
            "undoes": run.id,
            "entries": summary.entries.iter().map(|(dn, n)| serde_json::json!({
                "dn": dn,
                "reversed": *n == UndoNote::Reversed,
                "note": n.text(),
            })).collect::<Vec<_>>(),
            "replicator": settings_note,
            "plan": plan_json,
            "applied": report_json,
        });
        write_out(out, &format!("{doc:#}\n"))?;
    }
    outcome
}

/// The current text of a setting, as the journal writes it.
fn setting_now(s: &crate::ocs::ReplicatorSettings, name: &str) -> Option<String> {
    match name {
        "ReplicationCycleInterval" => Some(s.interval().to_string()),
        "RegenerateCookiesNow" => Some(s.regenerate_pending().to_string()),
        _ => None,
    }
}

/// Stages the reverse of a run's replicator settings change when the replica still holds
/// the run's values; says what it did.
fn stage_settings_undo(ws: &mut Workspace, log: &SettingsLog) -> Result<String, Error> {
    if matches!(log.outcome, Some((Verdict::Conflict | Verdict::Failed, _))) {
        return Ok("the run did not change them; nothing to do".into());
    }
    let path = PathBuf::from(&log.replica);
    let replica = Replica::open_existing(&path).map_err(super::replicator::replica_error)?;
    let now = replica
        .settings()
        .map_err(super::replicator::replica_error)?;
    let mut restored = now.clone();
    let mut changed = Vec::new();
    let mut at_before = 0;
    for (name, before, after) in &log.changes {
        let current = setting_now(&now, name);
        if current.as_deref() == Some(after.as_str()) {
            match name.as_str() {
                "ReplicationCycleInterval" => {
                    let seconds: i64 = before.parse().map_err(|_| {
                        Error::Usage(format!("journal: {name} {before:?} is not a number"))
                    })?;
                    restored
                        .set_interval(seconds)
                        .map_err(|e| Error::Usage(format!("journal: {e}")))?;
                }
                _ if before == "true" => restored.regenerate_cookies_now(),
                _ => {
                    restored.take_regenerate();
                }
            }
        } else if current.as_deref() == Some(before.as_str()) {
            at_before += 1;
        } else {
            changed.push(name.clone());
        }
    }
    if at_before == log.changes.len() {
        return Ok("already as before the run; nothing to do".into());
    }
    if !changed.is_empty() || at_before > 0 {
        return Ok(format!(
            "changed since the run ({}); left alone",
            changed.join(", ")
        ));
    }
    ws.stage_settings(&path, &now, restored);
    Ok("reversed".into())
}
