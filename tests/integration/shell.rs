//! Shell habits: `ocsh completions SHELL` and `ocsh man`, both generated from the clap
//! definitions the parser uses, so a new option shows up in them by itself.

use std::process::{Command, Stdio};

use crate::support::Test;

/// Bash sources the script and completes `ocsh ru` to `run` and `ocsh run --allow-d` to
/// the guard's flag: the script works, not just prints.
#[cfg(unix)]
fn bash_completion_completes_commands_and_options() {
    let o = Test::new().args(["completions", "bash"]).run();
    let script = o.path("ocsh.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    let complete = |words: &str| -> String {
        let probe = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); \
             _ocsh ocsh \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-c", &probe])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let got = complete("ocsh ru");
    assert_eq!(got.trim(), "run", "{got}");
    let got = complete("ocsh run --allow-d");
    assert_eq!(got.trim(), "--allow-destructive", "{got}");
    let got = complete("ocsh completions p");
    assert_eq!(got.trim(), "powershell", "{got}");
}

fn completions_for_zsh_fish_and_powershell_name_every_command() {
    for shell in ["zsh", "fish", "powershell"] {
        let o = Test::new().args(["completions", shell]).run();
        for word in ["run", "replicator", "completions", "allow-destructive"] {
            assert!(o.stdout.contains(word), "{shell}: no {word:?}");
        }
        // zsh and fish also offer an option's values (PowerShell's script does not).
        if shell != "powershell" {
            assert!(o.stdout.contains("ldif"), "{shell}: no --format ldif");
        }
    }
    Test::new()
        .args(["completions", "tcsh"])
        .code(2)
        .stderr_has("invalid value 'tcsh'")
        .run();
}

/// The man page is roff with the top-level page and a section per command.
fn man_page_has_every_command_and_its_options() {
    let o = Test::new()
        .args(["man"])
        .stdout_has(".TH ocsh 1")
        .stdout_has(".SH \"OCSH RUN\"")
        .stdout_has(".SH \"OCSH REPLICATOR\"")
        .run();
    for option in ["allow\\-destructive", "format", "journal", "concurrency"] {
        assert!(o.stdout.contains(option), "no {option} in the man page");
    }
}

crate::tests![
    #[cfg(unix)]
    bash_completion_completes_commands_and_options,
    completions_for_zsh_fish_and_powershell_name_every_command,
    man_page_has_every_command_and_its_options,
];
