//! The daemon as a registry client: the real docker CLI pushing to and pulling from `tug registry`
//! and Debian's `docker-registry` through tugd, login against an htpasswd registry, a pull resumed
//! after `kill -9` of the daemon (seen through a throttling proxy that records what it forwards),
//! and a fake registry that wants a Bearer token and serves a layer whose bytes do not match.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::util::{stderr, stdout, tug, Daemon, Dir};

fn digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "failed ({:?}): {} {}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

/// These tests take turns: each runs a daemon, a registry and containers on a two-core machine.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `tug registry serve` on a port the kernel picked, killed on drop.
struct Registry {
    _dir: Dir,
    port: u16,
    child: Child,
}

impl Registry {
    fn start(tag: &str, extra: &[&str]) -> Registry {
        let dir = Dir::new(tag);
        let log = dir.join("registry.log");
        let child = Command::new(tug())
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(dir.join("root"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let port = text
                .lines()
                .find(|l| l.contains("serving"))
                .and_then(|l| l.rsplit(':').next())
                .and_then(|p| p.split_whitespace().next())
                .and_then(|p| p.parse().ok());
            if let Some(p) = port {
                break p;
            }
            assert!(Instant::now() < deadline, "tug registry did not start: {text}");
            std::thread::sleep(Duration::from_millis(10));
        };
        Registry { _dir: dir, port, child }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's docker-registry (distribution 2.8) on a loopback port, killed by pid on drop.
struct Distribution {
    child: Child,
    port: u16,
    _dir: Dir,
}

impl Distribution {
    fn start() -> Distribution {
        let dir = Dir::new("pull-distribution");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("root").display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("out.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("err.log")).unwrap())
            .spawn()
            .expect("docker-registry is required (scripts/install-deps.sh)");
        let d = Distribution { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET on a fresh connection: (status, headers, body).
fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..at]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, buf[at..].to_vec())
}

/// A tar of `(name, bytes)` regular files, deterministic.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A docker-archive (legacy `docker save` form) of an image with these uncompressed layers.
fn docker_archive(path: &Path, tag: &str, layers: &[Vec<u8>]) -> String {
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_name = format!("{}.json", &digest(&config)[7..]);
    let mut files: Vec<(String, Vec<u8>)> = vec![(config_name.clone(), config.clone())];
    let mut names = Vec::new();
    for (l, d) in layers.iter().zip(&diff_ids) {
        let name = format!("{}/layer.tar", &d[7..]);
        files.push((name.clone(), l.clone()));
        names.push(name);
    }
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&json!([{"Config": config_name, "RepoTags": [tag], "Layers": names}])).unwrap(),
    ));
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    std::fs::write(path, tar_of(&refs)).unwrap();
    digest(&config)
}

/// The busybox layer (uncompressed tar) from the project's busybox image script.
fn busybox_layer(dir: &Dir) -> Vec<u8> {
    let out = dir.join("busybox.tar");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
    ok(Command::new(script).arg(&out).output().unwrap());
    let mut ar = tar::Archive::new(std::fs::File::open(&out).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy().ends_with("layer.tar") {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return v;
        }
    }
    panic!("no layer in {}", out.display());
}

fn busybox_tar(dir: &Dir) -> PathBuf {
    let out = dir.join("busybox.tar");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
    ok(Command::new(script).arg(&out).output().unwrap());
    out
}

/// The push, pull and run round trip the docker CLI does against one registry at `host`.
fn round_trip(d: &Daemon, work: &Dir, host: &str) {
    ok(d.docker(&["load", "-i", busybox_tar(work).to_str().unwrap()]));
    let img = format!("{host}/test/busybox:1");
    ok(d.docker(&["tag", "localhost/busybox", &img]));
    let out = ok(d.docker(&["push", &img]));
    assert!(out.contains(&format!("The push refers to repository [{host}/test/busybox]")), "{out}");
    assert!(out.contains(": Pushed"), "{out}");
    let pushed_digest = out
        .lines()
        .find_map(|l| l.strip_prefix("1: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line: {out}"))
        .to_string();
    // The stored layer was uncompressed (docker load of a plain save): it went out gzip'd.
    let port: u16 = host.rsplit(':').next().unwrap().parse().unwrap();
    let (st, _, body) =
        http_get(port, "/v2/test/busybox/manifests/1", &[("Accept", "application/vnd.oci.image.manifest.v1+json")]);
    assert_eq!(st, 200);
    assert_eq!(digest(&body), pushed_digest);
    let m: Value = serde_json::from_slice(&body).unwrap();
    assert!(m["layers"][0]["mediaType"].as_str().unwrap().ends_with("+gzip"), "{m}");
    let (st, _, blob) =
        http_get(port, &format!("/v2/test/busybox/blobs/{}", m["layers"][0]["digest"].as_str().unwrap()), &[]);
    assert_eq!((st, &blob[..2]), (200, &[0x1f, 0x8b][..]));

    let again = ok(d.docker(&["push", &img]));
    assert!(again.contains("Layer already exists"), "{again}");
    let other = format!("{host}/other/bb:2");
    ok(d.docker(&["tag", &img, &other]));
    let mounted = ok(d.docker(&["push", &other]));
    assert!(mounted.contains("Mounted from test/busybox"), "{mounted}");

    ok(d.docker(&["rmi", &img, &other, "localhost/busybox"]));
    assert_eq!(ok(d.docker(&["images", "-q"])), "");
    let out = ok(d.docker(&["pull", &img]));
    assert!(out.contains("1: Pulling from test/busybox"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {pushed_digest}")), "{out}");
    assert!(out.contains(&format!("Status: Downloaded newer image for {img}")), "{out}");
    let run = ok(d.docker(&["run", "--rm", "--network", "none", &img, "sh", "-c", "echo pulled-and-ran"]));
    assert_eq!(run, "pulled-and-ran\n");
    let out = ok(d.docker(&["pull", &img]));
    assert!(out.contains(&format!("Status: Image is up to date for {img}")), "{out}");
    let by_digest = format!("{host}/test/busybox@{pushed_digest}");
    let out = ok(d.docker(&["pull", &by_digest]));
    assert!(out.contains("Image is up to date"), "{out}");
    let digests = ok(d.docker(&["images", "--digests", "--format", "{{.Repository}} {{.Digest}}"]));
    assert!(digests.contains(&format!("{host}/test/busybox {pushed_digest}")), "{digests}");

    // An unknown tag is docker's error with exit code 1; nothing changes.
    let o = d.docker(&["pull", &format!("{host}/test/busybox:nope")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("manifest unknown"), "{}", stderr(&o));
    let o = d.docker(&["push", &format!("{host}/test/nothere:1")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("An image does not exist locally with the tag"), "{}", stderr(&o));
}

#[test]
fn docker_cli_push_pull_run_with_tug_registry() {
    let _turn = serial();
    let reg = Registry::start("pull-reg", &[]);
    let d = Daemon::start("pull-tugreg", &[]);
    let work = Dir::new("pull-work");
    round_trip(&d, &work, &format!("127.0.0.1:{}", reg.port));
    // Pull and push events.
    let until = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    let until = until.to_string();
    let ev = ok(d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.TimeNano}}",
    ]));
    let host = format!("127.0.0.1:{}", reg.port);
    assert!(ev.contains(&format!("push {host}/test/busybox:1")), "{ev}");
    assert!(ev.contains(&format!("pull {host}/test/busybox:1")), "{ev}");
}

#[test]
fn docker_cli_push_pull_run_with_distribution() {
    let _turn = serial();
    let dist = Distribution::start();
    let d = Daemon::start("pull-dist", &[]);
    let work = Dir::new("pull-dist-work");
    round_trip(&d, &work, &format!("127.0.0.1:{}", dist.port));
}

#[test]
fn login_push_pull_with_htpasswd() {
    let _turn = serial();
    let dir = Dir::new("pull-auth");
    let hash = bcrypt::hash("s3cret", 4).unwrap().replacen("$2b$", "$2y$", 1);
    std::fs::write(dir.join("htpasswd"), format!("alice:{hash}\n")).unwrap();
    let reg = Registry::start("pull-auth-reg", &["--htpasswd", dir.join("htpasswd").to_str().unwrap()]);
    let host = format!("127.0.0.1:{}", reg.port);
    let d = Daemon::start("pull-auth", &[]);
    ok(d.docker(&["load", "-i", busybox_tar(&dir).to_str().unwrap()]));
    let img = format!("{host}/private/bb:1");
    ok(d.docker(&["tag", "localhost/busybox", &img]));
    // Without credentials the registry refuses.
    let o = d.docker(&["push", &img]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("unauthorized"), "{}", stderr(&o));
    // A wrong password: docker's wording, and nothing stored.
    let login = |pass: &str| {
        let mut c = Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .env("DOCKER_CONFIG", d.dir.join("docker-config"))
            .args(["login", &host, "-u", "alice", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(format!("{pass}\n").as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    };
    let o = login("wrong");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("login attempt to http://{host}/v2/ failed with status: 401 Unauthorized")),
        "{}",
        stderr(&o)
    );
    let o = login("s3cret");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
    let cfg: Value = serde_json::from_slice(&std::fs::read(d.dir.join("docker-config/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["auths"][&host]["auth"], "YWxpY2U6czNjcmV0", "{cfg}");
    let out = ok(d.docker(&["push", &img]));
    assert!(out.contains("1: digest: sha256:"), "{out}");
    ok(d.docker(&["rmi", &img, "localhost/busybox"]));
    let out = ok(d.docker(&["pull", &img]));
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(ok(d.docker(&["run", "--rm", "--network", "none", &img, "echo", "private"])), "private\n");
    // tug's own client reads the same config.json.
    let tug_client = |args: &[&str]| {
        Command::new(tug())
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .env("DOCKER_CONFIG", d.dir.join("docker-config"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    ok(d.docker(&["rmi", &img]));
    let out = ok(tug_client(&["pull", &img]));
    assert!(out.contains("Downloaded newer image") && out.trim_end().ends_with(&img), "{out}");
    let out = ok(tug_client(&["push", &img]));
    assert!(out.contains("Layer already exists"), "{out}");
    let out = ok(tug_client(&["logout", &host]));
    assert_eq!(out, format!("Removing login credentials for {host}\n"));
    let o = tug_client(&["pull", &format!("{host}/private/bb:2")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("pull access denied"), "{}", stderr(&o));
    // tug login with a wrong password, then the right one.
    let o = tug_client(&["login", &host, "-u", "alice", "-p", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("401 Unauthorized"), "{}", stderr(&o));
    let out = ok(tug_client(&["login", &host, "-u", "alice", "-p", "s3cret"]));
    assert_eq!(out, "Login Succeeded\n");
}

/// A TCP proxy to `upstream` that forwards at most `rate` bytes a second towards the client,
/// counts them, and keeps what clients sent (request lines and headers).
struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    requests: Arc<Mutex<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: u16, rate: u64) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (st, sv, rq) = (stop.clone(), served.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            while !st.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((client, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let (mut c_in, mut u_out) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                let rq = rq.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || u_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        rq.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = u_out.shutdown(std::net::Shutdown::Write);
                });
                let (mut u_in, mut c_out, sv, st) = (up, client, sv.clone(), st.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = u_in.read(&mut buf) {
                        if n == 0 || st.load(Ordering::Relaxed) || c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sv.fetch_add(n as u64, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Proxy { port, stop, served, requests, thread: Some(thread) }
    }

    fn reset(&self) {
        self.served.store(0, Ordering::Relaxed);
        self.requests.lock().unwrap().clear();
    }

    fn request_text(&self) -> String {
        String::from_utf8_lossy(&self.requests.lock().unwrap()).into_owned()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `n` bytes of xorshift noise: gzip cannot shrink it.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// The largest ingest file of a pull in `root`, with its size.
fn ingest_file(root: &Path) -> Option<(PathBuf, u64)> {
    let mut best: Option<(PathBuf, u64)> = None;
    for e in std::fs::read_dir(root.join("images/ingest")).ok()?.flatten() {
        let data = e.path().join("data");
        if let Ok(m) = std::fs::metadata(&data) {
            if best.as_ref().is_none_or(|(_, n)| m.len() > *n) {
                best = Some((data, m.len()));
            }
        }
    }
    best
}

#[test]
fn pull_resumes_after_kill9_with_range() {
    let _turn = serial();
    let work = Dir::new("pull-resume");
    let big = noise(64 << 20);
    let big_sum = format!("{:x}", Sha256::digest(&big));
    let layers = vec![busybox_layer(&work), tar_of(&[("big.bin", &big)])];
    drop(big);
    let reg = Registry::start("pull-resume-reg", &[]);
    let tag = format!("127.0.0.1:{}/test/big:1", reg.port);
    let id = docker_archive(&work.join("big.tar"), &tag, &layers);
    drop(layers);
    let mut d = Daemon::start("pull-resume", &[]);
    ok(d.docker(&["load", "-i", work.join("big.tar").to_str().unwrap()]));
    let started = Instant::now();
    let out = ok(d.docker(&["push", &tag]));
    assert!(out.contains("1: digest:"), "{out}");
    eprintln!("push of the 64 MiB image: {:?}", started.elapsed());
    ok(d.docker(&["rmi", &tag]));

    // Pull through a proxy at 16 MiB/s so the 64 MiB layer is caught part-written.
    let proxy = Proxy::start(reg.port, 16 << 20);
    let via = format!("127.0.0.1:{}/test/big:1", proxy.port);
    let mut pull = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .args(["pull", &via])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let root = d.dir.join("root");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some((_, n)) = ingest_file(&root) {
            if n > 16 << 20 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no partial ingest file appeared: {}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    d.kill9_and_restart(Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(30);
    while pull.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "docker pull did not end with its daemon");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (partial, have) = ingest_file(&root).expect("the partial download survives the kill");
    let total = std::fs::metadata(&partial).unwrap().len();
    assert!(have > 16 << 20 && have < 64 << 20, "{have}");
    assert_eq!(ok(d.docker(&["images", "-q", &via])), "", "nothing visible after the interrupted pull");

    proxy.reset();
    let out = ok(d.docker(&["pull", &via]));
    assert!(out.contains("Downloaded newer image"), "{out}");
    let sent = proxy.request_text();
    assert!(
        sent.contains(&format!("Range: bytes={total}-")) || sent.contains(&format!("range: bytes={total}-")),
        "{sent}"
    );
    let served = proxy.served.load(Ordering::Relaxed);
    let layer_size = 64u64 << 20;
    // Beside the rest of the big layer: the manifest, the config and the small busybox layer
    // (about 1.3 MiB gzipped), which may not have been complete at the kill.
    assert!(
        served < layer_size - total + (4 << 20),
        "only the rest is fetched: served {served} after {total} of ~{layer_size} bytes"
    );
    assert!(d.log().contains("resuming sha256:") && d.log().contains(&format!("at byte {total}")), "{}", d.log());
    let inspect: Value = serde_json::from_str(&ok(d.docker(&["image", "inspect", &via]))).unwrap();
    assert_eq!(inspect[0]["Id"], id.as_str());
    let sum = ok(d.docker(&["run", "--rm", "--network", "none", &via, "sha256sum", "/big.bin"]));
    assert!(sum.starts_with(&big_sum), "{sum}");
    assert!(ingest_file(&root).is_none(), "ingest is cleaned after the commit");
}

/// A fake registry that wants a Bearer token (from its own realm) and serves one good image and
/// one whose layer bytes do not match the manifest's digest.
struct Fake {
    port: u16,
    stop: Arc<AtomicBool>,
    tokens_issued: Arc<AtomicU64>,
}

impl Fake {
    fn start() -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let layer = tar_of(&[("hello.txt", b"hello\n")]);
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
        }))
        .unwrap();
        let manifest = |layer_digest: &str| {
            serde_json::to_vec(&json!({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
            }))
            .unwrap()
        };
        let good = manifest(&digest(&layer));
        // Same size, other digest: the registry will serve `layer` for it.
        let bad_digest = digest(b"something else");
        let bad = manifest(&bad_digest);
        let stop = Arc::new(AtomicBool::new(false));
        let tokens = Arc::new(AtomicU64::new(0));
        let (st, tk) = (stop.clone(), tokens.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !st.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut w = c;
                // Keep-alive: one request after another on this connection (bounded).
                for _ in 0..100 {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let mut auth = String::new();
                    let mut len = 0usize;
                    for _ in 0..100 {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap_or((&h, ""));
                        match k.to_ascii_lowercase().as_str() {
                            "authorization" => auth = v.trim().to_string(),
                            "content-length" => len = v.trim().parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                    let mut skip = vec![0u8; len];
                    let _ = r.read_exact(&mut skip);
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let head_only = line.starts_with("HEAD");
                    let (status, ctype, body, extra): (u16, &str, Vec<u8>, String) = if path.starts_with("/token") {
                        tk.fetch_add(1, Ordering::Relaxed);
                        (200, "application/json", br#"{"token":"t0ken"}"#.to_vec(), String::new())
                    } else if auth != "Bearer t0ken" {
                        let challenge = format!(
                            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\"\r\n"
                        );
                        (
                            401,
                            "application/json",
                            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
                            challenge,
                        )
                    } else if path == "/v2/" {
                        (200, "application/json", b"{}".to_vec(), String::new())
                    } else if path == "/v2/fake/img/manifests/good" {
                        (200, "application/vnd.oci.image.manifest.v1+json", good.clone(), String::new())
                    } else if path == "/v2/fake/img/manifests/bad" {
                        (200, "application/vnd.oci.image.manifest.v1+json", bad.clone(), String::new())
                    } else if path == format!("/v2/fake/img/blobs/{}", digest(&config)) {
                        (200, "application/octet-stream", config.clone(), String::new())
                    } else if path == format!("/v2/fake/img/blobs/{}", digest(&layer))
                        || path == format!("/v2/fake/img/blobs/{bad_digest}")
                    {
                        (200, "application/octet-stream", layer.clone(), String::new())
                    } else {
                        (
                            404,
                            "application/json",
                            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
                            String::new(),
                        )
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}\r\n",
                        body.len()
                    );
                    if w.write_all(head.as_bytes()).is_err() || (!head_only && w.write_all(&body).is_err()) {
                        break;
                    }
                }
            }
        });
        Fake { port, stop, tokens_issued: tokens }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn bearer_token_and_a_wrong_digest_changes_nothing() {
    let _turn = serial();
    let fake = Fake::start();
    let d = Daemon::start("pull-fake", &[]);
    let host = format!("127.0.0.1:{}", fake.port);
    let good = format!("{host}/fake/img:good");
    let out = ok(d.docker(&["pull", &good]));
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert!(fake.tokens_issued.load(Ordering::Relaxed) >= 1, "a Bearer token was fetched");
    ok(d.docker(&["rmi", &good]));
    let before: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(d.dir.join("root/images/blobs/sha256"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let index_before = std::fs::read(d.dir.join("root/images/index.json")).unwrap();

    let o = d.docker(&["pull", &format!("{host}/fake/img:bad")]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("filesystem layer verification failed for digest"), "{}", stderr(&o));
    let after: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(d.dir.join("root/images/blobs/sha256"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(before, after, "no blob committed");
    assert_eq!(std::fs::read(d.dir.join("root/images/index.json")).unwrap(), index_before);
    assert_eq!(ok(d.docker(&["images", "-q"])), "");
    assert!(ingest_file(&d.dir.join("root")).is_none(), "the bad download is not kept");
    // Unknown manifest: an error answer, exit code 1.
    let o = d.docker(&["pull", &format!("{host}/fake/img:missing")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("manifest for {host}/fake/img:missing not found: manifest unknown")),
        "{}",
        stderr(&o)
    );
}
