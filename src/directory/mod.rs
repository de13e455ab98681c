//! The one door to directory data: an async trait and its backends.
//!
//! Everything above this layer (plan, script, CLI) talks to a `dyn Directory`. The
//! embedded backend holds an LDIF file in memory and answers RFC 4515 filters with AD's
//! semantics; an LDAP backend (ldap3) implements the same trait.

pub mod changes;
pub mod demo;
pub mod demo_scale;
pub mod embedded;
pub mod entry;
pub mod error;
pub mod filter;
pub mod input_file;
pub mod ldap;
pub mod ldap_feed;
pub mod ldif;
pub mod open;
#[cfg(test)]
mod test_rng;

use async_trait::async_trait;
use serde::Serialize;

pub use changes::{ChangeFeed, ChangeState, ChangeTracking, FeedQuery};
pub use embedded::EmbeddedDirectory;
pub use entry::{Attribute, Entry};
pub use error::DirError;
pub use filter::Filter;
pub use open::{DirectorySpec, open};

/// Search scope, as in RFC 4511.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scope {
    /// The base entry only.
    Base,
    /// The immediate children of the base.
    OneLevel,
    /// The base and everything below it.
    Subtree,
}

/// A search: base, scope, RFC 4515 filter and the attributes wanted (empty: all).
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The DN to search from.
    pub base: String,
    /// How deep.
    pub scope: Scope,
    /// An RFC 4515 filter string.
    pub filter: String,
    /// Attributes to return; empty means all user attributes.
    pub attrs: Vec<String>,
    /// Entries per page (at most 1000, AD's MaxPageSize).
    pub page_size: usize,
}

impl SearchRequest {
    /// A subtree search of `base` for `filter`, all attributes, pages of 1000 (AD's
    /// MaxPageSize; a server that allows fewer gets smaller pages).
    pub fn subtree(base: impl Into<String>, filter: impl Into<String>) -> SearchRequest {
        SearchRequest {
            base: base.into(),
            scope: Scope::Subtree,
            filter: filter.into(),
            attrs: Vec::new(),
            page_size: 1000,
        }
    }
}

/// Where the next page starts: an opaque token (an LDAP paged-results cookie, or an
/// offset for the embedded backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor(pub Vec<u8>);

/// One page of search results.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The entries of this page.
    pub entries: Vec<Entry>,
    /// The cursor of the next page, `None` after the last one.
    pub next: Option<PageCursor>,
}

/// What the root DSE says about the directory's naming contexts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootInfo {
    /// The domain naming context (`DC=example,DC=com`).
    pub default_nc: String,
    /// The configuration naming context, where OCS 2007 R2 keeps its pools, if any.
    pub config_nc: Option<String>,
    /// True for Active Directory semantics (AD, Samba AD, the embedded backend): then
    /// `objectCategory` exists and computers are `user`s that must be filtered out.
    pub active_directory: bool,
}

/// One attribute change with its precondition: the values the change was planned
/// against (`before`) and the values to write (`after`). A backend must refuse the change
/// as [`DirError::Conflict`] when the current values are not `before`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttrChange {
    /// The attribute name.
    pub attr: String,
    /// The values seen when the change was planned (empty: absent).
    pub before: Vec<String>,
    /// The values to write (empty: remove the attribute).
    pub after: Vec<String>,
}

impl AttrChange {
    /// The values the change deletes by value: planned-against values that are not kept.
    /// A server refuses the delete when one of them is no longer there, which is what
    /// makes `before` a precondition (here and in an exported LDIF plan alike).
    pub fn removed(&self) -> Vec<&str> {
        distinct(self.before.iter().filter(|v| !self.after.contains(v)))
    }

    /// The values the change adds: new values that were not there when planned (refused
    /// by the server when a single-valued attribute has gained a value meanwhile).
    pub fn added(&self) -> Vec<&str> {
        distinct(self.after.iter().filter(|v| !self.before.contains(v)))
    }
}

/// The values in order of first appearance, each once.
fn distinct<'a>(values: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for v in values {
        if !out.contains(&v.as_str()) {
            out.push(v);
        }
    }
    out
}

/// A directory backend. Implementations must be usable from several tasks at once.
#[async_trait]
pub trait Directory: Send + Sync {
    /// A short description for messages and plan headers (`demo forest`, a path, a URL).
    fn describe(&self) -> String;

    /// The naming contexts.
    async fn root(&self) -> Result<RootInfo, DirError>;

    /// One page of a search; pass the previous page's `next` to continue.
    async fn search_page(
        &self,
        request: &SearchRequest,
        cursor: Option<PageCursor>,
    ) -> Result<Page, DirError>;

    /// Gives up a search before its last page: the cursor will not be continued, so the
    /// backend can free what keeps it open (an LDAP server connection). Backends whose
    /// cursors hold nothing need not implement it.
    fn release(&self, _cursor: &PageCursor) {}

    /// Applies the changes of one entry as one atomic operation with their preconditions.
    async fn modify(&self, dn: &str, changes: &[AttrChange]) -> Result<(), DirError>;

    /// Makes the applied modifications durable (the embedded backend writes its file;
    /// a server has already done so).
    async fn commit(&self) -> Result<(), DirError>;

    /// True when modifies change nothing durable and [`Directory::commit`] makes them
    /// all durable at once (the embedded backend renames its new file into place); a
    /// server's modify lands when it is answered. The journal orders its lines by this.
    fn writes_at_commit(&self) -> bool {
        false
    }

    /// How this backend marks changed entries and where its change sequence stands now,
    /// for incremental reads (the replicator); `None` when it cannot tell, and then every
    /// read is a full one.
    async fn change_state(&self) -> Result<Option<ChangeState>, DirError> {
        Ok(None)
    }

    /// Deletions and scope exits since a mark, without listing every entry (tombstones on
    /// AD, an RFC 4533 refresh on OpenLDAP); [`ChangeFeed::Unavailable`] when the backend
    /// cannot tell, the default.
    async fn change_feed(&self, _query: &FeedQuery) -> Result<ChangeFeed, DirError> {
        Ok(ChangeFeed::Unavailable(
            "this directory keeps no record of deletions".into(),
        ))
    }
}

/// Runs a search to the end and collects every page. For small result sets (pools,
/// SIP domains); user iteration goes page by page instead.
pub async fn search_all(
    dir: &dyn Directory,
    request: &SearchRequest,
) -> Result<Vec<Entry>, DirError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = dir.search_page(request, cursor).await?;
        out.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}
