//! The integration tests of ocsh, in one crate with its own harness (libtest-mimic), as
//! `tests/integration/README.md` describes: the real binary (`cli`, `repl`), scripts
//! (`script`), and the suites that run on every backend (`behaviour`, `replicator`,
//! `differential`), each case a trial of its own per backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a test failure

mod support;

mod api_coverage;
mod behaviour;
mod cli;
mod differential;
mod embedded_scale;
mod embedded_writers;
#[cfg(unix)]
mod faults;
mod input_files;
mod journal;
mod lync;
mod plans_guard;
mod plans_ldif;
mod reach;
mod reach_at_size;
#[cfg(unix)]
mod repl;
mod replicator;
mod sandbox_limits;
mod scale;
mod scale_scripts;
mod script;
mod secrets;
mod shell;
mod tester;
mod widths;

use libtest_mimic::{Arguments, Trial};

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = Vec::new();
    trials.extend(support::harness_self_checks());
    trials.extend(cli::trials());
    trials.extend(script::trials());
    trials.extend(sandbox_limits::trials());
    trials.extend(input_files::trials());
    trials.extend(scale_scripts::trials());
    #[cfg(unix)]
    trials.extend(repl::trials());
    trials.extend(differential::trials());
    #[cfg(unix)]
    trials.extend(faults::trials());
    trials.extend(embedded_writers::trials());
    trials.extend(embedded_scale::trials());
    trials.extend(plans_ldif::trials());
    trials.extend(journal::trials());
    trials.extend(secrets::trials());
    trials.extend(tester::trials());
    trials.extend(reach::trials());
    trials.extend(reach_at_size::trials());
    trials.extend(plans_guard::trials());
    trials.extend(lync::trials());
    trials.extend(shell::trials());
    trials.extend(widths::trials());
    trials.extend(api_coverage::trials());
    trials.extend(behaviour::trials());
    support::harness::add_suite(&behaviour::SUITE, &args, &mut trials);
    support::harness::add_suite(&replicator::SUITE, &args, &mut trials);
    support::harness::add_suite(&api_coverage::SUITE, &args, &mut trials);
    support::harness::add_suite(&scale::SUITE, &args, &mut trials);
    trials.extend(replicator::trials());
    let conclusion = libtest_mimic::run(&args, trials);
    // Whatever a filter or a failure left running is stopped before the process ends.
    behaviour::SUITE.shut_down();
    replicator::SUITE.shut_down();
    api_coverage::SUITE.shut_down();
    scale::SUITE.shut_down();
    conclusion.exit_code()
}
