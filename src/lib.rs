//! ocsh: safe, scriptable provisioning of Office Communications Server users through
//! Active Directory.
//!
//! Layers, one direction of dependency: [`ocs`] (pure rules) ← [`directory`] (one async
//! trait, embedded and LDAP backends) ← `plan` (staged changes, validation, apply) ←
//! `script` (Rhai glue) ← `cli` (commands, output).

pub mod directory;
pub mod ocs;
