//! Retrying what a busy, restarting or unreachable server did not answer.
//!
//! Busy (51), unavailable (52), a timeout or a dropped connection is a *fault*: the
//! operation is tried again on a fresh connection after a backoff (doubling from 100 ms
//! up to 3 s, each wait a random 50–100% of that, so that many clients do not come back
//! in step), within the operation's time budget. Every other result code is final: a
//! server that refuses a value (19, 21), the rights (50) or the operation (53) will refuse
//! it again.

use std::time::{Duration, Instant};

use ldap3::LdapError;

use super::errors::{server_error, transport_error};
use crate::directory::DirError;

/// A failed attempt: worth another try, or not.
pub(crate) enum Fault {
    /// The server did not answer, dropped the connection, or said busy/unavailable.
    Transient(DirError),
    /// Anything else: retrying cannot help.
    Final(DirError),
}

impl From<Fault> for DirError {
    fn from(f: Fault) -> DirError {
        match f {
            Fault::Transient(e) | Fault::Final(e) => e,
        }
    }
}

impl Fault {
    /// Classifies an ldap3 failure of an operation.
    pub fn from_ldap(what: &str, url: &str, e: LdapError) -> Fault {
        let transient = match &e {
            LdapError::LdapResult { result } => transient_rc(result.rc),
            LdapError::Io { source } => {
                // A TLS failure is a configuration problem, not a passing one.
                let m = source.to_string().to_ascii_lowercase();
                !(m.contains("certificate") || m.contains("handshake"))
            }
            LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::IdScrubSend { .. }
            | LdapError::MiscSend { .. }
            | LdapError::Timeout { .. }
            | LdapError::EndOfStream => true,
            _ => false,
        };
        let error = transport_error(what, url, e);
        if transient {
            Fault::Transient(error)
        } else {
            Fault::Final(error)
        }
    }

    /// Classifies a result code the server answered with.
    pub fn from_rc(what: &str, rc: u32, text: &str) -> Fault {
        let error = server_error(what, rc, text);
        if transient_rc(rc) {
            Fault::Transient(error)
        } else {
            Fault::Final(error)
        }
    }
}

/// 51 busy and 52 unavailable pass; 19, 21, 50, 53 and the rest do not.
pub(crate) fn transient_rc(rc: u32) -> bool {
    matches!(rc, 51 | 52)
}

/// The waits between attempts of one operation, within its time budget.
pub(crate) struct Backoff {
    deadline: Instant,
    /// Attempts that failed so far.
    pub failures: u32,
}

const FIRST_WAIT: Duration = Duration::from_millis(100);
const LONGEST_WAIT: Duration = Duration::from_secs(3);

impl Backoff {
    /// A budget of `budget` from now.
    pub fn new(budget: Duration) -> Backoff {
        Backoff {
            deadline: Instant::now() + budget,
            failures: 0,
        }
    }

    /// Time left for the next attempt (at least a little, so that an attempt can run).
    pub fn remaining(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(200))
    }

    /// Counts a failure and waits before the next attempt; false when the budget would
    /// run out first, and then the caller gives up.
    pub async fn wait(&mut self) -> bool {
        self.failures += 1;
        let exp = FIRST_WAIT.saturating_mul(1 << self.failures.min(6).saturating_sub(1));
        let wait = exp.min(LONGEST_WAIT).mul_f64(0.5 + fastrand::f64() / 2.0);
        if Instant::now() + wait >= self.deadline {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_busy_and_unavailable_are_retried() {
        for rc in [51, 52] {
            assert!(transient_rc(rc), "{rc}");
        }
        for rc in [0, 1, 16, 19, 20, 21, 32, 49, 50, 53, 80] {
            assert!(!transient_rc(rc), "{rc}");
        }
        assert!(matches!(
            Fault::from_ldap("x", "u", LdapError::EndOfStream),
            Fault::Transient(_)
        ));
        assert!(matches!(Fault::from_rc("x", 53, ""), Fault::Final(_)));
    }

    #[test]
    fn waits_grow_and_stop_at_the_budget() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let Ok(rt) = rt else { return };
        let mut b = Backoff::new(Duration::from_millis(900));
        let start = Instant::now();
        let mut waits = 0;
        while rt.block_on(b.wait()) {
            waits += 1;
        }
        // 100, 200, 400 ms at most: the fourth (up to 800 ms) no longer fits in 900 ms.
        assert!((1..=4).contains(&waits), "{waits} waits");
        assert!(start.elapsed() < Duration::from_millis(900));
    }
}
