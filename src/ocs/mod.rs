//! The pure domain model of OCS provisioning: every rule lives here, once.
//!
//! Nothing in this module does I/O or knows about Rhai or LDAP. The directory, plan and
//! script layers ask these types whether a value is valid and what a change writes.

pub mod attrs;
pub mod destructive;
pub mod dn;
pub mod flags;
pub mod pool;
pub mod reach;
pub mod replicator;
pub mod sip;
pub mod user;

pub mod values;

pub use attrs::Attr;
pub use destructive::Destructive;
pub use dn::Dn;
pub use flags::{Flag, Flags};
pub use pool::{HomeServerRef, Pool, PoolLayout};
pub use replicator::{InstanceId, ReplicatorSettings};
pub use sip::{SipDerivation, SipUri};
pub use user::{Context, OcsUser, Problem, UserChange};

/// A broken domain rule. Every message names the offending value and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcsError {
    /// A SIP URI that is not `sip:local@domain.tld`.
    #[error("invalid SIP address {value:?}: {reason}")]
    InvalidSip {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A SIP address could not be derived from the user's attributes.
    #[error("cannot derive a SIP address for {user}: {reason}")]
    CannotDeriveSip {
        /// Who.
        user: String,
        /// Why not.
        reason: String,
    },
    /// A flag bit that is reserved, undocumented or unknown.
    #[error("{0}")]
    InvalidFlags(String),
    /// A change that would clear OptionFlags bits instead of OR-ing new ones in.
    #[error("{0}")]
    FlagsOverwrite(String),
    /// A DN that does not parse.
    #[error("invalid DN {dn:?}: {reason}")]
    InvalidDn {
        /// The value as given.
        dn: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A home-server value that is not the LC Services DN of a known pool.
    #[error("{0}")]
    InvalidHomeServer(String),
    /// A pool name, FQDN or DN that names no pool.
    #[error("unknown pool {name:?}; the directory has: {known}")]
    UnknownPool {
        /// What was asked for.
        name: String,
        /// The pools that exist, comma-separated.
        known: String,
    },
    /// A SIP address another user already holds.
    #[error("SIP address {sip} is already held by {holder}")]
    DuplicateSip {
        /// The address.
        sip: String,
        /// The DN of the user who holds it.
        holder: String,
    },
    /// A value for an attribute in the wrong form (not TRUE/FALSE, not an integer, ...).
    #[error("invalid value {value:?} for {attr}: {reason}")]
    InvalidValue {
        /// The attribute.
        attr: String,
        /// The value as given.
        value: String,
        /// What form it must have.
        reason: String,
    },
    /// An attribute name ocsh does not know or may not write.
    #[error("{0}")]
    InvalidAttribute(String),
    /// A replicator setting out of range.
    #[error("{0}")]
    InvalidSetting(String),
    /// An operation that does not fit the user's state.
    #[error("{0}")]
    InvalidOperation(String),
}
