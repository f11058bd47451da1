//! Containers at the Docker level: the record in `containers/<id>/container.json`, names, and the
//! lifecycle handlers. A started container is run by its monitor (`tug-monitor`, see
//! `src/monitor/`), which the daemon talks to only through `monitor.sock` and files, so containers
//! outlive the daemon.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::ApiError;
use super::http::Stream;
use super::spec::{self, CreateConfig};
use crate::store::atomic;
use crate::store::layout::Layout;

/// Docker's zero time.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The Docker-level state of a container, as inspect shows it.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct StateRec {
    pub status: String,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
}

/// `container.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    /// The image ID (config digest) and the name it was created from.
    pub image: String,
    pub image_name: String,
    pub config: CreateConfig,
    /// `Config` and `HostConfig` exactly as the client sent them, for inspect.
    pub config_json: Value,
    pub host_config_json: Value,
    pub path: String,
    pub args: Vec<String>,
    pub state: StateRec,
    #[serde(default)]
    pub restart_count: u32,
    /// Set by `stop` and `kill` through the API: `unless-stopped` and `always` then leave the
    /// container down; cleared by `start`.
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub mounts: Vec<super::volumes::MountPoint>,
}

impl Record {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
    pub fn running(&self) -> bool {
        self.state.status == "running" || self.state.status == "paused"
    }
    pub fn tty(&self) -> bool {
        self.config.tty
    }
}

/// Waiters for a container's next exit (and removal), woken by its watcher thread.
#[derive(Default)]
struct Notify {
    /// Per container: how many exits and removals have happened so far.
    counts: Mutex<HashMap<String, (u64, u64)>>,
    /// The last exit code seen, kept past the record: a `wait` for `removed` answers with it
    /// when AutoRemove took the record before the waiter looked.
    last_exit: Mutex<HashMap<String, i32>>,
    cv: Condvar,
}

/// The container service.
pub struct Containers {
    layout: Layout,
    /// Serializes name reservation and record updates.
    lock: Mutex<()>,
    /// Serializes starts (by users and restart policies) with stops, so a stop can never be
    /// overtaken by a restart that decided before it.
    ops: Mutex<()>,
    notify: Notify,
    /// Hijacked attach streams waiting for their container to start.
    pending: Mutex<HashMap<String, Vec<PendingAttach>>>,
    /// Images in use, for `rmi` refusals: resolved from records on demand.
    pub log_defaults: Mutex<(String, String)>,
    pub events: Arc<super::events::Events>,
    pub volumes: super::volumes::Volumes,
    /// Every record as last written by this daemon (the only writer of container.json), so a
    /// listing reads no files. Filled on first read, updated on every save, dropped on removal.
    cache: Mutex<HashMap<String, Arc<Record>>>,
    /// Containers whose exit a watcher thread is waiting for: that thread records the exit, so
    /// reads need not look for it (no exit.json or /proc reads per listed container).
    watched: Mutex<std::collections::HashSet<String>>,
    /// One sealed copy of this executable, handed down to every monitor and runtime started, so
    /// none of them copies it again (see runtime::container::SEALED_EXE_ENV).
    sealed_exe: Option<std::os::fd::OwnedFd>,
    /// The vfs storage driver: root filesystems are copies, not overlays.
    vfs: std::sync::atomic::AtomicBool,
}

struct PendingAttach {
    stream: Stream,
    opts: AttachOpts,
}

/// Which streams an attach carries.
#[derive(Debug, Clone, Copy)]
pub struct AttachOpts {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub stdin_once: bool,
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    crate::store::digest::hex(&b)
}

const ADJECTIVES: [&str; 16] = [
    "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "proud", "quirky",
    "sharp", "tender", "vivid",
];
const NOUNS: [&str; 16] = [
    "anchor", "barge", "cable", "deck", "ferry", "galley", "harbor", "keel", "ledger", "mast", "oar", "pier", "rudder",
    "sail", "tide", "wharf",
];

/// Docker's container name rule.
pub fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && n.len() >= 2
        && n.chars().all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
}

impl Containers {
    pub fn open(layout: &Layout) -> io::Result<Containers> {
        let events: Arc<super::events::Events> = Arc::default();
        std::fs::create_dir_all(layout.containers_dir())?;
        std::fs::create_dir_all(layout.root().join("names"))?;
        Ok(Containers {
            layout: layout.clone(),
            lock: Mutex::new(()),
            ops: Mutex::new(()),
            notify: Notify::default(),
            pending: Mutex::new(HashMap::new()),
            log_defaults: Mutex::new(("10m".into(), "3".into())),
            volumes: super::volumes::Volumes::open(layout, events.clone())?,
            events,
            cache: Mutex::new(HashMap::new()),
            watched: Mutex::new(std::collections::HashSet::new()),
            sealed_exe: crate::runtime::container::sealed_copy().ok(),
            vfs: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.layout.container_dir(id)
    }

    /// Lets a child inherit the sealed copy of this executable (clearing close-on-exec in the
    /// child only, so no other child gets it).
    pub fn hand_down_exe(&self, cmd: &mut Command) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let Some(fd) = self.sealed_exe.as_ref().map(|f| f.as_raw_fd()) else { return };
        cmd.env(crate::runtime::container::SEALED_EXE_ENV, fd.to_string());
        // SAFETY: runs in the forked child before exec and only calls fcntl (async-signal-safe).
        unsafe {
            cmd.pre_exec(move || {
                if nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            })
        };
    }

    pub fn set_vfs(&self, on: bool) {
        self.vfs.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn storage_driver(&self) -> &'static str {
        if self.vfs.load(std::sync::atomic::Ordering::Relaxed) {
            "vfs"
        } else {
            "overlay2"
        }
    }

    /// The container's upper directory as an overlay has it: the real one, or (vfs) one built
    /// in `scratch` by comparing the copy with the image. The caller removes `scratch`.
    pub fn upper_dir(&self, r: &Record, layers: &[PathBuf], scratch: &Path) -> io::Result<PathBuf> {
        let dir = self.dir(&r.id);
        if self.storage_driver() != "vfs" {
            return Ok(dir.join("upper"));
        }
        std::fs::create_dir_all(scratch)?;
        super::vfs::upper_view(&dir.join("rootfs"), layers, scratch)?;
        Ok(scratch.to_path_buf())
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.layout.root().join("runtime")
    }

    fn save(&self, r: &Record) -> io::Result<()> {
        let data = serde_json::to_vec_pretty(r).map_err(io::Error::other)?;
        atomic::write(&self.dir(&r.id).join("container.json"), &data)?;
        self.cached(r);
        Ok(())
    }

    fn cached(&self, r: &Record) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(r.id.clone(), Arc::new(r.clone()));
    }

    fn uncache(&self, id: &str) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Records a change of run state (started, exited, paused, stopped by the user): atomic but
    /// not flushed to disk. Only a host crash could lose it, and after one the boot ID makes every
    /// container exited anyway (`after_reboot`), so the fsyncs (several ms each) would buy
    /// nothing. Creation, renames and updates stay durable.
    fn save_state(&self, r: &Record) -> io::Result<()> {
        let data = serde_json::to_vec_pretty(r).map_err(io::Error::other)?;
        atomic::replace(&self.dir(&r.id).join("container.json"), &data)?;
        self.cached(r);
        Ok(())
    }

    fn load(&self, id: &str) -> Option<Record> {
        let hit = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned();
        let mut r = match hit {
            Some(r) => Record::clone(&r),
            None => {
                let data = std::fs::read(self.dir(id).join("container.json")).ok()?;
                let r: Record = serde_json::from_slice(&data).ok()?;
                self.cached(&r);
                r
            }
        };
        if !self.watched.lock().unwrap_or_else(|e| e.into_inner()).contains(id) {
            self.reconcile(&mut r);
        }
        Some(r)
    }

    /// Brings a record up to date with its monitor's files: an `exit.json` written while nobody
    /// watched (or before the watcher got to it) makes the container exited.
    fn reconcile(&self, r: &mut Record) {
        if !r.running() {
            return;
        }
        let dir = self.dir(&r.id);
        // exit.json is written before monitor.sock goes away: if the monitor is gone, read the
        // file again, since it may have appeared between the two checks.
        let mut exit = std::fs::read(dir.join("exit.json"));
        if exit.is_err() && !monitor_alive(&dir) {
            exit = std::fs::read(dir.join("exit.json"));
        }
        if let Ok(data) = exit {
            if let Ok(v) = serde_json::from_slice::<Value>(&data) {
                r.state.status = "exited".into();
                r.state.pid = 0;
                r.state.exit_code = v["ExitCode"].as_i64().unwrap_or(0) as i32;
                r.state.oom_killed = v["OOMKilled"].as_bool().unwrap_or(false);
                r.state.finished_at = v["FinishedAt"].as_str().unwrap_or(ZERO_TIME).to_string();
                let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                let _ = self.save_state(r);
            }
        } else if !monitor_alive(&dir) && !dir.join("exit.json").exists() {
            // The monitor died without a word (killed, or a reboot): the container is gone too.
            r.state.status = "exited".into();
            r.state.pid = 0;
            r.state.exit_code = 255;
            r.state.finished_at = crate::timefmt::now_rfc3339();
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let _ = self.save_state(r);
        }
    }

    /// Every record, newest first.
    /// Every record, newest first, shared rather than copied: what listings read. A container
    /// a watcher waits for is taken as recorded; others are brought up to date as `load` does.
    pub fn snapshot(&self) -> Vec<Arc<Record>> {
        let ids: Vec<String> = std::fs::read_dir(self.layout.containers_dir())
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let mut v = Vec::with_capacity(ids.len());
        for id in ids {
            let hit = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned();
            let watched = self.watched.lock().unwrap_or_else(|e| e.into_inner()).contains(&id);
            match hit {
                Some(r) if watched || !r.running() => v.push(r),
                _ => {
                    if let Some(r) = self.load(&id) {
                        v.push(Arc::new(r));
                    }
                }
            }
        }
        v.sort_by(|a, b| b.created.cmp(&a.created));
        v
    }

    pub fn all(&self) -> Vec<Record> {
        let mut v: Vec<Record> = std::fs::read_dir(self.layout.containers_dir())
            .map(|rd| rd.flatten().filter_map(|e| self.load(&e.file_name().to_string_lossy())).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| b.created.cmp(&a.created));
        v
    }

    /// Finds a container by full ID, name (with or without `/`), or unique ID prefix.
    pub fn find(&self, key: &str) -> Result<Record, ApiError> {
        let not_found = || ApiError::not_found(format!("No such container: {key}"));
        let name = key.trim_start_matches('/');
        if key.len() == 64 {
            if let Some(r) = self.load(key) {
                return Ok(r);
            }
        }
        if valid_name(name) {
            if let Ok(id) = std::fs::read_to_string(self.layout.name_file(name)) {
                if let Some(r) = self.load(id.trim()) {
                    return Ok(r);
                }
            }
        }
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let matches: Vec<String> = std::fs::read_dir(self.layout.containers_dir())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(key))
                    .collect()
            })
            .unwrap_or_default();
        match matches.as_slice() {
            [one] => self.load(one).ok_or_else(not_found),
            [] => Err(not_found()),
            _ => Err(ApiError::bad_request(format!("multiple IDs found with provided prefix: {key}"))),
        }
    }

    /// Images used by containers: (image id, container id, running).
    pub fn image_users(&self) -> Vec<(String, String, bool)> {
        self.all().into_iter().map(|r| (r.image.clone(), r.id.clone(), r.running())).collect()
    }

    /// Takes `name` for container `id`: `names/<name>` created O_EXCL, so two racing requests
    /// cannot both win. Returns the file, for the caller to release on failure.
    fn reserve_name(&self, name: &str, id: &str) -> Result<PathBuf, ApiError> {
        let file = self.layout.name_file(name);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&file) {
            Ok(mut f) => f.write_all(id.as_bytes()).map_err(ApiError::from)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let other = std::fs::read_to_string(&file).unwrap_or_default();
                return Err(ApiError::conflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.trim()
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(file)
    }

    /// `POST /containers/create`.
    pub fn create(
        &self,
        name: Option<&str>,
        body: &[u8],
        images: &crate::image::store::ImageStore,
    ) -> Result<Record, ApiError> {
        let cfg = spec::parse_create(body)?;
        let raw: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if cfg.image.is_empty() {
            return Err(ApiError::bad_request("config.Image: image name must not be empty"));
        }
        let image = images.resolve(&cfg.image).map_err(|e| super::images::api_error(&e))?;
        let id = random_hex(32);
        let dir = self.dir(&id);
        let layers = images.layer_dirs(&image).map_err(|e| ApiError::internal(format!("cannot unpack image: {e}")))?;
        let image_config = image.config.get("config").cloned().unwrap_or(Value::Null);
        let mut oci =
            spec::build(&spec::Inputs { id: &id, cfg: &cfg, image_config: &image_config, layers: &layers, dir: &dir })?;
        let planned = super::volumes::plan(&cfg, &image_config, &|c| {
            self.find(c).map(|r| r.mounts).map_err(|_| ApiError::not_found(format!("No such container: {c}")))
        })?;
        let args = oci.process.as_ref().map(|p| p.args.clone()).unwrap_or_default();
        // Reserve the name first: O_EXCL makes a race between two creates lose cleanly.
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.trim_start_matches('/');
                if !valid_name(n) {
                    return Err(ApiError::bad_request(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.to_string()
            }
            None => loop {
                let b = random_hex(2);
                let n = format!(
                    "{}_{}",
                    ADJECTIVES[usize::from(b.as_bytes()[0] % 16)],
                    NOUNS[usize::from(b.as_bytes()[1] % 16)]
                );
                let n = format!("{n}{}", &random_hex(1)[..2]);
                if !self.layout.name_file(&n).exists() {
                    break n;
                }
            },
        };
        let name_file = self.reserve_name(&name, &id)?;
        crate::store::crash_point("create.name-reserved");
        let mut anonymous = Vec::new();
        let mounts = match super::volumes::realize(&self.volumes, &planned, &layers, &mut anonymous) {
            Ok(m) => m,
            Err(e) => {
                for v in anonymous {
                    let _ = self.volumes.remove(&v);
                }
                let _ = std::fs::remove_file(&name_file);
                return Err(e);
            }
        };
        oci.mounts.extend(super::volumes::oci_mounts(&mounts));
        let vfs = self.storage_driver() == "vfs";
        if vfs {
            oci.annotations.remove(crate::runtime::mounts::OVERLAY_ANNOTATION);
        }
        let made = (|| -> io::Result<Record> {
            for d in ["upper", "work", "rootfs", "bundle"] {
                std::fs::create_dir_all(dir.join(d))?;
            }
            if vfs {
                super::vfs::populate(&layers, &dir.join("rootfs"))?;
            }
            // These files are derived from container.json, which is written last and durably:
            // it is the commit point, so they need no fsync of their own.
            let hostname = oci.hostname.clone().unwrap_or_default();
            atomic::replace(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
            atomic::replace(
                &dir.join("hosts"),
                format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n")
                    .as_bytes(),
            )?;
            let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
            atomic::replace(&dir.join("resolv.conf"), &resolv)?;
            atomic::replace(&dir.join("bundle/config.json"), &serde_json::to_vec(&oci).map_err(io::Error::other)?)?;
            crate::store::crash_point("create.files-written");
            let r = Record {
                id: id.clone(),
                name: name.clone(),
                created: crate::timefmt::now_rfc3339(),
                image: image.id.to_string(),
                image_name: cfg.image.clone(),
                config_json: {
                    let mut c = raw.clone();
                    if let Some(o) = c.as_object_mut() {
                        o.remove("HostConfig");
                        o.remove("NetworkingConfig");
                    }
                    c
                },
                host_config_json: raw.get("HostConfig").cloned().unwrap_or(json!({})),
                config: cfg.clone(),
                path: args.first().cloned().unwrap_or_default(),
                args: args.get(1..).map(<[String]>::to_vec).unwrap_or_default(),
                state: StateRec {
                    status: "created".into(),
                    started_at: ZERO_TIME.into(),
                    finished_at: ZERO_TIME.into(),
                    ..Default::default()
                },
                restart_count: 0,
                manually_stopped: false,
                mounts: mounts.clone(),
            };
            self.save(&r)?;
            self.events.container(&r, "create", &[]);
            Ok(r)
        })();
        match made {
            Ok(r) => Ok(r),
            Err(e) => {
                for v in anonymous {
                    let _ = self.volumes.remove(&v);
                }
                let _ = std::fs::remove_file(&name_file);
                let _ = std::fs::remove_dir_all(&dir);
                Err(ApiError::internal(format!("cannot create container: {e}")))
            }
        }
    }

    /// `POST /containers/{id}/start`: spawns the monitor, connects pending attachers, starts.
    pub fn start(self: &Arc<Self>, key: &str) -> Result<bool, ApiError> {
        self.start_inner(key, true)
    }

    /// `user`: started through the API (resets the restart count), not by a restart policy.
    fn start_inner(self: &Arc<Self>, key: &str, user: bool) -> Result<bool, ApiError> {
        let _op = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let mut r = self.find(key)?;
        if !user && r.manually_stopped {
            return Ok(false);
        }
        if r.running() {
            return Ok(false);
        }
        r.manually_stopped = false;
        if user {
            r.restart_count = 0;
        }
        let dir = self.dir(&r.id);
        let _ = std::fs::remove_file(dir.join("exit.json"));
        // A runtime state left by a monitor that died without cleaning up would make the
        // runtime refuse the id; it describes a stopped container, so it goes.
        if self.runtime_root().join(&r.id).exists() {
            let _ = crate::runtime::container::delete(&self.runtime_global(), &r.id, false);
        }
        let host = r.config.host_config.clone().unwrap_or_default();
        let (mut max_size, mut max_file) = self.log_defaults.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(c) = host.log_config.as_ref().and_then(|l| l.config.as_ref()) {
            if let Some(s) = c.get("max-size") {
                max_size = s.clone();
            }
            if let Some(f) = c.get("max-file") {
                max_file = f.clone();
            }
        }
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0("tug-monitor")
            .arg("--runtime-root")
            .arg(self.runtime_root())
            .arg("--bundle")
            .arg(dir.join("bundle"))
            .arg("--id")
            .arg(&r.id)
            .arg("--dir")
            .arg(&dir)
            .arg("--log-max-size")
            .arg(&max_size)
            .arg("--log-max-file")
            .arg(&max_file);
        if r.config.tty {
            cmd.arg("--tty");
        }
        if r.config.open_stdin {
            cmd.arg("--stdin");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        self.hand_down_exe(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| ApiError::internal(format!("cannot start monitor: {e}")))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let _ = child.wait();
        let v: Value = serde_json::from_str(line.trim()).unwrap_or(json!({"error": "monitor exited without a word"}));
        if let Some(e) = v["error"].as_str() {
            r.state.error = e.to_string();
            r.state.exit_code = if e.contains("executable file not found") || e.contains("no such file") {
                127
            } else if e.contains("permission denied") {
                126
            } else {
                128
            };
            {
                let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                let _ = self.save_state(&r);
            }
            // Attachers waiting for this start get EOF, waiters their answer, and AutoRemove
            // happens as after any exit.
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&r.id);
            self.note_exit(&r.id, r.state.exit_code);
            self.bump(&r.id, true);
            if host.auto_remove {
                let _ = self.remove(&r.id, true, true);
            }
            return Err(ApiError::new(
                if r.state.exit_code == 128 { 500 } else { 400 },
                format!("failed to create task for container: OCI runtime create failed: {e}: unknown"),
            ));
        }
        // Attachers that arrived before start see the output from the first byte.
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&r.id).unwrap_or_default();
        for p in pending {
            if let Err(e) = bridge_attach(&dir, p.stream, p.opts) {
                eprintln!("tugd: attach to {}: {e}", r.short_id());
            }
        }
        crate::store::crash_point("start.monitor-ready");
        let ans = monitor_request(&dir, &json!({"op": "start"}))
            .map_err(|e| ApiError::internal(format!("cannot start: {e}")))?;
        crate::store::crash_point("start.started");
        if let Some(e) = ans["error"].as_str() {
            return Err(ApiError::internal(format!("cannot start container: {e}")));
        }
        r.state = StateRec {
            status: "running".into(),
            pid: v["pid"].as_i64().unwrap_or(0) as i32,
            started_at: ans["started_at"].as_str().unwrap_or(ZERO_TIME).to_string(),
            finished_at: ZERO_TIME.into(),
            ..Default::default()
        };
        {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.save_state(&r).map_err(ApiError::from)?;
        }
        for m in r.mounts.iter().filter(|m| m.kind == "volume") {
            let rw = m.rw.to_string();
            let attrs = [
                ("container", r.id.as_str()),
                ("destination", m.destination.as_str()),
                ("driver", "local"),
                ("propagation", ""),
                ("read/write", rw.as_str()),
            ];
            self.events.emit("volume", "mount", &m.name, &attrs, None);
        }
        self.events.container(&r, "start", &[]);
        self.watch(&r.id);
        Ok(true)
    }

    /// A thread that waits for the container's exit through the monitor, records it, and does
    /// AutoRemove.
    pub fn watch(self: &Arc<Self>, id: &str) {
        let me = self.clone();
        let id = id.to_string();
        let id_copy = id.clone();
        if !self.watched.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone()) {
            return; // already watched
        }
        // One small thread per running container, blocked in a read: little memory each.
        let spawned = std::thread::Builder::new().stack_size(512 * 1024).spawn(move || {
            let dir = me.dir(&id);
            // `wait` blocks until exit. A failed connection is not an exit: retry until the
            // monitor answers, or exit.json appears, or the monitor is gone.
            loop {
                if monitor_request(&dir, &json!({"op": "wait"})).is_ok() {
                    break;
                }
                if dir.join("exit.json").exists() || !monitor_alive(&dir) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // From here on reads look for the exit themselves (load reconciles with exit.json).
            me.watched.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            let Some(r) = me.load(&id) else { return };
            if r.state.oom_killed {
                me.events.container(&r, "oom", &[]);
            }
            me.events.container(&r, "die", &[("exitCode", &r.state.exit_code.to_string())]);
            for m in r.mounts.iter().filter(|m| m.kind == "volume") {
                me.events.emit("volume", "unmount", &m.name, &[("container", &r.id), ("driver", "local")], None);
            }
            me.note_exit(&id, r.state.exit_code);
            me.bump(&id, true);
            if r.config.host_config.as_ref().is_some_and(|h| h.auto_remove) {
                let _ = me.remove(&id, true, true);
                return;
            }
            me.maybe_restart(r);
        });
        if let Err(e) = spawned {
            self.watched.lock().unwrap_or_else(|e| e.into_inner()).remove(&id_copy);
            eprintln!("tugd: cannot watch container: {e}");
        }
    }

    /// Applies the restart policy after an exit: `always`, `unless-stopped` (unless stopped
    /// through the API), `on-failure[:N]` (non-zero exit, at most N restarts). Waits 100 ms,
    /// doubling with every restart in a row, at most a minute, as Docker's backoff.
    fn maybe_restart(self: &Arc<Self>, r: Record) {
        let policy = r.config.host_config.as_ref().and_then(|h| h.restart_policy.clone()).unwrap_or_default();
        let restart = match policy.name.as_str() {
            "always" | "unless-stopped" => !r.manually_stopped,
            "on-failure" => {
                r.state.exit_code != 0
                    && !r.manually_stopped
                    && (policy.maximum_retry_count <= 0 || i64::from(r.restart_count) < policy.maximum_retry_count)
            }
            _ => false,
        };
        if !restart {
            return;
        }
        let delay =
            Duration::from_millis(100u64.saturating_mul(1 << r.restart_count.min(10))).min(Duration::from_secs(60));
        std::thread::sleep(delay);
        // The user may have removed, started or stopped it meanwhile.
        let Some(mut cur) = self.load(&r.id) else { return };
        if cur.running() || cur.manually_stopped {
            return;
        }
        cur.restart_count += 1;
        {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let _ = self.save_state(&cur);
        }
        if let Err(e) = self.start_inner(&r.id, false) {
            eprintln!("tugd: restarting {}: {}", r.short_id(), e.message);
        }
    }

    fn note_exit(&self, id: &str, code: i32) {
        let mut m = self.notify.last_exit.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: codes of containers long gone are dropped once there are many.
        if m.len() >= 1024 {
            m.retain(|k, _| self.dir(k).exists());
        }
        m.insert(id.to_string(), code);
    }

    fn bump(&self, id: &str, exit: bool) {
        let mut c = self.notify.counts.lock().unwrap_or_else(|e| e.into_inner());
        let e = c.entry(id.to_string()).or_default();
        if exit {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        self.notify.cv.notify_all();
    }

    fn counts(&self, id: &str) -> (u64, u64) {
        self.notify.counts.lock().unwrap_or_else(|e| e.into_inner()).get(id).copied().unwrap_or_default()
    }

    /// Blocks until `cond` holds: `not-running` (now or at the next exit), `next-exit`, `removed`.
    /// Returns the exit code.
    pub fn wait(&self, key: &str, cond: &str) -> Result<i32, ApiError> {
        let r = self.find(key)?;
        let id = r.id.clone();
        let start = self.counts(&id);
        if cond == "not-running" && !r.running() {
            return Ok(r.state.exit_code);
        }
        let mut c = self.notify.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut last_code = r.state.exit_code;
        loop {
            let now = c.get(&id).copied().unwrap_or_default();
            let done = match cond {
                "removed" => now.1 > start.1,
                _ => now.0 > start.0,
            };
            if done {
                break;
            }
            let (g, _) = self.notify.cv.wait_timeout(c, Duration::from_millis(500)).unwrap_or_else(|e| e.into_inner());
            c = g;
            drop(c);
            // The container may have gone (removed) or exited unnoticed: check the files.
            match self.load(&id) {
                Some(r) => {
                    last_code = r.state.exit_code;
                    if cond != "removed" && !r.running() && r.state.status == "exited" && self.counts(&id).0 == start.0
                    {
                        // The watcher may not exist (daemon restarted): the exit is recorded already.
                        if std::fs::metadata(self.dir(&id).join("exit.json")).is_ok()
                            && r.state.finished_at != ZERO_TIME
                        {
                            return Ok(r.state.exit_code);
                        }
                    }
                }
                None if cond == "removed" => {
                    let known = self.notify.last_exit.lock().unwrap_or_else(|e| e.into_inner()).get(&id).copied();
                    return Ok(known.unwrap_or(last_code));
                }
                None => return Err(ApiError::not_found(format!("No such container: {key}"))),
            }
            c = self.notify.counts.lock().unwrap_or_else(|e| e.into_inner());
        }
        drop(c);
        let known = self.notify.last_exit.lock().unwrap_or_else(|e| e.into_inner()).get(&id).copied();
        Ok(self.load(&id).map_or(known.unwrap_or(last_code), |r| r.state.exit_code))
    }

    /// Records that the user stopped the container, so restart policies leave it down.
    fn mark_stopped(&self, id: &str) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut r) = self.load(id) {
            r.manually_stopped = true;
            let _ = self.save_state(&r);
        }
    }

    /// `POST /containers/{id}/kill`: a user's kill also suspends the restart policy.
    pub fn kill_by_user(&self, key: &str, signal: &str) -> Result<(), ApiError> {
        // A start in flight finishes first: its process may already run (and print, which is
        // what a client reacts to) before the start is recorded, and the kill must reach it.
        let _op = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let r = self.find(key)?;
        self.kill(&r.id, signal)?;
        self.mark_stopped(&r.id);
        Ok(())
    }

    /// Sends a signal through the monitor.
    pub fn kill(&self, key: &str, signal: &str) -> Result<(), ApiError> {
        let r = self.find(key)?;
        if !r.running() {
            return Err(ApiError::conflict(format!("Cannot kill container: {key}: container {} is not running", r.id)));
        }
        let sig = if signal.is_empty() { "SIGKILL" } else { signal };
        let sig = crate::runtime::container::parse_signal(sig).map_err(ApiError::bad_request)?;
        self.events.container(&r, "kill", &[("signal", &(sig as i32).to_string())]);
        let ans = monitor_request(&self.dir(&r.id), &json!({"op": "kill", "signal": sig as i32}))
            .map_err(|e| ApiError::internal(format!("cannot kill container: {e}")))?;
        if let Some(e) = ans["error"].as_str() {
            return Err(ApiError::internal(e.to_string()));
        }
        // A frozen process keeps a SIGKILL pending until it is thawed: a paused container is
        // resumed so the kill takes effect, as Docker does.
        if r.state.status == "paused" && sig == nix::sys::signal::Signal::SIGKILL {
            self.pause(&r.id, false)?;
        }
        Ok(())
    }

    /// `stop`: the stop signal, then SIGKILL after the timeout. Returns false if not running.
    pub fn stop(&self, key: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<bool, ApiError> {
        let r = self.find(key)?;
        // Marked even when it is down: a restart pending in its backoff is called off too.
        {
            let _op = self.ops.lock().unwrap_or_else(|e| e.into_inner());
            self.mark_stopped(&r.id);
        }
        let r = self.find(&r.id)?;
        if !r.running() {
            return Ok(false);
        }
        let sig = signal.map(String::from).or_else(|| r.config.stop_signal.clone()).unwrap_or_else(|| "SIGTERM".into());
        let t = timeout.or(r.config.stop_timeout).unwrap_or(10);
        let _ = self.kill(&r.id, &sig);
        let deadline = Instant::now() + Duration::from_secs(t.max(0).unsigned_abs());
        let exited = |s: &Self| s.load(&r.id).is_none_or(|x| !x.running());
        let mut gone = false;
        while Instant::now() < deadline {
            if exited(self) {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !gone && !exited(self) {
            let _ = self.kill(&r.id, "SIGKILL");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !exited(self) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.events.container(&r, "stop", &[]);
        Ok(true)
    }

    /// `DELETE /containers/{id}`; with `volumes` (`rm -v`, AutoRemove) the anonymous volumes
    /// go too, never named ones.
    pub fn remove(&self, key: &str, force: bool, volumes: bool) -> Result<(), ApiError> {
        let r = self.find(key)?;
        if r.running() {
            if !force {
                return Err(ApiError::conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    r.name
                )));
            }
            let _ = self.kill(&r.id, "SIGKILL");
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.load(&r.id).is_some_and(|x| x.running()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            // Never forget a container that still runs: its processes would be orphaned.
            if self.load(&r.id).is_some_and(|x| x.running()) {
                return Err(ApiError::internal(format!(
                    "cannot remove container \"/{}\": could not kill it within 10 seconds",
                    r.name
                )));
            }
        }
        {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let dir = self.dir(&r.id);
            if !dir.exists() {
                return Ok(());
            }
            // The name goes first so it is free again; the directory goes through a rename, so a
            // crash midway leaves a `.removing` entry that is never mistaken for a container.
            let _ = std::fs::remove_file(self.layout.name_file(&r.name));
            crate::store::crash_point("rm.name-released");
            // Not flushed: if a host crash undid the rename, the container would only come back
            // as exited, and could be removed again.
            self.uncache(&r.id);
            atomic::remove_dir_unsynced(&dir)
                .map_err(|e| ApiError::internal(format!("cannot remove container: {e}")))?;
        }
        self.bump(&r.id, false);
        self.events.container(&r, "destroy", &[]);
        if volumes {
            for m in r.mounts.iter().filter(|m| m.anonymous) {
                // Another container may use it through --volumes-from: then it stays.
                if self.volume_users(&m.name).is_empty() {
                    let _ = self.volumes.remove(&m.name);
                }
            }
        }
        Ok(())
    }

    /// The containers (IDs) whose mounts use a volume.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|r| r.mounts.iter().any(|m| m.kind == "volume" && m.name == name))
            .map(|r| r.id)
            .collect()
    }

    /// Registers (before start) or bridges (when running) an attach stream.
    pub fn attach(&self, r: &Record, stream: Stream, stdin: bool, stdout: bool, stderr: bool) -> Result<(), ApiError> {
        let opts = AttachOpts { stdin, stdout, stderr, stdin_once: r.config.stdin_once };
        self.events.container(r, "attach", &[]);
        if r.running() {
            bridge_attach(&self.dir(&r.id), stream, opts).map_err(ApiError::from)
        } else {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(r.id.clone())
                .or_default()
                .push(PendingAttach { stream, opts });
            Ok(())
        }
    }

    /// Resizes the container's terminal.
    pub fn resize(&self, key: &str, h: u32, w: u32) -> Result<(), ApiError> {
        let r = self.find(key)?;
        if !r.running() {
            return Err(ApiError::conflict(format!("Container {} is not running", r.id)));
        }
        let _ = monitor_request(&self.dir(&r.id), &json!({"op": "resize", "h": h, "w": w}));
        Ok(())
    }

    /// The json-file log files, oldest first.
    pub fn log_files(&self, id: &str) -> Vec<PathBuf> {
        let dir = self.dir(id);
        let mut v: Vec<PathBuf> =
            (1..100).map(|i| dir.join(format!("json.log.{i}"))).take_while(|p| p.exists()).collect();
        v.reverse();
        v.push(dir.join("json.log"));
        v
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir(id)
    }

    /// (running, paused, stopped).
    pub fn counts_by_state(&self) -> (usize, usize, usize) {
        let all = self.all();
        let running = all.iter().filter(|r| r.state.status == "running").count();
        let paused = all.iter().filter(|r| r.state.status == "paused").count();
        (running, paused, all.len() - running - paused)
    }

    fn runtime_global(&self) -> crate::runtime::container::Global {
        crate::runtime::container::Global { root: self.runtime_root(), cgroup_root: PathBuf::from("/sys/fs/cgroup") }
    }

    /// The runtime's view of a running container (its cgroup, init pid).
    pub fn runtime_state(&self, r: &Record) -> Result<crate::runtime::state::State, ApiError> {
        if !r.running() {
            return Err(ApiError::conflict(format!("Container {} is not running", r.id)));
        }
        crate::runtime::container::load(&self.runtime_global(), &r.id).map(|(st, _)| st).map_err(ApiError::internal)
    }

    /// `pause` / `unpause`: the freezer, through the runtime.
    pub fn pause(&self, key: &str, frozen: bool) -> Result<(), ApiError> {
        let mut r = self.find(key)?;
        match (frozen, r.state.status.as_str()) {
            (true, "running") | (false, "paused") => {}
            (true, "paused") => return Err(ApiError::conflict(format!("Container {} is already paused", r.id))),
            (false, _) => return Err(ApiError::conflict(format!("Container {} is not paused", r.id))),
            (true, _) => return Err(ApiError::conflict(format!("Container {} is not running", r.id))),
        }
        crate::runtime::container::freeze(&self.runtime_global(), &r.id, frozen).map_err(ApiError::internal)?;
        r.state.status = if frozen { "paused" } else { "running" }.into();
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.save_state(&r).map_err(ApiError::from)?;
        self.events.container(&r, if frozen { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// `rename`: the new name is reserved (O_EXCL) before the old one is released.
    pub fn rename(&self, key: &str, new: &str) -> Result<(), ApiError> {
        let new = new.trim_start_matches('/');
        if !valid_name(new) {
            return Err(ApiError::bad_request(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let mut r = self.find(key)?;
        if r.name == new {
            return Err(ApiError::bad_request("Renaming a container with the same name as its current name"));
        }
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let nf = self.reserve_name(new, &r.id)?;
        let old = std::mem::replace(&mut r.name, new.to_string());
        if let Err(e) = self.save(&r) {
            let _ = std::fs::remove_file(&nf);
            return Err(e.into());
        }
        let _ = std::fs::remove_file(self.layout.name_file(&old));
        self.events.container(&r, "rename", &[("oldName", &format!("/{old}"))]);
        Ok(())
    }

    /// `update`: new limits reach the cgroup of a running container and the record either way.
    pub fn update(&self, key: &str, body: &[u8]) -> Result<(), ApiError> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        let upd: spec::HostConfig = serde_path_to_error::deserialize(de)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON in request body: {}: {}", e.path(), e.inner())))?;
        let raw: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut r = self.find(key)?;
        let mut host = r.config.host_config.clone().unwrap_or_default();
        // Zero, empty and null mean "unchanged", as Docker's update reads them (the docker CLI
        // sends every field, zeros included).
        macro_rules! take_nonzero {
            ($($f:ident),*) => { $( if let Some(v) = upd.$f.filter(|v| *v != 0) { host.$f = Some(v); } )* };
        }
        take_nonzero!(
            memory,
            memory_swap,
            memory_reservation,
            nano_cpus,
            cpu_shares,
            cpu_quota,
            cpu_period,
            pids_limit
        );
        if let Some(c) = upd.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
            host.cpuset_cpus = Some(c);
        }
        if let Some(c) = upd.cpuset_mems.clone().filter(|c| !c.is_empty()) {
            host.cpuset_mems = Some(c);
        }
        if let Some(p) = upd.restart_policy.clone().filter(|p| !p.name.is_empty()) {
            spec::check_restart_policy(&p, host.auto_remove)?;
            host.restart_policy = Some(p);
        }
        if let (Some(m), Some(sw)) = (host.memory, host.memory_swap) {
            if sw > 0 && sw < m {
                return Err(ApiError::bad_request(
                    "Minimum memoryswap limit should be larger than memory limit, see usage",
                ));
            }
        }
        if upd.memory.is_some_and(|m| m > 0)
            && host.memory_swap.is_some_and(|sw| sw > 0 && sw < upd.memory.unwrap_or(0))
        {
            return Err(ApiError::bad_request("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"));
        }
        let res = spec::resources(&host)?;
        if r.running() {
            let st = self.runtime_state(&r)?;
            st.cgroup
                .apply(&res)
                .map_err(|e| ApiError::bad_request(format!("Cannot update container {}: {e}", r.id)))?;
        }
        // The next start reads the bundle: the new limits must be there too.
        let bundle = self.dir(&r.id).join("bundle");
        let mut oci = crate::runtime::spec::Spec::load(&bundle).map_err(ApiError::internal)?;
        if let Some(linux) = oci.linux.as_mut() {
            let cur = linux.resources.get_or_insert_with(Default::default);
            cur.memory = res.memory.clone();
            cur.cpu = res.cpu.clone();
            cur.pids = res.pids.clone();
        }
        atomic::replace(
            &bundle.join("config.json"),
            &serde_json::to_vec(&oci).map_err(|e| ApiError::internal(e.to_string()))?,
        )
        .map_err(ApiError::from)?;
        if let (Some(obj), Some(new)) = (r.host_config_json.as_object_mut(), raw.as_object()) {
            for (k, v) in new {
                let unset = v.is_null()
                    || v.as_i64() == Some(0)
                    || v.as_str() == Some("")
                    || (k == "RestartPolicy" && v["Name"].as_str().unwrap_or("").is_empty());
                if !unset {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
        r.config.host_config = Some(host);
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.save(&r).map_err(ApiError::from)
    }

    /// `container prune`: every stopped container; returns (ids, bytes of their upper dirs).
    pub fn prune(&self) -> (Vec<String>, u64) {
        let mut ids = Vec::new();
        let mut space = 0;
        for r in self.all() {
            if r.running() {
                continue;
            }
            let size = dir_size(&self.dir(&r.id).join("upper"));
            if self.remove(&r.id, false, false).is_ok() {
                ids.push(r.id);
                space += size;
            }
        }
        (ids, space)
    }

    /// Restarts watchers for containers that were running when the daemon last stopped.
    pub fn restore(self: &Arc<Self>) {
        self.after_reboot();
        self.sweep();
        for mut r in self.all() {
            if !r.running() && monitor_alive(&self.dir(&r.id)) {
                // A start the last daemon did not finish recording.
                match self.adopt(&mut r) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        eprintln!("tugd: {}: {e}", r.short_id());
                        continue;
                    }
                }
            }
            if r.running() {
                self.watch(&r.id);
                continue;
            }
            // Down while no daemon ran (a crash of the host, say): `always` and `unless-stopped`
            // bring it back, unless the user had stopped it.
            let policy = r.config.host_config.as_ref().and_then(|h| h.restart_policy.clone()).unwrap_or_default();
            let wanted = match policy.name.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => {
                    r.state.exit_code != 0
                        && (policy.maximum_retry_count <= 0 || i64::from(r.restart_count) < policy.maximum_retry_count)
                }
                _ => false,
            };
            if wanted && !r.manually_stopped && r.state.status == "exited" {
                if let Err(e) = self.start_inner(&r.id, false) {
                    eprintln!("tugd: restarting {}: {}", r.short_id(), e.message);
                }
            }
        }
    }
}

impl Containers {
    /// What a crash of the daemon can leave half done, put right before anything reads it:
    /// - `*.removing` directories (a removal cut short) are finished;
    /// - a container directory without `container.json` (a create cut short) is removed;
    /// - a name file whose container does not exist is released;
    /// - a container whose name file is missing (a removal cut short before the rename) gets it
    ///   back.
    fn sweep(&self) {
        let dir = self.layout.containers_dir();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.ends_with(".removing") || name.starts_with('.') || !path.join("container.json").is_file() {
                eprintln!("tugd: sweeping {name}: left by an interrupted create or remove");
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        let names = self.layout.root().join("names");
        for e in std::fs::read_dir(&names).into_iter().flatten().flatten() {
            let id = std::fs::read_to_string(e.path()).unwrap_or_default();
            let id = id.trim();
            if id.is_empty() || !self.dir(id).join("container.json").is_file() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        for r in self.all() {
            let f = self.layout.name_file(&r.name);
            if !f.exists() {
                let _ = self.reserve_name(&r.name, &r.id);
            }
        }
    }

    /// A container whose record is not running but whose monitor is alive: the daemon died
    /// between starting the monitor and recording it. A running container is adopted (true);
    /// one that never got the start is stopped and left as it was recorded (false).
    fn adopt(&self, r: &mut Record) -> Result<bool, String> {
        let dir = self.dir(&r.id);
        let st = monitor_request(&dir, &json!({"op": "state"})).map_err(|e| format!("monitor: {e}"))?;
        if st["status"] == "running" {
            r.state = StateRec {
                status: "running".into(),
                pid: st["pid"].as_i64().unwrap_or(0) as i32,
                started_at: st["started_at"].as_str().unwrap_or(ZERO_TIME).to_string(),
                finished_at: ZERO_TIME.into(),
                ..Default::default()
            };
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.save_state(r).map_err(|e| e.to_string())?;
            return Ok(true);
        }
        let _ = monitor_request(&dir, &json!({"op": "kill", "signal": 9, "all": true}));
        let deadline = Instant::now() + Duration::from_secs(10);
        while monitor_alive(&dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(dir.join("exit.json"));
        Ok(false)
    }

    /// The host's boot: a reboot ended every container, whatever their records and the
    /// runtime's state files say (a pid in them may even belong to a new process by now). The
    /// boot ID the daemon last ran under is kept in `boot_id`; when it differs, every container
    /// recorded as running is marked exited (255, as a container that died without a word) and
    /// its leftovers are swept, before anything reads those pids. Restart policies then apply.
    fn after_reboot(&self) {
        let now = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default().trim().to_string();
        let file = self.layout.root().join("boot_id");
        let last = std::fs::read_to_string(&file).unwrap_or_default().trim().to_string();
        if now.is_empty() || last == now {
            return;
        }
        if !last.is_empty() {
            let ids: Vec<String> = std::fs::read_dir(self.layout.containers_dir())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && !n.ends_with(".removing"))
                .collect();
            for id in ids {
                let path = self.dir(&id).join("container.json");
                let Some(mut r) = std::fs::read(&path).ok().and_then(|d| serde_json::from_slice::<Record>(&d).ok())
                else {
                    continue;
                };
                let dir = self.dir(&id);
                for f in ["monitor.pid", "monitor.sock", "exit.json"] {
                    let _ = std::fs::remove_file(dir.join(f));
                }
                let _ = std::fs::remove_dir_all(self.runtime_root().join(&id));
                if matches!(r.state.status.as_str(), "running" | "paused" | "restarting") {
                    r.state.status = "exited".into();
                    r.state.pid = 0;
                    r.state.exit_code = 255;
                    r.state.finished_at = crate::timefmt::now_rfc3339();
                    let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = self.save(&r);
                }
            }
        }
        let _ = atomic::write(&file, format!("{now}\n").as_bytes());
    }
}

/// Bytes in regular files under `dir` (not following symlinks).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

/// Whether the container's monitor still runs: its pid file names a live `tug-monitor`. Cheaper
/// than a connection, which matters when `ps` looks at a hundred containers.
fn monitor_alive(dir: &Path) -> bool {
    let Some(pid) = std::fs::read_to_string(dir.join("monitor.pid")).ok().and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return false;
    };
    // The pid must still be a monitor (pids are reused): its argv[0] says so.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"tug-monitor\0"))
}

/// Connects to a container's `monitor.sock`. A unix socket path holds at most 107 bytes, less
/// than a deep data root plus a 64-character id, so the connection goes through a short
/// `/proc/self/fd/N/monitor.sock` path over an O_PATH descriptor of the directory.
pub fn connect_monitor(dir: &Path) -> io::Result<UnixStream> {
    let sock = dir.join("monitor.sock");
    if sock.as_os_str().len() < 100 {
        return UnixStream::connect(sock);
    }
    let d =
        std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY).open(dir)?;
    UnixStream::connect(format!("/proc/self/fd/{}/monitor.sock", std::os::fd::AsRawFd::as_raw_fd(&d)))
}

/// One request/answer exchange with a container's monitor.
pub fn monitor_request(dir: &Path, req: &Value) -> io::Result<Value> {
    let mut s = connect_monitor(dir)?;
    s.write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(line.trim()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Joins a hijacked client stream to the monitor's attach stream, a thread each way.
///
/// `stdin_once` is the container's `StdinOnce`: set by an attached `docker run -i`, whose stdin
/// ending closes the container's; a later `docker attach` ending leaves it open.
fn bridge_attach(dir: &Path, client: Stream, a: AttachOpts) -> io::Result<()> {
    let mut m = connect_monitor(dir)?;
    let req =
        json!({"op": "attach", "stdin": a.stdin, "stdout": a.stdout, "stderr": a.stderr, "stdin_once": a.stdin_once});
    m.write_all(format!("{req}\n").as_bytes())?;
    // Read the answer byte by byte: whatever follows the line is already stream data.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if m.read(&mut b)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "monitor closed the attach"));
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    let v: Value = serde_json::from_slice(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if let Some(e) = v["error"].as_str() {
        return Err(io::Error::other(e.to_string()));
    }
    let mut m_in = m.try_clone()?;
    let mut c_out = client.try_clone()?;
    let mut c_in = client;
    std::thread::spawn(move || {
        // Client → container stdin; the client's half-close becomes ours.
        let _ = io::copy(&mut c_in, &mut m_in);
        let _ = m_in.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = io::copy(&mut m, &mut c_out);
        let _ = c_out.shutdown_write();
    });
    Ok(())
}

/// Docker's human status column: `Up 3 seconds`, `Exited (0) 5 minutes ago`, `Created`.
pub fn human_status(r: &Record) -> String {
    let since = |t: &str| -> String { human_duration(seconds_since(t)) };
    match r.state.status.as_str() {
        "running" => format!("Up {}", since(&r.state.started_at)),
        "paused" => format!("Up {} (Paused)", since(&r.state.started_at)),
        "exited" => format!("Exited ({}) {} ago", r.state.exit_code, since(&r.state.finished_at)),
        "created" => "Created".into(),
        other => other.to_string(),
    }
}

/// Seconds between an RFC 3339 UTC time and now.
pub fn seconds_since(t: &str) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    now.saturating_sub(parse_rfc3339(t).unwrap_or(now))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac]Z` to epoch seconds.
pub fn parse_rfc3339(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let (y, mo, d) = (num(&t[0..4])?, num(&t[5..7])?, num(&t[8..10])?);
    let (h, mi, s) = (num(&t[11..13])?, num(&t[14..16])?, num(&t[17..19])?);
    let days = crate::timefmt::days_from_civil(y, mo, d);
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s).ok()
}

/// `3 seconds`, `About a minute`, `5 minutes`, `About an hour`, `2 hours`, `3 days` … as Docker.
pub fn human_duration(secs: u64) -> String {
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s if s < 7 * 86400 * 2 => format!("{} days", s / 86400),
        s if s < 30 * 86400 * 2 => format!("{} weeks", s / (7 * 86400)),
        s if s < 365 * 86400 * 2 => format!("{} months", s / (30 * 86400)),
        s => format!("{} years", s / (365 * 86400)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_times_and_durations() {
        assert!(valid_name("web-1") && valid_name("a.b_c"));
        assert!(!valid_name("-x") && !valid_name("a") && !valid_name("a/b") && !valid_name("_x"));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:10.5Z"), Some(10));
        assert_eq!(parse_rfc3339("2024-02-29T23:59:59.000000005Z"), Some(1_709_251_199));
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
    }
}
