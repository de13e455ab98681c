//! `ocsh repl`: the interactive session. Same engine, sandbox and objects as `ocsh run`;
//! changes are staged until `:apply`.

use std::cell::RefCell;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::error::Error;
use crate::plan::render;
use crate::script::{Sandbox, ScriptError, Session};

use super::args::ReplArgs;
use super::complete::{Catalog, Known, complete};
use super::{
    ApplySettings, apply_plan, open_workspace, param_pairs, read_script, run_source, show,
};

const API: &str = include_str!("../../docs/api.md");

/// Completion for the editor; everything else is rustyline's default.
struct ReplHelper {
    catalog: Catalog,
    known: Rc<RefCell<Known>>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = complete(line, pos, &self.catalog, &self.known.borrow());
        Ok((
            start,
            words
                .into_iter()
                .map(|w| Pair {
                    display: w.clone(),
                    replacement: w,
                })
                .collect(),
        ))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}
impl Highlighter for ReplHelper {}
impl Validator for ReplHelper {}
impl Helper for ReplHelper {}

/// True when `source` only lacks its end: an open block, string, array or call, or a
/// trailing operator. Such input continues on the next line.
pub fn is_incomplete(source: &str) -> bool {
    use rhai::{LexError, ParseErrorType};
    let engine = rhai::Engine::new_raw();
    let Err(e) = engine.compile(source) else {
        return false;
    };
    match e.err_type() {
        ParseErrorType::UnexpectedEOF | ParseErrorType::BadInput(LexError::UnterminatedString) => {
            true
        }
        ParseErrorType::MissingToken(..) => {
            let pos = e.position();
            let lines: Vec<&str> = source.lines().collect();
            let last_len = lines.last().map_or(0, |l| l.chars().count());
            pos.is_none()
                || (pos.line() == Some(lines.len().max(1))
                    && pos.position().unwrap_or(0) > last_len)
        }
        _ => false,
    }
}

/// The input line of an error with a caret under its column.
pub fn caret(source: &str, e: &ScriptError) -> String {
    let (Some(line), Some(col)) = (e.line, e.column) else {
        return format!("error: {}", e.message);
    };
    let text = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
    format!("  | {text}\n  | {}^", " ".repeat(col.saturating_sub(1)))
}

fn history_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "ocsh").map(|d| {
        d.state_dir()
            .unwrap_or_else(|| d.data_local_dir())
            .join("history.txt")
    })
}

fn help(topic: Option<&str>) -> String {
    match topic {
        None | Some("") => "Type Rhai statements; an unfinished one continues on the next line.\n\
             Objects: user(\"jdoe\"), users(\"(filter)\"), users_in(ou, filter), pool(\"pool01\"), pools(), flags(385).\n\
             Changes are staged, never written until :apply.\n\n\
             :help [functions|user|pool|flags|sandbox]  this help, or a part of the API reference\n\
             :plan             show the staged changes\n\
             :plan ldif [FILE] them as an LDIF change file for ldapmodify (to FILE)\n\
             :apply            write them (asks first)\n\
             :discard          forget them\n\
             :load FILE        run a script into this session\n\
             :vars             the variables of the session\n\
             :clear            forget variables and functions\n\
             :quit             leave (Ctrl-D too); Ctrl-C stops a running statement\n"
            .to_string(),
        Some(t) => {
            let wanted = t.trim().to_ascii_lowercase();
            let mut out = String::new();
            let mut on = false;
            for line in API.lines() {
                if let Some(h) = line.strip_prefix("## ") {
                    on = h.to_ascii_lowercase().contains(&wanted);
                }
                if on {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            if out.is_empty() {
                format!("no help topic {t:?}; topics: functions, user, pool, flags, userquery, sandbox\n")
            } else {
                out
            }
        }
    }
}

/// Runs the REPL (or, on a pipe, the piped input as one script).
pub fn repl(args: &ReplArgs, out: &mut dyn Write) -> Result<(), Error> {
    let params = crate::script::header::Header::default()
        .params(&param_pairs(&args.common.params)?)
        .map_err(Error::Usage)?;
    let (ws, resolved) = open_workspace(&args.common.directory)?;
    let limits = Sandbox {
        limits: super::limits::resolve(&args.limits, resolved.limits.as_ref())?,
        timeout: Some(Duration::from_secs(args.timeout)),
        lib: super::config::lib_folders(&args.common.lib, &resolved.lib)?,
        allow_read: super::allowed_reads(&args.common.allow_read)?,
        ..Sandbox::default()
    };
    if !std::io::stdin().is_terminal() {
        let mut source = String::new();
        std::io::stdin()
            .read_to_string(&mut source)
            .map_err(|e| Error::io("stdin", e))?;
        return run_source(
            ws,
            params,
            &limits,
            "<stdin>",
            &source,
            args.common.format,
            None,
            out,
        );
    }
    let mut session = Session::new(ws, params, &limits, Box::new(std::io::stdout()));
    let flag = session.interrupt_flag();
    // Ctrl-C while a statement runs sets the flag; at the prompt rustyline reads it as a key.
    let _ = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst));
    let known = Rc::new(RefCell::new(Known::default()));
    let helper = ReplHelper {
        catalog: Catalog::from_signatures(&session.signatures()),
        known: known.clone(),
    };
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .max_history_size(5000)
        .map_err(|e| Error::io("line editor", e))?
        .build();
    let mut rl: Editor<ReplHelper, FileHistory> =
        Editor::with_config(config).map_err(|e| Error::io("cannot start the line editor", e))?;
    rl.set_helper(Some(helper));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let apply_settings = ApplySettings {
        command: "repl",
        directory: super::journal_directory(&resolved.spec),
        undoes: None,
        yes: false,
        concurrency: resolved.concurrency.unwrap_or(8).clamp(1, 64) as usize,
        journal: resolved.journal.clone(),
        limit: crate::plan::guard::Limit::resolve(
            args.common.allow_destructive,
            resolved.max_destructive,
        ),
    };
    {
        let host = session.host().clone();
        let ws = host.ws.borrow();
        let _ = writeln!(
            out,
            "ocsh {} on {}: {} pool(s), SIP domains {}. :help for help, :quit to leave.",
            env!("CARGO_PKG_VERSION"),
            ws.describe(),
            ws.pools().len(),
            if ws.sip_domains().is_empty() {
                "unknown".into()
            } else {
                ws.sip_domains().join(", ")
            }
        );
        known.borrow_mut().pools = ws.pools().iter().map(|p| p.name.clone()).collect();
    }
    let mut count = 0usize;
    loop {
        known.borrow_mut().vars = session
            .variables()
            .into_iter()
            .map(|(n, t, _)| (n, t))
            .collect();
        let mut input = match rl.readline("ocsh> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => {
                if confirm_quit(&mut rl, &session)? {
                    break;
                }
                continue;
            }
            Err(e) => return Err(Error::io("terminal", e)),
        };
        while !input.trim_start().starts_with(':') && is_incomplete(&input) {
            match rl.readline("  ..> ") {
                Ok(more) => {
                    input.push('\n');
                    input.push_str(&more);
                }
                Err(ReadlineError::Interrupted) => {
                    input.clear();
                    break;
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(Error::io("terminal", e)),
            }
        }
        if input.trim().is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(input.as_str());
        if let Some(h) = &history {
            if let Some(dir) = h.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = rl.save_history(h);
        }
        let trimmed = input.trim();
        if let Some(cmd) = trimmed.strip_prefix(':') {
            let (name, arg) = cmd
                .split_once(' ')
                .map_or((cmd, ""), |(n, a)| (n, a.trim()));
            match name {
                "q" | "quit" | "exit" => {
                    if confirm_quit(&mut rl, &session)? {
                        break;
                    }
                }
                "h" | "help" => {
                    let _ = write!(out, "{}", help(Some(arg).filter(|a| !a.is_empty())));
                }
                "plan" => {
                    let host = session.host().clone();
                    let ws = host.ws.borrow();
                    let _ = write!(out, "{}", plan_command(ws.plan(), &ws.describe(), arg));
                }
                "discard" => {
                    let host = session.host().clone();
                    let n = host.ws.borrow().plan().change_count();
                    host.ws.borrow_mut().discard();
                    let _ = writeln!(out, "discarded {n} change(s)");
                }
                "apply" => repl_apply(&mut rl, &session, &resolved, &apply_settings, out)?,
                "load" => match read_script(std::path::Path::new(arg)) {
                    Ok(source) => load(&mut session, arg, &source, out),
                    Err(e) => {
                        let _ = writeln!(out, "error: {e}");
                    }
                },
                "vars" => {
                    for (n, t, v) in session.variables() {
                        let shown = show::show(&v).unwrap_or_else(|| "()".into());
                        let first = shown.lines().next().unwrap_or("").to_string();
                        let _ = writeln!(out, "{n}: {t} = {first}");
                    }
                }
                "clear" => {
                    session.clear();
                    let _ = writeln!(
                        out,
                        "variables and functions cleared (staged changes kept; :discard drops them)"
                    );
                }
                other => {
                    let _ = writeln!(out, "unknown command :{other}; :help lists the commands");
                }
            }
            continue;
        }
        count += 1;
        eval(&mut session, &format!("<input {count}>"), &input, out);
    }
    Ok(())
}

/// `:load FILE`: the file's declared reach bounds the session's plan from then on (with
/// any reach loaded before), the file runs, and a plan beyond a reach is reported at once
/// (`:apply` refuses it).
fn load(session: &mut Session, name: &str, source: &str, out: &mut dyn Write) {
    let header = match crate::script::header::Header::parse(source) {
        Ok(h) => h,
        Err(e) => {
            let _ = writeln!(out, "error: {name}: header {e}");
            return;
        }
    };
    session.host().ws.borrow_mut().declare_reach(&header.reach);
    eval(session, name, source, out);
    let host = session.host().clone();
    let ws = host.ws.borrow();
    if let Err(e) = super::enforce_reach(ws.plan(), name) {
        let _ = writeln!(
            out,
            "{e}\n:apply refuses this plan; :discard drops the staged changes"
        );
    }
}

/// `:plan`, `:plan ldif` and `:plan ldif FILE`: what to print.
fn plan_command(plan: &crate::plan::Plan, directory: &str, arg: &str) -> String {
    let (format, file) = arg
        .split_once(char::is_whitespace)
        .map_or((arg, ""), |(f, rest)| (f, rest.trim()));
    match format {
        "" => render::plan_text(plan, directory),
        "ldif" if file.is_empty() => crate::plan::ldif::plan_ldif(plan, directory),
        "ldif" => match std::fs::write(file, crate::plan::ldif::plan_ldif(plan, directory)) {
            Ok(()) => format!(
                "wrote {} change(s) to {} entr{} to {file} (apply with: ldapmodify -f {file})\n",
                plan.change_count(),
                plan.entry_count(),
                if plan.entry_count() == 1 { "y" } else { "ies" }
            ),
            Err(e) => format!("error: {file}: {e}\n"),
        },
        other => format!("unknown plan format {other:?}; :plan or :plan ldif [FILE]\n"),
    }
}

fn eval(session: &mut Session, name: &str, source: &str, out: &mut dyn Write) {
    let before = session.host().ws.borrow().plan().change_count();
    let result = session.run(name, source);
    for r in session.take_records() {
        let _ = writeln!(
            out,
            "{}",
            show::show(&rhai::Dynamic::from_map(r)).unwrap_or_default()
        );
    }
    match result {
        Ok(v) => {
            if let Some(text) = show::show(&v) {
                let _ = writeln!(out, "{text}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "error: {}\n{}", e.message, caret(source, &e));
            let after = session.host().ws.borrow().plan().change_count();
            if after != before {
                let _ = writeln!(
                    out,
                    "(changes staged before the error are kept: :plan shows them, :discard drops them)"
                );
            }
        }
    }
}

fn confirm_quit(
    rl: &mut Editor<ReplHelper, FileHistory>,
    session: &Session,
) -> Result<bool, Error> {
    let n = session.host().ws.borrow().plan().change_count();
    if n == 0 {
        return Ok(true);
    }
    match rl.readline(&format!(
        "{n} change(s) are staged and not applied. Quit and lose them? [y/N] "
    )) {
        Ok(a) => Ok(matches!(
            a.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        )),
        Err(ReadlineError::Eof) => Ok(true),
        Err(_) => Ok(false),
    }
}

fn repl_apply(
    rl: &mut Editor<ReplHelper, FileHistory>,
    session: &Session,
    resolved: &super::config::Resolved,
    settings: &ApplySettings,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let host = session.host().clone();
    let mut ws = host.ws.borrow_mut();
    if ws.plan().is_empty() {
        let _ = writeln!(out, "nothing is staged");
        return Ok(());
    }
    if !resolved.spec.is_persistent() {
        let _ = writeln!(
            out,
            "the built-in demo lives in memory and cannot be written; start with --directory FILE (ocsh demo FILE writes one)"
        );
        return Ok(());
    }
    let _ = write!(out, "{}", render::plan_text(ws.plan(), &ws.describe()));
    if let Err(e) = super::enforce_reach(ws.plan(), "the session") {
        let _ = writeln!(out, "{e}\nthe changes stay staged; :discard drops them");
        return Ok(());
    }
    if let Err(e) = crate::plan::guard::check(ws.plan(), settings.limit) {
        let _ = writeln!(
            out,
            "refused: {e} (start the REPL with it); the changes stay staged"
        );
        return Ok(());
    }
    let question = format!(
        "Apply {} change(s) to {} entries? [y/N] ",
        ws.plan().change_count(),
        ws.plan().entry_count()
    );
    match rl.readline(&question) {
        Ok(a) if matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes") => {
            let report = apply_plan(&mut ws, settings, None)?;
            let _ = write!(
                out,
                "{}{}",
                render::report_text(&report),
                super::journal_footer(&report, settings)
            );
            // The session goes on: the REPL shows what an apply's error would be.
            if let Err(e) = super::apply_outcome(&report) {
                let _ = writeln!(out, "{e}");
            }
        }
        _ => {
            let _ = writeln!(out, "not applied; the changes stay staged");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_input_continues() {
        for s in [
            "for x in [1,2] {",
            "let s = \"abc",
            "1 +",
            "foo(1,",
            "let a = [1,",
            "let m = #{",
            "if x {\n  print(1);",
        ] {
            assert!(is_incomplete(s), "{s:?}");
        }
        for s in ["1 + 2", "let x = ;", "}", "for x in [1] { print(x) }", "x."] {
            assert!(!is_incomplete(s), "{s:?}");
        }
    }

    #[test]
    fn caret_points_at_the_column() {
        let e = ScriptError {
            kind: crate::script::ScriptErrorKind::Script,
            file: "<input 1>".into(),
            line: Some(2),
            column: Some(5),
            message: "boom".into(),
        };
        assert_eq!(
            caret("let a = 1;\nlet b = c;", &e),
            "  | let b = c;\n  |     ^"
        );
    }

    #[test]
    fn help_topics_come_from_the_api_reference() {
        assert!(help(Some("flags")).contains("enhanced_presence"));
        assert!(help(Some("nonsense")).contains("no help topic"));
        assert!(help(None).contains(":apply"));
    }
}
