//! The registry's storage tree: exactly the distribution registry's filesystem-driver layout, so a
//! directory written by distribution 2.x is served as is, and distribution serves ours.
//!
//! ```text
//! <root>/
//! ├── docker/registry/v2/
//! │   ├── blobs/sha256/<first 2 hex>/<hex>/data       content; renamed in only after verification
//! │   └── repositories/<name>/                         <name> may contain `/`
//! │       ├── _layers/sha256/<hex>/link                "sha256:<hex>": the blob belongs to the repo
//! │       ├── _manifests/revisions/sha256/<hex>/link   a manifest pushed to the repo
//! │       ├── _manifests/tags/<tag>/current/link       the manifest a tag points at
//! │       ├── _manifests/tags/<tag>/index/sha256/<hex>/link   every manifest the tag has had
//! │       └── _uploads/<id>/{data,startedat}           uploads in progress (startedat: RFC 3339)
//! └── tug-gc.lock                                      ours: commits share it, gc's sweep holds it
//! ```
//!
//! A link file holds the digest and nothing else (no newline). Blob data never changes after it is
//! renamed into place; a crash leaves at worst an upload directory, never a partial blob.
//!
//! Every commit — a blob finished or mounted, a manifest pushed — holds the gc lock shared and sets
//! the mtime of everything it makes reachable to now; gc sweeps only under the exclusive lock and
//! never what is younger than its start (see gc.rs). Nothing else here takes locks.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

use super::api::ApiError;
use crate::store::atomic;
use crate::store::digest::{self, Digest};

/// The largest manifest read back from storage (distribution writes no bigger ones).
pub const MAX_STORED_MANIFEST: usize = 16 << 20;

/// Hash states of uploads kept between PATCH requests; past this many the map is reset (the
/// state is then recomputed from the data file when the upload continues).
const MAX_HASH_STATES: usize = 1024;

/// The storage tree under `--root`.
pub struct Storage {
    root: PathBuf,
    v2: PathBuf,
    /// Upload id → (bytes hashed, state): saves re-reading the data file on every chunk.
    hashes: Mutex<HashMap<String, (u64, Sha256)>>,
}

impl Storage {
    pub fn new(root: &Path) -> Storage {
        Storage {
            root: root.to_path_buf(),
            v2: root.join("docker").join("registry").join("v2"),
            hashes: Mutex::new(HashMap::new()),
        }
    }

    // ---- paths (the tree above, built in one place) ----

    fn blob_dir(&self, d: &Digest) -> PathBuf {
        self.v2.join("blobs").join("sha256").join(&d.hex()[..2]).join(d.hex())
    }

    pub fn blob_data(&self, d: &Digest) -> PathBuf {
        self.blob_dir(d).join("data")
    }

    fn repositories(&self) -> PathBuf {
        self.v2.join("repositories")
    }

    fn repo_dir(&self, name: &str) -> PathBuf {
        self.repositories().join(name)
    }

    fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name).join("_layers").join("sha256").join(d.hex()).join("link")
    }

    fn revisions_dir(&self, name: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests").join("revisions").join("sha256")
    }

    fn revision_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.revisions_dir(name).join(d.hex()).join("link")
    }

    fn tags_dir(&self, name: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests").join("tags")
    }

    fn tag_current(&self, name: &str, tag: &str) -> PathBuf {
        self.tags_dir(name).join(tag).join("current").join("link")
    }

    fn tag_index_link(&self, name: &str, tag: &str, d: &Digest) -> PathBuf {
        self.tags_dir(name).join(tag).join("index").join("sha256").join(d.hex()).join("link")
    }

    fn uploads_dir(&self, name: &str) -> PathBuf {
        self.repo_dir(name).join("_uploads")
    }

    fn upload_dir(&self, name: &str, id: &str) -> PathBuf {
        self.uploads_dir(name).join(id)
    }

    /// The data file of an upload (exposed for gc's in-flight check).
    pub fn upload_data(&self, name: &str, id: &str) -> PathBuf {
        self.upload_dir(name, id).join("data")
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("tug-gc.lock")
    }

    // ---- the gc lock ----

    /// Held (shared) by every commit, so gc's sweep never runs in the middle of one.
    pub fn commit_guard(&self) -> io::Result<Flock<File>> {
        self.lock(FlockArg::LockShared)
    }

    /// Held (exclusive) by gc while it deletes.
    pub fn sweep_guard(&self) -> io::Result<Flock<File>> {
        self.lock(FlockArg::LockExclusive)
    }

    /// The start of a gc, on the filesystem's clock: waits for the commits in progress (so the
    /// marking that follows sees them), then stamps the lock file and reads its mtime back.
    /// Commits after this get mtimes at or after it; the system clock would not do, as file
    /// times come from the kernel's coarse clock, which lags it by up to a tick.
    pub fn gc_start(&self) -> io::Result<SystemTime> {
        let _all = self.sweep_guard()?;
        touch(&self.lock_path())?;
        std::fs::metadata(self.lock_path())?.modified()
    }

    fn lock(&self, how: FlockArg) -> io::Result<Flock<File>> {
        std::fs::create_dir_all(&self.root)?;
        let f = OpenOptions::new().create(true).truncate(false).write(true).open(self.lock_path())?;
        Flock::lock(f, how).map_err(|(_, e)| io::Error::from(e))
    }

    // ---- blobs ----

    /// The size of a blob in the global store.
    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        std::fs::metadata(self.blob_data(d)).ok().filter(|m| m.is_file()).map(|m| m.len())
    }

    /// The size of a blob reachable through repository `name`: linked as a layer or a manifest
    /// revision, with its data present.
    pub fn repo_blob(&self, name: &str, d: &Digest) -> Option<u64> {
        let linked = read_link(&self.layer_link(name, d)).as_ref() == Some(d)
            || read_link(&self.revision_link(name, d)).as_ref() == Some(d);
        if linked {
            self.blob_size(d)
        } else {
            None
        }
    }

    /// Links an existing blob into a repository (a cross-repository mount); false if the blob is
    /// gone. Call under [`Storage::commit_guard`].
    pub fn link_blob(&self, name: &str, d: &Digest) -> io::Result<bool> {
        if !touch(&self.blob_data(d))? {
            return Ok(false);
        }
        write_link(&self.layer_link(name, d), d)?;
        Ok(true)
    }

    /// Removes a blob's link from a repository (the data stays for gc); false if not linked.
    pub fn unlink_blob(&self, name: &str, d: &Digest) -> io::Result<bool> {
        remove_linked_dir(&self.layer_link(name, d))
    }

    /// Sets a blob's mtime to now, so a gc that started before cannot sweep it; false if absent.
    pub fn touch_blob(&self, d: &Digest) -> io::Result<bool> {
        touch(&self.blob_data(d))
    }

    /// Moves verified content at `src` into the blob store as `d` (or drops it if the blob is
    /// already there) and marks it fresh. Call under [`Storage::commit_guard`].
    fn commit_blob(&self, src: &Path, d: &Digest) -> io::Result<()> {
        if touch(&self.blob_data(d))? {
            return std::fs::remove_file(src);
        }
        let dir = self.blob_dir(d);
        std::fs::create_dir_all(&dir)?;
        std::fs::rename(src, dir.join("data"))?;
        atomic::sync_dir(&dir)?;
        // rename keeps the upload's last-write time, which may predate a running gc.
        touch(&dir.join("data")).map(|_| ())
    }

    /// Every blob in the global store.
    pub fn all_blobs(&self) -> Vec<Digest> {
        let mut out = Vec::new();
        for prefix in list_dir(&self.v2.join("blobs").join("sha256")) {
            for hex in list_dir(&self.v2.join("blobs").join("sha256").join(&prefix)) {
                if let Ok(d) = Digest::parse(&format!("sha256:{hex}")) {
                    if d.hex().starts_with(&prefix) {
                        out.push(d);
                    }
                }
            }
        }
        out
    }

    pub fn blob_mtime(&self, d: &Digest) -> Option<SystemTime> {
        std::fs::metadata(self.blob_data(d)).and_then(|m| m.modified()).ok()
    }

    /// Deletes a blob from the global store (gc only, under the sweep guard).
    pub fn remove_blob(&self, d: &Digest) -> io::Result<()> {
        match std::fs::remove_file(self.blob_data(d)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match std::fs::remove_dir_all(self.blob_dir(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The blobs linked into a repository's `_layers`.
    pub fn layer_links(&self, name: &str) -> Vec<Digest> {
        list_digests(&self.repo_dir(name).join("_layers").join("sha256"))
    }

    // ---- uploads ----

    /// Starts an upload: `_uploads/<id>/startedat` and an empty `data`.
    pub fn start_upload(&self, name: &str) -> io::Result<String> {
        let id = new_uuid()?;
        let dir = self.upload_dir(name, &id);
        std::fs::create_dir_all(&dir)?;
        File::create(dir.join("data"))?;
        // distribution writes RFC 3339 in whole seconds, UTC.
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let stamp = crate::timefmt::rfc3339_nanos(i64::try_from(now.as_secs()).unwrap_or(0), 0);
        let stamp = stamp.split('.').next().unwrap_or(&stamp).to_string() + "Z";
        atomic::write(&dir.join("startedat"), stamp.as_bytes())?;
        Ok(id)
    }

    /// The bytes received so far; BLOB_UPLOAD_UNKNOWN if there is no such upload.
    pub fn upload_size(&self, name: &str, id: &str) -> Result<u64, ApiError> {
        let dir = self.upload_dir(name, id);
        if !dir.join("startedat").is_file() {
            return Err(ApiError::upload_unknown(id));
        }
        Ok(std::fs::metadata(dir.join("data")).map(|m| m.len()).unwrap_or(0))
    }

    /// The uploads of a repository.
    pub fn uploads(&self, name: &str) -> Vec<String> {
        list_dir(&self.uploads_dir(name))
    }

    /// Cancels an upload; BLOB_UPLOAD_UNKNOWN if there is none.
    pub fn cancel_upload(&self, name: &str, id: &str) -> Result<(), ApiError> {
        self.upload_size(name, id)?;
        self.drop_upload(name, id);
        Ok(())
    }

    fn drop_upload(&self, name: &str, id: &str) {
        self.hashes.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        let _ = std::fs::remove_dir_all(self.upload_dir(name, id));
    }

    /// Opens an upload's data file and locks it against concurrent requests on the same upload.
    fn open_upload(&self, name: &str, id: &str) -> Result<Flock<File>, ApiError> {
        use std::os::unix::fs::MetadataExt;
        self.upload_size(name, id)?;
        let path = self.upload_data(name, id);
        let f = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ApiError::upload_unknown(id)),
            Err(e) => return Err(e.into()),
        };
        let f = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| ApiError::from(io::Error::from(e)))?;
        // While this request waited, another may have finished the upload: its data file is then
        // a committed blob (renamed away) and must never be written to again.
        let locked = f.metadata()?;
        let still_there = std::fs::metadata(&path).is_ok_and(|m| m.ino() == locked.ino() && m.dev() == locked.dev());
        if !still_there || !self.upload_dir(name, id).join("startedat").is_file() {
            return Err(ApiError::upload_unknown(id));
        }
        Ok(f)
    }

    /// The hash state after the first `size` bytes of an upload: remembered, or recomputed.
    fn hash_state(&self, id: &str, file: &mut File, size: u64) -> io::Result<Sha256> {
        let cached = self.hashes.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        if let Some((n, h)) = cached {
            if n == size {
                return Ok(h);
            }
        }
        file.seek(SeekFrom::Start(0))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut r = (&mut *file).take(size);
        loop {
            let k = r.read(&mut buf)?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
        }
        Ok(h)
    }

    fn keep_hash_state(&self, id: &str, size: u64, h: Sha256) {
        let mut m = self.hashes.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_HASH_STATES {
            m.clear();
        }
        m.insert(id.to_string(), (size, h));
    }

    /// Appends `body` to an upload. With `start` (from Content-Range) the chunk must begin exactly
    /// where the upload ends, else RANGE_INVALID (416). Returns the new size. The body is streamed
    /// to disk, never held in memory.
    pub fn append(&self, name: &str, id: &str, start: Option<u64>, body: &mut dyn Read) -> Result<u64, ApiError> {
        let mut f = self.open_upload(name, id)?;
        let size = f.metadata()?.len();
        if let Some(s) = start {
            if s != size {
                return Err(ApiError::new(416, "RANGE_INVALID", "chunk does not start where the upload ends")
                    .detail(serde_json::json!({ "expected": size, "got": s }))
                    .header("Range", range_header(size)));
            }
        }
        let mut h = self.hash_state(id, &mut f, size)?;
        f.seek(SeekFrom::Start(size))?;
        let mut n = size;
        let mut buf = vec![0u8; 1 << 18];
        loop {
            let k = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ApiError::new(400, "BLOB_UPLOAD_INVALID", format!("reading the chunk: {e}")));
                }
            };
            f.write_all(&buf[..k])?;
            h.update(&buf[..k]);
            n += k as u64;
        }
        self.keep_hash_state(id, n, h);
        Ok(n)
    }

    /// Completes an upload as blob `expected`: the content is hashed (or its running hash used)
    /// and must match, else the upload is discarded and DIGEST_INVALID returned with nothing
    /// visible. On success the blob is in the store and linked into the repository.
    pub fn finish_upload(&self, name: &str, id: &str, expected: &Digest) -> Result<u64, ApiError> {
        let mut f = self.open_upload(name, id)?;
        let size = f.metadata()?.len();
        let h = self.hash_state(id, &mut f, size)?;
        let got = Digest::parse(&format!("sha256:{}", digest::hex(&h.finalize()))).map_err(io::Error::other)?;
        if &got != expected {
            self.drop_upload(name, id);
            drop(f);
            return Err(ApiError::digest_invalid("provided digest did not match uploaded content")
                .detail(serde_json::json!({ "expected": expected.as_str(), "computed": got.as_str(), "size": size })));
        }
        f.sync_all()?;
        {
            let _g = self.commit_guard()?;
            self.commit_blob(&self.upload_data(name, id), expected)?;
            write_link(&self.layer_link(name, expected), expected)?;
        }
        // The upload disappears before its lock is released (see open_upload).
        self.drop_upload(name, id);
        drop(f);
        Ok(size)
    }

    // ---- manifests and tags ----

    /// Stores a manifest. `check` runs under the commit guard, after the content is staged and
    /// before anything is visible: it verifies (and refreshes) what the manifest references.
    pub fn put_manifest(
        &self,
        name: &str,
        bytes: &[u8],
        d: &Digest,
        tag: Option<&str>,
        check: impl FnOnce() -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let id = self.start_upload(name)?;
        let staged = self.upload_data(name, &id);
        let result = (|| {
            atomic::write(&staged, bytes)?;
            let _g = self.commit_guard()?;
            check()?;
            self.commit_blob(&staged, d)?;
            write_link(&self.revision_link(name, d), d)?;
            if let Some(t) = tag {
                write_link(&self.tag_index_link(name, t, d), d)?;
                write_link(&self.tag_current(name, t), d)?;
            }
            Ok(())
        })();
        self.drop_upload(name, &id);
        result
    }

    /// Is `d` a manifest revision of the repository?
    pub fn has_revision(&self, name: &str, d: &Digest) -> bool {
        read_link(&self.revision_link(name, d)).as_ref() == Some(d)
    }

    /// Refreshes a revision's link (gc keeps young revision links under `--delete-untagged`).
    pub fn touch_revision(&self, name: &str, d: &Digest) -> io::Result<bool> {
        touch(&self.revision_link(name, d))
    }

    pub fn revision_mtime(&self, name: &str, d: &Digest) -> Option<SystemTime> {
        std::fs::metadata(self.revision_link(name, d)).and_then(|m| m.modified()).ok()
    }

    /// A manifest revision's bytes, if the repository has it and its blob is present.
    pub fn manifest(&self, name: &str, d: &Digest) -> Option<Vec<u8>> {
        if !self.has_revision(name, d) {
            return None;
        }
        let f = File::open(self.blob_data(d)).ok()?;
        let mut v = Vec::new();
        f.take(MAX_STORED_MANIFEST as u64).read_to_end(&mut v).ok()?;
        Some(v)
    }

    /// Every manifest revision of a repository.
    pub fn revisions(&self, name: &str) -> Vec<Digest> {
        list_digests(&self.revisions_dir(name)).into_iter().filter(|d| self.has_revision(name, d)).collect()
    }

    /// Removes a manifest revision and every tag pointing at it; false if unknown.
    pub fn delete_manifest(&self, name: &str, d: &Digest) -> io::Result<bool> {
        if !self.has_revision(name, d) {
            return Ok(false);
        }
        for tag in self.tags(name).unwrap_or_default() {
            if self.resolve_tag(name, &tag).as_ref() == Some(d) {
                self.delete_tag(name, &tag)?;
            }
        }
        remove_linked_dir(&self.revision_link(name, d))
    }

    /// Removes a revision link alone (gc's `--delete-untagged`), with its tag-index entries.
    pub fn remove_revision(&self, name: &str, d: &Digest) -> io::Result<()> {
        for tag in self.tags(name).unwrap_or_default() {
            remove_linked_dir(&self.tag_index_link(name, &tag, d))?;
        }
        remove_linked_dir(&self.revision_link(name, d)).map(|_| ())
    }

    /// The manifest a tag points at.
    pub fn resolve_tag(&self, name: &str, tag: &str) -> Option<Digest> {
        read_link(&self.tag_current(name, tag))
    }

    /// Removes a tag; false if it did not exist.
    pub fn delete_tag(&self, name: &str, tag: &str) -> io::Result<bool> {
        let current = self.tag_current(name, tag);
        // The current link goes first: a crash midway leaves no half-tag that lists.
        match std::fs::remove_file(&current) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
        std::fs::remove_dir_all(self.tags_dir(name).join(tag))?;
        Ok(true)
    }

    /// The tags of a repository, sorted; None if the repository does not exist.
    pub fn tags(&self, name: &str) -> Option<Vec<String>> {
        if !self.repo_exists(name) {
            return None;
        }
        let dir = self.tags_dir(name);
        let mut tags: Vec<String> =
            list_dir(&dir).into_iter().filter(|t| read_link(&self.tag_current(name, t)).is_some()).collect();
        tags.sort();
        Some(tags)
    }

    /// Does the repository exist (has it ever received anything)?
    pub fn repo_exists(&self, name: &str) -> bool {
        let dir = self.repo_dir(name);
        ["_manifests", "_layers", "_uploads"].iter().any(|d| dir.join(d).is_dir())
    }

    /// Every repository with manifests, sorted (the catalog; as distribution, a directory is a
    /// repository when it has `_manifests`).
    pub fn repository_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk_repos(&self.repositories(), "", 0, &["_manifests"], &mut out);
        out.sort();
        out
    }

    /// Every repository with anything in it (gc also visits those with only layers or uploads).
    pub fn all_repository_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk_repos(&self.repositories(), "", 0, &["_manifests", "_layers", "_uploads"], &mut out);
        out.sort();
        out
    }
}

/// How deep repository names may nest (a name is at most 255 characters).
const MAX_NAME_DEPTH: usize = 128;

/// Collects the repositories under `dir`: directories holding one of the `markers`.
fn walk_repos(dir: &Path, prefix: &str, depth: usize, markers: &[&str], out: &mut Vec<String>) {
    if depth > MAX_NAME_DEPTH {
        return;
    }
    for entry in list_dir(dir) {
        if entry.starts_with('_') {
            continue;
        }
        let name = if prefix.is_empty() { entry.clone() } else { format!("{prefix}/{entry}") };
        let path = dir.join(&entry);
        if markers.iter().any(|d| path.join(d).is_dir()) {
            out.push(name.clone());
        }
        walk_repos(&path, &name, depth + 1, markers, out);
    }
}

/// The `Range` header of an upload holding `size` bytes (`0-0` when empty, as distribution says).
pub fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// The names in a directory (empty if it does not exist).
fn list_dir(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect()
}

/// The digests named by the `<hex>` directories under `dir`.
fn list_digests(dir: &Path) -> Vec<Digest> {
    list_dir(dir).into_iter().filter_map(|h| Digest::parse(&format!("sha256:{h}")).ok()).collect()
}

/// A link file's digest.
pub fn read_link(path: &Path) -> Option<Digest> {
    let s = std::fs::read_to_string(path).ok()?;
    Digest::parse(s.trim()).ok()
}

/// Writes a link file atomically and durably.
fn write_link(path: &Path, d: &Digest) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    atomic::write(path, d.as_str().as_bytes())
}

/// Removes a link file, then its directory; false if there was no link.
fn remove_linked_dir(link: &Path) -> io::Result<bool> {
    match std::fs::remove_file(link) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    if let Some(dir) = link.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(true)
}

/// Sets a file's mtime (and atime) to now without opening it for writing; false if absent.
fn touch(path: &Path) -> io::Result<bool> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    match utimensat(None, path, &TimeSpec::UTIME_NOW, &TimeSpec::UTIME_NOW, UtimensatFlags::FollowSymlink) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// A random (version 4) UUID, as distribution names its uploads.
fn new_uuid() -> io::Result<String> {
    let mut b = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = digest::hex(&b);
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_commit_and_layout() {
        let root = atomic::tests::temp_dir("registry-storage");
        let s = Storage::new(&root);
        let id = s.start_upload("lib/x").unwrap();
        assert_eq!(id.len(), 36);
        let started = std::fs::read_to_string(s.upload_dir("lib/x", &id).join("startedat")).unwrap();
        assert!(started.ends_with('Z') && !started.contains('.'), "{started}");
        assert_eq!(s.append("lib/x", &id, Some(0), &mut &b"hello "[..]).unwrap(), 6);
        assert_eq!(s.append("lib/x", &id, Some(3), &mut &b"x"[..]).unwrap_err().status, 416);
        assert_eq!(s.append("lib/x", &id, None, &mut &b"world"[..]).unwrap(), 11);
        // A fresh process (no remembered hash state) gets the same digest.
        s.hashes.lock().unwrap().clear();
        let d = Digest::of(b"hello world");
        assert_eq!(s.finish_upload("lib/x", &id, &d).unwrap(), 11);
        let v2 = root.join("docker/registry/v2");
        let data = v2.join(format!("blobs/sha256/{}/{}/data", &d.hex()[..2], d.hex()));
        assert_eq!(std::fs::read(data).unwrap(), b"hello world");
        let link = v2.join(format!("repositories/lib/x/_layers/sha256/{}/link", d.hex()));
        assert_eq!(std::fs::read_to_string(link).unwrap(), d.as_str());
        assert!(!s.upload_dir("lib/x", &id).exists());
        assert_eq!(s.repo_blob("lib/x", &d), Some(11));
        assert_eq!(s.repo_blob("lib/y", &d), None);

        // A wrong digest leaves nothing behind.
        let id = s.start_upload("lib/x").unwrap();
        s.append("lib/x", &id, None, &mut &b"other"[..]).unwrap();
        assert_eq!(s.finish_upload("lib/x", &id, &d).unwrap_err().code, "DIGEST_INVALID");
        assert!(s.blob_size(&Digest::of(b"other")).is_none());
        assert!(!s.upload_dir("lib/x", &id).exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn manifests_tags_and_catalog() {
        let root = atomic::tests::temp_dir("registry-manifests");
        let s = Storage::new(&root);
        let m = b"{}".to_vec();
        let d = Digest::of(&m);
        s.put_manifest("a/b", &m, &d, Some("v1"), || Ok(())).unwrap();
        s.put_manifest("a/b", &m, &d, Some("v2"), || Ok(())).unwrap();
        let refused = s.put_manifest("c", &m, &d, Some("v1"), || Err(ApiError::manifest_invalid("no")));
        assert!(refused.is_err());
        assert_eq!(s.resolve_tag("a/b", "v1"), Some(d.clone()));
        assert_eq!(s.tags("a/b").unwrap(), vec!["v1", "v2"]);
        assert_eq!(s.repository_names(), vec!["a/b".to_string()]);
        assert!(s.manifest("c", &d).is_none());
        assert!(s.tags("nope").is_none());
        assert!(s.uploads("a/b").is_empty());
        assert!(s.delete_tag("a/b", "v2").unwrap());
        assert!(s.delete_manifest("a/b", &d).unwrap());
        assert!(s.tags("a/b").unwrap().is_empty());
        assert!(s.manifest("a/b", &d).is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
