//! `tug-monitor`: the per-container monitor (argv[0] only, hidden), as conmon or
//! containerd-shim. One monitor runs per container start; it holds the container's stdio, writes
//! its log, serves attachers and records its exit, so the daemon can die (even `kill -9`) and come
//! back without losing output or the exit status. It owns no Docker-level state: everything it
//! knows it was given on the command line, and everything it says goes to files and a socket.
//!
//! # Contract
//!
//! ```text
//! tug-monitor --runtime-root DIR --bundle DIR --id ID --dir DIR
//!             [--tty] [--stdin] [--log-max-size BYTES] [--log-max-file N]
//! ```
//!
//! - `--runtime-root`, `--bundle`, `--id`: as `tug-runtime --root DIR create --bundle DIR ID`.
//!   `process.terminal` in the bundle's config.json must equal `--tty`.
//! - `--dir`: the container's directory in the daemon's state (created if missing). The monitor
//!   owns these names in it: `monitor.sock`, `monitor.pid`, `console.sock` (only during start-up),
//!   `exit.json`, `json.log` and its rotations `json.log.1` (newest) … `json.log.<N-1>`.
//! - `--stdin`: the container's stdin is a pipe fed by attachers (Docker's `OpenStdin`); without
//!   it the container reads /dev/null. With `--tty` all three are the terminal.
//! - `--log-max-size` (bytes, `k`/`m`/`g` suffixes accepted; 0 disables rotation; default 10m)
//!   and `--log-max-file` (default 3): before an entry would take `json.log` past the size, the
//!   files shift up by one (`json.log` → `json.log.1` → …, the oldest dropped) and a new
//!   `json.log` starts; with `--log-max-file 1` the log is truncated instead. Rotation is on by
//!   default, unlike Docker's json-file driver.
//!
//! Start-up handshake. Run the monitor with a pipe on stdout and read that pipe to EOF. The
//! monitor detaches (fork, `setsid`, fork: its final process is a child of the system's
//! subreaper, never of the daemon) and makes itself a child subreaper, so the container's pid 1
//! is its child. It removes a stale `exit.json` (a restarted container reuses the directory),
//! creates the container in-process, and writes exactly one line to the pipe:
//! `{"pid":<container pid 1>}` or `{"error":"<message>"}`, e.g.
//! `{"error":"exec: \"nosuch\": executable file not found in $PATH"}` (the daemon maps
//! "executable file not found" to exit status 127). The process the daemon started exits 0 after a
//! `pid` line and 1 after an `error` line (2 for bad arguments), so it may be waited for in either
//! order. After an error nothing is left: no runtime state, no cgroup, no monitor files (an
//! existing `json.log` is untouched). After a `pid` line the container is *created, not started*,
//! `monitor.sock` accepts connections, and `monitor.pid` holds the monitor's pid.
//!
//! `monitor.sock` protocol: one request per connection; the client sends one JSON line, the
//! monitor answers one JSON line (`{"error":"…"}` on failure) and closes, except for `attach` and
//! `wait`:
//!
//! - `{"op":"start"}` → `{"ok":true,"started_at":"<RFC3339Nano>"}`. Runs the runtime's `start`.
//! - `{"op":"attach","stdin":B,"stdout":B,"stderr":B,"stdin_once":B}` (all optional, false, false,
//!   false, true) → `{"ok":true}`, then the connection is the stream. Output: Docker's multiplexed
//!   frames (`[stream,0,0,0,len as u32 BE]` + payload, stream 1 stdout, 2 stderr), or raw bytes
//!   with `--tty`. An attach answered before `start` sees the output from its first byte. Bytes
//!   the client sends go to the container's stdin (only with `stdin` and `--stdin`; otherwise they
//!   are read and dropped). When the client half-closes (shutdown(SHUT_WR)) and `stdin_once` is
//!   true, the container's stdin is closed, as `docker run -i` does; with `--tty` stdin stays open.
//!   The monitor closes the connection once the container has exited and all its output has been
//!   sent. An attacher more than 1 MiB behind, or whose socket fails, is disconnected; no attacher
//!   ever slows the container or the log. Attaching after exit answers an error.
//! - `{"op":"resize","h":ROWS,"w":COLS}` → `{"ok":true}`; an error without `--tty`.
//! - `{"op":"kill","signal":N,"all":B}` → `{"ok":true}`. `all` signals every process in the cgroup.
//! - `{"op":"state"}` → `{"pid":N,"status":"created"|"running"|"exited","running":B,
//!   "started_at":S|null,"exit_code":N|null}`.
//! - `{"op":"wait"}` → blocks until the container has exited, then answers the `exit.json` document.
//!
//! Logs: every line of stdout and stderr goes to `json.log` as Docker's json-file entries
//! (`{"log":"text\n","stream":"stdout","time":"<RFC3339Nano>"}`, Docker's exact escaping), written
//! with one write(2) each whether or not anyone is attached; a line longer than 16 KiB is logged in
//! 16 KiB pieces without a newline, and an unfinished last line is logged when the stream ends.
//! With `--tty` everything is `stdout` (and lines end in `\r\n`, as the terminal makes them).
//!
//! Exit: when pid 1 exits the monitor records the exit code (128+signal when killed) and whether
//! the cgroup saw an OOM kill, kills anything left in the cgroup, deletes the container from the
//! runtime (no cgroup, no runtime state remains), waits for the output pipes to drain into the log,
//! and then writes `exit.json` atomically (not flushed: it describes this boot only):
//! `{"ExitCode":N,"OOMKilled":B,"StartedAt":S,"FinishedAt":S}` (RFC3339Nano; `StartedAt` is
//! `0001-01-01T00:00:00Z` if never started). So once `exit.json` exists the log is complete and
//! the runtime has forgotten the container. Then attachers are flushed (for at most 10 s) and
//! closed, `monitor.sock` and `monitor.pid` are removed, and the monitor exits 0.
//!
//! The daemon must not be a child subreaper itself (or the monitor would be reparented to it),
//! and a service manager stopping the daemon must not kill the daemon's whole cgroup
//! (systemd: `KillMode=process`), since the monitors start out in it.

mod hub;
mod log;
mod server;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::Parser;
use nix::libc;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use serde_json::{json, Value};

use crate::runtime::cgroups::Cgroup;
use crate::runtime::container::{self, CreateOpts, Global};
use crate::store::atomic;
use hub::{Hub, STDERR, STDOUT};
use log::{JsonLog, LineSplitter};

const SOCK: &str = "monitor.sock";
const PID_FILE: &str = "monitor.pid";
const CONSOLE_SOCK: &str = "console.sock";
const EXIT_FILE: &str = "exit.json";
const LOG_FILE: &str = "json.log";

/// Docker's zero time, the `StartedAt` of a container that never started.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Threads do little and recurse not at all; a small stack keeps the address space small.
const STACK: usize = 256 * 1024;

#[derive(Parser, Debug)]
#[command(name = "tug-monitor", about = "Per-container monitor (started by the daemon)", disable_version_flag = true)]
struct Opts {
    /// The runtime's state root.
    #[arg(long = "runtime-root")]
    runtime_root: PathBuf,
    /// The OCI bundle.
    #[arg(long)]
    bundle: PathBuf,
    /// The container id.
    #[arg(long)]
    id: String,
    /// The container's directory: monitor.sock, monitor.pid, json.log, exit.json.
    #[arg(long)]
    dir: PathBuf,
    /// The container has a terminal (process.terminal).
    #[arg(long)]
    tty: bool,
    /// Keep the container's stdin open for attachers.
    #[arg(long)]
    stdin: bool,
    /// Rotate json.log before it passes this size (0: never).
    #[arg(long = "log-max-size", default_value = "10m", value_parser = parse_size)]
    log_max_size: u64,
    /// How many log files to keep, json.log included.
    #[arg(long = "log-max-file", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    log_max_file: u32,
}

/// `123`, `64k`, `10m`, `1g` (powers of 1024, as Docker's `max-size`).
fn parse_size(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| format!("invalid size {s:?}"))
}

/// What the connection threads share with the main thread.
pub(crate) struct Shared {
    global: Global,
    id: String,
    pid: i32,
    tty: bool,
    stdin_open: bool,
    hub: Hub,
    /// The container's stdin (pipe or terminal); `None` once closed.
    stdin: Mutex<Option<File>>,
    /// The terminal's master side, for resizes.
    master: Option<File>,
    life: Mutex<Life>,
    cv: Condvar,
    /// Connections (attachers, waiters) that should finish before the monitor exits.
    busy: AtomicUsize,
}

#[derive(Default)]
pub(crate) struct Life {
    started_at: Option<String>,
    /// The exit.json document, once written.
    exit: Option<Value>,
}

/// Counts a connection as busy while alive.
pub(crate) struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    fn busy(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(&self.busy)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).stack_size(STACK).spawn(f)
}

/// The applet's entry point.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let opts = match Opts::try_parse_from(&args) {
        Ok(o) => o,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("bad arguments").trim_start_matches("error: ");
            handshake_line(&mut io::stdout(), &json!({ "error": first }));
            return ExitCode::from(2);
        }
    };
    let opts = match absolutize(opts) {
        Ok(o) => o,
        Err(e) => {
            handshake_line(&mut io::stdout(), &json!({ "error": e }));
            return ExitCode::from(1);
        }
    };
    // Descriptors leaked by whoever started us must not reach the container.
    mark_all_cloexec();
    let status = match detach() {
        Ok(w) => w,
        Err(e) => {
            handshake_line(&mut io::stdout(), &json!({ "error": e }));
            return ExitCode::from(1);
        }
    };
    // From here on this is the monitor process proper.
    let mut handshake = match dup_cloexec(1) {
        Ok(f) => f,
        Err(e) => {
            report_status(status, false);
            eprintln!("tug-monitor: cannot keep the handshake pipe: {e}");
            return ExitCode::from(1);
        }
    };
    match setup(&opts) {
        Ok(mon) => {
            handshake_line(&mut handshake, &json!({ "pid": mon.shared.pid }));
            drop(handshake);
            report_status(status, true);
            mon.run();
            ExitCode::SUCCESS
        }
        Err(e) => {
            handshake_line(&mut handshake, &json!({ "error": e }));
            drop(handshake);
            report_status(status, false);
            ExitCode::from(1)
        }
    }
}

fn handshake_line(w: &mut impl Write, v: &Value) {
    let mut line = serde_json::to_vec(v).unwrap_or_default();
    line.push(b'\n');
    let _ = w.write_all(&line);
    let _ = w.flush();
}

/// Makes every path absolute: the monitor later works from inside `--dir`.
fn absolutize(mut o: Opts) -> Result<Opts, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("cannot read current directory: {e}"))?;
    o.runtime_root = cwd.join(&o.runtime_root);
    o.bundle = cwd.join(&o.bundle);
    std::fs::create_dir_all(cwd.join(&o.dir)).map_err(|e| format!("{}: {e}", o.dir.display()))?;
    o.dir = std::fs::canonicalize(cwd.join(&o.dir)).map_err(|e| format!("{}: {e}", o.dir.display()))?;
    Ok(o)
}

fn mark_all_cloexec() {
    let Ok(rd) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<RawFd> = rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    for fd in fds.into_iter().filter(|fd| *fd > 2) {
        // SAFETY: fcntl with integer arguments; a descriptor that is not open just fails.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

fn dup_cloexec(fd: RawFd) -> io::Result<File> {
    // SAFETY: fcntl with integer arguments; the result is checked.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl just returned this descriptor and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(new) })
}

fn pipe() -> Result<(File, File), String> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("cannot create pipe: {e}"))?;
    Ok((File::from(r), File::from(w)))
}

/// Detaches from the daemon: fork, `setsid`, fork. The original process stays behind only to
/// exit with the handshake's outcome (read from a private pipe); the grandchild, in a new
/// session and not its leader (so it never gains a controlling terminal), returns the pipe's
/// write end. Runs while the process is single-threaded.
fn detach() -> Result<File, String> {
    let (mut r, w) = pipe()?;
    // SAFETY: the process is single-threaded here (no thread has been started), so the child may
    // run arbitrary code.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("cannot fork: {e}"))? {
        ForkResult::Parent { child } => {
            drop(w);
            // Only the monitor may hold the daemon's pipe, or the daemon's read would not end.
            if let Ok(null) = File::open("/dev/null") {
                let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
            }
            let _ = waitpid(child, None);
            let mut b = [1u8; 1];
            let ok = matches!(r.read(&mut b), Ok(1)) && b[0] == 0;
            std::process::exit(if ok { 0 } else { 1 });
        }
        ForkResult::Child => {}
    }
    drop(r);
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // SAFETY: still single-threaded, as above.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("cannot fork: {e}"))? {
        // SAFETY: _exit runs no destructors; the intermediate process has nothing to clean up.
        ForkResult::Parent { .. } => unsafe { libc::_exit(0) },
        ForkResult::Child => Ok(w),
    }
}

fn report_status(mut w: File, ok: bool) {
    let _ = w.write_all(&[u8::from(!ok)]);
}

/// A monitor whose container is created.
struct Monitor {
    shared: Arc<Shared>,
    cgroup: Cgroup,
    dir: PathBuf,
    log: Arc<Mutex<JsonLog>>,
    /// Output sources: (stream, reader). One with a TTY.
    outputs: Vec<(u8, File)>,
    listener: UnixListener,
}

/// The container's ends of its stdio, dup2'd onto 0/1/2 while it is created.
struct Stdio {
    child: [File; 3],
    stdin_w: Option<File>,
    outputs: Vec<(u8, File)>,
}

fn open_stdio(opts: &Opts) -> Result<Stdio, String> {
    let null = |write: bool| {
        std::fs::OpenOptions::new().read(!write).write(write).open("/dev/null").map_err(|e| format!("/dev/null: {e}"))
    };
    if opts.tty {
        // init makes the terminal's slave its stdio; these are only placeholders.
        return Ok(Stdio { child: [null(false)?, null(true)?, null(true)?], stdin_w: None, outputs: Vec::new() });
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin_r, stdin_w) = if opts.stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (null(false)?, None)
    };
    Ok(Stdio { child: [stdin_r, out_w, err_w], stdin_w, outputs: vec![(STDOUT, out_r), (STDERR, err_r)] })
}

fn set_stdio(fds: [RawFd; 3]) -> Result<(), String> {
    for (target, fd) in fds.into_iter().enumerate() {
        // Targets 0..3 fit any RawFd.
        nix::unistd::dup2(fd, target as RawFd).map_err(|e| format!("cannot set up stdio: {e}"))?;
    }
    Ok(())
}

fn setup(opts: &Opts) -> Result<Monitor, String> {
    // SAFETY: prctl with integer arguments. As a subreaper, the container's pid 1 (a grandchild
    // after init's stages exit) becomes our child and its exit status comes to us.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(format!("cannot become subreaper: {}", io::Error::last_os_error()));
    }
    // Inside the directory, socket paths are short relative names: a sockaddr_un holds only 108
    // bytes, and the daemon's data root may be deep.
    std::env::set_current_dir(&opts.dir).map_err(|e| format!("{}: {e}", opts.dir.display()))?;
    // A live monitor answers on its socket; a second one for the same directory would steal it.
    if std::os::unix::net::UnixStream::connect(SOCK).is_ok() {
        return Err(format!("a monitor is already running in {}", opts.dir.display()));
    }
    for name in [EXIT_FILE, SOCK, CONSOLE_SOCK] {
        match std::fs::remove_file(name) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(format!("cannot remove stale {name}: {e}")),
            _ => {}
        }
    }
    if let Ok(spec) = crate::runtime::spec::Spec::load(&opts.bundle) {
        let terminal = spec.process.as_ref().is_some_and(|p| p.terminal);
        if terminal != opts.tty {
            return Err(format!(
                "process.terminal is {terminal} in config.json but the monitor was started {} --tty",
                if opts.tty { "with" } else { "without" }
            ));
        }
    }
    let console = if opts.tty {
        Some(UnixListener::bind(CONSOLE_SOCK).map_err(|e| format!("cannot bind console socket: {e}"))?)
    } else {
        None
    };
    let r = create_container(opts, console.as_ref());
    if console.is_some() {
        let _ = std::fs::remove_file(CONSOLE_SOCK);
    }
    r
}

/// Creates the container with its stdio in place, then opens the log and the control socket.
/// On failure the container is deleted again.
fn create_container(opts: &Opts, console: Option<&UnixListener>) -> Result<Monitor, String> {
    let stdio = open_stdio(opts)?;
    let global = Global { root: opts.runtime_root.clone(), cgroup_root: PathBuf::from("/sys/fs/cgroup") };
    let create = CreateOpts {
        bundle: opts.bundle.clone(),
        console_socket: console.map(|_| PathBuf::from(CONSOLE_SOCK)),
        ..Default::default()
    };
    // The container inherits 0/1/2 at create; the monitor's own go to /dev/null right after,
    // so it holds no write end of the output pipes (their EOF marks the end of the output).
    set_stdio([stdio.child[0].as_raw_fd(), stdio.child[1].as_raw_fd(), stdio.child[2].as_raw_fd()])?;
    let created = container::create(&global, &opts.id, &create);
    let null = File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    set_stdio([null.as_raw_fd(); 3])?;
    drop(stdio.child);
    let (state, _spec) = created?;
    let fail = |e: String| {
        let _ = container::delete(&global, &opts.id, true);
        e
    };
    let mut outputs = stdio.outputs;
    let mut stdin = stdio.stdin_w;
    let mut master = None;
    if let Some(l) = console {
        let m = recv_console(l).map_err(|e| fail(format!("cannot receive the terminal: {e}")))?;
        outputs.push((STDOUT, m.try_clone().map_err(|e| fail(e.to_string()))?));
        if opts.stdin {
            stdin = Some(m.try_clone().map_err(|e| fail(e.to_string()))?);
        }
        master = Some(m);
    }
    let log = JsonLog::open(Path::new(LOG_FILE), opts.log_max_size, opts.log_max_file)
        .map_err(|e| fail(format!("cannot open {LOG_FILE}: {e}")))?;
    let listener = UnixListener::bind(SOCK).map_err(|e| fail(format!("cannot bind {SOCK}: {e}")))?;
    // monitor.pid and exit.json are not flushed to disk: they describe this boot only (after a
    // host crash the daemon's boot ID check makes every container exited, whatever they say).
    if let Err(e) = atomic::replace(Path::new(PID_FILE), std::process::id().to_string().as_bytes()) {
        let _ = std::fs::remove_file(SOCK);
        return Err(fail(format!("cannot write {PID_FILE}: {e}")));
    }
    let shared = Arc::new(Shared {
        global,
        id: opts.id.clone(),
        pid: state.pid,
        tty: opts.tty,
        stdin_open: opts.stdin,
        hub: Hub::new(opts.tty),
        stdin: Mutex::new(stdin),
        master,
        life: Mutex::new(Life::default()),
        cv: Condvar::new(),
        busy: AtomicUsize::new(0),
    });
    Ok(Monitor {
        shared,
        cgroup: state.cgroup,
        dir: opts.dir.clone(),
        log: Arc::new(Mutex::new(log)),
        outputs,
        listener,
    })
}

/// Receives the terminal's master from init over the console socket. Init sent it before
/// `create` returned, so the connection and its message are already queued.
fn recv_console(l: &UnixListener) -> io::Result<File> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    l.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let conn = loop {
        match l.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    };
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 256];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            let owned: Vec<OwnedFd> = fds
                .iter()
                // SAFETY: the kernel just installed these descriptors for us; nothing else owns them.
                .map(|fd| unsafe { OwnedFd::from_raw_fd(*fd) })
                .collect();
            let first = owned.into_iter().next();
            if let Some(fd) = first {
                return Ok(File::from(fd));
            }
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "no descriptor in the console message"))
}

/// Copies one output stream to the log and the attachers until EOF. A terminal reports EIO
/// instead of EOF once the last slave descriptor is closed; both end the stream.
fn pump(stream: u8, mut src: File, tty: bool, log: &Mutex<JsonLog>, hub: &Hub) {
    let name = if stream == STDERR { "stderr" } else { "stdout" };
    let mut lines = LineSplitter::default();
    let mut buf = [0u8; 8192];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let data = &buf[..n];
        let time = log::go_time_now();
        {
            let mut l = lock(log);
            lines.feed(data, |line| {
                let _ = l.write(line, name, &time);
            });
        }
        hub.publish(if tty { STDOUT } else { stream }, data);
    }
    let time = log::go_time_now();
    let mut l = lock(log);
    lines.finish(|line| {
        let _ = l.write(line, name, &time);
    });
}

impl Monitor {
    fn run(self) {
        let sh = self.shared;
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let mut pumps = 0;
        for (stream, src) in self.outputs {
            let (log, sh2, tx) = (self.log.clone(), sh.clone(), done_tx.clone());
            if spawn("monitor-pump", move || {
                pump(stream, src, sh2.tty, &log, &sh2.hub);
                let _ = tx.send(());
            })
            .is_ok()
            {
                pumps += 1;
            }
        }
        drop(done_tx);
        {
            let sh2 = sh.clone();
            let listener = self.listener;
            let _ = spawn("monitor-accept", move || server::serve(listener, sh2));
        }
        let code = wait_exit(Pid::from_raw(sh.pid));
        let finished_at = log::go_time_now();
        let oom = self.cgroup.oom_killed();
        // Without its own pid namespace the container's other processes outlive pid 1; they are
        // part of it all the same, and the output pipes end only when the last one is gone.
        let _ = self.cgroup.kill_all(Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.cgroup.pids().is_ok_and(|p| !p.is_empty()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = container::delete(&sh.global, &sh.id, true);
        reap_strays();
        // The last output is in the pipes or on its way to the log; exit.json must not appear
        // before it is there.
        let deadline = Instant::now() + Duration::from_secs(5);
        for _ in 0..pumps {
            let left = deadline.saturating_duration_since(Instant::now());
            if done_rx.recv_timeout(left).is_err() {
                break;
            }
        }
        let started_at = lock(&sh.life).started_at.clone();
        let doc = json!({
            "ExitCode": code,
            "OOMKilled": oom,
            "StartedAt": started_at.as_deref().unwrap_or(ZERO_TIME),
            "FinishedAt": finished_at,
        });
        let _ = atomic::replace(&self.dir.join(EXIT_FILE), &serde_json::to_vec(&doc).unwrap_or_default());
        lock(&sh.stdin).take();
        {
            let mut life = lock(&sh.life);
            life.exit = Some(doc);
            sh.cv.notify_all();
        }
        sh.hub.close_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        while sh.busy.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = std::fs::remove_file(self.dir.join(SOCK));
        let _ = std::fs::remove_file(self.dir.join(PID_FILE));
    }
}

/// Waits for the container's pid 1 and returns its exit code, 128+signal when it was killed.
fn wait_exit(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => {
                // Not our child after all (it cannot happen when the subreaper bit took effect
                // before create): fall back to watching it, without an exit code to report.
                while nix::sys::signal::kill(pid, None).is_ok() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return 255;
            }
        }
    }
}

/// Reaps orphans that were reparented to us (a container without its own pid namespace).
fn reap_strays() {
    while let Ok(s) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if s == WaitStatus::StillAlive {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("x").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn options_have_rotation_on_by_default() {
        let o =
            Opts::try_parse_from(["tug-monitor", "--runtime-root", "r", "--bundle", "b", "--id", "i", "--dir", "d"])
                .unwrap();
        assert_eq!((o.log_max_size, o.log_max_file, o.tty, o.stdin), (10 << 20, 3, false, false));
        assert!(Opts::try_parse_from(["tug-monitor", "--id", "i"]).is_err());
    }
}
