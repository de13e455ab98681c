//! Change feeds over LDAP: what was deleted or left a search since a mark, without
//! listing every entry ([`super::Directory::change_feed`] of the LDAP backend).
//!
//! - **Active Directory, Samba AD: tombstones.** A deleted object becomes a tombstone
//!   (`isDeleted: TRUE`, moved under `CN=Deleted Objects`, objectGUID and uSNChanged kept,
//!   objectCategory stripped) that only the Show Deleted control
//!   (1.2.840.113556.1.4.417) shows. One paged search of the naming context with it,
//!   `(&(objectClass=user)(uSNChanged>=N))` for objectGUID only, names every user changed,
//!   moved or deleted since N. Reading tombstones needs the right to list
//!   `CN=Deleted Objects` (administrators have it); the container is probed first, and
//!   without it the feed is unavailable. (The DirSync control needs the
//!   DS-Replication-Get-Changes right, which ocsh does not ask for.)
//! - **OpenLDAP: an RFC 4533 refreshOnly content sync** (1.3.6.1.4.1.4203.1.9.1.1) from
//!   the cookie `rid=000,csn=<mark>`, where the mark is the `contextCSN` read before the
//!   last cycle. syncprov answers with the entries changed since (a Sync State control on
//!   each, carrying its entryUUID) and, from its sessionlog, the entryUUIDs of the
//!   deleted ones (a syncIdSet with refreshDeletes); asking for no attributes (`1.1`)
//!   keeps it to DNs and UUIDs. When the sessionlog does not reach back to the cookie,
//!   the server sends a present phase instead (the UUID of every entry), which the
//!   reader uses as a listing. Without syncprov the control is refused and the feed is
//!   unavailable.
//!
//! ldap3 has parsers for the sync controls, but they panic on a value they do not
//! expect; a server's bytes must never panic ocsh, so the values are decoded here, with
//! ldap3's own BER reader, into errors instead.

use std::collections::HashSet;
use std::time::Duration;

use ldap3::asn1::{PL, StructureTag, TagClass, Types, parse_tag};
use ldap3::controls::{PagedResults, RawControl, SyncRequest};
use ldap3::{Ldap, LdapError, ResultEntry, Scope, SearchEntry};

use super::changes::{ChangeFeed, ChangeTracking, FeedQuery, guid_text};
use super::error::DirError;

/// LDAP_SERVER_SHOW_DELETED_OID.
const SHOW_DELETED: &str = "1.2.840.113556.1.4.417";
const SYNC_STATE: &str = "1.3.6.1.4.1.4203.1.9.1.2";
const SYNC_DONE: &str = "1.3.6.1.4.1.4203.1.9.1.3";
const SYNC_INFO: &str = "1.3.6.1.4.1.4203.1.9.1.4";
const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";

/// Entries per page of the tombstone search.
const PAGE: i32 = 1000;

/// One LDAP connection as the feed uses it.
pub(crate) struct Conn<'a> {
    /// The connection (cloned for each operation).
    pub ldap: &'a Ldap,
    /// The server, for messages.
    pub url: &'a str,
    /// Each operation's time limit.
    pub timeout: Duration,
    /// Active Directory semantics (tombstones), else OpenLDAP's content sync.
    pub active_directory: bool,
}

fn failed(what: &str, url: &str, e: LdapError) -> DirError {
    match e {
        LdapError::LdapResult { result } => DirError::Server(format!(
            "{what}: {} (LDAP result code {}) from {url}",
            result.text.trim().trim_end_matches('\0'),
            result.rc
        )),
        other => DirError::Server(format!("{what} on {url}: {other}")),
    }
}

/// The change feed of `query` (see the module documentation).
pub(crate) async fn feed(conn: &Conn<'_>, query: &FeedQuery) -> Result<ChangeFeed, DirError> {
    let Some(nc) = naming_context(conn, &query.base).await? else {
        return Ok(ChangeFeed::Unavailable(format!(
            "{} is in no naming context the rootDSE names",
            query.base
        )));
    };
    match (conn.active_directory, query.tracking) {
        (true, ChangeTracking::Usn) => tombstones(conn, &nc, &query.mark).await,
        (false, ChangeTracking::EntryCsn) => content_sync(conn, &nc, &query.mark).await,
        _ => Ok(ChangeFeed::Unavailable(format!(
            "no change feed for {} markers on this server",
            query.tracking.name()
        ))),
    }
}

/// The naming context `base` is in: the longest of the rootDSE's `namingContexts` (and
/// `defaultNamingContext`) that `base` is at or below.
async fn naming_context(conn: &Conn<'_>, base: &str) -> Result<Option<String>, DirError> {
    let mut ldap = conn.ldap.clone();
    let (entries, _) = ldap
        .with_timeout(conn.timeout)
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec!["namingContexts", "defaultNamingContext"],
        )
        .await
        .and_then(|r| r.success())
        .map_err(|e| failed("read the rootDSE", conn.url, e))?;
    let Some(dse) = entries
        .into_iter()
        .find(|e| !e.is_ref() && !e.is_intermediate())
    else {
        return Ok(None);
    };
    let dse = SearchEntry::construct(dse);
    let key = |dn: &str| crate::ocs::dn::normalize(dn).unwrap_or_else(|_| dn.to_lowercase());
    let base_key = key(base);
    Ok(dse
        .attrs
        .iter()
        .filter(|(name, _)| {
            name.eq_ignore_ascii_case("namingContexts")
                || name.eq_ignore_ascii_case("defaultNamingContext")
        })
        .flat_map(|(_, values)| values.iter())
        .filter(|nc| {
            let k = key(nc);
            !k.is_empty() && (base_key == k || base_key.ends_with(&format!(",{k}")))
        })
        .max_by_key(|nc| nc.len())
        .cloned())
}

fn show_deleted() -> RawControl {
    RawControl {
        ctype: SHOW_DELETED.into(),
        crit: true,
        val: None,
    }
}

/// AD and Samba: every user changed or deleted since `mark`, tombstones included.
async fn tombstones(conn: &Conn<'_>, nc: &str, mark: &str) -> Result<ChangeFeed, DirError> {
    let deleted_objects = format!("CN=Deleted Objects,{nc}");
    let mut ldap = conn.ldap.clone();
    let probe = ldap
        .with_controls(vec![show_deleted()])
        .with_timeout(conn.timeout)
        .search(
            &deleted_objects,
            Scope::Base,
            "(objectClass=*)",
            vec!["1.1"],
        )
        .await
        .map_err(|e| failed("probe CN=Deleted Objects", conn.url, e))?;
    let visible = probe.1.rc == 0 && probe.0.iter().any(|e| !e.is_ref() && !e.is_intermediate());
    if !visible {
        return Ok(ChangeFeed::Unavailable(format!(
            "the account cannot see {deleted_objects} with the Show Deleted control (LDAP result code {}): it needs the right to list deleted objects",
            probe.1.rc
        )));
    }
    let filter = format!(
        "(&(objectClass=user){})",
        ChangeTracking::Usn.since_filter(mark)
    );
    let mut identities = HashSet::new();
    let mut entries = 1;
    let mut cookie = Vec::new();
    loop {
        let mut ldap = conn.ldap.clone();
        let paged: RawControl = PagedResults {
            size: PAGE,
            cookie: std::mem::take(&mut cookie),
        }
        .into();
        let result = ldap
            .with_controls(vec![paged, show_deleted()])
            .with_timeout(conn.timeout)
            .search(nc, Scope::Subtree, &filter, vec!["objectGUID"])
            .await
            .map_err(|e| failed("search tombstones", conn.url, e))?;
        let (found, res) = result
            .success()
            .map_err(|e| failed(&format!("search {nc} for {filter}"), conn.url, e))?;
        for e in found {
            if e.is_ref() || e.is_intermediate() {
                continue;
            }
            entries += 1;
            let e = SearchEntry::construct(e);
            let binary = e
                .bin_attrs
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("objectGUID"))
                .and_then(|(_, v)| v.first().map(|b| guid_text(b)));
            // A GUID whose 16 bytes happen to be UTF-8 arrives as text.
            let guid = binary.or_else(|| {
                e.attrs
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("objectGUID"))
                    .and_then(|(_, v)| v.first().map(|t| guid_text(t.as_bytes())))
            });
            if let Some(g) = guid {
                identities.insert(g);
            }
        }
        let next = res.ctrls.iter().find_map(|c| {
            (c.1.ctype == PAGED_RESULTS)
                .then(|| c.1.val.as_deref().and_then(paged_cookie))
                .flatten()
        });
        match next {
            Some(c) if !c.is_empty() => cookie = c,
            _ => break,
        }
    }
    Ok(ChangeFeed::Since {
        method: format!("tombstones (Show Deleted control) in {nc}"),
        identities,
        entries,
    })
}

/// The cookie of a paged-results response value, `SEQUENCE { size INTEGER, cookie OCTET
/// STRING }`.
fn paged_cookie(val: &[u8]) -> Option<Vec<u8>> {
    let seq = constructed(parse(val)?)?;
    seq.into_iter().nth(1).and_then(primitive)
}

/// OpenLDAP: an RFC 4533 refreshOnly sync from the cookie of `mark`.
async fn content_sync(conn: &Conn<'_>, nc: &str, mark: &str) -> Result<ChangeFeed, DirError> {
    let request: RawControl = SyncRequest {
        cookie: Some(format!("rid=000,csn={}", mark.trim()).into_bytes()),
        ..SyncRequest::default()
    }
    .into();
    let request = RawControl {
        crit: true,
        ..request
    };
    let mut ldap = conn.ldap.clone();
    let mut stream = ldap
        .with_controls(vec![request])
        .with_timeout(conn.timeout)
        .streaming_search_with(vec![], nc, Scope::Subtree, "(objectClass=*)", vec!["1.1"])
        .await
        .map_err(|e| failed("RFC 4533 refresh", conn.url, e))?;
    let mut sync = SyncTally::default();
    loop {
        match stream.next().await {
            Ok(Some(item)) => sync.take(&item)?,
            Ok(None) => break,
            Err(e) => {
                let _ = stream.finish().await;
                return Err(failed("RFC 4533 refresh", conn.url, e));
            }
        }
    }
    let res = stream.finish().await;
    match res.rc {
        0 => {}
        // No syncprov: the critical control is not known.
        12 => {
            return Ok(ChangeFeed::Unavailable(
                "the server does not offer RFC 4533 content sync (no syncprov overlay)".into(),
            ));
        }
        3 | 4 | 11 => {
            return Ok(ChangeFeed::Unavailable(format!(
                "the RFC 4533 refresh hit a server limit (LDAP result code {}): more changed entries than it returns at once",
                res.rc
            )));
        }
        rc => {
            return Err(DirError::Server(format!(
                "RFC 4533 refresh of {nc} on {}: {} (LDAP result code {rc})",
                conn.url,
                res.text.trim()
            )));
        }
    }
    for c in &res.ctrls {
        if c.1.ctype == SYNC_DONE {
            sync.refresh_deletes |= sync_done_deletes(c.1.val.as_deref().unwrap_or_default())?;
        }
    }
    Ok(sync.into_feed(nc))
}

/// What an RFC 4533 refresh said, as it arrives.
#[derive(Default)]
struct SyncTally {
    /// Entries sent as added or modified.
    changed: HashSet<String>,
    /// Identities named as deleted (a Sync State delete, a syncIdSet with refreshDeletes).
    deleted: HashSet<String>,
    /// Identities named as present (a Sync State present, a syncIdSet without).
    present: HashSet<String>,
    /// A present phase was sent (then what is not named is gone).
    present_phase: bool,
    /// The refresh ended in a delete phase (the Sync Done control, or a refreshDelete
    /// message).
    refresh_deletes: bool,
    messages: usize,
}

impl SyncTally {
    fn take(&mut self, item: &ResultEntry) -> Result<(), DirError> {
        self.messages += 1;
        if item.is_ref() {
            return Ok(());
        }
        if item.is_intermediate() {
            return self.intermediate(&item.0);
        }
        let Some(state) = item.1.iter().find(|c| c.1.ctype == SYNC_STATE) else {
            return Ok(());
        };
        let (state, uuid) = sync_state(state.1.val.as_deref().unwrap_or_default())?;
        match state {
            0 => {
                self.present_phase = true;
                self.present.insert(uuid);
            }
            3 => {
                self.deleted.insert(uuid);
            }
            _ => {
                self.changed.insert(uuid);
            }
        }
        Ok(())
    }

    fn intermediate(&mut self, tag: &StructureTag) -> Result<(), DirError> {
        let bad = || DirError::Server("RFC 4533 refresh: a malformed intermediate message".into());
        let parts = constructed(tag.clone()).ok_or_else(bad)?;
        let mut oid = None;
        let mut value = None;
        for p in parts {
            match p.id {
                0 => oid = primitive(p),
                1 => value = primitive(p),
                _ => {}
            }
        }
        if oid.as_deref() != Some(SYNC_INFO.as_bytes()) {
            return Ok(());
        }
        let info = parse(&value.ok_or_else(bad)?).ok_or_else(bad)?;
        if info.class != TagClass::Context {
            return Err(bad());
        }
        match info.id {
            // newcookie
            0 => {}
            // refreshDelete / refreshPresent: the end of a phase.
            1 => self.refresh_deletes = true,
            2 => self.present_phase = true,
            // syncIdSet { cookie?, refreshDeletes BOOLEAN DEFAULT FALSE, syncUUIDs SET }
            3 => {
                let mut deletes = false;
                let mut uuids = Vec::new();
                for part in constructed(info).ok_or_else(bad)? {
                    if part.class != TagClass::Universal {
                        continue;
                    }
                    if part.id == Types::Boolean as u64 {
                        deletes =
                            primitive(part).is_some_and(|b| b.first().is_some_and(|v| *v != 0));
                    } else if part.id == Types::Set as u64 {
                        for u in constructed(part).ok_or_else(bad)? {
                            uuids.push(uuid_text(&primitive(u).ok_or_else(bad)?));
                        }
                    }
                }
                if deletes {
                    self.deleted.extend(uuids);
                } else {
                    self.present_phase = true;
                    self.present.extend(uuids);
                }
            }
            _ => return Err(bad()),
        }
        Ok(())
    }

    fn into_feed(self, nc: &str) -> ChangeFeed {
        if self.present_phase || !self.refresh_deletes {
            let mut identities = self.present;
            identities.extend(self.changed);
            if identities.is_empty() {
                // "Everything was deleted" is what an empty present phase means; from a
                // server that is more likely a refresh it could not do. The listing
                // tells for sure.
                return ChangeFeed::Unavailable(
                    "the RFC 4533 refresh named no entry present".into(),
                );
            }
            return ChangeFeed::Present {
                method: format!(
                    "RFC 4533 refresh of {nc}: present phase (the sessionlog does not reach back to the cookie)"
                ),
                identities,
                entries: self.messages,
            };
        }
        let mut identities = self.deleted;
        identities.extend(self.changed);
        ChangeFeed::Since {
            method: format!("RFC 4533 refresh of {nc} (syncprov sessionlog)"),
            identities,
            entries: self.messages,
        }
    }
}

fn parse(bytes: &[u8]) -> Option<StructureTag> {
    parse_tag(bytes).ok().map(|(_, t)| t)
}

fn constructed(t: StructureTag) -> Option<Vec<StructureTag>> {
    match t.payload {
        PL::C(v) => Some(v),
        PL::P(_) => None,
    }
}

fn primitive(t: StructureTag) -> Option<Vec<u8>> {
    match t.payload {
        PL::P(v) => Some(v),
        PL::C(_) => None,
    }
}

/// An entryUUID as OpenLDAP writes it: 16 bytes in lower-case hex, 8-4-4-4-12.
fn uuid_text(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if hex.len() != 32 {
        return hex;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `syncStateValue ::= SEQUENCE { state ENUMERATED, entryUUID OCTET STRING, cookie
/// OCTET STRING OPTIONAL }`: the state (0 present, 1 add, 2 modify, 3 delete) and the UUID.
fn sync_state(val: &[u8]) -> Result<(u64, String), DirError> {
    let bad = || DirError::Server("RFC 4533 refresh: a malformed Sync State control".into());
    let mut parts = constructed(parse(val).ok_or_else(bad)?)
        .ok_or_else(bad)?
        .into_iter();
    let state = parts.next().and_then(primitive).ok_or_else(bad)?;
    let state = state
        .iter()
        .fold(0u64, |n, b| n.wrapping_shl(8) | u64::from(*b));
    let uuid = parts.next().and_then(primitive).ok_or_else(bad)?;
    if state > 3 || uuid.len() != 16 {
        return Err(bad());
    }
    Ok((state, uuid_text(&uuid)))
}

/// `syncDoneValue ::= SEQUENCE { cookie OCTET STRING OPTIONAL, refreshDeletes BOOLEAN
/// DEFAULT FALSE }`: refreshDeletes.
fn sync_done_deletes(val: &[u8]) -> Result<bool, DirError> {
    let bad = || DirError::Server("RFC 4533 refresh: a malformed Sync Done control".into());
    let parts = constructed(parse(val).ok_or_else(bad)?).ok_or_else(bad)?;
    Ok(parts
        .into_iter()
        .find(|p| p.class == TagClass::Universal && p.id == Types::Boolean as u64)
        .and_then(primitive)
        .is_some_and(|b| b.first().is_some_and(|v| *v != 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    /// Values captured from slapd 2.5 (`ldapsearch -E '!sync=ro/...'`).
    #[test]
    fn sync_controls_as_slapd_sends_them() {
        assert_eq!(
            sync_state(&b64("MBUKAQEEENEFU96COBBBgYYPx3ffqHI=")).unwrap(),
            (1, "d10553de-8238-1041-8186-0fc777dfa872".to_string())
        );
        assert!(sync_done_deletes(&b64("MAMBAf8=")).unwrap());
        assert!(
            sync_done_deletes(&b64(
                "MDkENHJpZD0wMDAsY3NuPTIwMjYxMjAyMDEwOTUwLjAzNTQ2MVojMDAwMDAwIzAwMCMwMDAwMDABAf8="
            ))
            .unwrap()
        );
        // No refreshDeletes: a present phase.
        assert!(!sync_done_deletes(&[0x30, 0x00]).unwrap());
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x04, 0x01, 0x00],
            &[0x30, 0x03, 0x0a, 0x01, 0x07],
        ] {
            assert!(sync_state(bad).is_err(), "{bad:?}");
        }
        assert!(sync_done_deletes(&[0xff, 0xff]).is_err());
        assert_eq!(
            paged_cookie(&[0x30, 0x05, 0x02, 0x01, 0x00, 0x04, 0x00]),
            Some(vec![])
        );
        assert_eq!(paged_cookie(&[0x01]), None);
    }

    #[test]
    fn an_empty_present_phase_is_not_taken_for_everything_deleted() {
        let t = SyncTally::default();
        assert!(matches!(t.into_feed("dc=x"), ChangeFeed::Unavailable(_)));
        let t = SyncTally {
            refresh_deletes: true,
            deleted: HashSet::from(["a".to_string()]),
            ..SyncTally::default()
        };
        assert!(
            matches!(t.into_feed("dc=x"), ChangeFeed::Since { identities, .. } if identities.contains("a"))
        );
    }
}
