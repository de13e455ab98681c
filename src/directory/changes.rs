//! Change tracking: how a backend marks changed entries, so that a reader (the
//! replicator) can ask for "what changed since my cookie" instead of reading everything.
//!
//! | backend | marker on each entry | high-water mark | identity that survives a rename |
//! |---|---|---|---|
//! | Active Directory, Samba AD | `uSNChanged` | rootDSE `highestCommittedUSN` | `objectGUID` |
//! | OpenLDAP | `entryCSN` | the suffix's `contextCSN` when syncprov keeps one, else the highest `entryCSN` seen | `entryUUID` |
//! | embedded (LDIF) | `uSNChanged`, written by every modify | the change counter | `objectGUID` when the file has one |
//!
//! Markers of one kind are totally ordered (`compare`), so "changed since" is the filter
//! `(marker>=mark)`: entries changed exactly at the mark come back again, and a reader
//! drops them by comparing each entry's marker with the one it stored.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// What a backend's change markers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeTracking {
    /// Active Directory and Samba: the update sequence number `uSNChanged`, one sequence
    /// per domain controller (its `invocationId`).
    Usn,
    /// OpenLDAP: the change sequence number `entryCSN`
    /// (`YYYYmmddHHMMSS.uuuuuuZ#count#sid#mod`), ordered by time, then count.
    EntryCsn,
    /// The embedded directory: its change counter, kept in each modified entry's
    /// `uSNChanged` so that it survives the file being written and read again.
    Counter,
}

impl ChangeTracking {
    /// The name stored in cookies and shown in status.
    pub fn name(self) -> &'static str {
        match self {
            ChangeTracking::Usn => "usn",
            ChangeTracking::EntryCsn => "entry_csn",
            ChangeTracking::Counter => "counter",
        }
    }

    /// The inverse of [`ChangeTracking::name`].
    pub fn from_name(name: &str) -> Option<ChangeTracking> {
        [
            ChangeTracking::Usn,
            ChangeTracking::EntryCsn,
            ChangeTracking::Counter,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }

    /// The attribute that holds each entry's marker (operational on OpenLDAP: it must be
    /// asked for by name).
    pub fn marker_attr(self) -> &'static str {
        match self {
            ChangeTracking::Usn | ChangeTracking::Counter => "uSNChanged",
            ChangeTracking::EntryCsn => "entryCSN",
        }
    }

    /// The attribute that identifies an entry across renames, if the backend has one.
    pub fn identity_attr(self) -> &'static str {
        match self {
            ChangeTracking::Usn | ChangeTracking::Counter => "objectGUID",
            ChangeTracking::EntryCsn => "entryUUID",
        }
    }

    /// Orders two markers (numbers for USNs and the counter, CSN text otherwise). A
    /// marker that does not parse sorts first.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            ChangeTracking::Usn | ChangeTracking::Counter => {
                let n = |s: &str| s.trim().parse::<u64>().ok();
                n(a).cmp(&n(b))
            }
            ChangeTracking::EntryCsn => a.trim().cmp(b.trim()),
        }
    }

    /// The filter clause for "changed at or after `mark`".
    pub fn since_filter(self, mark: &str) -> String {
        format!(
            "({}>={})",
            self.marker_attr(),
            super::filter::escape_value(mark.trim())
        )
    }

    /// A mark `seconds` earlier than `mark`: for CSNs, whose timestamp part can be moved
    /// back; USNs and counters have no time in them and are returned unchanged.
    pub fn rewind(self, mark: &str, seconds: u64) -> String {
        match self {
            ChangeTracking::EntryCsn if seconds > 0 => {
                rewind_csn(mark, seconds).unwrap_or_else(|| mark.into())
            }
            _ => mark.to_string(),
        }
    }
}

/// Where a backend's change sequence stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeState {
    /// What the markers are.
    pub tracking: ChangeTracking,
    /// The highest marker the directory has committed, read before any search that
    /// uses it; `None` when the backend cannot say (OpenLDAP without syncprov's
    /// `contextCSN`): then the highest marker seen is the reader's best mark.
    pub high_water: Option<String>,
    /// Whose sequence the markers belong to: a DC's `dsServiceName` and
    /// `invocationId`, a server URL with its database's `entryUUID`, a file. Markers of
    /// different sources cannot be compared.
    pub source: String,
}

/// What a reader asks [`super::Directory::change_feed`]: the entries below `base` that
/// changed, moved or were deleted since `mark` (a mark of [`ChangeState::high_water`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedQuery {
    /// The base of the reader's user search (the feed looks at its whole naming context,
    /// so that an entry moved out of the base is seen too).
    pub base: String,
    /// The markers the mark is made of.
    pub tracking: ChangeTracking,
    /// The high-water mark of the reader's last cycle.
    pub mark: String,
}

/// What changed since a mark besides the entries a marker search (`(uSNChanged>=N)`)
/// returns: deletions, and entries that left the reader's search. Identities are the
/// reader's ([`guid_text`] of objectGUID, entryUUID in lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeFeed {
    /// Every entry of the naming context changed, moved or deleted since the mark: a row
    /// whose identity is here and that the marker search did not return is gone from the
    /// reader's scope.
    Since {
        /// How the server told (shown in `ocsh replicator status`).
        method: String,
        /// The identities.
        identities: HashSet<String>,
        /// Messages the server sent for it (entries and intermediate responses).
        entries: usize,
    },
    /// The server could not say what was deleted and sent the identity of every entry
    /// present instead (an RFC 4533 present phase): a row whose identity is not here and
    /// that the marker search did not return is gone.
    Present {
        /// How the server told.
        method: String,
        /// The identities of every entry present.
        identities: HashSet<String>,
        /// Messages the server sent for it.
        entries: usize,
    },
    /// The backend cannot tell deletions from the mark; why (the reader lists every entry
    /// instead, and says so).
    Unavailable(String),
}

/// `20261121202640.502660Z#000000#000#000000` moved back `seconds`, as the lowest CSN of
/// that second.
fn rewind_csn(csn: &str, seconds: u64) -> Option<String> {
    let stamp = csn.trim().get(..14)?;
    if !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[8..10],
        &stamp[10..12],
        &stamp[12..14]
    );
    let t: SystemTime = humantime::parse_rfc3339(&rfc3339).ok()?;
    let earlier = t.checked_sub(Duration::from_secs(seconds))?;
    let text = humantime::format_rfc3339_seconds(earlier).to_string();
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    Some(format!("{}.000000Z#000000#000#000000", digits.get(..14)?))
}

/// The text form of an `objectGUID` as AD shows it (`{XXXXXXXX-XXXX-...}`, the first
/// three groups little-endian), or of any other 16 bytes; other lengths in hex.
pub fn guid_text(bytes: &[u8]) -> String {
    let Ok(b): Result<[u8; 16], _> = bytes.try_into() else {
        return bytes.iter().map(|b| format!("{b:02x}")).collect();
    };
    let hex = |s: &[u8]| s.iter().map(|b| format!("{b:02X}")).collect::<String>();
    format!(
        "{{{}-{}-{}-{}-{}}}",
        hex(&[b[3], b[2], b[1], b[0]]),
        hex(&[b[5], b[4]]),
        hex(&[b[7], b[6]]),
        hex(&b[8..10]),
        hex(&b[10..])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_order_and_filters() {
        assert_eq!(ChangeTracking::Usn.compare("9", "10"), Ordering::Less);
        assert_eq!(
            ChangeTracking::EntryCsn.compare(
                "20261121202640.502660Z#000000#000#000000",
                "20261121202640.502660Z#000001#000#000000"
            ),
            Ordering::Less
        );
        assert_eq!(
            ChangeTracking::Counter.since_filter("12"),
            "(uSNChanged>=12)"
        );
        assert_eq!(
            ChangeTracking::EntryCsn.since_filter("20261121202640.502660Z#000000#000#000000"),
            "(entryCSN>=20261121202640.502660Z#000000#000#000000)"
        );
        for t in [
            ChangeTracking::Usn,
            ChangeTracking::EntryCsn,
            ChangeTracking::Counter,
        ] {
            assert_eq!(ChangeTracking::from_name(t.name()), Some(t));
        }
    }

    #[test]
    fn csn_rewinds_across_midnight() {
        assert_eq!(
            ChangeTracking::EntryCsn.rewind("20260101000010.123456Z#000003#000#000000", 70),
            "20251231235900.000000Z#000000#000#000000"
        );
        assert_eq!(ChangeTracking::Usn.rewind("77", 70), "77");
        let csn = "20260101000010.123456Z#000003#000#000000";
        assert_eq!(ChangeTracking::EntryCsn.rewind(csn, 0), csn);
        assert_eq!(ChangeTracking::EntryCsn.rewind("garbage", 5), "garbage");
    }

    #[test]
    fn guids_as_ad_writes_them() {
        let bytes: Vec<u8> = (0u8..16).collect();
        assert_eq!(guid_text(&bytes), "{03020100-0504-0706-0809-0A0B0C0D0E0F}");
        assert_eq!(guid_text(&[1, 2]), "0102");
    }
}
