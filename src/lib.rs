//! ocsh: safe, scriptable provisioning of Office Communications Server users through
//! Active Directory.
//!
//! Layers, one direction of dependency: [`ocs`] (pure rules) ← [`directory`] (one async
//! trait, embedded backend) ← [`plan`] (staged changes, validation, apply) ← [`script`]
//! (Rhai glue) ← [`cli`] (commands, output). [`replica`] (the replicator's SQLite store and
//! its sync cycles) depends on `ocs` and `directory` and is used by `script` and `cli`.

pub mod cli;
pub mod directory;
pub mod error;
pub mod ocs;
pub mod plan;
pub mod replica;
pub mod script;
