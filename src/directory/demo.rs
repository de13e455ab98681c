//! The built-in demo forest: a small OCS 2007 R2 deployment with deliberately broken
//! users, the default directory when none is configured (see `docs/demo-forest.md`).

use super::{DirError, EmbeddedDirectory};

/// The demo forest as LDIF, as `ocsh demo FILE` writes it.
pub const DEMO_LDIF: &str = include_str!("demo-forest.ldif");

/// The demo forest as an in-memory directory.
pub fn demo_directory() -> Result<EmbeddedDirectory, DirError> {
    EmbeddedDirectory::from_ldif(DEMO_LDIF, "demo forest")
}
