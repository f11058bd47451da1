//! The image store: an OCI image layout at `<root>/images` plus unpacked layers at
//! `<root>/layers/sha256/<chain-id>/{diff/,layer.json}`.
//!
//! `index.json` is the only mutable file and the single source of truth for names: one descriptor
//! per reference, the full reference (`docker.io/library/busybox:latest`, or `…@sha256:…` for a
//! repo digest) in `org.opencontainers.image.ref.name`, and one descriptor without that annotation
//! for an image that has no name (dangling). The image ID is the config digest. Blobs and unpacked
//! layers are write-once: staged under `tmp/`, verified, renamed into place; `layer.json` beside a
//! layer's `diff/` records its diff ID and unpacked size. Loading and importing live in
//! `archive.rs` and `config.rs`; both end in [`ImageStore::commit`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::layer::{self, UnpackOptions};
use super::reference::{id_prefix, Reference};
use super::Error;
use crate::store::atomic;
use crate::store::digest::Digest;
use crate::store::layout::Layout;

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The annotation holding a descriptor's reference in `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd and Docker 25+ put the full image name in.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// Largest JSON document (manifest, config, index) read into memory.
pub(super) const JSON_MAX: u64 = 16 << 20;

static STAGE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An OCI content descriptor (the fields this store uses).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform: Option<Value>,
}

/// An image manifest (OCI or Docker schema2; the shapes agree on these fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl Manifest {
    /// Parses and checks a manifest: schema 2, valid digests, and no layer media type this store
    /// cannot unpack.
    pub fn parse(data: &[u8]) -> Result<Manifest, String> {
        let m: Manifest = serde_json::from_slice(data).map_err(|e| format!("invalid manifest: {e}"))?;
        if m.schema_version != 2 {
            return Err(format!("unsupported manifest schema version {}", m.schema_version));
        }
        for d in std::iter::once(&m.config).chain(&m.layers) {
            Digest::parse(&d.digest)?;
        }
        if let Some(l) = m.layers.iter().find(|l| l.media_type.contains("zstd") || l.media_type.contains("foreign")) {
            return Err(format!("unsupported layer media type {}", l.media_type));
        }
        Ok(m)
    }
}

/// One image as the API sees it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The config digest.
    pub id: Digest,
    /// The manifest that describes it in `index.json`.
    pub manifest: Digest,
    /// Familiar `name:tag` strings, sorted.
    pub repo_tags: Vec<String>,
    /// Familiar `name@sha256:…` strings, sorted.
    pub repo_digests: Vec<String>,
    /// The parsed image config (OCI / Docker image JSON).
    pub config: Value,
    pub diff_ids: Vec<Digest>,
    pub chain_ids: Vec<Digest>,
    /// Unpacked bytes of each layer, bottom first.
    pub layer_sizes: Vec<u64>,
    /// RFC 3339 creation time from the config, empty if absent.
    pub created: String,
    /// Sum of the layer sizes.
    pub size: u64,
}

impl Image {
    /// The first 12 hex digits of the ID, as Docker prints it.
    pub fn short_id(&self) -> &str {
        &self.id.hex()[..12]
    }
}

/// A container that uses an image, as the daemon reports it to [`ImageStore::remove`].
#[derive(Debug, Clone)]
pub struct User {
    pub container: String,
    pub running: bool,
}

/// One line of `docker rmi` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Untagged(String),
    Deleted(String),
}

impl Deleted {
    /// `{"Untagged": "busybox:latest"}` / `{"Deleted": "sha256:…"}`.
    pub fn to_json(&self) -> Value {
        match self {
            Deleted::Untagged(s) => json!({ "Untagged": s }),
            Deleted::Deleted(s) => json!({ "Deleted": s }),
        }
    }
}

/// What `layer.json` records beside an unpacked layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LayerMeta {
    pub diff_id: String,
    pub size: u64,
}

/// One descriptor of `index.json`, with what the store derives from it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub desc: Descriptor,
    pub manifest: Digest,
    pub reference: Option<Reference>,
    pub config: Digest,
}

/// An image staged by load or import, verified and ready to commit.
pub(super) struct Pending {
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
    pub config: Vec<u8>,
    /// (blob file to move into blobs/, its digest) for each layer blob not already stored.
    pub blobs: Vec<(PathBuf, Digest)>,
    pub refs: Vec<Reference>,
}

/// The image store. One per data root and process; index updates are serialised by a mutex inside.
pub struct ImageStore {
    pub(super) layout: Layout,
    pub(super) index: Mutex<Vec<Entry>>,
}

impl ImageStore {
    /// Opens the store, creating an empty OCI layout on first use and sweeping staging dirs a
    /// crashed process left behind.
    pub fn open(layout: &Layout) -> io::Result<ImageStore> {
        let images = layout.images_dir();
        for d in [layout.blobs_dir(), layout.layers_dir(), layout.tmp()] {
            fs::create_dir_all(d)?;
        }
        let oci_layout = images.join("oci-layout");
        if !oci_layout.exists() {
            atomic::write(&oci_layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        for e in fs::read_dir(layout.tmp())?.flatten() {
            if e.file_name().to_string_lossy().starts_with("image-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        for e in fs::read_dir(layout.layers_dir())?.flatten() {
            if e.file_name().to_string_lossy().ends_with(".removing") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let store = ImageStore { layout: layout.clone(), index: Mutex::new(Vec::new()) };
        let entries = store.read_index()?;
        *store.lock() = entries;
        Ok(store)
    }

    fn read_index(&self) -> io::Result<Vec<Entry>> {
        let path = self.layout.images_index();
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()));
        let v: Value = serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
        let descs: Vec<Descriptor> =
            serde_json::from_value(v.get("manifests").cloned().unwrap_or(json!([]))).map_err(|e| bad(e.to_string()))?;
        let mut out = Vec::new();
        for desc in descs {
            // An entry whose manifest is unreadable is skipped, not fatal: the rest stays usable.
            let Ok(manifest) = Digest::parse(&desc.digest) else { continue };
            let Ok(m) = self.read_manifest(&manifest) else { continue };
            let Ok(config) = Digest::parse(&m.config.digest) else { continue };
            let reference = desc
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_REF_NAME))
                .and_then(|r| Reference::parse_name_only(r).ok().filter(|r| r.tag.is_some() || r.digest.is_some()));
            out.push(Entry { desc, manifest, reference, config });
        }
        Ok(out)
    }

    /// Writes `index.json` from `entries` (called with the lock held).
    pub(super) fn write_index(&self, entries: &[Entry]) -> io::Result<()> {
        let manifests: Vec<&Descriptor> = entries.iter().map(|e| &e.desc).collect();
        let doc = json!({ "schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": manifests });
        atomic::write(&self.layout.images_index(), &serde_json::to_vec_pretty(&doc).unwrap_or_default())
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic elsewhere while holding the lock leaves the index as it was on disk; keep going.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads a blob of at most `max` bytes.
    pub(super) fn read_blob(&self, d: &Digest, max: u64) -> io::Result<Vec<u8>> {
        let path = self.layout.blob(d);
        let len = fs::metadata(&path)?.len();
        if len > max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("blob {d} too large ({len} bytes)")));
        }
        fs::read(path)
    }

    pub(super) fn read_manifest(&self, d: &Digest) -> io::Result<Manifest> {
        Manifest::parse(&self.read_blob(d, JSON_MAX)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// A fresh staging directory under `tmp/`, removed by the caller (or by the next open).
    pub(super) fn stage_dir(&self, what: &str) -> io::Result<PathBuf> {
        let d = self.layout.tmp().join(format!(
            "image-{what}-{}-{}",
            std::process::id(),
            STAGE_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&d)?;
        Ok(d)
    }

    /// Builds the [`Image`] for config `id` from the entries naming it.
    fn image_of(&self, entries: &[Entry], id: &Digest) -> Result<Image, Error> {
        let mine: Vec<&Entry> = entries.iter().filter(|e| &e.config == id).collect();
        let first = mine.first().ok_or_else(|| Error::NotFound(format!("No such image: {id}")))?;
        let config_bytes = self.read_blob(id, JSON_MAX).map_err(|e| Error::io(format!("image {id}"), e))?;
        let config: Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::InvalidInput(format!("image {id}: invalid config: {e}")))?;
        let diff_ids = diff_ids_of(&config).map_err(Error::InvalidInput)?;
        let chain_ids = layer::chain_ids(&diff_ids);
        let manifest = self.read_manifest(&first.manifest).ok();
        let layer_sizes: Vec<u64> = chain_ids
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.layer_meta(c)
                    .map(|m| m.size)
                    .unwrap_or_else(|| manifest.as_ref().and_then(|m| m.layers.get(i)).map(|l| l.size).unwrap_or(0))
            })
            .collect();
        let mut repo_tags = BTreeSet::new();
        let mut repo_digests = BTreeSet::new();
        for e in &mine {
            if let Some(r) = &e.reference {
                if r.digest.is_some() {
                    repo_digests.insert(format!(
                        "{}@{}",
                        r.familiar_name(),
                        r.digest.as_ref().map_or("", |d| d.as_str())
                    ));
                } else {
                    repo_tags.insert(r.familiar());
                }
            }
        }
        Ok(Image {
            id: id.clone(),
            manifest: first.manifest.clone(),
            repo_tags: repo_tags.into_iter().collect(),
            repo_digests: repo_digests.into_iter().collect(),
            created: config.get("created").and_then(Value::as_str).unwrap_or("").to_string(),
            size: layer_sizes.iter().sum(),
            config,
            diff_ids,
            chain_ids,
            layer_sizes,
        })
    }

    pub(super) fn layer_meta(&self, chain: &Digest) -> Option<LayerMeta> {
        let data = fs::read(self.layout.layer_dir(chain).join("layer.json")).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Finds an image the way Docker does: full ID, then reference, then a unique ID prefix.
    /// Returns the image and the reference it was found by (None when found by ID).
    fn lookup(&self, entries: &[Entry], name: &str) -> Result<(Digest, Option<Reference>), Error> {
        let not_found = |shown: &str| Error::NotFound(format!("No such image: {shown}"));
        if let Some(hex) = id_prefix(name).filter(|h| h.len() == 64) {
            if let Some(e) = entries.iter().find(|e| e.config.hex() == hex) {
                return Ok((e.config.clone(), None));
            }
        }
        let parsed = Reference::parse(name);
        if let Ok(r) = &parsed {
            let hit = entries.iter().find(|e| match (&e.reference, &r.digest) {
                // name@digest matches a stored repo digest or any entry of that name with that manifest.
                (Some(er), Some(d)) => er.name() == r.name() && (er.digest.as_ref() == Some(d) || &e.manifest == d),
                (Some(er), None) => er == r,
                (None, _) => false,
            });
            if let Some(e) = hit {
                return Ok((e.config.clone(), Some(r.clone())));
            }
        }
        if let Some(hex) = id_prefix(name) {
            let ids: BTreeSet<&Digest> =
                entries.iter().filter(|e| e.config.hex().starts_with(hex)).map(|e| &e.config).collect();
            if ids.len() == 1 {
                return Ok((ids.into_iter().next().cloned().ok_or_else(|| not_found(name))?, None));
            }
        }
        match parsed {
            Ok(r) => Err(not_found(&r.familiar())),
            Err(e) if id_prefix(name).is_none() => Err(Error::InvalidInput(e)),
            Err(_) => Err(not_found(name)),
        }
    }

    /// Resolves a name, reference or (short) ID to an image.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image, Error> {
        let entries = self.lock().clone();
        let (id, _) = self.lookup(&entries, name_or_id)?;
        self.image_of(&entries, &id)
    }

    /// Every image, newest first; an image whose config cannot be read is left out.
    pub fn list(&self) -> Vec<Image> {
        let entries = self.lock().clone();
        let ids: BTreeSet<Digest> = entries.iter().map(|e| e.config.clone()).collect();
        let mut out: Vec<Image> = ids.iter().filter_map(|id| self.image_of(&entries, id).ok()).collect();
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        out
    }

    /// `docker tag SOURCE TARGET`: points TARGET (default tag `latest`) at SOURCE's image. The image
    /// TARGET named before keeps its other names, or becomes dangling.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), Error> {
        let target = Reference::parse(target).map_err(Error::InvalidInput)?;
        if target.digest.is_some() {
            return Err(Error::InvalidInput("refusing to create a tag with a digest reference".into()));
        }
        let mut entries = self.lock();
        let (id, _) = self.lookup(&entries, source)?;
        let desc = entries
            .iter()
            .find(|e| e.config == id)
            .map(|e| e.desc.clone())
            .ok_or_else(|| Error::NotFound(format!("No such image: {source}")))?;
        let mut next: Vec<Entry> = entries.iter().filter(|e| e.reference.as_ref() != Some(&target)).cloned().collect();
        let entry = Entry {
            desc: with_ref(&desc, Some(&target)),
            manifest: Digest::parse(&desc.digest).map_err(Error::InvalidInput)?,
            reference: Some(target),
            config: id,
        };
        next.push(entry);
        let next = normalise(next);
        self.write_index(&next).map_err(|e| Error::io("writing image index", e))?;
        *entries = next;
        Ok(())
    }

    /// `docker rmi`: untags, and deletes the image (blobs and layers no other image uses) when no
    /// name is left, with Docker's conflict rules. `in_use` reports a container using an image ID.
    ///
    /// Unlike Docker, `force` never deletes the layers of an image a stopped container still uses
    /// (they are its overlay lowerdirs here): such an image is only untagged and left dangling.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> Option<User>,
    ) -> Result<Vec<Deleted>, Error> {
        let mut entries = self.lock();
        let (id, by_ref) = self.lookup(&entries, name)?;
        let short = &id.hex()[..12];
        let user = in_use(&id);
        let refs: Vec<Reference> =
            entries.iter().filter(|e| e.config == id).filter_map(|e| e.reference.clone()).collect();
        let mut records = Vec::new();
        let mut next: Vec<Entry> = entries.clone();
        let mut quiet = false;
        if let Some(r) = by_ref {
            // The stored reference that matched (a digest lookup may match by manifest).
            let stored = refs
                .iter()
                .find(|s| **s == r || (r.digest.is_some() && s.name() == r.name() && s.digest == r.digest))
                .cloned()
                .unwrap_or(r.clone());
            if !force && refs.len() <= 1 {
                if let Some(u) = &user {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to remove repository reference {name:?} (must force) - container {} is using its referenced image {short}",
                        trunc(&u.container)
                    )));
                }
            }
            next.retain(|e| e.reference.as_ref() != Some(&stored));
            records.push(Deleted::Untagged(stored.familiar()));
            // Removing a repo's last tag also drops its digest references (Docker does the same).
            let tag_left = next.iter().any(|e| {
                e.config == id && e.reference.as_ref().is_some_and(|x| x.digest.is_none() && x.name() == stored.name())
            });
            if stored.digest.is_none() && !tag_left {
                next.retain(|e| {
                    let drop = e.config == id
                        && e.reference.as_ref().is_some_and(|x| x.digest.is_some() && x.name() == stored.name());
                    if drop {
                        if let Some(x) = &e.reference {
                            records.push(Deleted::Untagged(format!(
                                "{}@{}",
                                x.familiar_name(),
                                x.digest.as_ref().map_or("", |d| d.as_str())
                            )));
                        }
                    }
                    !drop
                });
            }
            if next.iter().any(|e| e.config == id && e.reference.is_some()) {
                let next = normalise_keep(next, &id, &entries);
                self.write_index(&next).map_err(|e| Error::io("writing image index", e))?;
                *entries = next;
                return Ok(records);
            }
            quiet = true;
        }
        // Delete the image itself.
        let repos: BTreeSet<String> = refs.iter().map(Reference::name).collect();
        let conflict = |hard: bool, msg: String| {
            Error::Conflict(format!(
                "conflict: unable to delete {short} ({}) - {msg}",
                if hard { "cannot be forced" } else { "must be forced" }
            ))
        };
        match &user {
            Some(u) if u.running => {
                if quiet {
                    let kept = normalise_keep(next, &id, &entries);
                    return self.commit_index(&mut entries, kept, records);
                }
                return Err(conflict(
                    true,
                    format!("image is being used by running container {}", trunc(&u.container)),
                ));
            }
            Some(u) => {
                if quiet || force {
                    // Keep the image, dangling, for the stopped container; untag what is left.
                    untag_all(&mut next, &id, &mut records);
                    let kept = normalise_keep(next, &id, &entries);
                    return self.commit_index(&mut entries, kept, records);
                }
                return Err(conflict(
                    false,
                    format!("image is being used by stopped container {}", trunc(&u.container)),
                ));
            }
            None => {}
        }
        if !quiet && repos.len() > 1 && !force {
            return Err(conflict(false, "image is referenced in multiple repositories".into()));
        }
        untag_all(&mut next, &id, &mut records);
        next.retain(|e| e.config != id);
        let (deleted, _) = self.delete_unused(&entries, &next, std::slice::from_ref(&id))?;
        records.extend(deleted);
        self.write_index(&next).map_err(|e| Error::io("writing image index", e))?;
        *entries = next;
        Ok(records)
    }

    fn commit_index(
        &self,
        entries: &mut Vec<Entry>,
        next: Vec<Entry>,
        records: Vec<Deleted>,
    ) -> Result<Vec<Deleted>, Error> {
        self.write_index(&next).map_err(|e| Error::io("writing image index", e))?;
        *entries = next;
        Ok(records)
    }

    /// Deletes the blobs and unpacked layers of `gone` images that no image in `kept` uses.
    /// Returns the `Deleted` records (image IDs, then chain IDs top first) and the bytes freed.
    fn delete_unused(&self, before: &[Entry], kept: &[Entry], gone: &[Digest]) -> Result<(Vec<Deleted>, u64), Error> {
        let mut live_blobs: HashSet<Digest> = HashSet::new();
        let mut live_chains: HashSet<Digest> = HashSet::new();
        for id in kept.iter().map(|e| e.config.clone()).collect::<BTreeSet<_>>() {
            live_blobs.insert(id.clone());
            if let Ok(img) = self.image_of(kept, &id) {
                live_chains.extend(img.chain_ids);
            }
        }
        for e in kept {
            live_blobs.insert(e.manifest.clone());
            if let Ok(m) = self.read_manifest(&e.manifest) {
                live_blobs.extend(m.layers.iter().filter_map(|l| Digest::parse(&l.digest).ok()));
            }
        }
        let mut records = Vec::new();
        let mut freed = 0u64;
        for id in gone {
            let img = self.image_of(before, id).ok();
            let mut blobs = vec![id.clone()];
            for e in before.iter().filter(|e| &e.config == id) {
                blobs.push(e.manifest.clone());
                if let Ok(m) = self.read_manifest(&e.manifest) {
                    blobs.extend(m.layers.iter().filter_map(|l| Digest::parse(&l.digest).ok()));
                }
            }
            records.push(Deleted::Deleted(id.to_string()));
            if let Some(img) = img {
                for (chain, size) in img.chain_ids.iter().zip(&img.layer_sizes).rev() {
                    if live_chains.insert(chain.clone()) {
                        let dir = self.layout.layer_dir(chain);
                        if dir.exists() {
                            atomic::remove_dir(&dir).map_err(|e| Error::io(format!("removing layer {chain}"), e))?;
                            freed += size;
                        }
                        records.push(Deleted::Deleted(chain.to_string()));
                    }
                }
            }
            for b in blobs {
                if live_blobs.insert(b.clone()) {
                    match fs::remove_file(self.layout.blob(&b)) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => {
                            return Err(Error::io(format!("removing blob {b}"), e))
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok((records, freed))
    }

    /// `docker image prune`: deletes dangling images (or, with `dangling_only` false, every image)
    /// that no container uses. Returns the records and the unpacked bytes reclaimed.
    pub fn prune(
        &self,
        dangling_only: bool,
        in_use: &dyn Fn(&Digest) -> Option<User>,
    ) -> Result<(Vec<Deleted>, u64), Error> {
        let mut entries = self.lock();
        let ids: BTreeSet<Digest> = entries.iter().map(|e| e.config.clone()).collect();
        let gone: Vec<Digest> = ids
            .into_iter()
            .filter(|id| !dangling_only || !entries.iter().any(|e| &e.config == id && e.reference.is_some()))
            .filter(|id| in_use(id).is_none())
            .collect();
        let mut records = Vec::new();
        let mut next = entries.clone();
        for id in &gone {
            untag_all(&mut next, id, &mut records);
        }
        next.retain(|e| !gone.contains(&e.config));
        let (deleted, freed) = self.delete_unused(&entries, &next, &gone)?;
        records.extend(deleted);
        self.write_index(&next).map_err(|e| Error::io("writing image index", e))?;
        *entries = next;
        Ok((records, freed))
    }

    /// The unpacked `diff` directories of an image, bottom first, unpacking any that are missing
    /// from the stored blobs.
    pub fn layer_dirs(&self, image: &Image) -> io::Result<Vec<PathBuf>> {
        let manifest = self.read_manifest(&image.manifest)?;
        let mut out = Vec::new();
        for (i, chain) in image.chain_ids.iter().enumerate() {
            let dir = self.layout.layer_dir(chain);
            if !dir.join("diff").is_dir() {
                let blob = manifest.layers.get(i).and_then(|l| Digest::parse(&l.digest).ok()).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("image {}: manifest lacks layer {i}", image.id))
                })?;
                let stage = self.stage_dir("unpack")?;
                let r = self.unpack_layer(&self.layout.blob(&blob), &image.diff_ids[i], &stage.join("layer"));
                let r = r.and_then(|()| rename_new(&stage.join("layer"), &dir));
                let _ = fs::remove_dir_all(&stage);
                r?;
            }
            out.push(dir.join("diff"));
        }
        Ok(out)
    }

    /// Unpacks `blob` into `<dir>/diff`, checking its diff ID, and writes `<dir>/layer.json`.
    pub(super) fn unpack_layer(&self, blob: &Path, diff_id: &Digest, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir.join("diff"))?;
        let (got, size) = layer::unpack(fs::File::open(blob)?, &dir.join("diff"), &UnpackOptions::default())?;
        if &got != diff_id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("layer diff ID mismatch: config says {diff_id}, content is {got}"),
            ));
        }
        let meta = LayerMeta { diff_id: diff_id.to_string(), size };
        atomic::write(&dir.join("layer.json"), &serde_json::to_vec(&meta).unwrap_or_default())
    }

    /// Commits verified images: layer blobs, configs and manifests into `blobs/`, staged layer dirs
    /// (`<stage>/layers/<chain-hex>`) into `layers/`, names into `index.json`. Returns, per image,
    /// its ID and the references it now holds.
    pub(super) fn commit(&self, stage: &Path, pending: Vec<Pending>) -> Result<Vec<(Digest, Vec<Reference>)>, Error> {
        let io_err = |what: &str| {
            let what = what.to_string();
            move |e: io::Error| Error::io(&what, e)
        };
        crate::store::crash_point("image.staged");
        let mut entries = self.lock();
        let mut next = entries.clone();
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir(stage.join("layers")) {
            for e in rd.flatten() {
                let chain = Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy())).map_err(Error::Io)?;
                rename_new(&e.path(), &self.layout.layer_dir(&chain)).map_err(io_err("committing layer"))?;
            }
        }
        for p in pending {
            for (file, d) in &p.blobs {
                let dst = self.layout.blob(d);
                if !dst.exists() {
                    // Blobs are read-only once committed (DESIGN §3).
                    fs::set_permissions(file, fs::Permissions::from_mode(0o444)).map_err(io_err("committing blob"))?;
                    fs::rename(file, &dst).map_err(io_err("committing blob"))?;
                }
            }
            let config = Digest::of(&p.config);
            let manifest = Digest::of(&p.manifest);
            for (d, data) in [(&config, &p.config), (&manifest, &p.manifest)] {
                let dst = self.layout.blob(d);
                if !dst.exists() {
                    atomic::write_with(&dst, 0o444, |f| f.write_all(data)).map_err(io_err("committing blob"))?;
                }
            }
            let desc = Descriptor {
                media_type: p.manifest_media_type.clone(),
                digest: manifest.to_string(),
                size: p.manifest.len() as u64,
                annotations: None,
                platform: None,
            };
            for r in &p.refs {
                next.retain(|e| e.reference.as_ref() != Some(r));
                next.push(Entry {
                    desc: with_ref(&desc, Some(r)),
                    manifest: manifest.clone(),
                    reference: Some(r.clone()),
                    config: config.clone(),
                });
            }
            if !next.iter().any(|e| e.config == config) {
                next.push(Entry {
                    desc: desc.clone(),
                    manifest: manifest.clone(),
                    reference: None,
                    config: config.clone(),
                });
            }
            out.push((config, p.refs));
        }
        let next = normalise(next);
        atomic::sync_dir(&self.layout.blobs_dir()).map_err(io_err("syncing blobs"))?;
        crate::store::crash_point("image.blobs-committed");
        self.write_index(&next).map_err(io_err("writing image index"))?;
        *entries = next;
        Ok(out)
    }

    /// The layout this store lives in.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

/// Renames a staged directory into place; an existing target (another writer won) is fine since
/// layers are content-addressed.
fn rename_new(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(_) if to.join("diff").is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The diff IDs in an image config's `rootfs`.
pub(super) fn diff_ids_of(config: &Value) -> Result<Vec<Digest>, String> {
    let rootfs = config.get("rootfs").ok_or("config has no rootfs")?;
    if rootfs.get("type").and_then(Value::as_str) != Some("layers") {
        return Err("config rootfs type is not \"layers\"".into());
    }
    rootfs
        .get("diff_ids")
        .and_then(Value::as_array)
        .ok_or("config has no rootfs.diff_ids")?
        .iter()
        .map(|d| Digest::parse(d.as_str().unwrap_or("")))
        .collect()
}

/// A copy of `desc` annotated with `r` as its ref name (or with no annotations).
fn with_ref(desc: &Descriptor, r: Option<&Reference>) -> Descriptor {
    let mut d = desc.clone();
    d.annotations = r.map(|r| BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), r.to_string())]));
    d
}

/// Untags every reference of image `id` in `entries`, recording each.
fn untag_all(entries: &mut [Entry], id: &Digest, records: &mut Vec<Deleted>) {
    for e in entries.iter_mut().filter(|e| &e.config == id) {
        if let Some(r) = e.reference.take() {
            records.push(Deleted::Untagged(match &r.digest {
                Some(d) => format!("{}@{d}", r.familiar_name()),
                None => r.familiar(),
            }));
            e.desc = with_ref(&e.desc, None);
        }
    }
}

/// Drops nameless entries of images that have a name, and duplicate nameless entries.
fn normalise(entries: Vec<Entry>) -> Vec<Entry> {
    let named: HashSet<Digest> = entries.iter().filter(|e| e.reference.is_some()).map(|e| e.config.clone()).collect();
    let mut seen = HashSet::new();
    entries
        .into_iter()
        .filter(|e| e.reference.is_some() || (!named.contains(&e.config) && seen.insert(e.config.clone())))
        .collect()
}

/// [`normalise`], making sure image `id` keeps a (nameless) entry if it had one in `before`.
fn normalise_keep(mut entries: Vec<Entry>, id: &Digest, before: &[Entry]) -> Vec<Entry> {
    if !entries.iter().any(|e| &e.config == id) {
        if let Some(e) = before.iter().find(|e| &e.config == id) {
            entries.push(Entry { desc: with_ref(&e.desc, None), reference: None, ..e.clone() });
        }
    }
    normalise(entries)
}

/// A container or image ID shortened to 12 characters, as Docker prints them.
fn trunc(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}
