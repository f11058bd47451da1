//! The daemon as an Engine: the real docker CLI 28 and docker-py against tugd, with a busybox
//! image made from Debian's busybox-static.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::util::{stderr, stdout, Daemon};

/// The busybox docker-archive, built once per test run by scripts/busybox-image.sh.
fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("tug-it-busybox-{}.tar", std::process::id()));
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
        let o = Command::new(script).arg(&out).output().unwrap();
        assert!(o.status.success(), "busybox-image.sh: {}", String::from_utf8_lossy(&o.stderr));
        out
    })
    .clone()
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "failed ({:?}): {} {}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

const IMG: &str = "localhost/busybox";

/// Engine tests take turns: each starts a daemon and many containers, and together they starve a
/// two-core machine (under that load a known output race in quick `containers.run` calls shows;
/// see the notes).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// One JSON POST on its own connection: (status, headers, body).
fn post(d: &Daemon, path: &str, body: &str) -> (u16, String, Vec<u8>) {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    d.http(req.as_bytes())
}

fn daemon_with_busybox(tag: &str) -> Daemon {
    let d = Daemon::start(tag, &[]);
    let out = ok(d.docker(&["load", "-i", busybox_tar().to_str().unwrap()]));
    assert_eq!(out.trim(), "Loaded image: localhost/busybox:latest");
    d
}

#[test]
fn docker_cli_runs_containers() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-run");
    // Attached run: output, exit code, --rm leaving nothing.
    let o = d.docker(&["run", "--rm", "--network", "none", IMG, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    assert_eq!(ok(d.docker(&["ps", "-aq"])), "", "--rm must leave nothing");
    // Exit codes as Docker's: 127 not found.
    let o = d.docker(&["run", "--rm", IMG, "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("executable file not found"), "{}", stderr(&o));
    // Flags reach the process.
    let o = ok(d.docker(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "--hostname",
        "h1",
        IMG,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; hostname",
    ]));
    assert_eq!(o, "bar\n/tmp\n1000\nh1\n");
    let o = d.docker(&["run", "--rm", "--read-only", IMG, "touch", "/x"]);
    assert_ne!(o.status.code(), Some(0));
    let o = d.docker(&["run", "--rm", "--cap-drop", "ALL", IMG, "chown", "1000", "/tmp"]);
    assert!(stderr(&o).contains("Operation not permitted"), "{}", stderr(&o));
    // Detached: ps, logs, stop, rm.
    let id = ok(d.docker(&["run", "-d", "--name", "web", IMG, "sh", "-c", "echo started; exec sleep 1000"]))
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ps = ok(d.docker(&["ps", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.State}}"]));
    assert_eq!(ps.trim(), format!("{} web {IMG} running", &id[..12]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ok(d.docker(&["logs", "web"])).contains("started") {
        assert!(std::time::Instant::now() < deadline, "no log line");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        ok(d.docker(&["inspect", "-f", "{{.State.Status}} {{.Name}} {{.Config.Image}}", "web"])).trim(),
        format!("running /web {IMG}")
    );
    // Name conflicts are 409 with Docker's wording.
    let o = d.docker(&["run", "-d", "--name", "web", IMG, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("Conflict. The container name \"/web\" is already in use"), "{}", stderr(&o));
    // Removing a running container is refused without -f.
    let o = d.docker(&["rm", "web"]);
    assert!(stderr(&o).contains("container is running"), "{}", stderr(&o));
    // The image is in use: rmi refuses.
    let o = d.docker(&["rmi", IMG]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("conflict") || stderr(&o).contains("being used"), "{}", stderr(&o));
    ok(d.docker(&["stop", "-t", "1", "web"]));
    assert_eq!(ok(d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web"])).trim(), "exited 137");
    ok(d.docker(&["rm", "web"]));
    let o = d.docker(&["inspect", "web"]);
    assert!(
        stderr(&o).contains("No such object: web") || stderr(&o).contains("No such container: web"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ok(d.docker(&["info", "--format", "{{.Containers}} {{.Images}}"])).trim(), "0 1");
}

#[test]
fn docker_cli_logs_follow_and_images() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-logs");
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "ticker",
        IMG,
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo tick$i; sleep 0.2; done",
    ]));
    // -f streams while the container writes and ends when it exits.
    let out = ok(d.docker(&["logs", "-f", "ticker"]));
    assert_eq!(out, "tick1\ntick2\ntick3\ntick4\ntick5\n");
    assert_eq!(ok(d.docker(&["logs", "--tail", "2", "ticker"])), "tick4\ntick5\n");
    let ts = ok(d.docker(&["logs", "-t", "--tail", "1", "ticker"]));
    assert!(ts.ends_with("Z tick5\n") && ts.starts_with("20"), "{ts}");
    assert_eq!(ok(d.docker(&["wait", "ticker"])).trim(), "0");
    // ps -s: the container's own writes, then the virtual size with the image.
    ok(d.docker(&["run", "--name", "writer", IMG, "sh", "-c", "head -c 100000 /dev/zero > /blob"]));
    let size = ok(d.docker(&["ps", "-a", "-s", "--filter", "name=writer", "--format", "{{.Size}}"]));
    assert!(size.starts_with("100kB (virtual "), "{size}");
    // --log-opt reaches the monitor: a tiny max-size rotates the log.
    ok(d.docker(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        IMG,
        "sh",
        "-c",
        "for i in $(seq 1 100); do echo line-$i; done",
    ]));
    let logs = ok(d.docker(&["logs", "chatty"]));
    assert!(logs.ends_with("line-100\n") && !logs.contains("line-1\n"), "old lines rotated away: {logs}");
    ok(d.docker(&["rm", "writer", "chatty"]));
    ok(d.docker(&["rm", "ticker"]));
    // images, tag, rmi (untag vs delete), save | load round trip.
    ok(d.docker(&["tag", IMG, "mybox:v1"]));
    let imgs = ok(d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    let mut lines: Vec<&str> = imgs.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["localhost/busybox:latest", "mybox:v1"]);
    let id = ok(d.docker(&["image", "inspect", "-f", "{{.Id}}", IMG])).trim().to_string();
    let saved = d.dir.join("saved.tar");
    ok(d.docker(&["save", "-o", saved.to_str().unwrap(), "mybox:v1"]));
    let o = ok(d.docker(&["rmi", "mybox:v1"]));
    assert_eq!(o.trim(), "Untagged: mybox:v1", "the other tag keeps the image");
    let o = ok(d.docker(&["rmi", IMG]));
    assert!(o.contains("Untagged: localhost/busybox:latest") && o.contains(&format!("Deleted: {id}")), "{o}");
    assert_eq!(ok(d.docker(&["images", "-q"])), "");
    assert_eq!(ok(d.docker(&["load", "-i", saved.to_str().unwrap()])).trim(), "Loaded image: mybox:v1");
    assert_eq!(ok(d.docker(&["image", "inspect", "-f", "{{.Id}}", "mybox:v1"])).trim(), id);
    let o = d.docker(&["image", "inspect", "nope"]);
    assert!(stderr(&o).contains("No such image: nope"), "{}", stderr(&o));
}

#[test]
fn bad_input_gets_clear_errors() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-bad");
    let (status, _, body) = d.http(b"POST /v1.44/containers/create HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"Image\":");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let req = b"POST /v1.44/containers/create HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 43\r\nConnection: close\r\n\r\n{\"Image\":\"x\",\"HostConfig\":{\"Memory\":\"1\"}}  ";
    let (status, _, body) = d.http(req);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("HostConfig.Memory"), "{}", String::from_utf8_lossy(&body));
    let o = d.docker(&["run", "--rm", "no-such-image:1"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("Unable to find image 'no-such-image:1' locally"), "{}", stderr(&o));
    let (status, _, body) = d.http(b"GET /v1.44/containers/nope/json HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("No such container: nope"));
    // A hostile archive is refused and the store stays as it was.
    let before = ok(d.docker(&["images", "-q"]));
    let evil = d.dir.join("evil.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&evil).unwrap());
        let mut h = tar::Header::new_gnu();
        let data = b"pwned";
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.as_gnu_mut().unwrap().name[..16].copy_from_slice(b"../../../tmp/evi");
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
        b.finish().unwrap();
    }
    let o = d.docker(&["load", "-i", evil.to_str().unwrap()]);
    assert!(!o.status.success(), "a hostile archive must be refused");
    assert!(!std::path::Path::new("/tmp/evi").exists());
    assert_eq!(ok(d.docker(&["images", "-q"])), before);
}

#[test]
fn docker_py_drives_the_daemon() {
    let _turn = serial();
    let d = daemon_with_busybox("dockerpy");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dockerpy_test.py");
    let o = Command::new("python3")
        .arg(script)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("BUSYBOX_TAR", busybox_tar())
        .output()
        .unwrap();
    assert!(o.status.success(), "docker-py: {}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("docker-py: all passed"), "{}", stdout(&o));
}

#[test]
fn docker_cli_pause_rename_top_stats_diff_prune() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-more");
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "a1",
        "--memory",
        "64m",
        IMG,
        "sh",
        "-c",
        "touch /newfile; rm /etc/group; exec sleep 1000",
    ]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ok(d.docker(&["diff", "a1"])).contains("A /newfile") {
        assert!(std::time::Instant::now() < deadline, "diff never showed the new file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let diff = ok(d.docker(&["diff", "a1"]));
    assert!(diff.contains("D /etc/group") && diff.contains("C /etc"), "{diff}");
    ok(d.docker(&["pause", "a1"]));
    assert_eq!(ok(d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "a1"])).trim(), "paused true");
    assert!(ok(d.docker(&["ps", "--format", "{{.Status}}"])).contains("(Paused)"));
    let o = d.docker(&["pause", "a1"]);
    assert!(stderr(&o).contains("already paused"), "{}", stderr(&o));
    ok(d.docker(&["unpause", "a1"]));
    assert_eq!(ok(d.docker(&["inspect", "-f", "{{.State.Status}}", "a1"])).trim(), "running");
    // update reaches the cgroup and the record.
    ok(d.docker(&["update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "20", "a1"]));
    let id = ok(d.docker(&["inspect", "-f", "{{.Id}}", "a1"])).trim().to_string();
    let cg = |ctrl: &str, f: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}/tug/{id}/{f}")).unwrap().trim().to_string()
    };
    assert_eq!(cg("memory", "memory.limit_in_bytes"), "134217728");
    assert_eq!(cg("pids", "pids.max"), "20");
    assert_eq!(
        ok(d.docker(&["inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", "a1"])).trim(),
        "134217728 20"
    );
    ok(d.docker(&["rename", "a1", "b1"]));
    assert!(stderr(&d.docker(&["inspect", "a1"])).contains("No such"));
    let top = ok(d.docker(&["top", "b1"]));
    assert!(top.starts_with("UID") && top.contains("sleep 1000"), "{top}");
    // ps options go to ps, and only the container's processes are kept.
    let pid = ok(d.docker(&["inspect", "-f", "{{.State.Pid}}", "b1"]));
    let top = ok(d.docker(&["top", "b1", "-o", "pid,comm"]));
    let lines: Vec<&str> = top.lines().collect();
    assert_eq!(lines.len(), 2, "{top}");
    assert!(lines[0].starts_with("PID") && lines[0].contains("COMMAND"), "{top}");
    assert!(lines[1].starts_with(pid.trim()) && lines[1].ends_with("sleep"), "{top}");
    let stats = ok(d.docker(&["stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "b1"]));
    assert!(stats.starts_with("b1 ") && stats.contains("/ 128MiB") && stats.trim().ends_with(" 1"), "{stats}");
    ok(d.docker(&["rm", "-f", "b1"]));
    ok(d.docker(&["run", "--name", "x1", IMG, "true"]));
    let pruned = ok(d.docker(&["container", "prune", "-f"]));
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert_eq!(ok(d.docker(&["ps", "-aq"])), "");
}

#[test]
fn docker_cli_tty_and_attach() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-tty");
    // `run -it` through a real pty (script(1) gives the CLI a terminal); the input arrives after
    // the shell is up, and the exit code comes back.
    let cmd = format!("DOCKER_HOST=unix://{} docker run -it --rm {IMG} sh", d.socket.display());
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    use std::io::Write;
    stdin.write_all(b"echo $((6*7)); tty\nexit 5\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("42") && text.contains("/dev/pts/0"), "{text}");
    // attach with stdin to a running container started with -i.
    ok(d.docker(&["run", "-d", "-i", "--name", "cat1", IMG, "cat"]));
    let mut att = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .args(["attach", "cat1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut att_in = att.stdin.take().unwrap();
    att_in.write_all(b"through-attach\n").unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(att.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line, "through-attach\n");
    // Closing our stdin does not close the container's (it was not started with StdinOnce), so
    // the attach lasts until we end it, as with Docker.
    drop(att_in);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = att.kill();
    let _ = att.wait();
    assert_eq!(ok(d.docker(&["logs", "cat1"])), "through-attach\n");
    // Without StdinOnce (run -d -i), the attach ending leaves the container's stdin open, as Docker.
    assert_eq!(ok(d.docker(&["inspect", "-f", "{{.State.Status}}", "cat1"])).trim(), "running");
    ok(d.docker(&["rm", "-f", "cat1"]));
    // An attached `run -i` (StdinOnce) ends when its input does.
    let mut run = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .args(["run", "-i", "--rm", IMG, "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    run.stdin.take().unwrap().write_all(b"piped-in\n").unwrap();
    let o = run.wait_with_output().unwrap();
    assert_eq!((o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned()), (Some(0), "piped-in\n".to_string()));
}

#[test]
fn docker_cli_export_import_round_trip() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-export");
    ok(d.docker(&["run", "--name", "ex", IMG, "sh", "-c", "echo made-inside > /marker; rm /etc/group"]));
    let tar = d.dir.join("ex.tar");
    ok(d.docker(&["export", "-o", tar.to_str().unwrap(), "ex"]));
    let list = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let names = stdout(&list);
    assert!(names.lines().any(|l| l == "marker"), "the container's file is exported");
    assert!(names.lines().any(|l| l == "bin/busybox"), "the image's files are exported");
    assert!(!names.lines().any(|l| l == "etc/group"), "a deleted file stays deleted");
    let id = ok(d.docker(&["import", "-c", "CMD [\"cat\", \"/marker\"]", tar.to_str().unwrap(), "exported:v1"]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(ok(d.docker(&["run", "--rm", "exported:v1"])), "made-inside\n");
    let o = d.docker(&["run", "--rm", "exported:v1", "cat", "/etc/group"]);
    assert_ne!(o.status.code(), Some(0));
}

#[test]
fn docker_cli_init_forwards_signals_and_reaps() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-init");
    // The command is not pid 1; init is, and it reaps the orphan the shell leaves behind.
    let o = ok(d.docker(&[
        "run",
        "--rm",
        "--init",
        IMG,
        "sh",
        "-c",
        "echo $$; (sleep 0.2 &) ; sleep 0.5; ps -o stat= | grep -c Z; true",
    ]));
    assert_eq!(o, "2\n0\n", "{o}");
    // Without --init, `sleep` as pid 1 ignores SIGTERM and stop has to kill (137); with it, the
    // TERM reaches sleep and ends it at once (143).
    ok(d.docker(&["run", "-d", "--init", "--name", "s1", IMG, "sleep", "1000"]));
    let t0 = std::time::Instant::now();
    ok(d.docker(&["stop", "-t", "5", "s1"]));
    assert!(t0.elapsed() < std::time::Duration::from_secs(4), "stop waited for the timeout");
    assert_eq!(ok(d.docker(&["inspect", "-f", "{{.State.ExitCode}}", "s1"])).trim(), "143");
    // Init is the sealed copy: even a privileged container cannot reach it through /proc.
    let o =
        d.docker(&["run", "--rm", "--init", IMG, "sh", "-c", "cat /proc/1/exe > /dev/null && echo READ-OK; echo done"]);
    assert_eq!(stdout(&o), "done\n", "{}", stderr(&o));
}

#[test]
fn docker_cli_restart_policies() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-restart");
    let inspect =
        |n: &str| ok(d.docker(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", n])).trim().to_string();
    let wait_for = |n: &str, want: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let s = inspect(n);
            if want(&s) {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "{n}: stuck at {s}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    // on-failure:2 — two restarts, then it stays down.
    ok(d.docker(&["run", "-d", "--restart", "on-failure:2", "--name", "f1", IMG, "sh", "-c", "echo run; exit 1"]));
    wait_for("f1", &|s| s == "exited 2");
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(inspect("f1"), "exited 2");
    assert_eq!(ok(d.docker(&["logs", "f1"])), "run\nrun\nrun\n");
    // on-failure does not restart a success.
    ok(d.docker(&["run", "-d", "--restart", "on-failure", "--name", "f2", IMG, "true"]));
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(inspect("f2"), "exited 0");
    // always — keeps coming back until the user stops it.
    ok(d.docker(&["run", "-d", "--restart", "always", "--name", "a1", IMG, "sh", "-c", "sleep 0.1"]));
    wait_for("a1", &|s| s.split(' ').nth(1).and_then(|c| c.parse::<u32>().ok()).is_some_and(|c| c >= 2));
    ok(d.docker(&["stop", "-t", "1", "a1"]));
    let s = wait_for("a1", &|s| s.starts_with("exited"));
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(inspect("a1"), s, "a stopped `always` container stays down");
}

#[test]
fn containers_outlive_a_killed_daemon() {
    let _turn = serial();
    let mut d = daemon_with_busybox("live");
    // Twenty containers count to 60 at 10 lines a second and exit with their own code; one sleeps.
    // They all begin together when `go` appears in a shared directory, however long creating
    // them took on a loaded machine.
    let sig = d.dir.join("sig");
    std::fs::create_dir_all(&sig).unwrap();
    let sig_mount = format!("{}:/sig", sig.display());
    let wait_go = "while [ ! -e /sig/go ]; do sleep 0.05; done";
    for i in 0..20 {
        let script = format!("{wait_go}; for n in $(seq 1 60); do echo $n; sleep 0.1; done; exit {i}");
        ok(d.docker(&["run", "-d", "--name", &format!("c{i}"), "-v", &sig_mount, IMG, "sh", "-c", &script]));
    }
    ok(d.docker(&["run", "-d", "--name", "long", IMG, "sleep", "1000"]));
    let quick = format!("{wait_go}; sleep 1; exit 7");
    ok(d.docker(&["run", "-d", "--name", "quick", "-v", &sig_mount, IMG, "sh", "-c", &quick]));
    std::fs::write(sig.join("go"), "").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Down for 1.5 s: `quick` exits while no daemon runs; its code must still be recorded.
    d.kill9_and_restart(std::time::Duration::from_millis(1500));
    // Still running after the daemon's death, and seen by the new daemon.
    let running = ok(d.docker(&["ps", "-q"]));
    assert_eq!(running.lines().count(), 21, "{running}");
    assert_eq!(ok(d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "quick"])).trim(), "exited 7");
    // exec works on a container the new daemon inherited, and so does logs -f: it follows c0
    // to its end, every line there.
    assert_eq!(ok(d.docker(&["exec", "long", "echo", "inherited"])), "inherited\n");
    let followed = ok(d.docker(&["logs", "-f", "c0"]));
    assert_eq!(followed, (1..=60).map(|n| format!("{n}\n")).collect::<String>(), "logs -f after the restart");
    // The twenty finish under the new daemon: every line is there and every exit code right.
    for i in 0..20 {
        assert_eq!(ok(d.docker(&["wait", &format!("c{i}")])).trim(), i.to_string());
        let logs = ok(d.docker(&["logs", &format!("c{i}")]));
        let want: String = (1..=60).map(|n| format!("{n}\n")).collect();
        assert_eq!(logs, want, "c{i}: a gap in the log");
    }
    // Killed again while `long` runs: the next daemon can still stop it.
    d.kill9_and_restart(std::time::Duration::ZERO);
    ok(d.docker(&["stop", "-t", "1", "long"]));
    assert_eq!(ok(d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "long"])).trim(), "exited 137");
}

#[test]
fn docker_cli_exec() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-exec");
    ok(d.docker(&["run", "-d", "--name", "x1", "-e", "BASE=1", IMG, "sleep", "1000"]));
    // Output on both streams, the exit code, the container's environment plus the exec's.
    let o = d.docker(&["exec", "-e", "EXTRA=2", "x1", "sh", "-c", "echo out $BASE $EXTRA; echo err >&2; exit 5"]);
    assert_eq!((o.status.code(), stdout(&o), stderr(&o)), (Some(5), "out 1 2\n".into(), "err\n".into()));
    // -u, -w; the process is in the container's pid namespace and cgroup.
    let o = ok(d.docker(&["exec", "-u", "nobody", "-w", "/tmp", "x1", "sh", "-c", "id -un; pwd; cat /proc/1/cmdline"]));
    assert_eq!(o, "nobody\n/tmp\nsleep\x001000\x00");
    let pid = ok(d.docker(&["inspect", "-f", "{{.State.Pid}}", "x1"]));
    // The exec'd process is in the container's cgroup: seen from the host, next to pid 1.
    ok(d.docker(&["exec", "-d", "x1", "sleep", "77"]));
    let host_cg = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    let mem = host_cg.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string())).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/memory{mem}/cgroup.procs")).unwrap();
        let found =
            procs.lines().any(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x0077\x00"));
        if found {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "exec'd process not in the container's cgroup: {procs}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ns =
        |p: &str| std::fs::read_link(format!("/proc/{}/ns/{p}", pid.trim())).unwrap().to_string_lossy().into_owned();
    for kind in ["pid", "mnt", "net", "uts", "ipc"] {
        let inside = ok(d.docker(&["exec", "x1", "readlink", &format!("/proc/self/ns/{kind}")]));
        assert_eq!(inside.trim(), ns(kind), "exec must join the {kind} namespace");
    }
    // stdin with -i.
    let mut c = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .args(["exec", "-i", "x1", "sh", "-c", "tr a-z A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "PIPED\n");
    // Not found / not executable: 127 / 126 with the runtime's reason.
    let o = d.docker(&["exec", "x1", "no-such-cmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("executable file not found"), "{}", stderr(&o));
    let o = d.docker(&["exec", "x1", "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    // -t through a real pty: a terminal with the client's size.
    let cmd = format!(
        "stty rows 33 cols 101; DOCKER_HOST=unix://{} docker exec -it x1 sh -c 'tty; stty size; exit 4'",
        d.socket.display()
    );
    let o =
        Command::new("script").args(["-qec", &cmd, "/dev/null"]).stdin(std::process::Stdio::piped()).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(4), "{text}");
    assert!(text.contains("/dev/pts/") && text.contains("33 101"), "{text}");
    // -d: runs on after the client returns.
    ok(d.docker(&["exec", "-d", "x1", "sh", "-c", "sleep 0.3; echo done > /tmp/bg"]));
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(ok(d.docker(&["exec", "x1", "cat", "/tmp/bg"])), "done\n");
    // --privileged gets every capability; the default set does not.
    let caps = |extra: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["x1", "sh", "-c", "grep CapEff /proc/self/status"]);
        ok(d.docker(&a))
    };
    assert!(caps(&[]).contains("00000000a80425fb"), "{}", caps(&[]));
    // "Every capability" is every one this host grants (the daemon's bounding set), as Docker.
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = own.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap().trim().to_string();
    assert!(caps(&["--privileged"]).contains(&bnd), "{} vs {bnd}", caps(&["--privileged"]));
    let o = ok(d.docker(&["run", "--rm", "--privileged", IMG, "grep", "CapEff", "/proc/self/status"]));
    assert!(o.contains(&bnd), "{o} vs {bnd}");
    // The exec inspect the CLI reads.
    let (st, _, body) = post(&d, "/containers/x1/exec", r#"{"Cmd":["sh","-c","exit 9"]}"#);
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["Id"].as_str().unwrap().to_string();
    let start = format!("/exec/{id}/start");
    assert_eq!(post(&d, &start, r#"{"Detach":true}"#).0, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let info = loop {
        let (_, _, b) = d.http(format!("GET /exec/{id}/json HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes());
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        if v["Running"] == false || std::time::Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(
        (info["Running"].clone(), info["ExitCode"].clone()),
        (serde_json::json!(false), serde_json::json!(9)),
        "{info}"
    );
    // Starting it again is refused; an unknown exec is a 404.
    assert_eq!(post(&d, &start, r#"{"Detach":true}"#).0, 409);
    assert_eq!(d.http(b"GET /exec/nope/json HTTP/1.1\r\nConnection: close\r\n\r\n").0, 404);
    // A stopped container: 409 with Docker's wording; a paused one too.
    ok(d.docker(&["pause", "x1"]));
    let o = d.docker(&["exec", "x1", "true"]);
    assert!(stderr(&o).contains("is paused, unpause the container before exec"), "{}", stderr(&o));
    ok(d.docker(&["unpause", "x1"]));
    ok(d.docker(&["stop", "-t", "0", "x1"]));
    let o = d.docker(&["exec", "x1", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    let (st, _, _) = post(&d, "/containers/x1/exec", r#"{"Cmd":["true"]}"#);
    assert_eq!(st, 409);
    // No command: 400.
    let (st, _, _) = post(&d, "/containers/x1/exec", "{}");
    assert_eq!(st, 400);
}

#[test]
fn docker_cli_events() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-events");
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    // A live subscriber, filtered to one container, started before anything happens.
    let live = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .args(["events", "--filter", "container=ev", "--format", "{{.Action}}"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(d.docker(&["run", "--name", "ev", IMG, "sh", "-c", "exit 3"]).status.code(), Some(3));
    ok(d.docker(&["start", "ev"]));
    assert_eq!(ok(d.docker(&["wait", "ev"])).trim(), "3");
    ok(d.docker(&["run", "-d", "--name", "ev2", IMG, "sleep", "100"]));
    ok(d.docker(&["exec", "ev2", "true"]));
    ok(d.docker(&["pause", "ev2"]));
    ok(d.docker(&["unpause", "ev2"]));
    ok(d.docker(&["kill", "ev2"]));
    ok(d.docker(&["rename", "ev2", "ev3"]));
    ok(d.docker(&["rm", "ev"]));
    ok(d.docker(&["rm", "ev3"]));
    ok(d.docker(&["tag", IMG, "evtag:1"]));
    ok(d.docker(&["rmi", "evtag:1"]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let until = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1).to_string();
    let all = ok(d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]));
    let want = [
        "container create ev",
        "container attach ev",
        "container start ev",
        "container die ev",
        "container start ev",
        "container die ev",
        "container create ev2",
        "container start ev2",
        "container exec_create: true ev2",
        "container exec_start: true ev2",
        "container exec_die ev2",
        "container pause ev2",
        "container unpause ev2",
        "container kill ev2",
        "container die ev2",
        "container rename ev3",
        "container destroy ev",
        "container destroy ev3",
        "image tag evtag:1",
        "image untag evtag:1",
    ];
    let got: Vec<&str> = all.lines().filter(|l| !l.starts_with("image load")).collect();
    assert_eq!(got, want, "{all}");
    // Filters: by event (exit codes of every die), by type.
    let dies = ok(d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.exitCode}}",
    ]));
    assert_eq!(dies, "3\n3\n137\n");
    let images = ok(d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}}",
    ]));
    assert_eq!(images.lines().filter(|l| *l != "load").collect::<Vec<_>>(), ["tag", "untag"], "{images}");
    // The live subscriber saw only `ev`'s events, as they happened.
    let pid = nix::unistd::Pid::from_raw(live.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let o = live.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "create\nattach\nstart\ndie\nstart\ndie\ndestroy\n");
    // A bad filter is a 400.
    let o = d.docker(&["events", "--filter", "bogus=1", "--until", &until]);
    assert!(!o.status.success() && stderr(&o).contains("invalid filter"), "{}", stderr(&o));
}

#[test]
fn docker_cli_volumes_and_mounts() {
    let _turn = serial();
    let mut d = daemon_with_busybox("cli-vol");
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    // create, inspect, ls with filters and formats.
    assert_eq!(ok(d.docker(&["volume", "create", "--label", "team=a", "v1"])), "v1\n");
    ok(d.docker(&["volume", "create", "v2"]));
    let v: serde_json::Value = serde_json::from_str(&ok(d.docker(&["volume", "inspect", "v1"]))).unwrap();
    let mountpoint = v[0]["Mountpoint"].as_str().unwrap().to_string();
    assert_eq!((v[0]["Driver"].as_str(), v[0]["Labels"]["team"].as_str()), (Some("local"), Some("a")), "{v}");
    assert!(mountpoint.ends_with("/volumes/v1/_data") && std::path::Path::new(&mountpoint).is_dir(), "{mountpoint}");
    assert_eq!(ok(d.docker(&["volume", "ls", "-q"])), "v1\nv2\n");
    assert_eq!(ok(d.docker(&["volume", "ls", "-q", "--filter", "label=team=a"])), "v1\n");
    assert_eq!(
        ok(d.docker(&["volume", "ls", "--format", "{{.Name}} {{.Driver}}", "--filter", "name=v2"])),
        "v2 local\n"
    );
    // A named volume keeps its data across containers, and is read-only where asked.
    ok(d.docker(&["run", "--rm", "-v", "v1:/data", IMG, "sh", "-c", "echo kept > /data/f"]));
    assert_eq!(ok(d.docker(&["run", "--rm", "-v", "v1:/data:ro", IMG, "cat", "/data/f"])), "kept\n");
    let o = d.docker(&["run", "--rm", "-v", "v1:/data:ro", IMG, "touch", "/data/g"]);
    assert!(stderr(&o).contains("Read-only file system"), "{}", stderr(&o));
    // In use: refused (409) while any container, even a stopped one, has it.
    ok(d.docker(&["create", "--name", "user1", "-v", "v1:/data", IMG, "true"]));
    let o = d.docker(&["volume", "rm", "v1"]);
    assert!(!o.status.success() && stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    assert_eq!(ok(d.docker(&["volume", "ls", "-q", "--filter", "dangling=true"])), "v2\n");
    // --volumes-from shares it.
    assert_eq!(ok(d.docker(&["run", "--rm", "--volumes-from", "user1", IMG, "cat", "/data/f"])), "kept\n");
    // Survives the daemon's death and the container's removal.
    d.kill9_and_restart(std::time::Duration::ZERO);
    ok(d.docker(&["rm", "-v", "user1"]));
    assert_eq!(std::fs::read_to_string(format!("{mountpoint}/f")).unwrap(), "kept\n");
    // Bind mounts: a directory, a single file, a missing source made for -v, refused for --mount.
    let host = d.dir.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("h"), "from host\n").unwrap();
    let hs = host.display().to_string();
    assert_eq!(ok(d.docker(&["run", "--rm", "-v", &format!("{hs}:/h"), IMG, "cat", "/h/h"])), "from host\n");
    assert_eq!(
        ok(d.docker(&["run", "--rm", "-v", &format!("{hs}/h:/etc/motd:ro"), IMG, "cat", "/etc/motd"])),
        "from host\n"
    );
    ok(d.docker(&["run", "--rm", "-v", &format!("{hs}:/h"), IMG, "sh", "-c", "echo back > /h/w"]));
    assert_eq!(std::fs::read_to_string(host.join("w")).unwrap(), "back\n");
    let missing = d.dir.join("made/by/v");
    ok(d.docker(&["run", "--rm", "-v", &format!("{}:/m", missing.display()), IMG, "true"]));
    assert!(missing.is_dir());
    let o = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,source={},target=/x", d.dir.join("nope").display()),
        IMG,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("bind source path does not exist"), "{}", stderr(&o));
    assert!(!d.dir.join("nope").exists());
    // --mount volume with driver options (a tmpfs-backed local volume) and tmpfs mounts with a size.
    let o = ok(d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=tv,target=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=5m",
        IMG,
        "sh",
        "-c",
        "grep ' /t ' /proc/mounts",
    ]));
    assert!(o.starts_with("tmpfs /t tmpfs") && o.contains("size=5120k"), "{o}");
    let o = ok(d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/tt,tmpfs-size=1048576",
        IMG,
        "sh",
        "-c",
        "grep ' /tt ' /proc/mounts",
    ]));
    assert!(o.contains("size=1024k"), "{o}");
    let o = ok(d.docker(&["run", "--rm", "--tmpfs", "/run2:size=2m", IMG, "sh", "-c", "grep ' /run2 ' /proc/mounts"]));
    assert!(o.contains("size=2048k"), "{o}");
    // Copy-up: a new named volume over image content gets it; nocopy does not.
    let o = ok(d.docker(&["run", "--rm", "-v", "cu:/etc", IMG, "cat", "/etc/passwd"]));
    assert!(o.contains("root:"), "{o}");
    let o = ok(d.docker(&["run", "--rm", "-v", "cu2:/etc:nocopy", IMG, "ls", "/etc"]));
    assert!(!o.contains("passwd"), "{o}");
    // The image's VOLUME makes an anonymous volume, and `rm -v` removes it, never a named one.
    let tarball = d.dir.join("root.tar");
    ok(d.docker(&["create", "--name", "src", IMG, "true"]));
    ok(d.docker(&["export", "-o", tarball.to_str().unwrap(), "src"]));
    ok(d.docker(&[
        "import",
        "--change",
        "VOLUME /data",
        "--change",
        "CMD [\"sh\"]",
        tarball.to_str().unwrap(),
        "withvol:1",
    ]));
    ok(d.docker(&["run", "-d", "--name", "anon", "-v", "keepme:/named", "withvol:1", "sleep", "100"]));
    let mounts = ok(d.docker(&["inspect", "-f", "{{range .Mounts}}{{.Destination}}={{.Name}} {{end}}", "anon"]));
    let anon_name = mounts.split_whitespace().find_map(|m| m.strip_prefix("/data=")).unwrap().to_string();
    assert_eq!(anon_name.len(), 64, "{mounts}");
    ok(d.docker(&["rm", "-f", "-v", "anon"]));
    let left = ok(d.docker(&["volume", "ls", "-q"]));
    assert!(!left.contains(&anon_name) && left.contains("keepme"), "{left}");
    // --rm removes its anonymous volumes too.
    ok(d.docker(&["run", "--rm", "-v", "/scratch", IMG, "true"]));
    assert_eq!(ok(d.docker(&["volume", "ls", "-q"])), left);
    // Bad names and bad specs.
    for bad in ["x/y", "_under", ".."] {
        let o = d.docker(&["volume", "create", bad]);
        assert!(!o.status.success() && stderr(&o).contains("includes invalid characters"), "{bad}: {}", stderr(&o));
    }
    let o = d.docker(&["run", "--rm", "-v", "_bad:/x", IMG, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let o = d.docker(&["run", "--rm", "-v", "v2:/x", "-v", "v1:/x", IMG, "true"]);
    assert!(stderr(&o).contains("Duplicate mount point"), "{}", stderr(&o));
    let o = d.docker(&["volume", "inspect", "nosuch"]);
    assert!(!o.status.success() && stderr(&o).contains("no such volume"), "{}", stderr(&o));
    // rm -f of a missing volume is fine; prune takes unused anonymous ones, --all named ones too.
    ok(d.docker(&["volume", "rm", "-f", "nosuch"]));
    ok(d.docker(&["volume", "rm", "v2"]));
    ok(d.docker(&["volume", "prune", "-f", "--all"]));
    assert_eq!(ok(d.docker(&["volume", "ls", "-q"])), "");
    // Volume events (kept in memory, as Docker's: `cu` was made after the restart).
    let until = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1).to_string();
    let ev = ok(d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--filter",
        "volume=cu",
        "--format",
        "{{.Action}}",
    ]));
    let ev: Vec<&str> = ev.lines().collect();
    assert_eq!(ev.first(), Some(&"create"), "{ev:?}");
    assert!(ev.contains(&"mount") && ev.contains(&"unmount") && ev.last() == Some(&"destroy"), "{ev:?}");
}

#[test]
fn docker_cli_update_keeps_and_persists() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-update");
    ok(d.docker(&["run", "-d", "--name", "u1", "-m", "64m", IMG, "sleep", "1000"]));
    ok(d.docker(&["update", "--restart", "always", "u1"]));
    // The CLI sends every field, zeros and an empty policy included: they change nothing.
    ok(d.docker(&["update", "--cpu-shares", "100", "u1"]));
    let f = "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.CpuShares}} {{.HostConfig.Memory}}";
    assert_eq!(ok(d.docker(&["inspect", "-f", f, "u1"])).trim(), "always 100 67108864");
    ok(d.docker(&["update", "-m", "128m", "--memory-swap", "256m", "--pids-limit", "20", "u1"]));
    let cg = |file: &str| {
        let pid = ok(d.docker(&["inspect", "-f", "{{.State.Pid}}", "u1"]));
        let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
        let ctl = file.split('.').next().unwrap();
        let rel = cgroups.lines().find_map(|l| l.split_once(&format!(":{ctl}:")).map(|(_, p)| p.to_string())).unwrap();
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}{rel}/{file}")).unwrap().trim().to_string()
    };
    assert_eq!((cg("memory.limit_in_bytes"), cg("pids.max")), ("134217728".to_string(), "20".to_string()));
    // A restart keeps the updated limits.
    ok(d.docker(&["restart", "-t", "0", "u1"]));
    assert_eq!((cg("memory.limit_in_bytes"), cg("pids.max")), ("134217728".to_string(), "20".to_string()));
    // Docker's refusals.
    let o = d.docker(&["update", "--restart", "bogus", "u1"]);
    assert!(!o.status.success() && stderr(&o).contains("invalid restart policy"), "{}", stderr(&o));
    let o = d.docker(&["update", "-m", "512m", "u1"]);
    assert!(!o.status.success() && stderr(&o).contains("memoryswap"), "{}", stderr(&o));
    let o = d.docker(&["run", "--rm", "--restart", "bogus", IMG, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert_eq!(ok(d.docker(&["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "u1"])).trim(), "always");
    ok(d.docker(&["rm", "-f", "u1"]));
}

#[test]
fn docker_cli_cp_confined() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-cp");
    let host = d.dir.join("cphost");
    std::fs::create_dir_all(host.join("target")).unwrap();
    let hs = host.display().to_string();
    ok(d.docker(&["volume", "create", "cpv"]));
    // Symlinks a hostile container plants: absolute to /, and to a path that exists on the host.
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "cp1",
        "-v",
        "cpv:/vol",
        IMG,
        "sh",
        "-c",
        &format!("ln -s / /tmp/root; ln -s {hs}/target /tmp/hostlink; echo v > /vol/inside; sleep 1000"),
    ]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Both ways, a file and a directory.
    std::fs::write(host.join("in.txt"), "hello\n").unwrap();
    ok(d.docker(&["cp", &format!("{hs}/in.txt"), "cp1:/tmp/"]));
    assert_eq!(ok(d.docker(&["exec", "cp1", "cat", "/tmp/in.txt"])), "hello\n");
    ok(d.docker(&["cp", "cp1:/etc", &format!("{hs}/etc-copy")]));
    assert!(std::fs::read_to_string(host.join("etc-copy/passwd")).unwrap().contains("root:"));
    ok(d.docker(&["cp", &format!("{hs}/etc-copy"), "cp1:/tmp/etc2"]));
    assert!(ok(d.docker(&["exec", "cp1", "cat", "/tmp/etc2/passwd"])).contains("root:"));
    // Through the planted symlinks: the copy lands inside the container, the host is untouched.
    let unique = format!("cp-escape-{}", std::process::id());
    std::fs::write(host.join(&unique), "x").unwrap();
    ok(d.docker(&["cp", &format!("{hs}/{unique}"), "cp1:/tmp/root/"]));
    assert!(!std::path::Path::new(&format!("/{unique}")).exists(), "cp escaped to the host's /");
    ok(d.docker(&["exec", "cp1", "test", "-f", &format!("/{unique}")]));
    // The link names a path only the host has: inside the container it leads nowhere.
    let o = d.docker(&["cp", &format!("{hs}/{unique}"), "cp1:/tmp/hostlink/"]);
    assert!(!o.status.success() && stderr(&o).contains("Could not find the file"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(host.join("target")).unwrap().count(), 0, "cp followed a symlink to the host");
    // `..` cannot climb out either way.
    let o = ok(d.docker(&["cp", "cp1:/../../../../etc/hostname", "-"]));
    assert!(!o.is_empty());
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let cid = ok(d.docker(&["inspect", "-f", "{{.Id}}", "cp1"]));
    assert!(o.contains(&cid[..12]) && (hostname.trim().is_empty() || !o.contains(hostname.trim())), "{o}");
    // A hostile archive in PUT: `../` entries are refused, nothing written outside.
    let mut evil = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../../evil.tx");
    h.set_cksum();
    evil.append(&h, &b"evil"[..]).unwrap();
    let body = evil.into_inner().unwrap();
    let mut req = format!(
        "PUT /containers/cp1/archive?path=/tmp HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let (st, _, msg) = d.http(&req);
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&msg));
    assert!(!std::path::Path::new("/evil.tx").exists());
    // Missing paths: Docker's 404 wording; the stat header the CLI reads.
    let o = d.docker(&["cp", "cp1:/nonexistent", &hs]);
    assert!(stderr(&o).contains("Could not find the file /nonexistent in container"), "{}", stderr(&o));
    let (st, head, _) = d.http(b"HEAD /containers/cp1/archive?path=/etc/passwd HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(st, 200);
    let b64 = head.lines().find_map(|l| l.strip_prefix("X-Docker-Container-Path-Stat: ")).unwrap();
    assert!(!b64.is_empty());
    // A stopped container: its files and its volume's.
    ok(d.docker(&["stop", "-t", "0", "cp1"]));
    assert!(ok(d.docker(&["cp", "cp1:/tmp/in.txt", "-"])).contains("hello"));
    ok(d.docker(&["cp", "cp1:/vol/inside", &format!("{hs}/from-volume")]));
    assert_eq!(std::fs::read_to_string(host.join("from-volume")).unwrap(), "v\n");
    ok(d.docker(&["cp", &format!("{hs}/in.txt"), "cp1:/root/while-stopped"]));
    ok(d.docker(&["start", "cp1"]));
    assert_eq!(ok(d.docker(&["exec", "cp1", "cat", "/root/while-stopped"])), "hello\n");
    ok(d.docker(&["rm", "-f", "cp1"]));
}

#[test]
fn docker_cli_commit() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-commit");
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "cm",
        "-e",
        "X=1",
        IMG,
        "sh",
        "-c",
        "echo made > /made; rm /bin/ls; mkdir -p /etc/newdir; sleep 1000",
    ]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d.docker(&["exec", "cm", "test", "-d", "/etc/newdir"]).status.code() != Some(0) {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let id = ok(d.docker(&[
        "commit",
        "-m",
        "the message",
        "-a",
        "someone",
        "-c",
        "CMD [\"cat\", \"/made\"]",
        "cm",
        "committed:1",
    ]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    // Still running: --pause (the default) froze it only while the layer was read.
    assert_eq!(ok(d.docker(&["inspect", "-f", "{{.State.Status}}", "cm"])).trim(), "running");
    // The new layer: a new file, a deletion (whiteout), the container's environment, the change.
    assert_eq!(ok(d.docker(&["run", "--rm", "committed:1"])), "made\n");
    let o = d.docker(&[
        "run",
        "--rm",
        "committed:1",
        "sh",
        "-c",
        "test -e /bin/ls && echo present; echo X=$X; test -d /etc/newdir && echo dir",
    ]);
    assert_eq!(stdout(&o), "X=1\ndir\n");
    let f = "{{.Author}}|{{.Comment}}|{{json .Config.Cmd}}|{{len .RootFS.Layers}}";
    assert_eq!(
        ok(d.docker(&["image", "inspect", "-f", f, "committed:1"])).trim(),
        "someone|the message|[\"cat\",\"/made\"]|2"
    );
    let hist = ok(d.docker(&["history", "--format", "{{.Comment}}", "committed:1"]));
    assert_eq!(hist.lines().next(), Some("the message"));
    // The committed image saves and loads like any other (its layer in the archive).
    let tarball = d.dir.join("committed.tar");
    ok(d.docker(&["save", "-o", tarball.to_str().unwrap(), "committed:1"]));
    ok(d.docker(&["rmi", "committed:1"]));
    ok(d.docker(&["load", "-i", tarball.to_str().unwrap()]));
    assert_eq!(ok(d.docker(&["run", "--rm", "committed:1"])), "made\n");
    // A stopped container commits too; an unknown one is a 404.
    ok(d.docker(&["stop", "-t", "0", "cm"]));
    ok(d.docker(&["commit", "cm", "committed:2"]));
    let o = d.docker(&["commit", "nosuch", "x:1"]);
    assert!(stderr(&o).contains("No such container: nosuch"), "{}", stderr(&o));
}

#[test]
fn docker_cli_system_df_prune_info() {
    let _turn = serial();
    let d = daemon_with_busybox("cli-sys");
    ok(d.docker(&["run", "-d", "--name", "up", "-v", "used:/u", IMG, "sleep", "1000"]));
    ok(d.docker(&["run", "-d", "--name", "paused", IMG, "sleep", "1000"]));
    ok(d.docker(&["pause", "paused"]));
    ok(d.docker(&["run", "--name", "done", "-v", "/anon", IMG, "sh", "-c", "head -c 3000 /dev/zero > /big"]));
    ok(d.docker(&["volume", "create", "spare"]));
    // info: the counts by state and the image count.
    let f = "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}}";
    assert_eq!(ok(d.docker(&["info", "-f", f])).trim(), "3 1 1 1 1");
    // df: totals and active counts per type; the stopped container's 3000 bytes are reclaimable.
    let df = ok(d.docker(&["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"]));
    // Active volumes: referenced by any container, a stopped one too, as Docker counts them.
    assert_eq!(df, "Images 1 1\nContainers 3 2\nLocal Volumes 3 2\nBuild Cache 0 0\n", "{df}");
    let v = ok(d.docker(&["system", "df", "-v", "--format", "{{json .}}"]));
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    let done = v["Containers"].as_array().unwrap().iter().find(|c| c["Names"] == "done").unwrap().clone();
    assert_eq!(done["Size"], "3kB", "{done}");
    // prune: stopped containers, their anonymous volumes with --volumes, unused images with -a.
    ok(d.docker(&["unpause", "paused"]));
    ok(d.docker(&["stop", "-t", "0", "paused"]));
    let out = ok(d.docker(&["system", "prune", "-f", "--volumes"]));
    assert!(out.contains("Deleted Containers:") && out.contains("Deleted Volumes:"), "{out}");
    assert_eq!(ok(d.docker(&["ps", "-aq"])).lines().count(), 1);
    // Named volumes stay (API 1.42 and later prune anonymous ones only); the used one too.
    assert_eq!(ok(d.docker(&["volume", "ls", "-q"])), "spare\nused\n");
    ok(d.docker(&["rm", "-f", "up"]));
    let out = ok(d.docker(&["system", "prune", "-a", "-f"]));
    assert!(out.contains("untagged: localhost/busybox:latest"), "{out}");
    assert_eq!(ok(d.docker(&["images", "-q"])), "");
}

#[test]
fn restart_policies_after_a_reboot() {
    let _turn = serial();
    let mut d = daemon_with_busybox("reboot");
    for (name, policy) in
        [("ra", "always"), ("ru", "unless-stopped"), ("rf", "on-failure"), ("rn", "no"), ("rs", "always")]
    {
        ok(d.docker(&["run", "-d", "--name", name, "--restart", policy, IMG, "sleep", "1000"]));
    }
    ok(d.docker(&["stop", "-t", "0", "rs"]));
    let ids: Vec<(String, String)> = ["ra", "ru", "rf", "rn"]
        .iter()
        .map(|n| (n.to_string(), ok(d.docker(&["inspect", "-f", "{{.Id}} {{.State.Pid}}", n])).trim().to_string()))
        .collect();
    let root = d.dir.join("root");
    let impostor_pid: std::sync::Mutex<Option<std::process::Child>> = std::sync::Mutex::new(None);
    // A reboot, as the containers see it: the daemon, every monitor and every container process
    // gone at once, nothing written on the way down; then a new boot ID.
    d.kill9_and_restart_after(|| {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        for (_, idpid) in &ids {
            let (id, pid) = idpid.split_once(' ').unwrap();
            let mon = std::fs::read_to_string(root.join("containers").join(id).join("monitor.pid")).unwrap();
            let _ = kill(Pid::from_raw(mon.trim().parse().unwrap()), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid.parse().unwrap()), Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(root.join("boot_id"), "00000000-0000-0000-0000-000000000000\n").unwrap();
        // After a reboot, pids are reused: `rn`'s recorded monitor pid now names another
        // process, one that even calls itself tug-monitor. Only the boot ID tells the truth.
        let (rn_id, _) = ids[3].1.split_once(' ').unwrap();
        let impostor = Command::new("bash").args(["-c", "exec -a tug-monitor sleep 30"]).spawn().unwrap();
        std::fs::write(root.join("containers").join(rn_id).join("monitor.pid"), impostor.id().to_string()).unwrap();
        *impostor_pid.lock().unwrap() = Some(impostor);
    });
    // always, unless-stopped and on-failure (255 is a failure) come back; no stays down with
    // 255; the one the user stopped stays stopped.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let state = |n: &str| ok(d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}", n]));
    for (n, old) in &ids[..3] {
        loop {
            let st = state(n);
            if st.starts_with("running") {
                let pid = st.split_whitespace().nth(2).unwrap();
                assert_ne!(pid, old.split_once(' ').unwrap().1, "{n}: still the old process?");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{n} did not come back: {st}\n{}", d.log());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    assert_eq!(state("rn").split_whitespace().take(2).collect::<Vec<_>>(), ["exited", "255"]);
    assert!(state("rs").starts_with("exited 137"), "{}", state("rs"));
    // The restarted ones work as any other: exec, stop.
    assert_eq!(ok(d.docker(&["exec", "ra", "echo", "back"])), "back\n");
    ok(d.docker(&["stop", "-t", "0", "ra"]));
    // `n` never restarted: its old cgroup (left by the simulated reboot) is swept here.
    let n_id = ids[3].1.split_once(' ').unwrap().0.to_string();
    if let Some(mut c) = impostor_pid.lock().unwrap().take() {
        let _ = c.kill();
        let _ = c.wait();
    }
    ok(d.docker(&["rm", "-f", "rn", "ra", "ru", "rf", "rs"]));
    for ctl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(ctl.path().join("tug").join(&n_id));
    }
}

#[test]
fn paused_containers_can_be_killed_and_removed() {
    let _turn = serial();
    let d = daemon_with_busybox("paused-kill");
    for n in ["pk", "pr"] {
        ok(d.docker(&["run", "-d", "--name", n, IMG, "sleep", "1000"]));
        ok(d.docker(&["pause", n]));
    }
    let pid = ok(d.docker(&["inspect", "-f", "{{.State.Pid}}", "pr"])).trim().to_string();
    // kill: resumed so the SIGKILL lands, as Docker.
    ok(d.docker(&["kill", "pk"]));
    assert_eq!(ok(d.docker(&["wait", "pk"])).trim(), "137");
    // rm -f: the process is gone, not orphaned frozen.
    ok(d.docker(&["rm", "-f", "pr"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if st.contains(") Z ") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the paused container's process survived rm -f: {st}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Kills the daemon (SIGKILL, through the `TUG_CRASH_AT` fault point) in the middle of create,
/// start, rm, volume create and image load; the next daemon must repair or sweep what was half
/// done, so that the same operation then succeeds and nothing half-made is left or shown.
#[test]
fn crashes_midway_are_repaired_at_the_next_start() {
    let _turn = serial();
    let tar = busybox_tar();
    let tar = tar.to_str().unwrap();
    let points = [
        "create.name-reserved",
        "create.files-written",
        "start.monitor-ready",
        "start.started",
        "rm.name-released",
        "remove-dir.renamed",
        "volume.staged",
        "image.staged",
        "image.blobs-committed",
    ];
    // The set-up, run by the daemon that will crash, then the operation that crashes it.
    let setup = |point: &str, d: &Daemon| match point {
        p if p.starts_with("create.") || p.starts_with("start.") => d.docker(&["load", "-i", tar]),
        p if p.starts_with("rm.") || p.starts_with("remove-dir.") => {
            ok(d.docker(&["load", "-i", tar]));
            d.docker(&["create", "--name", "c1", IMG, "true"])
        }
        _ => d.docker(&["version"]),
    };
    let op = |point: &str, d: &Daemon| match point {
        p if p.starts_with("create.") => d.docker(&["create", "--name", "c1", IMG, "true"]),
        p if p.starts_with("start.") => d.docker(&["run", "-d", "--name", "c1", IMG, "sleep", "1000"]),
        p if p.starts_with("rm.") || p.starts_with("remove-dir.") => d.docker(&["rm", "c1"]),
        p if p.starts_with("volume.") => d.docker(&["volume", "create", "v1"]),
        _ => d.docker(&["load", "-i", tar]),
    };
    for point in points {
        let mut d = Daemon::start_with_env(&format!("crash-{point}"), &[], &[("TUG_CRASH_AT", point)]);
        assert!(setup(point, &d).status.success(), "{point}: set-up failed\n{}", d.log());
        let o = op(point, &d);
        assert!(!o.status.success(), "{point}: the daemon did not crash: {}", stdout(&o));
        // The daemon died of its own SIGKILL at that point (not of anything else).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(st) = d.child.as_mut().unwrap().try_wait().unwrap() {
                break st;
            }
            assert!(std::time::Instant::now() < deadline, "{point}: still up: {}\n{}", stderr(&o), d.log());
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{point}: {status:?}\n{}\n{}", stderr(&o), d.log());
        d.kill9_and_restart_after(|| {});
        let root = d.dir.join("root");
        // Listing works, and the operation, done again, succeeds.
        ok(d.docker(&["ps", "-a"]));
        ok(d.docker(&["volume", "ls"]));
        ok(d.docker(&["images"]));
        let left: Vec<String> = std::fs::read_dir(root.join("containers"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".removing") || !root.join("containers").join(n).join("container.json").exists())
            .collect();
        assert!(left.is_empty(), "{point}: half-made containers left: {left:?}");
        match point {
            "create.name-reserved" | "create.files-written" => {
                assert_eq!(ok(d.docker(&["ps", "-aq"])), "", "{point}");
                ok(d.docker(&["create", "--name", "c1", IMG, "true"]));
            }
            "start.monitor-ready" | "start.started" => {
                // Either the start was adopted (running) or undone (created): never stuck.
                let st = ok(d.docker(&["inspect", "-f", "{{.State.Status}}", "c1"]));
                assert!(st.trim() == "running" || st.trim() == "created", "{point}: {st}");
                if st.trim() == "created" {
                    ok(d.docker(&["start", "c1"]));
                }
                assert_eq!(ok(d.docker(&["exec", "c1", "echo", "ok"])), "ok\n", "{point}");
                ok(d.docker(&["rm", "-f", "c1"]));
            }
            "rm.name-released" | "remove-dir.renamed" => {
                // Cut short before the rename the container is still there, with its name;
                // after it, it is gone. Either way rm and the name work.
                let _ = d.docker(&["rm", "c1"]);
                assert_eq!(ok(d.docker(&["ps", "-aq"])), "", "{point}");
                ok(d.docker(&["create", "--name", "c1", IMG, "true"]));
            }
            "volume.staged" => {
                assert_eq!(ok(d.docker(&["volume", "ls", "-q"])), "", "{point}");
                ok(d.docker(&["volume", "create", "v1"]));
                let hidden: Vec<_> = std::fs::read_dir(root.join("volumes"))
                    .unwrap()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
                    .collect();
                assert!(hidden.is_empty(), "{point}: staging left");
            }
            _ => {
                // The image: loaded again, it runs.
                ok(d.docker(&["load", "-i", tar]));
                assert_eq!(ok(d.docker(&["run", "--rm", IMG, "echo", "ok"])), "ok\n", "{point}");
                assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0, "{point}: staging left");
            }
        }
    }
}

/// The vfs storage driver (what the daemon falls back to without overlayfs): a copy of the
/// layers per container, with diff, commit, export and cp working as with overlays.
#[test]
fn vfs_storage_driver_copies_and_works() {
    let _turn = serial();
    let d = Daemon::start("vfs", &["--storage-driver", "vfs"]);
    let out = ok(d.docker(&["load", "-i", busybox_tar().to_str().unwrap()]));
    assert_eq!(out.trim(), "Loaded image: localhost/busybox:latest");
    assert_eq!(ok(d.docker(&["info", "-f", "{{.Driver}}"])).trim(), "vfs");
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "v1",
        IMG,
        "sh",
        "-c",
        "echo new > /made; rm /bin/ls; echo x >> /etc/passwd; sleep 1000",
    ]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d.docker(&["exec", "v1", "test", "-e", "/made"]).status.code() != Some(0) {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(ok(d.docker(&["inspect", "-f", "{{.GraphDriver.Name}}", "v1"])).trim(), "vfs");
    // No overlay anywhere: the root is a directory of its own.
    let pid = ok(d.docker(&["inspect", "-f", "{{.State.Pid}}", "v1"]));
    let mounts = std::fs::read_to_string(format!("/proc/{}/mounts", pid.trim())).unwrap();
    assert!(!mounts.lines().any(|l| l.starts_with("overlay ")), "{mounts}");
    // diff: added, changed (and its directory), deleted.
    let diff = ok(d.docker(&["diff", "v1"]));
    for want in ["A /made", "C /etc", "C /etc/passwd", "C /bin", "D /bin/ls"] {
        assert!(diff.lines().any(|l| l == want), "{want} missing from:\n{diff}");
    }
    assert!(!diff.lines().any(|l| l == "C /etc/group"), "{diff}");
    // commit: the new image has the changes, the deletion included.
    ok(d.docker(&["commit", "v1", "fromvfs:1"]));
    let o = d.docker(&["run", "--rm", "fromvfs:1", "sh", "-c", "cat /made; tail -1 /etc/passwd; ls /bin/ls"]);
    assert_eq!(stdout(&o), "new\nx\n", "{}", stderr(&o));
    // export and cp read the copy.
    let o = d.docker(&["export", "v1"]);
    assert!(o.status.success());
    let listing = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(listing.contains("made"), "export lacks /made");
    assert!(ok(d.docker(&["cp", "v1:/made", "-"])).contains("new"));
    // Containers do not share their copies.
    assert_eq!(d.docker(&["run", "--rm", IMG, "test", "-e", "/made"]).status.code(), Some(1));
    ok(d.docker(&["rm", "-f", "v1"]));
    // An unknown driver is refused at start.
    let bad = Command::new(crate::util::tug())
        .args(["daemon", "--storage-driver", "zfs", "-H", "unix:///nonexistent/x.sock", "--data-root"])
        .arg(d.dir.join("other-root"))
        .output()
        .unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("unknown storage driver"));
    assert!(!d.dir.join("other-root").exists(), "a refused start must leave nothing");
}
