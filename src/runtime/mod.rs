//! The OCI runtime: `tug-runtime` (runc-compatible verbs over a bundle) and `tug-init` (the
//! container process's setup). The daemon starts its containers through the same code.

pub mod caps;
pub mod cgroups;
pub mod cli;
pub mod console;
pub mod container;
pub mod defaults;
pub mod hooks;
pub mod init;
pub mod mounts;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sync;
