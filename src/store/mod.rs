//! The state tree under `--data-root` (DESIGN §3): every path, atomic writes, digests and the root
//! lock. Everything above it (images, containers, volumes) goes through here to touch disk.

pub mod atomic;
pub mod digest;
pub mod layout;
pub mod lock;

/// Fault injection for the crash tests: when the environment names this point in
/// `TUG_CRASH_AT`, the process kills itself with SIGKILL right here, as a power cut or an OOM
/// kill would, so the tests can show that the next start repairs or sweeps whatever was half
/// done. The variable is read once; unset, a point costs one comparison.
pub fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT.get_or_init(|| std::env::var("TUG_CRASH_AT").ok()).as_deref() == Some(name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
