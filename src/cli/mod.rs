//! The command line: thin glue from arguments to the library's layers.

pub mod args;
pub mod complete;
pub mod config;
pub mod journal;
pub mod limits;
pub mod output;
pub mod policy;
pub mod repl;
pub mod replicator;
pub mod show;
pub mod tester;
pub mod undo;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use rhai::Map;

use crate::directory::demo;
use crate::error::Error;
use crate::plan::journal::Journal;
use crate::plan::{RunInfo, Workspace, render};
use crate::script::header::Header;
use crate::script::{Sandbox, Session};

use args::{Cli, Command, DirectoryArgs, Format, RunArgs};

/// Parses the arguments and runs the command on a thread whose native stack holds every
/// sandbox limit at its ceiling (`script::limits::NATIVE_STACK`); the return value is
/// the exit code.
pub fn main() -> u8 {
    let thread = std::thread::Builder::new()
        .name("ocsh".into())
        .stack_size(crate::script::limits::NATIVE_STACK)
        .spawn(main_on_this_thread);
    match thread.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        // A panic has printed its message already.
        Ok(Err(_)) => crate::error::exit::FAILURE,
        Err(e) => {
            eprintln!("ocsh: cannot start the script thread: {e}");
            crate::error::exit::FAILURE
        }
    }
}

fn main_on_this_thread() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                crate::error::exit::USAGE
            } else {
                crate::error::exit::OK
            };
        }
    };
    let mut stdout = std::io::stdout().lock();
    match dispatch(cli.command, &mut stdout) {
        Ok(()) => crate::error::exit::OK,
        Err(e) => {
            let _ = stdout.flush();
            eprintln!("ocsh: {e}");
            e.exit_code()
        }
    }
}

fn dispatch(command: Option<Command>, out: &mut dyn Write) -> Result<(), Error> {
    let command = match command {
        Some(c) => c,
        // Bare `ocsh`: the REPL with its defaults (and the OCSH_* environment).
        None => Cli::try_parse_from(["ocsh", "repl"])
            .map_err(|e| Error::Usage(e.to_string()))?
            .command
            .ok_or_else(|| Error::Usage("no command".into()))?,
    };
    match command {
        Command::Repl(args) => repl::repl(&args, out),
        Command::Run(args) => run(&args, out),
        Command::Check {
            files,
            lib,
            strict,
            limits,
        } => check(&files, &lib, strict, &limits, out),
        Command::Test(args) => tester::main(&args, out),
        Command::Docs { definitions } => docs(definitions.as_deref(), out),
        Command::Demo { file, force, users } => write_demo(&file, force, users, out),
        Command::Completions { shell } => completions(shell, out),
        Command::Man => man_page(out),
        Command::Replicator { command } => replicator::main(*command, out),
        Command::Undo(args) => undo::undo(&args, out),
        Command::Journal(args) => journal::list(&args, out),
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::io(path.display().to_string(), e)
}

fn read_script(path: &Path) -> Result<String, Error> {
    crate::directory::input_file::read_text(path, crate::directory::input_file::MAX_SCRIPT)
        .map_err(|e| io_err(path, e))
}

/// Reads `--param name=value` pairs.
pub fn param_pairs(pairs: &[String]) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| Error::Usage(format!("--param {p:?} must be NAME=VALUE")))?;
        out.push((k.trim().to_string(), v.to_string()));
    }
    Ok(out)
}

fn open_workspace(d: &DirectoryArgs) -> Result<(Workspace, config::Resolved), Error> {
    let resolved = config::resolve(d)?;
    let mut ws = Workspace::connect(&resolved.spec, &resolved.ldap, resolved.op_timeout)?;
    ws.set_replica_path(replicator::replica_path(d).ok());
    Ok((ws, resolved))
}

fn run(args: &RunArgs, out: &mut dyn Write) -> Result<(), Error> {
    let Some(file) = &args.file else {
        if args.help {
            write_out(out, &run_help())?;
            return Ok(());
        }
        return Err(Error::Usage(
            "ocsh run needs a script: ocsh run SCRIPT [--param NAME=VALUE]...".into(),
        ));
    };
    let source = read_script(file)?;
    let name = file.display().to_string();
    let header = Header::parse(&source).map_err(|e| Error::Usage(format!("{name}: header {e}")))?;
    if args.help {
        write_out(out, &format!("{}\n{}", header.help(&name), run_help()))?;
        return Ok(());
    }
    let params = header
        .params(&param_pairs(&args.common.params)?)
        .map_err(|e| Error::Usage(format!("{name}: {e}")))?;
    let (ws, resolved) = open_workspace(&args.common.directory)?;
    if args.apply && !resolved.spec.is_persistent() {
        return Err(Error::Usage(
            "--apply needs a directory that keeps changes; the built-in demo lives in memory. \
             Write it out with `ocsh demo demo.ldif` and run with --directory demo.ldif"
                .into(),
        ));
    }
    let sandbox = Sandbox {
        limits: limits::resolve(&args.limits, resolved.limits.as_ref())?,
        timeout: Some(Duration::from_secs(args.timeout)),
        lib: config::lib_folders(&args.common.lib, &resolved.lib)?,
        allow_read: allowed_reads(&args.common.allow_read)?,
        stats: args.stats,
        ..Sandbox::default()
    };
    let apply = args.apply.then(|| ApplySettings {
        command: "run",
        directory: journal_directory(&resolved.spec),
        undoes: None,
        yes: args.yes,
        concurrency: args
            .concurrency
            .or(resolved.concurrency)
            .unwrap_or(8)
            .clamp(1, 64) as usize,
        journal: args.journal.clone().or(resolved.journal.clone()),
        limit: crate::plan::guard::Limit::resolve(
            args.common.allow_destructive,
            resolved.max_destructive,
        ),
    });
    let mut file_out = match &args.common.output {
        Some(path) => Some(std::fs::File::create(path).map_err(|e| io_err(path, e))?),
        None => None,
    };
    let out: &mut dyn Write = match file_out.as_mut() {
        Some(f) => f,
        None => out,
    };
    run_source(
        ws,
        params,
        &sandbox,
        &name,
        &source,
        args.common.format,
        apply.as_ref(),
        out,
    )
}

/// The `--allow-read` grants, each of which must exist.
pub(crate) fn allowed_reads(
    paths: &[std::path::PathBuf],
) -> Result<Vec<std::path::PathBuf>, Error> {
    for p in paths {
        if !p.exists() {
            return Err(Error::Usage(format!(
                "--allow-read {}: no such file or folder",
                p.display()
            )));
        }
    }
    Ok(paths.to_vec())
}

fn run_help() -> String {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    cli.find_subcommand_mut("run")
        .map(|c| c.render_long_help().to_string())
        .unwrap_or_default()
}

/// How `--apply` (or the REPL's `:apply`, or `undo --apply`) writes.
#[derive(Debug, Clone)]
pub struct ApplySettings {
    /// The command, as the journal names it (`run`, `repl`, `undo`).
    pub command: &'static str,
    /// The directory as the journal names it ([`journal_directory`]).
    pub directory: String,
    /// The run an undo reverses.
    pub undoes: Option<String>,
    /// Do not ask on a terminal.
    pub yes: bool,
    /// Writes in flight.
    pub concurrency: usize,
    /// The journal file; the default one when `None`.
    pub journal: Option<std::path::PathBuf>,
    /// The blast-radius guard's limit.
    pub limit: crate::plan::guard::Limit,
}

fn write_out(out: &mut dyn Write, s: &str) -> Result<(), Error> {
    out.write_all(s.as_bytes())
        .map_err(|e| Error::io("stdout", e))
}

/// Runs a script in a fresh session and shows its records and plan; with `apply`,
/// writes the plan. Shared by `ocsh run` and the REPL on a pipe.
#[allow(clippy::too_many_arguments)]
pub fn run_source(
    ws: Workspace,
    params: Map,
    limits: &Sandbox,
    name: &str,
    source: &str,
    format: Format,
    apply: Option<&ApplySettings>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    if format == Format::Ldif && apply.is_some() {
        return Err(Error::Usage(
            "--format ldif writes the plan for ldapmodify and applies nothing; drop --apply, \
             or apply with another --format"
                .into(),
        ));
    }
    // print() output goes to stdout as the script runs, or to stderr when stdout must
    // hold one JSON, CSV or LDIF document.
    let printed: Box<dyn Write> = match format {
        Format::Table => Box::new(std::io::stdout()),
        Format::Json | Format::Csv | Format::Ldif => Box::new(std::io::stderr()),
    };
    let header = Header::parse(source).map_err(|e| Error::Usage(format!("{name}: header {e}")))?;
    let mut ws = ws;
    ws.declare_reach(&header.reach);
    let mut session = Session::new(ws, params, limits, printed);
    let result = session.run(name, source);
    if limits.stats {
        eprintln!("ocsh: stats: {name}: {}", session.stats_line());
    }
    let records = session.take_records();
    let host = session.host().clone();
    let mut ws = host.ws.borrow_mut();
    let directory = ws.describe();
    // A failed script writes nothing, but what it emitted before failing is still shown.
    if format == Format::Table && !records.is_empty() {
        write_out(out, &output::records_table(&records))?;
    }
    if format == Format::Csv {
        write_out(out, &output::records_csv(&records)?)?;
    }
    // The LDIF document holds the plan only; the records go beside it.
    if format == Format::Ldif && !records.is_empty() {
        eprint!("{}", output::records_table(&records));
    }
    if let Err(e) = result {
        if format == Format::Json {
            let doc = serde_json::json!({ "directory": directory, "records": output::records_json(&records), "error": e.to_string() });
            write_out(out, &format!("{doc:#}\n"))?;
        }
        return Err(Error::Script(e));
    }
    // Only the JSON document shows it; building it costs as much as a pass over the plan.
    let plan_json = (format == Format::Json).then(|| render::plan_json(ws.plan()));
    let planned = !ws.plan().is_empty();
    match format {
        Format::Table => {
            if !records.is_empty() {
                write_out(out, "\n")?;
            }
            write_out(out, &render::plan_text(ws.plan(), &directory))?;
        }
        // The CSV document holds the records only; the plan goes beside it.
        Format::Csv if planned => eprint!("{}", render::plan_text(ws.plan(), &directory)),
        Format::Ldif => {
            write_out(out, &crate::plan::ldif::plan_ldif(ws.plan(), &directory))?;
            if ws.plan().settings_change().is_some() {
                eprintln!(
                    "ocsh: the replicator settings change is not in the LDIF (it is written to the replica, not the directory)"
                );
            }
        }
        _ => {}
    }
    // The declared reach, beside the guard: refused after the plan is shown (its header
    // names the reach), with or without --apply.
    if let Err(e) = enforce_reach(ws.plan(), name) {
        if format == Format::Json {
            let doc = serde_json::json!({
                "directory": directory,
                "records": output::records_json(&records),
                "plan": plan_json,
                "error": e.to_string(),
            });
            write_out(out, &format!("{doc:#}\n"))?;
        }
        return Err(e);
    }
    let mut report_json = serde_json::Value::Null;
    let mut outcome = Ok(());
    match apply {
        Some(settings) if planned => {
            // The guard comes before the question: --yes must not lift it. The plan was
            // shown above (and goes into the JSON document with the refusal).
            if let Err(e) = crate::plan::guard::check(ws.plan(), settings.limit) {
                if format == Format::Json {
                    let doc = serde_json::json!({
                        "directory": directory,
                        "records": output::records_json(&records),
                        "plan": plan_json,
                        "error": format!("refused: {e}"),
                    });
                    write_out(out, &format!("{doc:#}\n"))?;
                }
                return Err(Error::Guard(e));
            }
            let question = format!(
                "Apply {} change(s) to {} entries of {directory}?",
                ws.plan().change_count(),
                ws.plan().entry_count()
            );
            if std::io::stdin().is_terminal() && !settings.yes && !confirm(&question)? {
                write_out(out, "Not applied.\n")?;
                return Ok(());
            }
            let report = apply_plan(&mut ws, settings, Some(name))?;
            if format == Format::Table {
                write_out(
                    out,
                    &format!(
                        "\n{}{}",
                        render::report_text(&report),
                        journal_footer(&report, settings)
                    ),
                )?;
            }
            report_json = render::report_json(&report);
            report_json["run"] = serde_json::json!(report.run);
            outcome = apply_outcome(&report);
        }
        None if planned && format == Format::Table => {
            write_out(
                out,
                "\nDry run: nothing was written. Run again with --apply to write these changes.\n",
            )?;
        }
        _ => {}
    }
    if format == Format::Json {
        let doc = serde_json::json!({
            "directory": directory,
            "records": output::records_json(&records),
            "plan": plan_json,
            "applied": report_json,
        });
        write_out(out, &format!("{doc:#}\n"))?;
    }
    outcome
}

/// What an apply's report means for the command: the journal's failure, or the entries
/// that did not land, as the error; `Ok` when everything landed.
pub(crate) fn apply_outcome(report: &crate::plan::ApplyReport) -> Result<(), Error> {
    if let Some(e) = &report.journal_error {
        return Err(Error::Journal {
            source: e.clone(),
            started: true,
        });
    }
    if report.all_applied() {
        return Ok(());
    }
    Err(Error::Partial {
        applied: report.applied(),
        conflicted: report.conflicted(),
        failed: report.failed(),
        total: report.results.len(),
    })
}

/// Refuses (exit 4) a plan that goes beyond a reach its scripts declared; `name` is the
/// script (or session) the refusal is reported for.
pub(crate) fn enforce_reach(plan: &crate::plan::Plan, name: &str) -> Result<(), Error> {
    crate::plan::reach::check(plan).map_err(|r| {
        Error::Script(crate::script::ScriptError {
            kind: crate::script::ScriptErrorKind::Refused,
            file: name.to_string(),
            line: None,
            column: None,
            message: r.to_string(),
        })
    })
}

/// Writes the workspace's plan through the write-ahead journal (an unwritable journal
/// stops the apply before anything is written and keeps the plan staged), showing
/// progress on a terminal. The report says what landed, also when the journal failed
/// during the apply (`report.journal_error`).
pub fn apply_plan(
    ws: &mut Workspace,
    settings: &ApplySettings,
    script: Option<&str>,
) -> Result<crate::plan::ApplyReport, Error> {
    // Before the journal and the first write: a plan beyond its reach writes nothing.
    enforce_reach(ws.plan(), "the plan")?;
    let journal_path = journal_path(settings)?;
    let mut journal = Journal::open(&journal_path).map_err(not_started)?;
    let info = RunInfo {
        command: settings.command.to_string(),
        script: script.map(str::to_string),
        undoes: settings.undoes.clone(),
        directory: settings.directory.clone(),
    };
    let bar = progress_bar(ws.plan().entry_count());
    let report = ws
        .apply(
            &mut journal,
            &info,
            settings.concurrency,
            &mut |done, _| {
                if let Some(b) = &bar {
                    b.set_position(done as u64);
                }
            },
            &mut replicator::write_settings,
        )
        .map_err(not_started);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    report
}

/// The journal file `settings` names, or the default one.
pub(crate) fn journal_path(settings: &ApplySettings) -> Result<std::path::PathBuf, Error> {
    settings
        .journal
        .clone()
        .or_else(config::default_journal_path)
        .ok_or_else(|| {
            Error::Usage("no state directory for the journal; give --journal FILE".into())
        })
}

fn not_started(e: crate::plan::journal::JournalError) -> Error {
    Error::Journal {
        source: std::sync::Arc::new(e),
        started: false,
    }
}

/// After the summary: the run's journal line, and the journal's failure if it failed
/// during the apply.
fn journal_footer(report: &crate::plan::ApplyReport, settings: &ApplySettings) -> String {
    let path = settings
        .journal
        .clone()
        .or_else(config::default_journal_path)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    format!("Journal: run {} in {path}\n", report.run)
}

/// The directory as the journal names it: an LDIF file by its absolute path (so that
/// `ocsh undo` finds it from any folder), a server by its URL.
pub(crate) fn journal_directory(spec: &crate::directory::DirectorySpec) -> String {
    use crate::directory::DirectorySpec;
    match spec {
        DirectorySpec::Demo => "demo".to_string(),
        DirectorySpec::Ldif(p) => std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string(),
        DirectorySpec::Ldap(url) => url.clone(),
    }
}

/// A progress bar on stderr when it is a terminal; nothing otherwise (pipes, CI).
fn progress_bar(total: usize) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} entries {elapsed}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

fn confirm(question: &str) -> Result<bool, Error> {
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::io("stdin", e))?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn check(
    files: &[std::path::PathBuf],
    lib: &[std::path::PathBuf],
    strict: bool,
    limit_flags: &limits::LimitArgs,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let sandbox = Sandbox {
        limits: limits::resolve(limit_flags, None)?,
        lib: config::lib_folders(lib, &[])?,
        ..Sandbox::default()
    };
    let session = Session::new(
        Workspace::offline()?,
        Map::new(),
        &sandbox,
        Box::new(std::io::sink()),
    );
    let mut failed: Option<crate::script::ScriptError> = None;
    let mut count = 0usize;
    for f in files {
        let name = f.display().to_string();
        let source = read_script(f)?;
        let error = |message: String| crate::script::ScriptError {
            kind: crate::script::ScriptErrorKind::Script,
            file: name.clone(),
            line: None,
            column: None,
            message,
        };
        let result = Header::parse(&source)
            .map_err(|e| error(format!("header {e}")))
            .and_then(|h| match strict && !h.reach.is_declared() {
                true => Err(error(
                    "declares no reach: --strict needs @writes (or @writes none), @scope or @max in its //! header".into(),
                )),
                false => Ok(()),
            })
            .and_then(|_| session.check(&name, &source));
        match result {
            Ok(()) => write_out(out, &format!("ok: {name}\n"))?,
            Err(e) => {
                count += 1;
                if failed.is_some() {
                    eprintln!("ocsh: {e}");
                }
                if let Some(first) = failed.replace(e) {
                    eprintln!("ocsh: {first}");
                }
            }
        }
    }
    match failed {
        // The last failure is the command's error; any earlier ones were printed above.
        Some(e) if count > 1 => Err(Error::Script(crate::script::ScriptError {
            message: format!("{} ({count} of {} scripts failed)", e.message, files.len()),
            ..e
        })),
        Some(e) => Err(Error::Script(e)),
        None => Ok(()),
    }
}

fn docs(definitions: Option<&Path>, out: &mut dyn Write) -> Result<(), Error> {
    let session = Session::new(
        Workspace::offline()?,
        Map::new(),
        &Sandbox::default(),
        Box::new(std::io::sink()),
    );
    if let Some(dir) = definitions {
        let path = crate::script::docs::write_definitions(&session, dir)
            .map_err(|e| Error::io("ocsh docs --definitions", std::io::Error::other(e)))?;
        eprintln!("wrote {}", path.display());
    }
    write_out(
        out,
        &crate::script::docs::api_markdown(&session)
            .map_err(|e| Error::io("ocsh docs", std::io::Error::other(e)))?,
    )?;
    Ok(())
}

/// The shell's completion script, from the same clap definitions as the parser.
fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<(), Error> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ocsh", &mut buf);
    out.write_all(&buf).map_err(|e| Error::io("stdout", e))
}

/// The man page (section 1) of `ocsh` and, after it, one section per subcommand, so that
/// `man -l` shows every command's options in one page.
fn man_page(out: &mut dyn Write) -> Result<(), Error> {
    use clap::CommandFactory;
    let io = |e: std::io::Error| Error::io("stdout", e);
    let cli = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cli.clone())
        .render(&mut buf)
        .map_err(io)?;
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("ocsh {}", sub.get_name());
        let page = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
        buf.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        page.render_synopsis_section(&mut buf).map_err(io)?;
        page.render_options_section(&mut buf).map_err(io)?;
    }
    out.write_all(&buf).map_err(io)
}

fn write_demo(
    file: &Path,
    force: bool,
    users: Option<u64>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    if file.exists() && !force {
        return Err(Error::Usage(format!(
            "{} exists; use --force to overwrite it",
            file.display()
        )));
    }
    let users = usize::try_from(users.unwrap_or(0)).unwrap_or(0);
    if users == 0 {
        std::fs::write(file, demo::DEMO_LDIF).map_err(|e| io_err(file, e))?;
        writeln!(out, "wrote the demo forest to {}", file.display())
    } else {
        let text = crate::directory::demo_scale::scaled_ldif(users);
        std::fs::write(file, text).map_err(|e| io_err(file, e))?;
        writeln!(
            out,
            "wrote the demo forest with {users} generated users to {}",
            file.display()
        )
    }
    .map_err(|e| Error::io("stdout", e))?;
    Ok(())
}
