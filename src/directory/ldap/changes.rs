//! Where the server's change sequence stands, for the replicator's incremental reads.

use super::LdapDirectory;
use crate::directory::{ChangeState, ChangeTracking, DirError, Entry};

impl LdapDirectory {
    /// Active Directory (and Samba): `uSNChanged` against the rootDSE's
    /// `highestCommittedUSN`, in the sequence of the DC named by `dsServiceName` (and its
    /// `invocationId`, which a restore changes). Other servers: `entryCSN` when the base
    /// entry has one (OpenLDAP), with the base's `contextCSN` as high-water mark when
    /// syncprov keeps one.
    pub(super) async fn tracking_state(&self) -> Result<Option<ChangeState>, DirError> {
        if self.root.active_directory {
            let dse = self
                .search_raw(
                    "",
                    ldap3::Scope::Base,
                    "(objectClass=*)",
                    &["highestCommittedUSN", "dsServiceName"],
                )
                .await?;
            let dse = dse.into_iter().next().unwrap_or_else(|| Entry::new(""));
            let Some(usn) = dse.first("highestCommittedUSN").map(str::to_string) else {
                return Ok(None);
            };
            let service = dse.first("dsServiceName").unwrap_or_default().to_string();
            let mut source = format!("ad:{}:{service}", self.url());
            if !service.is_empty() {
                let found = self
                    .search_raw(
                        &service,
                        ldap3::Scope::Base,
                        "(objectClass=*)",
                        &["invocationId"],
                    )
                    .await
                    .unwrap_or_default();
                if let Some(e) = found.first() {
                    let id = match (e.get_binary("invocationId"), e.first("invocationId")) {
                        ([bytes, ..], _) => Some(crate::directory::changes::guid_text(bytes)),
                        ([], Some(text)) => {
                            Some(crate::directory::changes::guid_text(text.as_bytes()))
                        }
                        ([], None) => None,
                    };
                    if let Some(id) = id {
                        source = format!("{source}:{id}");
                    }
                }
            }
            return Ok(Some(ChangeState {
                tracking: ChangeTracking::Usn,
                high_water: Some(usn),
                source,
            }));
        }
        let base = self
            .search_raw(
                &self.root.default_nc,
                ldap3::Scope::Base,
                "(objectClass=*)",
                &["entryCSN", "contextCSN", "entryUUID"],
            )
            .await?;
        let Some(base) = base.first() else {
            return Ok(None);
        };
        if base.first("entryCSN").is_none() {
            return Ok(None);
        }
        let high_water = base
            .get("contextCSN")
            .iter()
            .max_by(|a, b| ChangeTracking::EntryCsn.compare(a, b))
            .cloned();
        Ok(Some(ChangeState {
            tracking: ChangeTracking::EntryCsn,
            high_water,
            source: format!(
                "ldap:{}:{}",
                self.url(),
                base.first("entryUUID").unwrap_or(&self.root.default_nc)
            ),
        }))
    }
}
