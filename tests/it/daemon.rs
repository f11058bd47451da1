//! The daemon's API surface: negotiation headers, errors, listeners, signals.

use crate::util::{ok, stderr, Daemon};

#[test]
fn ping_version_info_and_errors() {
    let d = Daemon::start("ping", &[]);
    let (status, head, body) = d.http(b"HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 200);
    for h in [
        "Api-Version: 1.44",
        "Ostype: linux",
        "Docker-Experimental: false",
        "Builder-Version: 1",
        "Swarm: inactive",
        "Cache-Control: no-cache, no-store, must-revalidate",
        "Pragma: no-cache",
    ] {
        assert!(head.contains(h), "missing {h}: {head}");
    }
    assert!(body.is_empty(), "HEAD must have no body");
    let (status, _, body) = d.http(b"GET /v1.44/_ping HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!((status, body.as_slice()), (200, &b"OK"[..]));
    let (status, _, body) = d.http(b"GET /v1.51/version HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 200, "a newer client version is served, not refused");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["ApiVersion"], "1.44");
    assert_eq!(v["MinAPIVersion"], "1.24");
    let (status, _, body) = d.http(b"GET /v1.12/version HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("too old"));
    let (status, head, body) = d.http(b"GET /nonsense HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 404);
    assert!(head.contains("Content-Type: application/json"));
    let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(e["message"].as_str().unwrap().contains("page not found"));
    let (status, _, _) = d.http(b"THIS IS NOT HTTP\r\n\r\n");
    assert_eq!(status, 400);
    // Keep-alive: two requests on one connection, both answered.
    let (_, _, body) = d.http(b"GET /_ping HTTP/1.1\r\n\r\nGET /_ping HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(String::from_utf8_lossy(&body).contains("OK"), "{}", String::from_utf8_lossy(&body));
    // The real docker CLI negotiates and reads /version and /info.
    let out = ok(d.docker(&["version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}"]));
    assert_eq!(out.trim(), "1.44 linux");
    let out = ok(d.docker(&["info", "--format", "{{.Containers}} {{.Images}} {{.CgroupVersion}} {{.DockerRootDir}}"]));
    assert_eq!(out.trim(), format!("0 0 1 {}", d.dir.join("root").display()));
}

#[test]
fn listeners_lock_and_signals() {
    let mut d = Daemon::start("sig", &[]);
    // One daemon per data root.
    let out = std::process::Command::new(crate::util::tug())
        .args(["daemon", "-H"])
        .arg(format!("unix://{}", d.dir.join("other.sock").display()))
        .arg("--data-root")
        .arg(d.dir.join("root"))
        .arg("--pidfile")
        .arg(d.dir.join("other.pid"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot lock data root"), "{}", stderr(&out));
    // Plain TCP on a non-loopback address needs the explicit flag.
    let out = std::process::Command::new(crate::util::tug())
        .args(["daemon", "-H", "tcp://0.0.0.0:23750", "--data-root"])
        .arg(d.dir.join("root2"))
        .output()
        .unwrap();
    assert!(stderr(&out).contains("without TLS"), "{}", stderr(&out));
    // The socket is 0660.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777, 0o660);
    let pidfile = d.dir.join("tugd.pid");
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), d.pid().to_string());
    // SIGHUP reloads (and is not fatal); SIGTERM stops cleanly and removes socket and pid file.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid()), nix::sys::signal::Signal::SIGHUP).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(d.http(b"GET /_ping HTTP/1.1\r\nConnection: close\r\n\r\n").0, 200);
    let st = d.stop();
    assert!(st.success(), "{st:?}");
    assert!(!d.socket.exists());
    assert!(!pidfile.exists());
}

#[test]
fn tcp_loopback_and_config_file() {
    let dir = crate::util::Dir::new("tcp");
    let cfg = dir.join("daemon.json");
    std::fs::write(&cfg, r#"{"hosts": ["tcp://127.0.0.1:23751"], "log-opts": {"max-size": "1m"}}"#).unwrap();
    let mut child = std::process::Command::new(crate::util::tug())
        .args(["daemon", "--config-file"])
        .arg(&cfg)
        .arg("--data-root")
        .arg(dir.join("root"))
        .arg("--pidfile")
        .arg(dir.join("pid"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut s = loop {
        if let Ok(s) = std::net::TcpStream::connect("127.0.0.1:23751") {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "no TCP listener");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    use std::io::{Read, Write};
    s.write_all(b"GET /_ping HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let _ = child.kill();
    let _ = child.wait();
    // A wrong type in daemon.json names the key.
    std::fs::write(&cfg, r#"{"log-opts": "big"}"#).unwrap();
    let out = std::process::Command::new(crate::util::tug())
        .args(["daemon", "--config-file"])
        .arg(&cfg)
        .arg("--data-root")
        .arg(dir.join("root"))
        .output()
        .unwrap();
    assert!(stderr(&out).contains("log-opts"), "{}", stderr(&out));
}
