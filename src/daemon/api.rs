//! Engine API plumbing shared by every handler: errors with their HTTP status, the response
//! writer with Docker's common headers, and API version handling.

use std::io::{self, Write};

use super::http::{write_head, Chunked, Stream};

/// The API version advertised; clients negotiate down from their own maximum.
pub const API_VERSION: &str = "1.44";
/// The oldest version accepted in a `/v1.NN/` path prefix.
pub const MIN_API_VERSION: &str = "1.24";

/// An error answered as `{"message": …}` with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(400, m)
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(404, m)
    }
    pub fn conflict(m: impl Into<String>) -> ApiError {
        ApiError::new(409, m)
    }
    pub fn internal(m: impl Into<String>) -> ApiError {
        ApiError::new(500, m)
    }
}

impl From<io::Error> for ApiError {
    fn from(e: io::Error) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

pub type ApiResult = Result<(), ApiError>;

/// Headers every Engine API response carries.
fn common_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Api-Version", API_VERSION.to_string()),
        ("Docker-Experimental", "false".to_string()),
        ("Ostype", "linux".to_string()),
        ("Server", format!("tug/{} (linux)", crate::version::VERSION)),
    ]
}

/// Writes one response on a connection and remembers whether it has.
pub struct Responder<'a> {
    pub(super) w: &'a mut Stream,
    pub(super) sent: bool,
    /// Set when the connection cannot carry another request (hijacked, or closed by us).
    pub(super) done: bool,
    pub(super) head_only: bool,
}

impl<'a> Responder<'a> {
    pub fn new(w: &'a mut Stream, head_only: bool) -> Responder<'a> {
        Responder { w, sent: false, done: false, head_only }
    }

    /// Whether a response (or part of one) went out already.
    pub fn sent(&self) -> bool {
        self.sent
    }

    /// A complete response with a body of known length.
    pub fn bytes(&mut self, status: u16, content_type: &str, body: &[u8], extra: &[(&str, String)]) -> io::Result<()> {
        self.sent = true;
        let mut h = common_headers();
        h.push(("Content-Type", content_type.to_string()));
        h.push(("Content-Length", body.len().to_string()));
        h.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        write_head(self.w, status, &h)?;
        if !self.head_only {
            self.w.write_all(body)?;
        }
        Ok(())
    }

    pub fn json(&mut self, status: u16, v: &serde_json::Value) -> io::Result<()> {
        let mut body = serde_json::to_vec(v).map_err(io::Error::other)?;
        body.push(b'\n');
        self.bytes(status, "application/json", &body, &[])
    }

    /// 204 or another status without a body.
    pub fn empty(&mut self, status: u16) -> io::Result<()> {
        self.sent = true;
        let mut h = common_headers();
        if status != 204 && status != 304 {
            h.push(("Content-Length", "0".to_string()));
        }
        write_head(self.w, status, &h)
    }

    pub fn error(&mut self, e: &ApiError) -> io::Result<()> {
        self.json(e.status, &serde_json::json!({ "message": e.message }))
    }

    /// Starts a chunked response whose headers leave at once; every write is flushed as a chunk.
    pub fn stream(&mut self, status: u16, content_type: &str, extra: &[(&str, String)]) -> io::Result<Chunked<'_>> {
        self.sent = true;
        let mut h = common_headers();
        h.push(("Content-Type", content_type.to_string()));
        h.push(("Transfer-Encoding", "chunked".to_string()));
        h.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        write_head(self.w, status, &h)?;
        Ok(Chunked::new(self.w))
    }

    /// Takes over the connection (`101 UPGRADED`, or a 200 raw stream for clients that did not ask
    /// to upgrade); the caller then owns both directions.
    pub fn hijack(&mut self, upgrade: bool, content_type: &str) -> io::Result<&mut Stream> {
        self.sent = true;
        self.done = true;
        let mut h = common_headers();
        h.push(("Content-Type", content_type.to_string()));
        if upgrade {
            h.push(("Connection", "Upgrade".to_string()));
            h.push(("Upgrade", "tcp".to_string()));
            write_head(self.w, 101, &h)?;
        } else {
            write_head(self.w, 200, &h)?;
        }
        Ok(self.w)
    }
}

/// Splits `/v1.44/containers/json` into the version (if any) and the path after it; `None` for
/// a version outside what is served.
pub fn split_version(path: &str) -> Result<(Option<String>, &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else { return Ok((None, path)) };
    let Some((ver, tail)) = rest.split_once('/') else { return Ok((None, path)) };
    let mut it = ver.split('.');
    let (Some(maj), Some(min), None) = (it.next(), it.next(), it.next()) else { return Ok((None, path)) };
    let (Ok(maj), Ok(min)) = (maj.parse::<u32>(), min.parse::<u32>()) else { return Ok((None, path)) };
    if (maj, min) < (1, 24) {
        return Err(ApiError::bad_request(format!(
            "client version {maj}.{min} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    // A newer client version is served with this daemon's semantics rather than refused.
    let at = path.len() - tail.len() - 1;
    Ok((Some(format!("{maj}.{min}")), &path[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(split_version("/v1.44/containers/json").unwrap(), (Some("1.44".into()), "/containers/json"));
        assert_eq!(split_version("/v1.51/info").unwrap(), (Some("1.51".into()), "/info"));
        assert_eq!(split_version("/_ping").unwrap(), (None, "/_ping"));
        assert_eq!(split_version("/volumes/v1.2").unwrap(), (None, "/volumes/v1.2"));
        assert_eq!(split_version("/v1.12/info").unwrap_err().status, 400);
    }
}
