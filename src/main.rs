//! The `ocsh` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(ocsh::cli::main())
}
