//! `docker save` / `docker load` archives.
//!
//! Load streams the archive once, spooling every regular entry to a file under a staging dir in
//! `tmp/` while hashing it (manifest.json may come last, and layers must not sit in memory). Then it
//! reads the legacy `manifest.json` (Config, RepoTags, Layers) — or, without one, the OCI layout
//! inside (`index.json`, `blobs/`) — verifies every blob digest and every layer's diff ID against the
//! config, unpacks new layers into the staging dir, and only then commits. Any error before the
//! commit leaves the store as it was; the staging dir is removed either way.
//!
//! Save writes both forms in one archive, as Docker 25+ does: blobs under `blobs/sha256/`, an OCI
//! `index.json` and `oci-layout`, and the legacy `manifest.json` and `repositories` pointing at the
//! same blobs. Layers go out exactly as stored (nothing is recompressed).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::layer;
use super::reference::Reference;
use super::store::{
    diff_ids_of, Descriptor, ImageStore, Manifest, Pending, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, JSON_MAX,
    MEDIA_DOCKER_LIST, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST,
};
use super::Error;
use crate::store::digest::{hex, Digest};

/// One image a load brought in.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub id: Digest,
    /// Familiar names it was loaded under (empty: only the ID is reported).
    pub tags: Vec<String>,
}

/// A spooled archive member.
#[derive(Debug, Clone)]
struct Spooled {
    path: PathBuf,
    digest: Digest,
    size: u64,
}

/// The archive's members by cleaned name; symlinks and hard links as name → target name.
struct Spool {
    dir: PathBuf,
    files: HashMap<String, Spooled>,
    links: HashMap<String, String>,
}

/// A verified image from the archive, before its layers are staged.
struct Candidate {
    manifest: Vec<u8>,
    manifest_media_type: String,
    config: Vec<u8>,
    layers: Vec<(Spooled, Digest)>,
    refs: Vec<Reference>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidInput(format!("invalid archive: {}", msg.into()))
}

impl Spool {
    fn read(dir: &Path, archive: impl Read) -> Result<Spool, Error> {
        let mut spool = Spool { dir: dir.to_path_buf(), files: HashMap::new(), links: HashMap::new() };
        let mut ar = tar::Archive::new(archive);
        let entries = ar.entries().map_err(|e| bad(e.to_string()))?;
        for (n, entry) in entries.enumerate() {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let name = clean_name(&entry.path_bytes(), "").ok_or_else(|| {
                bad(format!("{}: path escapes the archive", String::from_utf8_lossy(&entry.path_bytes())))
            })?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let path = spool.dir.join(format!("f{n}"));
                    let mut w = HashWriter { inner: File::create(&path)?, hash: Sha256::new(), n: 0 };
                    io::copy(&mut entry, &mut w).map_err(|e| bad(format!("{name}: {e}")))?;
                    if w.n != entry.size() {
                        return Err(bad(format!("{name}: truncated")));
                    }
                    let digest = Digest::parse(&format!("sha256:{}", hex(&w.hash.finalize()))).map_err(Error::Io)?;
                    spool.files.insert(name, Spooled { path, digest, size: w.n });
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry.link_name_bytes().ok_or_else(|| bad(format!("{name}: link without target")))?;
                    // Symlinks are relative to their directory, hard links to the archive root.
                    let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                        name.rsplit_once('/').map_or("", |(d, _)| d).to_string()
                    } else {
                        String::new()
                    };
                    let target =
                        clean_name(&target, &base).ok_or_else(|| bad(format!("{name}: link escapes the archive")))?;
                    spool.links.insert(name, target);
                }
                _ => {}
            }
        }
        Ok(spool)
    }

    fn get(&self, name: &str) -> Result<&Spooled, Error> {
        let mut name =
            clean_name(name.as_bytes(), "").ok_or_else(|| bad(format!("{name}: path escapes the archive")))?;
        for _ in 0..16 {
            if let Some(s) = self.files.get(&name) {
                return Ok(s);
            }
            match self.links.get(&name) {
                Some(t) => name = t.clone(),
                None => break,
            }
        }
        Err(bad(format!("{name} not found in archive")))
    }

    fn read_json_bytes(&self, name: &str) -> Result<Vec<u8>, Error> {
        let s = self.get(name)?;
        if s.size > JSON_MAX {
            return Err(bad(format!("{name}: too large")));
        }
        fs::read(&s.path).map_err(|e| Error::io(name, e))
    }

    /// A blob of the OCI layout inside the archive, checked against its descriptor's digest.
    fn blob(&self, d: &Digest) -> Result<&Spooled, Error> {
        let s = self.get(&format!("blobs/sha256/{}", d.hex()))?;
        if &s.digest != d {
            return Err(bad(format!("blob {d}: digest mismatch (content is {})", s.digest)));
        }
        Ok(s)
    }
}

/// Joins `name` to `base` and cleans it lexically; None if it climbs above the root.
fn clean_name(name: &[u8], base: &str) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let mut out: Vec<String> = base.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect();
    if name.starts_with(b"/") {
        out.clear();
    }
    for c in Path::new(std::ffi::OsStr::from_bytes(name)).components() {
        match c {
            Component::ParentDir => {
                out.pop()?;
            }
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    Some(out.join("/"))
}

struct HashWriter<W> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.hash.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Deserialize)]
struct LegacyManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The layer media type for a blob, from its first bytes.
fn layer_media_type(path: &Path) -> Result<&'static str, Error> {
    let mut head = [0u8; 2];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).map_err(|e| Error::io("reading layer", e))?;
    Ok(if layer::is_gzip(&head[..n]) { MEDIA_OCI_LAYER_GZIP } else { MEDIA_OCI_LAYER })
}

/// Checks a layer's content against the diff ID its config claims.
fn verify_diff_id(name: &str, s: &Spooled, want: &Digest) -> Result<(), Error> {
    let got = if layer_media_type(&s.path)? == MEDIA_OCI_LAYER {
        s.digest.clone() // an uncompressed layer's digest is its diff ID
    } else {
        layer::diff_id(File::open(&s.path)?).map_err(|e| Error::io(format!("layer {name}"), e))?
    };
    if &got != want {
        return Err(bad(format!("layer {name}: diff ID mismatch: config says {want}, content is {got}")));
    }
    Ok(())
}

fn parse_config(data: &[u8], name: &str) -> Result<Vec<Digest>, Error> {
    let v: Value = serde_json::from_slice(data).map_err(|e| bad(format!("{name}: invalid image config: {e}")))?;
    diff_ids_of(&v).map_err(|e| bad(format!("{name}: {e}")))
}

fn legacy_candidates(spool: &Spool) -> Result<Vec<Candidate>, Error> {
    let data = spool.read_json_bytes("manifest.json")?;
    let list: Vec<LegacyManifest> = serde_json::from_slice(&data).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for m in list {
        let config = spool.read_json_bytes(&m.config)?;
        let diff_ids = parse_config(&config, &m.config)?;
        if diff_ids.len() != m.layers.len() {
            return Err(bad(format!(
                "{}: config lists {} layers, manifest.json {}",
                m.config,
                diff_ids.len(),
                m.layers.len()
            )));
        }
        let mut layers = Vec::new();
        let mut descs = Vec::new();
        for (name, want) in m.layers.iter().zip(&diff_ids) {
            let s = spool.get(name)?;
            verify_diff_id(name, s, want)?;
            descs.push(json!({ "mediaType": layer_media_type(&s.path)?, "digest": s.digest.as_str(), "size": s.size }));
            layers.push((s.clone(), want.clone()));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": { "mediaType": MEDIA_OCI_CONFIG, "digest": Digest::of(&config).as_str(), "size": config.len() },
            "layers": descs,
        });
        let refs = m
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| Reference::parse(t).map_err(|e| bad(format!("manifest.json: {e}"))))
            .collect::<Result<_, _>>()?;
        out.push(Candidate {
            manifest: serde_json::to_vec(&manifest).unwrap_or_default(),
            manifest_media_type: MEDIA_OCI_MANIFEST.to_string(),
            config,
            layers,
            refs,
        });
    }
    Ok(out)
}

/// The platform this host runs images for, in OCI terms.
pub(super) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn oci_candidates(spool: &Spool) -> Result<Vec<Candidate>, Error> {
    let index: Value =
        serde_json::from_slice(&spool.read_json_bytes("index.json")?).map_err(|e| bad(format!("index.json: {e}")))?;
    let descs: Vec<Descriptor> = serde_json::from_value(index.get("manifests").cloned().unwrap_or(json!([])))
        .map_err(|e| bad(format!("index.json: {e}")))?;
    let mut out = Vec::new();
    for top in descs {
        let refs: Vec<Reference> = top
            .annotations
            .as_ref()
            .and_then(|a| {
                // Docker and containerd put the full name here; a bare tag in ref.name alone names nothing.
                a.get(ANNOTATION_IMAGE_NAME).or_else(|| a.get(ANNOTATION_REF_NAME).filter(|r| r.contains(['/', ':'])))
            })
            .and_then(|r| Reference::parse(r).ok())
            .into_iter()
            .collect();
        let mut desc = top;
        // Descend through nested indexes to this host's platform.
        for _ in 0..4 {
            if desc.media_type != MEDIA_OCI_INDEX && desc.media_type != MEDIA_DOCKER_LIST {
                break;
            }
            let d = Digest::parse(&desc.digest).map_err(bad)?;
            let nested: Value = serde_json::from_slice(&fs::read(&spool.blob(&d)?.path)?)
                .map_err(|e| bad(format!("index {d}: {e}")))?;
            let list: Vec<Descriptor> = serde_json::from_value(nested.get("manifests").cloned().unwrap_or(json!([])))
                .map_err(|e| bad(format!("index {d}: {e}")))?;
            let platform_ok = |p: &Option<Value>| {
                p.as_ref().is_none_or(|p| {
                    p.get("architecture").and_then(Value::as_str) == Some(host_arch())
                        && p.get("os").and_then(Value::as_str).unwrap_or("linux") == "linux"
                })
            };
            desc = list
                .into_iter()
                .find(|m| platform_ok(&m.platform))
                .ok_or_else(|| bad(format!("index {d}: no manifest for linux/{}", host_arch())))?;
        }
        let d = Digest::parse(&desc.digest).map_err(bad)?;
        let manifest_bytes = spool.read_json_bytes(&format!("blobs/sha256/{}", d.hex()))?;
        spool.blob(&d)?;
        let m = Manifest::parse(&manifest_bytes).map_err(|e| bad(format!("manifest {d}: {e}")))?;
        let cd = Digest::parse(&m.config.digest).map_err(bad)?;
        spool.blob(&cd)?;
        let config = spool.read_json_bytes(&format!("blobs/sha256/{}", cd.hex()))?;
        let diff_ids = parse_config(&config, cd.as_str())?;
        if diff_ids.len() != m.layers.len() {
            return Err(bad(format!("manifest {d}: {} layers, config {}", m.layers.len(), diff_ids.len())));
        }
        let mut layers = Vec::new();
        for (l, want) in m.layers.iter().zip(&diff_ids) {
            let ld = Digest::parse(&l.digest).map_err(bad)?;
            let s = spool.blob(&ld)?;
            verify_diff_id(ld.as_str(), s, want)?;
            layers.push((s.clone(), want.clone()));
        }
        let media = if m.media_type.is_empty() { desc.media_type.clone() } else { m.media_type.clone() };
        out.push(Candidate {
            manifest: manifest_bytes,
            manifest_media_type: if media.is_empty() { MEDIA_OCI_MANIFEST.to_string() } else { media },
            config,
            layers,
            refs,
        });
    }
    Ok(out)
}

impl ImageStore {
    /// `docker load`: reads a `docker save` archive (legacy or OCI form) and commits its images,
    /// reporting `Loaded image: NAME` or `Loaded image ID: sha256:…` through `progress`.
    /// On any error the store is unchanged.
    pub fn load(&self, archive: impl Read, progress: &mut dyn FnMut(&str)) -> Result<Vec<Loaded>, Error> {
        let stage = self.stage_dir("load")?;
        let r = self.load_staged(&stage, archive);
        let _ = fs::remove_dir_all(&stage);
        let loaded = r?;
        for l in &loaded {
            if l.tags.is_empty() {
                progress(&format!("Loaded image ID: {}", l.id));
            }
            for t in &l.tags {
                progress(&format!("Loaded image: {t}"));
            }
        }
        Ok(loaded)
    }

    fn load_staged(&self, stage: &Path, archive: impl Read) -> Result<Vec<Loaded>, Error> {
        fs::create_dir_all(stage.join("spool"))?;
        let spool = Spool::read(&stage.join("spool"), archive)?;
        let candidates = if spool.get("manifest.json").is_ok() {
            legacy_candidates(&spool)?
        } else if spool.get("index.json").is_ok() {
            oci_candidates(&spool)?
        } else {
            return Err(bad("no manifest.json or index.json"));
        };
        let pending = self.stage_layers(stage, candidates)?;
        let committed = self.commit(stage, pending)?;
        Ok(committed
            .into_iter()
            .map(|(id, refs)| Loaded { id, tags: refs.iter().map(Reference::familiar).collect() })
            .collect())
    }

    /// Unpacks every layer not already in the store into `<stage>/layers/<chain-hex>`.
    fn stage_layers(&self, stage: &Path, candidates: Vec<Candidate>) -> Result<Vec<Pending>, Error> {
        let mut staged = HashSet::new();
        let mut pending = Vec::new();
        for c in candidates {
            let diff_ids: Vec<Digest> = c.layers.iter().map(|(_, d)| d.clone()).collect();
            for ((s, diff_id), chain) in c.layers.iter().zip(layer::chain_ids(&diff_ids)) {
                if self.layout.layer_dir(&chain).join("diff").is_dir() || !staged.insert(chain.clone()) {
                    continue;
                }
                let dir = stage.join("layers").join(chain.hex());
                self.unpack_layer(&s.path, diff_id, &dir).map_err(|e| Error::io(format!("layer {diff_id}"), e))?;
            }
            pending.push(Pending {
                manifest: c.manifest,
                manifest_media_type: c.manifest_media_type,
                config: c.config,
                blobs: c.layers.into_iter().map(|(s, _)| (s.path, s.digest)).collect(),
                refs: c.refs,
            });
        }
        Ok(pending)
    }

    /// `docker save`: writes the named images (a bare repository name means all its tags, an ID
    /// means the image without names) as one archive in both legacy and OCI form.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<(), Error> {
        let entries = self.lock().clone();
        // image ID → (manifest digest, references to record)
        let mut images: BTreeMap<Digest, (Digest, Vec<Reference>)> = BTreeMap::new();
        let mut order = Vec::new();
        for name in names {
            let bare = Reference::parse_name_only(name).ok().filter(|r| r.tag.is_none() && r.digest.is_none());
            let picked: Vec<(Digest, Digest, Option<Reference>)> = match bare {
                Some(repo) if entries.iter().any(|e| e.reference.as_ref().is_some_and(|r| r.name() == repo.name())) => {
                    entries
                        .iter()
                        .filter(|e| e.reference.as_ref().is_some_and(|r| r.name() == repo.name() && r.digest.is_none()))
                        .map(|e| (e.config.clone(), e.manifest.clone(), e.reference.clone()))
                        .collect()
                }
                _ => {
                    let img = self.resolve(name)?;
                    let r = Reference::parse(name)
                        .ok()
                        .filter(|r| r.digest.is_none() && img.repo_tags.contains(&r.familiar()));
                    vec![(img.id, img.manifest, r)]
                }
            };
            for (id, manifest, r) in picked {
                let slot = images.entry(id.clone()).or_insert_with(|| {
                    order.push(id.clone());
                    (manifest, Vec::new())
                });
                if let Some(r) = r {
                    if !slot.1.contains(&r) {
                        slot.1.push(r);
                    }
                }
            }
        }
        let mut tar = tar::Builder::new(out);
        let mut written: HashSet<Digest> = HashSet::new();
        let mut legacy = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        append_dir(&mut tar, "blobs/")?;
        append_dir(&mut tar, "blobs/sha256/")?;
        for id in &order {
            let (manifest_digest, refs) = &images[id];
            let manifest_bytes = self.read_blob(manifest_digest, JSON_MAX)?;
            let manifest = Manifest::parse(&manifest_bytes).map_err(Error::Io)?;
            let mut blobs = vec![manifest_digest.clone(), id.clone()];
            let mut layer_paths = Vec::new();
            for l in &manifest.layers {
                let d = Digest::parse(&l.digest).map_err(Error::Io)?;
                layer_paths.push(format!("blobs/sha256/{}", d.hex()));
                blobs.push(d);
            }
            for b in blobs {
                if written.insert(b.clone()) {
                    let path = self.layout.blob(&b);
                    let f = File::open(&path).map_err(|e| Error::io(format!("blob {b}"), e))?;
                    let len = f.metadata()?.len();
                    append_file(&mut tar, &format!("blobs/sha256/{}", b.hex()), len, f)?;
                }
            }
            let media = if manifest.media_type.is_empty() {
                MEDIA_OCI_MANIFEST.to_string()
            } else {
                manifest.media_type.clone()
            };
            let desc = json!({ "mediaType": media, "digest": manifest_digest.as_str(), "size": manifest_bytes.len() });
            if refs.is_empty() {
                index.push(desc.clone());
            }
            for r in refs {
                let mut d = desc.clone();
                d["annotations"] = json!({
                    ANNOTATION_IMAGE_NAME: r.to_string(),
                    ANNOTATION_REF_NAME: r.tag.clone().unwrap_or_default(),
                });
                index.push(d);
                if let (Some(tag), Some(top)) = (&r.tag, layer_paths.last()) {
                    repositories
                        .entry(r.familiar_name())
                        .or_default()
                        .insert(tag.clone(), top["blobs/sha256/".len()..].to_string());
                }
            }
            let tags: Vec<String> = refs.iter().map(Reference::familiar).collect();
            legacy.push(json!({
                "Config": format!("blobs/sha256/{}", id.hex()),
                "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
                "Layers": layer_paths,
            }));
        }
        let index = json!({ "schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index });
        let small: [(&str, Vec<u8>); 4] = [
            ("index.json", serde_json::to_vec(&index).unwrap_or_default()),
            ("manifest.json", serde_json::to_vec(&legacy).unwrap_or_default()),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("repositories", serde_json::to_vec(&repositories).unwrap_or_default()),
        ];
        for (name, data) in small {
            if name == "repositories" && repositories.is_empty() {
                continue;
            }
            append_file(&mut tar, name, data.len() as u64, &data[..])?;
        }
        tar.into_inner().and_then(|mut w| w.flush()).map_err(|e| Error::io("writing archive", e))
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> Result<(), Error> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut h, name, io::empty()).map_err(|e| Error::io("writing archive", e))
}

fn append_file<W: Write>(tar: &mut tar::Builder<W>, name: &str, len: u64, data: impl Read) -> Result<(), Error> {
    let mut h = header(tar::EntryType::Regular, 0o644, len);
    tar.append_data(&mut h, name, data).map_err(|e| Error::io(format!("writing archive: {name}"), e))
}
