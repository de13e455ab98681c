//! Opening one connection: the URL checked, TLS set up, connected and bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};

use super::LdapOptions;
use super::retry::Fault;
use crate::directory::DirError;

/// A server address as ocsh connects to it: `ldap://host:port` or `ldaps://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerUrl {
    /// `ldap` or `ldaps`.
    pub scheme: String,
    /// The host name or address, without brackets.
    pub host: String,
    /// The port (389 or 636 when the URL has none).
    pub port: u16,
}

impl ServerUrl {
    /// Checks an LDAP URL before anything connects: ldap3 panics on some malformed ones
    /// (`ldap://`), and a path, query or user name would be silently ignored.
    pub fn parse(text: &str) -> Result<ServerUrl, DirError> {
        let text = text.trim();
        let bad = |why: &str| {
            DirError::Unsupported(format!(
                "{text:?} is not a usable LDAP URL: {why} (expected ldap://HOST[:PORT] or ldaps://HOST[:PORT])"
            ))
        };
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        let scheme = url.scheme().to_ascii_lowercase();
        if scheme != "ldap" && scheme != "ldaps" {
            return Err(bad("the scheme must be ldap or ldaps"));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err(bad("it names no host")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "a user name belongs in --bind-dn and a password in OCSH_PASSWORD or --password-file",
            ));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(bad(
                "a DN in the URL is not used; give the base with --base",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("it has a query or fragment, which ocsh does not use"));
        }
        let port = url
            .port()
            .unwrap_or(if scheme == "ldaps" { 636 } else { 389 });
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(ServerUrl { scheme, host, port })
    }

    /// The URL as ldap3 takes it.
    pub fn to_url(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }

    /// True for `ldaps://`.
    pub fn is_tls(&self) -> bool {
        self.scheme == "ldaps"
    }

    /// True when the host is this machine (a loopback address or `localhost`), where a
    /// password in clear never crosses a network.
    pub fn is_loopback(&self) -> bool {
        let h = self.host.trim_end_matches('.').to_ascii_lowercase();
        if h == "localhost" || h.ends_with(".localhost") {
            return true;
        }
        h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    }
}

fn tls_config(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, DirError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |m: String| DirError::Unsupported(format!("--ca-file {}: {m}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    let pem = crate::directory::input_file::read(path, crate::directory::input_file::MAX_SMALL)
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

/// The servers of one directory (several domain controllers, tried in order) with the
/// TLS and timeout settings of every connection, built once.
pub(crate) struct Connector {
    urls: Vec<ServerUrl>,
    /// The server connections go to now; a failure to connect moves it to the next.
    current: AtomicUsize,
    settings: LdapConnSettings,
    opts: LdapOptions,
}

/// Splits `--directory` into its URLs (commas or spaces between them) and checks each.
pub(crate) fn parse_urls(text: &str) -> Result<Vec<ServerUrl>, DirError> {
    let urls: Vec<ServerUrl> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(ServerUrl::parse)
        .collect::<Result<_, _>>()?;
    if urls.is_empty() {
        return Err(DirError::Unsupported(format!(
            "{text:?} names no LDAP server (expected ldap://HOST[:PORT] or ldaps://HOST[:PORT])"
        )));
    }
    Ok(urls)
}

impl Connector {
    /// Checks the options that do not need the network.
    pub fn new(urls: Vec<ServerUrl>, opts: &LdapOptions) -> Result<Connector, DirError> {
        if opts.starttls && urls.iter().any(ServerUrl::is_tls) {
            return Err(DirError::Unsupported(
                "--starttls is for ldap:// URLs; ldaps:// is TLS already".into(),
            ));
        }
        if let Some(dn) = &opts.bind_dn {
            if opts.password.as_deref().unwrap_or("").is_empty() {
                return Err(DirError::Unsupported(format!(
                    "bind as {dn}: no password (set OCSH_PASSWORD, use --password-file, or run on a terminal to be asked)"
                )));
            }
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
        Ok(Connector {
            urls,
            current: AtomicUsize::new(0),
            settings,
            opts: opts.clone(),
        })
    }

    /// The URL of the server in use.
    pub fn url(&self) -> String {
        let i = self.current.load(Ordering::Relaxed);
        self.urls.get(i).map(ServerUrl::to_url).unwrap_or_default()
    }

    /// A new connection, bound: to the server in use, or, when it does not answer, to
    /// the next of the list (which then is the one in use). A refused bind is not a
    /// reason to try another server. The driver task is spawned on the current runtime.
    pub async fn open(&self) -> Result<Ldap, Fault> {
        let start = self.current.load(Ordering::Relaxed);
        let n = self.urls.len();
        let mut failures = Vec::new();
        for k in 0..n {
            let i = (start + k) % n;
            match self.open_one(&self.urls[i]).await {
                Ok(ldap) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Ok(ldap);
                }
                Err(Fault::Transient(e)) => failures.push(e),
                Err(Fault::Final(e)) => return Err(Fault::Final(e)),
            }
        }
        match failures.len() {
            1 => Err(Fault::Transient(failures.remove(0))),
            _ => Err(Fault::Transient(DirError::Server(format!(
                "no server of the list answered: {}",
                failures
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )))),
        }
    }

    async fn open_one(&self, server: &ServerUrl) -> Result<Ldap, Fault> {
        let url = server.to_url();
        let timeout = self.opts.connect_timeout;
        let connect = LdapConnAsync::with_settings(self.settings.clone(), &url);
        let (conn, mut ldap) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| {
                Fault::Transient(DirError::Server(format!(
                    "connect: {url} did not answer within {} s",
                    timeout.as_secs()
                )))
            })?
            .map_err(|e| Fault::from_ldap("connect", &url, e))?;
        ldap3::drive!(conn);
        if let Some(dn) = &self.opts.bind_dn {
            let pw = self.opts.password.as_deref().unwrap_or("");
            let what = format!("bind as {dn}");
            let res = ldap
                .with_timeout(self.opts.op_timeout)
                .simple_bind(dn, pw)
                .await
                .map_err(|e| Fault::from_ldap(&what, &url, e))?;
            // 51 busy, 52 unavailable: this DC cannot serve now; another may. A refused
            // bind (49) is final.
            if res.rc != 0 {
                return Err(Fault::from_rc(&what, res.rc, &res.text));
            }
        }
        Ok(ldap)
    }
}

/// A warning when a simple bind would send the password in clear over a network: plain
/// `ldap://` without StartTLS to a host that is not this machine.
pub fn cleartext_warning(opts: &LdapOptions) -> Option<String> {
    if opts.bind_dn.is_none() || opts.starttls {
        return None;
    }
    let urls = parse_urls(&opts.url).ok()?;
    let exposed: Vec<String> = urls
        .iter()
        .filter(|u| !u.is_tls() && !u.is_loopback())
        .map(ServerUrl::to_url)
        .collect();
    (!exposed.is_empty()).then(|| {
        format!(
            "the bind password goes to {} in clear text over the network; use ldaps:// or --starttls",
            exposed.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_urls_are_refused_before_connecting() {
        for bad in [
            "ldap://",
            "ldaps://",
            "ldap:///",
            "ldaps:///",
            "ldap://:389",
            "ldap://host:99999",
            "ldap://host:0",
            "ldap://user:pw@host",
            "ldap://host/DC=example,DC=com",
            "ldap://host/?cn",
            "http://host",
            "ldap:host",
            "",
        ] {
            let e = ServerUrl::parse(bad).err();
            assert!(
                e.as_ref()
                    .is_some_and(|e| e.to_string().contains("not a usable LDAP URL")),
                "{bad:?}: {e:?}"
            );
        }
    }

    #[test]
    fn good_urls_get_their_default_port() {
        let u = ServerUrl::parse("LDAP://DC01.example.com").ok();
        assert_eq!(
            u.map(|u| u.to_url()),
            Some("ldap://dc01.example.com:389".into())
        );
        let u = ServerUrl::parse("ldaps://10.0.0.5/").ok();
        assert_eq!(u.map(|u| u.to_url()), Some("ldaps://10.0.0.5:636".into()));
        let u = ServerUrl::parse("ldap://[::1]:3389").ok();
        assert_eq!(
            u.as_ref().map(|u| u.to_url()),
            Some("ldap://[::1]:3389".into())
        );
        assert!(u.is_some_and(|u| u.is_loopback()));
    }

    #[test]
    fn a_list_of_servers_is_checked_whole() {
        let urls = parse_urls("ldap://dc1.example.com, ldaps://dc2.example.com ldap://dc3").ok();
        assert_eq!(urls.map(|u| u.len()), Some(3));
        assert!(parse_urls("ldap://dc1,ldap://").is_err());
        assert!(parse_urls(" , ").is_err());
    }

    #[test]
    fn cleartext_binds_to_other_hosts_warn() {
        let opts = |url: &str, starttls: bool| LdapOptions {
            url: url.into(),
            starttls,
            bind_dn: Some("CN=x".into()),
            ..LdapOptions::default()
        };
        let w = cleartext_warning(&opts("ldap://dc1.example.com", false));
        assert!(
            w.is_some_and(|w| w.contains("ldap://dc1.example.com:389") && w.contains("--starttls"))
        );
        assert!(cleartext_warning(&opts("ldap://dc1.example.com", true)).is_none());
        assert!(cleartext_warning(&opts("ldaps://dc1.example.com", false)).is_none());
        assert!(cleartext_warning(&opts("ldap://127.0.0.1:3389", false)).is_none());
        let anonymous = LdapOptions {
            bind_dn: None,
            ..opts("ldap://dc1.example.com", false)
        };
        assert!(cleartext_warning(&anonymous).is_none());
    }

    #[test]
    fn loopback_hosts() {
        for (url, lo) in [
            ("ldap://127.0.0.1:3389", true),
            ("ldap://127.8.9.1", true),
            ("ldap://localhost", true),
            ("ldap://dc01.example.com", false),
            ("ldap://10.1.2.3", false),
        ] {
            let u = ServerUrl::parse(url).ok();
            assert_eq!(u.map(|u| u.is_loopback()), Some(lo), "{url}");
        }
    }
}
