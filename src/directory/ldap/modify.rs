//! One entry's modify with its preconditions, and telling a conflict from a refusal.

use std::collections::HashSet;

use ldap3::Mod;

use super::LdapDirectory;
use super::errors::{describe_rc, server_error, transport_error};
use crate::directory::{AttrChange, DirError};

impl LdapDirectory {
    pub(super) async fn modify_entry(
        &self,
        dn: &str,
        changes: &[AttrChange],
    ) -> Result<(), DirError> {
        let mods: Vec<Mod<String>> = changes.iter().flat_map(precondition_mods).collect();
        if mods.is_empty() {
            return Ok(());
        }
        let (lane, mut ldap) = self.links.shared().await?;
        let res = match ldap
            .with_timeout(self.links.op_timeout)
            .modify(dn, mods)
            .await
        {
            Ok(res) => res,
            Err(e) => {
                self.links.drop_shared(lane);
                return Err(transport_error(&format!("modify {dn}"), &self.url(), e));
            }
        };
        match res.rc {
            0 => Ok(()),
            32 => Err(DirError::NoSuchObject(dn.to_string())),
            // A failed precondition, or a value the server refuses: look at the values to
            // tell which, so that a conflict is never reported as a bad value or back.
            16 | 19 | 20 | 21 => {
                for c in changes {
                    let found = self.current_values(dn, &c.attr).await?;
                    if !crate::directory::filter::same_values(&c.attr, &found, &c.before) {
                        return Err(DirError::Conflict {
                            dn: dn.to_string(),
                            attr: c.attr.clone(),
                            expected: render(&c.before),
                            found: render(&found),
                        });
                    }
                }
                Err(DirError::Constraint {
                    dn: dn.to_string(),
                    message: format!(
                        "{} (LDAP result code {}): {}",
                        describe_rc(res.rc),
                        res.rc,
                        res.text.trim()
                    ),
                })
            }
            rc => Err(server_error(&format!("modify {dn}"), rc, &res.text)),
        }
    }
}

fn render(values: &[String]) -> String {
    if values.is_empty() {
        "(absent)".into()
    } else {
        format!("{values:?}")
    }
}

/// The modification of one attribute that carries its precondition: the values that go
/// are deleted by value (the server refuses when one is no longer there) and the new ones
/// added (refused when a single-valued attribute has gained a value meanwhile).
fn precondition_mods(c: &AttrChange) -> Vec<Mod<String>> {
    let set =
        |values: Vec<&str>| -> HashSet<String> { values.into_iter().map(String::from).collect() };
    let (gone, new) = (set(c.removed()), set(c.added()));
    let mut mods = Vec::new();
    if !gone.is_empty() {
        mods.push(Mod::Delete(c.attr.clone(), gone));
    }
    if !new.is_empty() {
        mods.push(Mod::Add(c.attr.clone(), new));
    }
    mods
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions_delete_old_and_add_new_values() {
        let c = AttrChange {
            attr: "msRTCSIP-OptionFlags".into(),
            before: vec!["256".into()],
            after: vec!["257".into()],
        };
        let mods = precondition_mods(&c);
        assert_eq!(mods.len(), 2);
        assert!(
            matches!(&mods[0], Mod::Delete(a, v) if a == "msRTCSIP-OptionFlags" && v.contains("256"))
        );
        assert!(matches!(&mods[1], Mod::Add(_, v) if v.contains("257")));
        let add = AttrChange {
            attr: "msRTCSIP-Line".into(),
            before: vec![],
            after: vec!["tel:+1".into()],
        };
        assert!(matches!(precondition_mods(&add).as_slice(), [Mod::Add(..)]));
        let proxy = AttrChange {
            attr: "proxyAddresses".into(),
            before: vec!["SMTP:a".into()],
            after: vec!["SMTP:a".into(), "sip:a".into()],
        };
        assert!(matches!(precondition_mods(&proxy).as_slice(), [Mod::Add(_, v)] if v.len() == 1));
    }
}
