//! The test harness: how a module's tests become trials, how the cases of a cross-backend
//! suite become one trial per backend, and the labs (fixtures, servers) those trials share.
//!
//! libtest's `#[test]` cannot decide at run time that a test is ignored, so this crate uses
//! its own harness (`harness = false`, libtest-mimic): a backend whose server cannot start
//! is reported as *ignored* with the reason, and under `CI=true` as *failed* with the
//! server's name. Nothing passes without having run.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use super::in_ci;

/// The backends of the cross-backend suites, in the order their trials are listed.
pub const BACKENDS: [&str; 3] = ["embedded", "openldap", "samba"];

/// A module's plain tests, each a `fn()` that panics on failure, named `module::test`.
/// Listing a test here is what makes it run: a test function that is not listed is dead
/// code, which `clippy -D warnings` (the README's test command) refuses.
/// A table test (after `tables:`) is a `fn() -> Vec<Case>`: each row a trial of its own,
/// named `module::table::row`. A `#[cfg(...)]` before a name gates that test.
#[macro_export]
macro_rules! tests {
    ($($(#[$m:meta])* $name:ident),* $(,)? $(; tables: $($table:ident),* $(,)?)?) => {
        #[allow(unused_mut, clippy::vec_init_then_push)] // entries may be cfg-gated
        pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
            let mut all = Vec::new();
            $($(#[$m])* all.push($crate::support::harness::plain(
                module_path!(),
                stringify!($name),
                $name,
            ));)*
            $($(all.extend($crate::support::harness::table(
                module_path!(),
                stringify!($table),
                $table(),
            ));)*)?
            all
        }
    };
}

/// One row of a table test: its name and what it checks.
pub type Case = (String, Box<dyn FnOnce() + Send + 'static>);

/// A row of a table test.
pub fn case(name: impl Into<String>, check: impl FnOnce() + Send + 'static) -> Case {
    (name.into(), Box::new(check))
}

/// The rows of a table test as trials.
pub fn table(module_path: &str, table: &str, rows: Vec<Case>) -> Vec<Trial> {
    let module = short_module(module_path);
    rows.into_iter()
        .map(|(row, check)| {
            Trial::test(format!("{module}::{table}::{row}"), move || {
                run_caught(check)
            })
        })
        .collect()
}

/// A cross-backend suite: `crate::suite! { "name", Lab, start; case, case, ... }` makes
/// the module's `SUITE` (see [`Suite`]): each case a `fn(&Lab)`, one trial per case and
/// backend named `backend::name::case`, on a lab per backend that `start(backend)` builds.
#[macro_export]
macro_rules! suite {
    ($name:literal, $lab:ty, $start:path; $($case:ident),* $(,)?) => {
        fn cases() -> Vec<$crate::support::harness::Named<$lab>> {
            vec![$((stringify!($case), $case as fn(&$lab))),*]
        }

        /// This module's cases on the three backends, each backend's lab built once.
        pub(crate) static SUITE: $crate::support::harness::Suite<$lab> =
            $crate::support::harness::Suite {
                name: $name,
                cases,
                start: $start,
                labs: &LABS,
            };

        static LABS: [$crate::support::harness::Shared<$lab>; 3] = [
            $crate::support::harness::Shared::new(),
            $crate::support::harness::Shared::new(),
            $crate::support::harness::Shared::new(),
        ];
    };
}

/// `integration::cli` → `cli`.
fn short_module(module_path: &str) -> &str {
    module_path
        .split_once("::")
        .map_or(module_path, |(_, rest)| rest)
}

/// A plain test as a trial; a panic is its failure.
pub fn plain(module_path: &str, name: &str, test: fn()) -> Trial {
    Trial::test(
        format!("{}::{name}", short_module(module_path)),
        move || run_caught(test),
    )
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the test panicked".to_string())
}

fn run_caught(f: impl FnOnce()) -> Result<(), Failed> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| Failed::from(panic_text(p.as_ref())))
}

/// Why a backend's trials cannot run here, if they cannot: not selected by
/// `OCSH_TEST_BACKENDS`, or its server software is missing. (A server that is installed
/// but fails to start is found out when its lab starts.)
pub fn backend_unavailable(backend: &str) -> Option<String> {
    let selected = super::selected_backends();
    if !selected.iter().any(|b| b == backend) {
        return Some(format!(
            "{backend}: not selected (OCSH_TEST_BACKENDS={})",
            selected.join(",")
        ));
    }
    let binary = match backend {
        "openldap" => "slapd",
        "samba" => "samba",
        _ => return None,
    };
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(binary).is_file());
    if !found {
        return Some(format!(
            "{backend}: `{binary}` is not installed (tests/servers/install-packages.sh installs it)"
        ));
    }
    None
}

/// What a trial does when its backend cannot run: under `CI=true` it fails naming the
/// backend; elsewhere it is ignored with the reason (and says so loudly on stderr once).
fn unavailable(reason: &str) -> Result<Completion, Failed> {
    if in_ci() {
        return Err(Failed::from(format!(
            "{reason}\n(CI=true: every backend must run; tests/servers/README.md tells how to set it up)"
        )));
    }
    Ok(Completion::ignored_with(reason))
}

/// A lab that a suite's trials on one backend share: started by the first trial that needs
/// it, used by one trial at a time (the cases of a suite change the same fixture), and
/// dropped (its server stopped) after the last selected trial, so that the next suite's
/// Samba, which needs the same ports, can start.
pub struct Shared<T> {
    state: Mutex<State<T>>,
    remaining: AtomicUsize,
}

enum State<T> {
    NotStarted,
    Running(T),
    Failed(String),
    Done,
}

impl<T> Shared<T> {
    /// An empty lab.
    pub const fn new() -> Shared<T> {
        Shared {
            state: Mutex::new(State::NotStarted),
            remaining: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A case that panicked leaves the lab as usable as the case left it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `case` on the lab, starting it with `start` first if it is not running. A lab
    /// that could not start fails (CI) or ignores (elsewhere) every trial that needs it.
    fn run(
        &self,
        start: impl FnOnce() -> Result<T, String>,
        case: impl FnOnce(&T),
    ) -> Result<Completion, Failed> {
        let _count = Countdown(self);
        let mut state = self.lock();
        if matches!(*state, State::NotStarted) {
            *state = match catch_unwind(AssertUnwindSafe(start)) {
                Ok(Ok(lab)) => State::Running(lab),
                Ok(Err(why)) => State::Failed(why),
                Err(p) => State::Failed(panic_text(p.as_ref())),
            };
        }
        match &*state {
            State::Running(lab) => run_caught(|| case(lab)).map(|()| Completion::Completed),
            State::Failed(why) => unavailable(&format!("the lab could not start: {why}")),
            State::NotStarted | State::Done => {
                Err(Failed::from("the lab was already stopped (harness bug)"))
            }
        }
    }

    /// Stops the lab now (at the end of the run, whatever is left).
    pub fn shut_down(&self) {
        let old = std::mem::replace(&mut *self.lock(), State::Done);
        drop(old);
    }
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared::new()
    }
}

/// Counts a trial out when it ends, however it ends; the last one stops the lab.
struct Countdown<'a, T>(&'a Shared<T>);

impl<T> Drop for Countdown<'_, T> {
    fn drop(&mut self) {
        if self.0.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.shut_down();
        }
    }
}

/// A case of a suite with its name.
pub type Named<T> = (&'static str, fn(&T));

/// One cross-backend suite: its cases, how each backend's lab starts, and where the labs
/// live. Implemented by a `static` in each suite module.
pub struct Suite<T: 'static> {
    /// The module name, the middle part of the trial names.
    pub name: &'static str,
    /// The suite's cases.
    pub cases: fn() -> Vec<Named<T>>,
    /// Starts the lab of a backend (`embedded`, `openldap`, `samba`).
    pub start: fn(&'static str) -> Result<T, String>,
    /// One lab per backend, in the order of [`BACKENDS`].
    pub labs: &'static [Shared<T>; 3],
}

impl<T: Send + Sync + 'static> Suite<T> {
    /// One trial per case and backend, named `backend::suite::case`.
    pub fn trials(&'static self) -> Vec<(usize, Trial)> {
        let mut out = Vec::new();
        for (i, backend) in BACKENDS.iter().enumerate() {
            let missing = backend_unavailable(backend);
            for (case, f) in (self.cases)() {
                let name = format!("{backend}::{}::{case}", self.name);
                let missing = missing.clone();
                let trial = Trial::ignorable_test(name, move || {
                    if let Some(why) = missing {
                        return unavailable(&why);
                    }
                    self.labs[i].run(|| (self.start)(backend), f)
                });
                out.push((i, trial));
            }
        }
        out
    }

    /// Sets how many trials will use each lab, so that the last one stops it.
    pub fn count(&self, selected: &HashMap<usize, usize>) {
        for (i, lab) in self.labs.iter().enumerate() {
            lab.remaining
                .store(selected.get(&i).copied().unwrap_or(0), Ordering::SeqCst);
        }
    }

    /// Stops every lab still running.
    pub fn shut_down(&self) {
        self.labs.iter().for_each(Shared::shut_down);
    }
}

/// Adds a suite's trials to `all`, counting per lab the ones `args` selects.
pub fn add_suite<T: Send + Sync + 'static>(
    suite: &'static Suite<T>,
    args: &Arguments,
    all: &mut Vec<Trial>,
) {
    let mut selected = HashMap::new();
    for (lab, trial) in suite.trials() {
        if !args.is_filtered_out(&trial) && !args.is_ignored(&trial) && !args.list {
            *selected.entry(lab).or_insert(0) += 1;
        }
        all.push(trial);
    }
    suite.count(&selected);
}

/// A test that needs a server of its own (not a suite's shared lab), named
/// `backend::module::name`: `start` brings the server up, `test` runs on it, and the
/// server stops when the test ends. A server that cannot run here fails the trial under
/// `CI=true` and ignores it otherwise.
pub fn own_server<T: 'static>(
    module_path: &str,
    backend: &'static str,
    name: &str,
    start: fn() -> Result<T, String>,
    test: fn(&T),
) -> Trial {
    let full = format!("{backend}::{}::{name}", short_module(module_path));
    Trial::ignorable_test(full, move || {
        if let Some(why) = backend_unavailable(backend) {
            return unavailable(&why);
        }
        let server = match catch_unwind(AssertUnwindSafe(start)) {
            Ok(Ok(server)) => server,
            Ok(Err(why)) => return unavailable(&format!("the server could not start: {why}")),
            Err(p) => return Err(Failed::from(panic_text(p.as_ref()))),
        };
        run_caught(|| test(&server)).map(|()| Completion::Completed)
    })
}
