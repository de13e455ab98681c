//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (with --apply: every change landed)
  1  a file could not be read or written
  2  usage error
  3  script error (does not compile, failed, or broke a limit)
  4  a rule refused a change (nothing written)
  5  partial apply (some entries conflicted or failed)
  6  directory error (cannot open, lookup failed, timeout)";

/// ocsh: safe, scriptable provisioning of Office Communications Server users.
#[derive(Debug, Parser)]
#[command(name = "ocsh", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format for plans and emitted records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people.
    Table,
    /// One JSON document.
    Json,
}

/// Where the directory is.
#[derive(Debug, Clone, clap::Args)]
pub struct DirectoryArgs {
    /// `demo` (the built-in forest), an LDIF file, or an ldap:// / ldaps:// URL.
    #[arg(long, short = 'd', env = "OCSH_DIRECTORY", default_value = "demo")]
    pub directory: String,
    /// Seconds allowed for each directory operation.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub op_timeout: u64,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a script: print the plan, and write it with --apply.
    Run(RunArgs),
    /// Compile scripts without running them or touching the directory.
    Check {
        /// The scripts.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write the built-in demo forest as an LDIF file (to change it with --apply).
    Demo {
        /// The file to write; it must not exist yet unless --force.
        file: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// `ocsh run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The script.
    pub file: PathBuf,
    /// A parameter for the script, `name=value` (repeatable); read as `params.name`.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// The directory.
    #[command(flatten)]
    pub directory: DirectoryArgs,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the plan to the directory.
    #[arg(long)]
    pub apply: bool,
    /// With --apply: do not ask for confirmation on a terminal.
    #[arg(long, short = 'y', requires = "apply")]
    pub yes: bool,
    /// Wall-clock seconds the script may run before it is stopped.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Rhai operations the script may perform before it is stopped.
    #[arg(long, default_value_t = 200_000_000)]
    pub max_operations: u64,
    /// Directory writes in flight at once during --apply.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub concurrency: u64,
}
