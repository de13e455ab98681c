//! What `ocsh test` shows: a line per case, a unified diff per mismatch, JUnit XML.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::Finished;
use super::run::Mismatch;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// The case's line (`PASS name (12 ms)`) and, for a failure, why, indented.
pub(crate) fn case_text(f: &Finished, colour: bool) -> String {
    let (word, c) = if f.passed() {
        ("PASS", GREEN)
    } else {
        ("FAIL", RED)
    };
    let word = if colour {
        format!("{c}{word}{RESET}")
    } else {
        word.to_string()
    };
    let mut out = format!("{word} {} ({} ms)\n", f.name, f.time.as_millis());
    let details = failure_text(f, colour);
    for line in details.lines() {
        out.push_str(&format!("    {line}\n"));
    }
    out
}

/// Why a case failed, without colour codes unless `colour`; empty for a pass.
pub(crate) fn failure_text(f: &Finished, colour: bool) -> String {
    let mut out = String::new();
    if let Some(e) = &f.error {
        out.push_str(&format!("error: {e}\n"));
    }
    for m in &f.outcome.mismatches {
        match m {
            Mismatch::Exit {
                expected,
                actual,
                message,
            } => {
                out.push_str(&format!("expected exit {expected}, got {actual}\n"));
                if let Some(msg) = message {
                    out.push_str(&format!("{msg}\n"));
                }
            }
            Mismatch::Differs {
                what,
                file,
                expected,
                actual,
            } => {
                out.push_str(&format!("{what} differs from {file}:\n"));
                out.push_str(&diff(expected, actual, file, colour));
            }
            Mismatch::Other(m) => out.push_str(&format!("error: {m}\n")),
        }
    }
    if !out.is_empty() && !f.outcome.printed.is_empty() {
        out.push_str("the script printed:\n");
        out.push_str(&f.outcome.printed);
    }
    out
}

/// A unified diff of the expected and the actual text.
fn diff(expected: &str, actual: &str, file: &str, colour: bool) -> String {
    let text = similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(file, "actual")
        .to_string();
    if !colour {
        return text;
    }
    text.lines()
        .map(|l| {
            let c = if l.starts_with("+++") || l.starts_with("---") {
                ""
            } else if l.starts_with('+') {
                GREEN
            } else if l.starts_with('-') {
                RED
            } else if l.starts_with("@@") {
                CYAN
            } else {
                ""
            };
            if c.is_empty() {
                format!("{l}\n")
            } else {
                format!("{c}{l}{RESET}\n")
            }
        })
        .collect()
}

/// The results as JUnit XML (one `testsuite` named `ocsh`): a case file that cannot be
/// used is an `error`, a mismatch a `failure` holding the diff.
pub(crate) fn junit(results: &[Finished]) -> Result<Vec<u8>, std::io::Error> {
    let failures = results
        .iter()
        .filter(|f| f.error.is_none() && !f.passed())
        .count();
    let errors = results.iter().filter(|f| f.error.is_some()).count();
    let total: f64 = results.iter().map(|f| f.time.as_secs_f64()).sum();
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let counts = [
        ("tests", results.len().to_string()),
        ("failures", failures.to_string()),
        ("errors", errors.to_string()),
        ("time", format!("{total:.3}")),
    ];
    let mut suites = BytesStart::new("testsuites");
    let mut suite = BytesStart::new("testsuite");
    suite.push_attribute(("name", "ocsh"));
    for (k, v) in &counts {
        suites.push_attribute((*k, v.as_str()));
        suite.push_attribute((*k, v.as_str()));
    }
    w.write_event(Event::Start(suites))?;
    w.write_event(Event::Start(suite))?;
    for f in results {
        let (class, case_name) = match f.name.rsplit_once('/') {
            Some((dir, name)) => (dir.replace('/', "."), name.to_string()),
            None => ("ocsh".to_string(), f.name.clone()),
        };
        let mut tc = BytesStart::new("testcase");
        tc.push_attribute(("name", case_name.as_str()));
        tc.push_attribute(("classname", class.as_str()));
        let time = format!("{:.3}", f.time.as_secs_f64());
        tc.push_attribute(("time", time.as_str()));
        if f.passed() {
            w.write_event(Event::Empty(tc))?;
            continue;
        }
        w.write_event(Event::Start(tc))?;
        let (tag, message) = match &f.error {
            Some(e) => ("error", e.clone()),
            None => ("failure", summary(f)),
        };
        let mut el = BytesStart::new(tag);
        el.push_attribute(("message", message.as_str()));
        w.write_event(Event::Start(el))?;
        w.write_event(Event::Text(BytesText::new(&failure_text(f, false))))?;
        w.write_event(Event::End(BytesEnd::new(tag)))?;
        w.write_event(Event::End(BytesEnd::new("testcase")))?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    w.write_event(Event::End(BytesEnd::new("testsuites")))?;
    let mut xml = w.into_inner();
    xml.push(b'\n');
    Ok(xml)
}

/// One line saying what failed, for the JUnit `message` attribute.
fn summary(f: &Finished) -> String {
    f.outcome
        .mismatches
        .iter()
        .map(|m| match m {
            Mismatch::Exit {
                expected, actual, ..
            } => format!("expected exit {expected}, got {actual}"),
            Mismatch::Differs { what, .. } => format!("{what} differs"),
            Mismatch::Other(m) => m.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Finished {
        Finished {
            name: "tests/x".into(),
            time: std::time::Duration::from_millis(7),
            error: None,
            outcome: super::super::run::Outcome {
                mismatches: vec![Mismatch::Differs {
                    what: "plan",
                    file: "x.plan.ldif".into(),
                    expected: "a\nb <&>\n".into(),
                    actual: "a\nc\n".into(),
                }],
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_failure_is_a_diff_coloured_only_on_request() {
        let plain = case_text(&failed(), false);
        assert_eq!(
            plain,
            "FAIL tests/x (7 ms)\n    plan differs from x.plan.ldif:\n    --- x.plan.ldif\n    +++ actual\n    @@ -1,2 +1,2 @@\n     a\n    -b <&>\n    +c\n"
        );
        let coloured = case_text(&failed(), true);
        assert!(
            coloured.starts_with("\x1b[31mFAIL\x1b[0m tests/x"),
            "{coloured:?}"
        );
        assert!(coloured.contains("\x1b[31m-b <&>\x1b[0m"), "{coloured:?}");
        assert!(coloured.contains("\x1b[32m+c\x1b[0m"), "{coloured:?}");
    }

    #[test]
    fn junit_escapes_the_diff() {
        let xml = String::from_utf8(junit(&[failed()]).unwrap()).unwrap();
        assert!(xml.contains("-b &lt;&amp;&gt;"), "{xml}");
        assert!(xml.contains("<failure message=\"plan differs\">"), "{xml}");
        assert!(
            xml.contains("tests=\"1\" failures=\"1\" errors=\"0\""),
            "{xml}"
        );
    }
}
