//! One entry's modify with its preconditions, and telling a conflict from a refusal.

use std::collections::HashSet;

use ldap3::Mod;

use super::LdapDirectory;
use super::errors::{describe_rc, server_error};
use super::retry::{Backoff, Fault, transient_rc};
use crate::directory::filter::same_values;
use crate::directory::{AttrChange, DirError};

/// What a read-back says about a modify whose answer was lost.
enum Landed {
    /// Every attribute has its planned after-values: the modify went through.
    Yes,
    /// Every attribute still has its before-values: nothing was written.
    No,
    /// Someone else changed it meanwhile.
    Neither(DirError),
}

impl LdapDirectory {
    /// One entry's modify. A fault (busy, unavailable, timeout, dropped connection) is
    /// retried on a fresh connection with backoff; after a fault whose answer was lost the
    /// entry is read back first: if it already has the planned after-values the modify
    /// landed and is reported applied (never written twice, never a conflict).
    pub(super) async fn modify_entry(
        &self,
        dn: &str,
        changes: &[AttrChange],
    ) -> Result<(), DirError> {
        let mods: Vec<Mod<String>> = changes.iter().flat_map(precondition_mods).collect();
        if mods.is_empty() {
            return Ok(());
        }
        let mut backoff = Backoff::new(self.links.budget());
        // True once an attempt may have landed without us hearing of it.
        let mut in_doubt = false;
        loop {
            let fault = if in_doubt {
                match self.landed(dn, changes).await {
                    Ok(Landed::Yes) => return Ok(()),
                    Ok(Landed::Neither(conflict)) => return Err(conflict),
                    Ok(Landed::No) => self.modify_once(dn, changes, &mods, &backoff).await,
                    Err(f) => Err(f),
                }
            } else {
                self.modify_once(dn, changes, &mods, &backoff).await
            };
            let fault = match fault {
                Ok(()) => return Ok(()),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Lost(e)) => {
                    in_doubt = true;
                    e
                }
                Err(Attempt::Refused(e)) => e,
            };
            if !backoff.wait().await {
                let tries = backoff.failures;
                return Err(if in_doubt {
                    DirError::Server(format!(
                        "{fault}; gave up after {tries} attempts, and whether the last one landed is not known (a new run reads the entry again and plans only what is missing)"
                    ))
                } else {
                    DirError::Server(format!("{fault}; gave up after {tries} attempts"))
                });
            }
            self.links.count_retry();
        }
    }

    async fn modify_once(
        &self,
        dn: &str,
        changes: &[AttrChange],
        mods: &[Mod<String>],
        backoff: &Backoff,
    ) -> Result<(), Attempt> {
        let what = format!("modify {dn}");
        let (lane, mut ldap) = self.links.shared().await.map_err(|f| match f {
            // Not connected: nothing was sent.
            Fault::Transient(e) => Attempt::Refused(e),
            Fault::Final(e) => Attempt::Final(e),
        })?;
        let res = match ldap
            .with_timeout(backoff.remaining())
            .modify(dn, mods.to_vec())
            .await
        {
            Ok(res) => res,
            Err(e) => {
                self.links.drop_shared(lane);
                return Err(match Fault::from_ldap(&what, &self.url(), e) {
                    Fault::Transient(e) => Attempt::Lost(e),
                    Fault::Final(e) => Attempt::Final(e),
                });
            }
        };
        match res.rc {
            0 => Ok(()),
            32 => Err(Attempt::Final(DirError::NoSuchObject(dn.to_string()))),
            rc if transient_rc(rc) => Err(Attempt::Refused(server_error(&what, rc, &res.text))),
            // A failed precondition, or a value the server refuses: look at the values to
            // tell which, so that a conflict is never reported as a bad value or back.
            16 | 19 | 20 | 21 => {
                for c in changes {
                    let found = self
                        .current_values(dn, &c.attr)
                        .await
                        .map_err(Attempt::Final)?;
                    if !same_values(&c.attr, &found, &c.before) {
                        return Err(Attempt::Final(conflict(dn, c, &found)));
                    }
                }
                Err(Attempt::Final(DirError::Constraint {
                    dn: dn.to_string(),
                    message: format!(
                        "{} (LDAP result code {}): {}",
                        describe_rc(res.rc),
                        res.rc,
                        res.text.trim()
                    ),
                }))
            }
            rc => Err(Attempt::Final(server_error(&what, rc, &res.text))),
        }
    }

    /// Reads the changed attributes of `dn` back and compares them with the plan.
    async fn landed(&self, dn: &str, changes: &[AttrChange]) -> Result<Landed, Attempt> {
        let attrs: Vec<&str> = changes.iter().map(|c| c.attr.as_str()).collect();
        let found = self
            .search_raw_once(
                dn,
                ldap3::Scope::Base,
                "(objectClass=*)",
                &attrs,
                self.links.budget(),
            )
            .await
            .map_err(|f| match f {
                Fault::Transient(e) => Attempt::Refused(e),
                Fault::Final(e) => Attempt::Final(e),
            })?;
        let entry = found.first();
        let now = |attr: &str| entry.map(|e| e.get(attr).to_vec()).unwrap_or_default();
        let mut after = 0;
        let mut before = 0;
        for c in changes {
            let values = now(&c.attr);
            if same_values(&c.attr, &values, &c.after) {
                after += 1;
            } else if same_values(&c.attr, &values, &c.before) {
                before += 1;
            } else {
                return Ok(Landed::Neither(conflict(dn, c, &values)));
            }
        }
        Ok(match (after, before) {
            (_, 0) => Landed::Yes,
            (0, _) => Landed::No,
            // A modify is atomic: part of it there means another writer.
            _ => {
                let c = changes
                    .iter()
                    .find(|c| same_values(&c.attr, &now(&c.attr), &c.after))
                    .unwrap_or(&changes[0]);
                Landed::Neither(conflict(dn, c, &now(&c.attr)))
            }
        })
    }
}

/// How one attempt failed.
enum Attempt {
    /// Sent, and the answer lost (timeout, dropped connection): it may have landed.
    Lost(DirError),
    /// Not done, and worth another try (not connected, busy, unavailable).
    Refused(DirError),
    /// Final: a conflict, a refused value, no such entry.
    Final(DirError),
}

fn conflict(dn: &str, c: &AttrChange, found: &[String]) -> DirError {
    DirError::Conflict {
        dn: dn.to_string(),
        attr: c.attr.clone(),
        expected: render(&c.before),
        found: render(found),
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
