//! The runtime's side of each lifecycle operation: create, start, run, exec, kill, delete, pause,
//! resume. The container process side is in `init.rs`.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use super::cgroups::{self, Cgroup};
use super::init::{InitConfig, InitMode, FDS_ENV};
use super::spec::{Process, Spec};
use super::state::{validate_id, State, StateDir, Status};
use super::sync::{Channel, FromInit, ToInit};
use super::{hooks, state};
use crate::store::atomic;

pub type Res<T> = Result<T, String>;

/// Global options shared by every verb.
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub cgroup_root: PathBuf,
}

/// Options of `create` (and `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
}

/// A sealed, close-on-exec memfd holding a copy of this executable: init runs from it, so the
/// host binary is never a container process's `/proc/<pid>/exe`.
fn sealed_self() -> io::Result<OwnedFd> {
    let exe = File::open("/proc/self/exe")?;
    let len = exe.metadata()?.len();
    let name = c"tug-init";
    // SAFETY: a valid C string and flags; the return value is checked.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create just returned this descriptor and nothing else owns it.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut copied = 0u64;
    while copied < len {
        let want = usize::try_from(len - copied).unwrap_or(usize::MAX).min(1 << 30);
        // SAFETY: both descriptors are open; a null offset uses and advances the file position.
        let n = unsafe { libc::sendfile(memfd.as_raw_fd(), exe.as_raw_fd(), std::ptr::null_mut(), want) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            break;
        }
        copied += n as u64;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl with integer arguments on an open descriptor.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(memfd)
}

/// A sealed copy made once by a long-lived parent (the daemon) and handed down to the monitors
/// and runtimes it starts, as the number of an inherited descriptor in this variable: they then
/// skip the copy, the largest single cost of a start. Only a memfd sealed against every change,
/// as large as this executable, is taken; anything else is ignored and a copy is made.
pub const SEALED_EXE_ENV: &str = "TUG_SEALED_EXE";

/// Makes the sealed copy a parent keeps and hands down (see [`SEALED_EXE_ENV`]).
pub fn sealed_copy() -> io::Result<OwnedFd> {
    sealed_self()
}

fn inherited_sealed() -> Option<RawFd> {
    static FD: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();
    FD.get_or_init(|| {
        let fd: RawFd = std::env::var(SEALED_EXE_ENV).ok()?.parse().ok()?;
        let need = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: fcntl with integer arguments; a descriptor that is not open fails with EBADF.
        let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
        if seals < 0 || seals & need != need {
            return None;
        }
        let size = nix::sys::stat::fstat(fd).ok()?.st_size;
        if u64::try_from(size).ok()? != std::fs::metadata("/proc/self/exe").ok()?.len() {
            return None;
        }
        // Kept from here on, and never passed further down: close-on-exec, so neither init nor
        // the container's process holds it.
        // SAFETY: fcntl with integer arguments on a descriptor checked open above.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        // SAFETY: the parent handed this descriptor to us alone; it is now owned here.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    })
    .as_ref()
    .map(|f| f.as_raw_fd())
}

/// The sealed copy: the inherited one, or one made on a second thread while the caller parses
/// the config and sets up the cgroup. The thread is joined before any fork, so the fork still
/// happens in a single-threaded process.
pub enum ExeCopy {
    Copying(std::thread::JoinHandle<io::Result<OwnedFd>>),
    Ready(OwnedFd),
}

impl ExeCopy {
    pub fn start() -> ExeCopy {
        if let Some(fd) = inherited_sealed() {
            // SAFETY: fcntl with integer arguments on an open descriptor; the result is checked.
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
            if dup >= 0 {
                // SAFETY: a descriptor fcntl just made for us.
                return ExeCopy::Ready(unsafe { OwnedFd::from_raw_fd(dup) });
            }
        }
        ExeCopy::Copying(std::thread::spawn(sealed_self))
    }

    fn finish(self) -> Res<OwnedFd> {
        match self {
            ExeCopy::Ready(fd) => Ok(fd),
            ExeCopy::Copying(t) => {
                let r = t.join().map_err(|_| "memfd copy thread panicked".to_string())?;
                r.map_err(|e| format!("cannot copy executable to memfd: {e}"))
            }
        }
    }
}

/// A started stage 1 of init and our end of its channel.
struct Spawned {
    stage1: Pid,
    ch: Channel,
}

/// Starts `tug-init` from the sealed copy with the sync socket, the exec fifo and the console
/// socket inherited above the preserved descriptors (3 .. 3+preserve_fds).
fn spawn_init(exe: ExeCopy, preserve_fds: u32, fifo: Option<&OwnedFd>, console: Option<&UnixStream>) -> Res<Spawned> {
    let memfd = exe.finish()?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("cannot create socketpair: {e}"))?;
    let base = 3 + i32::try_from(preserve_fds).map_err(|_| "--preserve-fds too large")?;
    let argv = [c"tug-init".to_owned()];
    let raw = |o: Option<RawFd>| o.unwrap_or(-1);
    let src = [theirs.as_raw_fd(), raw(fifo.map(|f| f.as_raw_fd())), raw(console.map(|c| c.as_raw_fd()))];
    // Prepare everything the child needs before fork: after it, the child only moves descriptors
    // and execs.
    // The fourth number: where the descriptors the process may keep end (3 + preserve-fds);
    // init closes everything else it inherited before the process runs.
    let env_for = |fds: &[RawFd; 3]| CString::new(format!("{FDS_ENV}={},{},{},{base}", fds[0], fds[1], fds[2]));
    let mut targets = [-1; 3];
    // Targets sit above every descriptor involved, so no dup2 overwrites a source still needed.
    let highest = src.iter().copied().chain([memfd.as_raw_fd()]).max().unwrap_or(0);
    let mut next = (base + 16).max(highest + 1);
    for (i, s) in src.iter().enumerate() {
        if *s >= 0 {
            targets[i] = next;
            next += 1;
        }
    }
    let env = [env_for(&targets).map_err(|e| e.to_string())?];
    // SAFETY: the runtime is single-threaded; the child only calls async-signal-safe functions
    // (fcntl, dup2, close, fexecve, _exit) on data prepared before the fork.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("cannot fork: {e}"))? {
        ForkResult::Child => {
            for fd in 3..base {
                // SAFETY: fcntl on a descriptor number; errors (not open) are ignored.
                unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
            }
            for (s, t) in src.iter().zip(targets.iter()) {
                if *s >= 0 {
                    // SAFETY: dup2 on open descriptors; the target is above all sources.
                    unsafe { libc::dup2(*s, *t) };
                }
            }
            let _ = nix::unistd::fexecve(memfd.as_raw_fd(), &argv, &env);
            // SAFETY: _exit never returns and runs no destructors in the forked child.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            let ch = Channel::new(ours).map_err(|e| e.to_string())?;
            Ok(Spawned { stage1: child, ch })
        }
    }
}

fn write_id_maps(pid: Pid, spec: &Spec) -> Res<()> {
    let linux = spec.linux.clone().unwrap_or_default();
    let fmt = |maps: &[super::spec::IdMapping]| {
        maps.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect::<String>()
    };
    if !linux.uid_mappings.is_empty() {
        std::fs::write(format!("/proc/{pid}/uid_map"), fmt(&linux.uid_mappings))
            .map_err(|e| format!("linux.uidMappings: {e}"))?;
    }
    if !linux.gid_mappings.is_empty() {
        std::fs::write(format!("/proc/{pid}/gid_map"), fmt(&linux.gid_mappings))
            .map_err(|e| format!("linux.gidMappings: {e}"))?;
    }
    Ok(())
}

fn now() -> String {
    crate::timefmt::now_rfc3339()
}

/// Validates everything a create needs before touching the system.
fn load_spec(bundle: &Path) -> Res<Spec> {
    let spec = Spec::load(bundle)?;
    spec.validate(bundle)?;
    let p = spec.process.as_ref().ok_or("process: missing")?;
    for (i, r) in p.rlimits.iter().enumerate() {
        if !super::init::is_rlimit(&r.kind) {
            return Err(format!("process.rlimits[{i}].type: unknown rlimit {:?}", r.kind));
        }
    }
    Ok(spec)
}

/// `create`: everything up to a process waiting for `start`.
pub fn create(g: &Global, id: &str, o: &CreateOpts) -> Res<(State, Spec)> {
    validate_id(id)?;
    let exe = ExeCopy::start();
    let bundle = std::fs::canonicalize(&o.bundle).map_err(|e| format!("bundle {}: {e}", o.bundle.display()))?;
    let spec = load_spec(&bundle)?;
    let terminal = spec.process.as_ref().is_some_and(|p| p.terminal);
    if terminal && o.console_socket.is_none() {
        return Err("cannot allocate tty if tug-runtime will detach without setting console socket".into());
    }
    if !terminal && o.console_socket.is_some() {
        return Err("cannot use console socket if tug-runtime will not detach or allocate tty".into());
    }
    std::fs::create_dir_all(&g.root).map_err(|e| format!("state root {}: {e}", g.root.display()))?;
    let sd = StateDir::new(&g.root, id);
    match std::fs::create_dir(&sd.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(format!("container with id exists: {id}")),
        Err(e) => return Err(format!("cannot create state directory {}: {e}", sd.dir.display())),
    }
    let mut cg: Option<Cgroup> = None;
    let mut stage2: Option<Pid> = None;
    let r = create_inner(g, id, o, exe, &bundle, &spec, &sd, &mut cg, &mut stage2).map(|st| (st, spec));
    if r.is_err() {
        // Leave nothing behind: no process, no cgroup, no state.
        if let Some(pid) = stage2 {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        }
        if let Some(cg) = &cg {
            let _ = cg.kill_all(Signal::SIGKILL);
            let _ = cg.destroy();
        }
        let _ = std::fs::remove_dir_all(&sd.dir);
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn create_inner(
    g: &Global,
    id: &str,
    o: &CreateOpts,
    exe: ExeCopy,
    bundle: &Path,
    spec: &Spec,
    sd: &StateDir,
    cg_out: &mut Option<Cgroup>,
    stage2_out: &mut Option<Pid>,
) -> Res<State> {
    let linux = spec.linux.clone().unwrap_or_default();
    std::fs::copy(bundle.join("config.json"), sd.config()).map_err(|e| format!("cannot copy config.json: {e}"))?;
    let layout = cgroups::detect(&g.cgroup_root)
        .map_err(|e| format!("cannot detect cgroups at {}: {e}", g.cgroup_root.display()))?;
    let rel = cgroups::resolve_path(linux.cgroups_path.as_deref(), id)?;
    let cg = Cgroup::new(&layout, &rel);
    cg.create().map_err(|e| format!("cannot create cgroup {rel}: {e}"))?;
    *cg_out = Some(cg.clone());
    if let Some(res) = &linux.resources {
        cg.apply(res)?;
    }
    let console = match &o.console_socket {
        Some(p) => Some(UnixStream::connect(p).map_err(|e| format!("console socket {}: {e}", p.display()))?),
        None => None,
    };
    // The fifo is reachable only through init's O_PATH descriptor (the state directory is 0700),
    // so it can be writable by anyone: init opens it after switching to the container's user,
    // which may be unprivileged or in a user namespace that does not map the host's root.
    std::fs::set_permissions(&sd.dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| format!("cannot chmod state directory: {e}"))?;
    nix::unistd::mkfifo(&sd.fifo(), nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| format!("cannot create exec fifo: {e}"))?;
    std::fs::set_permissions(sd.fifo(), std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(|e| format!("cannot chmod exec fifo: {e}"))?;
    let fifo = nix::fcntl::open(
        &sd.fifo(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("cannot open exec fifo: {e}"))?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let fifo = unsafe { OwnedFd::from_raw_fd(fifo) };
    let rootfs = spec.rootfs(bundle);
    let hooks_cfg = spec.hooks.clone().unwrap_or_default();
    let mut st = State {
        id: id.to_string(),
        pid: 0,
        start_time: 0,
        bundle: bundle.to_path_buf(),
        rootfs: rootfs.clone(),
        created: now(),
        annotations: spec.annotations.clone(),
        cgroup: cg.clone(),
        started: false,
    };
    let mut sp = spawn_init(exe, o.preserve_fds, Some(&fifo), console.as_ref())?;
    drop(console);
    drop(fifo);
    let stage1 = sp.stage1;
    if let Some(adj) = spec.process.as_ref().and_then(|p| p.oom_score_adj) {
        let _ = std::fs::write(format!("/proc/{stage1}/oom_score_adj"), adj.to_string());
    }
    let cfg = InitConfig {
        mode: InitMode::Create,
        spec: spec.clone(),
        bundle: bundle.to_path_buf(),
        rootfs,
        no_pivot: o.no_pivot,
        parent_hooks: !hooks_cfg.prestart.is_empty() || !hooks_cfg.create_runtime.is_empty(),
        state: st.oci_json(Status::Created),
        target_pid: 0,
        join: Vec::new(),
        cgroup: cg.clone(),
    };
    let result = (|| -> Res<()> {
        sp.ch.send(&cfg).map_err(|e| format!("cannot talk to init: {e}"))?;
        loop {
            match sp.ch.recv::<FromInit>().map_err(|e| format!("cannot talk to init: {e}"))? {
                None => return Err("container init exited during setup".into()),
                Some(FromInit::UserNs) => {
                    let r = write_id_maps(stage1, spec);
                    reply(&mut sp.ch, &r)?;
                    r?;
                }
                Some(FromInit::Pid { pid }) => {
                    *stage2_out = Some(Pid::from_raw(pid));
                    st.pid = pid;
                    let _ = waitpid(stage1, None);
                }
                Some(FromInit::Hooks) => {
                    let mut state = st.oci_json(Status::Created);
                    state["status"] = "creating".into();
                    let r = hooks::run("prestart", &hooks_cfg.prestart, &state)
                        .and_then(|()| hooks::run("createRuntime", &hooks_cfg.create_runtime, &state));
                    reply(&mut sp.ch, &r)?;
                    r?;
                }
                Some(FromInit::Ready) => return Ok(()),
                Some(FromInit::Error { message }) => return Err(message),
            }
        }
    })();
    if let Err(e) = result {
        let _ = nix::sys::signal::kill(stage1, Signal::SIGKILL);
        let _ = waitpid(stage1, None);
        return Err(e);
    }
    st.start_time = state::proc_start_time(st.pid).map(|(t, _)| t).ok_or("container init exited during setup")?;
    st.save(sd).map_err(|e| format!("cannot write state: {e}"))?;
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, st.pid)?;
    }
    Ok(st)
}

fn reply(ch: &mut Channel, r: &Res<()>) -> Res<()> {
    let msg = match r {
        Ok(()) => ToInit::Continue,
        Err(e) => ToInit::Error { message: e.clone() },
    };
    ch.send(&msg).map_err(|e| format!("cannot talk to init: {e}"))
}

fn write_pid_file(path: &Path, pid: i32) -> Res<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| e.to_string())?.join(path)
    };
    atomic::replace(&path, pid.to_string().as_bytes()).map_err(|e| format!("pid file {}: {e}", path.display()))
}

/// Loads a container's state, or Docker-style "does not exist".
pub fn load(g: &Global, id: &str) -> Res<(State, StateDir)> {
    validate_id(id)?;
    let sd = StateDir::new(&g.root, id);
    match State::load(&sd) {
        Ok(s) => Ok((s, sd)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!("container {id} does not exist")),
        Err(e) => Err(e.to_string()),
    }
}

fn load_saved_spec(sd: &StateDir) -> Res<Spec> {
    let data = std::fs::read(sd.config()).map_err(|e| format!("{}: {e}", sd.config().display()))?;
    Spec::parse(&data)
}

/// `start`: releases init from the exec fifo, then runs poststart hooks.
pub fn start(g: &Global, id: &str) -> Res<()> {
    let (mut st, sd) = load(g, id)?;
    start_loaded(&mut st, &sd, None)
}

/// `start` with the state (and, when the caller has it, the spec) already in memory.
fn start_loaded(st: &mut State, sd: &StateDir, spec: Option<&Spec>) -> Res<()> {
    match st.status(sd) {
        Status::Created => {}
        Status::Stopped => return Err("cannot start a container that has stopped".into()),
        s => return Err(format!("cannot start an already {} container", s.as_str())),
    }
    let fifo = nix::fcntl::open(
        &sd.fifo(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("cannot open exec fifo: {e}"))?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let mut f = unsafe { File::from_raw_fd(fifo) };
    // Init opens its end as soon as ours is open; wait for its byte, but not for a dead init.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1];
    loop {
        match f.read(&mut buf) {
            Ok(1) => break,
            Ok(_) | Err(_) => {
                if !st.init_alive() {
                    let _ = std::fs::remove_file(sd.fifo());
                    return Err("container init exited before start".into());
                }
                if Instant::now() > deadline {
                    return Err("timed out waiting for container init".into());
                }
                let mut pfd = [nix::poll::PollFd::new(f_borrow(&f), nix::poll::PollFlags::POLLIN)];
                let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(20u16));
            }
        }
    }
    let _ = std::fs::remove_file(sd.fifo());
    st.started = true;
    st.save(sd).map_err(|e| format!("cannot write state: {e}"))?;
    let loaded;
    let spec = match spec {
        Some(s) => s,
        None => {
            loaded = load_saved_spec(sd)?;
            &loaded
        }
    };
    if let Some(h) = &spec.hooks {
        if let Err(e) = hooks::run("poststart", &h.poststart, &st.oci_json(Status::Running)) {
            eprintln!("warning: {e}");
        }
    }
    Ok(())
}

fn f_borrow(f: &File) -> std::os::fd::BorrowedFd<'_> {
    use std::os::fd::AsFd;
    f.as_fd()
}

/// Parses a signal name (`KILL`, `SIGKILL`) or number.
pub fn parse_signal(s: &str) -> Res<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("invalid signal {s:?}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>().map_err(|_| format!("invalid signal {s:?}"))
}

/// `kill [--all] ID SIGNAL`.
pub fn kill(g: &Global, id: &str, sig: Signal, all: bool) -> Res<()> {
    let (st, sd) = load(g, id)?;
    let status = st.status(&sd);
    if status == Status::Stopped {
        return Err("container not running".into());
    }
    if all {
        st.cgroup.kill_all(sig).map_err(|e| format!("cannot signal cgroup: {e}"))?;
        if status == Status::Paused && sig == Signal::SIGKILL {
            let _ = st.cgroup.freeze(false);
        }
        return Ok(());
    }
    nix::sys::signal::kill(Pid::from_raw(st.pid), sig).map_err(|e| format!("cannot signal {}: {e}", st.pid))
}

/// `delete [--force]`: kills what is left (with force), runs poststop hooks, removes the cgroup
/// and the state.
pub fn delete(g: &Global, id: &str, force: bool) -> Res<()> {
    let (st, sd) = match load(g, id) {
        Ok(x) => x,
        Err(e) if force && e.ends_with("does not exist") => {
            // A half-created leftover without state.json is still swept.
            let sd = StateDir::new(&g.root, id);
            let _ = std::fs::remove_dir_all(&sd.dir);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let status = st.status(&sd);
    match status {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&st),
        Status::Running | Status::Paused if force => kill_and_wait(&st),
        s => return Err(format!("cannot delete container {id} that is not stopped: {}", s.as_str())),
    }
    destroy(&st, &sd, None);
    Ok(())
}

fn kill_and_wait(st: &State) {
    let _ = st.cgroup.kill_all(Signal::SIGKILL);
    let _ = nix::sys::signal::kill(Pid::from_raw(st.pid), Signal::SIGKILL);
    let _ = st.cgroup.freeze(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while st.init_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn destroy(st: &State, sd: &StateDir, spec: Option<&Spec>) {
    let loaded = if spec.is_none() { load_saved_spec(sd).ok() } else { None };
    if let Some(h) = spec.or(loaded.as_ref()).and_then(|s| s.hooks.as_ref()) {
        if let Err(e) = hooks::run("poststop", &h.poststop, &st.oci_json(Status::Stopped)) {
            eprintln!("warning: {e}");
        }
    }
    // The cgroup's rmdirs and the state's unlinks are independent; do them side by side.
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Err(e) = st.cgroup.destroy() {
                eprintln!("warning: cannot remove cgroup: {e}");
            }
        });
        let _ = std::fs::remove_dir_all(&sd.dir);
    });
}

/// `run`: create, start, and (unless detached) wait and delete; returns the exit code.
pub fn run(g: &Global, id: &str, o: &CreateOpts, detach: bool) -> Res<i32> {
    if !detach {
        // The container's pid 1 is our grandchild; as a subreaper we can wait for it.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let (mut st, spec) = create(g, id, o)?;
    let sd = StateDir::new(&g.root, id);
    if let Err(e) = start_loaded(&mut st, &sd, Some(&spec)) {
        let _ = delete(g, id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = wait_exit(Pid::from_raw(st.pid));
    // With its own pid namespace, the kernel killed every other process when pid 1 died;
    // otherwise stragglers may remain in the cgroup.
    if spec.namespace("pid").is_none_or(|ns| ns.path.is_some()) {
        kill_and_wait(&st);
    }
    destroy(&st, &sd, Some(&spec));
    Ok(code)
}

/// Waits for `pid` (a child or, as subreaper, a grandchild), reaping others on the way.
fn wait_exit(pid: Pid) -> i32 {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, c)) if p == pid => return c,
            Ok(WaitStatus::Signaled(p, s, _)) if p == pid => return 128 + s as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return 255,
        }
    }
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// An inherited socket, already connected, used as the console socket.
    pub console_fd: Option<RawFd>,
    pub preserve_fds: u32,
}

/// `exec`: a new process in every namespace and the cgroup of a running container.
pub fn exec(g: &Global, id: &str, o: &ExecOpts) -> Res<i32> {
    let exe = ExeCopy::start();
    let (st, sd) = load(g, id)?;
    match st.status(&sd) {
        Status::Running | Status::Created => {}
        Status::Paused => return Err("cannot exec in a paused container".into()),
        Status::Stopped => return Err("cannot exec in a stopped container".into()),
    }
    if o.process.terminal && o.console_socket.is_none() && o.console_fd.is_none() {
        return Err("cannot allocate tty without a console socket".into());
    }
    let mut spec = load_saved_spec(&sd)?;
    let join: Vec<String> =
        spec.linux.as_ref().map(|l| l.namespaces.iter().map(|n| n.kind.clone()).collect()).unwrap_or_default();
    spec.process = Some(o.process.clone());
    spec.hooks = None;
    if !o.detach {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let console = match (&o.console_socket, o.console_fd) {
        (Some(p), _) => Some(UnixStream::connect(p).map_err(|e| format!("console socket {}: {e}", p.display()))?),
        (None, Some(fd)) => {
            let st = nix::sys::stat::fstat(fd).map_err(|e| format!("--console-fd {fd}: {e}"))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
                return Err(format!("--console-fd {fd}: not a socket"));
            }
            // SAFETY: the descriptor was inherited for this purpose and is a socket (checked
            // above); nothing else in this process owns it.
            Some(unsafe { UnixStream::from_raw_fd(fd) })
        }
        (None, None) => None,
    };
    let mut sp = spawn_init(exe, o.preserve_fds, None, console.as_ref())?;
    drop(console);
    let cfg = InitConfig {
        mode: InitMode::Exec,
        spec,
        bundle: st.bundle.clone(),
        rootfs: st.rootfs.clone(),
        no_pivot: false,
        parent_hooks: false,
        state: serde_json::Value::Null,
        target_pid: st.pid,
        join,
        cgroup: st.cgroup.clone(),
    };
    sp.ch.send(&cfg).map_err(|e| format!("cannot talk to init: {e}"))?;
    let mut pid = None;
    loop {
        match sp.ch.recv::<FromInit>() {
            Ok(Some(FromInit::Pid { pid: p })) => {
                pid = Some(Pid::from_raw(p));
                let _ = waitpid(sp.stage1, None);
            }
            Ok(Some(FromInit::Error { message })) => {
                let _ = waitpid(sp.stage1, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
                if let Some(p) = pid {
                    let _ = waitpid(p, None);
                }
                return Err(message);
            }
            Ok(Some(_)) => {}
            // EOF: stage 1 has exited and the process has exec'd (the channel is close-on-exec).
            Ok(None) => break,
            Err(e) => return Err(format!("cannot talk to init: {e}")),
        }
    }
    let pid = pid.ok_or("exec: init exited without starting the process")?;
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, pid.as_raw())?;
    }
    if o.detach {
        return Ok(0);
    }
    Ok(wait_exit(pid))
}

/// `pause` / `resume`.
pub fn freeze(g: &Global, id: &str, frozen: bool) -> Res<()> {
    let (st, sd) = load(g, id)?;
    let status = st.status(&sd);
    match (frozen, status) {
        (true, Status::Running) | (false, Status::Paused) => {}
        (true, s) => return Err(format!("container not running: {}", s.as_str())),
        (false, s) => return Err(format!("container not paused: {}", s.as_str())),
    }
    st.cgroup.freeze(frozen).map_err(|e| format!("cannot {} cgroup: {e}", if frozen { "freeze" } else { "thaw" }))
}

/// Every container id under the state root.
pub fn list_ids(g: &Global) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(&g.root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("state.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}
