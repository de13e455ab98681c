//! `ocsh test`: a snippet library's cases (`*.case.toml`), each script run in plan mode
//! against a fixture and compared with the expected plan, records and fixture-after.

mod case;
mod report;
mod run;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::Error;

/// `ocsh test`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// Case files or folders searched for `*.case.toml` (default: `tests/`).
    pub paths: Vec<PathBuf>,
    /// Run only the cases whose name contains this text.
    #[arg(long, value_name = "NAME")]
    pub filter: Option<String>,
    /// Write the actual plan, records and fixture-after into the expected files.
    #[arg(long)]
    pub update: bool,
    /// Also write the results as JUnit XML to this file (for CI servers).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// A folder of snippet modules for `import` (repeatable; also OCSH_LIB).
    #[arg(long = "lib", value_name = "DIR")]
    pub lib: Vec<PathBuf>,
    /// Cases run at once (default: the machine's cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: Option<u64>,
}

/// One case's result, for the summary and the JUnit file.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The case's name.
    pub name: String,
    /// How long it took.
    pub time: Duration,
    /// Why the case file could not be used, if it could not.
    pub error: Option<String>,
    /// What it produced, when it ran.
    pub outcome: run::Outcome,
}

impl Finished {
    /// True when the case ran and everything matched.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.outcome.mismatches.is_empty()
    }
}

/// Runs the cases; the exit code is 0 only when every case passed.
pub fn main(args: &TestArgs, out: &mut dyn Write) -> Result<(), Error> {
    let root = std::env::current_dir().map_err(|e| Error::io("current folder", e))?;
    let lib = super::config::lib_folders(&args.lib, &[])?;
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("tests")]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    for p in &paths {
        files.extend(discover(p)?);
    }
    if let Some(f) = &args.filter {
        files.retain(|p| case::case_name(p).contains(f.as_str()));
    }
    if files.is_empty() {
        return Err(Error::Usage(format!(
            "no *.case.toml under {}{}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            args.filter
                .as_deref()
                .map(|f| format!(" matching --filter {f:?}"))
                .unwrap_or_default()
        )));
    }
    let jobs = args
        .jobs
        .map(|j| j as usize)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .min(files.len());
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let results = run_all(&files, &root, &lib, args.update, jobs, &mut |f| {
        write_text(out, &report::case_text(f, colour))
    })?;
    for f in &results {
        for p in &f.outcome.updated {
            write_text(out, &format!("updated {}\n", p.display()))?;
        }
    }
    let passed = results.iter().filter(|f| f.passed()).count();
    let failed = results.len() - passed;
    if let Some(path) = &args.junit {
        let xml = report::junit(&results)
            .map_err(|e| Error::io("JUnit XML", std::io::Error::other(e.to_string())))?;
        std::fs::write(path, xml).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    write_text(out, &format!("{passed} passed, {failed} failed\n"))?;
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::TestsFailed {
            failed,
            total: results.len(),
        })
    }
}

fn write_text(out: &mut dyn Write, s: &str) -> Result<(), Error> {
    out.write_all(s.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("stdout", e))
}

/// The case files under `path` (itself, when it is one), in name order.
fn discover(path: &Path) -> Result<Vec<PathBuf>, Error> {
    if path.is_file() {
        if !path.to_string_lossy().ends_with(".case.toml") {
            return Err(Error::Usage(format!(
                "{}: a case file's name ends in .case.toml",
                path.display()
            )));
        }
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(Error::Usage(format!(
            "{}: no such file or folder",
            path.display()
        )));
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::io(path.display().to_string(), e))?;
        if entry.file_type().is_file()
            && entry.file_name().to_string_lossy().ends_with(".case.toml")
        {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

/// Runs the cases on `jobs` threads (each case builds its own engine and workspace,
/// which are not `Send`) and hands each result to `show` in case order, as soon as it
/// and every case before it are done.
fn run_all(
    files: &[PathBuf],
    root: &Path,
    lib: &[PathBuf],
    update: bool,
    jobs: usize,
    show: &mut dyn FnMut(&Finished) -> Result<(), Error>,
) -> Result<Vec<Finished>, Error> {
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Finished)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(file) = files.get(i) else { break };
                    if tx.send((i, run_one(file, root, lib, update))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut done: Vec<Option<Finished>> = files.iter().map(|_| None).collect();
        let mut shown = 0;
        for (i, f) in rx {
            if let Some(slot) = done.get_mut(i) {
                *slot = Some(f);
            }
            while let Some(Some(f)) = done.get(shown) {
                show(f)?;
                shown += 1;
            }
        }
        Ok(done.into_iter().flatten().collect())
    })
}

fn run_one(file: &Path, root: &Path, lib: &[PathBuf], update: bool) -> Finished {
    let started = Instant::now();
    let name = case::case_name(file);
    match case::load(file, root, update) {
        Ok(c) => {
            let outcome = run::run_case(&c, lib, update);
            Finished {
                name,
                time: started.elapsed(),
                error: None,
                outcome,
            }
        }
        Err(e) => Finished {
            name,
            time: started.elapsed(),
            error: Some(e.to_string()),
            outcome: run::Outcome::default(),
        },
    }
}
