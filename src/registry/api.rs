//! The OCI distribution API's vocabulary: error codes and their JSON body, the name, tag and
//! upload-id rules, and the parsing of a request path into a typed [`Route`]. Nothing here
//! touches storage, so routing is unit-tested on its own.

use serde_json::{json, Value};

/// An error answered as the spec's `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<Value>,
    /// Extra response headers (`WWW-Authenticate`, `Range`, `Location`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), detail: None, headers: Vec::new() }
    }

    pub fn detail(mut self, detail: Value) -> ApiError {
        self.detail = Some(detail);
        self
    }

    pub fn header(mut self, name: &'static str, value: String) -> ApiError {
        self.headers.push((name, value));
        self
    }

    pub fn blob_unknown(digest: &str) -> ApiError {
        ApiError::new(404, "BLOB_UNKNOWN", "blob unknown to registry").detail(json!({ "digest": digest }))
    }

    pub fn upload_unknown(uuid: &str) -> ApiError {
        ApiError::new(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry").detail(json!({ "uuid": uuid }))
    }

    pub fn manifest_unknown(reference: &str) -> ApiError {
        ApiError::new(404, "MANIFEST_UNKNOWN", "manifest unknown").detail(json!({ "reference": reference }))
    }

    pub fn name_unknown(name: &str) -> ApiError {
        ApiError::new(404, "NAME_UNKNOWN", "repository name not known to registry").detail(json!({ "name": name }))
    }

    pub fn digest_invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "DIGEST_INVALID", message)
    }

    pub fn manifest_invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "MANIFEST_INVALID", message)
    }

    pub fn unsupported(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "UNSUPPORTED", message)
    }

    /// A storage failure: the client learns only that it was the server's fault.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, "UNKNOWN", format!("{context}: {e}"))
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let mut e = json!({ "code": self.code, "message": self.message });
        if let Some(d) = &self.detail {
            e["detail"] = d.clone();
        }
        serde_json::to_vec(&json!({ "errors": [e] })).unwrap_or_default()
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::internal("storage error", e)
    }
}

/// The longest repository name distribution accepts.
const MAX_NAME: usize = 255;

/// Checks a repository name against the spec's grammar: `/`-separated components, each
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`. This also rules out `..`, empty components and anything
/// that could leave the storage tree.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run between two alphanumeric runs: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|s| s == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// An upload id as a path component: ours are UUIDs, distribution's too; never `.` or `..`.
pub fn valid_upload_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// What a request path names.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags { name: String },
    /// `/v2/<name>/manifests/<reference>`
    Manifest { name: String, reference: String },
    /// `/v2/<name>/blobs/<digest>`
    Blob { name: String, digest: String },
    /// `/v2/<name>/blobs/uploads/`
    Uploads { name: String },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload { name: String, id: String },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { name: String, digest: String },
}

/// Parses a request path. The name may itself contain `/`, so the endpoint is recognised from
/// the path's end; a name that fails the grammar is NAME_INVALID, an unknown shape is 404.
pub fn parse_route(path: &str) -> Result<Route, ApiError> {
    let not_found = || ApiError::new(404, "NOT_FOUND", format!("no such endpoint: {path}"));
    let rest = match path.strip_prefix("/v2") {
        Some("") | Some("/") => return Ok(Route::Base),
        Some(r) => r.strip_prefix('/').ok_or_else(not_found)?,
        None => return Err(not_found()),
    };
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name_of = |k: usize| -> Result<String, ApiError> {
        if k == 0 {
            return Err(not_found());
        }
        let name = segs[..k].join("/");
        if !valid_name(&name) {
            return Err(ApiError::new(400, "NAME_INVALID", "invalid repository name")
                .detail(serde_json::json!({ "name": name })));
        }
        Ok(name)
    };
    let at = |i: usize| if i < n { segs[i] } else { "" };
    if n >= 3 && at(n - 2) == "tags" && at(n - 1) == "list" {
        return Ok(Route::Tags { name: name_of(n - 2)? });
    }
    if n >= 3 && at(n - 3) == "blobs" && at(n - 2) == "uploads" && !at(n - 1).contains(':') {
        let name = name_of(n - 3)?;
        let id = at(n - 1);
        if id.is_empty() {
            return Ok(Route::Uploads { name });
        }
        if !valid_upload_id(id) {
            return Err(ApiError::upload_unknown(id));
        }
        return Ok(Route::Upload { name, id: id.to_string() });
    }
    if n >= 3 && at(n - 2) == "blobs" && at(n - 1) == "uploads" {
        // `POST /v2/<name>/blobs/uploads` without the trailing slash.
        return Ok(Route::Uploads { name: name_of(n - 2)? });
    }
    if n >= 2 {
        let last = at(n - 1).to_string();
        match at(n - 2) {
            "manifests" if !last.is_empty() => return Ok(Route::Manifest { name: name_of(n - 2)?, reference: last }),
            "blobs" if !last.is_empty() => return Ok(Route::Blob { name: name_of(n - 2)?, digest: last }),
            "referrers" if !last.is_empty() => return Ok(Route::Referrers { name: name_of(n - 2)?, digest: last }),
            _ => {}
        }
    }
    Err(not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for good in ["a", "library/busybox", "a-b", "a--b", "a_b", "a__b", "a.b", "x/y/z0", "0"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "A", "a/../b", "..", "a/", "/a", "a//b", "-a", "a-", "a___b", "a._b", "a b", "_a", "a%2f"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(!valid_name(&"a".repeat(256)));
        assert!(valid_tag("v1.0_rc-2") && valid_tag("_x") && !valid_tag(".x") && !valid_tag("a/b"));
        assert!(!valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn routes_are_recognised_from_the_end() {
        assert_eq!(parse_route("/v2/").unwrap(), Route::Base);
        assert_eq!(parse_route("/v2").unwrap(), Route::Base);
        assert_eq!(parse_route("/v2/_catalog").unwrap(), Route::Catalog);
        assert_eq!(parse_route("/v2/a/b/tags/list").unwrap(), Route::Tags { name: "a/b".into() });
        assert_eq!(
            parse_route("/v2/a/manifests/latest").unwrap(),
            Route::Manifest { name: "a".into(), reference: "latest".into() }
        );
        assert_eq!(parse_route("/v2/a/blobs/uploads/").unwrap(), Route::Uploads { name: "a".into() });
        assert_eq!(parse_route("/v2/a/blobs/uploads").unwrap(), Route::Uploads { name: "a".into() });
        assert_eq!(
            parse_route("/v2/a/blobs/uploads/1234-ab").unwrap(),
            Route::Upload { name: "a".into(), id: "1234-ab".into() }
        );
        // A repository may be called `blobs/uploads`.
        assert_eq!(
            parse_route("/v2/blobs/uploads/blobs/sha256:00").unwrap(),
            Route::Blob { name: "blobs/uploads".into(), digest: "sha256:00".into() }
        );
        assert_eq!(
            parse_route("/v2/x/referrers/sha256:00").unwrap(),
            Route::Referrers { name: "x".into(), digest: "sha256:00".into() }
        );
        assert_eq!(parse_route("/v2/UPPER/tags/list").unwrap_err().code, "NAME_INVALID");
        assert_eq!(parse_route("/v2/a/../b/tags/list").unwrap_err().code, "NAME_INVALID");
        assert_eq!(parse_route("/v2/a/blobs/uploads/..").unwrap_err().code, "BLOB_UPLOAD_UNKNOWN");
        assert_eq!(parse_route("/v1/x").unwrap_err().status, 404);
        assert_eq!(parse_route("/v2/a/nothing").unwrap_err().status, 404);
    }

    #[test]
    fn error_body_is_the_spec_shape() {
        let e = ApiError::blob_unknown("sha256:00");
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(v["errors"][0]["detail"]["digest"], "sha256:00");
    }
}
