//! `tug registry`: the OCI distribution API spoken over raw HTTP to the real binary, skopeo
//! pushing and pulling through it (also over TLS, with certificates made by openssl), gc beside a
//! running server, and a storage directory written by Debian's `docker-registry` (distribution
//! 2.8) served as is, and the other way round.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::util::{ok, stderr, tug, Dir};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// A response: status, headers, body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The spec error code of an error response.
    fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or_default().to_string()
    }
}

/// A `tug registry serve` on a loopback port the kernel picked, killed on drop.
struct Registry {
    dir: Dir,
    root: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Registry {
    fn start(tag: &str, extra: &[&str]) -> Registry {
        let dir = Dir::new(tag);
        let root = dir.join("root");
        Registry::start_in(dir, root, extra)
    }

    fn start_in(dir: Dir, root: PathBuf, extra: &[&str]) -> Registry {
        let mut r = Registry { dir, root, port: 0, child: None };
        r.spawn(extra);
        r
    }

    /// Starts the server (again) on the same root, on a new port.
    fn spawn(&mut self, extra: &[&str]) {
        let log = self.dir.join("registry.log");
        let _ = std::fs::remove_file(&log);
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(tug())
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(&self.root)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.log();
            let port = text
                .lines()
                .find(|l| l.contains("serving"))
                .and_then(|l| l.rsplit(':').next())
                .and_then(|p| p.split_whitespace().next())
                .and_then(|p| p.parse().ok());
            if let Some(p) = port {
                self.port = p;
                break;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("tug registry exited ({st}): {text}");
            }
            assert!(Instant::now() < deadline, "tug registry did not start: {text}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends raw bytes as one request on a fresh connection and reads the whole answer.
    fn raw(&self, request: &[u8]) -> Resp {
        let mut s = TcpStream::connect(self.host()).unwrap_or_else(|e| panic!("connect: {e}\n{}", self.log()));
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // The server may answer (and stop reading) before the whole request is sent.
        let _ = s.write_all(request);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        parse_response(&buf)
            .unwrap_or_else(|| panic!("bad response {:?}\n{}", String::from_utf8_lossy(&buf), self.log()))
    }

    /// One request with a Content-Length body.
    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut r = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.host());
        for (k, v) in headers {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            r.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        r.push_str("\r\n");
        let mut bytes = r.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes)
    }

    fn get(&self, path: &str) -> Resp {
        self.req("GET", path, &[], b"")
    }

    /// Pushes a blob monolithically; returns its digest.
    fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = digest(data);
        let r = self.req("POST", &format!("/v2/{repo}/blobs/uploads/?digest={d}"), &[], data);
        assert_eq!(r.status, 201, "{}", r.text());
        d
    }

    /// Pushes a manifest; returns the response.
    fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, doc: &[u8]) -> Resp {
        self.req("PUT", &format!("/v2/{repo}/manifests/{reference}"), &[("Content-Type", media_type)], doc)
    }

    /// Pushes a config and a layer and a manifest for them under `tag`; returns the manifest
    /// digest and the document.
    fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (String, Vec<u8>) {
        let config = self.push_blob(repo, b"{\"architecture\":\"amd64\",\"os\":\"linux\"}");
        let layer_d = self.push_blob(repo, layer);
        let doc = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 37},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_d, "size": layer.len()}]
        }))
        .unwrap();
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &doc);
        assert_eq!(r.status, 201, "{}", r.text());
        (digest(&doc), doc)
    }

    /// Where a blob's data lives in the distribution layout.
    fn blob_path(&self, d: &str) -> PathBuf {
        let hex = d.trim_start_matches("sha256:");
        self.root.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    /// Every file under the blob store.
    fn blob_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.root.join("docker/registry/v2/blobs"), &mut out);
        out
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn parse_response(buf: &[u8]) -> Option<Resp> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Some(Resp { status, headers, body: buf[end + 4..].to_vec() })
}

/// Sets a file's mtime `secs` into the past.
fn age(path: &Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
}

#[test]
fn base_endpoint_names_and_unknowns() {
    let reg = Registry::start("reg-base", &[]);
    let r = reg.get("/v2/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Docker-Distribution-API-Version"), Some("registry/2.0"));
    for bad in ["/v2/UPPER/tags/list", "/v2/a/../b/tags/list", "/v2/a--/manifests/x", "/v2/-a/blobs/uploads/"] {
        let r = reg.get(bad);
        assert_eq!((r.status, r.code()), (400, "NAME_INVALID".to_string()), "{bad}: {}", r.text());
    }
    let r = reg.get("/v2/nothere/tags/list");
    assert_eq!((r.status, r.code()), (404, "NAME_UNKNOWN".into()));
    let r = reg.get(&format!("/v2/nothere/blobs/{}", digest(b"x")));
    assert_eq!((r.status, r.code()), (404, "BLOB_UNKNOWN".into()));
    let r = reg.get("/v2/nothere/blobs/sha256:nothex");
    assert_eq!((r.status, r.code()), (400, "DIGEST_INVALID".into()));
    let unknown = "/v2/lib/a/blobs/uploads/00000000-0000-4000-8000-000000000000";
    for m in ["GET", "PATCH", "PUT", "DELETE"] {
        let path = if m == "PUT" { format!("{unknown}?digest={}", digest(b"")) } else { unknown.to_string() };
        let r = reg.req(m, &path, &[], b"");
        assert_eq!((r.status, r.code()), (404, "BLOB_UPLOAD_UNKNOWN".into()), "{m}: {}", r.text());
    }
    let r = reg.get("/v2/lib/a/manifests/latest");
    assert_eq!((r.status, r.code()), (404, "NAME_UNKNOWN".into()));
    let r = reg.req("POST", "/v2/lib/a/tags/list", &[], b"");
    assert_eq!((r.status, r.code()), (405, "UNSUPPORTED".into()));
}

#[test]
fn monolithic_push_head_get_and_ranges() {
    let reg = Registry::start("reg-mono", &[]);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = digest(&data);
    let r = reg.req("POST", &format!("/v2/lib/mono/blobs/uploads/?digest={d}"), &[], &data);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("Location"), Some(format!("/v2/lib/mono/blobs/{d}").as_str()));
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.as_str()));
    assert_eq!(std::fs::read(reg.blob_path(&d)).unwrap(), data, "stored in distribution's layout");
    let hex = d.trim_start_matches("sha256:");
    let link = reg.root.join(format!("docker/registry/v2/repositories/lib/mono/_layers/sha256/{hex}/link"));
    assert_eq!(std::fs::read_to_string(link).unwrap(), d);

    let r = reg.req("HEAD", &format!("/v2/lib/mono/blobs/{d}"), &[], b"");
    assert_eq!((r.status, r.header("Content-Length")), (200, Some("100000")));
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.as_str()));
    assert!(r.body.is_empty());
    let r = reg.get(&format!("/v2/lib/mono/blobs/{d}"));
    assert_eq!((r.status, r.body == data), (200, true));

    let r = reg.req("GET", &format!("/v2/lib/mono/blobs/{d}"), &[("Range", "bytes=10-19")], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Range"), Some("bytes 10-19/100000"));
    assert_eq!(r.body, &data[10..20]);
    let r = reg.req("GET", &format!("/v2/lib/mono/blobs/{d}"), &[("Range", "bytes=99990-")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &data[99_990..]));
    let r = reg.req("GET", &format!("/v2/lib/mono/blobs/{d}"), &[("Range", "bytes=100000-100010")], b"");
    assert_eq!(r.status, 416, "range past the end");
    assert_eq!(r.header("Content-Range"), Some("bytes */100000"));

    // Another repository sees the blob only once mounted.
    let r = reg.get(&format!("/v2/other/blobs/{d}"));
    assert_eq!(r.status, 404);
    let r = reg.req("POST", &format!("/v2/other/blobs/uploads/?mount={d}&from=lib/mono"), &[], b"");
    assert_eq!((r.status, r.header("Docker-Content-Digest")), (201, Some(d.as_str())));
    assert_eq!(reg.req("HEAD", &format!("/v2/other/blobs/{d}"), &[], b"").status, 200);
    // A mount from where the blob is not falls back to an upload session.
    let r = reg.req("POST", &format!("/v2/third/blobs/uploads/?mount={d}&from=nowhere"), &[], b"");
    assert_eq!(r.status, 202);
    assert!(r.header("Location").unwrap().starts_with("/v2/third/blobs/uploads/"));

    // Blob delete unlinks it from the repository.
    let r = reg.req("DELETE", &format!("/v2/other/blobs/{d}"), &[], b"");
    assert_eq!(r.status, 202);
    assert_eq!(reg.req("HEAD", &format!("/v2/other/blobs/{d}"), &[], b"").status, 404);
    assert_eq!(reg.req("DELETE", &format!("/v2/other/blobs/{d}"), &[], b"").status, 404);
    assert_eq!(reg.req("HEAD", &format!("/v2/lib/mono/blobs/{d}"), &[], b"").status, 200);
}

#[test]
fn chunked_push_out_of_order_status_and_cancel() {
    let reg = Registry::start("reg-chunks", &[]);
    let data = b"0123456789abcdefghijklmnopqrstuvwxyz".repeat(1000);
    let d = digest(&data);
    let r = reg.req("POST", "/v2/lib/chunks/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = r.header("Location").unwrap().to_string();
    let id = r.header("Docker-Upload-UUID").unwrap().to_string();
    assert!(loc.ends_with(&id));
    assert_eq!(r.header("Range"), Some("0-0"));

    let r = reg.req(
        "PATCH",
        &loc,
        &[("Content-Range", "0-9999"), ("Content-Type", "application/octet-stream")],
        &data[..10_000],
    );
    assert_eq!((r.status, r.header("Range")), (202, Some("0-9999")), "{}", r.text());
    // Out of order: starts past the end.
    let r = reg.req("PATCH", &loc, &[("Content-Range", "20000-20009")], &data[20_000..20_010]);
    assert_eq!((r.status, r.code()), (416, "RANGE_INVALID".into()));
    assert_eq!(r.header("Range"), Some("0-9999"));
    // Content-Range and Content-Length disagreeing.
    let r = reg.req("PATCH", &loc, &[("Content-Range", "10000-10009")], &data[10_000..10_005]);
    assert_eq!((r.status, r.code()), (400, "SIZE_INVALID".into()));

    // A streamed chunk: chunked transfer encoding, no length, no Content-Range.
    let mut req = format!("PATCH {loc} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
        .into_bytes();
    for piece in data[10_000..30_000].chunks(7000) {
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(piece);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = reg.raw(&req);
    assert_eq!((r.status, r.header("Range")), (202, Some("0-29999")), "{}", r.text());

    let r = reg.get(&loc);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Range"), Some("0-29999"));
    assert_eq!(r.header("Docker-Upload-UUID"), Some(id.as_str()));
    assert!(reg.blob_files().is_empty(), "nothing is visible before the upload completes");

    // The last chunk comes with the closing PUT.
    let r = reg.req("PUT", &format!("{loc}?digest={d}"), &[("Content-Range", "30000-35999")], &data[30_000..]);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.as_str()));
    assert_eq!(reg.get(&format!("/v2/lib/chunks/blobs/{d}")).body, data);
    assert_eq!(reg.get(&loc).status, 404, "a finished upload is gone");

    // Cancel.
    let loc = reg.req("POST", "/v2/lib/chunks/blobs/uploads/", &[], b"").header("Location").unwrap().to_string();
    reg.req("PATCH", &loc, &[], b"abc");
    assert_eq!(reg.req("DELETE", &loc, &[], b"").status, 204);
    assert_eq!(reg.get(&loc).code(), "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn wrong_digest_writes_nothing() {
    let reg = Registry::start("reg-wrong", &[]);
    let wrong = digest(b"something else");
    let r = reg.req("POST", &format!("/v2/lib/w/blobs/uploads/?digest={wrong}"), &[], b"payload");
    assert_eq!((r.status, r.code()), (400, "DIGEST_INVALID".into()), "{}", r.text());
    let loc = reg.req("POST", "/v2/lib/w/blobs/uploads/", &[], b"").header("Location").unwrap().to_string();
    assert_eq!(reg.req("PATCH", &loc, &[], b"payload").status, 202);
    let r = reg.req("PUT", &format!("{loc}?digest={wrong}"), &[], b"");
    assert_eq!((r.status, r.code()), (400, "DIGEST_INVALID".into()));
    for d in [wrong, digest(b"payload")] {
        assert_eq!(reg.req("HEAD", &format!("/v2/lib/w/blobs/{d}"), &[], b"").status, 404);
    }
    assert!(reg.blob_files().is_empty(), "{:?}", reg.blob_files());
    assert_eq!(reg.get(&loc).status, 404, "the failed upload is discarded");
}

#[test]
fn killed_mid_upload_exposes_no_partial_blob() {
    let mut reg = Registry::start("reg-crash", &[]);
    let data = vec![7u8; 1 << 20];
    let d = digest(&data);
    // A monolithic push whose body stops halfway, then the server dies.
    let mut s = TcpStream::connect(reg.host()).unwrap();
    let head = format!(
        "POST /v2/lib/c/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&data[..data.len() / 2]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let uploads = reg.root.join("docker/registry/v2/repositories/lib/c/_uploads");
    // Wait until the server has written part of it.
    loop {
        let mut files = Vec::new();
        walk(&uploads, &mut files);
        if files.iter().any(|f| f.ends_with("data") && f.metadata().map(|m| m.len() > 0).unwrap_or(false)) {
            break;
        }
        assert!(Instant::now() < deadline, "the upload never reached the disk");
        std::thread::sleep(Duration::from_millis(10));
    }
    reg.kill();
    drop(s);
    assert!(reg.blob_files().is_empty(), "{:?}", reg.blob_files());
    reg.spawn(&[]);
    assert_eq!(reg.req("HEAD", &format!("/v2/lib/c/blobs/{d}"), &[], b"").status, 404);
    reg.push_blob("lib/c", &data);
    assert_eq!(reg.req("HEAD", &format!("/v2/lib/c/blobs/{d}"), &[], b"").status, 200);
}

#[test]
fn manifests_push_get_refuse_and_delete() {
    let reg = Registry::start("reg-manifest", &[]);
    let config = reg.push_blob("lib/m", b"{}");
    let missing = digest(b"never pushed");
    let doc = |layer: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 12}]
        }))
        .unwrap()
    };
    let r = reg.put_manifest("lib/m", "v1", OCI_MANIFEST, &doc(&missing));
    assert_eq!((r.status, r.code()), (400, "MANIFEST_BLOB_UNKNOWN".into()), "{}", r.text());
    assert_eq!(r.json()["errors"][0]["detail"]["digest"], missing);
    assert_eq!(reg.get("/v2/lib/m/manifests/v1").status, 404);
    // A blob of another repository does not count.
    let elsewhere = reg.push_blob("lib/other", b"layer bytes!");
    let r = reg.put_manifest("lib/m", "v1", OCI_MANIFEST, &doc(&elsewhere));
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");

    let layer = reg.push_blob("lib/m", b"layer bytes!");
    let body = doc(&layer);
    let md = digest(&body);
    let r = reg.put_manifest("lib/m", "v1", OCI_MANIFEST, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("Docker-Content-Digest"), Some(md.as_str()));
    assert_eq!(r.header("Location"), Some(format!("/v2/lib/m/manifests/{md}").as_str()));
    let hex = md.trim_start_matches("sha256:");
    let v2 = reg.root.join("docker/registry/v2/repositories/lib/m/_manifests");
    assert_eq!(std::fs::read_to_string(v2.join("tags/v1/current/link")).unwrap(), md);
    assert_eq!(std::fs::read_to_string(v2.join(format!("tags/v1/index/sha256/{hex}/link"))).unwrap(), md);
    assert_eq!(std::fs::read_to_string(v2.join(format!("revisions/sha256/{hex}/link"))).unwrap(), md);

    for reference in ["v1", md.as_str()] {
        let r = reg.get(&format!("/v2/lib/m/manifests/{reference}"));
        assert_eq!((r.status, r.header("Content-Type")), (200, Some(OCI_MANIFEST)));
        assert_eq!(r.header("Docker-Content-Digest"), Some(md.as_str()));
        assert_eq!(r.body, body);
        let r = reg.req("HEAD", &format!("/v2/lib/m/manifests/{reference}"), &[], b"");
        assert_eq!(r.header("Content-Length"), Some(body.len().to_string().as_str()));
        assert_eq!(r.header("Docker-Content-Digest"), Some(md.as_str()));
    }
    // Docker schema 2 media type, pushed by digest.
    let docker = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer, "size": 12}]
    }))
    .unwrap();
    let dd = digest(&docker);
    let r = reg.put_manifest("lib/m", &dd, "application/vnd.docker.distribution.manifest.v2+json", &docker);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = reg.get(&format!("/v2/lib/m/manifests/{dd}"));
    assert_eq!(r.header("Content-Type"), Some("application/vnd.docker.distribution.manifest.v2+json"));
    // A manifest list over both.
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": dd, "size": docker.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}]
    }))
    .unwrap();
    let r = reg.put_manifest("lib/m", "list", "application/vnd.docker.distribution.manifest.list.v2+json", &list);
    assert_eq!(r.status, 201, "{}", r.text());

    // Refusals.
    let r = reg.put_manifest("lib/m", &digest(b"other"), OCI_MANIFEST, &body);
    assert_eq!((r.status, r.code()), (400, "DIGEST_INVALID".into()));
    let r = reg.put_manifest("lib/m", "v2", OCI_MANIFEST, b"{not json");
    assert_eq!((r.status, r.code()), (400, "MANIFEST_INVALID".into()));
    let r = reg.put_manifest("lib/m", "v2", "application/vnd.oci.image.index.v1+json", &body);
    assert_eq!(r.code(), "MANIFEST_INVALID", "mediaType and Content-Type disagree");
    let mut huge =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 5 << 20));
    huge.extend_from_slice(b"\"}}");
    let r = reg.put_manifest("lib/m", "v2", OCI_MANIFEST, &huge);
    assert_eq!((r.status, r.code()), (413, "MANIFEST_INVALID".into()));
    let r = reg.put_manifest("lib/m", "bad:tag:", OCI_MANIFEST, &body);
    assert_eq!(r.status, 400);
    assert_eq!(reg.get("/v2/lib/m/tags/list").json()["tags"], json!(["list", "v1"]));

    // Delete: a tag, then the manifest by digest.
    assert_eq!(reg.req("DELETE", "/v2/lib/m/manifests/list", &[], b"").status, 202);
    let r = reg.get("/v2/lib/m/manifests/list");
    assert_eq!((r.status, r.code()), (404, "MANIFEST_UNKNOWN".into()));
    assert_eq!(reg.req("DELETE", &format!("/v2/lib/m/manifests/{md}"), &[], b"").status, 202);
    assert_eq!(reg.get(&format!("/v2/lib/m/manifests/{md}")).code(), "MANIFEST_UNKNOWN");
    assert_eq!(reg.get("/v2/lib/m/manifests/v1").code(), "MANIFEST_UNKNOWN", "its tags go with it");
    assert_eq!(reg.req("DELETE", &format!("/v2/lib/m/manifests/{md}"), &[], b"").status, 404);
}

#[test]
fn tags_and_catalog_paginate_with_link() {
    let reg = Registry::start("reg-pages", &[]);
    let (_, doc) = reg.push_image("lib/p", "t1", b"layer");
    for t in ["t2", "t3", "t4", "t5"] {
        assert_eq!(reg.put_manifest("lib/p", t, OCI_MANIFEST, &doc).status, 201);
    }
    let all = reg.get("/v2/lib/p/tags/list");
    assert_eq!(all.json(), json!({"name": "lib/p", "tags": ["t1", "t2", "t3", "t4", "t5"]}));
    assert!(all.header("Link").is_none());
    let mut url = "/v2/lib/p/tags/list?n=2".to_string();
    let mut pages = Vec::new();
    for _ in 0..10 {
        let r = reg.get(&url);
        assert_eq!(r.status, 200);
        pages.push(r.json()["tags"].clone());
        match r.header("Link") {
            Some(l) => {
                assert!(l.ends_with("; rel=\"next\""), "{l}");
                url = l[l.find('<').unwrap() + 1..l.find('>').unwrap()].to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, vec![json!(["t1", "t2"]), json!(["t3", "t4"]), json!(["t5"])]);
    assert_eq!(reg.get("/v2/lib/p/tags/list?last=t4").json()["tags"], json!(["t5"]));
    assert_eq!(reg.get("/v2/lib/p/tags/list?n=x").status, 400);

    for repo in ["a/one", "b", "c/d/e"] {
        reg.push_image(repo, "latest", b"x");
    }
    assert_eq!(reg.get("/v2/_catalog").json(), json!({"repositories": ["a/one", "b", "c/d/e", "lib/p"]}));
    let r = reg.get("/v2/_catalog?n=2");
    assert_eq!(r.json()["repositories"], json!(["a/one", "b"]));
    let link = r.header("Link").unwrap();
    assert!(link.starts_with("</v2/_catalog?last=b&n=2>"), "{link}");
    let r = reg.get("/v2/_catalog?last=b&n=2");
    assert_eq!(r.json()["repositories"], json!(["c/d/e", "lib/p"]));
}

#[test]
fn referrers_with_artifact_type_filter() {
    let reg = Registry::start("reg-referrers", &[]);
    let (subject, doc) = reg.push_image("lib/r", "v1", b"layer");
    let empty = reg.push_blob("lib/r", b"{}");
    let referrer = |artifact: &str, note: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": doc.len()},
            "annotations": {"note": note}
        }))
        .unwrap()
    };
    let sig = referrer("application/vnd.example.sig", "a");
    let sbom = referrer("application/vnd.example.sbom", "b");
    for m in [&sig, &sbom] {
        let r = reg.put_manifest("lib/r", &digest(m), OCI_MANIFEST, m);
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.header("OCI-Subject"), Some(subject.as_str()));
    }
    let r = reg.get(&format!("/v2/lib/r/referrers/{subject}"));
    assert_eq!((r.status, r.header("Content-Type")), (200, Some("application/vnd.oci.image.index.v1+json")));
    assert!(r.header("OCI-Filters-Applied").is_none());
    let list = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    let sig_entry = list.iter().find(|m| m["digest"] == digest(&sig)).unwrap();
    assert_eq!(sig_entry["artifactType"], "application/vnd.example.sig");
    assert_eq!(sig_entry["size"], sig.len());
    assert_eq!(sig_entry["annotations"]["note"], "a");

    let r = reg.get(&format!("/v2/lib/r/referrers/{subject}?artifactType=application/vnd.example.sbom"));
    assert_eq!(r.header("OCI-Filters-Applied"), Some("artifactType"));
    let list = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], digest(&sbom));
    let r = reg.get(&format!("/v2/lib/r/referrers/{}", digest(b"no such")));
    assert_eq!((r.status, r.json()["manifests"].as_array().unwrap().len()), (200, 0));
    assert_eq!(reg.get("/v2/lib/r/referrers/latest").code(), "DIGEST_INVALID");
}

#[test]
fn gc_sweeps_old_unreferenced_blobs_beside_a_running_server() {
    let reg = Registry::start("reg-gc", &[]);
    let (md, doc) = reg.push_image("lib/g", "v1", b"referenced layer");
    let old = reg.push_blob("lib/g", b"old orphan");
    let fresh = reg.push_blob("lib/g", b"fresh orphan");
    let manifest: Value = serde_json::from_slice(&doc).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_string();
    // Everything but `fresh` was written two hours ago.
    for d in [&md, &config, &layer, &old] {
        age(&reg.blob_path(d), 7200);
    }
    let gc = |extra: &[&str]| {
        let out = Command::new(tug()).args(["registry", "gc", "--root"]).arg(&reg.root).args(extra).output().unwrap();
        ok(out)
    };
    let dry = gc(&["--dry-run"]);
    assert!(dry.contains(&format!("blob {old} eligible for deletion")), "{dry}");
    assert!(!dry.contains(&fresh) && !dry.contains(&layer), "{dry}");
    assert!(reg.blob_path(&old).exists(), "a dry run deletes nothing");
    let out = gc(&[]);
    assert!(out.contains(&format!("blob {old} deleted")), "{out}");
    assert!(!reg.blob_path(&old).exists());
    assert_eq!(reg.req("HEAD", &format!("/v2/lib/g/blobs/{old}"), &[], b"").status, 404);
    for d in [&md, &config, &layer, &fresh] {
        assert!(reg.blob_path(d).exists(), "{d} must survive: {out}");
        assert_eq!(reg.req("HEAD", &format!("/v2/lib/g/blobs/{d}"), &[], b"").status, 200);
    }
    assert_eq!(reg.get("/v2/lib/g/manifests/v1").status, 200);
    // The old blob can be pushed again after its sweep.
    reg.push_blob("lib/g", b"old orphan");
    assert_eq!(reg.req("HEAD", &format!("/v2/lib/g/blobs/{old}"), &[], b"").status, 200);

    // --delete-untagged: an untagged, old manifest goes with what only it used.
    assert_eq!(reg.req("DELETE", "/v2/lib/g/manifests/v1", &[], b"").status, 202);
    let hex = md.trim_start_matches("sha256:");
    age(&reg.root.join(format!("docker/registry/v2/repositories/lib/g/_manifests/revisions/sha256/{hex}/link")), 7200);
    let out = gc(&["--delete-untagged"]);
    assert!(out.contains(&format!("lib/g: manifest {md} deleted (untagged)")), "{out}");
    assert!(!reg.blob_path(&layer).exists() && !reg.blob_path(&md).exists(), "{out}");
    assert_eq!(reg.get(&format!("/v2/lib/g/manifests/{md}")).status, 404);
}

#[test]
fn gc_racing_pushes_never_leaves_an_accepted_manifest_dangling() {
    let reg = Registry::start("reg-gc-race", &[]);
    let root = reg.root.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut runs = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            // --min-age 0: only the gc lock and the commits' touches protect what is being pushed.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && runs < 300 && Instant::now() < deadline {
                let out = Command::new(tug()).args(["registry", "gc", "--min-age", "0", "--root"]).arg(&root).output();
                ok(out.unwrap());
                runs += 1;
                std::thread::sleep(Duration::from_millis(3));
            }
            runs
        })
    };
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..30 {
        let layer = format!("layer {i}").into_bytes();
        let config = format!("{{\"n\":{i}}}").into_bytes();
        let doc = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}]
        }))
        .unwrap();
        // As a client would: on MANIFEST_BLOB_UNKNOWN (gc swept a blob between its upload and the
        // manifest), push the blobs again and retry.
        for _attempt in 0..20 {
            reg.push_blob("lib/race", &config);
            reg.push_blob("lib/race", &layer);
            let r = reg.put_manifest("lib/race", &format!("t{i}"), OCI_MANIFEST, &doc);
            match r.status {
                201 => {
                    accepted.push((format!("t{i}"), vec![digest(&config), digest(&layer), digest(&doc)]));
                    break;
                }
                400 => assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN", "{}", r.text()),
                s => panic!("unexpected {s}: {}", r.text()),
            }
            refused += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = collector.join().unwrap();
    eprintln!("gc race: {} accepted, {refused} refusals, {runs} gc runs", accepted.len());
    assert!(runs > 0);
    // With --min-age 0 a steady gc may starve a push (that is what --min-age is for), but each
    // retry is a fresh chance and the collector stops after a bounded number of runs.
    assert!(!accepted.is_empty(), "{refused} refusals, {runs} gc runs");
    // A last collection with nothing in flight.
    ok(Command::new(tug()).args(["registry", "gc", "--min-age", "0", "--root"]).arg(&reg.root).output().unwrap());
    for (tag, blobs) in &accepted {
        assert_eq!(reg.get(&format!("/v2/lib/race/manifests/{tag}")).status, 200, "{tag}");
        for d in blobs {
            assert!(reg.blob_path(d).exists(), "{tag}: {d} was swept ({runs} gc runs, {refused} refusals)");
        }
    }
}

#[test]
fn keep_alive_and_bounded_connections() {
    let reg = Registry::start("reg-conns", &["--max-connections", "2"]);
    // Pipelined on one connection: a refused PATCH whose body the server drains, then two GETs.
    let unknown = "/v2/lib/k/blobs/uploads/00000000-0000-4000-8000-000000000000";
    let req = format!(
        "PATCH {unknown} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789\
         GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/_catalog HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let r = reg.raw(req.as_bytes());
    assert_eq!(r.status, 404);
    let all = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    assert!(all.contains("{\"repositories\":[]}"), "{all}");

    // Two idle connections take both slots; a third client waits until one goes.
    let idle1 = TcpStream::connect(reg.host()).unwrap();
    let idle2 = TcpStream::connect(reg.host()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(reg.host()).unwrap();
    third.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    third.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    assert!(third.read(&mut buf).is_err(), "answered beyond --max-connections");
    drop(idle1);
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = third.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(idle2);
}

#[test]
fn read_only_htpasswd_and_argv0() {
    let reg = Registry::start("reg-ro", &["--read-only"]);
    assert_eq!(reg.get("/v2/").status, 200);
    let r = reg.req("POST", "/v2/lib/x/blobs/uploads/", &[], b"");
    assert_eq!((r.status, r.code()), (405, "UNSUPPORTED".into()));
    drop(reg);

    let dir = Dir::new("reg-auth");
    let hash = bcrypt::hash("s3cret", 4).unwrap().replacen("$2b$", "$2y$", 1);
    std::fs::write(dir.join("htpasswd"), format!("alice:{hash}\n")).unwrap();
    let htpasswd = dir.join("htpasswd").to_string_lossy().into_owned();
    let root = dir.join("root");
    let reg = Registry::start_in(dir, root, &["--htpasswd", &htpasswd]);
    let r = reg.get("/v2/");
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED".into()));
    assert!(r.header("WWW-Authenticate").unwrap().starts_with("Basic realm="), "{:?}", r.headers);
    // alice:s3cret and alice:wrong
    let r = reg.req("GET", "/v2/", &[("Authorization", "Basic YWxpY2U6czNjcmV0")], b"");
    assert_eq!(r.status, 200);
    let r = reg.req("GET", "/v2/", &[("Authorization", "Basic YWxpY2U6d3Jvbmc=")], b"");
    assert_eq!(r.status, 401);

    // The same applet under its own name.
    let links = Dir::new("reg-argv0");
    let link = links.join("tug-registry");
    std::os::unix::fs::symlink(tug(), &link).unwrap();
    let help = ok(Command::new(&link).arg("--help").output().unwrap());
    assert!(help.contains("serve") && help.contains("gc"), "{help}");
}

/// A self-signed certificate for 127.0.0.1 made by the openssl CLI: `newkey` is openssl's
/// `-newkey` argument (`ec` for P-256, `rsa:2048`). Returns the certificate and key files.
fn self_signed(dir: &Dir, name: &str, newkey: &str) -> (PathBuf, PathBuf) {
    let found = Command::new("sh").args(["-c", "command -v openssl"]).output().unwrap();
    assert!(found.status.success(), "the openssl CLI is required for the TLS tests: apt-get install openssl");
    let (cert, key) = (dir.join(&format!("{name}.crt")), dir.join(&format!("{name}.key")));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-newkey", newkey]);
    if newkey == "ec" {
        cmd.args(["-pkeyopt", "ec_paramgen_curve:P-256"]);
    }
    cmd.args(["-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert);
    ok(cmd.output().unwrap());
    (cert, key)
}

/// curl against the loopback only (no proxy from the environment), with a bound on time.
fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["--noproxy", "*", "-sS", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl is required for the TLS tests: apt-get install curl")
}

/// curl's status line and headers (`-i`), then the body.
fn curl_ok(args: &[&str]) -> String {
    let out = curl(&[&["-i"], args].concat());
    assert!(out.status.success(), "curl {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn tls_serves_https_refuses_plain_http_and_keeps_serving() {
    let dir = Dir::new("reg-tls");
    let (cert, key) = self_signed(&dir, "server", "ec");
    let hash = bcrypt::hash("s3cret", 4).unwrap().replacen("$2b$", "$2y$", 1);
    std::fs::write(dir.join("htpasswd"), format!("alice:{hash}\n")).unwrap();
    let htpasswd = dir.join("htpasswd");
    let root = dir.join("root");
    let reg = Registry::start_in(
        dir,
        root,
        &["--tls-cert", arg(&cert), "--tls-key", arg(&key), "--htpasswd", arg(&htpasswd), "--max-connections", "2"],
    );
    let url = format!("https://{}/v2/", reg.host());
    let cacert = arg(&cert);

    // Verified against the certificate as its own CA; Basic auth inside TLS.
    let r = curl_ok(&["--cacert", cacert, "-u", "alice:s3cret", &url]);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("Docker-Distribution-API-Version: registry/2.0"), "{r}");
    let r = curl_ok(&["--cacert", cacert, &url]);
    assert!(r.starts_with("HTTP/1.1 401") && r.contains("WWW-Authenticate: Basic realm="), "{r}");
    let r = curl_ok(&["--cacert", cacert, "-u", "alice:wrong", &url]);
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    // Without the CA the client refuses the server: the certificate really is checked.
    let out = curl(&[&url]);
    assert!(!out.status.success(), "curl trusted a self-signed certificate");

    // Plain HTTP on the TLS port: a plain 400 that says why, as Go's servers answer.
    let r = curl_ok(&[&format!("http://{}/v2/", reg.host())]);
    assert!(r.starts_with("HTTP/1.0 400"), "{r}");
    assert!(r.contains("Client sent an HTTP request to an HTTPS server."), "{r}");

    // Openings no handshake can follow: refused at once (an alert or a close).
    for junk in [&b"\x00\x01\x02"[..], b"\x16\x03\x01\x00\x05hello world"] {
        let mut s = TcpStream::connect(reg.host()).unwrap();
        s.write_all(junk).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).expect("a garbage handshake was not closed");
        assert!(buf.is_empty() || buf[0] == 0x15, "not an alert: {buf:?}");
    }
    // Clients that never finish their handshake, more than --max-connections: they hold their
    // slots only until the handshake deadline, then the server serves again.
    let mut stuck = Vec::new();
    for junk in [&b""[..], b"", b"\x16"] {
        let mut s = TcpStream::connect(reg.host()).unwrap();
        s.write_all(junk).unwrap();
        stuck.push(s);
    }
    let started = Instant::now();
    let r = curl_ok(&["--cacert", cacert, "-u", "alice:s3cret", &url]);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(19), "waited {:?}", started.elapsed());
    for s in &mut stuck {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    drop(stuck);
    let log = reg.log();
    assert!(log.contains("plain HTTP request on the TLS port"), "{log}");
    assert!(log.contains("TLS handshake timed out"), "{log}");

    // A blob bigger than any buffer goes out whole through TLS (not the socket's sendfile path),
    // and a range of it.
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let work = Dir::new("reg-tls-blob");
    let file = work.join("big");
    std::fs::write(&file, &big).unwrap();
    let d = digest(&big);
    let push = curl(&[
        "--cacert",
        cacert,
        "-u",
        "alice:s3cret",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--data-binary",
        &format!("@{}", arg(&file)),
        "-H",
        "Content-Type: application/octet-stream",
        &format!("{url}lib/big/blobs/uploads/?digest={d}"),
    ]);
    assert_eq!(String::from_utf8_lossy(&push.stdout), "201", "{}", stderr(&push));
    let got = curl(&["--cacert", cacert, "-u", "alice:s3cret", &format!("{url}lib/big/blobs/{d}")]);
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(digest(&got.stdout), d);
    let part = curl(&["--cacert", cacert, "-u", "alice:s3cret", "-r", "1000-1999", &format!("{url}lib/big/blobs/{d}")]);
    assert_eq!(part.stdout, &big[1000..2000]);
}

#[test]
fn tls_reads_pkcs8_pkcs1_and_sec1_keys() {
    let dir = Dir::new("reg-tls-keys");
    let (ec_cert, ec_key) = self_signed(&dir, "ec", "ec");
    let (rsa_cert, rsa_key) = self_signed(&dir, "rsa", "rsa:2048");
    assert!(std::fs::read_to_string(&ec_key).unwrap().contains("BEGIN PRIVATE KEY"), "openssl wrote PKCS#8");
    let sec1 = dir.join("sec1.key");
    ok(Command::new("openssl").args(["ec", "-in", arg(&ec_key), "-out", arg(&sec1)]).output().unwrap());
    assert!(std::fs::read_to_string(&sec1).unwrap().contains("BEGIN EC PRIVATE KEY"));
    let pkcs1 = dir.join("pkcs1.key");
    ok(Command::new("openssl")
        .args(["rsa", "-in", arg(&rsa_key), "-traditional", "-out", arg(&pkcs1)])
        .output()
        .unwrap());
    assert!(std::fs::read_to_string(&pkcs1).unwrap().contains("BEGIN RSA PRIVATE KEY"));
    for (cert, key) in [(&ec_cert, &ec_key), (&ec_cert, &sec1), (&rsa_cert, &rsa_key), (&rsa_cert, &pkcs1)] {
        let reg = Registry::start("reg-tls-key", &["--tls-cert", arg(cert), "--tls-key", arg(key)]);
        let r = curl_ok(&["--cacert", arg(cert), &format!("https://{}/v2/", reg.host())]);
        assert!(r.starts_with("HTTP/1.1 200"), "{key:?}: {r}");
    }
}

/// Runs `tug registry serve` on a free loopback port with `args` and expects it to refuse to
/// start: returns its stderr after checking the exit status and that nothing listens.
fn serve_refused(dir: &Dir, args: &[&str]) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(tug())
        .args(["registry", "serve", "--addr", &addr, "--root", arg(&dir.join("root"))])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tug registry serve {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!status.success(), "{args:?}: {err}");
    assert!(TcpStream::connect(&addr).is_err(), "{args:?}: something listens on {addr}");
    err
}

#[test]
fn tls_refuses_bad_certificates_and_keys() {
    let dir = Dir::new("reg-tls-bad");
    let (cert, key) = self_signed(&dir, "a", "ec");
    let (_, other_key) = self_signed(&dir, "b", "ec");
    let (cert, key, other_key) = (arg(&cert), arg(&key), arg(&other_key));
    let missing = dir.join("missing.key");
    let err = serve_refused(&dir, &["--tls-cert", cert, "--tls-key", arg(&missing)]);
    assert!(err.contains("missing.key: No such file"), "{err}");
    let err = serve_refused(&dir, &["--tls-cert", cert, "--tls-key", other_key]);
    assert!(err.contains(&format!("{other_key} is not the private key of the certificate in {cert}")), "{err}");
    // Cert and key swapped.
    let err = serve_refused(&dir, &["--tls-cert", key, "--tls-key", cert]);
    assert!(err.contains(&format!("{key}: no CERTIFICATE")), "{err}");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n").unwrap();
    let err = serve_refused(&dir, &["--tls-cert", arg(&garbage), "--tls-key", key]);
    assert!(err.contains("garbage.pem: not PEM"), "{err}");
    // Valid PEM around bytes that are no certificate, and no key.
    let not_der = dir.join("not-der.pem");
    std::fs::write(&not_der, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
    let err = serve_refused(&dir, &["--tls-cert", arg(&not_der), "--tls-key", key]);
    assert!(err.contains("not-der.pem: invalid certificate"), "{err}");
    let not_key = dir.join("not-key.pem");
    std::fs::write(&not_key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    let err = serve_refused(&dir, &["--tls-cert", cert, "--tls-key", arg(&not_key)]);
    assert!(err.contains("not-key.pem: failed to parse private key"), "{err}");
    // One flag without the other.
    let err = serve_refused(&dir, &["--tls-cert", cert]);
    assert!(err.contains("--tls-key"), "{err}");
    let err = serve_refused(&dir, &["--tls-key", key]);
    assert!(err.contains("--tls-cert"), "{err}");
}

#[test]
fn skopeo_over_tls_verifies_with_a_cert_dir() {
    let work = Dir::new("reg-tls-skopeo");
    let tar = busybox_archive(&work);
    let (cert, key) = self_signed(&work, "server", "ec");
    // skopeo's --cert-dir convention: *.crt are CA certificates.
    let certs = work.join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::copy(&cert, certs.join("ca.crt")).unwrap();
    let reg = Registry::start("reg-tls-skopeo-srv", &["--tls-cert", arg(&cert), "--tls-key", arg(&key)]);
    let image = format!("docker://{}/lib/busybox:1.0", reg.host());
    skopeo(&["copy", "--dest-cert-dir", arg(&certs), &format!("docker-archive:{}", tar.display()), &image]);
    let info: Value = serde_json::from_str(&skopeo(&["inspect", "--cert-dir", arg(&certs), &image])).unwrap();
    assert_eq!(info["Os"], "linux", "{info}");
    assert_eq!(info["RepoTags"], json!(["1.0"]), "{info}");
    let oci = work.join("oci");
    skopeo(&["copy", "--src-cert-dir", arg(&certs), &image, &format!("oci:{}:v1", oci.display())]);
    let index: Value = serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    assert!(oci.join("blobs/sha256").join(manifest).is_file(), "{index}");
    // Without the CA skopeo refuses the certificate.
    let out =
        Command::new("skopeo").args(["--insecure-policy", "inspect", &image]).stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("x509"), "{}", stderr(&out));
}

/// skopeo, with no policy or credentials from the machine.
fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("skopeo is required for these tests: apt-get install skopeo (scripts/install-deps.sh)");
    assert!(out.status.success(), "skopeo {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A busybox image as a docker-archive, built by the project's script.
fn busybox_archive(dir: &Dir) -> PathBuf {
    let tar = dir.join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
    ok(Command::new(script).arg(&tar).arg("localhost/busybox:latest").output().unwrap());
    tar
}

/// Pulls `image` into an OCI layout and a dir: directory and checks both hold the image.
fn pull_everywhere(work: &Dir, image: &str) {
    let oci = work.join("oci");
    skopeo(&["copy", "--src-tls-verify=false", image, &format!("oci:{}:v1", oci.display())]);
    let index: Value = serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    let dir = work.join("dir");
    skopeo(&["copy", "--src-tls-verify=false", image, &format!("dir:{}", dir.display())]);
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let bytes = std::fs::read(dir.join(&layer)).unwrap();
    assert_eq!(format!("{:x}", Sha256::digest(&bytes)), layer);
}

#[test]
fn skopeo_pushes_inspects_lists_and_pulls() {
    let work = Dir::new("reg-skopeo");
    let tar = busybox_archive(&work);
    let reg = Registry::start("reg-skopeo-srv", &[]);
    let image = format!("docker://{}/lib/busybox:1.0", reg.host());
    skopeo(&["copy", "--dest-tls-verify=false", &format!("docker-archive:{}", tar.display()), &image]);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &image,
        &format!("docker://{}/lib/busybox:latest", reg.host()),
    ]);
    let info: Value = serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &image])).unwrap();
    let head = reg.req("HEAD", "/v2/lib/busybox/manifests/1.0", &[], b"");
    assert_eq!(info["Digest"].as_str(), head.header("Docker-Content-Digest"), "{info}");
    assert_eq!(info["Os"], "linux");
    let tags: Value = serde_json::from_str(&skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/lib/busybox", reg.host()),
    ]))
    .unwrap();
    assert_eq!(tags["Tags"], json!(["1.0", "latest"]));
    pull_everywhere(&work, &image);
    // An OCI-format push as well.
    let oci_image = format!("docker://{}/lib/busybox-oci:v1", reg.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--format=oci",
        &format!("oci:{}:v1", work.join("oci").display()),
        &oci_image,
    ]);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &oci_image]);
    assert!(raw.contains(OCI_MANIFEST), "{raw}");
}

/// Debian's docker-registry (distribution 2.8) on a loopback port, killed by pid on drop.
struct Distribution {
    child: Child,
    host: String,
    log: PathBuf,
}

impl Distribution {
    fn start(dir: &Dir, root: &Path) -> Distribution {
        // A free port: bind, read, release (distribution cannot report a port it picked).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.join("distribution.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                root.display()
            ),
        )
        .unwrap();
        let log = dir.join("distribution.log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("distribution.err")).unwrap())
            .spawn()
            .expect(
                "docker-registry is required for this test: apt-get install docker-registry (scripts/install-deps.sh)",
            );
        let d = Distribution { child, host, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&d.host).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start: {:?}", std::fs::read_to_string(&d.log));
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn storage_is_interchangeable_with_distribution() {
    let work = Dir::new("reg-distribution");
    let tar = busybox_archive(&work);
    let archive = format!("docker-archive:{}", tar.display());

    // Written by distribution, served by tug.
    let root = work.join("written-by-distribution");
    let dist = Distribution::start(&work, &root);
    skopeo(&["copy", "--dest-tls-verify=false", &archive, &format!("docker://{}/lib/bb:v1", dist.host)]);
    drop(dist);
    let reg = Registry::start_in(Dir::new("reg-distribution-tug"), root.clone(), &[]);
    assert_eq!(reg.get("/v2/_catalog").json(), json!({"repositories": ["lib/bb"]}));
    let tags: Value =
        serde_json::from_str(&skopeo(&["list-tags", "--tls-verify=false", &format!("docker://{}/lib/bb", reg.host())]))
            .unwrap();
    assert_eq!(tags["Tags"], json!(["v1"]));
    pull_everywhere(&work, &format!("docker://{}/lib/bb:v1", reg.host()));
    drop(reg);

    // Written by tug, served by distribution.
    let root2 = work.join("written-by-tug");
    let reg = Registry::start_in(Dir::new("reg-distribution-tug2"), root2.clone(), &[]);
    skopeo(&["copy", "--dest-tls-verify=false", &archive, &format!("docker://{}/lib/bb:v2", reg.host())]);
    let want =
        reg.req("HEAD", "/v2/lib/bb/manifests/v2", &[], b"").header("Docker-Content-Digest").unwrap().to_string();
    drop(reg);
    let work2 = Dir::new("reg-distribution-2");
    let dist = Distribution::start(&work2, &root2);
    let info: Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &format!("docker://{}/lib/bb:v2", dist.host)]))
            .unwrap();
    assert_eq!(info["Digest"], want.as_str());
    let pulled = Dir::new("reg-distribution-pull");
    pull_everywhere(&pulled, &format!("docker://{}/lib/bb:v2", dist.host));
}

#[test]
fn config_file_settings_and_flags_winning() {
    let dir = Dir::new("reg-config");
    let cfg = dir.join("registry.json");
    let other_root = dir.join("from-config");
    std::fs::write(
        &cfg,
        serde_json::json!({"read-only": true, "max-connections": 4, "root": other_root, "addr": "127.0.0.1:1"})
            .to_string(),
    )
    .unwrap();
    let cfg_arg = cfg.to_string_lossy().into_owned();
    let root = dir.join("root");
    // The harness passes --addr and --root: they win over the file; read-only comes from it.
    let reg = Registry::start_in(dir, root.clone(), &["--config", &cfg_arg]);
    assert_eq!(reg.get("/v2/").status, 200);
    let r = reg.req("POST", "/v2/lib/x/blobs/uploads/", &[], b"");
    assert_eq!((r.status, r.code()), (405, "UNSUPPORTED".into()));
    assert!(root.join("docker/registry/v2").is_dir() && !other_root.exists());
    // A key the registry does not know is an error that names it; nothing is served.
    let bad = reg.dir.join("bad.json");
    std::fs::write(&bad, r#"{"adress": "127.0.0.1:0"}"#).unwrap();
    let o =
        Command::new(tug()).args(["registry", "serve", "--config"]).arg(&bad).stdin(Stdio::null()).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("adress"), "{}", String::from_utf8_lossy(&o.stderr));
}
