//! Volumes and the mounts of a container: `-v`, `--mount`, `--tmpfs`, `--volumes-from`, the
//! image's `VOLUME`s, and Docker's copy-up.
//!
//! A volume is `volumes/<name>/` holding `_data` (what containers see) and `volume.json` (driver
//! options, labels, creation time, whether it is anonymous). The directory appears under a
//! temporary name and is renamed into place once complete, so a crash leaves either no volume
//! or a whole one (temporaries, `.`-prefixed, are swept at start).
//!
//! A container's mounts are decided at create: the plan (what the user and the image asked for)
//! is validated before anything is touched, then realized (volumes made, bind sources made for
//! `-v`, copy-up done) and written into the OCI spec and the container record.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::ApiError;
use super::spec::{CreateConfig, HostConfig};
use crate::runtime::spec::Mount;
use crate::store::atomic;
use crate::store::layout::Layout;

/// `volume.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VolumeMeta {
    pub name: String,
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub anonymous: bool,
}

/// A mount point as inspect shows it (`Mounts`), kept in the container record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
    /// Made for this container (`-v /path`, `VOLUME`): `rm -v` removes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
    /// tmpfs options (size, mode), for the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs_options: Vec<String>,
}

impl MountPoint {
    /// As inspect and the container list show it: the record's private fields left out.
    pub fn api_json(mps: &[MountPoint]) -> Value {
        Value::Array(
            mps.iter()
                .map(|m| {
                    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
                    if let Some(o) = v.as_object_mut() {
                        o.remove("Anonymous");
                        o.remove("TmpfsOptions");
                    }
                    v
                })
                .collect(),
        )
    }
}

pub struct Volumes {
    layout: Layout,
    lock: Mutex<()>,
    events: std::sync::Arc<super::events::Events>,
}

/// Docker's rule for local volume names.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn invalid_name(n: &str) -> ApiError {
    ApiError::bad_request(format!(
        "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    ))
}

impl Volumes {
    pub fn open(layout: &Layout, events: std::sync::Arc<super::events::Events>) -> io::Result<Volumes> {
        let root = layout.root().join("volumes");
        std::fs::create_dir_all(&root)?;
        // Half-made volumes from a crash: their temporaries are swept.
        for e in std::fs::read_dir(&root)?.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(Volumes { layout: layout.clone(), lock: Mutex::new(()), events })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.layout.volume_dir(name)
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir(name).join("_data")
    }

    pub fn get(&self, name: &str) -> Option<VolumeMeta> {
        if !valid_name(name) {
            return None;
        }
        let data = std::fs::read(self.dir(name).join("volume.json")).ok()?;
        serde_json::from_slice(&data).ok()
    }

    pub fn list(&self) -> Vec<VolumeMeta> {
        let mut v: Vec<VolumeMeta> = std::fs::read_dir(self.layout.root().join("volumes"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Creates a volume, or returns the existing one of that name (as Docker: create is
    /// idempotent). The bool says whether it was made now.
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(VolumeMeta, bool), ApiError> {
        if !valid_name(name) {
            return Err(invalid_name(name));
        }
        for k in options.keys() {
            if !["type", "device", "o", "size"].contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!("create {name}: invalid option key: {k:?}")));
            }
        }
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = self.get(name) {
            return Ok((v, false));
        }
        let meta = VolumeMeta {
            name: name.to_string(),
            created_at: crate::timefmt::now_rfc3339(),
            labels,
            options,
            anonymous,
        };
        let tmp = self.layout.root().join("volumes").join(format!(".new-{name}"));
        let made = (|| -> io::Result<()> {
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(tmp.join("_data"))?;
            atomic::write(&tmp.join("volume.json"), &serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?)?;
            crate::store::crash_point("volume.staged");
            std::fs::rename(&tmp, self.dir(name))?;
            atomic::sync_dir(&self.layout.root().join("volumes"))
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(ApiError::internal(format!("create {name}: {e}")));
        }
        self.events.emit("volume", "create", name, &[("driver", "local")], None);
        Ok((meta, true))
    }

    /// Removes a volume (the caller has checked it is unused). Unmounts what `mount_options` put
    /// on `_data` first.
    pub fn remove(&self, name: &str) -> Result<(), ApiError> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.get(name).is_none() {
            return Err(ApiError::not_found(format!("get {name}: no such volume")));
        }
        let data = self.data_dir(name);
        let _ = nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH);
        atomic::remove_dir(&self.dir(name)).map_err(|e| ApiError::internal(format!("remove {name}: {e}")))?;
        self.events.emit("volume", "destroy", name, &[("driver", "local")], None);
        Ok(())
    }

    /// The local driver's options (`-o type=tmpfs -o device=tmpfs -o o=size=64m`, or
    /// `o=bind,device=/path`): mounted on `_data` the first time a container uses the volume.
    pub fn mount_options(&self, name: &str) -> Result<(), ApiError> {
        let Some(meta) = self.get(name) else { return Ok(()) };
        let (Some(kind), Some(device)) = (meta.options.get("type"), meta.options.get("device")) else {
            return Ok(());
        };
        let data = self.data_dir(name);
        if is_mountpoint(&data) {
            return Ok(());
        }
        let o = meta.options.get("o").cloned().unwrap_or_default();
        let bind = o.split(',').any(|x| x == "bind" || x == "rbind");
        let rest: Vec<&str> = o.split(',').filter(|x| !x.is_empty() && *x != "bind" && *x != "rbind").collect();
        let mut flags = nix::mount::MsFlags::empty();
        if bind {
            flags |= nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC;
        }
        let data_opt = rest.join(",");
        nix::mount::mount(
            Some(device.as_str()),
            &data,
            if bind { None } else { Some(kind.as_str()) },
            flags,
            if data_opt.is_empty() || bind { None } else { Some(data_opt.as_str()) },
        )
        .map_err(|e| ApiError::internal(format!("error while mounting volume '{}': {e}", data.display())))
    }

    /// Bytes under `_data`.
    pub fn size(&self, name: &str) -> u64 {
        super::containers::dir_size(&self.data_dir(name))
    }

    /// Inspect JSON.
    pub fn json(&self, v: &VolumeMeta) -> Value {
        json!({
            "CreatedAt": v.created_at,
            "Driver": "local",
            "Labels": v.labels,
            "Mountpoint": self.data_dir(&v.name),
            "Name": v.name,
            "Options": v.options,
            "Scope": "local",
        })
    }
}

fn is_mountpoint(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(p), p.parent().map(std::fs::metadata)) {
        (Ok(a), Some(Ok(b))) => a.dev() != b.dev(),
        _ => false,
    }
}

/// What a container asked for, validated, before anything is made.
#[derive(Debug, Clone)]
pub struct Planned {
    pub kind: Kind,
    pub target: String,
    pub rw: bool,
    pub propagation: String,
    pub nocopy: bool,
    /// As the user wrote it (`z`, `ro`, …), for inspect's `Mode`.
    pub mode: String,
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// A named volume, or an anonymous one (name `None`, made at realize).
    Volume {
        name: Option<String>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    },
    /// A host path; `create` for `-v` (Docker makes a missing source), not for `--mount`.
    Bind {
        source: String,
        create: bool,
    },
    Tmpfs {
        options: Vec<String>,
    },
    /// Copied from another container's mount point (`--volumes-from`).
    From(MountPoint),
}

/// `--mount` as the API sends it (`HostConfig.Mounts`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ApiMount {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub bind_options: Option<BindOptions>,
    pub volume_options: Option<VolumeOptions>,
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    pub propagation: String,
    pub create_mountpoint: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    pub no_copy: bool,
    pub labels: Option<BTreeMap<String, String>>,
    pub driver_config: Option<DriverConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverConfig {
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    pub size_bytes: i64,
    pub mode: u32,
}

const PROPAGATIONS: [&str; 6] = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

fn clean_target(t: &str) -> Result<String, ApiError> {
    if !t.starts_with('/') {
        return Err(ApiError::bad_request(format!("invalid mount config: mount path must be absolute: {t:?}")));
    }
    if t == "/" {
        return Err(ApiError::bad_request("invalid specification: destination can't be '/'"));
    }
    let mut out = String::new();
    for c in t.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            return Err(ApiError::bad_request(format!(
                "invalid mount config: mount path must not contain '..': {t:?}"
            )));
        }
        out.push('/');
        out.push_str(c);
    }
    Ok(out)
}

/// `-v SRC:DST[:OPTS]`, `-v DST`.
fn parse_bind(spec: &str) -> Result<Planned, ApiError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || ApiError::bad_request(format!("invalid volume specification: '{spec}'"));
    let (src, dst, opts) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [s, d] => (Some(*s), *d, ""),
        [s, d, o] => (Some(*s), *d, *o),
        _ => return Err(bad()),
    };
    let target = clean_target(dst).map_err(|_| bad())?;
    let mut rw = true;
    let mut propagation = String::new();
    let mut nocopy = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" => {}
            "nocopy" => nocopy = true,
            p if PROPAGATIONS.contains(&p) => propagation = p.to_string(),
            _ => return Err(bad()),
        }
    }
    let kind = match src {
        None => Kind::Volume { name: None, labels: BTreeMap::new(), options: BTreeMap::new() },
        Some(s) if s.starts_with('/') => Kind::Bind { source: s.to_string(), create: true },
        Some(s) => {
            if !valid_name(s) {
                return Err(invalid_name(s));
            }
            Kind::Volume { name: Some(s.to_string()), labels: BTreeMap::new(), options: BTreeMap::new() }
        }
    };
    if matches!(kind, Kind::Bind { .. }) && nocopy {
        return Err(bad());
    }
    Ok(Planned { kind, target, rw, propagation, nocopy, mode: opts.to_string() })
}

fn parse_api_mount(m: &ApiMount) -> Result<Planned, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("invalid mount config for type \"{}\": {why}", m.kind));
    let target = clean_target(&m.target).map_err(|e| bad(&e.message))?;
    let propagation = m.bind_options.as_ref().map(|b| b.propagation.clone()).unwrap_or_default();
    if !propagation.is_empty() && !PROPAGATIONS.contains(&propagation.as_str()) {
        return Err(bad(&format!("invalid propagation mode: {propagation}")));
    }
    let kind = match m.kind.as_str() {
        "bind" => {
            if m.source.is_empty() {
                return Err(bad("field Source must not be empty"));
            }
            if !m.source.starts_with('/') {
                return Err(bad("invalid mount path: the source must be an absolute path"));
            }
            if m.volume_options.is_some() || m.tmpfs_options.is_some() {
                return Err(bad("field VolumeOptions/TmpfsOptions must not be specified"));
            }
            let create = m.bind_options.as_ref().is_some_and(|b| b.create_mountpoint);
            if !create && !Path::new(&m.source).exists() {
                return Err(bad(&format!("bind source path does not exist: {}", m.source)));
            }
            Kind::Bind { source: m.source.clone(), create }
        }
        "volume" => {
            if m.bind_options.is_some() || m.tmpfs_options.is_some() {
                return Err(bad("field BindOptions/TmpfsOptions must not be specified"));
            }
            let vo = m.volume_options.clone().unwrap_or_default();
            let name = Some(m.source.clone()).filter(|s| !s.is_empty());
            if let Some(n) = &name {
                if !valid_name(n) {
                    return Err(invalid_name(n));
                }
            }
            Kind::Volume {
                name,
                labels: vo.labels.unwrap_or_default(),
                options: vo.driver_config.and_then(|d| d.options).unwrap_or_default(),
            }
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(bad("field Source must not be specified"));
            }
            let mut options = Vec::new();
            if let Some(t) = &m.tmpfs_options {
                if t.size_bytes > 0 {
                    options.push(format!("size={}", t.size_bytes));
                }
                if t.mode > 0 {
                    options.push(format!("mode={:o}", t.mode));
                }
            }
            Kind::Tmpfs { options }
        }
        other => return Err(ApiError::bad_request(format!("invalid mount config: mount type unknown: {other:?}"))),
    };
    let nocopy = m.volume_options.as_ref().is_some_and(|v| v.no_copy);
    Ok(Planned { kind, target, rw: !m.read_only, propagation, nocopy, mode: String::new() })
}

/// Everything a create asks for, in Docker's precedence: `--volumes-from` first, then the
/// image's and the config's `VOLUME`s (anonymous), replaced by binds, `--mount`s and tmpfs on
/// the same path. Two explicit mounts on one path are an error.
pub fn plan(
    cfg: &CreateConfig,
    image_config: &Value,
    from: &dyn Fn(&str) -> Result<Vec<MountPoint>, ApiError>,
) -> Result<Vec<Planned>, ApiError> {
    let host: HostConfig = cfg.host_config.clone().unwrap_or_default();
    let mut out: BTreeMap<String, Planned> = BTreeMap::new();
    for vf in host.volumes_from.iter().flatten() {
        let (cname, mode) = match vf.split_once(':') {
            Some((c, m)) => (c, Some(m)),
            None => (vf.as_str(), None),
        };
        if let Some(m) = mode {
            if m != "ro" && m != "rw" {
                return Err(ApiError::bad_request(format!("invalid mode for volumes-from: {m}")));
            }
        }
        for mp in from(cname)? {
            let rw = match mode {
                Some("ro") => false,
                Some(_) => true,
                None => mp.rw,
            };
            let target = mp.destination.clone();
            out.insert(
                target.clone(),
                Planned {
                    kind: Kind::From(mp.clone()),
                    target,
                    rw,
                    propagation: mp.propagation.clone(),
                    nocopy: true,
                    mode: mp.mode.clone(),
                },
            );
        }
    }
    let anon = |t: &str| -> Result<Planned, ApiError> {
        Ok(Planned {
            kind: Kind::Volume { name: None, labels: BTreeMap::new(), options: BTreeMap::new() },
            target: clean_target(t)?,
            rw: true,
            propagation: String::new(),
            nocopy: false,
            mode: String::new(),
        })
    };
    let image_vols =
        image_config.get("Volumes").and_then(Value::as_object).map(|m| m.keys().cloned().collect::<Vec<_>>());
    let cfg_vols = cfg.volumes.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>());
    for t in image_vols.into_iter().flatten().chain(cfg_vols.into_iter().flatten()) {
        let p = anon(&t)?;
        out.entry(p.target.clone()).or_insert(p);
    }
    let mut explicit: Vec<Planned> = Vec::new();
    for b in host.binds.iter().flatten() {
        explicit.push(parse_bind(b)?);
    }
    for m in host.mounts.iter().flatten() {
        explicit.push(parse_api_mount(m)?);
    }
    for (t, opts) in host.tmpfs.iter().flatten() {
        let target = clean_target(t)?;
        let options: Vec<String> = opts.split(',').filter(|o| !o.is_empty()).map(String::from).collect();
        let rw = !options.iter().any(|o| o == "ro");
        explicit.push(Planned {
            kind: Kind::Tmpfs { options },
            target,
            rw,
            propagation: String::new(),
            nocopy: true,
            mode: String::new(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in explicit {
        if !seen.insert(p.target.clone()) {
            return Err(ApiError::bad_request(format!("Duplicate mount point: {}", p.target)));
        }
        out.insert(p.target.clone(), p);
    }
    Ok(out.into_values().collect())
}

/// Makes what the plan needs and returns the mount points, in mount order (parents first).
/// Returns the anonymous volumes it made even on error, so the caller can remove them.
pub fn realize(
    vols: &Volumes,
    plan: &[Planned],
    layers: &[PathBuf],
    made: &mut Vec<String>,
) -> Result<Vec<MountPoint>, ApiError> {
    let mut out = Vec::new();
    for p in plan {
        let propagation = if p.propagation.is_empty() { "rprivate".to_string() } else { p.propagation.clone() };
        let mp = match &p.kind {
            Kind::Volume { name, labels, options } => {
                let anonymous = name.is_none();
                let name = name.clone().unwrap_or_else(|| super::containers::random_hex(32));
                let (_, new) = vols.create(&name, labels.clone(), options.clone(), anonymous)?;
                if new && anonymous {
                    made.push(name.clone());
                }
                vols.mount_options(&name)?;
                let data = vols.data_dir(&name);
                if !p.nocopy {
                    copy_up(layers, &p.target, &data).map_err(|e| {
                        ApiError::internal(format!("copying image content of {} into volume {name}: {e}", p.target))
                    })?;
                }
                MountPoint {
                    kind: "volume".into(),
                    name: name.clone(),
                    source: data.display().to_string(),
                    destination: p.target.clone(),
                    driver: "local".into(),
                    mode: if p.mode.is_empty() { "z".into() } else { p.mode.clone() },
                    rw: p.rw,
                    propagation: String::new(),
                    anonymous,
                    tmpfs_options: Vec::new(),
                }
            }
            Kind::Bind { source, create } => {
                if *create && !Path::new(source).exists() {
                    std::fs::create_dir_all(source).map_err(|e| {
                        ApiError::bad_request(format!("error while creating mount source path '{source}': {e}"))
                    })?;
                }
                MountPoint {
                    kind: "bind".into(),
                    source: source.clone(),
                    destination: p.target.clone(),
                    mode: p.mode.clone(),
                    rw: p.rw,
                    propagation,
                    ..Default::default()
                }
            }
            Kind::Tmpfs { options } => MountPoint {
                kind: "tmpfs".into(),
                destination: p.target.clone(),
                mode: p.mode.clone(),
                rw: p.rw,
                tmpfs_options: options.clone(),
                ..Default::default()
            },
            Kind::From(mp) => {
                let mut m = mp.clone();
                m.rw = p.rw;
                m.anonymous = false;
                m
            }
        };
        out.push(mp);
    }
    out.sort_by_key(|m| m.destination.matches('/').count());
    Ok(out)
}

/// The OCI mounts for a container's mount points.
pub fn oci_mounts(mps: &[MountPoint]) -> Vec<Mount> {
    mps.iter()
        .map(|m| {
            if m.kind == "tmpfs" {
                let mut options = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".to_string()];
                options.extend(m.tmpfs_options.iter().cloned());
                if !m.rw && !options.iter().any(|o| o == "ro") {
                    options.push("ro".into());
                }
                return Mount {
                    destination: m.destination.clone(),
                    kind: Some("tmpfs".into()),
                    source: Some("tmpfs".into()),
                    options,
                };
            }
            let mut options = vec!["rbind".to_string()];
            options.push(if m.propagation.is_empty() { "rprivate".into() } else { m.propagation.clone() });
            if !m.rw {
                options.push("ro".into());
            }
            Mount {
                destination: m.destination.clone(),
                kind: Some("bind".into()),
                source: Some(m.source.clone()),
                options,
            }
        })
        .collect()
}

/// Docker's copy-up: an empty volume mounted where the image has content gets that content
/// (with its owners and modes) before first use. Layers are applied bottom to top; overlay
/// whiteouts (0/0 character devices) delete what lower layers had.
fn copy_up(layers: &[PathBuf], target: &str, data: &Path) -> io::Result<()> {
    if std::fs::read_dir(data)?.next().is_some() {
        return Ok(());
    }
    let rel = target.trim_start_matches('/');
    let mut any = false;
    for l in layers {
        // Never follow a symlink in the image out of the layer: the path is resolved in it.
        let src = crate::runtime::mounts::secure_join(l, rel);
        let Ok(meta) = std::fs::symlink_metadata(&src) else { continue };
        if !meta.is_dir() {
            continue;
        }
        copy_tree(&src, data)?;
        any = true;
    }
    if any {
        // The volume's root takes the image directory's owner and mode.
        let top = layers.iter().rev().map(|l| crate::runtime::mounts::secure_join(l, rel)).find(|p| p.is_dir());
        if let Some(top) = top {
            let m = std::fs::symlink_metadata(&top)?;
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            std::os::unix::fs::lchown(data, Some(m.uid()), Some(m.gid()))?;
            std::fs::set_permissions(data, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
    }
    Ok(())
}

fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let m = std::fs::symlink_metadata(&from)?;
        let ft = m.file_type();
        if ft.is_char_device() && m.rdev() == 0 {
            // A whiteout: the lower layers' entry is deleted.
            if std::fs::symlink_metadata(&to).is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&to)?;
            } else {
                let _ = std::fs::remove_file(&to);
            }
            continue;
        }
        if ft.is_dir() {
            if std::fs::symlink_metadata(&to).is_ok_and(|t| !t.is_dir()) {
                std::fs::remove_file(&to)?;
            }
            if !to.exists() {
                std::fs::create_dir(&to)?;
            }
            copy_tree(&from, &to)?;
        } else {
            if std::fs::symlink_metadata(&to).is_ok() {
                if std::fs::symlink_metadata(&to)?.is_dir() {
                    std::fs::remove_dir_all(&to)?;
                } else {
                    std::fs::remove_file(&to)?;
                }
            }
            if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            } else if ft.is_file() {
                std::fs::copy(&from, &to)?;
            } else {
                // Devices, fifos and sockets are not copied up.
                continue;
            }
        }
        std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names() {
        for ok in ["data", "my-vol_1.x", "a1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["a", "_x", "..", "../x", "a/b", ".hidden", "-x", "x y", ""] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn bind_specs() {
        let p = parse_bind("/host:/c:ro").unwrap();
        assert!(matches!(p.kind, Kind::Bind { create: true, .. }) && !p.rw && p.target == "/c");
        let p = parse_bind("vol:/data").unwrap();
        assert!(matches!(p.kind, Kind::Volume { name: Some(ref n), .. } if n == "vol"));
        let p = parse_bind("/anon").unwrap();
        assert!(matches!(p.kind, Kind::Volume { name: None, .. }));
        assert!(parse_bind("a/b:/x").is_err());
        assert!(parse_bind("_x:/x").is_err());
        assert!(parse_bind("vol:relative").is_err());
        assert!(parse_bind("vol:/x:bogus").is_err());
        assert!(parse_bind("vol:/").is_err());
        assert!(parse_bind("vol:/a/../b").is_err());
    }
}

/// The Engine API's volume routes.
pub mod api {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::{json, Value};

    use super::super::api::{ApiError, ApiResult, Responder};
    use super::super::http::{Body, Head};
    use super::super::images::parse_filters;
    use super::super::Engine;
    use super::VolumeMeta;

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "PascalCase", default)]
    struct CreateBody {
        name: String,
        driver: String,
        driver_opts: Option<BTreeMap<String, String>>,
        labels: Option<BTreeMap<String, String>>,
    }

    /// `POST /volumes/create`.
    pub fn create(e: &Engine, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
        let data = body.read_all(1 << 20).map_err(|err| ApiError::bad_request(format!("cannot read body: {err}")))?;
        let de = &mut serde_json::Deserializer::from_slice(&data);
        let b: CreateBody = serde_path_to_error::deserialize(de)
            .map_err(|err| ApiError::bad_request(format!("invalid JSON: {}: {}", err.path(), err.inner())))?;
        if !b.driver.is_empty() && b.driver != "local" {
            return Err(ApiError::not_found(format!(
                "error looking up volume plugin {}: plugin \"{}\" not found",
                b.driver, b.driver
            )));
        }
        let anonymous = b.name.is_empty();
        let name = if anonymous { super::super::containers::random_hex(32) } else { b.name };
        let (v, _) = e.containers.volumes.create(
            &name,
            b.labels.unwrap_or_default(),
            b.driver_opts.unwrap_or_default(),
            anonymous,
        )?;
        r.json(201, &e.containers.volumes.json(&v))?;
        Ok(())
    }

    fn matches(e: &Engine, v: &VolumeMeta, filters: &BTreeMap<String, Vec<String>>) -> Result<bool, ApiError> {
        for (k, vals) in filters {
            let ok = match k.as_str() {
                "name" => vals.iter().any(|x| v.name.contains(x.as_str())),
                "dangling" => {
                    let used = !e.containers.volume_users(&v.name).is_empty();
                    vals.iter().any(|x| match x.as_str() {
                        "true" | "1" => !used,
                        "false" | "0" => used,
                        _ => false,
                    })
                }
                "label" => vals.iter().any(|x| match x.split_once('=') {
                    Some((lk, lv)) => v.labels.get(lk).is_some_and(|x| x == lv),
                    None => v.labels.contains_key(x),
                }),
                "label!" => !vals.iter().any(|x| match x.split_once('=') {
                    Some((lk, lv)) => v.labels.get(lk).is_some_and(|x| x == lv),
                    None => v.labels.contains_key(x),
                }),
                "driver" => vals.iter().any(|x| x == "local"),
                "all" => true,
                other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `GET /volumes`.
    pub fn list(e: &Engine, head: &Head, r: &mut Responder<'_>) -> ApiResult {
        let filters = parse_filters(head.param("filters"))?;
        let mut out = Vec::new();
        for v in e.containers.volumes.list() {
            if matches(e, &v, &filters)? {
                out.push(e.containers.volumes.json(&v));
            }
        }
        r.json(200, &json!({"Volumes": out, "Warnings": []}))?;
        Ok(())
    }

    fn get(e: &Engine, name: &str) -> Result<VolumeMeta, ApiError> {
        e.containers.volumes.get(name).ok_or_else(|| ApiError::not_found(format!("get {name}: no such volume")))
    }

    /// `GET /volumes/{name}`.
    pub fn inspect(e: &Engine, name: &str, r: &mut Responder<'_>) -> ApiResult {
        let v = get(e, name)?;
        r.json(200, &e.containers.volumes.json(&v))?;
        Ok(())
    }

    /// `DELETE /volumes/{name}?force=`: refused while any container (running or not) uses it,
    /// as Docker; `force` only makes a missing volume not an error.
    pub fn remove(e: &Engine, name: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
        let v = match get(e, name) {
            Ok(v) => v,
            Err(_) if head.flag("force", false) => {
                r.empty(204)?;
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        let users = e.containers.volume_users(&v.name);
        if !users.is_empty() {
            return Err(ApiError::conflict(format!("remove {}: volume is in use - [{}]", v.name, users.join(", "))));
        }
        e.containers.volumes.remove(&v.name)?;
        r.empty(204)?;
        Ok(())
    }

    /// `POST /volumes/prune`: unused anonymous volumes, or every unused one with `all=true`
    /// (API 1.42 and later).
    pub fn prune(e: &Engine, head: &Head, r: &mut Responder<'_>) -> ApiResult {
        let mut filters = parse_filters(head.param("filters"))?;
        let all = filters.remove("all").is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
        let mut deleted = Vec::new();
        let mut space = 0u64;
        for v in e.containers.volumes.list() {
            if (!all && !v.anonymous) || !e.containers.volume_users(&v.name).is_empty() || !matches(e, &v, &filters)? {
                continue;
            }
            let size = e.containers.volumes.size(&v.name);
            if e.containers.volumes.remove(&v.name).is_ok() {
                space += size;
                deleted.push(Value::String(v.name));
            }
        }
        r.json(200, &json!({"VolumesDeleted": deleted, "SpaceReclaimed": space}))?;
        Ok(())
    }
}
