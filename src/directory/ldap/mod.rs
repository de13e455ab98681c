//! The LDAP backend: Active Directory (or any LDAP server) through ldap3.
//!
//! `connect` checks the URL and opens the first connection; `links` holds every
//! connection and decides which operation may use which (a paged search has one to
//! itself, everything else shares multiplexed ones); `paged` reads page by page,
//! `modify` writes one entry with its preconditions, `changes` reads the change sequence
//! for the replicator, and `errors` turns result codes into messages an administrator can
//! act on.

mod changes;
mod connect;
mod errors;
mod links;
mod modify;
mod paged;
mod retry;

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::{ResultEntry, SearchEntry};

use super::{
    AttrChange, ChangeFeed, ChangeState, DirError, Directory, Entry, FeedQuery, Page, PageCursor,
    RootInfo, SearchRequest,
};
pub use connect::cleartext_warning;
pub use errors::describe_rc;

/// The rootDSE capability that says "this is Active Directory" (LDAP_CAP_ACTIVE_DIRECTORY_OID).
const AD_CAPABILITY: &str = "1.2.840.113556.1.4.800";

/// Shared connections for writes and single-entry reads: the apply's concurrent modifies
/// are spread over them (a server serves each connection's requests largely in order).
const LANES: usize = 4;

/// How to reach and authenticate to the server.
#[derive(Debug, Clone, Default)]
pub struct LdapOptions {
    /// `ldap://host[:port]` or `ldaps://host[:port]`; several (commas or spaces between
    /// them) are domain controllers tried in order.
    pub url: String,
    /// Upgrade a plain connection with StartTLS.
    pub starttls: bool,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Switch off certificate verification (dangerous; behind a loudly named flag).
    pub insecure_no_tls_verify: bool,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for each operation.
    pub op_timeout: Duration,
    /// The DN to bind as; anonymous when `None`.
    pub bind_dn: Option<String>,
    /// The bind password.
    pub password: Option<String>,
    /// The base DN, overriding the rootDSE's default naming context.
    pub base: Option<String>,
}

/// Checks a `--directory` list of LDAP URLs without connecting: each must be
/// `ldap://HOST[:PORT]` or `ldaps://HOST[:PORT]`.
pub fn check_urls(text: &str) -> Result<(), DirError> {
    connect::parse_urls(text).map(|_| ())
}

/// A directory on an LDAP server.
pub struct LdapDirectory {
    links: links::Links,
    root: RootInfo,
    /// The largest page the server has accepted (starts at AD's MaxPageSize).
    page_cap: AtomicUsize,
}

impl LdapDirectory {
    /// Connects, binds and reads the rootDSE. Must run inside the tokio runtime that
    /// will drive later operations (connection tasks are spawned on it).
    pub async fn connect(opts: &LdapOptions) -> Result<LdapDirectory, DirError> {
        let urls = connect::parse_urls(&opts.url)?;
        let connector = connect::Connector::new(urls, opts)?;
        let first = connector.open().await?;
        let mut dir = LdapDirectory {
            links: links::Links::new(connector, opts.op_timeout, LANES, first),
            root: RootInfo {
                default_nc: String::new(),
                config_nc: None,
                active_directory: false,
            },
            page_cap: AtomicUsize::new(paged::DEFAULT_PAGE),
        };
        dir.root = dir.read_root(opts.base.as_deref()).await?;
        Ok(dir)
    }

    /// The URL of the server in use (of a list, the first that answered).
    pub fn url(&self) -> String {
        self.links.connector.url()
    }

    /// Attempts retried after a fault (busy, unavailable, timeout, dropped connection)
    /// since the directory was opened.
    pub fn retries(&self) -> usize {
        self.links
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Paged searches left open now: each holds a connection until its last page or
    /// until it is released.
    pub fn open_searches(&self) -> usize {
        self.links.open_cursors()
    }

    async fn read_root(&self, base: Option<&str>) -> Result<RootInfo, DirError> {
        let attrs = [
            "defaultNamingContext",
            "configurationNamingContext",
            "namingContexts",
            "supportedCapabilities",
        ];
        let entries = self
            .search_raw("", ldap3::Scope::Base, "(objectClass=*)", &attrs)
            .await?;
        let dse = entries.into_iter().next().unwrap_or_else(|| Entry::new(""));
        let default_nc = match base {
            Some(b) => b.to_string(),
            None => dse
                .first("defaultNamingContext")
                .or_else(|| dse.first("namingContexts"))
                .map(str::to_string)
                .ok_or_else(|| {
                    DirError::Unsupported(format!(
                        "{}: the rootDSE names no naming context; give --base",
                        self.url()
                    ))
                })?,
        };
        let config_nc = match dse.first("configurationNamingContext") {
            Some(c) => Some(c.to_string()),
            // OpenLDAP has no configuration NC; a test or migration layout may keep one
            // under the domain.
            None => {
                let candidate = format!("CN=Configuration,{default_nc}");
                match self
                    .search_raw(&candidate, ldap3::Scope::Base, "(objectClass=*)", &["1.1"])
                    .await
                {
                    Ok(found) if !found.is_empty() => Some(candidate),
                    Ok(_) | Err(DirError::NoSuchObject(_)) => None,
                    Err(e) => return Err(e),
                }
            }
        };
        let active_directory = dse
            .get("supportedCapabilities")
            .iter()
            .any(|c| c == AD_CAPABILITY);
        Ok(RootInfo {
            default_nc,
            config_nc,
            active_directory,
        })
    }

    /// An unpaged search on a shared connection: only for base-scope reads of one entry,
    /// which never hold paging state. Retried after a fault.
    async fn search_raw(
        &self,
        base: &str,
        scope: ldap3::Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirError> {
        let mut backoff = retry::Backoff::new(self.links.budget());
        loop {
            match self
                .search_raw_once(base, scope, filter, attrs, backoff.remaining())
                .await
            {
                Ok(found) => return Ok(found),
                Err(retry::Fault::Transient(e)) => {
                    if !backoff.wait().await {
                        return Err(e);
                    }
                    self.links.count_retry();
                }
                Err(retry::Fault::Final(e)) => return Err(e),
            }
        }
    }

    async fn search_raw_once(
        &self,
        base: &str,
        scope: ldap3::Scope,
        filter: &str,
        attrs: &[&str],
        timeout: Duration,
    ) -> Result<Vec<Entry>, retry::Fault> {
        let what = format!("search {base}");
        let (lane, mut ldap) = self.links.shared().await?;
        let result = match ldap
            .with_timeout(timeout)
            .search(base, scope, filter, attrs.to_vec())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.links.drop_shared(lane);
                return Err(retry::Fault::from_ldap(&what, &self.url(), e));
            }
        };
        match result.1.rc {
            0 => {}
            32 => {
                return Err(retry::Fault::Final(DirError::NoSuchObject(
                    base.to_string(),
                )));
            }
            rc => return Err(retry::Fault::from_rc(&what, rc, &result.1.text)),
        }
        Ok(result
            .0
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(to_entry)
            .collect())
    }

    /// The current values of one attribute of one entry (for telling a conflict from a
    /// constraint after a refused modify).
    async fn current_values(&self, dn: &str, attr: &str) -> Result<Vec<String>, DirError> {
        let found = self
            .search_raw(dn, ldap3::Scope::Base, "(objectClass=*)", &[attr])
            .await?;
        Ok(found
            .first()
            .map(|e| e.get(attr).to_vec())
            .unwrap_or_default())
    }
}

fn to_entry(re: ResultEntry) -> Entry {
    let se = SearchEntry::construct(re);
    let mut entry = Entry::new(se.dn);
    // HashMap order is random; sorted names keep output stable.
    let mut names: Vec<&String> = se.attrs.keys().collect();
    names.sort_by_key(|n| n.to_ascii_lowercase());
    for name in names {
        entry.set(name, se.attrs[name].clone());
    }
    let mut bin: Vec<(&String, &Vec<Vec<u8>>)> = se.bin_attrs.iter().collect();
    bin.sort_by_key(|(n, _)| n.to_ascii_lowercase());
    for (name, values) in bin {
        for v in values {
            entry.add_binary(name, v.clone());
        }
    }
    entry
}

#[async_trait]
impl Directory for LdapDirectory {
    fn describe(&self) -> String {
        self.url()
    }

    async fn root(&self) -> Result<RootInfo, DirError> {
        Ok(self.root.clone())
    }

    async fn search_page(
        &self,
        request: &SearchRequest,
        cursor: Option<PageCursor>,
    ) -> Result<Page, DirError> {
        self.paged(request, cursor).await
    }

    fn release(&self, cursor: &PageCursor) {
        self.links.release(cursor);
    }

    async fn modify(&self, dn: &str, changes: &[AttrChange]) -> Result<(), DirError> {
        self.modify_entry(dn, changes).await
    }

    async fn commit(&self) -> Result<(), DirError> {
        Ok(())
    }

    async fn change_state(&self) -> Result<Option<ChangeState>, DirError> {
        self.tracking_state().await
    }

    /// Tombstones on AD, an RFC 4533 refresh on OpenLDAP (`ldap_feed.rs`), on a
    /// connection of its own (its searches may be long and paged).
    async fn change_feed(&self, query: &FeedQuery) -> Result<ChangeFeed, DirError> {
        let ldap = self.links.exclusive().await?;
        let url = self.url();
        let conn = super::ldap_feed::Conn {
            ldap: &ldap,
            url: &url,
            timeout: self.links.op_timeout,
            active_directory: self.root.active_directory,
        };
        let feed = super::ldap_feed::feed(&conn, query).await;
        if feed.is_ok() {
            self.links.idle_again(ldap);
        }
        feed
    }
}
