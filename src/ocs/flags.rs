//! `msRTCSIP-OptionFlags`: the named feature bits and the rules for changing them.
//!
//! Old provisioning scripts overwrote the whole value and so lost bits the console had
//! set. ocsh only ORs bits in: a new value may drop a bit only when the script cleared
//! that bit by name, and enhanced presence (256) can never be dropped once set.

use std::fmt;

use super::OcsError;

/// One documented OptionFlags bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// 1: public IM connectivity.
    PublicIm,
    /// 16: remote call control.
    RemoteCallControl,
    /// 64: may organise meetings with anonymous participants.
    AnonymousMeetings,
    /// 128: Enterprise Voice.
    EnterpriseVoice,
    /// 256: enhanced presence; required by Communicator 2007 R2; never cleared once set.
    EnhancedPresence,
    /// 512: remote call control dual mode.
    RccDualMode,
}

impl Flag {
    /// Every documented bit, in bit order.
    pub const ALL: [Flag; 6] = [
        Flag::PublicIm,
        Flag::RemoteCallControl,
        Flag::AnonymousMeetings,
        Flag::EnterpriseVoice,
        Flag::EnhancedPresence,
        Flag::RccDualMode,
    ];

    /// The bit value.
    pub fn bit(self) -> u32 {
        match self {
            Flag::PublicIm => 1,
            Flag::RemoteCallControl => 16,
            Flag::AnonymousMeetings => 64,
            Flag::EnterpriseVoice => 128,
            Flag::EnhancedPresence => 256,
            Flag::RccDualMode => 512,
        }
    }

    /// The name scripts use.
    pub fn name(self) -> &'static str {
        match self {
            Flag::PublicIm => "public_im",
            Flag::RemoteCallControl => "remote_call_control",
            Flag::AnonymousMeetings => "anonymous_meetings",
            Flag::EnterpriseVoice => "enterprise_voice",
            Flag::EnhancedPresence => "enhanced_presence",
            Flag::RccDualMode => "rcc_dual_mode",
        }
    }

    /// What the bit means, for help texts.
    pub fn meaning(self) -> &'static str {
        match self {
            Flag::PublicIm => "public IM connectivity",
            Flag::RemoteCallControl => "remote call control (telephony)",
            Flag::AnonymousMeetings => "may organise meetings with anonymous participants",
            Flag::EnterpriseVoice => "Enterprise Voice (unified communications)",
            Flag::EnhancedPresence => {
                "enhanced presence; required to sign in with Communicator 2007 R2"
            }
            Flag::RccDualMode => "remote call control dual mode",
        }
    }

    /// Looks a flag up by name (any case, `-` or `_`).
    pub fn from_name(name: &str) -> Result<Flag, OcsError> {
        let wanted = name.trim().to_ascii_lowercase().replace('-', "_");
        Flag::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| {
                OcsError::InvalidFlags(format!(
                    "unknown flag name {name:?}; the flags are {}",
                    Flag::ALL.map(Flag::name).join(", ")
                ))
            })
    }
}

/// Bits 2, 4, 8 (reserved) and 32 (undocumented): never written by ocsh.
pub const RESERVED_BITS: u32 = 2 | 4 | 8 | 32;
const KNOWN_BITS: u32 = 1 | 16 | 64 | 128 | 256 | 512;

/// An OptionFlags value.
///
/// ```
/// use ocsh::ocs::{Flag, Flags};
/// let mut f = Flags::from_stored(256); // what the console wrote
/// f.set(Flag::PublicIm, true).unwrap();
/// assert_eq!(f.to_string(), "257 (public_im, enhanced_presence)");
/// assert_eq!(f.apply_to(Some(256)).unwrap(), 257);
/// // the seed's 512 written over it would clear enhanced presence: refused
/// assert!(Flags::new(512).unwrap().apply_to(Some(256)).is_err());
/// ```
///
/// `cleared` records the bits a script cleared by name, the only bits a write may drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    value: u32,
    cleared: u32,
}

impl Flags {
    /// A value written by a script: reserved, undocumented and unknown bits are refused.
    pub fn new(value: i64) -> Result<Flags, OcsError> {
        let v = u32::try_from(value).map_err(|_| {
            OcsError::InvalidFlags(format!(
                "OptionFlags must be a non-negative 32-bit integer, not {value}"
            ))
        })?;
        let reserved = v & RESERVED_BITS;
        if reserved != 0 {
            return Err(OcsError::InvalidFlags(format!(
                "OptionFlags {v} sets reserved or undocumented bit(s) {}; ocsh never writes bits 2, 4, 8 or 32",
                bits_list(reserved)
            )));
        }
        let unknown = v & !KNOWN_BITS & !RESERVED_BITS;
        if unknown != 0 {
            return Err(OcsError::InvalidFlags(format!(
                "OptionFlags {v} sets unknown bit(s) {}; the documented bits are 1, 16, 64, 128, 256 and 512",
                bits_list(unknown)
            )));
        }
        Ok(Flags {
            value: v,
            cleared: 0,
        })
    }

    /// A value read from the directory, kept as it is even with reserved bits, so that a
    /// write-back never loses what was there.
    pub fn from_stored(value: i64) -> Flags {
        // AD's Integer syntax is signed 32-bit; a negative value is the same bits.
        Flags {
            value: value as u32,
            cleared: 0,
        }
    }

    /// The value with the named flags set.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Flags, OcsError> {
        let mut value = 0;
        for n in names {
            value |= Flag::from_name(n.as_ref())?.bit();
        }
        Ok(Flags { value, cleared: 0 })
    }

    /// The integer value.
    pub fn value(self) -> u32 {
        self.value
    }

    /// True when `flag` is set.
    pub fn has(self, flag: Flag) -> bool {
        self.value & flag.bit() != 0
    }

    /// The names of the set bits, documented ones by name and others as `bit_N`.
    pub fn names(self) -> Vec<String> {
        let mut out = Vec::new();
        for bit in (0..32).map(|i| 1u32 << i) {
            if self.value & bit == 0 {
                continue;
            }
            match Flag::ALL.into_iter().find(|f| f.bit() == bit) {
                Some(f) => out.push(f.name().to_string()),
                None => out.push(format!("bit_{bit}")),
            }
        }
        out
    }

    /// Sets or clears `flag`. Clearing enhanced presence is refused: once set it stays.
    pub fn set(&mut self, flag: Flag, on: bool) -> Result<(), OcsError> {
        if on {
            self.value |= flag.bit();
            self.cleared &= !flag.bit();
        } else if self.has(flag) {
            if flag == Flag::EnhancedPresence {
                return Err(enhanced_presence_error(
                    self.value,
                    self.value & !flag.bit(),
                ));
            }
            self.value &= !flag.bit();
            self.cleared |= flag.bit();
        }
        Ok(())
    }

    /// The bits of both values (`f | flags(1)`).
    pub fn union(self, other: Flags) -> Flags {
        Flags {
            value: self.value | other.value,
            cleared: (self.cleared | other.cleared) & !other.value,
        }
    }

    /// The value to store when `current` (the stored value, if any) becomes `self`:
    /// refused when it would drop a bit not cleared by name, or drop enhanced presence.
    pub fn apply_to(self, current: Option<u32>) -> Result<u32, OcsError> {
        let Some(current) = current else {
            return Ok(self.value);
        };
        let dropped = current & !self.value;
        if dropped & Flag::EnhancedPresence.bit() != 0 {
            return Err(enhanced_presence_error(current, self.value));
        }
        let silently_dropped = dropped & !self.cleared;
        if silently_dropped != 0 {
            let wanted = Flags::from_stored(i64::from(self.value));
            let added = Flags::from_stored(i64::from(self.value & !current));
            return Err(OcsError::FlagsOverwrite(format!(
                "writing OptionFlags {} over {} would clear {}; OptionFlags bits are OR-ed in, never overwritten: \
                 write u.flags = u.flags | flags({}) to add bits, or clear a bit by name (u.flags.{} = false)",
                wanted,
                Flags::from_stored(i64::from(current)),
                Flags::from_stored(i64::from(silently_dropped))
                    .names()
                    .join(", "),
                added.value,
                Flags::from_stored(i64::from(silently_dropped))
                    .names()
                    .first()
                    .map_or("public_im", String::as_str),
            )));
        }
        Ok(self.value)
    }
}

/// Refuses a value without enhanced presence (256) for a user whose directory value has
/// it (`read`), whatever was staged in between: once set, 256 is never dropped, also not
/// by a remove followed by a raw write.
pub fn keeps_enhanced_presence(read: Option<u32>, value: u32) -> Result<(), OcsError> {
    let bit = Flag::EnhancedPresence.bit();
    match read {
        Some(r) if r & bit != 0 && value & bit == 0 => Err(enhanced_presence_error(r, value)),
        _ => Ok(()),
    }
}

fn enhanced_presence_error(current: u32, proposed: u32) -> OcsError {
    OcsError::FlagsOverwrite(format!(
        "OptionFlags {} cannot become {}: enhanced_presence (256) can never be cleared once set",
        Flags::from_stored(i64::from(current)),
        Flags::from_stored(i64::from(proposed)),
    ))
}

fn bits_list(bits: u32) -> String {
    (0..32)
        .map(|i| 1u32 << i)
        .filter(|b| bits & b != 0)
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Flags {
    /// `257 (public_im, enhanced_presence)`, or `0 (none)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            write!(f, "{} (none)", self.value)
        } else {
            write!(f, "{} ({})", self.value, names.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_names() {
        assert_eq!(
            Flags::new(257).unwrap().to_string(),
            "257 (public_im, enhanced_presence)"
        );
        assert_eq!(
            Flags::new(385).unwrap().to_string(),
            "385 (public_im, enterprise_voice, enhanced_presence)"
        );
        assert_eq!(Flags::new(0).unwrap().to_string(), "0 (none)");
        assert_eq!(
            Flags::from_stored(264).to_string(),
            "264 (bit_8, enhanced_presence)"
        );
    }

    #[test]
    fn reserved_and_unknown_bits_refused() {
        for v in [2, 4, 8, 32, 256 | 32] {
            let err = Flags::new(v).unwrap_err().to_string();
            assert!(err.contains("reserved"), "{v}: {err}");
        }
        assert!(
            Flags::new(1024)
                .unwrap_err()
                .to_string()
                .contains("unknown bit(s) 1024")
        );
        assert!(Flags::new(-1).is_err());
    }

    #[test]
    fn names_round_trip() {
        let f = Flags::from_names(&["enhanced_presence", "public_im"]).unwrap();
        assert_eq!(f.value(), 257);
        assert!(f.has(Flag::PublicIm));
        assert!(Flags::from_names(&["Enhanced-Presence"]).is_ok());
        assert!(
            Flags::from_names(&["presence"])
                .unwrap_err()
                .to_string()
                .contains("unknown flag name")
        );
    }

    #[test]
    fn or_in_is_allowed() {
        let f = Flags::from_stored(256).union(Flags::new(1).unwrap());
        assert_eq!(f.apply_to(Some(256)).unwrap(), 257);
        assert_eq!(Flags::new(512).unwrap().apply_to(None).unwrap(), 512);
    }

    #[test]
    fn overwrite_is_refused() {
        // the seed's 512 written over a console-made 256
        let err = Flags::new(512)
            .unwrap()
            .apply_to(Some(256))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("enhanced_presence (256) can never be cleared"),
            "{err}"
        );
        let err = Flags::new(256)
            .unwrap()
            .apply_to(Some(257))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("would clear public_im") && err.contains("OR-ed in"),
            "{err}"
        );
    }

    #[test]
    fn clearing_by_name_is_allowed_except_256() {
        let mut f = Flags::from_stored(385);
        f.set(Flag::PublicIm, false).unwrap();
        assert_eq!(f.apply_to(Some(385)).unwrap(), 384);
        let err = f
            .set(Flag::EnhancedPresence, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("can never be cleared"), "{err}");
        // clearing a bit that is not set is a no-op
        let mut g = Flags::from_stored(256);
        g.set(Flag::RccDualMode, false).unwrap();
        assert_eq!(g.value(), 256);
    }

    #[test]
    fn stored_reserved_bits_survive_a_write_back() {
        let mut f = Flags::from_stored(264);
        f.set(Flag::PublicIm, true).unwrap();
        assert_eq!(f.apply_to(Some(264)).unwrap(), 265);
    }
}
