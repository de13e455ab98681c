//! The embedded backend: a directory held in memory, loaded from LDIF and written back
//! atomically on commit.
//!
//! It stands in for a domain controller (the demo forest, tests, dry runs against an
//! export), so it refuses what AD refuses: stale preconditions, several values in a
//! single-valued OCS attribute, a home server that names no object. A plan that passes
//! here fails for the same reasons against AD, not for new ones.
//!
//! Writers of one file never lose each other's updates: the first modify takes the
//! file's write lock ([`file::lock`]) and re-reads the file if its content changed since
//! it was loaded, so that every precondition is checked against what is on disk; the
//! commit re-reads it once more under the same lock (a tool that takes no lock may have
//! written meanwhile), replays this directory's modifies on the fresh content, checking
//! each precondition again, and renames the result into place before the lock goes.

mod file;
mod index;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::filter::{Filter, same_values};
use super::{
    AttrChange, ChangeState, ChangeTracking, DirError, Directory, Entry, Page, PageCursor,
    RootInfo, Scope, SearchRequest, ldif,
};
use crate::ocs::OcsError;
use crate::ocs::dn::{Dn, Rdn};

/// AD's default MaxPageSize; larger requests are served in pages of this size, as AD does.
const MAX_PAGE_SIZE: usize = 1000;

/// The `msRTCSIP-*` attributes that AD's schema declares multi-valued; every other one is
/// single-valued.
const MULTI_VALUED_OCS: &[&str] = &["msRTCSIP-UserExtension", "msRTCSIP-UserPolicy"];

/// Attributes whose values must name an existing object (AD checks DN-syntax values).
const HOME_SERVER_ATTRIBUTES: &[&str] =
    &["msRTCSIP-PrimaryHomeServer", "msRTCSIP-TargetHomeServer"];

/// The attribute in which a modify records the change counter, as AD does with its
/// update sequence number (see [`EmbeddedDirectory::change_counter`]).
pub const CHANGE_MARKER: &str = "uSNChanged";

/// How long a writer waits for another one's write lock by default: a commit of a
/// 100,000-user file takes well under this.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// A directory held in memory: entries in file order, looked up by normalized DN.
#[derive(Debug)]
pub struct EmbeddedDirectory {
    /// What [`Directory::describe`] says: the path, or a name such as `demo forest`.
    source: String,
    /// The file [`Directory::commit`] writes; `None` for an in-memory directory.
    path: Option<PathBuf>,
    /// How long to wait for another writer's lock.
    lock_wait: Duration,
    state: RwLock<State>,
    /// The file's write lock while this directory holds it, and serialises commits.
    writer: Mutex<Writer>,
}

#[derive(Debug, Default)]
struct Writer {
    /// Held from the re-read before the first modify to the end of the commit.
    lock: Option<file::WriteLock>,
    /// Set when the lock could not be taken: the modifies that follow fail at once
    /// instead of each waiting again. The next commit clears it.
    refused: Option<DirError>,
}

#[derive(Debug)]
struct State {
    entries: Vec<Stored>,
    /// Normalized DN → position in `entries`.
    by_dn: HashMap<String, usize>,
    /// Parent position → the positions of its children, ascending.
    children: HashMap<u32, Vec<u32>>,
    /// Equality and presence indexes of the lookup attributes.
    lookup: index::Index,
    /// The change counter: the highest `uSNChanged` in the file at load, bumped by every
    /// successful modify (which writes it into the entry, as AD does) and by a reload
    /// that found entries changed by another writer.
    counter: u64,
    /// The hash of the file's content as last read or written; `None` in memory.
    hash: Option<file::ContentHash>,
    /// A cheap hint that the file changed, for readers (see [`file::Stamp`]).
    stamp: Option<file::Stamp>,
    /// The modifies since the last commit, in order: what the commit replays when the
    /// file changed under it.
    pending: Vec<(String, Vec<AttrChange>)>,
}

#[derive(Debug)]
struct Stored {
    entry: Entry,
    /// The position of the parent entry, when the file holds it: scopes are tested by
    /// following these, without comparing DNs.
    parent: Option<u32>,
    /// The number of RDNs of the DN.
    depth: u32,
    /// The counter value of the entry's last modify (its `uSNChanged`); 0 when it has
    /// none.
    changed_at: u64,
}

impl EmbeddedDirectory {
    /// An in-memory directory from LDIF text; `source` names it in messages (the demo
    /// forest uses `demo forest`). Commits are no-ops.
    pub fn from_ldif(text: &str, source: &str) -> Result<EmbeddedDirectory, DirError> {
        let (entries, by_dn) = ldif::parse_indexed(text, source)?;
        Ok(EmbeddedDirectory::new(
            build(entries, by_dn),
            source.to_string(),
            None,
        ))
    }

    /// Loads an LDIF file (UTF-8, or UTF-16 as `ldifde -u` writes it); commits write it
    /// back, as UTF-8.
    pub fn open(path: &Path) -> Result<EmbeddedDirectory, DirError> {
        let name = path.display().to_string();
        let state = load(path, &name)?;
        Ok(EmbeddedDirectory::new(
            state,
            name,
            Some(path.to_path_buf()),
        ))
    }

    /// The same directory with another bound on the wait for a writer's lock.
    pub fn with_lock_wait(mut self, wait: Duration) -> EmbeddedDirectory {
        self.lock_wait = wait;
        self
    }

    fn new(state: State, source: String, path: Option<PathBuf>) -> EmbeddedDirectory {
        EmbeddedDirectory {
            source,
            path,
            lock_wait: DEFAULT_LOCK_WAIT,
            state: RwLock::new(state),
            writer: Mutex::new(Writer::default()),
        }
    }

    /// Re-reads the file when another writer changed it since it was read, so that
    /// searches see the current entries. Skipped while this directory holds
    /// modifications not yet committed: the commit merges then.
    fn refresh_if_changed(&self) -> Result<(), DirError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        {
            let state = self.read()?;
            if !state.pending.is_empty() || state.stamp == file::stamp_of(path) {
                return Ok(());
            }
        }
        self.sync_with_file(path, false)
    }

    /// Reads the file and, when its content is not what this directory last read or
    /// wrote, takes the fresh content with this directory's pending modifies replayed on
    /// it. A replay that meets a changed precondition is a conflict: then the pending
    /// modifies are dropped (none of them reached the file) and the fresh content is
    /// kept as it is. A file that vanished is left to the commit (which writes it again,
    /// or fails as I/O) when `missing_ok`.
    fn sync_with_file(&self, path: &Path, missing_ok: bool) -> Result<(), DirError> {
        let snapshot = match file::read(path) {
            Ok(s) => s,
            Err(DirError::Io { source, .. })
                if missing_ok && source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut state = self.write()?;
        if state.hash == Some(snapshot.hash) {
            state.stamp = snapshot.stamp;
            return Ok(());
        }
        let (text, hash, stamp) = decoded(snapshot, &self.source)?;
        let fresh = from_text(&text, &self.source, hash, stamp.clone())?;
        let fresh = marked_against(fresh, &state);
        match replayed(fresh, &state.pending) {
            Ok(merged) => {
                *state = merged;
                Ok(())
            }
            Err(conflict) => {
                let fresh = from_text(&text, &self.source, hash, stamp)?;
                *state = marked_against(fresh, &state);
                Err(conflict)
            }
        }
    }

    /// Before the first modify of a file: takes the write lock and re-reads the file
    /// under it, so preconditions are checked against what is on disk now.
    fn prepare_write(&self) -> Result<(), DirError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut writer = self.writer()?;
        if writer.lock.is_some() {
            return Ok(());
        }
        if let Some(refused) = &writer.refused {
            return Err(again(refused));
        }
        match file::lock(path, self.lock_wait) {
            Ok(lock) => writer.lock = Some(lock),
            Err(e @ DirError::Locked { .. }) => {
                writer.refused = Some(again(&e));
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        let synced = self.sync_with_file(path, true);
        if synced.is_err() {
            writer.lock = None;
        }
        synced
    }

    /// Writes the pending modifies under the write lock: re-reads the file, replays them
    /// on its content if another writer changed it, removes temporary files a killed
    /// writer left, and replaces the file.
    fn write_back(&self, path: &Path) -> Result<(), DirError> {
        self.sync_with_file(path, true)?;
        file::remove_leftover_temps(path);
        let text = {
            let state = self.read()?;
            ldif::write_all(state.entries.iter().map(|s| &s.entry))
        };
        let hash = file::write_atomically(path, &text)?;
        drop(text);
        let mut state = self.write()?;
        state.hash = Some(hash);
        state.stamp = file::stamp_of(path);
        state.pending.clear();
        Ok(())
    }

    /// A snapshot of every entry, in file order.
    pub fn entries(&self) -> Vec<Entry> {
        self.snapshot()
            .entries
            .iter()
            .map(|s| s.entry.clone())
            .collect()
    }

    /// The entries as LDIF, as [`Directory::commit`] would write them.
    pub fn to_ldif(&self) -> String {
        let state = self.snapshot();
        ldif::write_all(state.entries.iter().map(|s| &s.entry))
    }

    /// The change counter: the highest `uSNChanged` of the file when it was loaded (0
    /// for a file no modify has touched), plus one for every successful modify since.
    /// Each modify writes the new value into the entry's `uSNChanged`, so the count goes
    /// on where it stopped when the file is opened again (by this process or another).
    pub fn change_counter(&self) -> u64 {
        self.snapshot().counter
    }

    /// The entries modified after counter value `since` (their `uSNChanged` is above
    /// it), each with that value, in file order. `changed_since(0)` lists every entry
    /// that has been modified since the file was first written without change numbers.
    pub fn changed_since(&self, since: u64) -> Vec<(u64, Entry)> {
        self.snapshot()
            .entries
            .iter()
            .filter(|s| s.changed_at > since)
            .map(|s| (s.changed_at, s.entry.clone()))
            .collect()
    }

    /// For the infallible accessors: a poisoned lock means a thread panicked while
    /// holding it, and modify changes nothing until every check has passed, so the state
    /// is still worth showing.
    fn snapshot(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>, DirError> {
        self.state.read().map_err(|_| poisoned(&self.source))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>, DirError> {
        self.state.write().map_err(|_| poisoned(&self.source))
    }

    fn writer(&self) -> Result<MutexGuard<'_, Writer>, DirError> {
        self.writer.lock().map_err(|_| poisoned(&self.source))
    }
}

/// The same refusal once more (`DirError` holds an `io::Error` and is not `Clone`).
fn again(refused: &DirError) -> DirError {
    match refused {
        DirError::Locked { path, lock, waited } => DirError::Locked {
            path: path.clone(),
            lock: lock.clone(),
            waited: *waited,
        },
        other => DirError::Server(other.to_string()),
    }
}

/// Reads and parses the file.
fn load(path: &Path, name: &str) -> Result<State, DirError> {
    let (text, hash, stamp) = decoded(file::read(path)?, name)?;
    from_text(&text, name, hash, stamp)
}

/// The file's text (the bytes are decoded in place), hash and stamp.
fn decoded(
    snapshot: file::Snapshot,
    name: &str,
) -> Result<(String, file::ContentHash, Option<file::Stamp>), DirError> {
    let file::Snapshot { bytes, hash, stamp } = snapshot;
    Ok((ldif::decode_owned(bytes, name)?, hash, stamp))
}

fn from_text(
    text: &str,
    name: &str,
    hash: file::ContentHash,
    stamp: Option<file::Stamp>,
) -> Result<State, DirError> {
    let (entries, by_dn) = ldif::parse_indexed(text, name)?;
    let mut state = build(entries, by_dn);
    state.hash = Some(hash);
    state.stamp = stamp;
    Ok(state)
}

/// The store of `entries`, whose normalized DNs `by_dn` maps to their positions (as
/// [`ldif::parse_indexed`] gives them).
fn build(entries: Vec<Entry>, by_dn: HashMap<String, usize>) -> State {
    let mut counter = 0;
    let mut stored: Vec<Stored> = entries
        .into_iter()
        .map(|entry| {
            let changed_at = entry
                .first(CHANGE_MARKER)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            counter = counter.max(changed_at);
            Stored {
                entry,
                parent: None,
                depth: 0,
                changed_at,
            }
        })
        .collect();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (key, &pos) in &by_dn {
        let parent = parent_key(key)
            .and_then(|p| by_dn.get(p))
            .and_then(|&p| u32::try_from(p).ok());
        if let Some(s) = stored.get_mut(pos) {
            s.depth = key_depth(key);
            s.parent = parent;
        }
        if let (Some(parent), Ok(pos)) = (parent, u32::try_from(pos)) {
            children.entry(parent).or_default().push(pos);
        }
    }
    for list in children.values_mut() {
        list.sort_unstable();
    }
    let lookup = index::Index::build(stored.iter().map(|s| &s.entry));
    State {
        entries: stored,
        by_dn,
        children,
        lookup,
        counter,
        hash: None,
        stamp: None,
        pending: Vec::new(),
    }
}

/// The number of RDNs of a normalized DN: one more than its unescaped commas.
fn key_depth(normalized: &str) -> u32 {
    if normalized.is_empty() {
        return 0;
    }
    let mut depth = 1;
    let mut rest = normalized;
    while let Some(parent) = parent_key(rest) {
        depth += 1;
        rest = parent;
    }
    depth
}

/// The parent's part of a normalized DN: what follows its first unescaped comma.
fn parent_key(normalized: &str) -> Option<&str> {
    let bytes = normalized.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            // The escaped character is never a separator (and never one of a UTF-8
            // sequence's continuation bytes, which are all above 0x7f).
            b'\\' => i += 2,
            b',' => return normalized.get(i + 1..),
            _ => i += 1,
        }
    }
    None
}

/// Fresh content of the file, compared with what this directory held: entries another
/// ocsh wrote carry a newer uSNChanged already; an entry edited by hand (same or no
/// uSNChanged, other content) gets a new mark, so that an incremental replicator cycle
/// still sees it. The counter never goes back.
fn marked_against(mut fresh: State, old: &State) -> State {
    let mut counter = old.counter.max(fresh.counter);
    let bump = counter + 1;
    for (key, &pos) in &fresh.by_dn {
        let Some(e) = fresh.entries.get_mut(pos) else {
            continue;
        };
        let before = old.by_dn.get(key).and_then(|&i| old.entries.get(i));
        let edited_by_hand = match before {
            Some(o) => o.entry != e.entry && e.changed_at <= o.changed_at,
            None => e.changed_at == 0,
        };
        if edited_by_hand {
            e.changed_at = bump;
            counter = bump;
        }
    }
    fresh.counter = counter;
    fresh
}

/// `fresh` with `pending` modifies applied in order, each checked against it as a new
/// modify would be.
fn replayed(mut fresh: State, pending: &[(String, Vec<AttrChange>)]) -> Result<State, DirError> {
    for (dn, changes) in pending {
        apply_modify(&mut fresh, &parse_dn(dn)?, dn, changes)?;
    }
    fresh.pending = pending.to_vec();
    Ok(fresh)
}

/// One modify: every precondition and constraint checked first, then the changes and a
/// new change mark, or nothing.
fn apply_modify(
    state: &mut State,
    target: &Dn,
    dn: &str,
    changes: &[AttrChange],
) -> Result<(), DirError> {
    let Some(&index) = state.by_dn.get(&target.normalized()) else {
        return Err(DirError::NoSuchObject(dn.to_string()));
    };
    let Some(stored) = state.entries.get(index) else {
        return Err(DirError::NoSuchObject(dn.to_string()));
    };
    for change in changes {
        let current = stored.entry.get(&change.attr);
        let binary = stored.entry.get_binary(&change.attr);
        if !binary.is_empty() || !same_values(&change.attr, current, &change.before) {
            let found = if binary.is_empty() {
                render(current)
            } else {
                format!("{} binary value(s)", binary.len())
            };
            return Err(DirError::Conflict {
                dn: stored.entry.dn.clone(),
                attr: change.attr.clone(),
                expected: render(&change.before),
                found,
            });
        }
    }
    check_constraints(state, target, stored, changes)?;
    if changes.is_empty() {
        return Ok(());
    }
    let counter = state.counter + 1;
    let Some(stored) = state.entries.get_mut(index) else {
        return Err(DirError::NoSuchObject(dn.to_string()));
    };
    let pos = u32::try_from(index).unwrap_or(u32::MAX);
    for change in changes {
        state.lookup.update(
            pos,
            &change.attr,
            stored.entry.get(&change.attr),
            &change.after,
        );
        stored.entry.set(&change.attr, change.after.clone());
    }
    let marker = vec![counter.to_string()];
    state
        .lookup
        .update(pos, CHANGE_MARKER, stored.entry.get(CHANGE_MARKER), &marker);
    stored.entry.set(CHANGE_MARKER, marker);
    stored.changed_at = counter;
    state.counter = counter;
    Ok(())
}

fn poisoned(source: &str) -> DirError {
    DirError::Server(format!(
        "{source}: the embedded directory is unusable after an earlier failure \
         (a thread panicked while using it)"
    ))
}

fn parse_dn(text: &str) -> Result<Dn, DirError> {
    Dn::parse(text).map_err(|e| DirError::InvalidDn {
        dn: text.to_string(),
        message: match e {
            OcsError::InvalidDn { reason, .. } => reason,
            other => other.to_string(),
        },
    })
}

/// True when the entry at `pos` is the one at `base` or lies below it, by following
/// parents up to the base's depth; an entry whose parent the file lacks is compared by
/// DN.
fn within(state: &State, pos: u32, base: u32, base_depth: u32, base_dn: &Dn) -> bool {
    let mut at = pos;
    loop {
        if at == base {
            return true;
        }
        let Some(s) = state.entries.get(at as usize) else {
            return false;
        };
        if s.depth <= base_depth {
            return false;
        }
        match s.parent {
            Some(p) => at = p,
            None => return Dn::parse(&s.entry.dn).is_ok_and(|dn| dn.is_within(base_dn)),
        }
    }
}

/// The cursor is the position in the entry vector where the next page's scan starts.
fn encode_cursor(index: usize) -> PageCursor {
    let index = u64::try_from(index).unwrap_or(u64::MAX);
    PageCursor(index.to_be_bytes().to_vec())
}

fn decode_cursor(cursor: &PageCursor, len: usize) -> Result<usize, DirError> {
    let invalid = || {
        DirError::Server(format!(
            "unwillingToPerform: invalid paged-results cursor {:02x?} for the embedded \
             directory (it must come from the previous page of the same search)",
            cursor.0
        ))
    };
    let bytes: [u8; 8] = cursor.0.as_slice().try_into().map_err(|_| invalid())?;
    let index = usize::try_from(u64::from_be_bytes(bytes)).map_err(|_| invalid())?;
    if index > len {
        return Err(invalid());
    }
    Ok(index)
}

/// The entry with only the requested attributes (any case); no names or `*` mean all.
/// `1.1`, LDAP's "no attributes", naturally selects nothing.
fn project(entry: &Entry, attrs: &[String]) -> Entry {
    if attrs.is_empty() || attrs.iter().any(|a| a == "*") {
        return entry.clone();
    }
    let wanted = |name: &str| attrs.iter().any(|a| a.eq_ignore_ascii_case(name));
    let mut out = Entry::new(entry.dn.clone());
    for attr in entry.attributes().iter().filter(|a| wanted(&a.name)) {
        out.set(&attr.name, attr.values.clone());
    }
    for (name, values) in entry.binary_attributes() {
        if wanted(name) {
            for value in values {
                out.add_binary(name, value.clone());
            }
        }
    }
    out
}

fn render(values: &[String]) -> String {
    if values.is_empty() {
        "(absent)".to_string()
    } else {
        format!("{values:?}")
    }
}

/// Refuses, as AD would, what no precondition covers: schema and referential rules.
fn check_constraints(
    state: &State,
    dn: &Dn,
    stored: &Stored,
    changes: &[AttrChange],
) -> Result<(), DirError> {
    let refuse = |message: String| DirError::Constraint {
        dn: stored.entry.dn.clone(),
        message,
    };
    for (i, change) in changes.iter().enumerate() {
        let attr = change.attr.as_str();
        if attr.trim().is_empty() {
            return Err(refuse("an empty attribute name".into()));
        }
        if changes
            .iter()
            .skip(i + 1)
            .any(|c| c.attr.eq_ignore_ascii_case(attr))
        {
            return Err(refuse(format!("{attr} is changed twice in one modify")));
        }
        if attr.eq_ignore_ascii_case("distinguishedName") {
            return Err(refuse(
                "distinguishedName follows from the entry's place in the tree; \
                 it changes only with a rename"
                    .into(),
            ));
        }
        let renames = dn.rdn().is_some_and(|rdn| {
            rdn.attr.eq_ignore_ascii_case(attr)
                && !same_values(attr, &change.after, std::slice::from_ref(&rdn.value))
        });
        if renames {
            return Err(refuse(format!(
                "{attr} is the naming attribute of the entry and changes only with a rename"
            )));
        }
        let ocs_prefix = attr
            .get(..9)
            .is_some_and(|p| p.eq_ignore_ascii_case("msRTCSIP-"));
        let multi = MULTI_VALUED_OCS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(attr));
        if ocs_prefix && !multi && change.after.len() > 1 {
            return Err(refuse(format!(
                "{attr} is single-valued; AD refuses the {} values {}",
                change.after.len(),
                render(&change.after)
            )));
        }
        if HOME_SERVER_ATTRIBUTES
            .iter()
            .any(|h| h.eq_ignore_ascii_case(attr))
        {
            for value in &change.after {
                let exists = Dn::parse(value)
                    .ok()
                    .filter(|dn| dn.depth() > 0)
                    .is_some_and(|dn| state.by_dn.contains_key(&dn.normalized()));
                if !exists {
                    return Err(refuse(format!(
                        "{attr} value {value:?} names no object in the directory"
                    )));
                }
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Directory for EmbeddedDirectory {
    fn describe(&self) -> String {
        self.source.clone()
    }

    async fn root(&self) -> Result<RootInfo, DirError> {
        let state = self.read()?;
        let shallowest = |domain_only: bool| {
            state
                .entries
                .iter()
                .filter(|s| s.depth > 0)
                .filter(|s| !domain_only || s.entry.is_a("domain") || s.entry.is_a("domainDNS"))
                .min_by_key(|s| s.depth)
        };
        let Some(domain) = shallowest(true).or_else(|| shallowest(false)) else {
            return Err(DirError::NoSuchObject(format!(
                "a naming context: {} holds no entries",
                self.source
            )));
        };
        let mut config_rdns = vec![Rdn {
            attr: "CN".into(),
            value: "Configuration".into(),
        }];
        config_rdns.extend(parse_dn(&domain.entry.dn)?.rdns().iter().cloned());
        let config_nc = state
            .by_dn
            .get(&Dn::from_rdns(config_rdns).normalized())
            .and_then(|&i| state.entries.get(i))
            .map(|s| s.entry.dn.clone());
        Ok(RootInfo {
            default_nc: domain.entry.dn.clone(),
            config_nc,
            active_directory: true,
        })
    }

    async fn search_page(
        &self,
        request: &SearchRequest,
        cursor: Option<PageCursor>,
    ) -> Result<Page, DirError> {
        let filter = Filter::parse(&request.filter)?;
        let base = parse_dn(&request.base)?;
        self.refresh_if_changed()?;
        let state = self.read()?;
        let base_index = match state.by_dn.get(&base.normalized()) {
            Some(&i) => i,
            // The root DSE: there is nothing to return unless the file holds it.
            None if base.depth() == 0 && request.scope == Scope::Base => {
                return Ok(Page::default());
            }
            None => return Err(DirError::NoSuchObject(request.base.clone())),
        };
        let start = match &cursor {
            Some(c) => decode_cursor(c, state.entries.len())?,
            None => 0,
        };
        let base_pos = u32::try_from(base_index).unwrap_or(u32::MAX);
        // Where to look: the base alone, its children, or what the indexes narrow the
        // filter to (every entry when they cannot), from the cursor on.
        let listed: Option<Cow<'_, [u32]>> = match request.scope {
            Scope::Base => Some(Cow::Owned(vec![base_pos])),
            Scope::OneLevel => Some(
                state
                    .children
                    .get(&base_pos)
                    .map_or(Cow::Owned(Vec::new()), |c| Cow::Borrowed(c.as_slice())),
            ),
            Scope::Subtree => match state.lookup.candidates(&filter) {
                index::Candidates::Some(list) => Some(list),
                index::Candidates::All => None,
            },
        };
        let positions: Box<dyn Iterator<Item = u32> + '_> = match &listed {
            Some(list) => {
                let from = list.partition_point(|&p| (p as usize) < start);
                Box::new(list.get(from..).unwrap_or_default().iter().copied())
            }
            None => Box::new(
                u32::try_from(start).unwrap_or(u32::MAX)
                    ..u32::try_from(state.entries.len()).unwrap_or(u32::MAX),
            ),
        };
        let base_depth = state.entries.get(base_index).map_or(0, |s| s.depth);
        let page_size = request.page_size.clamp(1, MAX_PAGE_SIZE);
        let mut page = Page::default();
        for pos in positions {
            let Some(stored) = state.entries.get(pos as usize) else {
                continue;
            };
            if request.scope == Scope::Subtree && !within(&state, pos, base_pos, base_depth, &base)
            {
                continue;
            }
            if !filter.matches(&stored.entry) {
                continue;
            }
            // One match past a full page: there is a next page, and it starts here.
            if page.entries.len() == page_size {
                page.next = Some(encode_cursor(pos as usize));
                break;
            }
            page.entries.push(project(&stored.entry, &request.attrs));
        }
        Ok(page)
    }

    async fn modify(&self, dn: &str, changes: &[AttrChange]) -> Result<(), DirError> {
        let target = parse_dn(dn)?;
        if !changes.is_empty() {
            self.prepare_write()?;
        }
        let mut state = self.write()?;
        apply_modify(&mut state, &target, dn, changes)?;
        if !changes.is_empty() && self.path.is_some() {
            state.pending.push((dn.to_string(), changes.to_vec()));
        }
        Ok(())
    }

    async fn commit(&self) -> Result<(), DirError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        // Synchronous I/O on purpose: the file is one LDIF export, and the commit holds
        // the writer guard until the rename, which a std guard cannot carry across an
        // await.
        let mut writer = self.writer()?;
        writer.refused = None;
        if self.read()?.pending.is_empty() {
            writer.lock = None;
            return Ok(());
        }
        if writer.lock.is_none() {
            writer.lock = Some(file::lock(path, self.lock_wait)?);
        }
        let written = self.write_back(path);
        writer.lock = None;
        written
    }

    fn writes_at_commit(&self) -> bool {
        true
    }

    async fn change_state(&self) -> Result<Option<ChangeState>, DirError> {
        let high_water = self.read()?.counter;
        let source = match &self.path {
            Some(p) => fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
            None => self.source.clone(),
        };
        Ok(Some(ChangeState {
            tracking: ChangeTracking::Counter,
            high_water: Some(high_water.to_string()),
            source: format!("embedded:{source}"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::search_all;

    const FOREST: &str = include_str!("../../../tests/fixtures/ldif/small-forest.ldif");
    const DOMAIN: &str = "DC=example,DC=com";
    const JANE: &str = "CN=Jane Doe,OU=Sales,DC=example,DC=com";
    const POOL: &str = "CN=LC Services,CN=Microsoft,CN=pool01,CN=Pools,CN=RTC Service,\
                        CN=Microsoft,CN=System,DC=example,DC=com";

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn forest() -> EmbeddedDirectory {
        EmbeddedDirectory::from_ldif(FOREST, "small forest").unwrap()
    }

    fn search(dir: &EmbeddedDirectory, base: &str, scope: Scope, filter: &str) -> Vec<String> {
        let request = SearchRequest {
            base: base.into(),
            scope,
            filter: filter.into(),
            attrs: Vec::new(),
            page_size: 500,
        };
        block_on(search_all(dir, &request))
            .unwrap()
            .into_iter()
            .map(|e| e.dn)
            .collect()
    }

    fn change(attr: &str, before: &[&str], after: &[&str]) -> AttrChange {
        AttrChange {
            attr: attr.into(),
            before: before.iter().map(|s| s.to_string()).collect(),
            after: after.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn get(dir: &EmbeddedDirectory, dn: &str) -> Entry {
        dir.entries().into_iter().find(|e| e.dn == dn).unwrap()
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<EmbeddedDirectory>();
    }

    #[test]
    fn loads_ldif_and_finds_the_naming_contexts() {
        let dir = forest();
        assert_eq!(dir.describe(), "small forest");
        assert_eq!(dir.entries().len(), 7);
        assert_eq!(dir.entries()[0].dn, DOMAIN);
        let root = block_on(dir.root()).unwrap();
        assert_eq!(root.default_nc, DOMAIN);
        assert_eq!(
            root.config_nc.as_deref(),
            Some("CN=Configuration,DC=example,DC=com")
        );
        let jerome = get(
            &dir,
            "CN=J\\C3\\A9r\\C3\\B4me Dupr\\C3\\A9,OU=East,OU=Sales,DC=example,DC=com",
        );
        assert_eq!(jerome.first("cn"), Some("Jérôme Dupré"));
        assert_eq!(get(&dir, JANE).get_binary("objectGUID").len(), 1);
    }

    #[test]
    fn root_without_a_domain_or_configuration() {
        let dir = EmbeddedDirectory::from_ldif(
            "dn: OU=Sales,O=corp\nou: Sales\n\ndn: O=corp\no: corp\n",
            "t",
        )
        .unwrap();
        let root = block_on(dir.root()).unwrap();
        assert_eq!(root.default_nc, "O=corp");
        assert_eq!(root.config_nc, None);

        let empty = EmbeddedDirectory::from_ldif("", "empty").unwrap();
        assert!(matches!(
            block_on(empty.root()),
            Err(DirError::NoSuchObject(_))
        ));
    }

    #[test]
    fn scopes() {
        let dir = forest();
        let sales = "OU=Sales,DC=example,DC=com";
        assert_eq!(search(&dir, JANE, Scope::Base, "(objectClass=*)"), [JANE]);
        assert_eq!(
            search(&dir, &JANE.to_lowercase(), Scope::Base, "(objectClass=*)"),
            [JANE]
        );
        assert!(search(&dir, JANE, Scope::Base, "(cn=nobody)").is_empty());
        assert_eq!(
            search(&dir, sales, Scope::OneLevel, "(objectClass=*)"),
            [JANE, "OU=East,OU=Sales,DC=example,DC=com"]
        );
        assert_eq!(
            search(&dir, sales, Scope::Subtree, "(objectClass=*)"),
            [
                sales,
                JANE,
                "OU=East,OU=Sales,DC=example,DC=com",
                "CN=J\\C3\\A9r\\C3\\B4me Dupr\\C3\\A9,OU=East,OU=Sales,DC=example,DC=com"
            ]
        );
        assert_eq!(
            search(
                &dir,
                DOMAIN,
                Scope::Subtree,
                "(&(objectCategory=person)(msRTCSIP-UserEnabled=TRUE))"
            ),
            [JANE]
        );
        assert_eq!(
            search(&dir, DOMAIN, Scope::Subtree, "(cn=jérôme*)").len(),
            1
        );
        assert_eq!(
            search(&dir, DOMAIN, Scope::Subtree, "(objectClass=*)").len(),
            7
        );
        // The root DSE base with scope Base answers nothing rather than failing.
        assert!(search(&dir, "", Scope::Base, "(objectClass=*)").is_empty());
    }

    #[test]
    fn search_errors() {
        let dir = forest();
        let run = |base: &str, filter: &str| {
            let request = SearchRequest::subtree(base, filter);
            block_on(dir.search_page(&request, None))
        };
        match run("OU=Nowhere,DC=example,DC=com", "(cn=*)") {
            Err(DirError::NoSuchObject(base)) => assert_eq!(base, "OU=Nowhere,DC=example,DC=com"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(run("", "(cn=*)"), Err(DirError::NoSuchObject(_))));
        assert!(matches!(
            run("not a dn", "(cn=*)"),
            Err(DirError::InvalidDn { .. })
        ));
        assert!(matches!(
            run(DOMAIN, "(cn=*"),
            Err(DirError::Filter { position: 6, .. })
        ));
    }

    fn big_directory(n: usize) -> EmbeddedDirectory {
        let mut text = String::from("dn: DC=example,DC=com\nobjectClass: domainDNS\n\n");
        text.push_str("dn: OU=Users,DC=example,DC=com\nobjectClass: organizationalUnit\n");
        for i in 0..n {
            text.push_str(&format!(
                "\ndn: CN=user{i:04},OU=Users,DC=example,DC=com\nobjectClass: user\n\
                 cn: user{i:04}\nmsRTCSIP-UserEnabled: {}\n",
                if i % 3 == 0 { "TRUE" } else { "FALSE" }
            ));
        }
        EmbeddedDirectory::from_ldif(&text, "big").unwrap()
    }

    #[test]
    fn paging_returns_every_entry_exactly_once() {
        let dir = big_directory(2500);
        let mut request =
            SearchRequest::subtree("OU=Users,DC=example,DC=com", "(objectClass=user)");
        request.page_size = 1000;
        let mut seen = std::collections::HashSet::new();
        let mut sizes = Vec::new();
        let mut cursor = None;
        loop {
            let page = block_on(dir.search_page(&request, cursor)).unwrap();
            sizes.push(page.entries.len());
            for e in page.entries {
                assert!(seen.insert(e.dn.clone()), "{} twice", e.dn);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!(seen.len(), 2500);

        // A filter matching one entry in three: the last page ends exactly, no empty page.
        let mut request = SearchRequest::subtree(DOMAIN, "(msRTCSIP-UserEnabled=TRUE)");
        request.page_size = 417;
        let pages = collect_pages(&dir, &request);
        assert_eq!(pages, [417, 417]);

        // Oversized and zero page sizes are clamped.
        request.page_size = 5000;
        request.filter = "(objectClass=*)".into();
        assert_eq!(collect_pages(&dir, &request), [1000, 1000, 502]);
        request.page_size = 0;
        request.base = "CN=user0001,OU=Users,DC=example,DC=com".into();
        assert_eq!(collect_pages(&dir, &request), [1]);
    }

    fn collect_pages(dir: &EmbeddedDirectory, request: &SearchRequest) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut cursor = None;
        loop {
            let page = block_on(dir.search_page(request, cursor)).unwrap();
            sizes.push(page.entries.len());
            match page.next {
                Some(next) => cursor = Some(next),
                None => return sizes,
            }
        }
    }

    #[test]
    fn malformed_cursors_are_errors() {
        let dir = forest();
        let request = SearchRequest::subtree(DOMAIN, "(objectClass=*)");
        for bad in [
            vec![],
            vec![1, 2, 3],
            vec![0; 9],
            8u64.to_be_bytes().to_vec(),
            u64::MAX.to_be_bytes().to_vec(),
        ] {
            let result = block_on(dir.search_page(&request, Some(PageCursor(bad.clone()))));
            assert!(
                matches!(result, Err(DirError::Server(_))),
                "{bad:?}: {result:?}"
            );
        }
        // The end of the vector is a valid (empty) place to resume.
        let page = block_on(dir.search_page(&request, Some(encode_cursor(7)))).unwrap();
        assert!(page.entries.is_empty() && page.next.is_none());
    }

    #[test]
    fn projection_keeps_the_requested_attributes() {
        let dir = forest();
        let mut request = SearchRequest::subtree(DOMAIN, "(mail=jane*)");
        request.attrs = vec!["MAIL".into(), "objectguid".into(), "absent".into()];
        let page = block_on(dir.search_page(&request, None)).unwrap();
        let jane = &page.entries[0];
        assert_eq!(jane.dn, JANE);
        assert_eq!(jane.attributes().len(), 1);
        assert_eq!(jane.attributes()[0].name, "mail");
        assert_eq!(jane.get_binary("objectGUID").len(), 1);

        request.attrs = vec!["1.1".into()];
        let page = block_on(dir.search_page(&request, None)).unwrap();
        assert!(page.entries[0].attributes().is_empty());
        request.attrs = vec!["*".into()];
        let page = block_on(dir.search_page(&request, None)).unwrap();
        assert_eq!(page.entries[0], get(&dir, JANE));
    }

    #[test]
    fn modify_applies_and_counts() {
        let dir = forest();
        assert_eq!(dir.change_counter(), 0);
        let changes = [
            change("msRTCSIP-UserEnabled", &["true"], &["FALSE"]),
            change("msRTCSIP-PrimaryHomeServer", &[&POOL.to_lowercase()], &[]),
            change("telephoneNumber", &[], &["+1 555 0100"]),
            change("msRTCSIP-UserExtension", &[], &["a", "b"]),
        ];
        block_on(dir.modify(&JANE.to_uppercase(), &changes)).unwrap();
        let jane = get(&dir, JANE);
        assert_eq!(jane.get("msRTCSIP-UserEnabled"), ["FALSE"]);
        assert!(!jane.has("msRTCSIP-PrimaryHomeServer"));
        assert_eq!(jane.get("telephoneNumber"), ["+1 555 0100"]);
        assert_eq!(jane.get("msRTCSIP-UserExtension"), ["a", "b"]);
        assert_eq!(dir.change_counter(), 1);

        let sales = "OU=Sales,DC=example,DC=com";
        block_on(dir.modify(sales, &[change("description", &[], &["x"])])).unwrap();
        assert_eq!(dir.change_counter(), 2);
        let since_1: Vec<(u64, String)> = dir
            .changed_since(1)
            .into_iter()
            .map(|(c, e)| (c, e.dn))
            .collect();
        assert_eq!(since_1, [(2, sales.to_string())]);
        assert_eq!(dir.changed_since(0).len(), 2);

        // Nothing to change is no change.
        block_on(dir.modify(JANE, &[])).unwrap();
        assert_eq!(dir.change_counter(), 2);
    }

    #[test]
    fn a_stale_precondition_changes_nothing() {
        let dir = forest();
        let before = get(&dir, JANE);
        let changes = [
            change("telephoneNumber", &[], &["1"]),
            change("msRTCSIP-UserEnabled", &["FALSE"], &["TRUE"]),
        ];
        match block_on(dir.modify(JANE, &changes)) {
            Err(DirError::Conflict {
                dn,
                attr,
                expected,
                found,
            }) => {
                assert_eq!(dn, JANE);
                assert_eq!(attr, "msRTCSIP-UserEnabled");
                assert_eq!(expected, r#"["FALSE"]"#);
                assert_eq!(found, r#"["TRUE"]"#);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(get(&dir, JANE), before);
        assert_eq!(dir.change_counter(), 0);

        let err = block_on(dir.modify(JANE, &[change("mail", &[], &["x"])])).unwrap_err();
        assert!(err.is_conflict());
        assert!(err.to_string().contains("expected to be (absent)"), "{err}");
        let err = block_on(dir.modify(JANE, &[change("pager", &["1"], &[])])).unwrap_err();
        assert!(err.to_string().contains("but is (absent)"), "{err}");
        // Multisets: the same value twice is not the value once.
        let err = block_on(dir.modify(JANE, &[change("sn", &["Doe", "doe"], &[])])).unwrap_err();
        assert!(err.is_conflict());
        // Binary values never match a text precondition.
        let err = block_on(dir.modify(JANE, &[change("objectGUID", &[], &[])])).unwrap_err();
        assert!(err.to_string().contains("binary"), "{err}");
        assert_eq!(get(&dir, JANE), before);
    }

    #[test]
    fn constraints_are_refused_without_changing_anything() {
        let dir = forest();
        let before = get(&dir, JANE);
        let refused = |changes: &[AttrChange]| match block_on(dir.modify(JANE, changes)) {
            Err(DirError::Constraint { dn, message }) => {
                assert_eq!(dn, JANE);
                message
            }
            other => panic!("{other:?}"),
        };
        let message = refused(&[
            change("telephoneNumber", &[], &["1"]),
            change("msRTCSIP-UserEnabled", &["TRUE"], &["TRUE", "FALSE"]),
        ]);
        assert!(
            message.contains("msRTCSIP-UserEnabled is single-valued"),
            "{message}"
        );
        let message = refused(&[change(
            "msRTCSIP-TargetHomeServer",
            &[],
            &["CN=LC Services,CN=nowhere,DC=example,DC=com"],
        )]);
        assert_eq!(
            message,
            "msRTCSIP-TargetHomeServer value \"CN=LC Services,CN=nowhere,DC=example,DC=com\" \
             names no object in the directory"
        );
        let message = refused(&[change(
            "msRTCSIP-PrimaryHomeServer",
            &[POOL],
            &["pool01.example.com"],
        )]);
        assert!(message.contains("names no object"), "{message}");
        let message = refused(&[change("cn", &["Jane Doe"], &["Janet Doe"])]);
        assert!(message.contains("naming attribute"), "{message}");
        let message = refused(&[change("distinguishedName", &[], &[JANE])]);
        assert!(message.contains("rename"), "{message}");
        let message = refused(&[
            change("sn", &["Doe"], &["A"]),
            change("SN", &["Doe"], &["B"]),
        ]);
        assert!(message.contains("twice"), "{message}");
        assert_eq!(get(&dir, JANE), before);
        assert_eq!(dir.change_counter(), 0);

        // The same home server in another spelling, and the RDN value unchanged, pass.
        let changes = [
            change(
                "msRTCSIP-PrimaryHomeServer",
                &[POOL],
                &[&POOL.to_lowercase()],
            ),
            change("cn", &["Jane Doe"], &["JANE DOE"]),
        ];
        block_on(dir.modify(JANE, &changes)).unwrap();

        assert!(matches!(
            block_on(dir.modify("CN=Nobody,DC=example,DC=com", &[])),
            Err(DirError::NoSuchObject(_))
        ));
    }

    #[test]
    fn the_change_counter_survives_the_file() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("forest.ldif");
        fs::write(&path, FOREST).unwrap();
        let first = EmbeddedDirectory::open(&path).unwrap();
        assert_eq!(first.change_counter(), 0);
        let state = block_on(first.change_state()).unwrap().unwrap();
        assert_eq!(state.tracking, ChangeTracking::Counter);
        assert_eq!(state.high_water.as_deref(), Some("0"));
        block_on(first.modify(JANE, &[change("telephoneNumber", &[], &["1"])])).unwrap();
        assert_eq!(get(&first, JANE).get(CHANGE_MARKER), ["1"]);
        block_on(first.commit()).unwrap();

        // Another instance (another process) goes on from the file's highest number.
        let second = EmbeddedDirectory::open(&path).unwrap();
        assert_eq!(second.change_counter(), 1);
        let sales = "OU=Sales,DC=example,DC=com";
        block_on(second.modify(sales, &[change("description", &[], &["x"])])).unwrap();
        block_on(second.commit()).unwrap();
        let third = EmbeddedDirectory::open(&path).unwrap();
        assert_eq!(third.change_counter(), 2);
        let since: Vec<(u64, String)> = third
            .changed_since(1)
            .into_iter()
            .map(|(n, e)| (n, e.dn))
            .collect();
        assert_eq!(since, [(2, sales.to_string())]);
        // The marker answers filters as AD's does.
        assert_eq!(
            search(&third, DOMAIN, Scope::Subtree, "(uSNChanged>=2)"),
            [sales]
        );
        let state = block_on(third.change_state()).unwrap().unwrap();
        assert_eq!(state.high_water.as_deref(), Some("2"));
        assert!(state.source.ends_with("forest.ldif"), "{}", state.source);
    }

    #[test]
    fn commit_writes_atomically_and_only_when_changed() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("forest.ldif");
        fs::write(&path, FOREST).unwrap();
        let dir = EmbeddedDirectory::open(&path).unwrap();
        assert_eq!(dir.describe(), path.display().to_string());

        // Nothing modified: the file is left as it was, comments and all.
        block_on(dir.commit()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), FOREST);

        block_on(dir.modify(
            JANE,
            &[change("msRTCSIP-UserEnabled", &["TRUE"], &["FALSE"])],
        ))
        .unwrap();
        block_on(dir.commit()).unwrap();
        let written = fs::read_to_string(&path).unwrap();
        assert_eq!(written, dir.to_ldif());
        assert_eq!(ldif::parse(&written, "x").unwrap(), dir.entries());
        let reopened = EmbeddedDirectory::open(&path).unwrap();
        assert_eq!(reopened.entries(), dir.entries());
        assert_eq!(get(&reopened, JANE).get("msRTCSIP-UserEnabled"), ["FALSE"]);
        // No temporary file stays; the lock's sidecar does (removing it would race
        // with the next writer opening it).
        let mut names: Vec<_> = fs::read_dir(temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, [".forest.ldif.ocsh-lock", "forest.ldif"]);

        // Committed: a second commit does not write again.
        fs::remove_file(&path).unwrap();
        block_on(dir.commit()).unwrap();
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn commit_keeps_the_file_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("forest.ldif");
        fs::write(&path, FOREST).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let dir = EmbeddedDirectory::open(&path).unwrap();
        block_on(dir.modify(JANE, &[change("pager", &[], &["1"])])).unwrap();
        block_on(dir.commit()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn a_failed_commit_is_an_io_error_and_can_be_retried() {
        let temp = tempfile::tempdir().unwrap();
        let sub = temp.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let path = sub.join("forest.ldif");
        fs::write(&path, FOREST).unwrap();
        let dir = EmbeddedDirectory::open(&path).unwrap();
        block_on(dir.modify(JANE, &[change("pager", &[], &["1"])])).unwrap();
        fs::remove_dir_all(&sub).unwrap();
        match block_on(dir.commit()) {
            Err(DirError::Io { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
        // Still dirty: once the directory is back, the commit goes through.
        fs::create_dir(&sub).unwrap();
        block_on(dir.commit()).unwrap();
        assert_eq!(
            EmbeddedDirectory::open(&path).unwrap().entries(),
            dir.entries()
        );
    }

    /// Two directories on one file, as two processes: each one's modify re-reads what
    /// the other committed, so neither update is lost.
    #[test]
    fn interleaved_writers_keep_both_updates() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("forest.ldif");
        fs::write(&path, FOREST).unwrap();
        let sales = "OU=Sales,DC=example,DC=com";
        let first = EmbeddedDirectory::open(&path).unwrap();
        let second = EmbeddedDirectory::open(&path).unwrap();
        block_on(first.modify(JANE, &[change("pager", &[], &["1"])])).unwrap();
        // The first holds the lock until its commit: the second gives up after its wait,
        // and every later modify of it fails at once, until its commit.
        let second = second.with_lock_wait(Duration::from_millis(50));
        let err =
            block_on(second.modify(sales, &[change("description", &[], &["x"])])).unwrap_err();
        assert!(matches!(err, DirError::Locked { .. }), "{err}");
        let started = std::time::Instant::now();
        let err = block_on(second.modify(sales, &[])).map(|_| ());
        assert!(err.is_ok(), "an empty modify takes no lock");
        assert!(matches!(
            block_on(second.modify(sales, &[change("description", &[], &["x"])])),
            Err(DirError::Locked { .. })
        ));
        assert!(started.elapsed() < Duration::from_millis(50));
        block_on(second.commit()).unwrap();
        block_on(first.commit()).unwrap();

        block_on(second.modify(sales, &[change("description", &[], &["x"])])).unwrap();
        block_on(second.commit()).unwrap();
        let after = EmbeddedDirectory::open(&path).unwrap();
        assert_eq!(get(&after, JANE).get("pager"), ["1"]);
        assert_eq!(get(&after, sales).get("description"), ["x"]);
        // Two writers from the same counter value: the second's mark is still above the
        // first's, so an incremental reader sees both.
        assert_eq!(get(&after, JANE).get(CHANGE_MARKER), ["1"]);
        assert_eq!(get(&after, sales).get(CHANGE_MARKER), ["2"]);
    }

    /// A tool that takes no lock writes between the modify and the commit: the commit
    /// replays on its content, so a change to another entry survives, and a change to a
    /// planned attribute is a conflict that writes nothing.
    #[test]
    fn the_commit_replays_on_a_file_changed_without_the_lock() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("forest.ldif");
        fs::write(&path, FOREST).unwrap();
        let sales = "OU=Sales,DC=example,DC=com";
        let dir = EmbeddedDirectory::open(&path).unwrap();
        block_on(dir.modify(JANE, &[change("pager", &[], &["1"])])).unwrap();
        let outside =
            EmbeddedDirectory::from_ldif(&fs::read_to_string(&path).unwrap(), "x").unwrap();
        block_on(outside.modify(sales, &[change("description", &[], &["outside"])])).unwrap();
        fs::write(&path, outside.to_ldif()).unwrap();
        block_on(dir.commit()).unwrap();
        let after = EmbeddedDirectory::open(&path).unwrap();
        assert_eq!(get(&after, JANE).get("pager"), ["1"]);
        assert_eq!(get(&after, sales).get("description"), ["outside"]);

        block_on(dir.modify(JANE, &[change("pager", &["1"], &["2"])])).unwrap();
        let outside =
            EmbeddedDirectory::from_ldif(&fs::read_to_string(&path).unwrap(), "x").unwrap();
        block_on(outside.modify(JANE, &[change("pager", &["1"], &["9"])])).unwrap();
        let written = outside.to_ldif();
        fs::write(&path, &written).unwrap();
        let err = block_on(dir.commit()).unwrap_err();
        assert!(err.is_conflict(), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), written);
        // The directory now holds the file as it is, and nothing is left to write.
        assert_eq!(get(&dir, JANE).get("pager"), ["9"]);
        block_on(dir.commit()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), written);
    }

    #[test]
    fn scopes_follow_parents_with_escaped_commas_and_missing_parents() {
        assert_eq!(parent_key(r"cn=a\,b,ou=x\\,dc=y"), Some(r"ou=x\\,dc=y"));
        assert_eq!(parent_key("dc=y"), None);
        let dir = EmbeddedDirectory::from_ldif(
            "dn: DC=y\ndc: y\n\ndn: OU=a\\,b,DC=y\nou: a,b\n\n\
             dn: CN=c,OU=a\\,b,DC=y\ncn: c\n\ndn: CN=orphan,OU=gone,DC=y\ncn: orphan\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            search(&dir, r"OU=a\,b,DC=y", Scope::OneLevel, "(objectClass=*)"),
            [r"CN=c,OU=a\,b,DC=y"]
        );
        // An entry whose parent the file lacks is still in its ancestors' subtree.
        assert_eq!(
            search(&dir, "DC=y", Scope::Subtree, "(cn=*)"),
            [r"CN=c,OU=a\,b,DC=y", "CN=orphan,OU=gone,DC=y"]
        );
        assert!(search(&dir, "DC=y", Scope::OneLevel, "(cn=orphan)").is_empty());
    }

    #[test]
    fn in_memory_commit_is_a_no_op() {
        let dir = forest();
        block_on(dir.modify(JANE, &[change("pager", &[], &["1"])])).unwrap();
        block_on(dir.commit()).unwrap();
        assert_eq!(get(&dir, JANE).get("pager"), ["1"]);
    }

    #[test]
    fn open_reads_ldifde_unicode_exports() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("export.ldf");
        let text = "dn: DC=example,DC=com\r\nchangetype: add\r\nobjectClass: domainDNS\r\n\r\n\
                    dn: CN=J\u{e9}r\u{f4}me,DC=example,DC=com\r\nchangetype: add\r\ncn: J\u{e9}r\u{f4}me\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        for unit in text.encode_utf16() {
            bytes.extend(unit.to_le_bytes());
        }
        fs::write(&path, bytes).unwrap();
        let dir = EmbeddedDirectory::open(&path).unwrap();
        assert_eq!(dir.entries()[1].first("cn"), Some("Jérôme"));
    }

    #[test]
    fn load_errors_name_the_file_and_line() {
        match EmbeddedDirectory::from_ldif("dn: DC=x\ncn: a\nbroken line\n", "demo forest") {
            Err(DirError::Ldif { path, line, .. }) => {
                assert_eq!(path, "demo forest");
                assert_eq!(line, 3);
            }
            other => panic!("{other:?}"),
        }
        let temp = tempfile::tempdir().unwrap();
        let missing = temp.path().join("missing.ldif");
        assert!(matches!(
            EmbeddedDirectory::open(&missing),
            Err(DirError::Io { .. })
        ));
        let path = temp.path().join("bad.ldif");
        fs::write(&path, "dn: DC=x\n\ndn: DC=x\n").unwrap();
        let err = EmbeddedDirectory::open(&path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}:3:", path.display())),
            "{err}"
        );
    }
}
