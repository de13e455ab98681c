//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// ocsh: safe, scriptable provisioning of Office Communications Server users.
#[derive(Debug, Parser)]
#[command(name = "ocsh", version, about, after_help = crate::error::exit::help())]
pub struct Cli {
    /// The command; none opens the REPL.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Output format for plans and emitted records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people.
    Table,
    /// One JSON document.
    Json,
    /// The records as CSV (the plan goes to stderr).
    Csv,
    /// The plan as an LDIF change file for `ldapmodify -f` (records go to stderr); not
    /// with --apply.
    Ldif,
}

/// A `--format` parser offering only `names` (the replicator has no plan to write as LDIF).
pub fn formats(
    names: &'static [&'static str],
) -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(names)
        .map(|s| Format::from_str(&s, true).unwrap_or(Format::Table))
}

/// Where the directory is and how to reach it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DirectoryArgs {
    /// `demo` (the built-in forest), an LDIF file, or an ldap:// / ldaps:// URL.
    #[arg(long, short = 'd', env = "OCSH_DIRECTORY")]
    pub directory: Option<String>,
    /// The config file (default: ocsh/config.toml in the user's config directory).
    #[arg(long, env = "OCSH_CONFIG")]
    pub config: Option<PathBuf>,
    /// A named profile of the config file.
    #[arg(long, env = "OCSH_PROFILE")]
    pub profile: Option<String>,
    /// Base DN (default: the rootDSE's default naming context).
    #[arg(long, env = "OCSH_BASE")]
    pub base: Option<String>,
    /// DN to bind as; the password comes from OCSH_PASSWORD, --password-file or a prompt.
    #[arg(long, env = "OCSH_BIND_DN")]
    pub bind_dn: Option<String>,
    /// A file whose first line is the bind password.
    #[arg(long, env = "OCSH_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// Upgrade ldap:// to TLS with StartTLS.
    #[arg(long)]
    pub starttls: bool,
    /// PEM file of the CA certificates to trust for TLS.
    #[arg(long, env = "OCSH_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do NOT verify the server's TLS certificate (dangerous: for lab servers only).
    #[arg(long)]
    pub insecure_no_tls_verify: bool,
    /// Seconds allowed to connect.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub connect_timeout: Option<u64>,
    /// Seconds allowed for each directory operation.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub op_timeout: Option<u64>,
    /// The replicator's replica (SQLite) file (default: replica-<directory>.sqlite in the
    /// user's state directory).
    #[arg(long, env = "OCSH_REPLICA")]
    pub replica: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a script: print the plan, and write it with --apply.
    #[command(disable_help_flag = true)]
    Run(Box<RunArgs>),
    /// The interactive session (also: `ocsh` with no command). On a pipe, runs the input
    /// as one script.
    Repl(Box<ReplArgs>),
    /// Compile scripts without running them or touching the directory.
    Check {
        /// The scripts.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A folder of snippet modules for `import` (repeatable; also OCSH_LIB).
        #[arg(long = "lib", value_name = "DIR")]
        lib: Vec<PathBuf>,
        /// Also fail on a script that declares no reach (`@writes`, `@scope` or `@max`).
        #[arg(long)]
        strict: bool,
        /// Nesting limits for compiling and loading modules.
        #[command(flatten)]
        limits: super::limits::LimitArgs,
    },
    /// Run a library's test cases (`*.case.toml`): each script in plan mode against its
    /// fixture, compared with the expected plan and records.
    Test(Box<super::tester::TestArgs>),
    /// Print the script API reference, generated from the engine (docs/api.md).
    Docs {
        /// Also write a Rhai definition file (ocsh.d.rhai) for editor completion here.
        #[arg(long, value_name = "DIR")]
        definitions: Option<PathBuf>,
    },
    /// The user replicator: keep a replica of the OCS users, pools and SIP domains in
    /// step with the directory, and report its problems.
    Replicator {
        /// What to do.
        #[command(subcommand)]
        command: Box<super::replicator::ReplicatorCommand>,
    },
    /// Plan the reverse of a journalled run (each change with the run's after-value as
    /// its precondition), and write it with --apply.
    Undo(Box<super::undo::UndoArgs>),
    /// List the runs of a journal and what became of them (--run ID: its entries).
    Journal(Box<super::journal::JournalArgs>),
    /// Write the built-in demo forest as an LDIF file (to change it with --apply).
    Demo {
        /// The file to write; it must not exist yet unless --force.
        file: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Add this many generated users to the demo's (docs/demo-forest.md, "At scale").
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
        users: Option<u64>,
    },
    /// Print a completion script for a shell, generated from these definitions
    /// (bash: `ocsh completions bash > /etc/bash_completion.d/ocsh`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these definitions (`ocsh man | man -l -`).
    Man,
}

/// What `run` and `repl` share: parameters, the directory, the output format.
#[derive(Debug, Clone, clap::Args)]
pub struct ScriptArgs {
    /// A parameter for the script, `name=value` (repeatable); read as `params.name`.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// The directory.
    #[command(flatten)]
    pub directory: DirectoryArgs,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the output to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A folder of snippet modules for `import` (repeatable; also OCSH_LIB, a path list).
    #[arg(long = "lib", value_name = "DIR")]
    pub lib: Vec<PathBuf>,
    /// A file or folder that read_csv/read_lines may read (repeatable).
    #[arg(long = "allow-read", value_name = "PATH")]
    pub allow_read: Vec<PathBuf>,
    /// With --apply (or :apply): allow a plan that disables, removes or moves up to N
    /// users (default 500, or the profile's max_destructive); --yes does not.
    #[arg(long, value_name = "N")]
    pub allow_destructive: Option<usize>,
}

/// `ocsh run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The script.
    pub file: Option<PathBuf>,
    /// Show this help, and the script's own parameters when a script is named.
    #[arg(long, short = 'h')]
    pub help: bool,
    /// Parameters, directory and output format.
    #[command(flatten)]
    pub common: ScriptArgs,
    /// Write the plan to the directory.
    #[arg(long)]
    pub apply: bool,
    /// With --apply: do not ask for confirmation on a terminal.
    #[arg(long, short = 'y', requires = "apply")]
    pub yes: bool,
    /// Wall-clock seconds the script may run before it is stopped.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Operations, memory and nesting the script may use.
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
    /// Print the run's operations, time and memory to stderr.
    #[arg(long)]
    pub stats: bool,
    /// Directory writes in flight at once during --apply (default 8).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub concurrency: Option<u64>,
    /// Append every applied change to this JSON-lines journal (default: journal.jsonl in
    /// the user's state directory).
    #[arg(long, env = "OCSH_JOURNAL")]
    pub journal: Option<PathBuf>,
}

/// `ocsh repl`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplArgs {
    /// Parameters, directory and output format (used when the input comes from a pipe).
    #[command(flatten)]
    pub common: ScriptArgs,
    /// Wall-clock seconds one statement may run.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Operations, memory and nesting each input may use.
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}
