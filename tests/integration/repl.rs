//! The REPL driven through a real terminal (tmux), as an administrator uses it: keys are
//! typed, the screen is read back.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One REPL in its own tmux server (so tests run in parallel without meeting).
struct Term {
    socket: String,
}

impl Term {
    fn start(state: &std::path::Path) -> Term {
        let socket = format!(
            "ocsh-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let cmd = format!("TERM=xterm '{}' repl", env!("CARGO_BIN_EXE_ocsh"));
        // A new tmux server per test, started from a clean environment: the REPL in it
        // inherits no OCSH_* variable and keeps its history under `state`.
        let mut tmux = Command::new("tmux");
        crate::support::clean_env(&mut tmux, state);
        let status = tmux
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "150",
                "-y",
                "60",
                &cmd,
            ])
            .status()
            .expect("tmux runs (apt-get install tmux)");
        assert!(status.success(), "tmux new-session failed");
        let t = Term { socket };
        t.wait_prompt("ocsh>");
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types text literally (no key names, no `;` separators).
    fn type_text(&self, text: &str) {
        // tmux reads a trailing `;` of an argument as its own command separator.
        let text = match text.strip_suffix(';') {
            Some(head) => format!("{head}\\;"),
            None => text.to_string(),
        };
        self.tmux(&["send-keys", "-t", "0", "-l", &text]);
    }

    /// Types text and waits until the editor has echoed it on the last line, so that a
    /// key pressed next (Tab) acts on it.
    fn type_echoed(&self, text: &str) {
        self.type_text(text);
        self.wait(text, |s| {
            s.lines().last().is_some_and(|l| l.ends_with(text))
        });
    }

    /// Presses a key (`Enter`, `Tab`, `C-c`, `C-d`, `Up`).
    fn key(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "0", key]);
    }

    /// The screen and its scroll-back, trailing blank lines removed.
    fn screen(&self) -> String {
        let s = self.tmux(&["capture-pane", "-p", "-t", "0", "-S", "-500"]);
        s.trim_end().to_string()
    }

    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    /// Waits until the last line is exactly the prompt (`ocsh>` or `..>`).
    fn wait_prompt(&self, prompt: &str) -> String {
        self.wait(prompt, |s| {
            s.lines().last().is_some_and(|l| l.trim() == prompt)
        })
    }

    fn wait_text(&self, text: &str) -> String {
        self.wait(text, |s| s.contains(text))
    }

    /// Types a line, presses Enter and waits for the next prompt.
    fn line(&self, text: &str, next: &str) -> String {
        let before = self.screen().lines().count();
        self.type_text(text);
        self.key("Enter");
        self.wait(next, |s| {
            s.lines().count() > before && s.lines().last().is_some_and(|l| l.trim() == next)
        })
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The screen from the first prompt on (the banner names the version).
fn transcript(screen: &str) -> String {
    screen.lines().skip(1).collect::<Vec<_>>().join("\n")
}

fn completion_lists_the_demo_pools_and_members() {
    let state = tempfile::tempdir().unwrap();
    let t = Term::start(state.path());
    t.type_echoed("let p = pool(\"");
    t.key("Tab");
    t.wait_text("let p = pool(\"pool0");
    t.key("Tab");
    t.wait_text("pool01  pool02  pool03");
    t.type_echoed("2\")");
    t.key("Enter");
    t.wait_prompt("ocsh>");
    let s = t.line("p", "ocsh>");
    assert!(s.contains("pool02  pool02.example.com  ("), "{s}");
    t.type_echoed("p.na");
    t.key("Tab");
    t.wait_text("ocsh> p.name");
    t.key("C-c");
    t.wait_prompt("ocsh>");
    t.type_echoed("user(\"jdoe\").flags.has(\"rcc");
    t.key("Tab");
    t.wait_text("has(\"rcc_dual_mode");
    t.key("C-c");
    t.wait_prompt("ocsh>");
    t.type_echoed(":di");
    t.key("Tab");
    t.wait_text("ocsh> :discard");
}

fn a_for_loop_typed_line_by_line_runs_once_complete() {
    let state = tempfile::tempdir().unwrap();
    let t = Term::start(state.path());
    t.line("let names = [];", "ocsh>");
    let s = t.line(
        "for u in users_in(\"OU=Fabrikam,DC=example,DC=com\", \"(msRTCSIP-UserEnabled=TRUE)\") {",
        "..>",
    );
    assert!(!s.contains("error"), "{s}");
    t.line("    names.push(u.sam);", "..>");
    t.line("}", "ocsh>");
    let s = t.line("names.len()", "ocsh>");
    assert!(
        s.lines().rev().nth(1).is_some_and(|l| l.trim() == "9"),
        "{s}"
    );
    insta::assert_snapshot!(transcript(&s));
}

fn ctrl_c_stops_a_runaway_loop_and_the_session_goes_on() {
    let state = tempfile::tempdir().unwrap();
    let t = Term::start(state.path());
    t.type_text("let i = 0; loop { i += 1 }");
    t.key("Enter");
    std::thread::sleep(Duration::from_millis(500));
    t.key("C-c");
    t.wait_text("script stopped: interrupted");
    t.wait_prompt("ocsh>");
    let s = t.line("i > 0", "ocsh>");
    assert!(
        s.lines().rev().nth(1).is_some_and(|l| l.trim() == "true"),
        "{s}"
    );
}

fn plan_shows_a_change_and_discard_empties_it() {
    let state = tempfile::tempdir().unwrap();
    let t = Term::start(state.path());
    t.line("let u = user(\"jdoe\");", "ocsh>");
    t.line("u.enable(pool(\"pool01\"));", "ocsh>");
    let s = t.line(":plan", "ocsh>");
    assert!(
        s.contains("msRTCSIP-PrimaryUserAddress  (absent) → sip:jane.doe@example.com"),
        "{s}"
    );
    let s = t.line(":discard", "ocsh>");
    assert!(s.contains("discarded 5 change(s)"), "{s}");
    let s = t.line(":plan", "ocsh>");
    assert!(s.contains("No changes planned against demo forest."), "{s}");
    let s = t.line(
        "u.enable(\"sip:jane doe@example.com\", pool(\"pool01\"))",
        "ocsh>",
    );
    assert!(s.contains("contains a space at position 9"), "{s}");
    let s = t.line("u", "ocsh>");
    insta::assert_snapshot!(transcript(&s));
}

/// A user card shows the escape sequences a directory value holds as text (`\x1b`), so
/// a value cannot clear or repaint the operator's screen.
fn a_card_shows_control_characters_escaped() {
    let state = tempfile::tempdir().unwrap();
    let forest = state.path().join("forest.ldif");
    // The SIP address with ESC [2J (clear) and ESC [H (home), base64 as LDIF needs.
    let demo = ocsh::directory::demo::DEMO_LDIF.replacen(
        "msRTCSIP-PrimaryUserAddress: sip:alex.kim@example.com",
        "msRTCSIP-PrimaryUserAddress:: c2lwOmFsZXgbWzJKG1tIa2ltQGV4YW1wbGUuY29t",
        1,
    );
    std::fs::write(&forest, demo).unwrap();
    let config = state.path().join(".config/ocsh");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!("default_profile = \"lab\"\n[profiles.lab]\ndirectory = {forest:?}\n"),
    )
    .unwrap();
    let t = Term::start(state.path());
    let s = t.line("user(\"alex.kim\")", "ocsh>");
    assert!(s.contains("sip:alex\\x1b[2J\\x1b[Hkim@example.com"), "{s}");
    assert!(
        s.contains("ocsh> user(\"alex.kim\")"),
        "the screen was cleared:\n{s}"
    );
}

fn history_survives_a_restart_and_ctrl_d_asks_when_changes_are_staged() {
    let state = tempfile::tempdir().unwrap();
    {
        let t = Term::start(state.path());
        t.line("let marker = 4242", "ocsh>");
        t.line("user(\"jdoe\").enable(pool(\"pool02\"))", "ocsh>");
        t.key("C-d");
        t.wait_text("5 change(s) are staged and not applied. Quit and lose them? [y/N]");
        t.type_text("n");
        t.key("Enter");
        t.wait_prompt("ocsh>");
        t.key("C-d");
        t.wait(" [y/N]", |s| s.matches("Quit and lose them?").count() == 2);
        t.type_text("y");
        t.key("Enter");
        t.wait("the REPL to end", |s| {
            s.is_empty() || !s.lines().last().is_some_and(|l| l.contains("[y/N]"))
        });
    }
    let t = Term::start(state.path());
    t.key("Up");
    t.key("Up");
    t.wait_text("ocsh> let marker = 4242");
    t.key("Enter");
    t.wait_prompt("ocsh>");
    let s = t.line("marker", "ocsh>");
    assert!(
        s.lines().rev().nth(1).is_some_and(|l| l.trim() == "4242"),
        "{s}"
    );
}

fn plan_ldif_shows_the_change_file_and_writes_it_to_a_file() {
    let state = tempfile::tempdir().unwrap();
    let t = Term::start(state.path());
    t.line("user(\"colin.fraser\").disable();", "ocsh>");
    let s = t.line(":plan ldif", "ocsh>");
    let expected = "dn: CN=Colin Fraser,OU=Leavers,DC=example,DC=com\nchangetype: modify\n\
                    delete: msRTCSIP-UserEnabled\nmsRTCSIP-UserEnabled: TRUE\n-\n\
                    add: msRTCSIP-UserEnabled\nmsRTCSIP-UserEnabled: FALSE\n-";
    assert!(s.contains(expected), "{s}");
    let file = state.path().join("plan.ldif");
    let s = t.line(&format!(":plan ldif {}", file.display()), "ocsh>");
    assert!(s.contains("wrote 1 change(s) to 1 entry to"), "{s}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("version: 1\n"), "{text}");
    assert!(text.contains(expected), "{text}");
    let s = t.line(":plan yaml", "ocsh>");
    assert!(s.contains("unknown plan format \"yaml\""), "{s}");
}

fn replicator_cycle_runs_from_the_repl() {
    let state = tempfile::tempdir().unwrap();
    let t = Term::start(state.path());
    let s = t.line("replicator.cycle().kind", "ocsh>");
    assert!(
        s.lines()
            .rev()
            .nth(1)
            .is_some_and(|l| l.trim() == "\"initial\""),
        "{s}"
    );
    let s = t.line("replicator.cycle().kind", "ocsh>");
    assert!(
        s.lines()
            .rev()
            .nth(1)
            .is_some_and(|l| l.trim() == "\"incremental\""),
        "{s}"
    );
}

/// A user card shows the Lync-era attributes when the user has them.
fn cards_show_the_lync_attributes() {
    let state = tempfile::tempdir().unwrap();
    let t = Term::start(state.path());
    t.line("user(\"priya.raman\")", "ocsh>");
    let s = t.line("user(\"chloe.dubois\")", "ocsh>");
    insta::assert_snapshot!(transcript(&s));
}

/// `:load FILE` runs the file under its declared reach: the plan header shows it, and a
/// plan that goes beyond it is reported at once.
fn load_runs_under_the_files_declared_reach() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("leavers.rhai");
    std::fs::write(
        &file,
        "//! Toggle two.\n//! @writes federation\n//! @max 1\nfor id in [\"colin.fraser\", \"grace.hopkins\"] { let u = user(id); u.federation = !u.federation; }\n",
    )
    .unwrap();
    let t = Term::start(state.path());
    let s = t.line(&format!(":load {}", file.display()), "ocsh>");
    assert!(s.contains("2 entries changed, more than @max 1"), "{s}");
    assert!(s.contains(":apply refuses this plan"), "{s}");
    let s = t.line(":plan", "ocsh>");
    assert!(
        s.contains("Declared reach: writes msRTCSIP-FederationEnabled; at most 1 entry"),
        "{s}"
    );
}

crate::tests![
    a_card_shows_control_characters_escaped,
    cards_show_the_lync_attributes,
    load_runs_under_the_files_declared_reach,
    completion_lists_the_demo_pools_and_members,
    a_for_loop_typed_line_by_line_runs_once_complete,
    ctrl_c_stops_a_runaway_loop_and_the_session_goes_on,
    plan_shows_a_change_and_discard_empties_it,
    history_survives_a_restart_and_ctrl_d_asks_when_changes_are_staged,
    plan_ldif_shows_the_change_file_and_writes_it_to_a_file,
    replicator_cycle_runs_from_the_repl,
];
