//! The per-container monitor (`tug-monitor`): the start-up handshake, attach streams, json.log and
//! its rotation, exit.json, surviving the process that started it, and cleaning up after itself.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{busybox, tug, unique, Bundle, Dir};

const TIMEOUT: Duration = Duration::from_secs(15);

fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    ["memory", "pids", "cpu", "freezer", "devices", "unified"]
        .iter()
        .map(|c| Path::new("/sys/fs/cgroup").join(c).join(path.trim_start_matches('/')))
        .chain([Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'))])
        .collect()
}

/// The built executable reachable as `tug-monitor` (its applet is chosen by argv[0] only).
fn monitor_exe(d: &Dir) -> PathBuf {
    let link = d.join("tug-monitor");
    if !link.exists() {
        std::os::unix::fs::symlink(tug(), &link).unwrap();
    }
    link
}

struct Started {
    /// The handshake line.
    line: Value,
    /// Exit status of the process the "daemon" started.
    code: Option<i32>,
    dir: PathBuf,
}

fn monitor_args(b: &Bundle, id: &str, dir: &Path) -> Vec<String> {
    let mut a: Vec<String> = vec!["--runtime-root".into(), b.state.to_string_lossy().into()];
    a.extend(["--bundle".into(), b.dir.path.to_string_lossy().into(), "--id".into(), id.into()]);
    a.extend(["--dir".into(), dir.to_string_lossy().into()]);
    a
}

/// Runs the monitor as the daemon will: stdout a pipe, read to EOF, then waited for.
fn start_monitor(b: &Bundle, id: &str, extra: &[&str]) -> Started {
    let dir = b.dir.join(&format!("ctr-{id}"));
    let mut child = Command::new(monitor_exe(&b.dir))
        .args(monitor_args(b, id, &dir))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let text = rx.recv_timeout(TIMEOUT).expect("handshake pipe never reached EOF");
    let deadline = Instant::now() + TIMEOUT;
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        assert!(Instant::now() < deadline, "the started process did not exit");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(text.lines().count(), 1, "exactly one handshake line: {text:?}");
    Started { line: serde_json::from_str(&text).unwrap(), code, dir }
}

fn connect(dir: &Path) -> UnixStream {
    let c = UnixStream::connect(dir.join("monitor.sock")).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c
}

fn read_line(c: &UnixStream) -> Value {
    // Byte by byte: what follows the answer belongs to the stream.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while (&*c).read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    serde_json::from_slice(&line).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&line)))
}

fn request(dir: &Path, req: Value) -> Value {
    let mut c = connect(dir);
    writeln!(c, "{req}").unwrap();
    read_line(&c)
}

fn attach(dir: &Path, stdin: bool, stdout: bool, stderr: bool) -> UnixStream {
    let mut c = connect(dir);
    writeln!(c, "{}", json!({"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr})).unwrap();
    assert_eq!(read_line(&c), json!({"ok": true}));
    c
}

/// Reads multiplexed frames to EOF: (stdout, stderr).
fn read_frames(mut c: &UnixStream) -> (Vec<u8>, Vec<u8>) {
    let mut data = Vec::new();
    c.read_to_end(&mut data).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut rest = &data[..];
    while !rest.is_empty() {
        assert!(rest.len() >= 8, "truncated frame header: {rest:?}");
        assert_eq!(&rest[1..4], &[0, 0, 0]);
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let payload = &rest[8..8 + len];
        match rest[0] {
            1 => out.extend_from_slice(payload),
            2 => err.extend_from_slice(payload),
            s => panic!("unexpected stream {s}"),
        }
        rest = &rest[8 + len..];
    }
    (out, err)
}

fn wait_exit_json(dir: &Path) -> Value {
    let p = dir.join("exit.json");
    let deadline = Instant::now() + TIMEOUT;
    while !p.exists() {
        assert!(Instant::now() < deadline, "no exit.json");
        std::thread::sleep(Duration::from_millis(10));
    }
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn wait_gone(p: &Path) {
    let deadline = Instant::now() + TIMEOUT;
    while p.exists() {
        assert!(Instant::now() < deadline, "{} never went away", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_rfc3339_nano(t: &str) -> bool {
    let b = t.as_bytes();
    t.len() >= 20
        && t.ends_with('Z')
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] != b'0'
        && t[..19].bytes().enumerate().all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16) || c.is_ascii_digit())
}

fn log_lines(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(name)).unwrap().lines().map(str::to_string).collect()
}

/// Checks one json.log line byte for byte, whatever its timestamp.
fn assert_log_line(line: &str, log: &str, stream: &str) {
    let v: Value = serde_json::from_str(line).unwrap();
    let time = v["time"].as_str().unwrap();
    assert!(is_rfc3339_nano(time), "{time}");
    let want = format!("{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"{time}\"}}", Value::from(log));
    assert_eq!(line, want);
}

fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().is_some_and(|r| !r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn attach_before_start_sees_all_output_then_exit_json_and_nothing_left() {
    let b = Bundle::new("mon-basic", &["sh", "-c", "echo hello; echo err >&2; exit 3"], |_| {});
    let id = unique("mon-basic");
    let s = start_monitor(&b, &id, &[]);
    assert_eq!(s.code, Some(0), "{}", s.line);
    let pid = s.line["pid"].as_i64().expect("pid in the handshake") as i32;
    assert!(process_alive(pid));
    assert_eq!(request(&s.dir, json!({"op": "state"}))["status"], "created");
    let monitor_pid: i32 = std::fs::read_to_string(s.dir.join("monitor.pid")).unwrap().parse().unwrap();
    assert!(process_alive(monitor_pid));
    let mut waiter = connect(&s.dir);
    writeln!(waiter, "{}", json!({"op": "wait"})).unwrap();
    let a = attach(&s.dir, false, true, true);
    let started = request(&s.dir, json!({"op": "start"}));
    assert_eq!(started["ok"], true, "{started}");
    let again = request(&s.dir, json!({"op": "start"}));
    assert!(again["error"].is_string(), "{again}");
    let (out, err) = read_frames(&a);
    assert_eq!(String::from_utf8_lossy(&out), "hello\n");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    let exit = wait_exit_json(&s.dir);
    assert_eq!(exit["ExitCode"], 3, "{exit}");
    assert_eq!(exit["OOMKilled"], false);
    assert_eq!(exit["StartedAt"], started["started_at"]);
    assert!(is_rfc3339_nano(exit["FinishedAt"].as_str().unwrap()), "{exit}");
    assert_eq!(read_line(&waiter), exit);
    // The log is complete once exit.json exists.
    let mut lines = log_lines(&s.dir, "json.log");
    lines.sort_by_key(|l| l.contains("stderr"));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_log_line(&lines[0], "hello\n", "stdout");
    assert_log_line(&lines[1], "err\n", "stderr");
    wait_gone(&s.dir.join("monitor.sock"));
    wait_gone(&s.dir.join("monitor.pid"));
    let deadline = Instant::now() + TIMEOUT;
    while process_alive(monitor_pid) {
        assert!(Instant::now() < deadline, "monitor did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!b.state.join(&id).exists(), "runtime state left behind");
    for d in cgroup_dirs(&b.cgroup_path()) {
        assert!(!d.exists(), "cgroup left behind: {}", d.display());
    }
}

#[test]
fn log_rotates_by_size_keeping_at_most_max_file() {
    let b =
        Bundle::new("mon-rot", &["sh", "-c", "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line-$i; done"], |_| {});
    let id = unique("mon-rot");
    let s = start_monitor(&b, &id, &["--log-max-size", "1k", "--log-max-file", "3"]);
    assert_eq!(s.code, Some(0), "{}", s.line);
    assert_eq!(request(&s.dir, json!({"op": "start"}))["ok"], true);
    assert_eq!(wait_exit_json(&s.dir)["ExitCode"], 0);
    for name in ["json.log", "json.log.1", "json.log.2"] {
        let len = std::fs::metadata(s.dir.join(name)).unwrap().len();
        assert!(len > 0 && len <= 1024, "{name}: {len} bytes");
    }
    assert!(!s.dir.join("json.log.3").exists());
    // Newest last: json.log.2, json.log.1, json.log hold consecutive lines ending with the last.
    let all: Vec<String> = ["json.log.2", "json.log.1", "json.log"]
        .iter()
        .flat_map(|n| log_lines(&s.dir, n))
        .map(|l| serde_json::from_str::<Value>(&l).unwrap()["log"].as_str().unwrap().to_string())
        .collect();
    let first: usize = all[0].trim_start_matches("line-").trim().parse().unwrap();
    let want: Vec<String> = (first..=300).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(all, want);
}

#[test]
fn stdin_reaches_the_container_and_half_close_ends_it() {
    let b = Bundle::new("mon-stdin", &["cat"], |_| {});
    let id = unique("mon-stdin");
    let s = start_monitor(&b, &id, &["--stdin"]);
    assert_eq!(s.code, Some(0), "{}", s.line);
    let mut a = attach(&s.dir, true, true, true);
    assert_eq!(request(&s.dir, json!({"op": "start"}))["ok"], true);
    a.write_all(b"ping\n").unwrap();
    a.write_all(b"pong").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    let (out, err) = read_frames(&a);
    assert_eq!(String::from_utf8_lossy(&out), "ping\npong");
    assert!(err.is_empty());
    assert_eq!(wait_exit_json(&s.dir)["ExitCode"], 0);
    let lines = log_lines(&s.dir, "json.log");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_log_line(&lines[0], "ping\n", "stdout");
    // The unfinished last line is logged when the stream ends.
    assert_log_line(&lines[1], "pong", "stdout");
}

#[test]
fn tty_attach_is_raw_and_resize_reaches_the_terminal() {
    let b = Bundle::new("mon-tty", &["sh", "-c", "tty; stty size"], |c| {
        c["process"]["terminal"] = true.into();
    });
    let id = unique("mon-tty");
    // A monitor started without --tty for a terminal config refuses, leaving nothing.
    let bad = start_monitor(&b, &id, &[]);
    assert_eq!(bad.code, Some(1));
    assert!(bad.line["error"].as_str().unwrap().contains("process.terminal"), "{}", bad.line);
    assert!(!b.state.join(&id).exists());
    let s = start_monitor(&b, &id, &["--tty"]);
    assert_eq!(s.code, Some(0), "{}", s.line);
    assert!(!s.dir.join("console.sock").exists());
    assert_eq!(request(&s.dir, json!({"op": "resize", "h": 30, "w": 100})), json!({"ok": true}));
    let mut a = attach(&s.dir, false, true, true);
    assert_eq!(request(&s.dir, json!({"op": "start"}))["ok"], true);
    let mut out = Vec::new();
    a.read_to_end(&mut out).unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "/dev/pts/0\r\n30 100\r\n");
    assert_eq!(wait_exit_json(&s.dir)["ExitCode"], 0);
    let lines = log_lines(&s.dir, "json.log");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_log_line(&lines[0], "/dev/pts/0\r\n", "stdout");
    assert_log_line(&lines[1], "30 100\r\n", "stdout");
}

#[test]
fn monitor_outlives_the_daemon_and_kill_records_137() {
    let b = Bundle::new("mon-survive", &["sleep", "1000"], |_| {});
    let id = unique("mon-survive");
    let dir = b.dir.join("ctr");
    let out = b.dir.join("handshake");
    // The stand-in daemon: starts the monitor, then lingers until it is killed.
    let mut daemon = Command::new(busybox())
        .args(["sh", "-c", "\"$0\" \"$@\" > \"$HANDSHAKE\"; exec sleep 1000"])
        .arg(monitor_exe(&b.dir))
        .args(monitor_args(&b, &id, &dir))
        .env("HANDSHAKE", &out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let line = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.ends_with('\n') {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
        assert!(Instant::now() < deadline, "no handshake");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(line["pid"].is_i64(), "{line}");
    assert_eq!(request(&dir, json!({"op": "start"}))["ok"], true);
    let monitor_pid: i32 = std::fs::read_to_string(dir.join("monitor.pid")).unwrap().parse().unwrap();
    let daemon_pid = daemon.id() as i32;
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(process_alive(monitor_pid), "the monitor died with its starter");
    let stat = std::fs::read_to_string(format!("/proc/{monitor_pid}/stat")).unwrap();
    let ppid: i32 = stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_ne!(ppid, daemon_pid);
    let state = request(&dir, json!({"op": "state"}));
    assert_eq!(state["running"], true, "{state}");
    assert_eq!(state["pid"], line["pid"]);
    let status = std::fs::read_to_string(format!("/proc/{monitor_pid}/status")).unwrap();
    let rss: Vec<&str> = status.lines().filter(|l| l.starts_with("VmRSS:") || l.starts_with("Rss")).collect();
    eprintln!("monitor of a running container: {}", rss.join(" ").split_whitespace().collect::<Vec<_>>().join(" "));
    assert_eq!(request(&dir, json!({"op": "kill", "signal": 9})), json!({"ok": true}));
    let exit = wait_exit_json(&dir);
    assert_eq!(exit["ExitCode"], 137, "{exit}");
    wait_gone(&dir.join("monitor.sock"));
    assert!(!b.state.join(&id).exists());
}

#[test]
fn create_failure_reports_why_and_leaves_nothing() {
    let b = Bundle::new("mon-fail", &["nosuch"], |_| {});
    let id = unique("mon-fail");
    let s = start_monitor(&b, &id, &[]);
    assert_eq!(s.code, Some(1));
    let err = s.line["error"].as_str().unwrap_or_else(|| panic!("{}", s.line));
    assert_eq!(err, "exec: \"nosuch\": executable file not found in $PATH");
    assert!(!b.state.join(&id).exists(), "runtime state left behind");
    for d in cgroup_dirs(&b.cgroup_path()) {
        assert!(!d.exists(), "cgroup left behind: {}", d.display());
    }
    for name in ["monitor.sock", "monitor.pid", "console.sock", "exit.json"] {
        assert!(!s.dir.join(name).exists(), "{name} left behind");
    }
    // Bad arguments also answer with one error line.
    let dir = Dir::new("mon-args");
    let o = Command::new(monitor_exe(&dir)).arg("--bogus").stdin(Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let line: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(line["error"].as_str().unwrap().contains("--bogus"), "{line}");
    // The monitor is not reachable as a verb.
    let o = Command::new(tug()).arg("tug-monitor").stdin(Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "tug-monitor must not be a verb");
}
