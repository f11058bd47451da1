//! `docker pull`: manifest (through an index to this host's platform), config and layers from a
//! registry into the image store, with dockerd's progress messages.
//!
//! Layers download in parallel (at most [`PARALLEL`] at once) into `images/ingest/<hex>/data`,
//! which outlives an interrupted pull or a killed daemon: the next pull hashes what is there and
//! asks for the rest with `Range`. Every blob's size and digest, and every layer's diff ID, are
//! checked before anything is committed; the commit itself is [`ImageStore::commit`], so a failed
//! pull leaves the store as it was (only the verified-so-far ingest files stay, for the retry).

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::archive::host_arch;
use super::distribution::{
    endpoints, header, read_small, registry_error, AuthConfig, Payload, Session, Settings, MANIFEST_ACCEPT,
};
use super::layer;
use super::reference::Reference;
use super::store::{
    diff_ids_of, Descriptor, ImageStore, Manifest, Pending, JSON_MAX, MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
};
use super::Error;
use crate::store::digest::{hex, Digest};

/// Layers fetched at once.
pub const PARALLEL: usize = 3;
/// How often a layer's `Downloading` progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How long a pull waits for another pull of the same blob in this daemon.
const INGEST_WAIT: Duration = Duration::from_secs(3600);

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this host runs.
    pub fn host() -> Platform {
        Platform { os: "linux".into(), architecture: host_arch().into(), variant: None }
    }

    /// Parses `linux/arm64`, `linux/arm/v7`, `arm64` (linux implied).
    pub fn parse(s: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let bad = || Error::InvalidInput(format!("invalid platform {s:?}: want os/arch[/variant]"));
        let (os, arch, variant) = match parts.as_slice() {
            [a] if !a.is_empty() => ("linux", *a, None),
            [o, a] => (*o, *a, None),
            [o, a, v] => (*o, *a, Some(v.to_string())),
            _ => return Err(bad()),
        };
        if os.is_empty() || arch.is_empty() {
            return Err(bad());
        }
        let arch = match arch {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        Ok(Platform { os: os.to_ascii_lowercase(), architecture: arch.to_string(), variant })
    }

    fn matches(&self, p: &Value) -> bool {
        let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
        field("os") == self.os
            && field("architecture") == self.architecture
            && self.variant.as_deref().is_none_or(|v| field("variant") == v)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What to pull, and with what.
pub struct PullRequest<'a> {
    pub reference: Reference,
    /// Given explicitly (`--platform`): a single-platform image must match it.
    pub platform: Option<Platform>,
    pub auth: Option<AuthConfig>,
    pub settings: &'a Settings,
    /// Set when the client went away: downloads stop at the next read.
    pub cancel: &'a AtomicBool,
}

/// A finished pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: Digest,
    /// The digest the reference resolved to (an index's, for a multi-platform image).
    pub digest: Digest,
    /// False when the store already had this image under this name.
    pub updated: bool,
}

/// One NDJSON progress message as dockerd writes them.
pub fn message(status: &str, id: Option<&str>, detail: Option<(u64, u64)>) -> Value {
    let mut m = json!({ "status": status });
    if let Some((current, total)) = detail {
        m["progressDetail"] = json!({ "current": current, "total": total });
    }
    if let Some(id) = id {
        m["id"] = json!(id);
    }
    m
}

/// Blobs being fetched by this process, so two pulls never write one ingest file at once.
static ACTIVE: Mutex<Option<HashSet<String>>> = Mutex::new(None);
static ACTIVE_DONE: Condvar = Condvar::new();

/// Holds a blob's ingest for one pull; released on drop.
struct IngestGuard(String);

impl IngestGuard {
    fn acquire(hex: &str, cancel: &AtomicBool) -> Result<IngestGuard, Error> {
        let deadline = Instant::now() + INGEST_WAIT;
        let mut set = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let active = set.get_or_insert_with(HashSet::new);
            if active.insert(hex.to_string()) {
                return Ok(IngestGuard(hex.to_string()));
            }
            if cancel.load(Ordering::Relaxed) || Instant::now() > deadline {
                return Err(Error::Io(format!("sha256:{hex}: another pull of this blob did not finish")));
            }
            set = ACTIVE_DONE.wait_timeout(set, Duration::from_millis(200)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

impl Drop for IngestGuard {
    fn drop(&mut self) {
        let mut set = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = set.as_mut() {
            s.remove(&self.0);
        }
        ACTIVE_DONE.notify_all();
    }
}

/// Maps a failed manifest fetch onto docker's messages.
fn manifest_error(r: super::distribution::Response, reference: &Reference) -> Error {
    let (status, code, text) = registry_error(r);
    let shown = reference.familiar();
    match (status, code.as_str()) {
        (401 | 403, _) | (_, "UNAUTHORIZED" | "DENIED" | "NAME_UNKNOWN") => Error::NotFound(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {text}",
            reference.familiar_name()
        )),
        (404, _) | (_, "MANIFEST_UNKNOWN") => Error::NotFound(format!("manifest for {shown} not found: {text}")),
        _ => Error::Io(format!("fetching manifest for {shown}: {text}")),
    }
}

impl ImageStore {
    /// Pulls `req.reference` into the store, reporting progress messages to `progress`.
    pub fn pull(&self, req: &PullRequest<'_>, progress: &(dyn Fn(Value) + Sync)) -> Result<Pulled, Error> {
        let r = &req.reference;
        let scopes = vec![format!("repository:{}:pull", r.path)];
        let eps = endpoints(req.settings, &r.domain);
        let mut last = None;
        for (i, ep) in eps.iter().enumerate() {
            // A mirror that fails hands over to the next endpoint; the last one's error stands.
            let more = ep.mirror && i + 1 < eps.len();
            let session = match Session::connect(std::slice::from_ref(ep), req.auth.clone(), scopes.clone()) {
                Ok(s) => s,
                Err(e) if more => {
                    last = Some(e);
                    continue;
                }
                Err(e) => {
                    // Insecure registries get their HTTP endpoint after HTTPS failed.
                    if eps[i + 1..].iter().any(|x| !x.mirror) {
                        last = Some(e);
                        continue;
                    }
                    return Err(e);
                }
            };
            match self.pull_from(&session, req, progress) {
                Err(e) if more => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| Error::Io("no registry endpoint".into())))
    }

    fn pull_from(
        &self,
        s: &Session,
        req: &PullRequest<'_>,
        progress: &(dyn Fn(Value) + Sync),
    ) -> Result<Pulled, Error> {
        let r = &req.reference;
        let wanted = r.digest.as_ref().map(|d| d.to_string()).or(r.tag.clone()).unwrap_or_default();
        let (mut bytes, mut media) = fetch_manifest(s, r, &wanted)?;
        let top = Digest::of(&bytes);
        // As dockerd: this first message comes after the manifest, so failing to get one is an
        // error answer rather than a message in a stream.
        progress(message(&format!("Pulling from {}", r.path), Some(&wanted), None));
        if let Some(d) = &r.digest {
            if d != &top {
                return Err(Error::InvalidInput(format!(
                    "manifest verification failed for digest {d}: the registry sent {top}"
                )));
            }
        }
        let mut from_index = false;
        if media == MEDIA_OCI_INDEX || media == MEDIA_DOCKER_LIST {
            let platform = req.platform.clone().unwrap_or_else(Platform::host);
            let list: Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::InvalidInput(format!("invalid manifest list {top}: {e}")))?;
            let descs: Vec<Descriptor> = serde_json::from_value(list["manifests"].clone())
                .map_err(|e| Error::InvalidInput(format!("invalid manifest list {top}: {e}")))?;
            let pick =
                descs.iter().find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p))).ok_or_else(|| {
                    Error::NotFound(format!("no matching manifest for {platform} in the manifest list entries"))
                })?;
            let d = Digest::parse(&pick.digest).map_err(Error::InvalidInput)?;
            let (b, m) = fetch_manifest(s, r, d.as_str())?;
            if Digest::of(&b) != d {
                return Err(Error::InvalidInput(format!("manifest verification failed for digest {d}")));
            }
            (bytes, media) = (b, if m.is_empty() { pick.media_type.clone() } else { m });
            from_index = true;
        }
        let manifest = Manifest::parse(&bytes).map_err(|e| Error::InvalidInput(format!("{}: {e}", r.familiar())))?;
        if media.is_empty() || media == "application/json" || media.starts_with("text/") {
            media = if manifest.media_type.is_empty() {
                MEDIA_OCI_MANIFEST.to_string()
            } else {
                manifest.media_type.clone()
            };
        }
        if !media.contains("manifest") {
            return Err(Error::InvalidInput(format!("{}: unsupported manifest type {media}", r.familiar())));
        }
        let manifest_digest = Digest::of(&bytes);
        let mut refs: Vec<Reference> = r.tagged().into_iter().collect();
        refs.push(Reference { tag: None, digest: Some(top.clone()), ..r.clone() });
        let finish = |p: Pulled| {
            progress(message(&format!("Digest: {top}"), None, None));
            let what = if p.updated { "Downloaded newer image for" } else { "Image is up to date for" };
            progress(message(&format!("Status: {what} {}", r.familiar()), None, None));
            Ok(p)
        };
        // Up to date: every reference already names this manifest and its blobs are all here.
        let config_digest = Digest::parse(&manifest.config.digest).map_err(Error::InvalidInput)?;
        {
            let entries = self.lock();
            let named = refs.iter().all(|want| {
                entries.iter().any(|e| e.reference.as_ref() == Some(want) && e.manifest == manifest_digest)
            });
            let complete =
                manifest.layers.iter().all(|l| Digest::parse(&l.digest).is_ok_and(|d| self.layout.blob(&d).exists()));
            if named && complete {
                drop(entries);
                return finish(Pulled { id: config_digest, digest: top.clone(), updated: false });
            }
        }
        let config = match self.read_blob(&config_digest, JSON_MAX) {
            Ok(c) if Digest::of(&c) == config_digest => c,
            _ => fetch_small_blob(s, &r.path, &config_digest)?,
        };
        let config_v: Value = serde_json::from_slice(&config)
            .map_err(|e| Error::InvalidInput(format!("image config {config_digest}: {e}")))?;
        if let (Some(p), false) = (&req.platform, from_index) {
            if !p.matches(&config_v) {
                return Err(Error::NotFound(format!(
                    "image with reference {} was found but does not match the specified platform: wanted {p}",
                    r.familiar()
                )));
            }
        }
        let diff_ids = diff_ids_of(&config_v).map_err(|e| Error::InvalidInput(format!("{config_digest}: {e}")))?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::InvalidInput(format!(
                "{}: manifest has {} layers, config {}",
                r.familiar(),
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let chains = layer::chain_ids(&diff_ids);
        let stage = self.stage_dir("pull")?;
        let res = self.fetch_layers(s, req, &manifest, &diff_ids, &chains, &stage, progress);
        let res = res.and_then(|blobs| {
            let pending = Pending {
                manifest: bytes.clone(),
                manifest_media_type: media.clone(),
                config: config.clone(),
                blobs: blobs.clone(),
                refs: refs.clone(),
            };
            self.commit(&stage, vec![pending]).map(|_| blobs)
        });
        let _ = fs::remove_dir_all(&stage);
        let blobs = res?;
        for (_, d) in &blobs {
            let _ = fs::remove_dir_all(self.layout.ingest_dir().join(d.hex()));
        }
        for l in &manifest.layers {
            if let Ok(d) = Digest::parse(&l.digest) {
                self.record_source(&d, &r.domain, &r.path);
            }
        }
        finish(Pulled { id: config_digest, digest: top.clone(), updated: true })
    }

    /// Downloads (in parallel) and unpacks into `<stage>/layers/` every layer the store lacks.
    /// Returns the downloaded blobs (ingest file, digest) for the commit.
    #[allow(clippy::too_many_arguments)]
    fn fetch_layers(
        &self,
        s: &Session,
        req: &PullRequest<'_>,
        manifest: &Manifest,
        diff_ids: &[Digest],
        chains: &[Digest],
        stage: &Path,
        progress: &(dyn Fn(Value) + Sync),
    ) -> Result<Vec<(PathBuf, Digest)>, Error> {
        let mut work = VecDeque::new();
        let mut seen = HashSet::new();
        for (i, l) in manifest.layers.iter().enumerate() {
            let d = Digest::parse(&l.digest).map_err(Error::InvalidInput)?;
            let short = &d.hex()[..12];
            let have_blob = self.layout.blob(&d).exists();
            let have_layer = self.layout.layer_dir(&chains[i]).join("diff").is_dir();
            if have_blob && have_layer {
                progress(message("Already exists", Some(short), None));
                continue;
            }
            if !seen.insert(d.clone()) && have_layer {
                continue;
            }
            progress(message("Pulling fs layer", Some(short), None));
            work.push_back((i, d, l.size, have_blob, have_layer));
        }
        let queue = Mutex::new(work);
        let failed = AtomicBool::new(false);
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        let blobs: Mutex<Vec<(PathBuf, Digest)>> = Mutex::new(Vec::new());
        let threads = PARALLEL.min(queue.lock().map(|q| q.len()).unwrap_or(1)).max(1);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((i, d, size, have_blob, have_layer)) = next else { break };
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let stop = AtomicStop { a: req.cancel, b: &failed };
                    let res = (|| {
                        let short = &d.hex()[..12];
                        let blob = if have_blob {
                            self.layout.blob(&d)
                        } else {
                            let path = self.fetch_blob(s, &req.reference.path, &d, size, short, progress, &stop)?;
                            blobs.lock().map_err(|_| Error::Io("lock".into()))?.push((path.clone(), d.clone()));
                            path
                        };
                        if !have_layer {
                            progress(message("Extracting", Some(short), Some((0, size))));
                            let dir = stage.join("layers").join(chains[i].hex());
                            if !dir.exists() {
                                self.unpack_layer(&blob, &diff_ids[i], &dir)
                                    .map_err(|e| Error::io(format!("failed to register layer {short}"), e))?;
                            }
                        }
                        progress(message("Pull complete", Some(short), None));
                        Ok(())
                    })();
                    if let Err(e) = res {
                        failed.store(true, Ordering::Relaxed);
                        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        slot.get_or_insert(e);
                        break;
                    }
                });
            }
        });
        if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        if req.cancel.load(Ordering::Relaxed) {
            return Err(Error::Io("context canceled".into()));
        }
        Ok(blobs.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    /// Fetches one blob into its ingest file, resuming a partial one with `Range`, and verifies
    /// size and digest. Returns the ingest file.
    #[allow(clippy::too_many_arguments)]
    fn fetch_blob(
        &self,
        s: &Session,
        repo: &str,
        d: &Digest,
        size: u64,
        short: &str,
        progress: &(dyn Fn(Value) + Sync),
        stop: &AtomicStop<'_>,
    ) -> Result<PathBuf, Error> {
        let _guard = IngestGuard::acquire(d.hex(), stop.a)?;
        let dir = self.layout.ingest_dir().join(d.hex());
        fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display(), e))?;
        let path = dir.join("data");
        let ioe = |e: io::Error| Error::io(format!("ingest {d}"), e);
        // Two tries: a resumed file whose old part turns out corrupt is fetched again whole.
        for attempt in 0..2 {
            let mut f =
                OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(ioe)?;
            let mut have = f.metadata().map_err(ioe)?.len();
            if have > size || attempt > 0 {
                f.set_len(0).map_err(ioe)?;
                have = 0;
            }
            let mut hash = Sha256::new();
            if have > 0 {
                hash_prefix(&mut f, have, &mut hash).map_err(ioe)?;
            }
            if have < size {
                if have > 0 {
                    eprintln!("tugd: pull: resuming {d} at byte {have} of {size}");
                }
                let range = format!("bytes={have}-");
                let mut headers = vec![("Accept", "*/*")];
                if have > 0 {
                    headers.push(("Range", range.as_str()));
                }
                let url = format!("/v2/{repo}/blobs/{d}");
                let resp = s.request("GET", &url, &headers, Payload::Empty)?;
                let status = resp.status().as_u16();
                match status {
                    206 if have > 0 => {
                        let cr = header(&resp, "content-range").unwrap_or_default();
                        if !cr.starts_with(&format!("bytes {have}-")) {
                            return Err(Error::InvalidInput(format!("blob {d}: registry sent range {cr:?}")));
                        }
                    }
                    200 => {
                        if have > 0 {
                            // The registry ignored the range: start over.
                            f.set_len(0).map_err(ioe)?;
                            have = 0;
                            hash = Sha256::new();
                        }
                    }
                    _ => {
                        let (_, _, text) = registry_error(resp);
                        return Err(Error::Io(format!("fetching blob {d}: {text}")));
                    }
                }
                f.seek(io::SeekFrom::Start(have)).map_err(ioe)?;
                let mut body = resp.into_body().into_reader();
                let mut buf = vec![0u8; 1 << 16];
                let mut current = have;
                let mut last = Instant::now();
                progress(message("Downloading", Some(short), Some((current, size))));
                // Bounded by the blob's size: more bytes than promised is an error.
                loop {
                    if stop.stopped() {
                        f.sync_data().map_err(ioe)?;
                        return Err(Error::Io("context canceled".into()));
                    }
                    let k = match body.read(&mut buf) {
                        Ok(0) => break,
                        Ok(k) => k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let _ = f.sync_data();
                            return Err(Error::Io(format!("fetching blob {d}: {e}")));
                        }
                    };
                    if current + k as u64 > size {
                        drop(f);
                        let _ = fs::remove_dir_all(&dir);
                        return Err(Error::InvalidInput(format!(
                            "filesystem layer verification failed for digest {d}: more than {size} bytes"
                        )));
                    }
                    f.write_all(&buf[..k]).map_err(ioe)?;
                    hash.update(&buf[..k]);
                    current += k as u64;
                    if last.elapsed() >= PROGRESS_EVERY {
                        last = Instant::now();
                        progress(message("Downloading", Some(short), Some((current, size))));
                    }
                }
                have = current;
                f.sync_data().map_err(ioe)?;
            }
            progress(message("Verifying Checksum", Some(short), None));
            let got = format!("sha256:{}", hex(&hash.finalize()));
            if have == size && got == d.as_str() {
                progress(message("Download complete", Some(short), None));
                return Ok(path);
            }
            if attempt == 0 && have == size {
                continue;
            }
            drop(f);
            let _ = fs::remove_dir_all(&dir);
            return Err(Error::InvalidInput(format!(
                "filesystem layer verification failed for digest {d}: got {got} ({have} of {size} bytes)"
            )));
        }
        Err(Error::InvalidInput(format!("filesystem layer verification failed for digest {d}")))
    }
}

/// Stops a download when the client went away or another layer failed.
struct AtomicStop<'a> {
    a: &'a AtomicBool,
    b: &'a AtomicBool,
}

impl AtomicStop<'_> {
    fn stopped(&self) -> bool {
        self.a.load(Ordering::Relaxed) || self.b.load(Ordering::Relaxed)
    }
}

/// Hashes the first `n` bytes of `f` into `hash`.
fn hash_prefix(f: &mut File, n: u64, hash: &mut Sha256) -> io::Result<()> {
    f.seek(io::SeekFrom::Start(0))?;
    let mut r = f.take(n);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        hash.update(&buf[..k]);
    }
    Ok(())
}

/// GETs a manifest by tag or digest; returns the bytes and the media type the registry named.
fn fetch_manifest(s: &Session, r: &Reference, wanted: &str) -> Result<(Vec<u8>, String), Error> {
    let url = format!("/v2/{}/manifests/{wanted}", r.path);
    let resp = s.request("GET", &url, &[("Accept", MANIFEST_ACCEPT)], Payload::Empty)?;
    if !resp.status().is_success() {
        return Err(manifest_error(resp, r));
    }
    let media = header(&resp, "content-type").unwrap_or_default();
    let media = media.split(';').next().unwrap_or("").trim().to_string();
    let bytes = read_small(resp, JSON_MAX)?;
    let media = if media.is_empty() || media == "application/json" {
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or(media)
    } else {
        media
    };
    Ok((bytes, media))
}

/// GETs a small blob (a config) and verifies its digest.
fn fetch_small_blob(s: &Session, repo: &str, d: &Digest) -> Result<Vec<u8>, Error> {
    let resp = s.request("GET", &format!("/v2/{repo}/blobs/{d}"), &[], Payload::Empty)?;
    if !resp.status().is_success() {
        let (_, _, text) = registry_error(resp);
        return Err(Error::Io(format!("fetching blob {d}: {text}")));
    }
    let data = read_small(resp, JSON_MAX)?;
    let got = Digest::of(&data);
    if &got != d {
        return Err(Error::InvalidInput(format!("blob {d}: digest mismatch (content is {got})")));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!(p.matches(&json!({"os": "linux", "architecture": "arm", "variant": "v7"})));
        assert!(!p.matches(&json!({"os": "linux", "architecture": "arm", "variant": "v6"})));
        assert_eq!(Platform::parse("aarch64").unwrap().to_string(), "linux/arm64");
        assert!(Platform::parse("a/b/c/d").is_err());
        assert!(Platform::host().matches(&json!({"os": "linux", "architecture": host_arch()})));
    }
}
