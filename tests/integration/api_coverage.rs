//! Every function, method and property of the script API, called through a real script on
//! each backend (the embedded directory, OpenLDAP, Samba AD, each holding the demo forest).
//!
//! The list of what to call is not written here: it is `ocsh::script::docs::api_entries`,
//! the engine metadata `docs/api.md` is generated from. Each entry becomes a script built
//! from that metadata (`RECEIVER.name(ARGS)`, `RECEIVER.name`, `o.name = VALUE`,
//! `name(ARGS)`); this file only supplies argument values, keyed by the entry's overload.
//! So a documented function that no script can call (a reserved keyword such as `sync`,
//! a name the parser takes for something else, a registration the engine does not
//! dispatch to) fails here, and so does a documented entry without arguments below, or
//! arguments for an entry that is no longer documented.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ocsh::directory::DirectorySpec;
use ocsh::directory::ldap::LdapOptions;
use ocsh::plan::Workspace;
use ocsh::script::docs::{ApiEntry, ApiKind, api_entries};
use ocsh::script::{Sandbox, Session};

use crate::support::{self, Server, ServerKind, fixtures, say};

const DEMO: &str = ocsh::directory::demo::DEMO_LDIF;

/// The object a method or property of each type is called on.
fn receiver_of(ty: &str) -> &'static str {
    match ty {
        "User" => r#"user("jdoe")"#,
        "Pool" => r#"pool("pool01")"#,
        "Flags" => "flags(257)",
        "UserQuery" => r#"users_in("OU=Sales,DC=example,DC=com")"#,
        "PlanChanges" => r#"({ user("alex.kim").disable(); plan() })"#,
        "Replicator" => "replicator",
        other => panic!("a documented type without a receiver here: {other}"),
    }
}

/// What a call needs: another receiver than the type's usual one, and the arguments (Rhai
/// expressions).
struct Call {
    receiver: Option<&'static str>,
    args: &'static [&'static str],
}

const fn args(args: &'static [&'static str]) -> Call {
    Call {
        receiver: None,
        args,
    }
}

const fn on(receiver: &'static str, args: &'static [&'static str]) -> Call {
    Call {
        receiver: Some(receiver),
        args,
    }
}

/// Arguments for every documented entry that takes any, or needs its own receiver,
/// keyed by [`ApiEntry::key`]. Entries without parameters need no line.
fn calls() -> BTreeMap<&'static str, Call> {
    let enabled = r#"user("alex.kim")"#;
    BTreeMap::from([
        ("emit(any)", args(&[r#"user("jdoe")"#])),
        ("emit(map)", args(&["#{ name: \"x\", n: 1 }"])),
        (
            "flags(any)",
            args(&["[\"enhanced_presence\", \"public_im\"]"]),
        ),
        ("ldap_escape(string)", args(&["\"a*(b)\""])),
        ("pool(string)", args(&["\"pool02\""])),
        ("read_csv(string)", args(&["CSV"])),
        ("read_lines(string)", args(&["LINES"])),
        ("user(string)", args(&["\"jdoe\""])),
        ("PlanChanges.get(int)", args(&["0"])),
        ("users(string)", args(&["\"(sAMAccountName=j*)\""])),
        (
            "users_in(string)",
            args(&["\"OU=Support,DC=example,DC=com\""]),
        ),
        (
            "users_in(string, string)",
            args(&[
                "\"OU=Sales,DC=example,DC=com\"",
                "\"(msRTCSIP-UserEnabled=TRUE)\"",
            ]),
        ),
        ("Flags.has(string)", args(&["\"public_im\""])),
        ("set Flags.anonymous_meetings", args(&["true"])),
        ("set Flags.enhanced_presence", args(&["true"])),
        ("set Flags.enterprise_voice", args(&["true"])),
        ("set Flags.public_im", args(&["false"])),
        ("set Flags.rcc_dual_mode", args(&["true"])),
        ("set Flags.remote_call_control", args(&["true"])),
        ("set Replicator.interval", args(&["120"])),
        ("User.attr(string)", args(&["\"displayName\""])),
        ("User.derive_sip(string)", args(&["\"mail\""])),
        (
            "User.derive_sip(string, string)",
            args(&["\"first_last\"", "\"fabrikam.com\""]),
        ),
        ("User.disable()", on(enabled, &[])),
        ("User.enable(any)", args(&["pool(\"pool01\")"])),
        (
            "User.enable(string, any)",
            args(&["\"sip:jdoe.api@example.com\"", "\"pool02\""]),
        ),
        ("User.move_to(any)", on(enabled, &["\"pool02\""])),
        ("User.remove()", on(enabled, &[])),
        (
            "User.set_attr(string, any)",
            on(enabled, &["\"msRTCSIP-OptionFlags\"", "257"]),
        ),
        ("set User.archiving", on(enabled, &["12"])),
        ("set User.federation", on(enabled, &["true"])),
        (
            "set User.line",
            on(enabled, &["\"tel:+15551239999;ext=99\""]),
        ),
        ("set User.flags", on(enabled, &["flags(257)"])),
        ("set User.remote_access", on(enabled, &["true"])),
        (
            "set User.sip",
            on(enabled, &["\"sip:alex.kim.api@example.com\""]),
        ),
    ])
}

/// The script that exercises one entry, made from its metadata.
fn script_for(e: &ApiEntry, call: Option<&Call>, files: &Path) -> String {
    let subst = |a: &str| match a {
        "CSV" => format!("{:?}", files.join("in.csv").display().to_string()),
        "LINES" => format!("{:?}", files.join("in.txt").display().to_string()),
        other => other.to_string(),
    };
    let argv: Vec<String> = call
        .map(|c| c.args.iter().map(|a| subst(a)).collect())
        .unwrap_or_default();
    let receiver = || {
        call.and_then(|c| c.receiver)
            .unwrap_or_else(|| receiver_of(e.receiver.as_deref().unwrap_or_default()))
    };
    match e.kind {
        ApiKind::Function => format!("{}({})", e.name, argv.join(", ")),
        ApiKind::Method => format!("{}.{}({})", receiver(), e.name, argv.join(", ")),
        ApiKind::Getter => format!("{}.{}", receiver(), e.name),
        ApiKind::Setter => format!(
            "let o = {};\no.{} = {};\no.{}",
            receiver(),
            e.name,
            argv.first().cloned().unwrap_or_default(),
            e.name
        ),
    }
}

/// Runs every documented entry on `ws`; returns how many were called.
fn every_entry(backend: &str, ws: Workspace, files: &Path) -> usize {
    std::fs::write(files.join("in.csv"), "sam,pool\njdoe,pool01\n").unwrap();
    std::fs::write(files.join("in.txt"), "# leavers\njdoe\n\nalex.kim\n").unwrap();
    let sandbox = Sandbox {
        allow_read: vec![files.to_path_buf()],
        ..Sandbox::default()
    };
    let mut s = Session::new(ws, rhai::Map::new(), &sandbox, Box::new(std::io::sink()));
    let entries = api_entries(&s).unwrap();
    let table = calls();
    let documented: BTreeSet<String> = entries.iter().map(ApiEntry::key).collect();
    let stale: Vec<&&str> = table.keys().filter(|k| !documented.contains(**k)).collect();
    assert!(
        stale.is_empty(),
        "arguments for entries that are not documented (renamed or removed?): {stale:?}"
    );
    let mut failures = Vec::new();
    for e in &entries {
        let call = table.get(e.key().as_str());
        if !e.params.is_empty() && call.is_none_or(|c| c.args.len() != e.params.len()) {
            failures.push(format!(
                "{}: documented with {} parameter(s) but this test has no arguments for it",
                e.key(),
                e.params.len()
            ));
            continue;
        }
        let code = script_for(e, call, files);
        if let Err(err) = s.run(&format!("{}.rhai", e.key()), &code) {
            failures.push(format!("{}: `{code}` failed: {err}", e.key()));
        }
        let _ = s.run("<reset>", "discard();").unwrap();
    }
    assert!(
        failures.is_empty(),
        "{backend}: {} of {} documented entries cannot be called from a script:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
    // The documented cycle ran: the replica has its rows.
    let replica = ocsh::replica::Replica::open(&files.join("replica.sqlite")).unwrap();
    assert!(
        !replica.cycles(5).unwrap().is_empty(),
        "{backend}: no cycle"
    );
    entries.len()
}

fn workspace(spec: &DirectorySpec, ldap: &LdapOptions, files: &Path) -> Workspace {
    let mut ws = Workspace::connect(spec, ldap, Duration::from_secs(60)).unwrap();
    ws.set_replica_path(Some(files.join("replica.sqlite")));
    ws
}

/// A backend with the demo forest, and a folder for the files and the replica.
pub(crate) struct ApiLab {
    name: &'static str,
    spec: DirectorySpec,
    ldap: LdapOptions,
    files: tempfile::TempDir,
    _server: Option<Server>,
}

fn start_lab(name: &'static str) -> Result<ApiLab, String> {
    let files = tempfile::tempdir().map_err(|e| e.to_string())?;
    if name == "embedded" {
        let forest = files.path().join("forest.ldif");
        std::fs::write(&forest, DEMO).map_err(|e| e.to_string())?;
        return Ok(ApiLab {
            name,
            spec: DirectorySpec::Ldif(forest),
            ldap: LdapOptions::default(),
            files,
            _server: None,
        });
    }
    let Some(server) = support::start_server(name)? else {
        return Err(format!("{name} has no server"));
    };
    let leftovers = match server.kind {
        ServerKind::OpenLdap => fixtures::LEFTOVERS.to_string(),
        ServerKind::Samba => fixtures::leftovers_for_samba(),
    };
    server.load("child-domain-leftovers.ldif", &leftovers);
    server.load("demo-forest.ldif", DEMO);
    Ok(ApiLab {
        name,
        spec: DirectorySpec::Ldap(server.env.ldap_url.clone()),
        ldap: server.env.ldap_options(),
        files,
        _server: Some(server),
    })
}

/// Every function and property of docs/api.md, called from a script on this backend.
fn every_documented_entry_runs_from_a_script(lab: &ApiLab) {
    let ws = workspace(&lab.spec, &lab.ldap, lab.files.path());
    let n = every_entry(lab.name, ws, lab.files.path());
    say(&format!(
        "{}::api_coverage: {n} documented entries called",
        lab.name
    ));
}

crate::suite! { "api_coverage", ApiLab, start_lab; every_documented_entry_runs_from_a_script }

/// The check itself can fail: a method named `sync` (a reserved keyword in Rhai) does not
/// compile, whatever the engine registers.
fn a_reserved_keyword_cannot_be_called() {
    let ws = Workspace::open(
        Arc::new(ocsh::directory::demo::demo_directory().unwrap()),
        Duration::from_secs(5),
    )
    .unwrap();
    let mut s = Session::new(
        ws,
        rhai::Map::new(),
        &Sandbox::default(),
        Box::new(std::io::sink()),
    );
    let err = s.run("sync.rhai", "replicator.sync()").unwrap_err();
    assert!(err.message.contains("reserved"), "{err}");
}

crate::tests![a_reserved_keyword_cannot_be_called];
