//! Test helpers: temp dirs, a busybox bundle, and running the built binary under its applet names.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static N: AtomicU32 = AtomicU32::new(0);

/// The built executable.
pub fn tug() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tug"))
}

/// A directory removed on drop.
pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn new(tag: &str) -> Dir {
        let path = std::env::temp_dir().join(format!(
            "tug-it-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir { path }
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A unique name for ids and cgroups.
pub fn unique(tag: &str) -> String {
    format!("{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Debian's busybox-static, which the tests need (CI installs it).
pub fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("busybox-static is required for these tests: apt-get install busybox-static");
}

/// Fills `rootfs` with busybox and a symlink per applet.
pub fn make_rootfs(rootfs: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(busybox()).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n")
        .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
}

/// A bundle: busybox rootfs plus the runtime's default config, edited by `edit`.
pub struct Bundle {
    pub dir: Dir,
    pub state: PathBuf,
}

impl Bundle {
    pub fn new(tag: &str, args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> Bundle {
        let dir = Dir::new(tag);
        make_rootfs(&dir.join("rootfs"));
        let out = Command::new(tug()).args(["runtime", "spec", "--bundle"]).arg(&dir.path).output().unwrap();
        assert!(out.status.success(), "spec: {}", String::from_utf8_lossy(&out.stderr));
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = serde_json::json!(args);
        cfg["root"]["readonly"] = false.into();
        cfg["linux"]["cgroupsPath"] = format!("/tugtest/{}", unique(tag)).into();
        edit(&mut cfg);
        std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        let state = dir.join("state");
        Bundle { dir, state }
    }

    pub fn config(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("config.json")).unwrap()).unwrap()
    }

    pub fn set_config(&self, cfg: &serde_json::Value) {
        std::fs::write(self.dir.join("config.json"), serde_json::to_vec_pretty(cfg).unwrap()).unwrap();
    }

    /// `tug runtime --root <state> ARGS…` (with `--bundle` added for create/run).
    ///
    /// Output goes through files, not pipes: a created or detached container inherits the
    /// runtime's stdio and would hold a pipe open long after the runtime exits.
    pub fn rt(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(tug());
        cmd.arg("runtime").arg("--root").arg(&self.state);
        if matches!(args.first(), Some(&"create") | Some(&"run")) {
            cmd.arg(args[0]).arg("--bundle").arg(&self.dir.path).args(&args[1..]);
        } else {
            cmd.args(args);
        }
        let n = N.fetch_add(1, Ordering::Relaxed);
        let (out_path, err_path) = (self.dir.join(&format!(".out{n}")), self.dir.join(&format!(".err{n}")));
        let out_f = std::fs::File::create(&out_path).unwrap();
        let err_f = std::fs::File::create(&err_path).unwrap();
        let status = cmd.stdin(std::process::Stdio::null()).stdout(out_f).stderr(err_f).status().unwrap();
        let o = Output { status, stdout: std::fs::read(&out_path).unwrap(), stderr: std::fs::read(&err_path).unwrap() };
        let _ = std::fs::remove_file(out_path);
        let _ = std::fs::remove_file(err_path);
        o
    }

    /// The OCI state of `id`.
    pub fn state_of(&self, id: &str) -> serde_json::Value {
        let out = self.rt(&["state", id]);
        assert!(out.status.success(), "state: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The cgroup path the config asks for.
    pub fn cgroup_path(&self) -> String {
        self.config()["linux"]["cgroupsPath"].as_str().unwrap().to_string()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Never leave a container behind, whatever the test did.
        if let Ok(rd) = std::fs::read_dir(&self.state) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.rt(&["delete", "--force", &id]);
            }
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed ({:?}): stdout {} stderr {}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

/// A tugd on a private socket and data root, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Daemon {
    pub dir: Dir,
    pub socket: PathBuf,
    pub child: Option<std::process::Child>,
}

impl Daemon {
    pub fn start(tag: &str, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(tag, extra, &[])
    }

    /// As `start`, with extra environment for the daemon (and only for this first daemon: a
    /// restart does not carry it).
    pub fn start_with_env(tag: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dir = Dir::new(tag);
        let socket = dir.join("tugd.sock");
        let mut cmd = Command::new(tug());
        cmd.arg("daemon").arg("-H").arg(format!("unix://{}", socket.display()));
        cmd.arg("--data-root").arg(dir.join("root")).arg("--pidfile").arg(dir.join("tugd.pid"));
        cmd.args(extra);
        cmd.envs(env.iter().copied());
        let log = std::fs::File::create(dir.join("tugd.log")).unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log).stdin(std::process::Stdio::null());
        let child = cmd.spawn().unwrap();
        let d = Daemon { dir, socket, child: Some(child) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
            assert!(std::time::Instant::now() < deadline, "tugd did not start: {}", d.log());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        d
    }

    /// `kill -9` the daemon, leave it down for `down`, and start a new one on the same socket and
    /// data root.
    pub fn kill9_and_restart(&mut self, down: std::time::Duration) {
        self.kill9_and_restart_after(|| std::thread::sleep(down));
    }

    /// `kill -9` the daemon, run `between` while it is down, and start a new one.
    pub fn kill9_and_restart_after(&mut self, between: impl FnOnce()) {
        let mut c = self.child.take().unwrap();
        let _ = c.kill();
        let _ = c.wait();
        between();
        let mut cmd = Command::new(tug());
        cmd.arg("daemon").arg("-H").arg(format!("unix://{}", self.socket.display()));
        cmd.arg("--data-root").arg(self.dir.join("root")).arg("--pidfile").arg(self.dir.join("tugd.pid"));
        let log = std::fs::OpenOptions::new().append(true).open(self.dir.join("tugd.log")).unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log).stdin(std::process::Stdio::null());
        self.child = Some(cmd.spawn().unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.try_http(b"GET /_ping HTTP/1.1\r\nConnection: close\r\n\r\n").map(|r| r.0).unwrap_or(0) != 200 {
            assert!(std::time::Instant::now() < deadline, "tugd did not restart: {}", self.log());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tugd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// One raw HTTP exchange; returns (status, headers, body).
    pub fn http(&self, request: &[u8]) -> (u16, String, Vec<u8>) {
        self.try_http(request).unwrap_or_else(|e| panic!("cannot reach tugd: {e}\n{}", self.log()))
    }

    /// Like `http`, without panicking when the daemon is unreachable (for cleanup).
    pub fn try_http(&self, request: &[u8]) -> std::io::Result<(u16, String, Vec<u8>)> {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
        s.write_all(request)?;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, _) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let at = head.len() + 4;
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((status, head.to_string(), buf.get(at.min(buf.len())..).unwrap_or_default().to_vec()))
    }

    /// Runs the real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the docker CLI is required for these tests")
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            if std::time::Instant::now() > deadline {
                let _ = c.kill();
                return c.wait().unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Containers outlive the daemon by design: remove them first, or their monitors
            // would keep running after the test.
            let body = self.try_http(b"GET /containers/json?all=1 HTTP/1.1\r\nConnection: close\r\n\r\n").map(|r| r.2);
            let list: serde_json::Value = serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
            for c in list.as_array().into_iter().flatten() {
                if let Some(id) = c["Id"].as_str() {
                    let req = format!("DELETE /containers/{id}?force=1 HTTP/1.1\r\nConnection: close\r\n\r\n");
                    let _ = self.try_http(req.as_bytes());
                }
            }
            self.stop();
        }
    }
}
