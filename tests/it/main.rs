//! The integration tests: one binary, one module per area. They run the built executable as root
//! (CI is root): real namespaces, mounts and cgroups.

mod applets;
mod client;
mod daemon;
mod engine;
mod monitor;
mod pull;
mod registry;
mod runtime;
mod util;
