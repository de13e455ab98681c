//! A plan as an RFC 2849 change file, for `ldapmodify -f` or `ldifde -i`.
//!
//! Each entry becomes one `changetype: modify` record holding exactly the operations the
//! LDAP backend sends for it ([`AttrChange::removed`] and [`AttrChange::added`]): a
//! `delete` of the planned-against values that go and an `add` of the new ones. A delete
//! by value is refused when that value is no longer there, and an add to a single-valued
//! attribute when it has gained one, so a file applied after an outside write fails on
//! that entry as ocsh's own apply would, and the entry is left as it was (a modify is
//! atomic).
//!
//! Lines are not folded, so that a reviewer can read and grep a DN whole; RFC 2849 does
//! not require folding, and `ldapmodify` and `ldifde` read long lines.

use crate::directory::AttrChange;
use crate::directory::ldif::value_line;

use super::{Plan, StagedEntry};

/// The plan as LDIF change records, with comment lines saying where it was planned. The
/// replicator's settings live in the replica, not in the directory, so a settings change
/// is named in a comment and is not part of the file.
pub fn plan_ldif(plan: &Plan, directory: &str) -> String {
    let mut out = String::from("version: 1\n");
    let entries = plan.entry_count();
    out.push_str(&comment(&format!(
        "ocsh plan against {directory}: {} change(s) to {entries} entr{}",
        plan.entries().map(|e| e.changes.len()).sum::<usize>(),
        if entries == 1 { "y" } else { "ies" }
    )));
    out.push_str(
        "# Each record deletes the values the change was planned against and adds the new\n\
         # ones: an entry changed since then is refused, as ocsh's own --apply would refuse it.\n",
    );
    for r in plan.reaches() {
        out.push_str(&comment(&format!("Declared reach: {}", r.describe())));
    }
    if plan.settings_change().is_some() {
        out.push_str(
            "# Not included: the replicator settings change (it is written to the replica\n\
             # file, not to the directory); apply it with ocsh run --apply.\n",
        );
    }
    for entry in plan.entries() {
        push_record(&mut out, entry);
    }
    out
}

fn push_text(out: &mut String, name: &str, value: &str) {
    out.push_str(&value_line(name, value));
    out.push('\n');
}

/// One modify record; nothing for an entry whose changes send no operation (the backend
/// sends nothing for it either).
fn push_record(out: &mut String, entry: &StagedEntry) {
    let ops: Vec<(&str, &AttrChange, Vec<&str>)> = entry
        .changes
        .iter()
        .flat_map(|c| [("delete", c, c.removed()), ("add", c, c.added())])
        .filter(|(_, _, values)| !values.is_empty())
        .collect();
    if ops.is_empty() {
        return;
    }
    out.push('\n');
    out.push_str(&comment(&entry.label));
    push_text(out, "dn", &entry.dn);
    out.push_str("changetype: modify\n");
    for (op, change, values) in ops {
        push_text(out, op, &change.attr);
        for v in values {
            push_text(out, &change.attr, v);
        }
        out.push_str("-\n");
    }
}

/// A comment line; control characters (which would end it early) are shown as `?`.
fn comment(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    format!("# {clean}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocs::{OcsUser, UserChange};

    fn change(attr: &str, after: &[&str]) -> UserChange {
        UserChange {
            attr: attr.into(),
            after: after.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn user(dn: &str, pairs: &[(&str, &[&str])]) -> OcsUser {
        let owned: Vec<(String, Vec<String>)> = pairs
            .iter()
            .map(|(a, v)| (a.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        OcsUser::from_pairs(dn, owned.iter().map(|(a, v)| (a.as_str(), v.as_slice())))
    }

    #[test]
    fn deletes_the_planned_against_values_and_adds_the_new_ones() {
        let mut plan = Plan::default();
        let u = user(
            "CN=Jane Doe,OU=Sales,DC=example,DC=com",
            &[
                ("sAMAccountName", &["jdoe"]),
                ("msRTCSIP-OptionFlags", &["256"]),
                ("proxyAddresses", &["SMTP:jane@example.com"]),
            ],
        );
        plan.stage(
            &u,
            &[
                change("msRTCSIP-UserEnabled", &["TRUE"]),
                change("msRTCSIP-OptionFlags", &["257"]),
                change(
                    "proxyAddresses",
                    &["SMTP:jane@example.com", "sip:jane@example.com"],
                ),
            ],
            vec![],
        );
        let text = plan_ldif(&plan, "demo forest");
        assert_eq!(
            text,
            "version: 1
# ocsh plan against demo forest: 3 change(s) to 1 entry
# Each record deletes the values the change was planned against and adds the new
# ones: an entry changed since then is refused, as ocsh's own --apply would refuse it.

# jdoe
dn: CN=Jane Doe,OU=Sales,DC=example,DC=com
changetype: modify
add: msRTCSIP-UserEnabled
msRTCSIP-UserEnabled: TRUE
-
delete: msRTCSIP-OptionFlags
msRTCSIP-OptionFlags: 256
-
add: msRTCSIP-OptionFlags
msRTCSIP-OptionFlags: 257
-
add: proxyAddresses
proxyAddresses: sip:jane@example.com
-
"
        );
    }

    #[test]
    fn non_ascii_and_leading_space_values_are_base64_and_removal_is_a_delete() {
        let mut plan = Plan::default();
        let u = user(
            "CN=J\u{e9}r\u{f4}me,DC=example,DC=com",
            &[("sAMAccountName", &["jerome\nx"]), ("description", &[" x"])],
        );
        plan.stage(&u, &[change("description", &[])], vec![]);
        let text = plan_ldif(&plan, "f.ldif");
        assert!(text.contains("# jerome?x\n"), "{text}");
        assert!(
            text.contains("dn:: Q049SsOpcsO0bWUsREM9ZXhhbXBsZSxEQz1jb20=\n"),
            "{text}"
        );
        assert!(
            text.contains("delete: description\ndescription:: IHg=\n-\n"),
            "{text}"
        );
        assert!(!text.contains("add:"), "{text}");
        let parsed = crate::directory::ldif::decode_bytes(text.as_bytes(), "t");
        assert!(parsed.is_ok());
    }

    #[test]
    fn an_empty_plan_is_a_file_with_no_records() {
        let text = plan_ldif(&Plan::default(), "demo forest");
        assert!(text.starts_with(
            "version: 1\n# ocsh plan against demo forest: 0 change(s) to 0 entries\n"
        ));
        assert!(!text.contains("dn:"));
    }
}
