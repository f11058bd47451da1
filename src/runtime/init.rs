//! `tug-init`: the process that becomes the container. The runtime starts it from a sealed memfd
//! copy of this executable (so no container process ever has the host binary as
//! `/proc/<pid>/exe`), and it makes itself non-dumpable at once.
//!
//! Stage 1 joins or creates the namespaces, then forks; the child (stage 2) is pid 1 of a new pid
//! namespace, stage 1 reports its pid and exits. Stage 2 builds the rootfs, applies the process
//! settings in numbered steps, tells the runtime it is ready, waits on the exec fifo for `start`,
//! and finally execs the user's process, which thereby *is* pid 1. `exec` uses the same two stages,
//! joining the namespaces of a running container instead.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::fcntl::{open, OFlag};
use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Gid, Uid};
use serde::{Deserialize, Serialize};

use super::spec::{Process, Spec};
use super::sync::{Channel, FromInit, ToInit};
use super::{caps, console, hooks, mounts, seccomp};

/// The environment variable naming init's inherited descriptors: `sync,fifo,console`.
pub const FDS_ENV: &str = "_TUG_INIT_FDS";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InitMode {
    Create,
    Exec,
}

/// Everything init needs, sent by the runtime as the first message.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    pub mode: InitMode,
    /// For exec, `process` is the process to start.
    pub spec: Spec,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    /// Whether the runtime has prestart/createRuntime hooks to run when mounts are ready.
    pub parent_hooks: bool,
    /// The OCI state for createContainer and startContainer hooks.
    pub state: serde_json::Value,
    /// Exec: the container's init pid, whose namespaces are joined.
    pub target_pid: i32,
    /// Exec: the namespace kinds to join.
    pub join: Vec<String>,
    /// The cgroup init joins before anything else (see `Cgroup::add_self`).
    pub cgroup: super::cgroups::Cgroup,
}

/// Marks every open descriptor from `first` up close-on-exec.
pub fn cloexec_from(first: RawFd) {
    let Ok(rd) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<RawFd> = rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    for fd in fds.into_iter().filter(|fd| *fd >= first) {
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    }
}

pub fn main(_args: Vec<OsString>) -> ExitCode {
    // SAFETY: prctl with integer arguments. Non-dumpable keeps /proc/<pid>/exe and /proc/<pid>/mem
    // of this process out of reach of the container (CVE-2019-5736 class).
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let fds: Vec<RawFd> =
        std::env::var(FDS_ENV).unwrap_or_default().split(',').map(|s| s.parse().unwrap_or(-1)).collect();
    let (sync, fifo, console) =
        (fds.first().copied().unwrap_or(-1), fds.get(1).copied().unwrap_or(-1), fds.get(2).copied().unwrap_or(-1));
    if sync < 0 {
        eprintln!("tug-init: this applet is started by tug-runtime only");
        return ExitCode::from(2);
    }
    // Nothing the caller of the runtime happened to hold open reaches the container: every
    // descriptor from 3 + preserve-fds up is closed at the final exec (ours among them).
    let keep_below = fds.get(3).copied().filter(|b| *b >= 3).unwrap_or(3);
    cloexec_from(keep_below);
    for fd in [sync, fifo, console] {
        if fd >= 0 {
            let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
        }
    }
    // SAFETY: the runtime passed this descriptor to us for exactly this use; nothing else owns it.
    let sock = unsafe { UnixStream::from_raw_fd(sync) };
    let Ok(mut ch) = Channel::new(sock) else { return ExitCode::from(1) };
    let cfg: InitConfig = match ch.recv() {
        Ok(Some(c)) => c,
        _ => return ExitCode::from(1),
    };
    let result = stage1(&mut ch, &cfg, fifo, console);
    if let Err(message) = result {
        let _ = ch.send(&FromInit::Error { message });
    }
    ExitCode::from(1)
}

const NS_FLAGS: [(&str, CloneFlags); 8] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("network", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mount", CloneFlags::CLONE_NEWNS),
    ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
];

/// /proc/<pid>/ns file names for namespace kinds.
fn proc_ns_name(kind: &str) -> &str {
    match kind {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

fn open_ns(path: &str) -> Result<OwnedFd, String> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("cannot open namespace {path}: {e}"))?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Stage 1: namespaces, then fork the container's pid 1 (or the exec'd process).
fn stage1(ch: &mut Channel, cfg: &InitConfig, fifo: RawFd, console: RawFd) -> Result<(), String> {
    // Compile the filter first, so a bad profile fails before anything is set up.
    let filter = match cfg.spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) {
        Some(s) => Some(seccomp::compile(s)?),
        None => None,
    };
    // Into the cgroup first: every process of the container descends from this one, and a
    // cgroup namespace created below is rooted where it stands.
    cfg.cgroup.add_self().map_err(|e| format!("cannot join cgroup {}: {e}", cfg.cgroup.path))?;
    let mut joins: Vec<(String, OwnedFd, CloneFlags)> = Vec::new();
    let mut create = CloneFlags::empty();
    let mut userns_create = false;
    for (kind, flag) in NS_FLAGS {
        if cfg.mode == InitMode::Exec {
            if cfg.join.iter().any(|k| k == kind) {
                let path = format!("/proc/{}/ns/{}", cfg.target_pid, proc_ns_name(kind));
                joins.push((kind.to_string(), open_ns(&path)?, flag));
            }
            continue;
        }
        if let Some(ns) = cfg.spec.namespace(kind) {
            match ns.path.as_deref().filter(|p| !p.is_empty()) {
                Some(path) => joins.push((kind.to_string(), open_ns(path)?, flag)),
                None if kind == "user" => userns_create = true,
                None => create |= flag,
            }
        }
    }
    // The user namespace comes first: every other namespace created after it is owned by it.
    if let Some(pos) = joins.iter().position(|(k, _, _)| k == "user") {
        let (_, fd, flag) = joins.remove(pos);
        nix::sched::setns(fd, flag).map_err(|e| format!("cannot join user namespace: {e}"))?;
        become_root_in_userns();
    }
    if userns_create {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("cannot create user namespace: {e}"))?;
        ch.send(&FromInit::UserNs).map_err(|e| e.to_string())?;
        wait_continue(ch)?;
        become_root_in_userns();
    }
    for (kind, fd, flag) in joins {
        nix::sched::setns(fd, flag).map_err(|e| format!("cannot join {kind} namespace: {e}"))?;
    }
    if !create.is_empty() {
        nix::sched::unshare(create).map_err(|e| format!("cannot create namespaces {create:?}: {e}"))?;
    }
    if create.contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)) {
        write_time_offsets(&cfg.spec)?;
    }
    // SAFETY: this process is single-threaded (init never starts threads), so the child may run
    // arbitrary code after fork.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("cannot fork: {e}"))? {
        ForkResult::Parent { child } => {
            ch.send(&FromInit::Pid { pid: child.as_raw() }).map_err(|e| e.to_string())?;
            // Stage 1 is done; its child is reparented to the nearest subreaper.
            std::process::exit(0);
        }
        ForkResult::Child => {}
    }
    let r = match cfg.mode {
        InitMode::Create => stage2_container(ch, cfg, fifo, console, filter),
        InitMode::Exec => stage2_exec(cfg, console, filter),
    };
    r.and(Err("unreachable: exec returned".into()))
}

fn become_root_in_userns() {
    // Unmapped ids make these fail; the process then keeps the overflow ids, as runc does.
    let _ = nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0));
    let _ = nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0));
}

fn wait_continue(ch: &mut Channel) -> Result<(), String> {
    match ch.recv::<ToInit>() {
        Ok(Some(ToInit::Continue)) => Ok(()),
        Ok(Some(ToInit::Error { message })) => Err(message),
        Ok(None) => Err("runtime went away".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn write_time_offsets(spec: &Spec) -> Result<(), String> {
    let Some(offsets) = spec.linux.as_ref().and_then(|l| l.time_offsets.as_ref()) else { return Ok(()) };
    let mut text = String::new();
    for (clock, off) in offsets {
        let id = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => return Err(format!("linux.timeOffsets: unknown clock {other:?}")),
        };
        text.push_str(&format!("{id} {} {}\n", off.secs, off.nanosecs));
    }
    std::fs::write("/proc/self/timens_offsets", text).map_err(|e| format!("linux.timeOffsets: {e}"))
}

/// Stage 2 of create: the container's pid 1.
fn stage2_container(
    ch: &mut Channel,
    cfg: &InitConfig,
    fifo: RawFd,
    console: RawFd,
    filter: Option<seccomp::Filter>,
) -> Result<(), String> {
    let spec = &cfg.spec;
    let process = spec.process.as_ref().ok_or("process: missing")?;
    if spec.namespace("mount").is_none() {
        return Err("linux.namespaces: a mount namespace is required".into());
    }
    // 1. A new network namespace starts with loopback down; Docker's containers have it up.
    if spec.namespace("network").is_some_and(|n| n.path.as_deref().unwrap_or("").is_empty()) {
        loopback_up().map_err(|e| format!("cannot bring up lo: {e}"))?;
    }
    // 2. The filesystem.
    let ns = mounts::NsInfo {
        netns: spec.namespace("network").is_some(),
        ipcns: spec.namespace("ipc").is_some(),
        userns: spec.namespace("user").is_some(),
        cgroupns: spec.namespace("cgroup").is_some(),
    };
    mounts::prepare_rootfs(spec, &cfg.rootfs, &cfg.bundle, &ns)?;
    // 3. Hooks that need the mounts but not yet the pivot.
    if cfg.parent_hooks {
        ch.send(&FromInit::Hooks).map_err(|e| e.to_string())?;
        wait_continue(ch)?;
    }
    if let Some(h) = &spec.hooks {
        hooks::run("createContainer", &h.create_container, &cfg.state)?;
    }
    // 4. The root switch, names, and kernel parameters: sysctls go through the container's own
    // /proc/sys, so they are written before step 4 makes it read-only.
    mounts::enter_rootfs(&cfg.rootfs, cfg.no_pivot)?;
    if spec.namespace("uts").is_some() {
        if let Some(h) = &spec.hostname {
            nix::unistd::sethostname(h).map_err(|e| format!("hostname: {e}"))?;
        }
        if let Some(d) = &spec.domainname {
            set_domainname(d)?;
        }
    }
    mounts::apply_sysctl(spec)?;
    // 5. Masked and read-only paths, the read-only root.
    mounts::finish_rootfs(spec)?;
    // 5-8. Terminal, limits, credentials, working directory.
    let exe = prepare_process(process, console, filter.as_ref())?;
    // 9. Ready: the runtime records the state and returns from `create`. From here on nobody
    // reads the channel: failures go to the container's stderr, as the process's own would.
    ch.send(&FromInit::Ready).map_err(|e| e.to_string())?;
    if let Err(e) = wait_start_and_exec(cfg, process, &exe, fifo, filter.as_ref()) {
        eprintln!("tug-init: {e}");
        std::process::exit(127);
    }
    Ok(())
}

fn wait_start_and_exec(
    cfg: &InitConfig,
    process: &Process,
    exe: &CString,
    fifo: RawFd,
    filter: Option<&seccomp::Filter>,
) -> Result<(), String> {
    let spec = &cfg.spec;
    // 10. Wait for `start`: opening the fifo for writing blocks until start opens it to read.
    let fifo_path = format!("/proc/self/fd/{fifo}");
    let w = open(fifo_path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("cannot open exec fifo: {e}"))?;
    // startContainer hooks run while `start` waits for the byte below, so they finish before
    // `start` returns and runs the poststart hooks.
    if let Some(h) = &spec.hooks {
        let mut state = cfg.state.clone();
        state["pid"] = serde_json::json!(std::process::id());
        hooks::run("startContainer", &h.start_container, &state)?;
    }
    nix::unistd::write(
        // SAFETY: `w` was just opened and is closed right after.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(w) },
        b"0",
    )
    .map_err(|e| format!("cannot write exec fifo: {e}"))?;
    let _ = nix::unistd::close(w);
    let _ = nix::unistd::close(fifo);
    if spec.annotations.get(INIT_ANNOTATION).is_some_and(|v| v == "true") {
        return run_as_init(process, exe, filter);
    }
    exec_process(process, exe, filter)
}

/// The annotation that makes init stay as the container's pid 1 (`docker run --init`): it forks
/// the user's process, forwards signals to it, reaps orphans, and exits with its status. Being
/// this sealed, non-dumpable process, it needs no binary inside the container.
pub const INIT_ANNOTATION: &str = "io.tug.init";

fn run_as_init(process: &Process, exe: &CString, filter: Option<&seccomp::Filter>) -> Result<(), String> {
    use nix::sys::signal::{kill, SigSet, Signal};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    // Every signal is taken with sigwait: pid 1 has no default actions, so without this a
    // SIGTERM would be dropped instead of passed on.
    let all = SigSet::all();
    all.thread_block().map_err(|e| format!("cannot block signals: {e}"))?;
    // SAFETY: init is single-threaded; the child goes straight on to exec.
    let child = match unsafe { nix::unistd::fork() }.map_err(|e| format!("cannot fork: {e}"))? {
        ForkResult::Child => return exec_process(process, exe, filter),
        ForkResult::Parent { child } => child,
    };
    loop {
        let Ok(sig) = all.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) if p == child => std::process::exit(c),
                Ok(WaitStatus::Signaled(p, s, _)) if p == child => std::process::exit(128 + s as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

/// Stage 2 of exec: already inside every namespace of the container.
fn stage2_exec(cfg: &InitConfig, console: RawFd, filter: Option<seccomp::Filter>) -> Result<(), String> {
    let process = cfg.spec.process.as_ref().ok_or("process: missing")?;
    let exe = prepare_process(process, console, filter.as_ref())?;
    exec_process(process, &exe, filter.as_ref())
}

/// Sets IFF_UP on `lo` with the classic ioctls (no netlink needed for one flag).
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: socket returned this descriptor and nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the flags of the named interface in `req`, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the flags member of the union is the one SIOCGIFFLAGS just set.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn set_domainname(d: &str) -> Result<(), String> {
    let c = CString::new(d).map_err(|_| "domainname: NUL byte")?;
    // SAFETY: a valid C string and its length; the kernel copies it.
    let r = unsafe { libc::setdomainname(c.as_ptr(), c.as_bytes().len()) };
    if r != 0 {
        return Err(format!("domainname: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Terminal, rlimits, umask, no_new_privs, seccomp (when it must precede the capability drop),
/// credentials and capabilities, cwd; returns the resolved executable.
fn prepare_process(p: &Process, console: RawFd, filter: Option<&seccomp::Filter>) -> Result<CString, String> {
    if p.terminal {
        if console < 0 {
            return Err("process.terminal is set but no console socket was given".into());
        }
        let (master, slave) = console::open_pty(p.console_size).map_err(|e| format!("cannot open pty: {e}"))?;
        let name = nix::pty::ptsname_r(&master).unwrap_or_default();
        console::send_fd(console, master.as_raw_fd(), &name)
            .map_err(|e| format!("cannot send pty to console socket: {e}"))?;
        drop(master);
        let _ = nix::unistd::close(console);
        console::become_tty(&slave).map_err(|e| format!("cannot set up terminal: {e}"))?;
    } else {
        let _ = nix::unistd::setsid();
    }
    for (i, r) in p.rlimits.iter().enumerate() {
        let res = rlimit_resource(&r.kind)
            .ok_or_else(|| format!("process.rlimits[{i}].type: unknown rlimit {:?}", r.kind))?;
        nix::sys::resource::setrlimit(res, r.soft, r.hard)
            .map_err(|e| format!("process.rlimits[{i}] ({}): {e}", r.kind))?;
    }
    nix::sys::stat::umask(Mode::from_bits_truncate(p.user.umask.unwrap_or(0o022)));
    if p.no_new_privileges {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
        }
    } else if let Some(f) = filter {
        // Without no_new_privs installing a filter needs CAP_SYS_ADMIN, which is about to go.
        f.install().map_err(|e| format!("cannot load seccomp filter: {e}"))?;
    }
    let caps = p.capabilities.clone().unwrap_or_default();
    caps::drop_bounding(&caps).map_err(|e| format!("cannot drop bounding capabilities: {e}"))?;
    caps::keep_caps(true).map_err(|e| format!("PR_SET_KEEPCAPS: {e}"))?;
    let groups: Vec<Gid> = p.user.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
    // setgroups is refused in a user namespace with setgroups denied; only then is it optional.
    if let Err(e) = nix::unistd::setgroups(&groups) {
        if !groups.is_empty() {
            return Err(format!("process.user.additionalGids: {e}"));
        }
    }
    let (uid, gid) = (Uid::from_raw(p.user.uid), Gid::from_raw(p.user.gid));
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("process.user.gid {}: {e}", p.user.gid))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("process.user.uid {}: {e}", p.user.uid))?;
    caps::keep_caps(false).map_err(|e| format!("PR_SET_KEEPCAPS: {e}"))?;
    caps::apply(&caps).map_err(|e| format!("cannot set capabilities: {e}"))?;
    std::env::set_current_dir(&p.cwd).map_err(|e| format!("process.cwd {}: {e}", p.cwd))?;
    find_executable(p)
}

/// Resolves `args[0]` like execvp, with the PATH of the process's own environment.
fn find_executable(p: &Process) -> Result<CString, String> {
    let arg0 = &p.args[0];
    let check = |path: &Path| -> Result<(), String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("exec: {:?}: {e}", arg0))?;
        if meta.is_dir() {
            return Err(format!("exec: {arg0:?}: is a directory"));
        }
        nix::unistd::access(path, nix::unistd::AccessFlags::X_OK)
            .map_err(|_| format!("exec: {arg0:?}: permission denied"))
    };
    if arg0.contains('/') {
        check(Path::new(arg0))?;
        return CString::new(arg0.as_str()).map_err(|_| "process.args[0]: NUL byte".into());
    }
    let path_var = p.env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("");
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if candidate.is_file() && check(&candidate).is_ok() {
            return CString::new(candidate.to_string_lossy().as_bytes())
                .map_err(|_| "process.args[0]: NUL byte".into());
        }
    }
    Err(format!("exec: {arg0:?}: executable file not found in $PATH"))
}

/// The last step: the filter (when no_new_privs let it wait until now), then execve.
fn exec_process(p: &Process, exe: &CString, filter: Option<&seccomp::Filter>) -> Result<(), String> {
    let args: Vec<CString> = p
        .args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| "process.args: NUL byte")?;
    let env: Vec<CString> = p
        .env
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| "process.env: NUL byte")?;
    if p.no_new_privileges {
        if let Some(f) = filter {
            f.install().map_err(|e| format!("cannot load seccomp filter: {e}"))?;
        }
    }
    // The user's process starts with default signal handling: Rust ignores SIGPIPE at start-up
    // and an ignored signal stays ignored across execve; a caller's blocked mask would carry over
    // the same way.
    // SAFETY: resetting a disposition to SIG_DFL installs no handler.
    let _ =
        unsafe { nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    let e = nix::unistd::execve(exe, &args, &env).unwrap_err();
    Err(format!("exec {:?}: {e}", p.args[0]))
}

fn rlimit_resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

/// Whether a name is a known rlimit (for validation in the runtime).
pub fn is_rlimit(name: &str) -> bool {
    rlimit_resource(name).is_some()
}
