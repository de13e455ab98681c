//! The script API against the demo forest, through the library: what scripts see and stage.

use std::sync::Arc;
use std::time::Duration;

use ocsh::directory::demo::demo_directory;
use ocsh::plan::Workspace;
use ocsh::script::{Sandbox, ScriptErrorKind, Session};

fn session() -> Session {
    let ws = Workspace::open(Arc::new(demo_directory().unwrap()), Duration::from_secs(5)).unwrap();
    Session::new(
        ws,
        rhai::Map::new(),
        &Sandbox::default(),
        Box::new(std::io::sink()),
    )
}

fn eval(s: &mut Session, code: &str) -> String {
    match s.run("<test>", code) {
        Ok(v) => ocsh::script::values::to_text(&v),
        Err(e) => panic!("{code}: {e}"),
    }
}

fn lookups_by_every_id_form() {
    let mut s = session();
    let dn = eval(&mut s, r#"user("alex.kim").dn"#);
    for id in [
        "alex.kim",
        "alex.kim@example.com",
        "sip:alex.kim@example.com",
        &dn.to_lowercase(),
    ] {
        let code = format!("user({id:?}).dn");
        if id.starts_with("sip:") {
            // two users hold that address in the demo: ambiguity is an error, not a guess
            let err = s.run("<t>", &code).unwrap_err();
            assert!(err.message.contains("ambiguous"), "{err}");
        } else {
            assert_eq!(eval(&mut s, &code), dn, "{id}");
        }
    }
    let err = s.run("<t>", "user(\"*\")").unwrap_err();
    assert!(err.message.contains("no user \"*\""), "{err}");
}

fn flags_properties_write_back_through_the_user() {
    let mut s = session();
    let text = eval(&mut s, r#"let u = user("alex.kim"); u.flags.to_string()"#);
    assert_eq!(text, "256 (enhanced_presence)");
    eval(&mut s, r#"u.flags.enterprise_voice = true;"#);
    assert_eq!(eval(&mut s, "u.flags.value"), "384");
    // a fresh lookup of the same user reads the staged value
    assert_eq!(eval(&mut s, r#"user("alex.kim").flags.value"#), "384");
    assert_eq!(eval(&mut s, "plan().len()"), "1");
    let change = eval(&mut s, r#"plan()[0].before + " -> " + plan()[0].after"#);
    assert_eq!(change, "256 -> 384");
    // clearing a bit by name is allowed; undoing the change empties the plan
    eval(&mut s, r#"u.flags.enterprise_voice = false;"#);
    assert_eq!(eval(&mut s, "plan().len()"), "0");
}

fn copies_in_loops_and_arrays_share_the_plan() {
    let mut s = session();
    eval(
        &mut s,
        r#"let all = users_in("OU=Migrated,DC=example,DC=com", "(msRTCSIP-UserEnabled=TRUE)").to_array();"#,
    );
    eval(&mut s, r#"for u in all { u.federation = true; }"#);
    let n: usize = eval(&mut s, "all.len()").parse().unwrap();
    assert_eq!(
        eval(
            &mut s,
            "let c = 0; for u in all { if u.federation { c += 1 } } c"
        ),
        n.to_string()
    );
    eval(&mut s, "discard();");
    assert_eq!(eval(&mut s, "plan().len()"), "0");
    assert_eq!(eval(&mut s, "all[0].federation"), "false");
}

fn flags_values() {
    let mut s = session();
    assert_eq!(
        eval(&mut s, "flags(385).to_string()"),
        "385 (public_im, enterprise_voice, enhanced_presence)"
    );
    assert_eq!(
        eval(&mut s, r#"flags(["enhanced_presence", "public_im"]).value"#),
        "257"
    );
    assert_eq!(
        eval(&mut s, r#"(flags(256) | flags(1)).names()"#),
        "public_im, enhanced_presence"
    );
    assert_eq!(
        eval(&mut s, r#"flags(384).has("enterprise_voice")"#),
        "true"
    );
    let err = s.run("<t>", "flags(2)").unwrap_err();
    assert_eq!(err.kind, ScriptErrorKind::Refused);
    assert_eq!((err.line, err.column), (Some(1), Some(1)));
}

fn pools_and_their_users() {
    let mut s = session();
    assert_eq!(
        eval(&mut s, "pools().map(|p| p.name)"),
        "pool01, pool02, pool03"
    );
    assert_eq!(
        eval(&mut s, r#"pool("pool03.fabrikam.com").name"#),
        "pool03"
    );
    assert!(
        eval(&mut s, r#"pool("pool01").dn"#).starts_with("CN=LC Services,CN=Microsoft,CN=pool01,")
    );
    let n: i64 = eval(&mut s, r#"pool("pool03").users().count()"#)
        .parse()
        .unwrap();
    assert!(n > 0);
}

fn refusals_can_be_caught() {
    let mut s = session();
    let msg = eval(
        &mut s,
        r#"let m = ""; try { user("jdoe").enable("sip:jane doe@example.com", pool("pool01")) } catch (e) { m = `${e}` } m"#,
    );
    assert!(msg.contains("contains a space"), "{msg}");
    assert_eq!(eval(&mut s, "plan().len()"), "0");
}

fn enable_and_derive() {
    let mut s = session();
    eval(&mut s, r#"let u = user("jdoe"); u.enable(pool("pool02"));"#);
    assert_eq!(eval(&mut s, "u.sip"), "sip:jane.doe@example.com");
    assert_eq!(eval(&mut s, "u.enabled"), "true");
    assert_eq!(eval(&mut s, "u.pool.name"), "pool02");
    assert_eq!(eval(&mut s, "u.flags.value"), "256");
    assert_eq!(
        eval(&mut s, r#"u.derive_sip("sam", "fabrikam.com")"#),
        "sip:jdoe@fabrikam.com"
    );
    // the same address for someone else is now taken by the plan
    let err = s
        .run(
            "<t>",
            r#"let a = user("alex.kim"); a.sip = "sip:jane.doe@example.com""#,
        )
        .unwrap_err();
    assert!(err.message.contains("already held by"), "{err}");
}

crate::tests![
    lookups_by_every_id_form,
    flags_properties_write_back_through_the_user,
    copies_in_loops_and_arrays_share_the_plan,
    flags_values,
    pools_and_their_users,
    refusals_can_be_caught,
    enable_and_derive,
];
