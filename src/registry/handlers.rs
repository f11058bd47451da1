//! The endpoints of the OCI distribution spec v1.1: one function per method and path, named as
//! the spec's table lists them, each turning a request into a [`Response`] or an [`ApiError`].

use std::fs::File;
use std::io::{self, Read};

use serde_json::{json, Value};

use super::api::{parse_route, valid_name, valid_tag, ApiError, Route};
use super::manifest::{self, Manifest, OCI_INDEX};
use super::storage::{range_header, Storage};
use crate::daemon::http::Head;
use crate::store::digest::Digest;

/// The largest manifest accepted on push.
pub const MAX_MANIFEST: usize = 4 << 20;

/// The catalog's page size when the client gives no `n`, and the most it may ask for.
const CATALOG_PAGE: usize = 1000;
const CATALOG_MAX: usize = 10_000;

/// How deep an index's children are followed when refreshing what a push references.
const MAX_INDEX_DEPTH: usize = 4;

/// What a response carries after its head.
pub enum Payload {
    /// No body.
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `offset`, streamed.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
    /// A HEAD answer: the length the GET would have, and no body.
    Head(u64),
}

/// A response: status, headers and body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Payload,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), payload: Payload::Empty }
    }

    pub fn json(status: u16, v: &Value) -> Response {
        Response::new(status)
            .header("Content-Type", "application/json; charset=utf-8".into())
            .payload(Payload::Bytes(serde_json::to_vec(v).unwrap_or_default()))
    }

    pub fn header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }

    pub fn payload(mut self, p: Payload) -> Response {
        self.payload = p;
        self
    }

    /// The answer to a failed request.
    pub fn error(e: &ApiError) -> Response {
        let mut r = Response::new(e.status)
            .header("Content-Type", "application/json; charset=utf-8".into())
            .payload(Payload::Bytes(e.body()));
        r.headers.extend(e.headers.iter().cloned());
        r
    }
}

/// What the handlers share.
pub struct Registry {
    pub storage: Storage,
    pub read_only: bool,
}

/// Routes one request. `body` is the request body, read only by the endpoints that take one.
pub fn handle(reg: &Registry, head: &Head, body: &mut dyn Read) -> Result<Response, ApiError> {
    let route = parse_route(&head.path)?;
    let m = head.method.as_str();
    if matches!(m, "POST" | "PUT" | "PATCH" | "DELETE") && reg.read_only {
        return Err(ApiError::unsupported("the registry is in read-only mode"));
    }
    let is_head = m == "HEAD";
    match (m, route) {
        ("GET" | "HEAD", Route::Base) => Ok(Response::json(200, &json!({}))),
        ("GET", Route::Catalog) => get_catalog(reg, head),
        ("GET", Route::Tags { name }) => get_tags_list(reg, head, &name),
        ("GET" | "HEAD", Route::Manifest { name, reference }) => get_manifest(reg, &name, &reference, is_head),
        ("PUT", Route::Manifest { name, reference }) => put_manifest(reg, head, body, &name, &reference),
        ("DELETE", Route::Manifest { name, reference }) => delete_manifest(reg, &name, &reference),
        ("GET" | "HEAD", Route::Blob { name, digest }) => get_blob(reg, head, &name, &digest, is_head),
        ("DELETE", Route::Blob { name, digest }) => delete_blob(reg, &name, &digest),
        ("POST", Route::Uploads { name }) => post_blob_upload(reg, head, body, &name),
        ("GET", Route::Upload { name, id }) => get_blob_upload(reg, &name, &id),
        ("PATCH", Route::Upload { name, id }) => patch_blob_upload(reg, head, body, &name, &id),
        ("PUT", Route::Upload { name, id }) => put_blob_upload(reg, head, body, &name, &id),
        ("DELETE", Route::Upload { name, id }) => delete_blob_upload(reg, &name, &id),
        ("GET", Route::Referrers { name, digest }) => get_referrers(reg, head, &name, &digest),
        _ => Err(ApiError::unsupported(format!("{m} is not supported on {}", head.path))),
    }
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| ApiError::digest_invalid(e).detail(json!({ "digest": s })))
}

/// A reference is a digest when it has an algorithm prefix, else a tag.
fn is_digest_ref(reference: &str) -> bool {
    reference.contains(':')
}

/// `n` as the pagination endpoints take it.
fn page_size(head: &Head) -> Result<Option<usize>, ApiError> {
    match head.param("n") {
        None | Some("") => Ok(None),
        Some(n) => n
            .parse::<usize>()
            .map(Some)
            .map_err(|_| ApiError::new(400, "PAGINATION_NUMBER_INVALID", format!("invalid page size n={n}"))),
    }
}

/// The page of sorted `items` after `last`, at most `n` long, and whether more follow.
fn paginate(items: Vec<String>, last: Option<&str>, n: Option<usize>) -> (Vec<String>, bool) {
    let rest: Vec<String> = items.into_iter().filter(|i| last.is_none_or(|l| i.as_str() > l)).collect();
    match n {
        Some(n) if rest.len() > n => (rest[..n].to_vec(), true),
        _ => (rest, false),
    }
}

/// `GET /v2/_catalog?n=&last=`
fn get_catalog(reg: &Registry, head: &Head) -> Result<Response, ApiError> {
    let n = page_size(head)?.unwrap_or(CATALOG_PAGE).min(CATALOG_MAX);
    let (page, more) = paginate(reg.storage.repository_names(), head.param("last"), Some(n));
    let mut r = Response::json(200, &json!({ "repositories": page }));
    if more {
        let last = page.last().cloned().unwrap_or_default();
        r = r.header("Link", format!("</v2/_catalog?last={last}&n={n}>; rel=\"next\""));
    }
    Ok(r)
}

/// `GET /v2/<name>/tags/list?n=&last=`
fn get_tags_list(reg: &Registry, head: &Head, name: &str) -> Result<Response, ApiError> {
    let n = page_size(head)?;
    let tags = reg.storage.tags(name).ok_or_else(|| ApiError::name_unknown(name))?;
    let (page, more) = paginate(tags, head.param("last"), n);
    let mut r = Response::json(200, &json!({ "name": name, "tags": page }));
    if let (true, Some(n), Some(last)) = (more, n, page.last()) {
        r = r.header("Link", format!("</v2/{name}/tags/list?last={last}&n={n}>; rel=\"next\""));
    }
    Ok(r)
}

/// The digest a manifest reference names in a repository.
fn resolve(reg: &Registry, name: &str, reference: &str) -> Result<Digest, ApiError> {
    if is_digest_ref(reference) {
        return parse_digest(reference);
    }
    if !valid_tag(reference) {
        return Err(ApiError::manifest_unknown(reference));
    }
    match reg.storage.resolve_tag(name, reference) {
        Some(d) => Ok(d),
        None if !reg.storage.repo_exists(name) => Err(ApiError::name_unknown(name)),
        None => Err(ApiError::manifest_unknown(reference)),
    }
}

/// `GET|HEAD /v2/<name>/manifests/<reference>`
fn get_manifest(reg: &Registry, name: &str, reference: &str, is_head: bool) -> Result<Response, ApiError> {
    let d = resolve(reg, name, reference)?;
    let Some(bytes) = reg.storage.manifest(name, &d) else {
        if !reg.storage.repo_exists(name) {
            return Err(ApiError::name_unknown(name));
        }
        return Err(ApiError::manifest_unknown(reference));
    };
    let r = Response::new(200)
        .header("Content-Type", manifest::media_type_of(&bytes))
        .header("Docker-Content-Digest", d.to_string())
        .header("Etag", format!("\"{d}\""));
    Ok(r.payload(if is_head { Payload::Head(bytes.len() as u64) } else { Payload::Bytes(bytes) }))
}

/// `PUT /v2/<name>/manifests/<reference>`: validated, its references checked, then stored.
fn put_manifest(
    reg: &Registry,
    head: &Head,
    body: &mut dyn Read,
    name: &str,
    reference: &str,
) -> Result<Response, ApiError> {
    let too_big = || ApiError::new(413, "MANIFEST_INVALID", format!("manifest larger than {MAX_MANIFEST} bytes"));
    if head.content_length.is_some_and(|n| n > MAX_MANIFEST as u64) {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    body.take(MAX_MANIFEST as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ApiError::manifest_invalid(format!("reading the manifest: {e}")))?;
    if bytes.len() > MAX_MANIFEST {
        return Err(too_big());
    }
    let m = manifest::parse(&bytes, head.header("Content-Type")).map_err(ApiError::manifest_invalid)?;
    let d = Digest::of(&bytes);
    let tag = if is_digest_ref(reference) {
        let want = parse_digest(reference)?;
        if want != d {
            return Err(ApiError::digest_invalid("manifest digest did not match the reference")
                .detail(json!({ "expected": want.as_str(), "computed": d.as_str() })));
        }
        None
    } else if valid_tag(reference) {
        Some(reference)
    } else {
        return Err(
            ApiError::manifest_invalid(format!("invalid tag {reference:?}")).detail(json!({ "tag": reference }))
        );
    };
    // Checked once to fail fast, and again under the commit guard, refreshing what the manifest
    // reaches so that a gc running meanwhile keeps it.
    check_references(&reg.storage, name, &m, false, 0)?;
    reg.storage.put_manifest(name, &bytes, &d, tag, || check_references(&reg.storage, name, &m, true, 0))?;
    let mut r = Response::new(201)
        .header("Location", format!("/v2/{name}/manifests/{d}"))
        .header("Docker-Content-Digest", d.to_string());
    if let Some(s) = &m.subject {
        r = r.header("OCI-Subject", s.to_string());
    }
    Ok(r)
}

/// Every blob of `m` must be in the repository and every child manifest a revision of it
/// (MANIFEST_BLOB_UNKNOWN otherwise). With `touch`, each is marked fresh for gc, down through
/// an index's children.
fn check_references(s: &Storage, name: &str, m: &Manifest, touch: bool, depth: usize) -> Result<(), ApiError> {
    let unknown = |d: &Digest| {
        ApiError::new(400, "MANIFEST_BLOB_UNKNOWN", "manifest references a blob unknown to the repository")
            .detail(json!({ "digest": d.as_str() }))
    };
    for b in &m.blobs {
        if s.repo_blob(name, b).is_none() || (touch && !s.touch_blob(b)?) {
            return Err(unknown(b));
        }
    }
    for c in &m.children {
        if !s.has_revision(name, c) {
            return Err(unknown(c));
        }
        if touch {
            s.touch_revision(name, c)?;
            s.touch_blob(c)?;
            if depth < MAX_INDEX_DEPTH {
                if let Some(child) = s.manifest(name, c).and_then(|b| manifest::read(&b).ok()) {
                    check_references(s, name, &child, true, depth + 1)?;
                }
            }
        }
    }
    Ok(())
}

/// `DELETE /v2/<name>/manifests/<reference>`: a digest removes the revision and its tags, a tag
/// only the tag.
fn delete_manifest(reg: &Registry, name: &str, reference: &str) -> Result<Response, ApiError> {
    if is_digest_ref(reference) {
        let d = parse_digest(reference)?;
        if !reg.storage.delete_manifest(name, &d)? {
            return Err(ApiError::manifest_unknown(reference));
        }
        return Ok(Response::new(202).header("Docker-Content-Digest", d.to_string()));
    }
    if !(valid_tag(reference) && reg.storage.delete_tag(name, reference)?) {
        return Err(ApiError::manifest_unknown(reference));
    }
    Ok(Response::new(202))
}

/// `GET|HEAD /v2/<name>/blobs/<digest>`, with single `Range` requests answered 206 (or 416).
fn get_blob(reg: &Registry, head: &Head, name: &str, digest: &str, is_head: bool) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    let unknown = || ApiError::blob_unknown(digest);
    let size = reg.storage.repo_blob(name, &d).ok_or_else(unknown)?;
    let base = |status| {
        Response::new(status)
            .header("Content-Type", "application/octet-stream".into())
            .header("Docker-Content-Digest", d.to_string())
            .header("Etag", format!("\"{d}\""))
            .header("Accept-Ranges", "bytes".into())
    };
    let range = match head.header("Range") {
        None => None,
        Some(h) => match parse_range(h, size) {
            RangeReq::Ignore => None,
            RangeReq::Unsatisfiable => {
                return Err(ApiError::new(416, "RANGE_INVALID", format!("range {h} is outside the blob"))
                    .header("Content-Range", format!("bytes */{size}")));
            }
            RangeReq::Bytes(a, b) => Some((a, b)),
        },
    };
    let (status, offset, len) = match range {
        Some((a, b)) => (206, a, b - a + 1),
        None => (200, 0, size),
    };
    let mut r = base(status);
    if let Some((a, b)) = range {
        r = r.header("Content-Range", format!("bytes {a}-{b}/{size}"));
    }
    if is_head {
        return Ok(r.payload(Payload::Head(len)));
    }
    let file = File::open(reg.storage.blob_data(&d)).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => unknown(),
        _ => ApiError::from(e),
    })?;
    Ok(r.payload(Payload::File { file, offset, len }))
}

/// A `Range` request header, judged against a blob of `size` bytes.
#[derive(Debug, PartialEq)]
enum RangeReq {
    /// Malformed or several ranges: answered with the whole blob (RFC 9110 allows ignoring).
    Ignore,
    Unsatisfiable,
    /// First and last byte, inclusive.
    Bytes(u64, u64),
}

fn parse_range(h: &str, size: u64) -> RangeReq {
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return RangeReq::Ignore };
    if spec.contains(',') {
        return RangeReq::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeReq::Ignore };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // A suffix: the last `b` bytes.
        return match b.parse::<u64>() {
            Ok(0) => RangeReq::Unsatisfiable,
            Ok(_) if size == 0 => RangeReq::Unsatisfiable,
            Ok(n) => RangeReq::Bytes(size - n.min(size), size - 1),
            Err(_) => RangeReq::Ignore,
        };
    }
    let Ok(start) = a.parse::<u64>() else { return RangeReq::Ignore };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return RangeReq::Ignore,
        }
    };
    if start >= size {
        return RangeReq::Unsatisfiable;
    }
    RangeReq::Bytes(start, end.min(size - 1))
}

/// `DELETE /v2/<name>/blobs/<digest>`: unlinks the blob from the repository; gc frees it.
fn delete_blob(reg: &Registry, name: &str, digest: &str) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    if !reg.storage.unlink_blob(name, &d)? {
        return Err(ApiError::blob_unknown(digest));
    }
    Ok(Response::new(202).header("Docker-Content-Digest", d.to_string()))
}

/// The answer to a blob that is now in the repository.
fn blob_created(name: &str, d: &Digest) -> Response {
    Response::new(201)
        .header("Location", format!("/v2/{name}/blobs/{d}"))
        .header("Docker-Content-Digest", d.to_string())
}

/// The answer describing an upload session.
fn upload_state(status: u16, name: &str, id: &str, size: u64) -> Response {
    Response::new(status)
        .header("Location", format!("/v2/{name}/blobs/uploads/{id}"))
        .header("Range", range_header(size))
        .header("Docker-Upload-UUID", id.to_string())
}

/// `POST /v2/<name>/blobs/uploads/`: a cross-repository mount (`?mount=&from=`), a monolithic
/// upload (`?digest=` with the body), or the start of a session.
fn post_blob_upload(reg: &Registry, head: &Head, body: &mut dyn Read, name: &str) -> Result<Response, ApiError> {
    let s = &reg.storage;
    if let Some(mount) = head.param("mount") {
        let d = parse_digest(mount)?;
        if let Some(from) = head.param("from").filter(|f| valid_name(f)) {
            if s.repo_blob(from, &d).is_some() {
                let _g = s.commit_guard()?;
                if s.link_blob(name, &d)? {
                    return Ok(blob_created(name, &d));
                }
            }
        }
        // Not mountable: the client gets a session and uploads the blob (spec: 202 fallback).
    } else if let Some(digest) = head.param("digest") {
        let d = parse_digest(digest)?;
        let id = s.start_upload(name)?;
        let result = s.append(name, &id, None, body).and_then(|_| s.finish_upload(name, &id, &d));
        if result.is_err() {
            let _ = s.cancel_upload(name, &id);
        }
        result?;
        return Ok(blob_created(name, &d));
    }
    let id = s.start_upload(name)?;
    Ok(upload_state(202, name, &id, 0))
}

/// `GET /v2/<name>/blobs/uploads/<id>`: how much has arrived.
fn get_blob_upload(reg: &Registry, name: &str, id: &str) -> Result<Response, ApiError> {
    let size = reg.storage.upload_size(name, id)?;
    Ok(upload_state(204, name, id, size))
}

/// The start offset a `Content-Range: <start>-<end>` names, checked against Content-Length.
fn chunk_start(head: &Head) -> Result<Option<u64>, ApiError> {
    let Some(cr) = head.header("Content-Range") else { return Ok(None) };
    let spec = cr.trim().trim_start_matches("bytes").trim_start_matches(['=', ' ']);
    let spec = spec.split('/').next().unwrap_or("");
    let bad = || ApiError::new(416, "RANGE_INVALID", format!("invalid Content-Range {cr:?}"));
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    if let Some(len) = head.content_length {
        if len != b - a + 1 {
            return Err(ApiError::new(400, "SIZE_INVALID", "Content-Range and Content-Length disagree")
                .detail(json!({ "range": cr, "length": len })));
        }
    }
    Ok(Some(a))
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`: one chunk, ranged or streamed.
fn patch_blob_upload(
    reg: &Registry,
    head: &Head,
    body: &mut dyn Read,
    name: &str,
    id: &str,
) -> Result<Response, ApiError> {
    reg.storage.upload_size(name, id)?;
    let start = chunk_start(head)?;
    let size = reg.storage.append(name, id, start, body).map_err(|e| with_location(e, name, id))?;
    Ok(upload_state(202, name, id, size))
}

/// A 416 tells the client where to resume.
fn with_location(e: ApiError, name: &str, id: &str) -> ApiError {
    if e.status == 416 {
        e.header("Location", format!("/v2/{name}/blobs/uploads/{id}")).header("Docker-Upload-UUID", id.to_string())
    } else {
        e
    }
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: the last chunk (if any), then verification.
fn put_blob_upload(
    reg: &Registry,
    head: &Head,
    body: &mut dyn Read,
    name: &str,
    id: &str,
) -> Result<Response, ApiError> {
    reg.storage.upload_size(name, id)?;
    let digest = head.param("digest").ok_or_else(|| ApiError::digest_invalid("the digest parameter is missing"))?;
    let d = parse_digest(digest)?;
    if head.chunked || head.content_length.is_some_and(|n| n > 0) {
        let start = chunk_start(head)?;
        reg.storage.append(name, id, start, body).map_err(|e| with_location(e, name, id))?;
    }
    reg.storage.finish_upload(name, id, &d)?;
    Ok(blob_created(name, &d))
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`
fn delete_blob_upload(reg: &Registry, name: &str, id: &str) -> Result<Response, ApiError> {
    reg.storage.cancel_upload(name, id)?;
    Ok(Response::new(204))
}

/// `GET /v2/<name>/referrers/<digest>?artifactType=`: the manifests whose subject is `digest`.
fn get_referrers(reg: &Registry, head: &Head, name: &str, digest: &str) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    let filter = head.param("artifactType").filter(|t| !t.is_empty());
    let mut list = Vec::new();
    for rev in reg.storage.revisions(name) {
        let Some(bytes) = reg.storage.manifest(name, &rev) else { continue };
        let Ok(m) = manifest::read(&bytes) else { continue };
        if m.subject.as_ref() != Some(&d) {
            continue;
        }
        if filter.is_some_and(|f| m.artifact_type.as_deref() != Some(f)) {
            continue;
        }
        list.push(m.referrer_descriptor(&rev, bytes.len() as u64));
    }
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list });
    let mut r = Response::new(200)
        .header("Content-Type", OCI_INDEX.into())
        .payload(Payload::Bytes(serde_json::to_vec(&index).unwrap_or_default()));
    if filter.is_some() {
        r = r.header("OCI-Filters-Applied", "artifactType".into());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeReq::Bytes(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeReq::Bytes(90, 99));
        assert_eq!(parse_range("bytes=90-200", 100), RangeReq::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeReq::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-500", 100), RangeReq::Bytes(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeReq::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), RangeReq::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), RangeReq::Ignore);
        assert_eq!(parse_range("items=0-1", 100), RangeReq::Ignore);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeReq::Ignore);
    }

    #[test]
    fn pagination() {
        let items = || ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(paginate(items(), None, Some(2)), (vec!["a".into(), "b".into()], true));
        assert_eq!(paginate(items(), Some("b"), Some(2)), (vec!["c".into(), "d".into()], false));
        assert_eq!(paginate(items(), Some("d"), None), (vec![], false));
        assert_eq!(paginate(items(), None, Some(0)), (vec![], true));
    }
}
