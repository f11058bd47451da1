//! The container's filesystem view, built inside its new mount namespace: the rootfs bind, the
//! config's mounts, /dev, pivot_root, then masked and read-only paths.
//!
//! Every destination is resolved inside the rootfs the way `openat2(RESOLVE_IN_ROOT)` would: a
//! symlink in the image (absolute or with `..`) can never point a mount outside the container.

use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknod, Mode, SFlag};

use super::spec::{Device, Mount, Spec};

type Res<T> = Result<T, String>;

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

/// Resolves `unsafe_path` inside `root`, following symlinks as if `root` were `/`. The result is
/// `root` joined with a path free of symlinks pointing out (components that do not exist yet are
/// appended as they are).
pub fn secure_join(root: &Path, unsafe_path: &str) -> PathBuf {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> =
        Path::new(unsafe_path).components().rev().filter_map(comp_name).collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            parts.pop();
            continue;
        }
        let candidate = parts.iter().fold(root.to_path_buf(), |p, c| p.join(c)).join(&part);
        match std::fs::read_link(&candidate) {
            Ok(target) if links < 255 => {
                links += 1;
                if target.is_absolute() {
                    parts.clear();
                }
                pending.extend(target.components().rev().filter_map(comp_name));
            }
            _ => parts.push(part),
        }
    }
    parts.iter().fold(root.to_path_buf(), |p, c| p.join(c))
}

fn comp_name(c: Component<'_>) -> Option<std::ffi::OsString> {
    match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    }
}

/// Mount flags and the data string from an OCI options list.
#[derive(Debug, Clone)]
pub struct Options {
    pub flags: MsFlags,
    pub clear: MsFlags,
    pub propagation: MsFlags,
    pub data: Vec<String>,
    pub bind: bool,
}

/// Parses `mounts[].options`; unknown words are passed to the filesystem as data, as runc does.
pub fn parse_options(opts: &[String]) -> Options {
    let mut o = Options {
        flags: MsFlags::empty(),
        clear: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
        bind: false,
    };
    for opt in opts {
        let (set, clear, prop) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty(), MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty(), MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty(), MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty(), MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty(), MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty(), MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty(), MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty(), MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty(), MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty(), MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty(), MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => {
                o.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty(), MsFlags::empty())
            }
            "rbind" => {
                o.bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty(), MsFlags::empty())
            }
            "private" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE),
            "rprivate" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "shared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED),
            "rshared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED | MsFlags::MS_REC),
            "slave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE),
            "rslave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "unbindable" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_UNBINDABLE),
            "runbindable" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            // Recognised by other runtimes, meaningless or handled elsewhere here.
            "tmpcopyup" | "copy-symlink" | "idmap" | "ridmap" | "rro" | "rrw" | "rnosuid" | "rnodev" | "rnoexec" => {
                continue
            }
            s if s.starts_with("X-mount.") => continue,
            other => {
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags |= set;
        o.flags &= !clear;
        o.clear |= clear;
        o.propagation |= prop;
    }
    o
}

/// Mount flags that an unprivileged remount must keep, read from the existing mount.
fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else { return MsFlags::empty() };
    let f = st.flags();
    use nix::sys::statvfs::FsFlags;
    let mut m = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        // ST_RELATIME (4096) is missing from nix on musl; the kernel value is the same everywhere.
        (FsFlags::from_bits_retain(4096), MsFlags::MS_RELATIME),
    ] {
        if f.contains(a) {
            m |= b;
        }
    }
    m
}

/// Remounts an existing bind mount with `flags` (plus what the kernel insists on keeping).
fn remount_bind(path: &Path, flags: MsFlags) -> Res<()> {
    let all = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked_flags(path);
    mount(None::<&str>, path, None::<&str>, all, None::<&str>).map_err(|e| err("cannot remount", path, e))
}

/// `mkdir -p` with mode 0755.
fn mkdir_all(dir: &Path) -> Res<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir).map_err(|e| err("cannot create", dir, e))
}

/// Creates the mount point `dest` as a directory, or as an empty file when `file` is set.
fn make_mount_point(dest: &Path, file: bool) -> Res<()> {
    if file {
        if let Some(parent) = dest.parent() {
            mkdir_all(parent)?;
        }
        if std::fs::symlink_metadata(dest).is_err() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(dest)
                .map_err(|e| err("cannot create", dest, e))?;
        }
        Ok(())
    } else {
        mkdir_all(dest)
    }
}

/// Everything done before pivot_root: rootfs propagation, the rootfs bind, every config mount,
/// and /dev. `bundle` resolves relative bind sources; `has_netns`/`has_ipcns` pick the fallback
/// for sysfs and mqueue, which the kernel refuses to mount from a foreign namespace.
pub fn prepare_rootfs(spec: &Spec, rootfs: &Path, bundle: &Path, ns: &NsInfo) -> Res<()> {
    let linux = spec.linux.clone().unwrap_or_default();
    let prop = match linux.rootfs_propagation.as_deref().unwrap_or("") {
        "shared" | "rshared" => MsFlags::MS_SHARED,
        "private" | "rprivate" => MsFlags::MS_PRIVATE,
        "unbindable" | "runbindable" => MsFlags::MS_UNBINDABLE,
        _ => MsFlags::MS_SLAVE,
    };
    // Mount events inside must never reach the host: make the whole tree slave (or as asked)
    // before touching anything.
    let first = if prop == MsFlags::MS_SHARED { MsFlags::MS_PRIVATE } else { prop };
    mount(None::<&str>, "/", None::<&str>, first | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| format!("cannot set / propagation: {e}"))?;
    if let Some(ov) = spec.annotations.get(OVERLAY_ANNOTATION) {
        mount_overlay(ov, rootfs)?;
    }
    mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| err("cannot bind rootfs", rootfs, e))?;
    if prop == MsFlags::MS_SHARED {
        mount(None::<&str>, rootfs, None::<&str>, MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| err("cannot make shared", rootfs, e))?;
    }
    let mut dev_bound = false;
    for (i, m) in spec.mounts.iter().enumerate() {
        if m.destination == "/dev" && (m.kind.as_deref() == Some("bind") || parse_options(&m.options).bind) {
            dev_bound = true;
        }
        mount_one(m, rootfs, bundle, ns).map_err(|e| format!("mounts[{i}] ({}): {e}", m.destination))?;
    }
    if !dev_bound {
        create_devices(rootfs, &default_devices(), ns.userns)?;
        create_devices(rootfs, &linux.devices, ns.userns)?;
        dev_symlinks(rootfs)?;
    } else {
        create_devices(rootfs, &linux.devices, ns.userns)?;
    }
    Ok(())
}

/// The annotation with which the daemon asks for an overlay root filesystem. It is mounted inside
/// the container's own mount namespace, so it disappears with the container's last process even
/// when no daemon is running to unmount it. Value: `{"lower": [top … bottom], "upper", "work"}`.
pub const OVERLAY_ANNOTATION: &str = "io.tug.rootfs.overlay";

#[derive(serde::Deserialize)]
struct Overlay {
    lower: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
}

pub fn mount_overlay(value: &str, rootfs: &Path) -> Res<()> {
    let ov: Overlay = serde_json::from_str(value).map_err(|e| format!("annotations.{OVERLAY_ANNOTATION}: {e}"))?;
    let join = |ps: &[PathBuf]| ps.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
    let data = format!("lowerdir={},upperdir={},workdir={}", join(&ov.lower), ov.upper.display(), ov.work.display());
    // The kernel takes at most a page of mount options.
    if data.len() >= 4096 {
        return Err(format!("overlay options too long ({} layers)", ov.lower.len()));
    }
    mount(Some("overlay"), rootfs, Some("overlay"), MsFlags::empty(), Some(data.as_str()))
        .map_err(|e| err("cannot mount overlay on", rootfs, e))
}

/// Which namespaces the container has, for mount fallbacks.
#[derive(Debug, Default, Clone, Copy)]
pub struct NsInfo {
    pub netns: bool,
    pub ipcns: bool,
    pub userns: bool,
    pub cgroupns: bool,
}

fn mount_one(m: &Mount, rootfs: &Path, bundle: &Path, ns: &NsInfo) -> Res<()> {
    let o = parse_options(&m.options);
    let kind = m.kind.as_deref().unwrap_or(if o.bind { "bind" } else { "" });
    let dest = secure_join(rootfs, &m.destination);
    if kind == "bind" || o.bind {
        let src = m.source.as_deref().ok_or("bind mount without source")?;
        let src = if Path::new(src).is_absolute() { PathBuf::from(src) } else { bundle.join(src) };
        let meta = std::fs::metadata(&src).map_err(|e| err("bind source", &src, e))?;
        make_mount_point(&dest, !meta.is_dir())?;
        let rec = o.flags & MsFlags::MS_REC;
        mount(Some(&src), &dest, None::<&str>, MsFlags::MS_BIND | rec, None::<&str>)
            .map_err(|e| err("cannot bind", &src, e))?;
        let extra = o.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(&dest, extra)?;
        }
        return set_propagation(&dest, o.propagation);
    }
    if kind == "cgroup" || kind == "cgroup2" {
        make_mount_point(&dest, false)?;
        return mount_cgroup(&dest, &o, ns);
    }
    make_mount_point(&dest, false)?;
    let data = o.data.join(",");
    let source = m.source.as_deref().unwrap_or(kind);
    let flags = o.flags & !MsFlags::MS_REMOUNT;
    match mount(Some(source), &dest, Some(kind), flags, Some(data.as_str())) {
        Ok(()) => {}
        // Without its own network (or ipc) namespace the kernel refuses a fresh sysfs (mqueue):
        // give the host's, read-only, as runc does.
        Err(nix::errno::Errno::EPERM) if (kind == "sysfs" && !ns.netns) || (kind == "mqueue" && !ns.ipcns) => {
            let host = if kind == "sysfs" { "/sys" } else { "/dev/mqueue" };
            mount(Some(host), &dest, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(|e| err("cannot bind", Path::new(host), e))?;
            remount_bind(
                &dest,
                MsFlags::MS_RDONLY | (o.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)),
            )?;
        }
        Err(e) => return Err(format!("cannot mount {kind} on {}: {e}", dest.display())),
    }
    set_propagation(&dest, o.propagation)
}

fn set_propagation(dest: &Path, prop: MsFlags) -> Res<()> {
    if prop.is_empty() {
        return Ok(());
    }
    mount(None::<&str>, dest, None::<&str>, prop, None::<&str>).map_err(|e| err("cannot set propagation of", dest, e))
}

/// The `cgroup` mount: a tmpfs holding, for every host hierarchy, a bind of this container's own
/// cgroup directory (so the container sees itself as the root, with or without a cgroup
/// namespace), then made read-only if asked.
fn mount_cgroup(dest: &Path, o: &Options, ns: &NsInfo) -> Res<()> {
    let host = Path::new("/sys/fs/cgroup");
    let own =
        std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let path_of = |controllers: &str| -> Option<String> {
        own.lines().find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, c, p) = (it.next()?, it.next()?, it.next()?);
            (c == controllers).then(|| p.to_string())
        })
    };
    let base = o.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let is_v2 = nix::sys::statfs::statfs(host)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    if is_v2 {
        if ns.cgroupns {
            return mount(Some("cgroup2"), dest, Some("cgroup2"), o.flags, None::<&str>)
                .map_err(|e| err("cannot mount cgroup2 on", dest, e));
        }
        let own_dir = host.join(path_of("").unwrap_or_default().trim_start_matches('/'));
        mount(Some(&own_dir), dest, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| err("cannot bind", &own_dir, e))?;
        return remount_bind(dest, o.flags & !MsFlags::MS_REC);
    }
    mount(Some("tmpfs"), dest, Some("tmpfs"), base, Some("mode=755"))
        .map_err(|e| err("cannot mount tmpfs on", dest, e))?;
    let entries = std::fs::read_dir(host).map_err(|e| err("cannot read", host, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name_s = name.to_string_lossy().to_string();
        let target = dest.join(&name);
        let ft = entry.file_type().map_err(|e| err("cannot stat", &entry.path(), e))?;
        if ft.is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(|e| err("cannot read", &entry.path(), e))?;
            symlink(&link, &target).map_err(|e| err("cannot create", &target, e))?;
            continue;
        }
        if !ft.is_dir() {
            continue;
        }
        let key = match name_s.as_str() {
            "systemd" => "name=systemd".to_string(),
            "unified" => String::new(),
            other => other.to_string(),
        };
        let Some(p) = path_of(&key) else { continue };
        let src = entry.path().join(p.trim_start_matches('/'));
        if !src.is_dir() {
            continue;
        }
        make_mount_point(&target, false)?;
        mount(Some(&src), &target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| err("cannot bind", &src, e))?;
        remount_bind(&target, base | (o.flags & MsFlags::MS_RDONLY))?;
    }
    if o.flags.contains(MsFlags::MS_RDONLY) {
        mount(None::<&str>, dest, None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base, Some("mode=755"))
            .map_err(|e| err("cannot remount", dest, e))?;
    }
    Ok(())
}

/// The devices every container gets (runtime-spec "Default Devices").
pub fn default_devices() -> Vec<Device> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .iter()
    .map(|(p, ma, mi)| Device {
        kind: "c".into(),
        path: (*p).into(),
        major: *ma,
        minor: *mi,
        file_mode: Some(0o666),
        uid: Some(0),
        gid: Some(0),
    })
    .collect()
}

/// Creates device nodes (or, in a user namespace where mknod is refused, binds the host's).
fn create_devices(rootfs: &Path, devices: &[Device], userns: bool) -> Res<()> {
    for (i, d) in devices.iter().enumerate() {
        let dest = secure_join(rootfs, &d.path);
        if let Some(parent) = dest.parent() {
            mkdir_all(parent)?;
        }
        if userns {
            make_mount_point(&dest, true)?;
            mount(Some(d.path.as_str()), &dest, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| format!("linux.devices[{i}]: cannot bind {}: {e}", d.path))?;
            continue;
        }
        let kind = match d.kind.as_str() {
            "c" | "u" => SFlag::S_IFCHR,
            "b" => SFlag::S_IFBLK,
            "p" => SFlag::S_IFIFO,
            other => return Err(format!("linux.devices[{i}].type: unknown device type {other:?}")),
        };
        let _ = std::fs::remove_file(&dest);
        let dev = nix::sys::stat::makedev(d.major as u64, d.minor as u64);
        let mode = Mode::from_bits_truncate(d.file_mode.unwrap_or(0o666) & 0o7777);
        mknod(&dest, kind, mode, dev).map_err(|e| format!("linux.devices[{i}]: mknod {}: {e}", dest.display()))?;
        // mknod applies the umask; set the exact mode and owner asked for.
        std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(mode.bits()))
            .map_err(|e| err("cannot chmod", &dest, e))?;
        nix::unistd::chown(&dest, d.uid.map(nix::unistd::Uid::from_raw), d.gid.map(nix::unistd::Gid::from_raw))
            .map_err(|e| err("cannot chown", &dest, e))?;
    }
    Ok(())
}

fn dev_symlinks(rootfs: &Path) -> Res<()> {
    let dev = secure_join(rootfs, "/dev");
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if dev.join("pts").join("ptmx").exists() {
        let _ = std::fs::remove_file(dev.join("ptmx"));
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        let p = dev.join(name);
        if std::fs::symlink_metadata(&p).is_ok() {
            continue;
        }
        symlink(target, &p).map_err(|e| err("cannot create", &p, e))?;
    }
    Ok(())
}

/// Makes `rootfs` the root: pivot_root into it and detach the old root (or, with `--no-pivot`,
/// move it over / and chroot, for ramfs roots where pivot_root is refused).
pub fn enter_rootfs(rootfs: &Path, no_pivot: bool) -> Res<()> {
    if no_pivot {
        std::env::set_current_dir(rootfs).map_err(|e| err("cannot chdir", rootfs, e))?;
        mount(Some(rootfs), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(|e| err("cannot move", rootfs, e))?;
        nix::unistd::chroot(".").map_err(|e| err("cannot chroot", rootfs, e))?;
        return std::env::set_current_dir("/").map_err(|e| format!("cannot chdir /: {e}"));
    }
    let old = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open /: {e}"))?;
    std::env::set_current_dir(rootfs).map_err(|e| err("cannot chdir", rootfs, e))?;
    // pivot_root(".", ".") stacks the old root under the new one; it is then unmounted from the
    // old root's point of view, with no directory needed inside the image.
    nix::unistd::pivot_root(".", ".").map_err(|e| err("cannot pivot_root into", rootfs, e))?;
    nix::unistd::fchdir(old).map_err(|e| format!("cannot fchdir to old root: {e}"))?;
    let _ = nix::unistd::close(old);
    mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| format!("cannot make old root slave: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("cannot detach old root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("cannot chdir /: {e}"))
}

/// After pivot: masked paths (files get /dev/null, directories an empty read-only tmpfs),
/// read-only paths, and a read-only root.
pub fn finish_rootfs(spec: &Spec) -> Res<()> {
    let linux = spec.linux.clone().unwrap_or_default();
    for p in &linux.readonly_paths {
        let path = Path::new(p);
        if std::fs::symlink_metadata(path).is_err() {
            continue;
        }
        mount(Some(path), path, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| err("cannot bind", path, e))?;
        remount_bind(
            path,
            MsFlags::MS_RDONLY | MsFlags::MS_REC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )?;
    }
    for p in &linux.masked_paths {
        let path = Path::new(p);
        let Ok(meta) = std::fs::metadata(path) else { continue };
        if meta.is_dir() {
            mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
                .map_err(|e| err("cannot mask", path, e))?;
        } else {
            mount(Some("/dev/null"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| err("cannot mask", path, e))?;
        }
    }
    if spec.root.as_ref().is_some_and(|r| r.readonly) {
        remount_bind(Path::new("/"), MsFlags::MS_RDONLY)?;
    }
    Ok(())
}

/// Writes `linux.sysctl` into the container's /proc/sys.
pub fn apply_sysctl(spec: &Spec) -> Res<()> {
    let Some(linux) = &spec.linux else { return Ok(()) };
    for (k, v) in &linux.sysctl {
        if k.contains("..") || k.contains('/') && k.contains('.') {
            return Err(format!("linux.sysctl: invalid key {k:?}"));
        }
        let path = Path::new("/proc/sys").join(k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|e| format!("linux.sysctl.{k}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_inside() {
        let root = crate::store::atomic::tests::temp_dir("sj");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("a/up")).unwrap();
        symlink("b", root.join("a/rel")).unwrap();
        assert_eq!(secure_join(&root, "/abs/passwd"), root.join("etc/passwd"));
        assert_eq!(secure_join(&root, "/a/up/etc"), root.join("etc"));
        assert_eq!(secure_join(&root, "../../x"), root.join("x"));
        assert_eq!(secure_join(&root, "/a/rel/c"), root.join("a/b/c"));
        assert_eq!(secure_join(&root, "/new/dir"), root.join("new/dir"));
        symlink("loop", root.join("loop")).unwrap();
        let _ = secure_join(&root, "/loop/x"); // terminates
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn options() {
        let o = parse_options(&["nosuid".into(), "ro".into(), "rbind".into(), "rprivate".into(), "mode=755".into()]);
        assert!(o.bind);
        assert!(o.flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC));
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(o.data, vec!["mode=755"]);
        let o = parse_options(&["ro".into(), "rw".into()]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }
}
