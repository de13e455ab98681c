//! The embedded backend: a directory held in memory, loaded from LDIF and written back
//! atomically on commit.
//!
//! It stands in for a domain controller (the demo forest, tests, dry runs against an
//! export), so it refuses what AD refuses: stale preconditions, several values in a
//! single-valued OCS attribute, a home server that names no object. A plan that passes
//! here fails for the same reasons against AD, not for new ones.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

/// A directory held in memory: entries in file order, looked up by normalized DN.
#[derive(Debug)]
pub struct EmbeddedDirectory {
    /// What [`Directory::describe`] says: the path, or a name such as `demo forest`.
    source: String,
    /// The file [`Directory::commit`] writes; `None` for an in-memory directory.
    path: Option<PathBuf>,
    state: RwLock<State>,
    /// Serialises commits, so that an older snapshot can never be renamed over a newer
    /// one, and holds the change counter that the file on disk reflects.
    committed: Mutex<u64>,
}

#[derive(Debug)]
struct State {
    entries: Vec<Stored>,
    /// Normalized DN → position in `entries`.
    index: HashMap<String, usize>,
    /// The change counter: the highest `uSNChanged` in the file at load, bumped by every
    /// successful modify (which writes it into the entry, as AD does) and by a reload
    /// that found entries changed by another writer.
    counter: u64,
    /// Size and modification time of the file as last read or written: a difference
    /// means another writer changed it.
    stamp: Option<(u64, std::time::SystemTime)>,
}

#[derive(Debug)]
struct Stored {
    entry: Entry,
    /// Parsed once at load, since every search tests every entry's scope.
    dn: Dn,
    /// The counter value of the entry's last modify (its `uSNChanged`); 0 when it has
    /// none.
    changed_at: u64,
}

impl EmbeddedDirectory {
    /// An in-memory directory from LDIF text; `source` names it in messages (the demo
    /// forest uses `demo forest`). Commits are no-ops.
    pub fn from_ldif(text: &str, source: &str) -> Result<EmbeddedDirectory, DirError> {
        let entries = ldif::parse(text, source)?;
        EmbeddedDirectory::build(entries, source.to_string(), None)
    }

    /// Loads an LDIF file (UTF-8, or UTF-16 as `ldifde -u` writes it); commits write it
    /// back, as UTF-8.
    pub fn open(path: &Path) -> Result<EmbeddedDirectory, DirError> {
        let bytes = fs::read(path).map_err(|source| DirError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path.display().to_string();
        let text = ldif::decode_bytes(&bytes, &name)?;
        let entries = ldif::parse(&text, &name)?;
        let dir = EmbeddedDirectory::build(entries, name, Some(path.to_path_buf()))?;
        dir.write()?.stamp = stamp_of(path);
        Ok(dir)
    }

    /// Re-reads the file when another writer changed it since it was read, so that
    /// searches see the current entries and preconditions are checked against them.
    /// Entries whose content changed get a new change mark. Skipped while this directory
    /// holds modifications not yet committed: then `commit` refuses instead.
    fn refresh_if_changed(&self) -> Result<(), DirError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let committed = *self.committed.lock().map_err(|_| poisoned(&self.source))?;
        {
            let state = self.read()?;
            if state.counter != committed || state.stamp == stamp_of(path) {
                return Ok(());
            }
        }
        let fresh = EmbeddedDirectory::open(path)?;
        let fresh_state = fresh
            .state
            .into_inner()
            .map_err(|_| poisoned(&self.source))?;
        let mut state = self.write()?;
        // Entries another ocsh wrote carry a newer uSNChanged already; an entry edited by
        // hand (same or no uSNChanged, other content) gets a new mark so that an
        // incremental replicator cycle still sees it.
        let mut counter = state.counter.max(fresh_state.counter);
        let bump = counter + 1;
        let mut entries = fresh_state.entries;
        for e in &mut entries {
            let old = state
                .index
                .get(&e.dn.normalized())
                .and_then(|&i| state.entries.get(i));
            let edited_by_hand = match old {
                Some(o) => o.entry != e.entry && e.changed_at <= o.changed_at,
                None => e.changed_at == 0,
            };
            if edited_by_hand {
                e.changed_at = bump;
                counter = bump;
            }
        }
        state.entries = entries;
        state.index = fresh_state.index;
        state.stamp = fresh_state.stamp;
        state.counter = counter;
        drop(state);
        *self.committed.lock().map_err(|_| poisoned(&self.source))? = counter;
        Ok(())
    }

    fn build(
        entries: Vec<Entry>,
        source: String,
        path: Option<PathBuf>,
    ) -> Result<EmbeddedDirectory, DirError> {
        let mut stored = Vec::with_capacity(entries.len());
        let mut index = HashMap::with_capacity(entries.len());
        let mut counter = 0;
        for entry in entries {
            let dn = parse_dn(&entry.dn)?;
            if index.insert(dn.normalized(), stored.len()).is_some() {
                return Err(DirError::InvalidDn {
                    dn: entry.dn,
                    message: "two entries have this DN".into(),
                });
            }
            let changed_at = entry
                .first(CHANGE_MARKER)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            counter = counter.max(changed_at);
            stored.push(Stored {
                entry,
                dn,
                changed_at,
            });
        }
        Ok(EmbeddedDirectory {
            source,
            path,
            state: RwLock::new(State {
                entries: stored,
                index,
                counter,
                stamp: None,
            }),
            committed: Mutex::new(counter),
        })
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
        let entries: Vec<Entry> = state.entries.iter().map(|s| s.entry.clone()).collect();
        ldif::write(&entries)
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

/// The cursor is the index in the entry vector where the next page's scan starts.
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
        let renames = stored.dn.rdn().is_some_and(|rdn| {
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
                    .is_some_and(|dn| state.index.contains_key(&dn.normalized()));
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

/// Replaces `path` with `text` so that a reader sees the old file or the new one, never
/// a half-written one: a temporary file in the same directory (rename is atomic only
/// within a file system), flushed to disk, then renamed over the target.
/// The file's size and modification time, `None` when it cannot be read.
fn stamp_of(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

fn write_atomically(path: &Path, text: &str) -> Result<(), DirError> {
    let io = |source| DirError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Through a symlink, replace the file it points to rather than the link.
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".ocsh-")
        .suffix(".ldif.tmp")
        .tempfile_in(&dir)
        .map_err(io)?;
    // The temporary file is created private; the replaced file keeps its permissions.
    if let Ok(meta) = fs::metadata(&target) {
        temp.as_file()
            .set_permissions(meta.permissions())
            .map_err(io)?;
    }
    temp.write_all(text.as_bytes()).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(&target).map_err(|e| io(e.error))?;
    // Makes the rename itself durable on Unix; directories cannot be opened this way
    // everywhere, and the data is already safe, so a failure here is not an error.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
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
                .filter(|s| s.dn.depth() > 0)
                .filter(|s| !domain_only || s.entry.is_a("domain") || s.entry.is_a("domainDNS"))
                .min_by_key(|s| s.dn.depth())
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
        config_rdns.extend(domain.dn.rdns().iter().cloned());
        let config_nc = state
            .index
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
        let base_index = match state.index.get(&base.normalized()) {
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
        let in_scope = |i: usize, s: &Stored| match request.scope {
            Scope::Base => i == base_index,
            Scope::OneLevel => s.dn.depth() == base.depth() + 1 && s.dn.is_within(&base),
            Scope::Subtree => s.dn.is_within(&base),
        };
        let page_size = request.page_size.clamp(1, MAX_PAGE_SIZE);
        let mut page = Page::default();
        for (i, stored) in state.entries.iter().enumerate().skip(start) {
            if !in_scope(i, stored) || !filter.matches(&stored.entry) {
                continue;
            }
            // One match past a full page: there is a next page, and it starts here.
            if page.entries.len() == page_size {
                page.next = Some(encode_cursor(i));
                break;
            }
            page.entries.push(project(&stored.entry, &request.attrs));
        }
        Ok(page)
    }

    async fn modify(&self, dn: &str, changes: &[AttrChange]) -> Result<(), DirError> {
        let target = parse_dn(dn)?;
        self.refresh_if_changed()?;
        let mut guard = self.write()?;
        let state = &mut *guard;
        let Some(&index) = state.index.get(&target.normalized()) else {
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
        check_constraints(state, stored, changes)?;
        if changes.is_empty() {
            return Ok(());
        }

        let counter = state.counter + 1;
        let Some(stored) = state.entries.get_mut(index) else {
            return Err(DirError::NoSuchObject(dn.to_string()));
        };
        for change in changes {
            stored.entry.set(&change.attr, change.after.clone());
        }
        stored.entry.set(CHANGE_MARKER, vec![counter.to_string()]);
        stored.changed_at = counter;
        state.counter = counter;
        Ok(())
    }

    async fn commit(&self) -> Result<(), DirError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut committed = self.committed.lock().map_err(|_| poisoned(&self.source))?;
        let (text, counter) = {
            let state = self.read()?;
            if state.counter == *committed {
                return Ok(());
            }
            // A file that vanished is written again (or fails as I/O); one that another
            // writer changed is never overwritten.
            let now = stamp_of(path);
            if now.is_some() && state.stamp != now {
                return Err(DirError::Server(format!(
                    "{} was changed by another writer while these changes were applied; nothing was written (run again to plan against the new content)",
                    path.display()
                )));
            }
            let entries: Vec<Entry> = state.entries.iter().map(|s| s.entry.clone()).collect();
            (ldif::write(&entries), state.counter)
        };
        // Synchronous I/O on purpose: the file is one LDIF export, and the commit lock
        // must stay held until the rename, which a std guard cannot carry across an
        // await.
        write_atomically(path, &text)?;
        self.write()?.stamp = stamp_of(path);
        *committed = counter;
        Ok(())
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

    const FOREST: &str = include_str!("../../tests/fixtures/ldif/small-forest.ldif");
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
        let names: Vec<_> = fs::read_dir(temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["forest.ldif"]);

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
