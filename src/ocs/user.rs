//! A user's OCS state and the operations that change it (enable, disable, remove, move,
//! flags, raw attributes), each returning the attribute values it writes.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::OcsError;
use super::attrs::{Attr, PROXY_ADDRESSES, Syntax};
use super::flags::{Flags, keeps_enhanced_presence};
use super::pool::{HomeServerRef, Pool, check_home_server, classify_home_server};
use super::sip::SipUri;
use super::values::{ad_bool, ad_int, parse_ad_bool, parse_ad_int};

/// What a rule needs to know about the deployment: its pools and SIP domains.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The pools of the directory.
    pub pools: &'a [Pool],
    /// The SIP domains the deployment serves (`msRTCSIP-Domain`); empty when unknown,
    /// in which case any domain is accepted.
    pub sip_domains: &'a [String],
}

/// One attribute's new values (empty: remove the attribute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserChange {
    /// The attribute name.
    pub attr: String,
    /// The values to write.
    pub after: Vec<String>,
}

impl UserChange {
    fn new(attr: impl Into<String>, after: Vec<String>) -> UserChange {
        UserChange {
            attr: attr.into(),
            after,
        }
    }
}

/// A user's directory attributes as far as OCS cares, including staged changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OcsUser {
    /// The user's DN.
    pub dn: String,
    attrs: BTreeMap<String, (String, Vec<String>)>,
    /// OptionFlags as the directory held it when the user was read. Staged changes
    /// (a remove) may take the attribute out of the view, but a later write must still
    /// keep the 256 the directory has, so the rule looks here too.
    read_flags: Option<u32>,
}

impl OcsUser {
    /// A user from `(name, values)` pairs as the directory returned them.
    pub fn from_pairs<'a>(
        dn: &str,
        pairs: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> OcsUser {
        let mut u = OcsUser {
            dn: dn.to_string(),
            attrs: BTreeMap::new(),
            read_flags: None,
        };
        for (name, values) in pairs {
            u.set(name, values.to_vec());
        }
        u.read_flags = u.stored_flags();
        u
    }

    /// The values of `name`, any case.
    pub fn get(&self, name: &str) -> &[String] {
        self.attrs
            .get(&name.to_ascii_lowercase())
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.get(name).first().map(String::as_str)
    }

    fn set(&mut self, name: &str, values: Vec<String>) {
        let key = name.to_ascii_lowercase();
        if values.is_empty() {
            self.attrs.remove(&key);
        } else {
            let shown = self
                .attrs
                .get(&key)
                .map_or_else(|| name.to_string(), |(n, _)| n.clone());
            self.attrs.insert(key, (shown, values));
        }
    }

    /// Applies changes to this snapshot, so that it reads its own staged values back.
    pub fn apply(&mut self, changes: &[UserChange]) {
        for c in changes {
            self.set(&c.attr, c.after.clone());
        }
    }

    /// The names of the msRTCSIP-* attributes the user has.
    pub fn ocs_attribute_names(&self) -> Vec<String> {
        self.attrs
            .values()
            .filter(|(n, _)| n.to_ascii_lowercase().starts_with("msrtcsip-"))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// `sAMAccountName`.
    pub fn sam(&self) -> Option<&str> {
        self.first("sAMAccountName")
    }

    /// A short name for messages: sAMAccountName, else the DN.
    pub fn label(&self) -> &str {
        self.sam().unwrap_or(&self.dn)
    }

    /// `msRTCSIP-UserEnabled`: `None` when never enabled (or not a Boolean).
    pub fn enabled(&self) -> Option<bool> {
        self.bool_attr(Attr::UserEnabled)
    }

    /// `msRTCSIP-PrimaryUserAddress` as stored.
    pub fn sip(&self) -> Option<&str> {
        self.first(Attr::PrimaryUserAddress.name())
    }

    /// `msRTCSIP-PrimaryHomeServer` as stored.
    pub fn home_server(&self) -> Option<&str> {
        self.first(Attr::PrimaryHomeServer.name())
    }

    /// `msRTCSIP-OptionFlags` as stored (kept even with reserved bits).
    pub fn flags(&self) -> Option<Flags> {
        self.stored_flags()
            .map(|v| Flags::from_stored(i64::from(v)))
    }

    fn stored_flags(&self) -> Option<u32> {
        self.first(Attr::OptionFlags.name())
            .and_then(|v| parse_ad_int(Attr::OptionFlags.name(), v).ok())
            .map(|v| Flags::from_stored(v).value())
    }

    /// `msRTCSIP-FederationEnabled`, false when absent.
    pub fn federation(&self) -> bool {
        self.bool_attr(Attr::FederationEnabled).unwrap_or(false)
    }

    /// `msRTCSIP-InternetAccessEnabled`, false when absent.
    pub fn remote_access(&self) -> bool {
        self.bool_attr(Attr::InternetAccessEnabled).unwrap_or(false)
    }

    /// `msRTCSIP-Line` as stored: a `tel:` or `sip:` line URI.
    pub fn line(&self) -> Option<&str> {
        self.first(Attr::Line.name())
    }

    /// `msRTCSIP-ArchivingEnabled` (0 when absent; `None` when it is not a number).
    pub fn archiving(&self) -> Option<i64> {
        match self.first(Attr::ArchivingEnabled.name()) {
            None => Some(0),
            Some(v) => parse_ad_int(Attr::ArchivingEnabled.name(), v).ok(),
        }
    }

    /// `msRTCSIP-DeploymentLocator` as stored (read-only).
    pub fn deployment_locator(&self) -> Option<&str> {
        self.first(Attr::DeploymentLocator.name())
    }

    /// `msRTCSIP-TargetHomeServer` as stored: the destination pool of a move in progress.
    pub fn target_home_server(&self) -> Option<&str> {
        self.first(Attr::TargetHomeServer.name())
    }

    /// `msRTCSIP-UserPolicies` as a map (see [`parse_user_policies`]).
    pub fn user_policies(&self) -> BTreeMap<String, String> {
        parse_user_policies(self.get(Attr::UserPolicies.name()))
    }

    /// Sets or (with `None`) clears the line URI, checked by [`check_line_uri`].
    pub fn set_line(&self, line: Option<&str>) -> Result<Vec<UserChange>, OcsError> {
        let after = match line {
            Some(v) => vec![check_line_uri(v)?],
            None => vec![],
        };
        Ok(self.only_differences(vec![UserChange::new(Attr::Line.name(), after)]))
    }

    /// Sets msRTCSIP-ArchivingEnabled, checked by [`check_archiving`].
    pub fn set_archiving(&self, value: i64) -> Result<Vec<UserChange>, OcsError> {
        let v = check_archiving(&value.to_string())?;
        Ok(self.only_differences(vec![UserChange::new(
            Attr::ArchivingEnabled.name(),
            vec![v.to_string()],
        )]))
    }

    fn bool_attr(&self, a: Attr) -> Option<bool> {
        self.first(a.name())
            .and_then(|v| parse_ad_bool(a.name(), v).ok())
    }

    /// The pool the home server names, if it is a valid one.
    pub fn pool<'a>(&self, pools: &'a [Pool]) -> Option<&'a Pool> {
        match classify_home_server(self.home_server()?, pools) {
            HomeServerRef::Pool(p) => Some(p),
            _ => None,
        }
    }

    /// Enables the user: the four attributes, 256 OR-ed into the flags, and the `sip:`
    /// value in proxyAddresses. The address's uniqueness is checked by the caller, who
    /// can see the directory ([`check_sip_unique`]).
    pub fn enable(
        &self,
        sip: &SipUri,
        pool: &Pool,
        ctx: &Context<'_>,
    ) -> Result<Vec<UserChange>, OcsError> {
        check_sip_domain(sip, ctx)?;
        check_home_server(
            Attr::PrimaryHomeServer.name(),
            &pool.home_server_dn(),
            ctx.pools,
        )?;
        let flags = self
            .flags()
            .unwrap_or_default()
            .union(Flags::from_stored(256));
        let value = flags.apply_to(self.stored_flags())?;
        keeps_enhanced_presence(self.read_flags, value)?;
        let mut out = vec![
            UserChange::new(Attr::UserEnabled.name(), vec![ad_bool(true)]),
            UserChange::new(Attr::PrimaryUserAddress.name(), vec![sip.to_string()]),
            UserChange::new(Attr::PrimaryHomeServer.name(), vec![pool.home_server_dn()]),
            UserChange::new(Attr::OptionFlags.name(), vec![ad_int(value)]),
        ];
        out.push(self.proxy_change(Some(sip)));
        Ok(self.only_differences(out))
    }

    /// Temporarily disables the user: UserEnabled FALSE, every other setting kept.
    pub fn disable(&self) -> Result<Vec<UserChange>, OcsError> {
        if self.first(Attr::UserEnabled.name()).is_none() {
            return Err(OcsError::InvalidOperation(format!(
                "{} was never enabled for OCS (msRTCSIP-UserEnabled is absent); there is nothing to disable",
                self.label()
            )));
        }
        Ok(self.only_differences(vec![UserChange::new(
            Attr::UserEnabled.name(),
            vec![ad_bool(false)],
        )]))
    }

    /// Removes OCS from the user: every msRTCSIP-* attribute and the `sip:` proxy address.
    pub fn remove(&self) -> Vec<UserChange> {
        let mut out: Vec<UserChange> = self
            .ocs_attribute_names()
            .into_iter()
            .map(|n| UserChange::new(n, vec![]))
            .collect();
        out.push(self.proxy_change(None));
        self.only_differences(out)
    }

    /// Moves an enabled user to another pool.
    pub fn move_to(&self, pool: &Pool, ctx: &Context<'_>) -> Result<Vec<UserChange>, OcsError> {
        if self.sip().is_none() || self.first(Attr::UserEnabled.name()).is_none() {
            return Err(OcsError::InvalidOperation(format!(
                "{} is not enabled for OCS; enable it on a pool instead of moving it",
                self.label()
            )));
        }
        check_home_server(
            Attr::PrimaryHomeServer.name(),
            &pool.home_server_dn(),
            ctx.pools,
        )?;
        Ok(self.only_differences(vec![UserChange::new(
            Attr::PrimaryHomeServer.name(),
            vec![pool.home_server_dn()],
        )]))
    }

    /// Writes new flags, OR-ing bits in (see [`Flags::apply_to`]).
    pub fn set_flags(&self, flags: Flags) -> Result<Vec<UserChange>, OcsError> {
        let value = flags.apply_to(self.stored_flags())?;
        keeps_enhanced_presence(self.read_flags, value)?;
        Flags::new(i64::from(value & !self.stored_flags().unwrap_or(0)))?;
        Ok(self.only_differences(vec![UserChange::new(
            Attr::OptionFlags.name(),
            vec![ad_int(value)],
        )]))
    }

    /// Changes the SIP address (and the `sip:` proxy address with it).
    pub fn set_sip(&self, sip: &SipUri, ctx: &Context<'_>) -> Result<Vec<UserChange>, OcsError> {
        check_sip_domain(sip, ctx)?;
        let out = vec![
            UserChange::new(Attr::PrimaryUserAddress.name(), vec![sip.to_string()]),
            self.proxy_change(Some(sip)),
        ];
        Ok(self.only_differences(out))
    }

    /// Sets a Boolean attribute (federation, remote access, enabled).
    pub fn set_bool(&self, attr: Attr, value: bool) -> Result<Vec<UserChange>, OcsError> {
        if attr.syntax() != Syntax::Boolean {
            return Err(OcsError::InvalidAttribute(format!(
                "{} is not a Boolean attribute",
                attr.name()
            )));
        }
        if attr == Attr::UserEnabled && value {
            self.check_enableable()?;
        }
        Ok(self.only_differences(vec![UserChange::new(attr.name(), vec![ad_bool(value)])]))
    }

    fn check_enableable(&self) -> Result<(), OcsError> {
        if self.sip().is_none() || self.home_server().is_none() {
            return Err(OcsError::InvalidOperation(format!(
                "{} cannot be set enabled without a SIP address and a home server; use enable(sip, pool)",
                self.label()
            )));
        }
        Ok(())
    }

    /// Writes a raw msRTCSIP-* attribute. Every value goes through the rule of its
    /// attribute: the same checks as the named operations.
    pub fn set_raw(
        &self,
        name: &str,
        values: Vec<String>,
        ctx: &Context<'_>,
    ) -> Result<Vec<UserChange>, OcsError> {
        let attr = Attr::writable(name)?;
        if values.len() > 1 && !attr.multi_valued() {
            return Err(OcsError::InvalidValue {
                attr: attr.name().into(),
                value: values.join(", "),
                reason: "the attribute is single-valued".into(),
            });
        }
        let Some(value) = values.first() else {
            return match attr {
                Attr::OptionFlags if self.stored_flags().is_some_and(|f| f & 256 != 0) => {
                    Err(OcsError::FlagsOverwrite("msRTCSIP-OptionFlags holds enhanced_presence (256), which can never be cleared; use remove() to take the user out of OCS".into()))
                }
                Attr::PrimaryUserAddress | Attr::PrimaryHomeServer if self.enabled() == Some(true) => Err(OcsError::InvalidOperation(format!(
                    "{} is enabled for OCS and needs {}; disable() or remove() the user instead",
                    self.label(),
                    attr.name()
                ))),
                _ => Ok(self.only_differences(vec![UserChange::new(attr.name(), vec![])])),
            };
        };
        match attr {
            Attr::OptionFlags => {
                let v = parse_ad_int(attr.name(), value)?;
                self.set_flags(Flags::new(v)?)
            }
            Attr::PrimaryUserAddress => self.set_sip(&SipUri::parse(value)?, ctx),
            Attr::PrimaryHomeServer | Attr::TargetHomeServer => {
                let pool = check_home_server(attr.name(), value, ctx.pools)?;
                Ok(self.only_differences(vec![UserChange::new(
                    attr.name(),
                    vec![pool.home_server_dn()],
                )]))
            }
            Attr::UserEnabled | Attr::FederationEnabled | Attr::InternetAccessEnabled => {
                self.set_bool(attr, parse_ad_bool(attr.name(), value)?)
            }
            Attr::ArchivingEnabled => {
                let v = check_archiving(value)?;
                Ok(self.only_differences(vec![UserChange::new(attr.name(), vec![v.to_string()])]))
            }
            Attr::Line => self.set_line(Some(value)),
            Attr::LineServer => {
                let sip = SipUri::parse(value)?;
                Ok(
                    self.only_differences(vec![UserChange::new(
                        attr.name(),
                        vec![sip.to_string()],
                    )]),
                )
            }
            Attr::OriginatorSid | Attr::UserExtension | Attr::UserPolicy => {
                Ok(self.only_differences(vec![UserChange::new(attr.name(), values)]))
            }
            // Attr::writable refuses these already; kept refused here too.
            Attr::DeploymentLocator | Attr::UserPolicies => Err(OcsError::InvalidAttribute(
                format!("{} is read-only in ocsh", attr.name()),
            )),
        }
    }

    /// proxyAddresses with the `sip:` value for `sip` (or none). A value that already
    /// names the address in another case is kept as it is: the console writes `SIP:`, and
    /// in Exchange the upper-case prefix marks the primary address of its type.
    fn proxy_change(&self, sip: Option<&SipUri>) -> UserChange {
        let wanted = sip.map(SipUri::proxy_address);
        let mut kept_wanted = false;
        let mut values: Vec<String> = Vec::new();
        for v in self.get(PROXY_ADDRESSES) {
            if !v.to_ascii_lowercase().starts_with("sip:") {
                values.push(v.clone());
            } else if wanted.as_ref().is_some_and(|w| w.eq_ignore_ascii_case(v)) && !kept_wanted {
                values.push(v.clone());
                kept_wanted = true;
            }
        }
        if let (Some(w), false) = (wanted, kept_wanted) {
            values.push(w);
        }
        UserChange::new(PROXY_ADDRESSES, values)
    }

    fn only_differences(&self, changes: Vec<UserChange>) -> Vec<UserChange> {
        changes
            .into_iter()
            .filter(|c| !super::values::same_values(&c.attr, self.get(&c.attr), &c.after))
            .collect()
    }

    /// The OCS problems of this user's current state (for warnings and the replicator).
    pub fn problems(&self, ctx: &Context<'_>) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.enabled() != Some(true) {
            return out;
        }
        match self.sip() {
            None => out.push(Problem::EnabledWithoutSip),
            Some(s) => match SipUri::parse(s) {
                Err(e) => out.push(Problem::InvalidSip(e.to_string())),
                Ok(sip) => {
                    if let Err(e) = check_sip_domain(&sip, ctx) {
                        out.push(Problem::SipDomainNotServed(e.to_string()));
                    }
                }
            },
        }
        match self.home_server() {
            None => out.push(Problem::EnabledWithoutHomeServer),
            Some(h) => {
                if let Err(e) = check_home_server(Attr::PrimaryHomeServer.name(), h, ctx.pools) {
                    out.push(Problem::HomeServerNotAPool(e.to_string()));
                }
            }
        }
        match self.flags() {
            Some(f) if f.value() & 256 != 0 => {}
            f => out.push(Problem::FlagsLackEnhancedPresence(
                f.map_or_else(|| "absent".into(), |f| f.to_string()),
            )),
        }
        out
    }
}

/// An inconsistency in an enabled user's OCS attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Problem {
    /// UserEnabled TRUE but no PrimaryUserAddress.
    EnabledWithoutSip,
    /// UserEnabled TRUE but no PrimaryHomeServer.
    EnabledWithoutHomeServer,
    /// The home server is not a pool's LC Services object.
    HomeServerNotAPool(String),
    /// The SIP address does not parse.
    InvalidSip(String),
    /// The SIP domain is not one the deployment serves.
    SipDomainNotServed(String),
    /// OptionFlags lacks 256: Communicator 2007 R2 refuses sign-in.
    FlagsLackEnhancedPresence(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::EnabledWithoutSip => {
                f.write_str("enabled without a SIP address (msRTCSIP-PrimaryUserAddress)")
            }
            Problem::EnabledWithoutHomeServer => {
                f.write_str("enabled without a home server (msRTCSIP-PrimaryHomeServer)")
            }
            Problem::HomeServerNotAPool(m)
            | Problem::InvalidSip(m)
            | Problem::SipDomainNotServed(m) => f.write_str(m),
            Problem::FlagsLackEnhancedPresence(v) => write!(
                f,
                "msRTCSIP-OptionFlags {v} lacks enhanced_presence (256): Communicator 2007 R2 will refuse sign-in"
            ),
        }
    }
}

/// Refuses a SIP domain the deployment does not serve (when its domains are known).
pub fn check_sip_domain(sip: &SipUri, ctx: &Context<'_>) -> Result<(), OcsError> {
    if ctx.sip_domains.is_empty()
        || ctx
            .sip_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(sip.domain()))
    {
        return Ok(());
    }
    Err(OcsError::InvalidSip {
        value: sip.to_string(),
        reason: format!(
            "{} is not a SIP domain of this deployment ({})",
            sip.domain(),
            ctx.sip_domains.join(", ")
        ),
    })
}

/// Refuses an address that another entry already holds. `holders` are the DNs that hold
/// it (the directory's, corrected for staged changes); `dn` is the user being changed.
pub fn check_sip_unique(sip: &SipUri, dn: &str, holders: &[String]) -> Result<(), OcsError> {
    match holders.iter().find(|h| !super::dn::same_dn(h, dn)) {
        Some(holder) => Err(OcsError::DuplicateSip {
            sip: sip.to_string(),
            holder: holder.clone(),
        }),
        None => Ok(()),
    }
}

/// Checks a line URI (`msRTCSIP-Line`) and gives it back as it is to be stored: either
/// `tel:+` and 1 to 15 digits (E.164), optionally `;ext=` and digits, or a `sip:` URI
/// (checked as a SIP address). Nothing else: no spaces, no dashes, no national numbers.
pub fn check_line_uri(value: &str) -> Result<String, OcsError> {
    let bad = |reason: &str| OcsError::InvalidValue {
        attr: Attr::Line.name().into(),
        value: value.to_string(),
        reason: reason.into(),
    };
    if value.len() >= 4 && value[..4].eq_ignore_ascii_case("sip:") {
        return SipUri::parse(value)
            .map(|s| s.to_string())
            .map_err(|e| bad(&format!("a sip: line URI must be a SIP address ({e})")));
    }
    let rest = value.strip_prefix("tel:+").ok_or_else(|| {
        bad("a line URI is tel:+ and the E.164 number (tel:+15551234567, tel:+15551234567;ext=1234) or a sip: URI")
    })?;
    let (number, ext) = rest
        .split_once(";ext=")
        .map_or((rest, None), |(n, e)| (n, Some(e)));
    if number.is_empty() || number.len() > 15 || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(
            "the number after tel:+ must be 1 to 15 digits (E.164), no spaces or dashes",
        ));
    }
    if ext.is_some_and(|e| e.is_empty() || !e.chars().all(|c| c.is_ascii_digit())) {
        return Err(bad("the extension after ;ext= must be digits"));
    }
    Ok(value.to_string())
}

/// Checks a `msRTCSIP-ArchivingEnabled` value: 0 (none), 4 (internal), 8 (federated) or
/// 12 (both). Bits 1 and 2 are retired (OCS 2007 R1's archiving of internal and
/// federated communications without content) and refused, as is any other bit.
pub fn check_archiving(value: &str) -> Result<u32, OcsError> {
    let attr = Attr::ArchivingEnabled.name();
    let v = parse_ad_int(attr, value)?;
    let bad = |reason: &str| OcsError::InvalidValue {
        attr: attr.into(),
        value: value.to_string(),
        reason: reason.into(),
    };
    if v & (1 | 2) != 0 {
        return Err(bad(
            "bits 1 and 2 are retired; use 4 (archive internal), 8 (archive federated), 12 (both) or 0",
        ));
    }
    if v & !(4 | 8) != 0 {
        return Err(bad(
            "only bits 4 (archive internal) and 8 (archive federated) are defined: 0, 4, 8 or 12",
        ));
    }
    u32::try_from(v).map_err(|_| bad("must be 0, 4, 8 or 12"))
}

/// `msRTCSIP-UserPolicies` values (`name=value`, Lync's policy type and tag) as a map. A
/// value without `=` is kept under its own text with an empty value, so that nothing
/// stored is hidden.
pub fn parse_user_policies(values: &[String]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((name, value)) => (name.trim().to_string(), value.trim().to_string()),
            None => (v.trim().to_string(), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocs::pool::PoolLayout;

    fn pools() -> Vec<Pool> {
        ["pool01", "pool02"]
            .iter()
            .map(|n| {
                Pool::from_dn(
                    &format!(
                        "CN={n},{}",
                        PoolLayout::R2.pools_container("DC=example,DC=com")
                    ),
                    Some(format!("{n}.example.com")),
                )
                .unwrap()
            })
            .collect()
    }

    fn user(pairs: &[(&str, &[&str])]) -> OcsUser {
        let owned: Vec<(String, Vec<String>)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        OcsUser::from_pairs(
            "CN=Jane Doe,OU=Sales,DC=example,DC=com",
            owned.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
        )
    }

    fn find<'a>(c: &'a [UserChange], attr: &str) -> Option<&'a [String]> {
        c.iter()
            .find(|c| c.attr.eq_ignore_ascii_case(attr))
            .map(|c| c.after.as_slice())
    }

    const DOMAINS: [&str; 1] = ["example.com"];

    /// 256 survives every sequence: a remove takes the attribute out of the view, but a
    /// raw write after it (or set_flags) still may not drop the directory's 256.
    #[test]
    fn enhanced_presence_survives_remove_then_a_raw_write() {
        let pools = pools();
        let ctx = Context {
            pools: &pools,
            sip_domains: &[],
        };
        let read = user(&[
            ("msRTCSIP-UserEnabled", &["TRUE"]),
            ("msRTCSIP-PrimaryUserAddress", &["sip:jane@example.com"]),
            ("msRTCSIP-OptionFlags", &["256"]),
        ]);
        let mut view = read.clone();
        view.apply(&view.remove());
        assert!(view.get("msRTCSIP-OptionFlags").is_empty());
        for v in ["512", "0", "1"] {
            let err = view
                .set_raw("msRTCSIP-OptionFlags", vec![v.into()], &ctx)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("enhanced_presence (256) can never be cleared"),
                "{v}: {err}"
            );
            assert!(
                view.set_flags(Flags::new(v.parse().unwrap()).unwrap())
                    .is_err()
            );
        }
        // Keeping 256 is fine, and so is removing the attribute (remove() itself).
        let ok = view
            .set_raw("msRTCSIP-OptionFlags", vec!["768".into()], &ctx)
            .unwrap();
        assert_eq!(
            find(&ok, "msRTCSIP-OptionFlags"),
            Some(&["768".to_string()][..])
        );
        assert!(view.set_raw("msRTCSIP-OptionFlags", vec![], &ctx).is_ok());
        // Enabling again after the remove ORs 256 back in.
        let sip = SipUri::parse("sip:jane@example.com").unwrap();
        let again = view.enable(&sip, &pools[0], &ctx).unwrap();
        assert_eq!(
            find(&again, "msRTCSIP-OptionFlags"),
            Some(&["256".to_string()][..])
        );
    }

    /// AD's Integer is signed 32-bit: a negative stored value is written back signed.
    #[test]
    fn negative_option_flags_are_written_back_signed() {
        let u = user(&[("msRTCSIP-OptionFlags", &["-2147483391"])]);
        let f = u.flags().unwrap().union(Flags::new(16).unwrap());
        let c = u.set_flags(f).unwrap();
        assert_eq!(
            find(&c, "msRTCSIP-OptionFlags"),
            Some(&["-2147483375".to_string()][..])
        );
        // Nothing to add: nothing written (the signed text compares equal).
        assert!(u.set_flags(u.flags().unwrap()).unwrap().is_empty());
    }

    #[test]
    fn enable_writes_four_attributes_and_proxy() {
        let p = pools();
        let domains: Vec<String> = DOMAINS.iter().map(|s| s.to_string()).collect();
        let ctx = Context {
            pools: &p,
            sip_domains: &domains,
        };
        let u = user(&[
            ("sAMAccountName", &["jdoe"]),
            ("proxyAddresses", &["SMTP:jane@example.com"]),
            ("msRTCSIP-OptionFlags", &["1"]),
        ]);
        let sip = SipUri::parse("sip:jane.doe@example.com").unwrap();
        let c = u.enable(&sip, &p[0], &ctx).unwrap();
        assert_eq!(find(&c, "msRTCSIP-UserEnabled").unwrap(), ["TRUE"]);
        assert_eq!(
            find(&c, "msRTCSIP-PrimaryUserAddress").unwrap(),
            ["sip:jane.doe@example.com"]
        );
        assert_eq!(
            find(&c, "msRTCSIP-PrimaryHomeServer").unwrap(),
            [p[0].home_server_dn()]
        );
        assert_eq!(find(&c, "msRTCSIP-OptionFlags").unwrap(), ["257"]);
        assert_eq!(
            find(&c, "proxyAddresses").unwrap(),
            ["SMTP:jane@example.com", "sip:jane.doe@example.com"]
        );
        // enabling again changes nothing
        let mut after = u.clone();
        after.apply(&c);
        assert!(after.enable(&sip, &p[0], &ctx).unwrap().is_empty());
        assert!(after.problems(&ctx).is_empty());
    }

    #[test]
    fn enable_refuses_foreign_domain_and_unknown_pool() {
        let p = pools();
        let domains = vec!["example.com".to_string()];
        let ctx = Context {
            pools: &p[..1],
            sip_domains: &domains,
        };
        let u = user(&[]);
        let err = u
            .enable(&SipUri::parse("sip:a@example.org").unwrap(), &p[0], &ctx)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a SIP domain of this deployment (example.com)"),
            "{err}"
        );
        let err = u
            .enable(&SipUri::parse("sip:a@example.com").unwrap(), &p[1], &ctx)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wrong container path") || err.contains("not a pool"),
            "{err}"
        );
    }

    #[test]
    fn disable_keeps_settings_and_remove_clears_all() {
        let u = user(&[
            ("msRTCSIP-UserEnabled", &["TRUE"]),
            ("msRTCSIP-PrimaryUserAddress", &["sip:a@example.com"]),
            ("msRTCSIP-OptionFlags", &["257"]),
            ("msRTCSIP-FederationEnabled", &["TRUE"]),
            (
                "proxyAddresses",
                &["sip:a@example.com", "SMTP:a@example.com"],
            ),
        ]);
        assert_eq!(
            u.disable().unwrap(),
            vec![UserChange::new(
                "msRTCSIP-UserEnabled",
                vec!["FALSE".into()]
            )]
        );
        let r = u.remove();
        assert_eq!(r.len(), 5);
        assert!(
            r.iter()
                .filter(|c| c.attr.starts_with("msRTCSIP-"))
                .all(|c| c.after.is_empty())
        );
        assert_eq!(find(&r, "proxyAddresses").unwrap(), ["SMTP:a@example.com"]);
        assert!(
            user(&[])
                .disable()
                .unwrap_err()
                .to_string()
                .contains("never enabled")
        );
    }

    #[test]
    fn raw_writes_use_the_same_rules() {
        let p = pools();
        let ctx = Context {
            pools: &p,
            sip_domains: &[],
        };
        let u = user(&[
            ("msRTCSIP-OptionFlags", &["256"]),
            ("msRTCSIP-UserEnabled", &["TRUE"]),
        ]);
        let err = u
            .set_raw("msRTCSIP-OptionFlags", vec!["512".into()], &ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("can never be cleared"), "{err}");
        let err = u
            .set_raw("msRTCSIP-OptionFlags", vec!["260".into()], &ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("reserved"), "{err}");
        let err = u
            .set_raw(
                "msRTCSIP-PrimaryHomeServer",
                vec!["pool01.example.com".into()],
                &ctx,
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("FQDN of pool pool01"), "{err}");
        let err = u
            .set_raw(
                "msRTCSIP-PrimaryUserAddress",
                vec!["sip:jane doe@example.com".into()],
                &ctx,
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("space"), "{err}");
        let err = u
            .set_raw("msRTCSIP-UserEnabled", vec!["true".into()], &ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("without a SIP address"), "{err}");
        let err = u
            .set_raw("msRTCSIP-Line", vec!["555-1234".into()], &ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tel:+"), "{err}");
        assert_eq!(
            u.set_raw("msRTCSIP-Line", vec!["tel:+15551234".into()], &ctx)
                .unwrap()
                .len(),
            1
        );
        let err = u
            .set_raw("msRTCSIP-OptionFlags", vec![], &ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("never be cleared"), "{err}");
        let ok = u
            .set_raw("msRTCSIP-OptionFlags", vec!["385".into()], &ctx)
            .unwrap();
        assert_eq!(find(&ok, "msRTCSIP-OptionFlags").unwrap(), ["385"]);
    }

    #[test]
    fn problems_of_broken_users() {
        let p = pools();
        let ctx = Context {
            pools: &p,
            sip_domains: &[],
        };
        let no_sip = user(&[
            ("msRTCSIP-UserEnabled", &["TRUE"]),
            ("msRTCSIP-PrimaryHomeServer", &[&p[0].home_server_dn()]),
            ("msRTCSIP-OptionFlags", &["256"]),
        ]);
        assert_eq!(no_sip.problems(&ctx), vec![Problem::EnabledWithoutSip]);
        let fqdn = user(&[
            ("msRTCSIP-UserEnabled", &["TRUE"]),
            ("msRTCSIP-PrimaryUserAddress", &["sip:a@example.com"]),
            ("msRTCSIP-PrimaryHomeServer", &["pool01.example.com"]),
            ("msRTCSIP-OptionFlags", &["512"]),
        ]);
        let probs = fqdn.problems(&ctx);
        assert_eq!(probs.len(), 2, "{probs:?}");
        assert!(probs[1].to_string().contains("lacks enhanced_presence"));
        assert!(
            user(&[("msRTCSIP-UserEnabled", &["FALSE"])])
                .problems(&ctx)
                .is_empty()
        );
    }

    #[test]
    fn a_console_written_sip_proxy_address_is_kept() {
        let p = pools();
        let ctx = Context {
            pools: &p,
            sip_domains: &[],
        };
        let u = user(&[
            ("msRTCSIP-UserEnabled", &["FALSE"]),
            ("msRTCSIP-PrimaryUserAddress", &["sip:a@example.com"]),
            ("msRTCSIP-PrimaryHomeServer", &[&p[0].home_server_dn()]),
            ("msRTCSIP-OptionFlags", &["256"]),
            (
                "proxyAddresses",
                &["SMTP:a@example.com", "SIP:a@example.com"],
            ),
        ]);
        let c = u
            .enable(&SipUri::parse("sip:a@example.com").unwrap(), &p[0], &ctx)
            .unwrap();
        assert_eq!(
            c,
            vec![UserChange::new("msRTCSIP-UserEnabled", vec!["TRUE".into()])]
        );
        // the same pool written in another case is no change either
        let lower = user(&[
            ("msRTCSIP-UserEnabled", &["TRUE"]),
            ("msRTCSIP-PrimaryUserAddress", &["sip:a@example.com"]),
            (
                "msRTCSIP-PrimaryHomeServer",
                &[&p[0].home_server_dn().to_lowercase()],
            ),
        ]);
        assert!(lower.move_to(&p[0], &ctx).unwrap().is_empty());
    }

    #[test]
    fn duplicate_sip() {
        let sip = SipUri::parse("sip:a@example.com").unwrap();
        assert!(check_sip_unique(&sip, "CN=A,DC=x", &["cn=a,dc=x".into()]).is_ok());
        let err = check_sip_unique(&sip, "CN=A,DC=x", &["CN=B,DC=x".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("already held by CN=B,DC=x"), "{err}");
    }

    #[test]
    fn move_requires_enabled() {
        let p = pools();
        let ctx = Context {
            pools: &p,
            sip_domains: &[],
        };
        assert!(user(&[]).move_to(&p[1], &ctx).is_err());
        let u = user(&[
            ("msRTCSIP-UserEnabled", &["TRUE"]),
            ("msRTCSIP-PrimaryUserAddress", &["sip:a@example.com"]),
            ("msRTCSIP-PrimaryHomeServer", &[&p[0].home_server_dn()]),
        ]);
        assert_eq!(
            find(
                &u.move_to(&p[1], &ctx).unwrap(),
                "msRTCSIP-PrimaryHomeServer"
            )
            .unwrap(),
            [p[1].home_server_dn()]
        );
    }

    #[test]
    fn line_uris_are_tel_e164_with_an_extension_or_sip() {
        for ok in [
            "tel:+15551234567",
            "tel:+15551234567;ext=1234",
            "tel:+4930123456",
            "sip:jane.doe@example.com",
            "SIP:jane.doe@example.com",
        ] {
            assert!(check_line_uri(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("tel:+1 555 1234", "no spaces"),
            ("tel:+1-555-1234", "no spaces or dashes"),
            ("tel:15551234", "tel:+ and the E.164 number"),
            ("tel:+", "1 to 15 digits"),
            ("tel:+1234567890123456", "1 to 15 digits"),
            ("tel:+15551234;ext=", "extension after ;ext= must be digits"),
            (
                "tel:+15551234;ext=12a",
                "extension after ;ext= must be digits",
            ),
            ("sip:jane doe@example.com", "space"),
            ("sip:nodomain", "must be a SIP address"),
            ("5551234", "or a sip: URI"),
        ] {
            let err = check_line_uri(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains("msRTCSIP-Line"), "{bad}: {err}");
        }
        let u = user(&[("msRTCSIP-Line", &["tel:+1"])]);
        assert_eq!(u.line(), Some("tel:+1"));
        assert_eq!(
            u.set_line(None).unwrap(),
            vec![UserChange::new("msRTCSIP-Line", vec![])]
        );
        assert!(u.set_line(Some("tel:+1")).unwrap().is_empty());
    }

    #[test]
    fn archiving_is_0_4_8_or_12_and_the_retired_bits_are_refused() {
        for (v, want) in [("0", 0), ("4", 4), ("8", 8), ("12", 12)] {
            assert_eq!(check_archiving(v), Ok(want));
        }
        for v in ["1", "2", "3", "6", "13", "15"] {
            let err = check_archiving(v).unwrap_err().to_string();
            assert!(err.contains("bits 1 and 2 are retired"), "{v}: {err}");
        }
        for v in ["16", "-4", "x"] {
            assert!(check_archiving(v).is_err(), "{v}");
        }
        let u = user(&[]);
        assert_eq!(u.archiving(), Some(0));
        assert_eq!(
            u.set_archiving(12).unwrap(),
            vec![UserChange::new(
                "msRTCSIP-ArchivingEnabled",
                vec!["12".into()]
            )]
        );
        assert!(u.set_archiving(1).is_err());
        assert!(u.set_archiving(0).unwrap().len() == 1);
        let ctx = Context {
            pools: &[],
            sip_domains: &[],
        };
        let err = u
            .set_raw("msRTCSIP-ArchivingEnabled", vec!["2".into()], &ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("retired"), "{err}");
    }

    #[test]
    fn lync_views_are_read_and_never_written() {
        let u = user(&[
            ("msRTCSIP-DeploymentLocator", &["sipfed.online.lync.com"]),
            ("msRTCSIP-UserPolicies", &["0=1234", "1 = 99", "odd"]),
            (
                "msRTCSIP-TargetHomeServer",
                &["CN=LC Services,CN=Microsoft,CN=pool02,DC=x"],
            ),
        ]);
        assert_eq!(u.deployment_locator(), Some("sipfed.online.lync.com"));
        assert_eq!(
            u.target_home_server(),
            Some("CN=LC Services,CN=Microsoft,CN=pool02,DC=x")
        );
        let policies = u.user_policies();
        assert_eq!(policies.get("0").map(String::as_str), Some("1234"));
        assert_eq!(policies.get("1").map(String::as_str), Some("99"));
        assert_eq!(policies.get("odd").map(String::as_str), Some(""));
        let ctx = Context {
            pools: &[],
            sip_domains: &[],
        };
        for attr in ["msRTCSIP-DeploymentLocator", "msRTCSIP-UserPolicies"] {
            let err = u
                .set_raw(attr, vec!["x".into()], &ctx)
                .unwrap_err()
                .to_string();
            assert!(err.contains("read-only"), "{attr}: {err}");
        }
    }
}
