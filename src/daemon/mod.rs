//! `tugd` / `dockerd` / `tug daemon`: the Docker Engine API over unix, TCP and systemd-activated
//! sockets. One thread per connection (the docker CLI opens attach, wait and start connections at
//! once during `run`); every request is answered by `router::route`.
//!
//! A hand-written HTTP/1.1 layer (`http.rs`) replaces tiny_http here: the API needs headers
//! flushed before long waits, per-message chunk flushing and connection hijacking with
//! half-close, which are simpler to get right directly than around a general server.

pub mod api;
pub mod archive;
pub mod commit;
pub mod containers;
pub mod containers_api;
pub mod events;
pub mod exec;
pub mod http;
pub mod images;
pub mod router;
pub mod spec;
pub mod system;
pub mod vfs;
pub mod volumes;

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};

use crate::store::layout::{Layout, DEFAULT_ROOT};
use crate::store::lock::RootLock;
use http::{Conn, Stream};

/// The default API socket.
pub const DEFAULT_SOCKET: &str = "/run/tug.sock";

#[derive(Parser, Debug, Clone)]
#[command(name = "tugd", about = "Docker-compatible container engine daemon", disable_version_flag = true)]
struct Args {
    /// Where to listen: unix://PATH, tcp://HOST:PORT, fd:// (repeatable).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Root of the state tree.
    #[arg(long = "data-root", visible_alias = "graph")]
    data_root: Option<PathBuf>,
    /// Write the daemon's pid here.
    #[arg(short = 'p', long, default_value = "/run/tugd.pid")]
    pidfile: PathBuf,
    /// debug, info, warn, error, fatal.
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    log_level: String,
    /// daemon.json with the keys that apply (hosts, data-root, log-level, log-opts, ...).
    #[arg(long = "config-file")]
    config_file: Option<PathBuf>,
    /// overlay2 (the default where overlayfs works) or vfs (a copy of the layers per container).
    #[arg(short = 's', long = "storage-driver")]
    storage_driver: Option<String>,
    /// Allow plain TCP on a non-loopback address (no TLS: anyone who can connect is root).
    #[arg(long = "insecure-tcp")]
    insecure_tcp: bool,
    /// A registry reachable over plain HTTP: host[:port] or CIDR (repeatable).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// A Docker Hub mirror, http(s)://host[:port] (repeatable).
    #[arg(long = "registry-mirror")]
    registry_mirrors: Vec<String>,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
}

/// daemon.json: only the keys tug uses; unknown keys are ignored, wrong types are errors.
#[allow(dead_code)]
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DaemonConfig {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub data_root: Option<PathBuf>,
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub storage_driver: Option<String>,
    #[serde(default)]
    pub log_opts: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
}

impl DaemonConfig {
    fn load(path: &Path) -> Result<DaemonConfig, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let de = &mut serde_json::Deserializer::from_slice(&data);
        serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}: {}", path.display(), e.path(), e.inner()))
    }
}

/// Everything the handlers share.
pub struct Engine {
    pub layout: Layout,
    pub images: crate::image::store::ImageStore,
    pub containers: Arc<containers::Containers>,
    pub execs: exec::Execs,
    pub events: Arc<events::Events>,
    pub id: String,
    pub cgroup_v2: bool,
    pub config: Mutex<DaemonConfig>,
    /// `--log-level debug`: every request is logged with its duration.
    pub debug: std::sync::atomic::AtomicBool,
}

impl Engine {
    /// (running, paused, stopped) containers.
    pub fn container_counts(&self) -> (usize, usize, usize) {
        self.containers.counts_by_state()
    }

    pub fn image_count(&self) -> usize {
        self.images.list().len()
    }

    pub fn storage_driver(&self) -> &'static str {
        self.containers.storage_driver()
    }
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let a = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    if a.version {
        println!("tugd version {}, commit {}", crate::version::VERSION, crate::version::COMMIT);
        return ExitCode::SUCCESS;
    }
    match run(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tugd: {e}");
            ExitCode::from(1)
        }
    }
}

/// A bound listener.
enum Listener {
    Unix(UnixListener, Option<PathBuf>),
    Tcp(TcpListener),
}

fn run(a: Args) -> Result<(), String> {
    // Whatever the starter left open (a shell's stray descriptors) stays with the daemon and
    // reaches none of its children; sockets passed by the service manager are adopted in-process.
    crate::runtime::init::cloexec_from(3);
    let mut file_cfg = match &a.config_file {
        Some(p) => DaemonConfig::load(p)?,
        None => DaemonConfig::default(),
    };
    add_registry_flags(&mut file_cfg, &a);
    let wanted_driver = match a.storage_driver.clone().or(file_cfg.storage_driver.clone()).as_deref() {
        Some("overlay2" | "overlay") => Some("overlay2"),
        Some("vfs") => Some("vfs"),
        Some(other) => return Err(format!("unknown storage driver {other:?} (overlay2 or vfs)")),
        None => None,
    };
    let mut hosts = a.hosts.clone();
    if hosts.is_empty() {
        hosts = file_cfg.hosts.clone();
    } else if !file_cfg.hosts.is_empty() {
        return Err("the hosts are given both as flags and in the config file (as dockerd, pick one)".into());
    }
    if hosts.is_empty() {
        hosts.push(format!("unix://{DEFAULT_SOCKET}"));
    }
    let root = a.data_root.clone().or(file_cfg.data_root.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let layout = Layout::open(&root).map_err(|e| format!("data root {}: {e}", root.display()))?;
    let _lock = RootLock::try_acquire(&layout.lock_file())
        .map_err(|e| format!("cannot lock data root {}: {e} (is another tugd running?)", root.display()))?;
    // Signals are taken by one thread with sigwait; block them everywhere before any thread starts.
    let mut sigs = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        sigs.add(s);
    }
    sigs.thread_block().map_err(|e| format!("cannot block signals: {e}"))?;
    let listeners = hosts.iter().map(|h| bind(h, a.insecure_tcp)).collect::<Result<Vec<_>, _>>()?;
    crate::store::atomic::write(&a.pidfile, format!("{}\n", std::process::id()).as_bytes())
        .map_err(|e| format!("pid file {}: {e}", a.pidfile.display()))?;
    let images = crate::image::store::ImageStore::open(&layout).map_err(|e| format!("image store: {e}"))?;
    let containers = Arc::new(containers::Containers::open(&layout).map_err(|e| format!("containers: {e}"))?);
    if let Some((size, files)) = log_opts(&file_cfg) {
        *containers.log_defaults.lock().unwrap_or_else(|e| e.into_inner()) = (size, files);
    }
    let driver = match wanted_driver {
        Some(d) => d,
        None if vfs::overlay_works(&layout.tmp()) => "overlay2",
        None => {
            eprintln!("tugd: overlayfs is not available here; using the vfs storage driver (a copy per container)");
            "vfs"
        }
    };
    containers.set_vfs(driver == "vfs");
    // Containers that kept running while no daemon was up get their exit watchers back.
    containers.restore();
    let engine = Arc::new(Engine {
        images,
        events: containers.events.clone(),
        containers,
        execs: exec::Execs::default(),
        id: engine_id(&layout)?,
        cgroup_v2: nix::sys::statfs::statfs("/sys/fs/cgroup")
            .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            .unwrap_or(false),
        layout,
        debug: is_debug(file_cfg.log_level.as_deref().unwrap_or(&a.log_level)).into(),
        config: Mutex::new(file_cfg),
    });
    let mut sockets = Vec::new();
    for l in listeners {
        let e = engine.clone();
        match l {
            Listener::Unix(l, path) => {
                sockets.extend(path);
                std::thread::spawn(move || {
                    for c in l.incoming().flatten() {
                        let e = e.clone();
                        std::thread::spawn(move || serve(&e, Stream::Unix(c)));
                    }
                });
            }
            Listener::Tcp(l) => {
                std::thread::spawn(move || {
                    for c in l.incoming().flatten() {
                        let _ = c.set_nodelay(true);
                        let e = e.clone();
                        std::thread::spawn(move || serve(&e, Stream::Tcp(c)));
                    }
                });
            }
        }
    }
    eprintln!("tugd {}: API listening on {}", crate::version::VERSION, hosts.join(", "));
    loop {
        match sigs.wait() {
            Ok(Signal::SIGHUP) => {
                if let Some(p) = &a.config_file {
                    match DaemonConfig::load(p) {
                        Ok(mut c) => {
                            add_registry_flags(&mut c, &a);
                            if let Some(l) = log_opts(&c) {
                                *engine.containers.log_defaults.lock().unwrap_or_else(|e| e.into_inner()) = l;
                            }
                            let level = c.log_level.clone().unwrap_or_else(|| a.log_level.clone());
                            engine.debug.store(is_debug(&level), std::sync::atomic::Ordering::Relaxed);
                            *engine.config.lock().unwrap_or_else(|e| e.into_inner()) = c;
                            eprintln!("tugd: reloaded {}", p.display());
                        }
                        Err(e) => eprintln!("tugd: not reloading: {e}"),
                    }
                }
            }
            Ok(_) => break,
            Err(e) => return Err(format!("sigwait: {e}")),
        }
    }
    // Containers keep running (their monitors hold them); only the API goes away.
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    let _ = std::fs::remove_file(&a.pidfile);
    eprintln!("tugd: stopped");
    Ok(())
}

/// The registry flags add to daemon.json's lists (flags survive a reload of the file).
fn add_registry_flags(c: &mut DaemonConfig, a: &Args) {
    for i in &a.insecure_registries {
        if !c.insecure_registries.contains(i) {
            c.insecure_registries.push(i.clone());
        }
    }
    for m in &a.registry_mirrors {
        if !c.registry_mirrors.contains(m) {
            c.registry_mirrors.push(m.clone());
        }
    }
}

/// json-file rotation defaults from daemon.json `log-opts` (Docker's key names).
fn log_opts(c: &DaemonConfig) -> Option<(String, String)> {
    let size = c.log_opts.get("max-size").cloned();
    let files = c.log_opts.get("max-file").cloned();
    if size.is_none() && files.is_none() {
        return None;
    }
    Some((size.unwrap_or_else(|| "10m".into()), files.unwrap_or_else(|| "3".into())))
}

/// A stable daemon ID, made once per data root.
fn engine_id(layout: &Layout) -> Result<String, String> {
    let p = layout.root().join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        return Ok(s.trim().to_string());
    }
    let mut seed = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let id = crate::store::digest::hex(&seed);
    crate::store::atomic::write(&p, id.as_bytes()).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(id)
}

fn bind(host: &str, insecure_tcp: bool) -> Result<Listener, String> {
    if let Some(path) = host.strip_prefix("unix://") {
        let path = if path.is_empty() { DEFAULT_SOCKET } else { path };
        return bind_unix(Path::new(path)).map(|l| Listener::Unix(l, Some(PathBuf::from(path))));
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        let sa: SocketAddr =
            addr.parse().map_err(|_| format!("invalid tcp address {host:?} (want tcp://HOST:PORT)"))?;
        if !is_loopback(sa.ip()) && !insecure_tcp {
            return Err(format!(
                "refusing to listen on {host} without TLS: anyone who can connect controls the host; use a loopback address or pass --insecure-tcp"
            ));
        }
        return TcpListener::bind(sa).map(Listener::Tcp).map_err(|e| format!("{host}: {e}"));
    }
    if host.starts_with("fd://") {
        return systemd_listener(host);
    }
    Err(format!("unsupported host {host:?}: use unix://PATH, tcp://HOST:PORT or fd://"))
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// Binds a unix socket, replacing a stale file but never a live daemon's socket; mode 0660,
/// group `docker` when that group exists.
fn bind_unix(path: &Path) -> Result<UnixListener, String> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("{} is in use by a running daemon", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let l = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o660))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Ok(Some(g)) = nix::unistd::Group::from_name("docker") {
        let _ = nix::unistd::chown(path, None, Some(g.gid));
    }
    Ok(l)
}

/// Sockets passed by systemd (LISTEN_PID, LISTEN_FDS; descriptors from 3).
fn systemd_listener(host: &str) -> Result<Listener, String> {
    let pid: u32 = std::env::var("LISTEN_PID").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let n: i32 = std::env::var("LISTEN_FDS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if pid != std::process::id() || n < 1 {
        return Err(format!("{host}: no sockets passed by the service manager (LISTEN_PID/LISTEN_FDS)"));
    }
    let fd: RawFd = 3;
    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    let addr = nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(fd)
        .map_err(|e| format!("{host}: descriptor 3 is not a socket: {e}"))?;
    if addr.as_unix_addr().is_some() {
        // SAFETY: the service manager passed this listening socket to us, and nothing else owns it.
        Ok(Listener::Unix(unsafe { UnixListener::from_raw_fd(fd) }, None))
    } else {
        // SAFETY: as above, a listening TCP socket handed to this process.
        Ok(Listener::Tcp(unsafe { TcpListener::from_raw_fd(fd) }))
    }
}

fn is_debug(level: &str) -> bool {
    level.eq_ignore_ascii_case("debug")
}

/// Serves one connection until it closes or is hijacked. A panicking handler answers 500 and
/// closes this connection only.
fn serve(e: &Engine, s: Stream) {
    let Ok(mut conn) = Conn::new(s) else { return };
    loop {
        let head = match conn.read_head() {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(err) => {
                let mut r = api::Responder::new(&mut conn.writer, false);
                let _ = r.error(&api::ApiError::bad_request(format!("malformed request: {err}")));
                return;
            }
        };
        let head_only = head.method == "HEAD";
        let started = std::time::Instant::now();
        let mut body = http::Body::new(&mut conn.reader, &head);
        let mut r = api::Responder::new(&mut conn.writer, head_only);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (_, path) = api::split_version(&head.path)?;
            router::route(e, &head, path, &mut body, &mut r)
        }));
        let result = match result {
            Ok(r) => r,
            Err(p) => {
                let msg =
                    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
                Err(api::ApiError::internal(format!("internal error: {}", msg.unwrap_or_default())))
            }
        };
        if e.debug.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("tugd: debug: {} {} {:.1} ms", head.method, head.path, started.elapsed().as_secs_f64() * 1e3);
        }
        if let Err(err) = result {
            if !r.sent() {
                let _ = r.error(&err);
            } else {
                return;
            }
        }
        if r.done || head.close {
            return;
        }
        if body.drain().is_err() {
            return;
        }
    }
}
