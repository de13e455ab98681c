//! LDAP result codes and transport failures, in words an administrator can act on.

use ldap3::LdapError;

use crate::directory::DirError;

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

pub(crate) fn server_error(what: &str, rc: u32, text: &str) -> DirError {
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

pub(crate) fn transport_error(what: &str, url: &str, e: LdapError) -> DirError {
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

#[cfg(test)]
mod tests {
    use super::*;

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
