//! The state tree under `--data-root` (DESIGN §3): every path, atomic writes, digests and the root
//! lock. Everything above it (images, containers, volumes) goes through here to touch disk.

pub mod atomic;
pub mod digest;
pub mod layout;
pub mod lock;
