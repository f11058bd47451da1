//! Version strings shared by every applet.

/// The release version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from, when the build recorded one.
pub const COMMIT: &str = match option_env!("TUG_COMMIT") {
    Some(c) => c,
    None => "unknown",
};
