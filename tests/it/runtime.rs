//! The OCI runtime through its command line: lifecycle, isolation, security defaults, limits,
//! hooks, bad input, and cleanup.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{ok, stderr, stdout, unique, Bundle, Dir};

fn cgroup_dirs(path: &str) -> Vec<std::path::PathBuf> {
    ["memory", "pids", "cpu", "freezer", "devices"]
        .iter()
        .map(|c| Path::new("/sys/fs/cgroup").join(c).join(path.trim_start_matches('/')))
        .collect()
}

fn host_mounts_mentioning(p: &Path) -> usize {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines().filter(|l| l.contains(&*p.to_string_lossy())).count()
}

fn wait_status(b: &Bundle, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = b.state_of(id);
        if s["status"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never became {want}: {s}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn lifecycle_states_kill_delete_and_nothing_left() {
    let b = Bundle::new("life", &["sleep", "1000"], |_| {});
    let id = unique("life");
    let pidfile = b.dir.join("pid");
    ok(b.rt(&["create", "--pid-file", pidfile.to_str().unwrap(), &id]));
    let s = b.state_of(&id);
    assert_eq!(s["status"], "created");
    assert_eq!(s["ociVersion"], "1.2.0");
    assert_eq!(s["bundle"], b.dir.path.to_str().unwrap());
    let pid = s["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // The process waiting for start runs from the sealed copy, not the host binary.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.to_string_lossy().starts_with("/memfd:tug-init"), "{exe:?}");
    let list = ok(b.rt(&["list", "--format", "json"]));
    assert!(list.contains(&id), "{list}");
    ok(b.rt(&["start", &id]));
    assert_eq!(b.state_of(&id)["status"], "running");
    let started = stderr(&b.rt(&["start", &id]));
    assert!(started.contains("cannot start"), "{started}");
    ok(b.rt(&["pause", &id]));
    assert_eq!(b.state_of(&id)["status"], "paused");
    ok(b.rt(&["resume", &id]));
    assert_eq!(b.state_of(&id)["status"], "running");
    let ps: Vec<i64> = serde_json::from_str(&ok(b.rt(&["ps", "--format", "json", &id]))).unwrap();
    assert_eq!(ps, vec![pid]);
    let refused = b.rt(&["delete", &id]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("not stopped"), "{}", stderr(&refused));
    ok(b.rt(&["kill", &id, "KILL"]));
    wait_status(&b, &id, "stopped");
    assert_eq!(b.state_of(&id)["pid"], 0);
    ok(b.rt(&["delete", &id]));
    let gone = b.rt(&["state", &id]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("does not exist"), "{}", stderr(&gone));
    for d in cgroup_dirs(&b.cgroup_path()) {
        assert!(!d.exists(), "cgroup left behind: {}", d.display());
    }
    assert_eq!(host_mounts_mentioning(&b.dir.path), 0, "mounts left behind");
    assert!(!b.state.join(&id).exists());
}

#[test]
fn run_is_pid1_isolated_and_propagates_exit_code() {
    let b = Bundle::new(
        "iso",
        &["sh", "-c", "echo pid=$$; hostname; mount -t tmpfs none /mnt && echo mounted; exit 3"],
        |c| {
            c["hostname"] = "isolated".into();
            // mount(2) needs CAP_SYS_ADMIN, which Docker's default set leaves out.
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set].as_array_mut().unwrap().push("CAP_SYS_ADMIN".into());
            }
        },
    );
    std::fs::create_dir_all(b.dir.join("rootfs/mnt")).unwrap();
    let host_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let before = host_mounts_mentioning(Path::new("/mnt"));
    let out = b.rt(&["run", &unique("iso")]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "pid=1\nisolated\nmounted\n");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(), host_hostname);
    assert_eq!(host_mounts_mentioning(Path::new("/mnt")), before, "a container mount reached the host");
    assert_eq!(host_mounts_mentioning(&b.dir.path), 0);
}

#[test]
fn default_capabilities_are_dockers_14() {
    let b = Bundle::new(
        "caps",
        &["sh", "-c", "grep -E '^Cap(Eff|Prm|Bnd|Inh|Amb)' /proc/self/status; chown 1000 /tmp && echo chowned"],
        |_| {},
    );
    let out = ok(b.rt(&["run", &unique("caps")]));
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapPrm:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    assert!(out.contains("chowned"), "{out}");
    // Without CAP_CHOWN, chown is refused.
    let b = Bundle::new("nocaps", &["sh", "-c", "chown 1000 /tmp && echo chowned"], |c| {
        c["process"]["capabilities"] =
            json!({"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []});
    });
    let out = b.rt(&["run", &unique("nocaps")]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("Operation not permitted"), "{}", stderr(&out));
}

#[test]
fn masked_and_readonly_paths() {
    // Files masked by /dev/null read empty; directories get an empty tmpfs; read-only paths refuse writes.
    let script = "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
                  echo x > /proc/sys/kernel/domainname 2>/dev/null && echo wrote-sys || echo ro-sys; \
                  echo x > /proc/sysrq-trigger 2>/dev/null && echo wrote-sysrq || echo ro-sysrq";
    let b = Bundle::new("mask", &["sh", "-c", script], |_| {});
    assert!(
        std::fs::read_to_string("/proc/timer_list").map(|s| !s.is_empty()).unwrap_or(false),
        "host must have a non-empty /proc/timer_list"
    );
    let out = ok(b.rt(&["run", &unique("mask")]));
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, vec!["0", "0", "ro-sys", "ro-sysrq"], "{out}");
}

#[test]
fn seccomp_denies_what_the_profile_forbids() {
    let b = Bundle::new("seccomp", &["sh", "-c", "mkdir /tmp/a && echo made; echo still-running"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let out = b.rt(&["run", &unique("seccomp")]);
    assert_eq!(stdout(&out), "still-running\n", "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("Operation not permitted"), "{}", stderr(&out));
    // The same container without the rule can mkdir: the filter, not something else, refused it.
    let mut cfg = b.config();
    cfg["linux"]["seccomp"]["syscalls"] = json!([]);
    b.set_config(&cfg);
    assert_eq!(ok(b.rt(&["run", &unique("seccomp")])), "made\nstill-running\n");
}

#[test]
fn rlimits_user_cwd_env_and_readonly_root() {
    let b = Bundle::new(
        "proc",
        &[
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn; id -u; id -g; id -G; pwd; echo $FOO; touch /x 2>/dev/null && echo rw || echo ro",
        ],
        |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
            c["process"]["cwd"] = "/tmp".into();
            c["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
            c["root"]["readonly"] = true.into();
        },
    );
    let out = ok(b.rt(&["run", &unique("proc")]));
    assert_eq!(out, "123\n456\n1000\n1000\n1000 5\n/tmp\nbar\nro\n");
}

#[test]
fn hooks_run_in_order() {
    let b = Bundle::new("hooks", &["true"], |_| {});
    let log = b.dir.join("hooks.log");
    std::fs::write(&log, "").unwrap();
    std::fs::create_dir_all(b.dir.join("rootfs/log")).unwrap();
    let host_hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo {name} >> {}", log.display())]});
    let mut cfg = b.config();
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/log", "type": "bind", "source": b.dir.path, "options": ["rbind"]}));
    cfg["hooks"] = json!({
        "prestart": [host_hook("prestart")],
        "createRuntime": [host_hook("createRuntime")],
        "createContainer": [host_hook("createContainer")],
        // startContainer runs inside the container: its path and file are the container's.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer >> /log/hooks.log"]}],
        "poststart": [host_hook("poststart")],
        "poststop": [host_hook("poststop")],
    });
    b.set_config(&cfg);
    ok(b.rt(&["run", &unique("hooks")]));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\npoststop\n"
    );
    // A failing createRuntime hook fails create and leaves nothing.
    cfg["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    b.set_config(&cfg);
    let id = unique("hooks");
    let out = b.rt(&["create", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("createRuntime hook #0"), "{}", stderr(&out));
    assert!(!b.state.join(&id).exists());
}

#[test]
fn resources_reach_the_cgroup() {
    let b = Bundle::new("res", &["sleep", "1000"], |c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 33554432},
            "pids": {"limit": 10},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000}
        });
    });
    let id = unique("res");
    ok(b.rt(&["run", "--detach", &id]));
    let cg = b.cgroup_path();
    let read = |ctrl: &str, file: &str| {
        std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(ctrl).join(cg.trim_start_matches('/')).join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    // v1 controllers on this kind of host; the v2 mapping is unit-tested against a fake tree.
    assert_eq!(read("memory", "memory.limit_in_bytes"), "33554432");
    assert_eq!(read("pids", "pids.max"), "10");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    let pid = b.state_of(&id)["pid"].as_i64().unwrap();
    assert!(read("pids", "cgroup.procs").lines().any(|l| l == pid.to_string()));
    // A fork bomb stops at the pids limit.
    let out = b.rt(&["exec", &id, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done 2>&1; wait"]);
    assert!(
        stdout(&out).contains("can't fork") || stderr(&out).contains("can't fork"),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );
    ok(b.rt(&["delete", "--force", &id]));
    for d in cgroup_dirs(&cg) {
        assert!(!d.exists(), "cgroup left behind: {}", d.display());
    }
}

#[test]
fn exec_joins_the_container() {
    let b = Bundle::new("exec", &["sleep", "1000"], |c| {
        c["hostname"] = "inside".into();
    });
    let id = unique("exec");
    ok(b.rt(&["run", "-d", &id]));
    let out = ok(b.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; grep CapEff /proc/self/status",
    ]));
    assert_eq!(out, "inside\nsleep 1000 \nCapEff:\t00000000a80425fb\n");
    let out = b.rt(&["exec", &id, "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    // --process FILE, as conmon and containerd call it, with a pid file and --detach.
    let proc_file = b.dir.join("process.json");
    std::fs::write(
        &proc_file,
        json!({"args": ["sleep", "30"], "cwd": "/tmp", "env": ["PATH=/bin"], "user": {"uid": 1000, "gid": 1000}})
            .to_string(),
    )
    .unwrap();
    let pidfile = b.dir.join("exec.pid");
    ok(b.rt(&[
        "exec",
        "--detach",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "--process",
        proc_file.to_str().unwrap(),
        &id,
    ]));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("Uid:\t1000\t1000\t1000\t1000"), "{status}");
    let ps: Vec<i32> = serde_json::from_str(&ok(b.rt(&["ps", "--format", "json", &id]))).unwrap();
    assert!(ps.contains(&pid), "{ps:?} lacks {pid}");
    let missing = b.rt(&["exec", &id, "no-such-binary"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("executable file not found"), "{}", stderr(&missing));
    ok(b.rt(&["kill", "--all", &id, "9"]));
    wait_status(&b, &id, "stopped");
    let stopped = b.rt(&["exec", &id, "true"]);
    assert!(stderr(&stopped).contains("stopped"), "{}", stderr(&stopped));
    ok(b.rt(&["delete", &id]));
}

/// Receives the pty master runc-style: connect, SCM_RIGHTS.
fn recv_fd(listener: &UnixListener) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this descriptor for us.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no descriptor received");
}

#[test]
fn terminal_through_console_socket() {
    let b = Bundle::new("tty", &["sh", "-c", "tty; stty size; echo done"], |c| {
        c["process"]["terminal"] = true.into();
        c["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    });
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = unique("tty");
    let t = std::thread::spawn({
        let l = listener.try_clone().unwrap();
        move || recv_fd(&l)
    });
    ok(b.rt(&["create", "--console-socket", sock.to_str().unwrap(), &id]));
    let master = t.join().unwrap();
    ok(b.rt(&["start", &id]));
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&out).contains("done") && Instant::now() < deadline {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("30 100"), "{out}");
    // Terminal without a console socket is refused at create, leaving nothing.
    let id2 = unique("tty");
    let r = b.rt(&["create", &id2]);
    assert!(stderr(&r).contains("console socket"), "{}", stderr(&r));
    assert!(!b.state.join(&id2).exists());
}

#[test]
fn host_binary_is_not_reachable_through_proc_exe() {
    let host_bin = std::fs::read(crate::util::tug()).unwrap();
    // Container A is created, not started: its pid 1 is still tug-init, the widest window.
    let a = Bundle::new("cve-a", &["sleep", "1000"], |_| {});
    let id_a = unique("cve-a");
    ok(a.rt(&["create", &id_a]));
    let pid_a = a.state_of(&id_a)["pid"].as_i64().unwrap();
    // From the host, even as root, the sealed copy cannot be written.
    let w = std::fs::OpenOptions::new().write(true).open(format!("/proc/{pid_a}/exe"));
    if let Ok(mut f) = w {
        use std::io::Write;
        assert!(f.write_all(b"pwned").is_err(), "the sealed memfd accepted a write");
    }
    // Container B shares A's pid namespace (as a pod would) and attacks pid 1 through /proc.
    let script = "readlink /proc/1/exe && echo READLINK-OK; cat /proc/1/exe > /dev/null && echo READ-OK; echo x >> /proc/1/exe && echo WRITE-OK; echo finished";
    let b = Bundle::new("cve-b", &["sh", "-c", script], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
        ns.push(json!({"type": "pid", "path": format!("/proc/{pid_a}/ns/pid")}));
    });
    let out = b.rt(&["run", &unique("cve-b")]);
    let text = stdout(&out);
    assert!(text.contains("finished"), "{text} {}", stderr(&out));
    for bad in ["READLINK-OK", "READ-OK", "WRITE-OK"] {
        assert!(!text.contains(bad), "{bad}: {text}");
    }
    // The same attack in a loop while `exec` runs into A: never a success.
    ok(a.rt(&["start", &id_a]));
    let loop_script = "end=$(( $(date +%s) + 4 )); while [ $(date +%s) -lt $end ]; do for e in /proc/[0-9]*/exe; do \
        l=$(readlink $e 2>/dev/null); case \"$l\" in *tug*|*memfd*) echo SEEN $l; echo x >> $e 2>/dev/null && echo WRITE-OK $l;; esac; done; done; echo finished";
    let watcher = Bundle::new("cve-w", &["sh", "-c", loop_script], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
        ns.push(json!({"type": "pid", "path": format!("/proc/{pid_a}/ns/pid")}));
    });
    let wid = unique("cve-w");
    let handle = std::thread::spawn(move || {
        let out = watcher.rt(&["run", &wid]);
        stdout(&out)
    });
    for _ in 0..30 {
        ok(a.rt(&["exec", &id_a, "true"]));
    }
    let text = handle.join().unwrap();
    assert!(text.contains("finished"), "{text}");
    assert!(!text.contains("WRITE-OK"), "{text}");
    assert!(!text.contains("SEEN"), "a tug process was visible to the container: {text}");
    assert_eq!(std::fs::read(crate::util::tug()).unwrap(), host_bin, "the host binary changed");
}

#[test]
fn bad_config_fails_naming_the_field_and_leaves_nothing() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("type", Box::new(|c| c["process"]["user"]["uid"] = "root".into()), "process.user.uid"),
        (
            "ns",
            Box::new(|c| c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "bogus"}))),
            "linux.namespaces[6].type",
        ),
        ("rootfs", Box::new(|c| c["root"]["path"] = "/nonexistent/rootfs".into()), "root.path"),
        (
            "rlimit",
            Box::new(|c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])),
            "process.rlimits[0].type",
        ),
        ("args", Box::new(|c| c["process"]["args"] = json!([])), "process.args"),
    ];
    for (tag, edit, field) in cases {
        let b = Bundle::new("bad", &["true"], |c| edit(c));
        let id = unique(tag);
        let out = b.rt(&["create", &id]);
        assert!(!out.status.success(), "{tag}: create succeeded");
        assert!(stderr(&out).contains(field), "{tag}: error does not name {field}: {}", stderr(&out));
        assert!(!b.state.join(&id).exists(), "{tag}: state left");
        for d in cgroup_dirs(&b.cgroup_path()) {
            assert!(!d.exists(), "{tag}: cgroup left: {}", d.display());
        }
        assert_eq!(host_mounts_mentioning(&b.dir.path), 0, "{tag}: mounts left");
    }
    // A duplicate id names the id and leaves the first container intact.
    let b = Bundle::new("dup", &["sleep", "1000"], |_| {});
    let id = unique("dup");
    ok(b.rt(&["create", &id]));
    let out = b.rt(&["create", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("container with id exists: {id}")), "{}", stderr(&out));
    assert_eq!(b.state_of(&id)["status"], "created");
    ok(b.rt(&["delete", &id]));
    // A malformed id never becomes a path.
    let out = b.rt(&["create", "../escape"]);
    assert!(stderr(&out).contains("invalid container id"), "{}", stderr(&out));
    assert!(!b.dir.join("escape").exists());
}

#[test]
fn user_namespace_with_mappings() {
    let b = Bundle::new("userns", &["sh", "-c", "cat /proc/self/uid_map; id -u"], |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let dir = Dir::new("unused");
    drop(dir);
    let out = ok(b.rt(&["run", &unique("userns")]));
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, vec!["0", "100000", "65536", "0"], "{out}");
}

#[test]
fn time_namespace_offsets_and_oom_score() {
    let b = Bundle::new("timens", &["sh", "-c", "cut -d. -f1 /proc/uptime; cat /proc/self/oom_score_adj"], |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 10_000_000, "nanosecs": 0}});
        c["process"]["oomScoreAdj"] = 500.into();
    });
    let host_uptime: u64 = std::fs::read_to_string("/proc/uptime").unwrap().split('.').next().unwrap().parse().unwrap();
    let out = ok(b.rt(&["run", &unique("timens")]));
    let lines: Vec<&str> = out.lines().collect();
    let inside: u64 = lines[0].parse().unwrap();
    assert!(inside >= host_uptime + 10_000_000 && inside < host_uptime + 10_000_000 + 60, "{out}");
    assert_eq!(lines[1], "500");
}

#[test]
fn errors_reach_the_log_file_as_json() {
    let b = Bundle::new("log", &["true"], |c| c["process"]["user"]["uid"] = "x".into());
    let log = b.dir.join("runtime.log");
    let mut cmd = std::process::Command::new(crate::util::tug());
    cmd.args(["runtime", "--root"]).arg(&b.state).arg("--log").arg(&log).args([
        "--log-format",
        "json",
        "create",
        "--bundle",
    ]);
    let out = cmd.arg(&b.dir.path).arg(unique("log")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("process.user.uid"), "{line}");
    assert!(v["time"].as_str().unwrap().ends_with('Z'), "{line}");
}

#[test]
fn devices_ambient_caps_readonly_bind_and_sysctl() {
    let script = "ls -ln /dev/mydev | cut -c1; stat -c '%t:%T %a %u' /dev/mydev; grep CapAmb /proc/self/status; \
                  cat /data/f; touch /data/g 2>/dev/null && echo rw || echo ro; cat /proc/sys/net/ipv4/ip_forward";
    let b = Bundle::new("dev", &["sh", "-c", script], |c| {
        c["linux"]["devices"] =
            json!([{"type": "c", "path": "/dev/mydev", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 7}]);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        let caps = &mut c["process"]["capabilities"];
        caps["ambient"] = json!(["CAP_NET_BIND_SERVICE"]);
        caps["inheritable"] = json!(["CAP_NET_BIND_SERVICE"]);
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    let data = b.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "from-host\n").unwrap();
    let mut cfg = b.config();
    cfg["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro", "nosuid", "nodev"]}),
    );
    b.set_config(&cfg);
    let out = ok(b.rt(&["run", &unique("dev")]));
    // Device 1:3 (hex in stat), mode 640, owner 7; ambient = bit 10; the bind is read-only.
    assert_eq!(out, "c\n1:3 640 7\nCapAmb:\t0000000000000400\nfrom-host\nro\n1\n");
    assert!(!data.join("g").exists());
}

#[test]
fn overlay_rootfs_from_annotation_and_loopback_up() {
    // The daemon's layout: image layers as lower dirs, the container's writes in upper; the
    // overlay lives in the container's mount namespace only.
    let b =
        Bundle::new("ovl", &["sh", "-c", "echo new > /created; cat /etc/layer2; cat /sys/class/net/lo/flags"], |_| {});
    let layer1 = b.dir.join("rootfs"); // busybox as the bottom layer
    let layer2 = b.dir.join("layer2");
    std::fs::create_dir_all(layer2.join("etc")).unwrap();
    std::fs::write(layer2.join("etc/layer2"), "from layer 2\n").unwrap();
    let (upper, work, merged) = (b.dir.join("upper"), b.dir.join("work"), b.dir.join("merged"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut cfg = b.config();
    cfg["root"]["path"] = merged.to_str().unwrap().into();
    cfg["annotations"] =
        json!({"io.tug.rootfs.overlay": json!({"lower": [layer2, layer1], "upper": upper, "work": work}).to_string()});
    b.set_config(&cfg);
    let out = ok(b.rt(&["run", &unique("ovl")]));
    assert_eq!(out, "from layer 2\n0x9\n", "lo must be up (IFF_UP|IFF_LOOPBACK)");
    assert_eq!(std::fs::read_to_string(upper.join("created")).unwrap(), "new\n");
    assert!(!layer1.join("created").exists() && !merged.join("created").exists());
    assert_eq!(host_mounts_mentioning(&b.dir.path), 0, "the overlay must not outlive the container");
}

#[test]
fn process_starts_with_default_signal_handling() {
    // SigIgn and SigBlk are all zero: a pipe reader going away kills the writer, as in Docker.
    let b = Bundle::new("sig", &["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status; yes | head -1"], |_| {});
    let out = ok(b.rt(&["run", &unique("sig")]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "SigBlk:\t0000000000000000", "{out}");
    let ign = u64::from_str_radix(lines[1].trim_start_matches("SigIgn:\t"), 16).unwrap();
    assert_eq!(ign & (1 << (13 - 1)), 0, "SIGPIPE must not be ignored: {out}");
    assert_eq!(lines[2], "y");
}

/// Descriptors the runtime's caller left open do not reach the container; `--preserve-fds N`
/// passes exactly 3 … 3+N-1.
#[test]
fn stray_descriptors_do_not_reach_the_container() {
    use std::os::unix::process::CommandExt;
    let b = Bundle::new("rt-fds", &["ls", "/proc/self/fd"], |_| {});
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(crate::util::tug());
        cmd.arg("runtime").arg("--root").arg(&b.state).arg("run").arg("--bundle").arg(&b.dir.path).args(extra);
        cmd.arg(unique("fds"));
        // SAFETY: runs in the forked child before exec; open and dup2 are async-signal-safe and
        // only make descriptors 3 and 9 (without close-on-exec), as a careless caller would.
        unsafe {
            cmd.pre_exec(|| {
                let fd = nix::libc::open(c"/dev/null".as_ptr(), nix::libc::O_RDONLY);
                nix::libc::dup2(fd, 3);
                nix::libc::dup2(fd, 9);
                Ok(())
            });
        }
        let o = cmd.stdin(std::process::Stdio::null()).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).split_whitespace().map(str::to_string).collect::<Vec<_>>()
    };
    // ls holds one descriptor of its own (the directory it reads): the lowest free one.
    assert_eq!(run(&[]), ["0", "1", "2", "3"]);
    assert_eq!(run(&["--preserve-fds", "1"]), ["0", "1", "2", "3", "4"]);
}
