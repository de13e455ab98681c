//! `ocsh replicator run | sync | status | problems`: the user replicator's commands, and
//! the replica path every command uses (`--replica`, else the default for the
//! directory).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use clap::Subcommand;
use comfy_table::{Table, presets};

use rhai::Map;

use crate::error::Error;
use crate::plan::{ApplyOutcome, SettingsChange, Workspace};
use crate::replica::{CycleReport, Replica, ReplicaError};
use crate::script::api_replicator::sync_now;
use crate::script::{Sandbox, Session};

use super::ApplySettings;
use super::args::{DirectoryArgs, Format};
use super::config;
use super::output::{add_row, fit, output_width};
use super::policy::{self, Policy, PolicyOutcome};

/// The replicator's commands.
#[derive(Debug, Subcommand)]
pub enum ReplicatorCommand {
    /// Keep the replica in step with the directory: a cycle, then a pause of the interval
    /// stored in the replica (read again after every cycle), until Ctrl-C or SIGTERM;
    /// the cycle in progress is finished first (a second Ctrl-C abandons it, and the
    /// replica stays as it was before it).
    Run(CycleArgs),
    /// Run one cycle now and print its counts.
    Sync(CycleArgs),
    /// Show the settings, the cookies, the last cycles and the problem counts.
    Status(StatusArgs),
    /// List the problems the last cycle found.
    Problems(ProblemsArgs),
}

/// What every replicator command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplicatorArgs {
    /// The directory (and `--replica`).
    #[command(flatten)]
    pub directory: DirectoryArgs,
    /// Output format.
    #[arg(long, short = 'f', default_value = "table", value_parser = super::args::formats(&["table", "json", "csv"]))]
    pub format: Format,
}

/// `ocsh replicator run` and `sync`: the directory, and a policy to run after each cycle.
#[derive(Debug, Clone, clap::Args)]
pub struct CycleArgs {
    /// The directory, `--replica` and the format.
    #[command(flatten)]
    pub common: ReplicatorArgs,
    /// A Rhai script run after each cycle with `changes` (`added`, `changed`: User
    /// objects; `moved`: #{ from, user }; `deleted`: what the replica last knew), in the
    /// sandbox of `ocsh run`; its plan is shown, and written only with --apply.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Write the policy's plan (each entry with its preconditions, journalled).
    #[arg(long, requires = "policy")]
    pub apply: bool,
    /// The journal of the policy's writes (default: the profile's, else
    /// `journal.jsonl` in the user's state directory).
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub journal: Option<PathBuf>,
    /// Writes in flight when the policy's plan is applied.
    #[arg(long, requires = "apply", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub concurrency: Option<u64>,
    /// With --apply: allow a policy's plan that disables, removes or moves up to N users
    /// (default 500, or the profile's max_destructive); a bigger one is refused and the
    /// next cycle retries.
    #[arg(long, value_name = "N", requires = "apply")]
    pub allow_destructive: Option<usize>,
    /// Wall-clock seconds a policy run may take.
    #[arg(long, default_value_t = 300, requires = "policy")]
    pub policy_timeout: u64,
}

/// `ocsh replicator status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The directory, `--replica` and the format.
    #[command(flatten)]
    pub common: ReplicatorArgs,
    /// How many of the last cycles to show.
    #[arg(long, default_value_t = 10)]
    pub cycles: usize,
}

/// `ocsh replicator problems`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProblemsArgs {
    /// The directory, `--replica` and the format.
    #[command(flatten)]
    pub common: ReplicatorArgs,
    /// Only problems of this kind (`home_server_not_a_pool`, `duplicate_sip`, ...).
    #[arg(long)]
    pub kind: Option<String>,
}

/// Runs a replicator command.
pub fn main(command: ReplicatorCommand, out: &mut dyn Write) -> Result<(), Error> {
    match command {
        ReplicatorCommand::Run(a) => run(&a, out),
        ReplicatorCommand::Sync(a) => sync(&a, out),
        ReplicatorCommand::Status(a) => status(&a, out),
        ReplicatorCommand::Problems(a) => problems(&a, out),
    }
}

pub(crate) fn replica_error(e: ReplicaError) -> Error {
    Error::Replica(e)
}

fn write_out(out: &mut dyn Write, s: &str) -> Result<(), Error> {
    out.write_all(s.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("stdout", e))
}

/// The replica of a command: `--replica`, else `<state dir>/ocsh/replica-<name>.sqlite`
/// for the directory and base that the flags, `OCSH_*` variables and profile name
/// (without connecting, and without asking for a password).
pub fn replica_path(d: &DirectoryArgs) -> Result<PathBuf, Error> {
    if let Some(p) = &d.replica {
        return Ok(p.clone());
    }
    let cfg = config::load_config(d.config.as_deref())?;
    let profile = d
        .profile
        .as_deref()
        .or(cfg.default_profile.as_deref())
        .and_then(|name| cfg.profiles.get(name));
    let directory = d
        .directory
        .clone()
        .or_else(|| profile.and_then(|p| p.directory.clone()))
        .unwrap_or_else(|| "demo".into());
    let base = d
        .base
        .clone()
        .or_else(|| profile.and_then(|p| p.base.clone()));
    crate::replica::default_path(&directory, base.as_deref()).ok_or_else(|| {
        Error::Usage("no state directory for the default replica; give --replica FILE".into())
    })
}

/// Writes a plan's staged settings change to its replica (the runner calls this after
/// the directory entries).
pub fn write_settings(change: &SettingsChange) -> ApplyOutcome {
    match Replica::open(&change.replica)
        .and_then(|mut r| r.write_settings(&change.before, &change.after))
    {
        Ok(()) => ApplyOutcome::Applied,
        Err(e @ ReplicaError::Conflict { .. }) => ApplyOutcome::Conflict(e.to_string()),
        Err(e) => ApplyOutcome::Failed(e.to_string()),
    }
}

fn connect(d: &DirectoryArgs) -> Result<(Workspace, PathBuf), Error> {
    let resolved = config::resolve(d)?;
    let path = replica_path(d)?;
    let mut ws = Workspace::connect(&resolved.spec, &resolved.ldap, resolved.op_timeout)?;
    ws.set_replica_path(Some(path.clone()));
    Ok((ws, path))
}

/// One line for a cycle.
fn cycle_line(r: &CycleReport) -> String {
    let mut s = format!(
        "cycle {} ({}: {}): {} added, {} changed, {} deleted; {} read, {} users, {} problems, {} ms\n",
        r.cycle,
        r.kind.name(),
        r.reason,
        r.added,
        r.changed,
        r.deleted,
        r.seen,
        r.users,
        r.problems,
        r.duration_ms
    );
    for e in &r.errors {
        s.push_str(&format!("  skipped: {e}\n"));
    }
    s
}

fn cycle_json(r: &CycleReport, path: &std::path::Path) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
    v["replica"] = serde_json::json!(path.display().to_string());
    v
}

/// The session a replicator command keeps: the workspace (and with it the directory
/// connection) the cycles read through, and the policy's engine.
fn session(ws: Workspace, a: &CycleArgs) -> Session {
    let sandbox = Sandbox {
        timeout: Some(Duration::from_secs(a.policy_timeout)),
        ..Sandbox::default()
    };
    // print() of a policy goes with the command's output; beside JSON, to stderr.
    let printed: Box<dyn Write> = match a.common.format {
        Format::Json => Box::new(std::io::stderr()),
        _ => Box::new(std::io::stdout()),
    };
    Session::new(ws, Map::new(), &sandbox, printed)
}

fn load_policy(a: &CycleArgs, resolved: &config::Resolved) -> Result<Option<Policy>, Error> {
    let Some(path) = &a.policy else {
        return Ok(None);
    };
    let apply = a.apply.then(|| ApplySettings {
        command: "replicator",
        directory: super::journal_directory(&resolved.spec),
        undoes: None,
        yes: true,
        concurrency: a
            .concurrency
            .or(resolved.concurrency)
            .unwrap_or(8)
            .clamp(1, 64) as usize,
        journal: a.journal.clone().or(resolved.journal.clone()),
        limit: crate::plan::guard::Limit::resolve(a.allow_destructive, resolved.max_destructive),
    });
    let policy = Policy::load(path, apply)?;
    // A policy that does not compile is refused before any cycle runs.
    let check = Session::new(
        Workspace::offline()?,
        Map::new(),
        &Sandbox::default(),
        Box::new(std::io::sink()),
    );
    check
        .check(&policy.name, &policy.source)
        .map_err(Error::Script)?;
    if a.apply && !resolved.spec.is_persistent() {
        return Err(Error::Usage(
            "--apply needs a directory that keeps changes; the built-in demo lives in memory"
                .into(),
        ));
    }
    Ok(Some(policy))
}

/// One cycle (and the policy after it) on the session's workspace. The outcome of the
/// policy is printed; a policy that fails is reported, never an error of the cycle.
fn cycle_once(
    session: &mut Session,
    path: &Path,
    policy: Option<&Policy>,
    format: Format,
    out: &mut dyn Write,
) -> Result<(CycleReport, Option<PolicyOutcome>), Error> {
    let mut replica = Replica::open(path).map_err(replica_error)?;
    let report = {
        let ws = session.host().ws.borrow();
        sync_now(&ws, &mut replica).map_err(replica_error)?
    };
    match format {
        Format::Table | Format::Csv | Format::Ldif => write_out(out, &cycle_line(&report))?,
        Format::Json => write_out(out, &format!("{}\n", cycle_json(&report, path)))?,
    }
    let Some(policy) = policy else {
        return Ok((report, None));
    };
    // The policy's plan and report go with the cycle's line; beside JSON, to stderr.
    let mut err = std::io::stderr();
    let log: &mut dyn Write = if format == Format::Json {
        &mut err
    } else {
        out
    };
    let outcome = policy::run(session, policy, &mut replica, log)?;
    write_out(log, &policy::outcome_line(&policy.name, &outcome))?;
    Ok((report, Some(outcome)))
}

fn sync(a: &CycleArgs, out: &mut dyn Write) -> Result<(), Error> {
    let resolved = config::resolve(&a.common.directory)?;
    let policy = load_policy(a, &resolved)?;
    let (ws, path) = connect(&a.common.directory)?;
    let mut session = session(ws, a);
    let (_, outcome) = cycle_once(&mut session, &path, policy.as_ref(), a.common.format, out)?;
    match outcome {
        // The cycle is kept; the policy's failure is the command's error.
        Some(PolicyOutcome::Failed(message)) => Err(Error::PolicyFailed {
            policy: policy.map(|p| p.name.clone()).unwrap_or_default(),
            message,
        }),
        _ => Ok(()),
    }
}

/// Sets `stop` on SIGINT and SIGTERM and wakes the returned receiver at once, so that a
/// pause between cycles ends when the signal comes; a second signal ends the process
/// (an open transaction is never committed, so the replica stays as it was).
fn stop_signals(stop: &Arc<AtomicBool>) -> Result<mpsc::Receiver<()>, Error> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let fail = |e: std::io::Error| Error::io("cannot handle signals", e);
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())
            .map_err(fail)?;
        signal_hook::flag::register(signal, stop.clone()).map_err(fail)?;
    }
    let (tx, rx) = mpsc::channel();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(fail)?;
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

fn run(a: &CycleArgs, out: &mut dyn Write) -> Result<(), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let woken = stop_signals(&stop)?;
    let path = replica_path(&a.common.directory)?;
    let resolved = config::resolve(&a.common.directory)?;
    let policy = load_policy(a, &resolved)?;
    if a.common.format == Format::Table {
        write_out(
            out,
            &format!(
                "replicating {} into {}; Ctrl-C or SIGTERM stops after the cycle in progress\n",
                resolved.ldap.url,
                path.display()
            ),
        )?;
    }
    // One session, and so one directory connection, for every cycle; after a directory
    // failure the next cycle connects afresh.
    let mut kept: Option<Session> = None;
    loop {
        let connected = match kept.take() {
            Some(s) => {
                let reloaded = s.host().ws.borrow_mut().reload_deployment();
                reloaded.map(|()| s).map_err(Error::from)
            }
            None => Workspace::connect(&resolved.spec, &resolved.ldap, resolved.op_timeout)
                .map_err(Error::from)
                .map(|mut ws| {
                    ws.set_replica_path(Some(path.clone()));
                    session(ws, a)
                }),
        };
        let outcome = connected.and_then(|mut s| {
            let r = cycle_once(&mut s, &path, policy.as_ref(), a.common.format, out);
            r.map(|_| s)
        });
        match outcome {
            Ok(s) => kept = Some(s),
            // The directory may come back: say so and go on (a cycle that failed while
            // reading is also recorded in the replica). A replica that cannot be opened
            // or written will not get better by waiting.
            Err(e) if e.is_directory() => eprintln!("ocsh: cycle failed: {e}"),
            Err(e) => return Err(e),
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let interval = Replica::open(&path)
            .and_then(|r| r.settings())
            .map_or(crate::ocs::replicator::DEFAULT_INTERVAL, |s| s.interval());
        let until = Instant::now() + Duration::from_secs(u64::from(interval));
        while !stop.load(Ordering::SeqCst) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // A signal wakes this at once; a missed wake-up is caught within a second.
            let _ = woken.recv_timeout(left.min(Duration::from_secs(1)));
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    if a.common.format == Format::Table {
        write_out(out, "stopped\n")?;
    }
    Ok(())
}

/// A table that fits `width` (comfy-table's dynamic arrangement wraps the long columns,
/// and rows are cut after [`ROW_LINES`] lines); without a width it is laid out as is.
fn table(width: Option<u16>) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    fit(&mut t, width);
    t
}

/// Keeps column `i` as wide as its content (short values: kinds, names, numbers), so
/// that the dynamic arrangement wraps the long ones instead.
fn unwrapped(t: &mut Table, columns: &[usize]) {
    for i in columns {
        if let Some(c) = t.column_mut(*i) {
            c.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
}

/// Narrower than this, the problems table leaves the DN out (it is in `--format json`
/// and `csv`): wrapped into a few columns it is unreadable.
const WIDTH_FOR_DN: u16 = 140;

/// A cycle's start as `MM-DD HH:MM:SS` (the date and milliseconds are in `--format json`).
fn short_time(rfc3339: &str) -> String {
    rfc3339
        .get(5..19)
        .map_or_else(|| rfc3339.to_string(), |t| t.replacen('T', " ", 1))
}

/// `key  value` lines, the values wrapped to fit `width`.
fn key_values(rows: &[(&str, String)], width: Option<u16>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    fit(&mut t, width);
    for (k, v) in rows {
        add_row(&mut t, vec![(*k).to_string(), v.clone()]);
    }
    // NOTHING still pads every line with the border's blank; keep the text flush left.
    t.lines()
        .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(&l).trim_end()))
        .collect()
}

fn status(a: &StatusArgs, out: &mut dyn Write) -> Result<(), Error> {
    let path = replica_path(&a.common.directory)?;
    let replica = Replica::open_existing(&path).map_err(replica_error)?;
    let s = replica.status(a.cycles).map_err(replica_error)?;
    if a.common.format == Format::Json {
        let v = serde_json::to_value(&s).unwrap_or(serde_json::Value::Null);
        write_out(out, &format!("{v:#}\n"))?;
        return Ok(());
    }
    let width = output_width();
    let mut rows: Vec<(&str, String)> = Vec::new();
    let mut line = |k: &'static str, v: String| rows.push((k, v));
    line(
        "Replica",
        format!("{} (schema {})", s.replica, s.schema_version),
    );
    line(
        "Directory",
        s.directory
            .clone()
            .unwrap_or_else(|| "(no cycle yet)".into()),
    );
    line("Backend", s.backend.clone());
    line("InstanceID", s.instance_id.clone());
    line(
        "ReplicationCycleInterval",
        format!("{} s", s.replication_cycle_interval),
    );
    line("RegenerateCookiesNow", s.regenerate_cookies_now.to_string());
    line(
        "Users",
        format!("{} ({} enabled)", s.users, s.enabled_users),
    );
    line("Pools", s.pools.to_string());
    line("SIP domains", s.sip_domains.to_string());
    for c in &s.cookies {
        line(
            "Cookie",
            format!(
                "{}: {} {} (cycle {}, {})",
                c.naming_context,
                c.tracking,
                c.high_water,
                c.cycle.map_or_else(|| "-".into(), |n| n.to_string()),
                c.source
            ),
        );
    }
    line(
        "Deletions",
        s.deletions
            .clone()
            .unwrap_or_else(|| "(no incremental cycle yet)".into()),
    );
    let mut text = key_values(&rows, width);
    if !s.cycles.is_empty() {
        let mut t = table(width);
        t.set_header([
            "cycle",
            "kind",
            "started",
            "result",
            "added/changed/deleted",
            "problems",
        ]);
        for c in &s.cycles {
            add_row(
                &mut t,
                vec![
                    c.id.to_string(),
                    c.kind.clone(),
                    short_time(&c.started_at),
                    if c.errors.is_empty() || c.status != "failed" {
                        c.status.clone()
                    } else {
                        format!("failed: {}", c.errors.join("; "))
                    },
                    format!("{}/{}/{}", c.added, c.changed, c.deleted),
                    c.problems.to_string(),
                ],
            );
        }
        unwrapped(&mut t, &[0, 1, 2, 4, 5]);
        text.push_str(&format!("\nLast cycles\n{t}\n"));
    }
    let total: i64 = s.problem_counts.values().sum();
    text.push_str(&format!("\nProblems (last successful cycle): {total}\n"));
    for (k, n) in &s.problem_counts {
        text.push_str(&format!("  {k:30}{n}\n"));
    }
    write_out(out, &text)?;
    Ok(())
}

fn problems(a: &ProblemsArgs, out: &mut dyn Write) -> Result<(), Error> {
    if let Some(k) = &a.kind {
        if crate::ocs::replicator::ProblemKind::from_name(k).is_none() {
            let known: Vec<&str> = crate::ocs::replicator::ProblemKind::ALL
                .iter()
                .map(|k| k.name())
                .collect();
            return Err(Error::Usage(format!(
                "--kind {k:?} is not a problem kind ({})",
                known.join(", ")
            )));
        }
    }
    let path = replica_path(&a.common.directory)?;
    let replica = Replica::open_existing(&path).map_err(replica_error)?;
    let list: Vec<_> = replica
        .problems()
        .map_err(replica_error)?
        .into_iter()
        .filter(|p| a.kind.as_deref().is_none_or(|k| p.kind == k))
        .collect();
    if a.common.format == Format::Json {
        let v = serde_json::to_value(&list).unwrap_or(serde_json::Value::Null);
        write_out(out, &format!("{v:#}\n"))?;
        return Ok(());
    }
    if a.common.format == Format::Csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        let fail = |e: csv::Error| Error::io("csv", e);
        w.write_record(["kind", "user", "sip", "problem", "dn"])
            .map_err(fail)?;
        for p in &list {
            let row = [
                p.kind.as_str(),
                p.sam.as_deref().unwrap_or(""),
                p.sip.as_deref().unwrap_or(""),
                &p.detail,
                &p.dn,
            ];
            w.write_record(row).map_err(fail)?;
        }
        let bytes = w.into_inner().map_err(|e| Error::io("csv", e))?;
        write_out(out, &String::from_utf8_lossy(&bytes))?;
        return Ok(());
    }
    if list.is_empty() {
        write_out(out, "No problems.\n")?;
        return Ok(());
    }
    let width = output_width();
    let with_dn = width.is_none_or(|w| w >= WIDTH_FOR_DN);
    let mut t = table(width);
    let mut header = vec!["kind", "user", "sip", "problem"];
    if with_dn {
        header.push("dn");
    }
    t.set_header(header);
    for p in &list {
        let mut row = vec![
            p.kind.clone(),
            // Without a sAMAccountName the DN says who it is.
            p.sam.clone().unwrap_or_else(|| p.dn.clone()),
            p.sip.clone().unwrap_or_default(),
            p.detail.clone(),
        ];
        if with_dn {
            row.push(p.dn.clone());
        }
        add_row(&mut t, row);
    }
    unwrapped(&mut t, &[0]);
    write_out(out, &format!("{t}\n{} problem(s)\n", list.len()))?;
    Ok(())
}
