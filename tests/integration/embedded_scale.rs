//! The embedded directory at the sizes users run, through the real binary: a bulk
//! enable of 2,750 users out of 5,000, crossing page boundaries (pages of 500), with a
//! lookup and a staged change inside the loop, applied to the LDIF file.

use std::collections::HashSet;

use crate::support::{self, Test, fixtures};
use ocsh::directory::EmbeddedDirectory;

const OU: &str = "OU=Scale,DC=example,DC=com";
const USERS: usize = 5_000;

/// The demo forest plus `USERS` users in OU=Scale; 11 of every 20 never enabled.
fn forest() -> String {
    let pool = fixtures::r2_home("pool02");
    let mut out = fixtures::DEMO.trim_end().to_string();
    out.push_str(&format!(
        "\n\ndn: {OU}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Scale\n\n"
    ));
    for i in 0..USERS {
        let sam = format!("scale{i:05}");
        out.push_str(&format!(
            "dn: CN=Scale User {i:05},{OU}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: user\ncn: Scale User {i:05}\n\
             sAMAccountName: {sam}\nuserPrincipalName: {sam}@example.com\n\
             mail: {sam}@example.com\n"
        ));
        if i % 20 >= 11 {
            out.push_str(&format!(
                "msRTCSIP-UserEnabled: TRUE\nmsRTCSIP-PrimaryUserAddress: sip:{sam}@example.com\n\
                 msRTCSIP-PrimaryHomeServer: {pool}\nmsRTCSIP-OptionFlags: 256\n"
            ));
        }
        out.push('\n');
    }
    out
}

/// For each never-enabled user: look the user up again by UPN (an indexed lookup that
/// must find the same entry), then enable it on pool01.
const SCRIPT: &str = r#"//! Bulk enable with a lookup in the loop.
let home = pool("pool01");
let n = 0;
for u in users_in("OU=Scale,DC=example,DC=com", "(!(msRTCSIP-UserEnabled=*))") {
    let again = user(`${u.sam}@example.com`);
    if again.dn != u.dn { throw `lookup of ${u.sam} found ${again.dn}`; }
    u.enable(home);
    n += 1;
}
print(`${n} enabled`);
"#;

fn bulk_enable_of_2750_in_5000_users_with_a_lookup_in_the_loop() {
    let never = USERS / 20 * 11;
    let started = std::time::Instant::now();
    let t = Test::new()
        .file("scale.ldif", forest())
        .file("bulk.rhai", SCRIPT);
    let (ldif, script) = (t.path("scale.ldif"), t.path("bulk.rhai"));
    let out = t
        .args(["run", &script, "--directory", &ldif, "--apply", "--yes"])
        .stdout_has(format!("{never} enabled"))
        .stdout_has(format!(
            "Applied {never} of {never} entries: 0 conflicted, 0 failed."
        ))
        .run();
    support::say(&format!(
        "embedded bulk enable: {never} of {USERS} users with a lookup each, {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    let after = EmbeddedDirectory::open(&out.path("scale.ldif"))
        .unwrap()
        .entries();
    let users: Vec<_> = after
        .iter()
        .filter(|e| {
            e.first("sAMAccountName")
                .is_some_and(|s| s.starts_with("scale"))
        })
        .collect();
    assert_eq!(users.len(), USERS);
    let mut sips = HashSet::new();
    let pool01 = fixtures::r2_home("pool01");
    let pool02 = fixtures::r2_home("pool02");
    for (i, u) in users.iter().enumerate() {
        let sam = format!("scale{i:05}");
        assert_eq!(u.first("sAMAccountName"), Some(sam.as_str()));
        assert_eq!(u.first("msRTCSIP-UserEnabled"), Some("TRUE"), "{sam}");
        let sip = format!("sip:{sam}@example.com");
        assert_eq!(u.first("msRTCSIP-PrimaryUserAddress"), Some(sip.as_str()));
        assert!(sips.insert(sip), "{sam}: a SIP address twice");
        let home = if i % 20 >= 11 { &pool02 } else { &pool01 };
        assert!(
            ocsh::ocs::dn::same_dn(u.first("msRTCSIP-PrimaryHomeServer").unwrap(), home),
            "{sam}"
        );
    }
    // Running it again finds nobody left to enable.
    let ldif = out.path("scale.ldif").display().to_string();
    let script = out.path("bulk.rhai").display().to_string();
    out.then()
        .args(["run", &script, "--directory", &ldif])
        .stdout_has("0 enabled")
        .run();
}

crate::tests![bulk_enable_of_2750_in_5000_users_with_a_lookup_in_the_loop];
