//! The connections to one server, and which operation may use which.
//!
//! A server keeps the state of a paged search per connection (AD: MaxResultSetSize per
//! connection; OpenLDAP: one paged search per connection; Samba: dsdb_paged_results), and
//! drops it when another search runs on that connection between two pages. So a paged
//! search (every `search_page` from its first page to its last) has a connection to
//! itself, an *exclusive* link; everything else (modifies, reading back one entry, the
//! rootDSE) shares a few multiplexed *lanes* that never carry a paged search. Exclusive
//! links go back to a small idle list after their last page, so a lookup inside a loop
//! reuses one instead of connecting each time; a search given up before its last page
//! ([`Links::release`]) closes its link, since the server may still hold its state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ldap3::Ldap;

use super::connect::Connector;
use super::retry::Fault;
use crate::directory::{DirError, PageCursor};

/// Paged searches open at once (nested loops, a lookup inside them); opening one more
/// closes the least recently used, whose next page then fails with a clear message.
pub(crate) const MAX_OPEN_CURSORS: usize = 8;

/// Exclusive links kept for reuse after their search ended.
const MAX_IDLE: usize = 4;

/// A connection unused this long is replaced before its next use rather than trusted: AD
/// drops idle connections after MaxConnIdleTime (900 s), firewalls often sooner, and a
/// REPL session or a long script must not fail on the first operation after a pause.
const IDLE_LIMIT: Duration = Duration::from_secs(300);

/// One paged search between two pages: its connection and the server's cookie.
pub(crate) struct OpenCursor {
    pub ldap: Ldap,
    pub cookie: Vec<u8>,
    /// The page size it was started with (a server may refuse a change between pages).
    pub page_size: i32,
    id: u64,
    seq: u64,
    used: Instant,
}

#[derive(Default)]
struct Cursors {
    open: HashMap<u64, OpenCursor>,
    next_id: u64,
}

/// Every connection of one `LdapDirectory`.
pub(crate) struct Links {
    pub connector: Connector,
    pub op_timeout: Duration,
    lanes: Mutex<Vec<Option<(Ldap, Instant)>>>,
    next_lane: AtomicUsize,
    idle: Mutex<Vec<(Ldap, Instant)>>,
    /// Attempts retried after a fault (for the summary and the fault tests).
    pub retries: AtomicUsize,
    cursors: Mutex<Cursors>,
}

fn poisoned() -> DirError {
    DirError::Server("internal error: a connection table lock was poisoned".into())
}

fn is_open(ldap: &Ldap) -> bool {
    !ldap.clone().is_closed()
}

/// Open, and not idle so long that the server may have dropped it silently.
fn usable(ldap: &Ldap, used: Instant) -> bool {
    used.elapsed() < IDLE_LIMIT && is_open(ldap)
}

impl Links {
    /// A set with `lanes` shared connections; `first` (the one the rootDSE was read on)
    /// becomes the first lane.
    pub fn new(connector: Connector, op_timeout: Duration, lanes: usize, first: Ldap) -> Links {
        let mut all = vec![None; lanes.max(1)];
        all[0] = Some((first, Instant::now()));
        Links {
            connector,
            op_timeout,
            lanes: Mutex::new(all),
            next_lane: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
            retries: AtomicUsize::new(0),
            cursors: Mutex::new(Cursors::default()),
        }
    }

    /// A shared connection for an operation that is not a paged search; the lanes are
    /// taken in turn, and one that has closed is replaced.
    /// The lane's number comes with it, for [`Links::drop_shared`].
    pub async fn shared(&self) -> Result<(usize, Ldap), Fault> {
        let lane = {
            let mut lanes = self.lanes.lock().map_err(|_| Fault::Final(poisoned()))?;
            let i = self.next_lane.fetch_add(1, Ordering::Relaxed) % lanes.len();
            match &mut lanes[i] {
                Some((l, used)) if usable(l, *used) => {
                    *used = Instant::now();
                    return Ok((i, l.clone()));
                }
                _ => i,
            }
        };
        let fresh = self.connector.open().await?;
        let mut lanes = self.lanes.lock().map_err(|_| Fault::Final(poisoned()))?;
        match &lanes[lane] {
            // Another task replaced it meanwhile: use that one, drop ours.
            Some((l, used)) if usable(l, *used) => Ok((lane, l.clone())),
            _ => {
                lanes[lane] = Some((fresh.clone(), Instant::now()));
                Ok((lane, fresh))
            }
        }
    }

    /// Forgets a shared connection that failed, so that the next use connects afresh.
    pub fn drop_shared(&self, lane: usize) {
        if let Ok(mut lanes) = self.lanes.lock() {
            if let Some(l) = lanes.get_mut(lane) {
                *l = None;
            }
        }
    }

    /// A connection for a new paged search, to itself: an idle one, or a new one.
    pub async fn exclusive(&self) -> Result<Ldap, Fault> {
        loop {
            let found = self
                .idle
                .lock()
                .map_err(|_| Fault::Final(poisoned()))?
                .pop();
            match found {
                Some((l, used)) if usable(&l, used) => return Ok(l),
                Some(_) => continue,
                None => return self.connector.open().await,
            }
        }
    }

    /// An exclusive connection whose search ended at its last page, for reuse.
    pub fn idle_again(&self, ldap: Ldap) {
        if !is_open(&ldap) {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push((ldap, Instant::now()));
            }
        }
    }

    /// The time one operation may take with its retries: a little less than the
    /// operation timeout, which the layer above enforces too.
    pub fn budget(&self) -> Duration {
        self.op_timeout.mul_f64(0.9)
    }

    /// Counts one retried attempt.
    pub fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps a paged search open between two pages; the cursor names it.
    pub fn park(
        &self,
        ldap: Ldap,
        cookie: Vec<u8>,
        page_size: i32,
        previous: Option<(u64, u64)>,
    ) -> Result<PageCursor, DirError> {
        let mut c = self.cursors.lock().map_err(|_| poisoned())?;
        let (id, seq) = match previous {
            Some((id, seq)) => (id, seq + 1),
            None => {
                c.next_id += 1;
                (c.next_id, 1)
            }
        };
        while c.open.len() >= MAX_OPEN_CURSORS {
            let oldest = c.open.values().min_by_key(|o| o.used).map(|o| o.id);
            match oldest {
                // Dropping the handle closes that connection, and with it the server's state.
                Some(old) => drop(c.open.remove(&old)),
                None => break,
            }
        }
        c.open.insert(
            id,
            OpenCursor {
                ldap,
                cookie,
                page_size,
                id,
                seq,
                used: Instant::now(),
            },
        );
        Ok(encode(id, seq))
    }

    /// Takes out the paged search a cursor names, to ask for its next page.
    pub fn unpark(&self, cursor: &PageCursor) -> Result<(OpenCursor, (u64, u64)), DirError> {
        let (id, seq) = decode(cursor)?;
        let mut c = self.cursors.lock().map_err(|_| poisoned())?;
        match c.open.remove(&id) {
            Some(open) if open.seq == seq => Ok((open, (id, seq))),
            Some(open) => {
                c.open.insert(id, open);
                Err(DirError::Server(
                    "this page of the search was read already; start the search again".into(),
                ))
            }
            None => Err(DirError::Server(format!(
                "the paged search was closed before its next page (a failure on its connection, or more than {MAX_OPEN_CURSORS} searches open at once); start it again"
            ))),
        }
    }

    /// Gives up a paged search before its last page: its connection is closed.
    pub fn release(&self, cursor: &PageCursor) {
        if let (Ok((id, _)), Ok(mut c)) = (decode(cursor), self.cursors.lock()) {
            c.open.remove(&id);
        }
    }

    /// Paged searches open now (for tests and diagnostics).
    pub fn open_cursors(&self) -> usize {
        self.cursors.lock().map(|c| c.open.len()).unwrap_or(0)
    }
}

fn encode(id: u64, seq: u64) -> PageCursor {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&seq.to_be_bytes());
    PageCursor(bytes)
}

fn decode(cursor: &PageCursor) -> Result<(u64, u64), DirError> {
    let bad = || DirError::Server("not a page cursor of this LDAP connection".into());
    let (id, seq) = cursor.0.split_at_checked(8).ok_or_else(bad)?;
    let id = u64::from_be_bytes(id.try_into().map_err(|_| bad())?);
    let seq = u64::from_be_bytes(seq.try_into().map_err(|_| bad())?);
    Ok((id, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode(&encode(7, 3)).ok(), Some((7, 3)));
        assert!(decode(&PageCursor(vec![1, 2, 3])).is_err());
        assert!(decode(&PageCursor(vec![0; 17])).is_err());
    }
}
