//! `docker exec`: `POST /containers/{id}/exec`, `POST /exec/{id}/start`, `GET /exec/{id}/json`,
//! `POST /exec/{id}/resize`.
//!
//! An exec is a `tug-runtime exec` child of the daemon (the same executable, argv[0]
//! `tug-runtime`): it joins every namespace and the cgroup of the container, waits for the
//! process and exits with its status, so the daemon itself never forks from a threaded process.
//! The process starts from the container's own OCI process (capabilities, rlimits, seccomp stay
//! the container's) with the exec's command, environment, user and directory. Without a TTY its
//! stdout and stderr are pipes, framed into Docker's multiplexed stream; with one, the runtime
//! hands the pty master over a socketpair. Exec records live in memory only, as in Docker.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};

use nix::libc;
use serde::Deserialize;
use serde_json::json;

use super::api::{ApiError, ApiResult, Responder};
use super::http::{Body, Head, Stream};
use super::Engine;

/// What `POST /containers/{id}/exec` accepts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub privileged: bool,
    pub detach_keys: Option<String>,
    pub console_size: Option<[u16; 2]>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
    /// Where the runtime writes the process's pid; read on demand, then removed at the end.
    pid_file: Option<PathBuf>,
    /// The pty master, for resize.
    console: Option<Arc<File>>,
}

pub struct Exec {
    pub id: String,
    pub container: String,
    cfg: ExecConfig,
    state: Mutex<ExecState>,
    ended: Condvar,
}

/// Every exec the daemon knows, by ID.
#[derive(Default)]
pub struct Execs {
    map: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Execs {
    fn get(&self, id: &str) -> Result<Arc<Exec>, ApiError> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }

    /// Forgets the execs of a removed container.
    pub fn forget_container(&self, container: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, x| x.container != container);
    }

    /// The IDs of a container's execs, for inspect's `ExecIDs`.
    pub fn of_container(&self, container: &str) -> Vec<String> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.values().filter(|x| x.container == container && x.state_running()).map(|x| x.id.clone()).collect()
    }
}

impl Exec {
    fn state_running(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).running
    }

    fn finish(&self, code: i32) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.running = false;
        st.exit_code = Some(code);
        st.console = None;
        if let Some(p) = st.pid_file.take() {
            st.pid = read_pid(&p);
            let _ = std::fs::remove_file(p);
        }
        self.ended.notify_all();
    }
}

/// The largest exec body accepted.
const MAX_BODY: usize = 1 << 20;

/// `POST /containers/{id}/exec`.
pub fn create(e: &Engine, id: &str, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    let data = body.read_all(MAX_BODY).map_err(|err| ApiError::bad_request(format!("cannot read body: {err}")))?;
    let de = &mut serde_json::Deserializer::from_slice(&data);
    if e.debug.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("tugd: debug: exec create {}", String::from_utf8_lossy(&data));
    }
    let cfg: ExecConfig = serde_path_to_error::deserialize(de)
        .map_err(|err| ApiError::bad_request(format!("invalid JSON: {}: {}", err.path(), err.inner())))?;
    if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let rec = e.containers.find(id)?;
    check_running(&rec)?;
    let exec_id = super::containers::random_hex(32);
    let x = Arc::new(Exec {
        id: exec_id.clone(),
        container: rec.id.clone(),
        cfg,
        state: Mutex::new(ExecState::default()),
        ended: Condvar::new(),
    });
    e.execs.map.lock().unwrap_or_else(|e| e.into_inner()).insert(exec_id.clone(), x);
    e.events.container(&rec, &format!("exec_create: {}", exec_cmdline(e, &exec_id)), &[("execID", &exec_id)]);
    r.json(201, &json!({ "Id": exec_id }))?;
    Ok(())
}

fn check_running(rec: &super::containers::Record) -> Result<(), ApiError> {
    match rec.state.status.as_str() {
        "running" => Ok(()),
        "paused" => {
            Err(ApiError::conflict(format!("Container {} is paused, unpause the container before exec", rec.id)))
        }
        _ => Err(ApiError::conflict(format!("container {} is not running", rec.id))),
    }
}

fn exec_cmdline(e: &Engine, id: &str) -> String {
    e.execs.get(id).map(|x| x.cfg.cmd.clone().unwrap_or_default().join(" ")).unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    tty: Option<bool>,
    console_size: Option<[u16; 2]>,
}

/// `POST /exec/{id}/start`: detached, or hijacking the connection until the process ends. The
/// exit code is recorded before the stream closes, so the client's inspect that follows sees it.
pub fn start(e: &Engine, id: &str, head: &Head, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    let data = body.read_all(MAX_BODY).map_err(|err| ApiError::bad_request(format!("cannot read body: {err}")))?;
    let sb: StartBody = if data.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&data).map_err(|err| ApiError::bad_request(format!("invalid JSON: {err}")))?
    };
    let x = e.execs.get(id)?;
    {
        let mut st = x.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.started {
            return Err(ApiError::conflict(format!("Exec command {id} is already running")));
        }
        st.started = true;
    }
    let rec = e.containers.find(&x.container)?;
    check_running(&rec)?;
    let tty = sb.tty.unwrap_or(x.cfg.tty) || x.cfg.tty;
    let size = sb.console_size.or(x.cfg.console_size);
    let spawned = spawn(e, &x, &rec, tty, size, sb.detach)?;
    e.events.container(&rec, &format!("exec_start: {}", exec_cmdline(e, id)), &[("execID", id)]);
    if sb.detach {
        r.empty(200)?;
        let x2 = x.clone();
        let ev = e.events.clone();
        std::thread::spawn(move || {
            let code = reap(spawned.child, &spawned.log);
            x2.finish(code);
            ev.container(&rec, "exec_die", &[("execID", &x2.id), ("exitCode", &code.to_string())]);
        });
        return Ok(());
    }
    let upgrade = head.header("Upgrade").is_some();
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    let client = r.hijack(upgrade, ct)?.try_clone()?;
    let code = pump(spawned, &x, client);
    e.events.container(&rec, "exec_die", &[("execID", id), ("exitCode", &code.to_string())]);
    Ok(())
}

/// `GET /exec/{id}/json`.
pub fn inspect(e: &Engine, id: &str, r: &mut Responder<'_>) -> ApiResult {
    let x = e.execs.get(id)?;
    let mut st = x.state.lock().unwrap_or_else(|e| e.into_inner());
    if st.pid == 0 {
        if let Some(p) = &st.pid_file {
            st.pid = read_pid(p);
        }
    }
    let cmd = x.cfg.cmd.clone().unwrap_or_default();
    let v = json!({
        "ID": x.id,
        "Running": st.running,
        "ExitCode": st.exit_code,
        "ProcessConfig": {
            "tty": x.cfg.tty,
            "entrypoint": cmd.first().cloned().unwrap_or_default(),
            "arguments": cmd.get(1..).unwrap_or_default(),
            "privileged": x.cfg.privileged,
            "user": x.cfg.user.clone().unwrap_or_default(),
        },
        "OpenStdin": x.cfg.attach_stdin,
        "OpenStderr": x.cfg.attach_stderr,
        "OpenStdout": x.cfg.attach_stdout,
        "CanRemove": false,
        "ContainerID": x.container,
        "DetachKeys": x.cfg.detach_keys.clone().unwrap_or_default(),
        "Pid": st.pid,
    });
    drop(st);
    r.json(200, &v)?;
    Ok(())
}

/// `POST /exec/{id}/resize?h=&w=`.
pub fn resize(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let x = e.execs.get(id)?;
    let dim = |k: &str| -> Result<u16, ApiError> {
        head.param(k)
            .unwrap_or("0")
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid {k}: {:?}", head.param(k).unwrap_or(""))))
    };
    let (h, w) = (dim("h")?, dim("w")?);
    let console = x.state.lock().unwrap_or_else(|e| e.into_inner()).console.clone();
    match console {
        Some(c) => {
            crate::runtime::console::set_size(c.as_raw_fd(), crate::runtime::spec::ConsoleSize { height: h, width: w })
                .map_err(|err| ApiError::internal(format!("resize: {err}")))?
        }
        None if x.state_running() => {}
        None => return Err(ApiError::conflict(format!("Exec {id} is not running"))),
    }
    r.empty(200)?;
    Ok(())
}

struct Spawned {
    child: Child,
    log: PathBuf,
    console: Option<Arc<File>>,
}

/// Writes the process and starts `tug-runtime exec` for it.
fn spawn(
    e: &Engine,
    x: &Exec,
    rec: &super::containers::Record,
    tty: bool,
    size: Option<[u16; 2]>,
    detach: bool,
) -> Result<Spawned, ApiError> {
    let dir = e.layout.container_dir(&rec.id);
    let spec = crate::runtime::spec::Spec::load(&dir.join("bundle")).map_err(ApiError::internal)?;
    let mut p = spec.process.clone().unwrap_or_default();
    p.args = x.cfg.cmd.clone().unwrap_or_default();
    for kv in x.cfg.env.iter().flatten() {
        let key = kv.split('=').next().unwrap_or_default();
        p.env.retain(|old| old.split('=').next() != Some(key));
        p.env.push(kv.clone());
    }
    if let Some(w) = x.cfg.working_dir.as_deref().filter(|w| !w.is_empty()) {
        if !w.starts_with('/') {
            return Err(ApiError::bad_request(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            )));
        }
        p.cwd = w.to_string();
    }
    if let Some(u) = x.cfg.user.as_deref().filter(|u| !u.is_empty()) {
        let st = e.containers.runtime_state(rec)?;
        let root = PathBuf::from(format!("/proc/{}/root", st.pid));
        p.user = super::spec::resolve_user(u, &[root])?;
    }
    if x.cfg.privileged {
        let all = super::spec::all_capabilities();
        p.capabilities = Some(crate::runtime::spec::Capabilities {
            bounding: all.clone(),
            effective: all.clone(),
            inheritable: Vec::new(),
            permitted: all,
            ambient: Vec::new(),
        });
    }
    p.terminal = tty;
    p.console_size =
        size.filter(|s| s[0] > 0 && s[1] > 0).map(|s| crate::runtime::spec::ConsoleSize { height: s[0], width: s[1] });
    let process_file = dir.join(format!("exec-{}.json", &x.id[..12]));
    let log = dir.join(format!("exec-{}.log", &x.id[..12]));
    let pid_file = dir.join(format!("exec-{}.pid", &x.id[..12]));
    let _ = std::fs::remove_file(&log);
    crate::store::atomic::replace(
        &process_file,
        &serde_json::to_vec(&p).map_err(|err| ApiError::internal(err.to_string()))?,
    )
    .map_err(|err| ApiError::internal(format!("exec: {err}")))?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("tug-runtime")
        .arg("--root")
        .arg(e.containers.runtime_root())
        .arg("--log")
        .arg(&log)
        .arg("--log-format")
        .arg("json")
        .arg("exec")
        .arg("--process")
        .arg(&process_file)
        .arg("--pid-file")
        .arg(&pid_file);
    let mut ours = None;
    if tty {
        let (a, b) = UnixStream::pair().map_err(|err| ApiError::internal(format!("socketpair: {err}")))?;
        // The runtime inherits its end, already connected.
        let fd = b.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and only calls fcntl, which
        // is async-signal-safe. Clearing close-on-exec there (not here) keeps the descriptor out
        // of every other child the daemon starts meanwhile.
        unsafe { cmd.pre_exec(move || clear_cloexec(fd)) };
        cmd.arg("--console-fd").arg(fd.to_string());
        ours = Some((a, b));
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    } else if detach {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    } else {
        let stdin = if x.cfg.attach_stdin { Stdio::piped() } else { Stdio::null() };
        let out = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        cmd.stdin(stdin).stdout(out(x.cfg.attach_stdout)).stderr(out(x.cfg.attach_stderr));
    }
    cmd.arg(&rec.id);
    e.containers.hand_down_exe(&mut cmd);
    {
        let mut st = x.state.lock().unwrap_or_else(|e| e.into_inner());
        st.running = true;
    }
    let child = cmd.spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(err) => {
            let _ = std::fs::remove_file(&process_file);
            x.finish(126);
            return Err(ApiError::internal(format!("cannot start the runtime: {err}")));
        }
    };
    let mut console = None;
    if let Some((a, b)) = ours {
        drop(b);
        match recv_fd(&a) {
            Ok(f) => console = Some(Arc::new(f)),
            Err(err) => {
                let code = reap(child, &log);
                x.finish(code);
                return Err(ApiError::internal(format!("exec: no terminal from the runtime: {err}")));
            }
        }
        // The runtime's own errors still matter with a TTY: keep its stderr for the log.
        if let Some(mut err) = child.stderr.take() {
            std::thread::spawn(move || io::copy(&mut err, &mut io::sink()));
        }
    }
    let mut st = x.state.lock().unwrap_or_else(|e| e.into_inner());
    st.console = console.clone();
    st.pid_file = Some(pid_file);
    drop(st);
    Ok(Spawned { child, log, console })
}

fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns, integer arguments only.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The pid the runtime wrote, or 0 while it has not yet.
fn read_pid(path: &std::path::Path) -> i32 {
    std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Receives the pty master the runtime sends over the console socket.
fn recv_fd(s: &UnixStream) -> io::Result<File> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut buf = [0u8; 256];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut got = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(File::from(owned));
                }
            }
        }
    }
    got.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the runtime closed the console socket"))
}

/// Waits for the runtime and turns its end into the exec's exit code: the process's status, or
/// Docker's 126/127 when the runtime could not start it (its log holds the reason).
fn reap(child: Child, log: &std::path::Path) -> i32 {
    reap_why(child, log).0
}

/// As [`reap`], with the runtime's error message when there was one.
fn reap_why(mut child: Child, log: &std::path::Path) -> (i32, Option<String>) {
    let status = child.wait().ok().and_then(|s| s.code()).unwrap_or(255);
    let err = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    let _ = std::fs::remove_file(log.with_extension("json"));
    let Some(line) = err.lines().rfind(|l| !l.trim().is_empty()) else { return (status, None) };
    let msg = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["msg"].as_str().map(str::to_string))
        .unwrap_or_else(|| line.to_string());
    let code = if msg.contains("not found") || msg.contains("No such file") || msg.contains("no such file") {
        127
    } else {
        126
    };
    (code, Some(format!("OCI runtime exec failed: {msg}")))
}

/// Copies between the client and the process until the process's output ends, then waits for it.
fn pump(mut sp: Spawned, x: &Exec, client: Stream) -> i32 {
    let Ok(mut c_in) = client.try_clone() else {
        let code = reap(sp.child, &sp.log);
        x.finish(code);
        return code;
    };
    if let Some(console) = sp.console.clone() {
        let input = console.clone();
        let want_stdin = x.cfg.attach_stdin;
        std::thread::spawn(move || {
            if want_stdin {
                let _ = io::copy(&mut c_in, &mut &*input);
            } else {
                let _ = io::copy(&mut c_in, &mut io::sink());
            }
        });
        let mut out = client;
        let mut buf = [0u8; 8192];
        loop {
            // EIO once every slave descriptor is closed: the process and its children are done.
            match (&*console).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        drop(sp.console.take());
        let (code, why) = reap_why(sp.child, &sp.log);
        // The runtime's complaint (a command not found) goes where the user looks: the terminal.
        if let Some(why) = why {
            let _ = out.write_all(format!("{why}\r\n").as_bytes());
        }
        // Recorded before the stream ends: the client inspects the exec as soon as it does.
        x.finish(code);
        let _ = out.shutdown_write();
        return code;
    }
    if let Some(mut stdin) = sp.child.stdin.take() {
        std::thread::spawn(move || {
            let _ = io::copy(&mut c_in, &mut stdin);
            // Dropping stdin closes the process's input: the client's half-close passes on.
        });
    } else {
        std::thread::spawn(move || io::copy(&mut c_in, &mut io::sink()));
    }
    let out = Arc::new(Mutex::new(client));
    let mut threads = Vec::new();
    let framed = |stream: u8, mut r: Box<dyn Read + Send>, out: Arc<Mutex<Stream>>| {
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut frame = Vec::with_capacity(n + 8);
                frame.extend_from_slice(&[stream, 0, 0, 0]);
                frame.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
                frame.extend_from_slice(&buf[..n]);
                if out.lock().unwrap_or_else(|e| e.into_inner()).write_all(&frame).is_err() {
                    break;
                }
            }
        })
    };
    if let Some(o) = sp.child.stdout.take() {
        threads.push(framed(1, Box::new(o), out.clone()));
    }
    if let Some(o) = sp.child.stderr.take() {
        threads.push(framed(2, Box::new(o), out.clone()));
    }
    for t in threads {
        let _ = t.join();
    }
    let code = reap(sp.child, &sp.log);
    x.finish(code);
    let _ = out.lock().unwrap_or_else(|e| e.into_inner()).shutdown_write();
    code
}
