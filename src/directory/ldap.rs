//! The LDAP backend: Active Directory (or any LDAP server) through ldap3.
//!
//! One connection, multiplexed: ldap3's `Ldap` handle is cloned for every operation, so
//! concurrent applies share it. Every operation has a timeout; result codes are turned
//! into messages an administrator can act on.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, ResultEntry, SearchEntry};

use super::filter::Filter;
use super::{
    AttrChange, ChangeFeed, ChangeState, ChangeTracking, DirError, Directory, Entry, FeedQuery,
    Page, PageCursor, RootInfo, Scope, SearchRequest,
};

/// The rootDSE capability that says "this is Active Directory" (LDAP_CAP_ACTIVE_DIRECTORY_OID).
const AD_CAPABILITY: &str = "1.2.840.113556.1.4.800";

/// How to reach and authenticate to the server.
#[derive(Debug, Clone, Default)]
pub struct LdapOptions {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
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

/// A directory on an LDAP server.
pub struct LdapDirectory {
    ldap: Ldap,
    url: String,
    root: RootInfo,
    timeout: Duration,
}

/// An LDAP result code in words, with what to do about the common ones.
pub fn describe_rc(rc: u32) -> &'static str {
    match rc {
        1 => "operations error",
        2 => "protocol error",
        3 => "time limit exceeded on the server",
        4 => "size limit exceeded (use a filter that matches fewer entries)",
        7 => "authentication method not supported",
        8 => "the server requires stronger authentication: use ldaps:// or --starttls",
        10 => "referral (the entry lives on another server)",
        11 => "administrative limit exceeded",
        12 => "unavailable critical extension",
        13 => "confidentiality required: use ldaps:// or --starttls",
        16 => "no such attribute (the value was changed by someone else)",
        17 => "undefined attribute type (the schema lacks it)",
        19 => "constraint violation",
        20 => "the attribute or value already exists",
        21 => "invalid attribute syntax",
        32 => "no such object",
        34 => "invalid DN syntax",
        48 => "inappropriate authentication",
        49 => "invalid credentials: wrong bind DN or password",
        50 => "insufficient access rights",
        51 => "the server is busy",
        52 => "the server is unavailable",
        53 => "the server is unwilling to perform the operation",
        64 => "naming violation",
        65 => "object class violation",
        68 => "the entry already exists",
        80 => "other server error",
        _ => "LDAP error",
    }
}

fn server_error(what: &str, rc: u32, text: &str) -> DirError {
    let text = text.trim().trim_end_matches('\0');
    let detail = if text.is_empty() {
        String::new()
    } else {
        format!("; the server said: {text}")
    };
    DirError::Server(format!(
        "{what}: {} (LDAP result code {rc}){detail}",
        describe_rc(rc)
    ))
}

fn transport_error(what: &str, url: &str, e: LdapError) -> DirError {
    match e {
        LdapError::LdapResult { result } => server_error(what, result.rc, &result.text),
        LdapError::Timeout { .. } => {
            DirError::Server(format!("{what}: {url} did not answer in time"))
        }
        LdapError::Io { source } if tls_failure(&source.to_string()) => DirError::Server(format!(
            "{what}: the TLS handshake with {url} failed: {source}; check --ca-file (the CA that signed the server's certificate)"
        )),
        LdapError::Io { source } => DirError::Server(format!(
            "{what}: cannot reach {url}: {source} (is the server running?)"
        )),
        LdapError::Rustls { source } => DirError::Server(format!(
            "{what}: TLS with {url} failed: {source}; check --ca-file (the CA that signed the server's certificate)"
        )),
        other => DirError::Server(format!("{what}: {other}")),
    }
}

fn tls_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("certificate") || m.contains("handshake") || m.contains("tls")
}

fn tls_config(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, DirError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |m: String| DirError::Unsupported(format!("--ca-file {}: {m}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    let pem = super::input_file::read(path, super::input_file::MAX_SMALL)
        .map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem);
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

impl LdapDirectory {
    /// Connects, binds and reads the rootDSE. Must run inside the tokio runtime that
    /// will drive later operations (the connection task is spawned on it).
    pub async fn connect(opts: &LdapOptions) -> Result<LdapDirectory, DirError> {
        let url = opts.url.trim().to_string();
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("ldap://") || lower.starts_with("ldaps://")) {
            return Err(DirError::Unsupported(format!(
                "{url}: an LDAP URL starts with ldap:// or ldaps://"
            )));
        }
        if opts.starttls && lower.starts_with("ldaps://") {
            return Err(DirError::Unsupported(
                "--starttls is for ldap:// URLs; ldaps:// is TLS already".into(),
            ));
        }
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(opts.connect_timeout)
            .set_starttls(opts.starttls);
        if let Some(ca) = &opts.ca_file {
            settings = settings.set_config(tls_config(ca)?);
        }
        if opts.insecure_no_tls_verify {
            settings = settings.set_no_tls_verify(true);
        }
        let connect = LdapConnAsync::with_settings(settings, &url);
        let (conn, mut ldap) = tokio::time::timeout(opts.connect_timeout, connect)
            .await
            .map_err(|_| {
                DirError::Server(format!(
                    "connect: {url} did not answer within {} s",
                    opts.connect_timeout.as_secs()
                ))
            })?
            .map_err(|e| transport_error("connect", &url, e))?;
        ldap3::drive!(conn);
        if let Some(dn) = &opts.bind_dn {
            let pw = opts.password.as_deref().unwrap_or("");
            if pw.is_empty() {
                return Err(DirError::Unsupported(format!(
                    "bind as {dn}: no password (set OCSH_PASSWORD, use --password-file, or run on a terminal to be asked)"
                )));
            }
            ldap.with_timeout(opts.op_timeout)
                .simple_bind(dn, pw)
                .await
                .map_err(|e| transport_error(&format!("bind as {dn}"), &url, e))?
                .success()
                .map_err(|e| transport_error(&format!("bind as {dn}"), &url, e))?;
        }
        let mut dir = LdapDirectory {
            ldap,
            url,
            root: RootInfo {
                default_nc: String::new(),
                config_nc: None,
                active_directory: false,
            },
            timeout: opts.op_timeout,
        };
        dir.root = dir.read_root(opts.base.as_deref()).await?;
        Ok(dir)
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
                        self.url
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

    async fn search_raw(
        &self,
        base: &str,
        scope: ldap3::Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirError> {
        let mut ldap = self.ldap.clone();
        let result = ldap
            .with_timeout(self.timeout)
            .search(base, scope, filter, attrs.to_vec())
            .await
            .map_err(|e| transport_error("search", &self.url, e))?;
        if result.1.rc == 32 {
            return Err(DirError::NoSuchObject(base.to_string()));
        }
        let (entries, _) = result
            .success()
            .map_err(|e| transport_error(&format!("search {base}"), &self.url, e))?;
        Ok(entries
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

#[async_trait]
impl Directory for LdapDirectory {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn root(&self) -> Result<RootInfo, DirError> {
        Ok(self.root.clone())
    }

    async fn search_page(
        &self,
        request: &SearchRequest,
        cursor: Option<PageCursor>,
    ) -> Result<Page, DirError> {
        let filter = Filter::parse(&request.filter)?.to_string();
        let scope = match request.scope {
            Scope::Base => ldap3::Scope::Base,
            Scope::OneLevel => ldap3::Scope::OneLevel,
            Scope::Subtree => ldap3::Scope::Subtree,
        };
        let attrs: Vec<&str> = if request.attrs.is_empty() {
            vec!["*"]
        } else {
            request.attrs.iter().map(String::as_str).collect()
        };
        let size = i32::try_from(request.page_size.clamp(1, 1000)).unwrap_or(1000);
        let cookie = cursor.map(|c| c.0).unwrap_or_default();
        let mut ldap = self.ldap.clone();
        let result = ldap
            .with_controls(PagedResults { size, cookie })
            .with_timeout(self.timeout)
            .search(&request.base, scope, &filter, attrs)
            .await
            .map_err(|e| transport_error("search", &self.url, e))?;
        if result.1.rc == 32 {
            return Err(DirError::NoSuchObject(request.base.clone()));
        }
        let (entries, res) = result.success().map_err(|e| {
            transport_error(
                &format!("search {} for {filter}", request.base),
                &self.url,
                e,
            )
        })?;
        let next = res.ctrls.iter().find_map(|c| match c {
            Control(Some(ControlType::PagedResults), raw) => {
                let pr: PagedResults = raw.parse();
                (!pr.cookie.is_empty()).then_some(PageCursor(pr.cookie))
            }
            _ => None,
        });
        // Search references (AD and Samba return them from the domain root) are skipped.
        let entries = entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(to_entry)
            .collect();
        Ok(Page { entries, next })
    }

    async fn modify(&self, dn: &str, changes: &[AttrChange]) -> Result<(), DirError> {
        let mods: Vec<Mod<String>> = changes.iter().flat_map(precondition_mods).collect();
        if mods.is_empty() {
            return Ok(());
        }
        let mut ldap = self.ldap.clone();
        let res = ldap
            .with_timeout(self.timeout)
            .modify(dn, mods)
            .await
            .map_err(|e| transport_error(&format!("modify {dn}"), &self.url, e))?;
        match res.rc {
            0 => Ok(()),
            32 => Err(DirError::NoSuchObject(dn.to_string())),
            // A failed precondition, or a value the server refuses: look at the values to
            // tell which, so that a conflict is never reported as a bad value or back.
            16 | 19 | 20 | 21 => {
                for c in changes {
                    let found = self.current_values(dn, &c.attr).await?;
                    if !super::filter::same_values(&c.attr, &found, &c.before) {
                        return Err(DirError::Conflict {
                            dn: dn.to_string(),
                            attr: c.attr.clone(),
                            expected: render(&c.before),
                            found: render(&found),
                        });
                    }
                }
                Err(DirError::Constraint {
                    dn: dn.to_string(),
                    message: format!(
                        "{} (LDAP result code {}): {}",
                        describe_rc(res.rc),
                        res.rc,
                        res.text.trim()
                    ),
                })
            }
            rc => Err(server_error(&format!("modify {dn}"), rc, &res.text)),
        }
    }

    async fn commit(&self) -> Result<(), DirError> {
        Ok(())
    }

    /// Active Directory (and Samba): `uSNChanged` against the rootDSE's
    /// `highestCommittedUSN`, in the sequence of the DC named by `dsServiceName` (and its
    /// `invocationId`, which a restore changes). Other servers: `entryCSN` when the base
    /// entry has one (OpenLDAP), with the base's `contextCSN` as high-water mark when
    /// syncprov keeps one.
    async fn change_state(&self) -> Result<Option<ChangeState>, DirError> {
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
            let mut source = format!("ad:{}:{service}", self.url);
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
                        ([bytes, ..], _) => Some(super::changes::guid_text(bytes)),
                        ([], Some(text)) => Some(super::changes::guid_text(text.as_bytes())),
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
                self.url,
                base.first("entryUUID").unwrap_or(&self.root.default_nc)
            ),
        }))
    }

    /// Tombstones on AD, an RFC 4533 refresh on OpenLDAP (`ldap_feed.rs`).
    async fn change_feed(&self, query: &FeedQuery) -> Result<ChangeFeed, DirError> {
        let conn = super::ldap_feed::Conn {
            ldap: &self.ldap,
            url: &self.url,
            timeout: self.timeout,
            active_directory: self.root.active_directory,
        };
        super::ldap_feed::feed(&conn, query).await
    }
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

    #[test]
    fn result_codes_in_words() {
        assert!(describe_rc(49).contains("wrong bind DN or password"));
        assert!(describe_rc(8).contains("use ldaps:// or --starttls"));
        let e = server_error("bind as x", 49, "80090308: LdapErr: DSID-0C09042A\0");
        assert_eq!(
            e.to_string(),
            "bind as x: invalid credentials: wrong bind DN or password (LDAP result code 49); the server said: 80090308: LdapErr: DSID-0C09042A"
        );
    }
}
