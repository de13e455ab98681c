//! Paged searches (RFC 2696), each on a connection of its own from its first page to its
//! last (see `links`), with the page size the server allows.

use std::sync::atomic::Ordering;

use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::{Ldap, LdapError};

use super::errors::transport_error;
use super::retry::{Backoff, Fault, transient_rc};
use super::{LdapDirectory, to_entry};
use crate::directory::filter::Filter;
use crate::directory::{DirError, Entry, Page, PageCursor, Scope, SearchRequest};

/// The page size asked for by default: AD's MaxPageSize (Samba uses the same policy).
pub(crate) const DEFAULT_PAGE: usize = 1000;

/// The smallest page tried after a server refused larger ones as over its limit.
const MIN_PAGE: usize = 50;

/// Why one page failed, with what that means for its connection.
enum PageFailure {
    /// The server answered with a result code: the connection is fine.
    Refused { rc: u32, error: DirError },
    /// The connection failed or timed out: it is dropped.
    Transport(DirError),
}

struct Query<'a> {
    request: &'a SearchRequest,
    filter: String,
    scope: ldap3::Scope,
    attrs: Vec<&'a str>,
}

impl LdapDirectory {
    pub(super) async fn paged(
        &self,
        request: &SearchRequest,
        cursor: Option<PageCursor>,
    ) -> Result<Page, DirError> {
        let q = Query {
            request,
            filter: Filter::parse(&request.filter)?.to_string(),
            scope: match request.scope {
                Scope::Base => ldap3::Scope::Base,
                Scope::OneLevel => ldap3::Scope::OneLevel,
                Scope::Subtree => ldap3::Scope::Subtree,
            },
            attrs: if request.attrs.is_empty() {
                vec!["*"]
            } else {
                request.attrs.iter().map(String::as_str).collect()
            },
        };
        match cursor {
            None => self.first_page(&q).await,
            Some(c) => {
                let (open, key) = self.links.unpark(&c)?;
                match self
                    .one_page(
                        &open.ldap,
                        &q,
                        open.page_size,
                        open.cookie,
                        self.links.budget(),
                    )
                    .await
                {
                    Ok((entries, Some(cookie))) => {
                        let next = self
                            .links
                            .park(open.ldap, cookie, open.page_size, Some(key))?;
                        Ok(Page {
                            entries,
                            next: Some(next),
                        })
                    }
                    Ok((entries, None)) => {
                        self.links.idle_again(open.ldap);
                        Ok(Page {
                            entries,
                            next: None,
                        })
                    }
                    // The server's paging state is in doubt: the connection goes.
                    Err(PageFailure::Refused { error, .. }) => Err(error),
                    // The cookie belonged to the connection that failed: the search cannot
                    // go on from where it was on another one.
                    Err(PageFailure::Transport(error)) => Err(DirError::Server(format!(
                        "{error}; the connection of this paged search was lost between two pages, so the search stopped there (run it again)"
                    ))),
                }
            }
        }
    }

    /// The first page, retried on a fresh connection after a fault (nothing is lost: no
    /// page was handed out yet).
    async fn first_page(&self, q: &Query<'_>) -> Result<Page, DirError> {
        let mut backoff = Backoff::new(self.links.budget());
        let mut size = q
            .request
            .page_size
            .clamp(1, DEFAULT_PAGE)
            .min(self.page_cap.load(Ordering::Relaxed));
        loop {
            let fault = match self.links.exclusive().await {
                Ok(ldap) => {
                    let asked = i32::try_from(size).unwrap_or(1000);
                    match self
                        .one_page(&ldap, q, asked, Vec::new(), backoff.remaining())
                        .await
                    {
                        Ok((entries, Some(cookie))) => {
                            let next = self.links.park(ldap, cookie, asked, None)?;
                            return Ok(Page {
                                entries,
                                next: Some(next),
                            });
                        }
                        Ok((entries, None)) => {
                            self.links.idle_again(ldap);
                            return Ok(Page {
                                entries,
                                next: None,
                            });
                        }
                        // adminLimitExceeded on the first page: OpenLDAP's size.pr is
                        // smaller than the page asked for. Halve it, and remember, so that
                        // later searches start at a size the server takes.
                        Err(PageFailure::Refused { rc: 11, error }) => {
                            self.links.idle_again(ldap);
                            if size <= MIN_PAGE {
                                return Err(error);
                            }
                            size = (size / 2).max(MIN_PAGE);
                            self.page_cap.fetch_min(size, Ordering::Relaxed);
                            continue;
                        }
                        Err(PageFailure::Refused { rc, error }) if transient_rc(rc) => error,
                        Err(PageFailure::Refused { error, .. }) => {
                            self.links.idle_again(ldap);
                            return Err(error);
                        }
                        Err(PageFailure::Transport(error)) => error,
                    }
                }
                Err(Fault::Transient(e)) => e,
                Err(Fault::Final(e)) => return Err(e),
            };
            if !backoff.wait().await {
                return Err(fault);
            }
            self.links.count_retry();
        }
    }

    async fn one_page(
        &self,
        ldap: &Ldap,
        q: &Query<'_>,
        size: i32,
        cookie: Vec<u8>,
        timeout: std::time::Duration,
    ) -> Result<(Vec<Entry>, Option<Vec<u8>>), PageFailure> {
        let base = &q.request.base;
        let what = || format!("search {base} for {}", q.filter);
        let mut ldap = ldap.clone();
        // A base search (a lookup by DN) returns one entry and needs no paging.
        if q.request.scope != Scope::Base {
            ldap.with_controls(PagedResults { size, cookie });
        }
        let result = ldap
            .with_timeout(timeout)
            .search(base, q.scope, &q.filter, q.attrs.clone())
            .await
            .map_err(|e| PageFailure::Transport(transport_error(&what(), &self.url(), e)))?;
        let rc = result.1.rc;
        if rc == 32 {
            return Err(PageFailure::Refused {
                rc,
                error: DirError::NoSuchObject(base.clone()),
            });
        }
        let (entries, res) = result.success().map_err(|e| match e {
            LdapError::LdapResult { .. } => PageFailure::Refused {
                rc,
                error: transport_error(&what(), &self.url(), e),
            },
            e => PageFailure::Transport(transport_error(&what(), &self.url(), e)),
        })?;
        let next = res.ctrls.iter().find_map(|c| match c {
            Control(Some(ControlType::PagedResults), raw) => {
                let pr: PagedResults = raw.parse();
                (!pr.cookie.is_empty()).then_some(pr.cookie)
            }
            _ => None,
        });
        // Search references (AD and Samba return them from the domain root) are skipped:
        // ldap3's SearchEntry::construct panics on them.
        let entries = entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(to_entry)
            .collect();
        Ok((entries, next))
    }
}
