//! Control groups for containers: finding the cgroupfs layout (v1, v2 or hybrid), turning
//! `linux.cgroupsPath` into a directory, creating it, writing the OCI resource limits, moving
//! processes in, freezing, signalling, reading usage and removing it again.
//!
//! Every entry point takes the cgroupfs root (normally `/sys/fs/cgroup`) so tests run against a fake
//! tree in a temp dir. Only cgroupfs is driven: even with `--systemd-cgroup` no D-Bus call is made,
//! the systemd form of the path is only translated into the directory systemd would have used.
//! Controller files of the legacy hierarchies live in `v1.rs`, those of the unified one in `v2.rs`.
//! Not owned here: deciding *when* to create or join (init.rs), and device nodes (mounts.rs).

mod v1;
mod v2;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::spec::Resources;

/// Parent of container cgroups when `linux.cgroupsPath` is missing (`/tug/<id>`) or relative
/// (`a/b` → `/tug/a/b`).
pub const DEFAULT_PARENT: &str = "/tug";

/// How long `freeze` waits for the kernel to report the new state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `destroy` retries `rmdir` while the last tasks are still exiting.
const RMDIR_TIMEOUT: Duration = Duration::from_secs(1);

/// Which cgroup hierarchies the host mounts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only legacy per-controller hierarchies.
    V1,
    /// Only the unified hierarchy, mounted at the root itself.
    V2,
    /// Legacy controller hierarchies plus a (mostly controller-less) unified mount, usually
    /// `<root>/unified`. Limits go to v1; the unified directory only tracks processes.
    Hybrid,
}

/// One mounted cgroup v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// The mount point, symlinks resolved (e.g. `/sys/fs/cgroup/cpu,cpuacct`).
    pub mount: PathBuf,
    /// Controllers bound to it; named hierarchies appear as `name=systemd`.
    pub controllers: Vec<String>,
}

/// The cgroupfs layout found by [`detect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub mode: Mode,
    /// The cgroupfs root that was inspected.
    pub root: PathBuf,
    /// v1 and hybrid: the legacy hierarchies; empty for v2.
    pub hierarchies: Vec<Hierarchy>,
    /// v2: the root itself; hybrid: the unified mount; v1: `None`.
    pub unified: Option<PathBuf>,
}

/// Detects the layout under `root` (normally `/sys/fs/cgroup`).
///
/// The root is v2 when it is a cgroup2 filesystem (statfs magic) or holds `cgroup.controllers`.
/// Otherwise (a tmpfs) each directory below it is a v1 hierarchy when it is a cgroup filesystem or
/// holds `cgroup.procs`/`tasks`; its controllers come from its name (`cpu,cpuacct`; `systemd` means
/// `name=systemd`), and symlinks such as `cpu -> cpu,cpuacct` are folded into their target. A
/// cgroup2 directory below the root makes the layout hybrid. The file checks are what let tests
/// use plain directories; [`detect_with_mountinfo`] reads the exact controller lists instead.
pub fn detect(root: &Path) -> io::Result<Layout> {
    if is_cgroup2(root) {
        return Ok(v2_layout(root));
    }
    let entries = fs::read_dir(root).map_err(|e| with_path(root, e))?;
    let mut by_mount: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut unified = None;
    for entry in entries {
        let entry = entry.map_err(|e| with_path(root, e))?;
        // Dangling symlinks and plain files are not hierarchies.
        let Ok(real) = fs::canonicalize(entry.path()) else {
            continue;
        };
        if !real.is_dir() {
            continue;
        }
        if is_cgroup2(&real) {
            unified.get_or_insert(real);
        } else if is_cgroup1(&real) {
            let name = real.file_name().map(|n| n.to_string_lossy().into_owned());
            let set = by_mount.entry(real).or_default();
            set.extend(controllers_from_dir_name(name.as_deref().unwrap_or("")));
        }
    }
    let hierarchies: Vec<Hierarchy> =
        by_mount.into_iter().map(|(mount, set)| Hierarchy { mount, controllers: set.into_iter().collect() }).collect();
    layout_from_parts(root, hierarchies, unified)
}

/// Like [`detect`], but takes the controller lists and mount points from a mountinfo file
/// (normally `/proc/self/mountinfo`): every `cgroup`/`cgroup2` mount at or below `root` counts.
/// Needed when mount points are not named after their controllers.
// First user: the daemon's start-up, which may face nonstandard mount points.
#[allow(dead_code)]
pub fn detect_with_mountinfo(root: &Path, mountinfo: &Path) -> io::Result<Layout> {
    let text = fs::read_to_string(mountinfo).map_err(|e| with_path(mountinfo, e))?;
    let mut hierarchies = Vec::new();
    let mut unified = None;
    for m in parse_mountinfo(&text) {
        if !m.mount_point.starts_with(root) {
            continue;
        }
        if m.fstype == "cgroup2" {
            if m.mount_point == root {
                return Ok(v2_layout(root));
            }
            unified.get_or_insert(m.mount_point);
        } else if !hierarchies.iter().any(|h: &Hierarchy| h.mount == m.mount_point) {
            hierarchies.push(Hierarchy { mount: m.mount_point, controllers: m.controllers });
        }
    }
    layout_from_parts(root, hierarchies, unified)
}

fn v2_layout(root: &Path) -> Layout {
    Layout { mode: Mode::V2, root: root.to_path_buf(), hierarchies: Vec::new(), unified: Some(root.to_path_buf()) }
}

fn layout_from_parts(root: &Path, hierarchies: Vec<Hierarchy>, unified: Option<PathBuf>) -> io::Result<Layout> {
    let mode = match (hierarchies.is_empty(), unified.is_some()) {
        (false, true) => Mode::Hybrid,
        (false, false) => Mode::V1,
        // A tmpfs holding only a cgroup2 mount: use that mount as a pure v2 tree.
        (true, true) => Mode::V2,
        (true, false) => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no cgroup hierarchy mounted", root.display()),
            ))
        }
    };
    Ok(Layout { mode, root: root.to_path_buf(), hierarchies, unified })
}

fn is_cgroup2(dir: &Path) -> bool {
    statfs(dir).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC) || dir.join("cgroup.controllers").is_file()
}

fn is_cgroup1(dir: &Path) -> bool {
    statfs(dir).is_ok_and(|s| s.filesystem_type() == CGROUP_SUPER_MAGIC)
        || dir.join("cgroup.procs").is_file()
        || dir.join("tasks").is_file()
}

/// `cpu,cpuacct` → [cpu, cpuacct]; `systemd` → [name=systemd].
fn controllers_from_dir_name(name: &str) -> Vec<String> {
    name.split(',')
        .filter(|c| !c.is_empty())
        .map(|c| if c == "systemd" { "name=systemd".to_string() } else { c.to_string() })
        .collect()
}

/// The v1 controllers the kernel knows; mount options that are not one of these (or `name=`) are
/// flags such as `rw`, `xattr` or `clone_children`.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
    "debug",
];

struct CgroupMount {
    mount_point: PathBuf,
    fstype: String,
    controllers: Vec<String>,
}

/// The cgroup mounts of a mountinfo file (proc(5)): field 5 is the mount point, and after the
/// `-` separator come the filesystem type, the source and the superblock options.
fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        let (Some(fstype), Some(_source), Some(opts)) = (right.next(), right.next(), right.next()) else {
            continue;
        };
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let controllers = opts
            .split(',')
            .filter(|o| o.starts_with("name=") || V1_CONTROLLERS.contains(o))
            .map(str::to_string)
            .collect();
        out.push(CgroupMount {
            mount_point: PathBuf::from(unescape_mountinfo(mount_point)),
            fstype: fstype.to_string(),
            controllers,
        });
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let v = bytes[i + 1..i + 4].iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Turns `linux.cgroupsPath` into an absolute cgroup path (relative to each hierarchy's root).
///
/// - missing or empty: `/tug/<id>` (see [`DEFAULT_PARENT`]);
/// - absolute `/a/b`: as is;
/// - systemd form `slice:prefix:name` (what podman and containerd pass with `--systemd-cgroup`,
///   recognised by having exactly two colons and no leading `/`): the directory systemd would use,
///   e.g. `machine.slice:libpod:abc` → `/machine.slice/libpod-abc.scope` and
///   `user-1000.slice:p:n` → `/user.slice/user-1000.slice/p-n.scope`; an empty slice means
///   `system.slice`. Cgroupfs is still written directly; systemd is not asked for the unit;
/// - any other relative `a/b`: `/tug/a/b`.
///
/// `.` and empty components are dropped; `..` components and paths that name the root itself are
/// rejected.
pub fn resolve_path(cgroups_path: Option<&str>, id: &str) -> Result<String, String> {
    let raw = match cgroups_path {
        None | Some("") => {
            if id.is_empty() || id.contains('/') {
                return Err(format!("container id {id:?} cannot name a cgroup"));
            }
            return normalize(&format!("{DEFAULT_PARENT}/{id}"));
        }
        Some(p) => p,
    };
    if raw.starts_with('/') {
        return normalize(raw);
    }
    let parts: Vec<&str> = raw.split(':').collect();
    if let [slice, prefix, name] = parts[..] {
        return systemd_path(slice, prefix, name).map_err(|e| format!("cgroupsPath {raw:?}: {e}"));
    }
    normalize(&format!("{DEFAULT_PARENT}/{raw}"))
}

fn normalize(path: &str) -> Result<String, String> {
    let mut out = String::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => return Err(format!("cgroupsPath {path:?}: \"..\" components are not allowed")),
            c => {
                out.push('/');
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        return Err(format!("cgroupsPath {path:?} names the root cgroup"));
    }
    Ok(out)
}

/// `slice:prefix:name` → `<expanded slice>/<prefix>-<name>.scope`, as systemd lays units out.
fn systemd_path(slice: &str, prefix: &str, name: &str) -> Result<String, String> {
    if name.is_empty() || name.contains('/') || prefix.contains('/') || name == ".." || name == "." {
        return Err(format!("invalid unit name {name:?} with prefix {prefix:?}"));
    }
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    // A unit that is itself a slice sits where its own name puts it.
    if name.ends_with(".slice") {
        return normalize(&expand_slice(name)?);
    }
    let unit = if prefix.is_empty() { format!("{name}.scope") } else { format!("{prefix}-{name}.scope") };
    normalize(&format!("{}/{unit}", expand_slice(slice)?))
}

/// systemd nests slices by their dash-separated name: `a-b-c.slice` lives at
/// `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
fn expand_slice(slice: &str) -> Result<String, String> {
    let Some(base) = slice.strip_suffix(".slice") else {
        return Err(format!("slice {slice:?} does not end in .slice"));
    };
    if base == "-" {
        return Ok("/".to_string());
    }
    if base.is_empty() || base.contains('/') || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return Err(format!("invalid slice name {slice:?}"));
    }
    let mut path = String::new();
    for (i, _) in base.match_indices('-') {
        path.push('/');
        path.push_str(&base[..i]);
        path.push_str(".slice");
    }
    path.push('/');
    path.push_str(slice);
    Ok(path)
}

/// One container's cgroup: its directory in every hierarchy. Serialisable so the runtime keeps it
/// in `state.json` and later commands (`kill`, `pause`, `delete`) need no detection.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    pub mode: Mode,
    /// The resolved path, e.g. `/tug/abc` (see [`resolve_path`]).
    pub path: String,
    /// v1 and hybrid: controller → this cgroup's directory in that controller's hierarchy.
    /// Controllers mounted together (`cpu,cpuacct`) share one directory.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub v1: BTreeMap<String, PathBuf>,
    /// v2: the cgroup's directory. Hybrid: its directory in the unified mount, used only to track
    /// processes (as systemd does) and joined on a best-effort basis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<PathBuf>,
}

impl Cgroup {
    /// The cgroup at `rel` (an output of [`resolve_path`]) in every hierarchy of `layout`.
    /// Nothing is touched on disk.
    pub fn new(layout: &Layout, rel: &str) -> Cgroup {
        let rel_trimmed = rel.trim_start_matches('/');
        let mut v1 = BTreeMap::new();
        for h in &layout.hierarchies {
            for c in &h.controllers {
                v1.insert(c.clone(), h.mount.join(rel_trimmed));
            }
        }
        Cgroup {
            mode: layout.mode,
            path: rel.to_string(),
            v1,
            unified: layout.unified.as_ref().map(|u| u.join(rel_trimmed)),
        }
    }

    /// This cgroup's directory for a v1 controller (`memory`, `name=systemd`, …).
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1.get(controller).map(PathBuf::as_path)
    }

    /// The distinct v1 directories with the controllers sharing each.
    fn v1_dirs(&self) -> BTreeMap<&Path, Vec<&str>> {
        let mut dirs: BTreeMap<&Path, Vec<&str>> = BTreeMap::new();
        for (c, d) in &self.v1 {
            dirs.entry(d.as_path()).or_default().push(c);
        }
        dirs
    }

    fn components(&self) -> Vec<&str> {
        self.path.split('/').filter(|c| !c.is_empty()).collect()
    }

    /// Refuses paths that would make destructive operations hit a hierarchy root or leave it:
    /// `new` takes any string, and `destroy` on `/` would rmdir every idle cgroup on the host.
    fn check_path(&self) -> io::Result<()> {
        let comps = self.components();
        if comps.is_empty() || comps.iter().any(|c| *c == "." || *c == "..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cgroup path {:?} is not below the hierarchy root", self.path),
            ));
        }
        Ok(())
    }

    /// The hierarchy root a leaf directory of this cgroup hangs from.
    fn mount_of(&self, leaf: &Path) -> PathBuf {
        let mut m = leaf.to_path_buf();
        for _ in self.components() {
            m.pop();
        }
        m
    }

    /// Creates the directory in every hierarchy (`mkdir -p`).
    ///
    /// v1: every new cpuset level gets `cpuset.cpus`/`cpuset.mems` copied from its parent, because
    /// a v1 cpuset starts empty and no task can join an empty cpuset. Named hierarchies such as
    /// `name=systemd` are best effort (they may be read-only in a nested setup).
    /// v2: every ancestor gets the controllers it offers enabled in `cgroup.subtree_control`, so the
    /// limit files appear in the leaf. Hybrid: the unified directory is best effort.
    pub fn create(&self) -> io::Result<()> {
        self.check_path()?;
        match self.mode {
            Mode::V1 | Mode::Hybrid => {
                for (dir, controllers) in self.v1_dirs() {
                    let result = if controllers.contains(&"cpuset") {
                        v1::create_cpuset(&self.mount_of(dir), &self.components())
                    } else {
                        fs::create_dir_all(dir).map_err(|e| with_path(dir, e))
                    };
                    if let Err(e) = result {
                        if !controllers.iter().all(|c| c.starts_with("name=")) {
                            return Err(e);
                        }
                    }
                }
                if let Some(u) = &self.unified {
                    let _ = fs::create_dir_all(u);
                }
                Ok(())
            }
            Mode::V2 => {
                let Some(leaf) = &self.unified else {
                    return Err(no_dir("unified"));
                };
                v2::create(&self.mount_of(leaf), &self.components())
            }
        }
    }

    /// Writes the OCI resource limits. Errors name the file and the value.
    ///
    /// Limits of -1 mean unlimited; 0 or absent means "leave as is". On v1 the `unified` map is an
    /// error; on hybrid it goes to the unified directory; on v2 it is written verbatim after the
    /// mapped fields. v2 device rules need an eBPF program and are not applied (see `v2.rs`).
    /// `blockIO` and `memory.kernel` are not applied.
    pub fn apply(&self, r: &Resources) -> Result<(), String> {
        match self.mode {
            Mode::V1 | Mode::Hybrid => {
                v1::apply(self, r)?;
                let unified = r.unified.as_ref().filter(|u| !u.is_empty());
                match (unified, self.mode, &self.unified) {
                    (None, _, _) => Ok(()),
                    (Some(u), Mode::Hybrid, Some(dir)) => v2::apply_unified(dir, u),
                    (Some(_), _, _) => Err("unified cgroup resources need cgroup v2, this host has v1 only".into()),
                }
            }
            Mode::V2 => {
                let Some(dir) = &self.unified else {
                    return Err("cgroup has no unified directory".into());
                };
                v2::apply(dir, r)
            }
        }
    }

    /// Moves process `pid` (and its threads) into the cgroup: every v1 hierarchy including
    /// `name=systemd`, plus the unified directory in hybrid mode when it exists and is writable.
    /// Containers join with [`Cgroup::add_self`], which avoids the threadgroup lock; this form
    /// stays for tests that place a forked child.
    #[cfg(test)]
    pub fn add_pid(&self, pid: i32) -> io::Result<()> {
        let value = pid.to_string();
        match self.mode {
            Mode::V1 | Mode::Hybrid => {
                for (dir, controllers) in self.v1_dirs() {
                    let result = write_file(&dir.join("cgroup.procs"), &value);
                    if result.is_err() && controllers.iter().all(|c| c.starts_with("name=")) && !dir.exists() {
                        continue; // a named hierarchy create() could not make
                    }
                    result?;
                }
                if let Some(u) = &self.unified {
                    let _ = write_file(&u.join("cgroup.procs"), &value);
                }
                Ok(())
            }
            Mode::V2 => write_file(&self.v2_dir()?.join("cgroup.procs"), &value),
        }
    }

    /// Moves the calling process into the cgroup; it must be single-threaded (tug-init is).
    ///
    /// On v1 it writes `0` to each hierarchy's `tasks`: moving only the calling thread skips the
    /// kernel's global threadgroup lock, whose RCU grace period costs 10–20 ms per container when
    /// a pid is written to `cgroup.procs` instead. For a single-threaded process the result is
    /// the same. The hybrid unified hierarchy, which holds no controllers, is left alone for the
    /// same reason: joining it would pay that grace period for bookkeeping only.
    pub fn add_self(&self) -> io::Result<()> {
        match self.mode {
            Mode::V1 | Mode::Hybrid => {
                for (dir, controllers) in self.v1_dirs() {
                    let result = write_file(&dir.join("tasks"), "0");
                    if result.is_err() && controllers.iter().all(|c| c.starts_with("name=")) && !dir.exists() {
                        continue; // a named hierarchy create() could not make
                    }
                    result?;
                }
                Ok(())
            }
            Mode::V2 => write_file(&self.v2_dir()?.join("cgroup.procs"), "0"),
        }
    }

    fn v2_dir(&self) -> io::Result<&Path> {
        self.unified.as_deref().ok_or_else(|| no_dir("unified"))
    }

    /// The directory whose `cgroup.procs` lists the container's processes.
    fn procs_dir(&self) -> io::Result<&Path> {
        if self.mode == Mode::V2 {
            return self.v2_dir();
        }
        ["pids", "freezer", "memory", "cpu", "devices"]
            .iter()
            .find_map(|c| self.v1_dir(c))
            .or_else(|| self.v1.values().next().map(PathBuf::as_path))
            .ok_or_else(|| no_dir("v1"))
    }

    /// The processes in the cgroup (`cgroup.procs`), not in its sub-cgroups.
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        let path = self.procs_dir()?.join("cgroup.procs");
        let text = read_file(&path)?;
        Ok(text.split_whitespace().filter_map(|p| p.parse().ok()).collect())
    }

    /// Freezes or thaws every process. v1: `freezer.state` FROZEN/THAWED, waiting until the kernel
    /// reports FROZEN; v2: `cgroup.freeze`, waiting for `frozen 1`/`frozen 0` in `cgroup.events`.
    /// A freeze that does not settle within a few seconds is undone and reported as `TimedOut`.
    pub fn freeze(&self, frozen: bool) -> io::Result<()> {
        match self.mode {
            Mode::V1 | Mode::Hybrid => {
                let dir = self.v1_dir("freezer").ok_or_else(|| no_dir("freezer"))?;
                v1::freeze(dir, frozen)
            }
            Mode::V2 => v2::freeze(self.v2_dir()?, frozen),
        }
    }

    /// Whether the cgroup is (completely) frozen. False when it cannot be read.
    pub fn is_frozen(&self) -> bool {
        match self.mode {
            Mode::V1 | Mode::Hybrid => self.v1_dir("freezer").is_some_and(v1::is_frozen),
            Mode::V2 => self.unified.as_deref().is_some_and(v2::is_frozen),
        }
    }

    /// Sends `sig` to every process in the cgroup.
    ///
    /// v2 with `cgroup.kill` (Linux 5.14) handles SIGKILL in one write, sub-cgroups included.
    /// Otherwise the cgroup is frozen first so nothing forks past the signal, each process is
    /// signalled, and it is thawed again unless it was already frozen (a paused container stays
    /// paused; SIGKILL always thaws, since frozen v1 tasks do not die until thawed).
    pub fn kill_all(&self, sig: Signal) -> io::Result<()> {
        self.check_path()?;
        if self.mode == Mode::V2 && sig == Signal::SIGKILL {
            let kill_file = self.v2_dir()?.join("cgroup.kill");
            if kill_file.exists() {
                return write_file(&kill_file, "1");
            }
        }
        let was_frozen = self.is_frozen();
        let froze = !was_frozen && self.freeze(true).is_ok();
        let result = self.signal_each(sig);
        if froze || (was_frozen && sig == Signal::SIGKILL) {
            let _ = self.freeze(false);
        }
        result
    }

    fn signal_each(&self, sig: Signal) -> io::Result<()> {
        for pid in self.pids()? {
            // 0 and negative values would signal process groups, never a container process.
            if pid <= 0 {
                continue;
            }
            match kill(Pid::from_raw(pid), sig) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => {
                    return Err(io::Error::new(io::Error::from(e).kind(), format!("cannot signal pid {pid}: {e}")))
                }
            }
        }
        Ok(())
    }

    /// Removes the cgroup's directories (sub-cgroups first), retrying `rmdir` briefly while the
    /// last tasks exit (EBUSY). Directories that are already gone are fine. Parents such as `/tug`
    /// stay. Every directory is tried; the first error is returned.
    pub fn destroy(&self) -> io::Result<()> {
        self.check_path()?;
        let mut dirs: Vec<&Path> = self.v1_dirs().into_keys().collect();
        dirs.extend(self.unified.as_deref());
        let mut first_err = None;
        for dir in dirs {
            if let Err(e) = remove_cgroup_dir(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Usage counters, best effort: files that are missing or unreadable count as zero.
    // First user: `docker stats` in the daemon, not written yet.
    #[allow(dead_code)]
    pub fn stats(&self) -> Stats {
        match self.mode {
            Mode::V1 | Mode::Hybrid => v1::stats(self),
            Mode::V2 => self.unified.as_deref().map(v2::stats).unwrap_or_default(),
        }
    }

    /// Whether the kernel OOM killer has killed a process in this cgroup (`oom_kill` in
    /// `memory.oom_control` on v1, `memory.events` on v2; Linux 4.13+ for v1).
    // First user: the daemon's exit monitor (`State.OOMKilled`), not written yet.
    #[allow(dead_code)]
    pub fn oom_killed(&self) -> bool {
        let (dir, file) = match self.mode {
            Mode::V1 | Mode::Hybrid => (self.v1_dir("memory"), "memory.oom_control"),
            Mode::V2 => (self.unified.as_deref(), "memory.events"),
        };
        dir.and_then(|d| read_file(&d.join(file)).ok())
            .and_then(|t| flat_keyed(&t).get("oom_kill").copied())
            .is_some_and(|n| n > 0)
    }
}

/// Resource usage of one cgroup, for `docker stats` and `runc events --stats`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub memory: MemoryStats,
    pub cpu: CpuStats,
    pub pids: PidsStats,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes in use (`memory.usage_in_bytes` / `memory.current`).
    pub usage: u64,
    /// Peak bytes (`memory.max_usage_in_bytes` / `memory.peak`, Linux 5.19+ on v2).
    pub max_usage: u64,
    /// The limit; `None` when unlimited or unknown.
    pub limit: Option<u64>,
    /// Processes killed by the OOM killer.
    pub oom_kills: u64,
    /// The raw `memory.stat` counters (`cache`, `rss`, `inactive_file`, …).
    pub stat: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// CPU time in nanoseconds.
    pub usage_total_ns: u64,
    pub usage_user_ns: u64,
    pub usage_system_ns: u64,
    /// v1 only: nanoseconds per CPU (`cpuacct.usage_percpu`).
    pub percpu_ns: Vec<u64>,
    /// CFS bandwidth periods, periods throttled, and time throttled in nanoseconds.
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
}

fn no_dir(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("cgroup has no {what} directory"))
}

/// Prefixes an io error with the path it concerns, keeping its kind.
fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn read_file(path: &Path) -> io::Result<String> {
    fs::read_to_string(path).map_err(|e| with_path(path, e))
}

/// Writes one value with a single write(2), as cgroupfs expects; never creates the file, so a
/// missing controller file is reported rather than silently created in a fake tree.
fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).truncate(true).open(path)?;
    f.write_all(value.as_bytes())
}

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    write_raw(path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {value:?} to {}: {e}", path.display())))
}

/// `write_file` for `apply`: the error is a message naming the file and the value.
fn write_value(dir: &Path, file: &str, value: &str) -> Result<(), String> {
    let path = dir.join(file);
    write_raw(&path, value).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::NotFound { " (controller not enabled or not supported?)" } else { "" };
        format!("cannot write {value:?} to {}: {e}{hint}", path.display())
    })
}

/// Normalises a spec limit: absent or 0 → `None` (leave as is), -1 → `Some(-1)` (unlimited),
/// anything below -1 → an error naming the field.
fn limit_value(name: &str, v: Option<i64>) -> Result<Option<i64>, String> {
    match v {
        None | Some(0) => Ok(None),
        Some(n) if n < -1 => Err(format!("{name} {n} is invalid (-1 means unlimited)")),
        Some(n) => Ok(Some(n)),
    }
}

/// Reads a `key value` per line file (`memory.stat`, `cpu.stat`, `memory.events`, …).
fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (k, v) = (it.next()?, it.next()?);
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Reads a single-number file; `max` and unreadable files give `None`.
fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    read_file(&dir.join(file)).ok()?.trim().parse().ok()
}

/// Polls `check` until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        if check() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// rmdir a cgroup and the sub-cgroups a container may have made inside it. cgroupfs directories
/// hold only virtual files, so rmdir works on them; a cgroup with tasks answers EBUSY until the
/// tasks have exited.
fn remove_cgroup_dir(dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(with_path(dir, e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_dir(&entry.path())?;
        }
    }
    let mut last = None;
    let done = wait_until(RMDIR_TIMEOUT, || match fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) if e.raw_os_error() == Some(Errno::EBUSY as i32) => {
            last = Some(e);
            false
        }
        Err(e) => {
            last = Some(e);
            true
        }
    });
    match last {
        Some(e) if !done || dir.exists() => Err(with_path(dir, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A temp directory that removes itself, and helpers to lay out fake cgroup trees.
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let p = std::env::temp_dir().join(format!("tug-cg-{tag}-{}-{n}-{nanos}", std::process::id()));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Creates `dir/name` (and its parents) holding `content`.
    pub fn put(dir: &Path, name: &str, content: &str) {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    pub fn get(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
    }

    /// Creates the listed files, empty, under `dir`.
    pub fn touch(dir: &Path, names: &[&str]) {
        for n in names {
            put(dir, n, "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolve_default_absolute_relative() {
        assert_eq!(resolve_path(None, "abc").unwrap(), "/tug/abc");
        assert_eq!(resolve_path(Some(""), "abc").unwrap(), "/tug/abc");
        assert_eq!(resolve_path(Some("/docker/abc"), "x").unwrap(), "/docker/abc");
        assert_eq!(resolve_path(Some("//a/./b/"), "x").unwrap(), "/a/b");
        assert_eq!(resolve_path(Some("a/b"), "x").unwrap(), "/tug/a/b");
        assert!(resolve_path(None, "a/b").is_err());
        assert!(resolve_path(Some("/"), "x").is_err());
    }

    #[test]
    fn resolve_rejects_dotdot() {
        assert!(resolve_path(Some("/a/../../etc"), "x").unwrap_err().contains(".."));
        assert!(resolve_path(Some("../a"), "x").is_err());
        assert!(resolve_path(Some("machine.slice:libpod:.."), "x").is_err());
        assert!(resolve_path(Some("machine.slice:a/b:c"), "x").is_err());
        assert!(resolve_path(None, "..").is_err());
    }

    #[test]
    fn resolve_systemd_form() {
        assert_eq!(resolve_path(Some("machine.slice:libpod:abc"), "x").unwrap(), "/machine.slice/libpod-abc.scope");
        assert_eq!(
            resolve_path(Some("user-1000.slice:podman:c1"), "x").unwrap(),
            "/user.slice/user-1000.slice/podman-c1.scope"
        );
        assert_eq!(resolve_path(Some(":cri-containerd:abc"), "x").unwrap(), "/system.slice/cri-containerd-abc.scope");
        assert_eq!(resolve_path(Some("-.slice::abc"), "x").unwrap(), "/abc.scope");
        assert_eq!(resolve_path(Some("system.slice:p:my-sub.slice"), "x").unwrap(), "/my.slice/my-sub.slice");
        assert!(resolve_path(Some("machine:libpod:abc"), "x").is_err());
        assert!(resolve_path(Some("a--b.slice:p:n"), "x").is_err());
    }

    /// A hybrid tree like this machine's, with a combined `cpu,cpuacct` mount and symlinks.
    fn fake_hybrid(root: &Path) {
        for d in ["cpu,cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "systemd", "blkio"] {
            touch(&root.join(d), &["cgroup.procs", "tasks"]);
        }
        symlink("cpu,cpuacct", root.join("cpu")).unwrap();
        symlink("cpu,cpuacct", root.join("cpuacct")).unwrap();
        touch(&root.join("unified"), &["cgroup.controllers", "cgroup.procs", "cgroup.subtree_control"]);
        // Not a hierarchy.
        fs::create_dir_all(root.join("empty")).unwrap();
    }

    #[test]
    fn detect_hybrid_and_v1() {
        let t = TempDir::new("detect");
        let root = fs::canonicalize(t.path()).unwrap();
        fake_hybrid(&root);
        let l = detect(&root).unwrap();
        assert_eq!(l.mode, Mode::Hybrid);
        assert_eq!(l.unified, Some(root.join("unified")));
        let names: Vec<(String, Vec<String>)> = l
            .hierarchies
            .iter()
            .map(|h| (h.mount.file_name().unwrap().to_string_lossy().into_owned(), h.controllers.clone()))
            .collect();
        assert_eq!(names.len(), 8, "{names:?}");
        assert!(names.contains(&("cpu,cpuacct".into(), vec!["cpu".into(), "cpuacct".into()])));
        assert!(names.contains(&("systemd".into(), vec!["name=systemd".into()])));

        fs::remove_dir_all(root.join("unified")).unwrap();
        assert_eq!(detect(&root).unwrap().mode, Mode::V1);
    }

    #[test]
    fn detect_v2_and_nothing() {
        let t = TempDir::new("detect2");
        touch(t.path(), &["cgroup.controllers"]);
        let l = detect(t.path()).unwrap();
        assert_eq!(l.mode, Mode::V2);
        assert_eq!(l.unified.as_deref(), Some(t.path()));
        assert!(l.hierarchies.is_empty());
        let empty = TempDir::new("detect3");
        assert_eq!(detect(empty.path()).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn detect_from_mountinfo() {
        let t = TempDir::new("mi");
        let mi = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
28 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:27 / /sys/fs/cgroup/my\\040mem rw shared:13 - cgroup cgroup rw,memory,clone_children
30 1 0:28 / /other rw - cgroup cgroup rw,pids
";
        put(t.path(), "mountinfo", mi);
        let l = detect_with_mountinfo(Path::new("/sys/fs/cgroup"), &t.path().join("mountinfo")).unwrap();
        assert_eq!(l.mode, Mode::Hybrid);
        assert_eq!(l.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(
            l.hierarchies,
            vec![
                Hierarchy { mount: "/sys/fs/cgroup/systemd".into(), controllers: vec!["name=systemd".into()] },
                Hierarchy {
                    mount: "/sys/fs/cgroup/cpu,cpuacct".into(),
                    controllers: vec!["cpu".into(), "cpuacct".into()]
                },
                Hierarchy { mount: "/sys/fs/cgroup/my mem".into(), controllers: vec!["memory".into()] },
            ]
        );
        put(t.path(), "mountinfo2", "26 1 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let l = detect_with_mountinfo(Path::new("/sys/fs/cgroup"), &t.path().join("mountinfo2")).unwrap();
        assert_eq!(l.mode, Mode::V2);
    }

    #[test]
    fn new_maps_controllers_to_dirs_and_roundtrips() {
        let t = TempDir::new("new");
        let root = fs::canonicalize(t.path()).unwrap();
        fake_hybrid(&root);
        let cg = Cgroup::new(&detect(&root).unwrap(), "/tug/c1");
        assert_eq!(cg.v1_dir("cpu"), Some(root.join("cpu,cpuacct/tug/c1").as_path()));
        assert_eq!(cg.v1_dir("cpuacct"), cg.v1_dir("cpu"));
        assert_eq!(cg.v1_dir("name=systemd"), Some(root.join("systemd/tug/c1").as_path()));
        assert_eq!(cg.unified, Some(root.join("unified/tug/c1")));
        assert_eq!(cg.mount_of(cg.v1_dir("memory").unwrap()), root.join("memory"));
        let json = serde_json::to_string(&cg).unwrap();
        assert!(json.contains("\"mode\":\"hybrid\""), "{json}");
        let back: Cgroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cg);
    }

    #[test]
    fn create_add_pid_destroy_hybrid() {
        let t = TempDir::new("create");
        let root = fs::canonicalize(t.path()).unwrap();
        fake_hybrid(&root);
        put(&root, "cpuset/cpuset.cpus", "0-3\n");
        put(&root, "cpuset/cpuset.mems", "0\n");
        // An existing level with its own cpuset keeps it.
        put(&root, "cpuset/tug/cpuset.cpus", "1\n");
        let cg = Cgroup::new(&detect(&root).unwrap(), "/tug/a/c1");
        cg.create().unwrap();
        assert_eq!(get(&root, "cpuset/tug/cpuset.cpus"), "1\n");
        assert_eq!(get(&root, "cpuset/tug/cpuset.mems"), "0");
        assert_eq!(get(&root, "cpuset/tug/a/cpuset.cpus"), "1");
        assert_eq!(get(&root, "cpuset/tug/a/c1/cpuset.cpus"), "1");
        assert_eq!(get(&root, "cpuset/tug/a/c1/cpuset.mems"), "0");
        for d in ["cpu,cpuacct", "memory", "devices", "freezer", "pids", "systemd", "blkio", "unified"] {
            assert!(root.join(d).join("tug/a/c1").is_dir(), "{d}");
        }
        // Fake trees have no kernel to create cgroup.procs.
        for d in cg.v1_dirs().keys() {
            touch(d, &["cgroup.procs"]);
        }
        cg.add_pid(4242).unwrap();
        for d in ["cpu,cpuacct", "memory", "systemd", "pids"] {
            assert_eq!(get(&root.join(d), "tug/a/c1/cgroup.procs"), "4242", "{d}");
        }
        // The unified directory has no cgroup.procs here: best effort, no error.
        assert!(!root.join("unified/tug/a/c1/cgroup.procs").exists());
        assert_eq!(cg.pids().unwrap(), vec![4242]);

        // destroy rmdirs; remove the fake files a kernel would not have.
        for d in cg.v1_dirs().keys() {
            for f in ["cgroup.procs", "cpuset.cpus", "cpuset.mems"] {
                let _ = fs::remove_file(d.join(f));
            }
        }
        fs::create_dir(root.join("memory/tug/a/c1/sub")).unwrap();
        cg.destroy().unwrap();
        for d in ["cpu,cpuacct", "memory", "cpuset", "systemd", "unified"] {
            assert!(!root.join(d).join("tug/a/c1").exists(), "{d}");
            assert!(root.join(d).join("tug/a").is_dir(), "{d}");
        }
        // Again: missing directories are fine.
        cg.destroy().unwrap();
    }

    #[test]
    fn create_v2_enables_controllers_in_ancestors() {
        let t = TempDir::new("v2create");
        let root = t.path();
        put(root, "cgroup.controllers", "cpuset cpu io memory pids\n");
        put(root, "cgroup.subtree_control", "cpu\n");
        put(root, "tug/cgroup.controllers", "cpu memory pids\n");
        put(root, "tug/cgroup.subtree_control", "");
        let cg = Cgroup::new(&detect(root).unwrap(), "/tug/c1");
        assert_eq!(cg.unified, Some(root.join("tug/c1")));
        cg.create().unwrap();
        assert!(root.join("tug/c1").is_dir());
        assert_eq!(get(root, "cgroup.subtree_control"), "+cpuset +io +memory +pids");
        assert_eq!(get(root, "tug/cgroup.subtree_control"), "+cpu +memory +pids");
        // The leaf itself is never given controllers (no internal processes rule).
        assert!(!root.join("tug/c1/cgroup.subtree_control").exists());
        cg.destroy().unwrap();
        assert!(!root.join("tug/c1").exists());
    }

    #[test]
    fn v2_kill_uses_cgroup_kill() {
        let t = TempDir::new("v2kill");
        touch(t.path(), &["cgroup.controllers"]);
        let cg = Cgroup::new(&detect(t.path()).unwrap(), "/c");
        touch(&t.path().join("c"), &["cgroup.kill", "cgroup.procs"]);
        cg.kill_all(Signal::SIGKILL).unwrap();
        assert_eq!(get(t.path(), "c/cgroup.kill"), "1");
    }

    #[test]
    fn oom_killed_reads_counters() {
        let t = TempDir::new("oom");
        touch(t.path(), &["cgroup.controllers"]);
        let cg = Cgroup::new(&detect(t.path()).unwrap(), "/c");
        assert!(!cg.oom_killed());
        put(t.path(), "c/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n");
        assert!(!cg.oom_killed());
        put(t.path(), "c/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n");
        assert!(cg.oom_killed());

        let t1 = TempDir::new("oom1");
        touch(&t1.path().join("memory"), &["tasks"]);
        let cg = Cgroup::new(&detect(t1.path()).unwrap(), "/c");
        put(t1.path(), "memory/c/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
        assert!(cg.oom_killed());
    }

    #[test]
    fn root_paths_are_refused() {
        let t = TempDir::new("rootpath");
        touch(t.path(), &["cgroup.controllers"]);
        fs::create_dir(t.path().join("other")).unwrap();
        let layout = detect(t.path()).unwrap();
        for rel in ["/", "", "/a/../.."] {
            let cg = Cgroup::new(&layout, rel);
            assert_eq!(cg.destroy().unwrap_err().kind(), io::ErrorKind::InvalidInput, "{rel:?}");
            assert_eq!(cg.kill_all(Signal::SIGKILL).unwrap_err().kind(), io::ErrorKind::InvalidInput);
            assert_eq!(cg.create().unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert!(t.path().join("other").is_dir());
    }

    #[test]
    fn unescape() {
        assert_eq!(unescape_mountinfo("a\\040b\\134c\\0"), "a b\\c\\0");
    }

    /// The real thing, on this host's /sys/fs/cgroup (the test machine runs tests as root).
    #[test]
    fn real_cgroup_lifecycle() {
        use nix::sys::wait::waitpid;
        use nix::unistd::{fork, ForkResult};

        let layout = detect(Path::new("/sys/fs/cgroup")).expect("detect /sys/fs/cgroup");
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let rel = format!("/tug-test-{}-{nanos}", std::process::id());
        let cg = Cgroup::new(&layout, &rel);
        cg.create().expect("create");

        struct Guard<'a>(&'a Cgroup, Option<Pid>);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if let Some(pid) = self.1 {
                    let _ = self.0.freeze(false);
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                }
                let _ = self.0.destroy();
            }
        }
        let mut guard = Guard(&cg, None);

        let res = Resources {
            memory: Some(crate::runtime::spec::Memory { limit: Some(32 << 20), ..Default::default() }),
            pids: Some(crate::runtime::spec::Pids { limit: 10 }),
            devices: vec![crate::runtime::spec::DeviceCgroup { allow: false, ..Default::default() }],
            ..Default::default()
        };
        cg.apply(&res).expect("apply");

        // SAFETY: the child only calls pause(2), which is async-signal-safe, until it is killed,
        // so forking from the multi-threaded test harness is sound.
        let child = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => loop {
                // SAFETY: pause has no preconditions.
                unsafe { nix::libc::pause() };
            },
            ForkResult::Parent { child } => child,
        };
        guard.1 = Some(child);
        cg.add_pid(child.as_raw()).expect("add_pid");
        assert_eq!(cg.pids().unwrap(), vec![child.as_raw()]);

        match layout.mode {
            Mode::V2 => {
                let dir = cg.unified.as_deref().unwrap();
                assert_eq!(get(dir, "memory.max").trim(), "33554432");
                assert_eq!(get(dir, "pids.max").trim(), "10");
            }
            _ => {
                assert_eq!(get(cg.v1_dir("memory").unwrap(), "memory.limit_in_bytes").trim(), "33554432");
                assert_eq!(get(cg.v1_dir("pids").unwrap(), "pids.max").trim(), "10");
                let devices = get(cg.v1_dir("devices").unwrap(), "devices.list");
                assert!(devices.contains("c 1:3 rwm") && !devices.contains("a *:*"), "{devices}");
                for dir in cg.v1.values() {
                    assert!(get(dir, "cgroup.procs").contains(&child.to_string()), "{}", dir.display());
                }
                if layout.mode == Mode::Hybrid {
                    let u = cg.unified.as_deref().unwrap();
                    assert!(get(u, "cgroup.procs").contains(&child.to_string()));
                }
            }
        }
        let proc_cgroup = fs::read_to_string(format!("/proc/{child}/cgroup")).unwrap();
        assert!(proc_cgroup.contains(&rel), "{proc_cgroup}");

        cg.freeze(true).expect("freeze");
        assert!(cg.is_frozen());
        cg.freeze(false).expect("thaw");
        assert!(!cg.is_frozen());

        let stats = cg.stats();
        assert_eq!(stats.memory.limit, Some(32 << 20));
        assert_eq!(stats.pids.limit, Some(10));
        assert_eq!(stats.pids.current, 1);

        cg.kill_all(Signal::SIGKILL).expect("kill_all");
        let status = waitpid(child, None).expect("waitpid");
        assert_eq!(status, nix::sys::wait::WaitStatus::Signaled(child, Signal::SIGKILL, false));
        guard.1 = None;
        assert!(!cg.oom_killed());

        cg.destroy().expect("destroy");
        for dir in cg.v1.values().chain(cg.unified.iter()) {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
        assert_eq!(cg.pids().unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
