//! Images: references, layers, and the image store on the data root (an OCI image layout plus
//! unpacked layers). No HTTP here; the daemon maps [`Error`] kinds to statuses.

pub mod archive;
pub mod config;
pub mod distribution;
pub mod layer;
pub mod pull;
pub mod push;
pub mod reference;
pub mod store;

use std::fmt;
use std::io;

/// An image operation's failure; the variant picks the HTTP status (404, 409, 400, 500).
#[derive(Debug)]
pub enum Error {
    /// `No such image: busybox:latest`.
    NotFound(String),
    /// In use, or would leave the store inconsistent without force.
    Conflict(String),
    /// Bad reference, archive, layer or change instruction.
    InvalidInput(String),
    /// The host failed us (disk, permissions), or a registry could not be reached.
    Io(String),
    /// A registry refused the credentials (or their absence).
    Unauthorized(String),
}

impl Error {
    /// Wraps an io error with context; `InvalidData` (a corrupt or hostile input) becomes `InvalidInput`.
    pub fn io(context: impl fmt::Display, e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => Error::InvalidInput(format!("{context}: {e}")),
            _ => Error::Io(format!("{context}: {e}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(m)
            | Error::Conflict(m)
            | Error::InvalidInput(m)
            | Error::Io(m)
            | Error::Unauthorized(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::io("image store", e)
    }
}

#[cfg(test)]
mod tests;
