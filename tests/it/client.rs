//! The client: `tug` run under the name `docker` against a private tugd, compared with the real
//! docker CLI against the same daemon — same stdout, stderr and exit code where docker defines
//! them — plus the client's own behaviour (run exit codes, stdin, detach-free streams).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::util::{ok, stderr, stdout, tug, Daemon};

/// A daemon with the busybox image loaded through the client.
fn setup(tag: &str) -> Daemon {
    let d = Daemon::start(tag, &[]);
    let tar = d.dir.join("busybox.tar");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
    let o = Command::new(script).arg(&tar).output().unwrap();
    assert!(o.status.success(), "busybox-image.sh: {}", stderr(&o));
    let out = ok(cli(&d, &["load", "-i", tar.to_str().unwrap()]));
    assert_eq!(out, "Loaded image: localhost/busybox:latest\n");
    d
}

/// This executable under the name `docker`, so its messages name the same program.
fn client_path(d: &Daemon) -> PathBuf {
    let link = d.dir.join("docker");
    if !link.exists() {
        std::os::unix::fs::symlink(tug(), &link).unwrap();
    }
    link
}

fn cli_cmd(d: &Daemon, args: &[&str]) -> Command {
    let mut c = Command::new(client_path(d));
    c.env("DOCKER_HOST", format!("unix://{}", d.socket.display())).args(args);
    c
}

fn cli(d: &Daemon, args: &[&str]) -> Output {
    cli_cmd(d, args).stdin(Stdio::null()).output().unwrap()
}

fn show(o: &Output) -> String {
    format!("code {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), stdout(o), stderr(o))
}

/// Asserts that ours and docker's output agree; retried a few times because "CREATED" columns
/// can cross a second boundary between the two runs.
fn same(d: &Daemon, args: &[&str]) -> Output {
    let mut last = String::new();
    for _ in 0..3 {
        let theirs = d.docker(args);
        let ours = cli(d, args);
        if ours.stdout == theirs.stdout && ours.stderr == theirs.stderr && ours.status.code() == theirs.status.code() {
            return ours;
        }
        last = format!("docker {args:?}\n--- docker:\n{}\n--- tug:\n{}", show(&theirs), show(&ours));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    panic!("{last}");
}

#[test]
fn bad_input_reads_like_docker() {
    let d = Daemon::start("cli-bad", &[]);
    for args in [
        &["nosuchverb"][..],
        &["container", "bogus"],
        &["ps", "--bogus"],
        &["ps", "-z"],
        &["ps", "extra"],
        &["run"],
        &["run", "--bogus", "x"],
        &["rm"],
        &["tag", "a"],
        &["logs", "nosuch"],
        &["stop", "nosuch", "other"],
        &["rm", "nosuch"],
        &["start", "nosuch"],
        &["inspect", "nosuch"],
        &["container", "inspect", "nosuch"],
        &["image", "inspect", "nosuch"],
        &["rmi", "nosuch"],
        &["ps", "--format", "{{.ID"],
        &["version", "--format", "{{.Server.APIVersion}} {{.Server.Os}} {{.Client.APIVersion}}"],
        &["info", "--format", "{{.Containers}} {{.Images}} {{.DockerRootDir}}"],
    ] {
        same(&d, args);
    }
    // Exit codes: unknown verb 1, unknown flag 125, missing argument 1.
    assert_eq!(cli(&d, &["nosuchverb"]).status.code(), Some(1));
    assert_eq!(cli(&d, &["ps", "--bogus"]).status.code(), Some(125));
    assert_eq!(cli(&d, &["run"]).status.code(), Some(1));
    // Under its own name it says tug.
    let o = Command::new(tug()).arg("nosuchverb").output().unwrap();
    assert!(stderr(&o).starts_with("tug: unknown command: tug nosuchverb"), "{}", show(&o));
    // No daemon at the address.
    let o = cli_cmd(&d, &["ps"]).env("DOCKER_HOST", "unix:///nonexistent.sock").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Cannot connect to the Docker daemon at unix:///nonexistent.sock"), "{}", show(&o));
    // -H wins over DOCKER_HOST.
    let host = format!("unix://{}", d.socket.display());
    let o = cli_cmd(&d, &["-H", &host, "version", "--format", "{{.Server.APIVersion}}"])
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .output()
        .unwrap();
    assert_eq!(ok(o).trim(), "1.44");
}

#[test]
fn image_verbs_match_docker() {
    let d = setup("cli-img");
    same(&d, &["images"]);
    same(&d, &["images", "--digests"]);
    same(&d, &["images", "-q"]);
    same(&d, &["images", "--no-trunc"]);
    same(&d, &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"]);
    same(&d, &["images", "--format", "table {{.Repository}}\\t{{.Size}}"]);
    same(&d, &["images", "--format", "{{json .}}"]);
    same(&d, &["history", "localhost/busybox"]);
    same(&d, &["history", "--no-trunc", "-q", "localhost/busybox"]);
    same(&d, &["image", "inspect", "localhost/busybox"]);
    same(&d, &["inspect", "-f", "{{.Id}} {{.Os}} {{.Architecture}} {{index .RepoTags 0}}", "localhost/busybox"]);
    // tag, then both listings agree, then rmi's report.
    assert_eq!(ok(cli(&d, &["tag", "localhost/busybox", "extra/name:v1"])), "");
    same(&d, &["images"]);
    same(&d, &["images", "extra/name"]);
    same(&d, &["images", "--filter", "reference=extra/*"]);
    let o = ok(cli(&d, &["rmi", "extra/name:v1"]));
    assert_eq!(o, "Untagged: extra/name:v1\n");
    // save -o, and the real CLI loads what we saved.
    let saved = d.dir.join("saved.tar");
    ok(cli(&d, &["save", "-o", saved.to_str().unwrap(), "localhost/busybox"]));
    let o = ok(d.docker(&["load", "-i", saved.to_str().unwrap()]));
    assert_eq!(o, "Loaded image: localhost/busybox:latest\n");
    // import a root filesystem with a change; history and config show it.
    let rootfs = d.dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("hello"), "hi\n").unwrap();
    let tar = d.dir.join("rootfs.tar");
    let st = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status().unwrap();
    assert!(st.success());
    let id = ok(cli(&d, &["import", "-c", "CMD [\"/hello\"]", tar.to_str().unwrap(), "imported:1"]));
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    same(&d, &["inspect", "-f", "{{.Config.Cmd}}", "imported:1"]);
    same(&d, &["history", "imported:1"]);
    same(&d, &["image", "prune", "-f"]);
    same(&d, &["rmi", "imported:1"]);
}

#[test]
fn run_and_container_verbs_match_docker() {
    let d = setup("cli-run");
    // Output and exit status of attached runs, ours and docker's.
    for args in [
        &["run", "--rm", "localhost/busybox", "echo", "hello"][..],
        &["run", "--rm", "localhost/busybox", "sh", "-c", "echo out; echo err >&2; exit 3"],
        &[
            "run",
            "--rm",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "1000",
            "localhost/busybox",
            "sh",
            "-c",
            "echo $A $(pwd) $(id -u)",
        ],
        &["run", "--rm", "--entrypoint", "echo", "localhost/busybox", "via", "entrypoint"],
        // Without --rm: the daemon keeps an auto-remove container whose start failed, and the
        // docker CLI then waits for its removal for ever.
        &["run", "localhost/busybox", "nosuchcmd"],
        &["run", "localhost/busybox", "/etc/passwd"],
        &["run", "nosuch/image"],
    ] {
        same(&d, args);
    }
    assert_eq!(cli(&d, &["run", "--rm", "localhost/busybox", "sh", "-c", "exit 3"]).status.code(), Some(3));
    assert_eq!(cli(&d, &["run", "localhost/busybox", "nosuchcmd"]).status.code(), Some(127));
    assert_eq!(cli(&d, &["run", "localhost/busybox", "/etc/passwd"]).status.code(), Some(126));
    ok(cli(&d, &["container", "prune", "-f"]));
    let o = cli(&d, &["run", "nosuch/image"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).starts_with("Unable to find image 'nosuch/image:latest' locally\n"), "{}", show(&o));
    // stdin reaches the container with -i, and its end closes it.
    let mut child = cli_cmd(&d, &["run", "-i", "--rm", "localhost/busybox", "sh", "-c", "cat; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"from stdin\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "from stdin\ndone\n");
    // Named containers: ps, inspect, logs and the lifecycle verbs.
    ok(cli(
        &d,
        &["run", "--name", "done1", "-l", "k=v", "localhost/busybox", "sh", "-c", "echo one; echo two >&2; echo three"],
    ));
    let id = ok(cli(&d, &["run", "-d", "--name", "bg", "localhost/busybox", "sh", "-c", "echo up; sleep 100"]));
    assert_eq!(id.trim().len(), 64, "run -d prints the full ID: {id}");
    let o = cli(&d, &["run", "--name", "bg", "localhost/busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("is already in use by container"), "{}", show(&o));
    same(&d, &["run", "--name", "bg", "localhost/busybox", "true"]);
    same(&d, &["ps"]);
    same(&d, &["ps", "-a"]);
    same(&d, &["ps", "-a", "--no-trunc"]);
    same(&d, &["ps", "-a", "-q"]);
    same(&d, &["ps", "-s"]);
    same(&d, &["ps", "-l"]);
    same(&d, &["ps", "-a", "--filter", "status=exited"]);
    same(&d, &["ps", "-a", "--filter", "label=k=v", "--format", "{{.Names}} {{.Label \"k\"}} {{.Labels}}"]);
    same(&d, &["ps", "-a", "--filter", "name=bg", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.State}}"]);
    same(&d, &["ps", "-a", "--format", "{{json .}}"]);
    // docker names the Go type in this message; the prefix and the exit code are what carry over.
    let o = cli(&d, &["ps", "--format", "{{.Nope}}"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("failed to execute template: "), "{}", show(&o));
    same(&d, &["inspect", "done1"]);
    same(
        &d,
        &["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{index .Config.Labels \"k\"}} {{.Name}}", "done1"],
    );
    same(&d, &["inspect", "--format", "{{range .Config.Env}}{{.}};{{end}}", "done1"]);
    same(&d, &["container", "inspect", "-f", "{{.Config.Tty}} {{len .Args}}", "done1"]);
    same(&d, &["logs", "done1"]);
    same(&d, &["logs", "-t", "done1"]);
    same(&d, &["logs", "--tail", "1", "done1"]);
    same(&d, &["wait", "done1"]);
    // {{json .Config}} carries the same document (key order is the Go struct's in docker).
    let theirs: serde_json::Value =
        serde_json::from_slice(&d.docker(&["inspect", "-f", "{{json .Config}}", "done1"]).stdout).unwrap();
    let ours: serde_json::Value =
        serde_json::from_slice(&cli(&d, &["inspect", "-f", "{{json .Config}}", "done1"]).stdout).unwrap();
    assert_eq!(ours["Cmd"], theirs["Cmd"]);
    assert_eq!(ours["Labels"], theirs["Labels"]);
    assert_eq!(ok(cli(&d, &["stop", "-t", "1", "bg"])), "bg\n");
    assert_eq!(ok(cli(&d, &["restart", "-t", "1", "bg"])), "bg\n");
    assert_eq!(ok(cli(&d, &["kill", "-s", "KILL", "bg"])), "bg\n");
    assert_eq!(ok(cli(&d, &["wait", "bg"])), "137\n");
    assert_eq!(ok(cli(&d, &["start", "bg"])), "bg\n");
    assert_eq!(ok(cli(&d, &["rm", "-f", "bg", "done1"])), "bg\ndone1\n");
    // create + start -a: output and exit status come back.
    let id = ok(cli(&d, &["create", "--name", "c1", "localhost/busybox", "sh", "-c", "echo created; exit 4"]));
    assert_eq!(id.trim().len(), 64);
    let o = cli(&d, &["start", "-a", "c1"]);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("created\n", Some(4)), "{}", show(&o));
    assert_eq!(ok(cli(&d, &["rm", "c1"])), "c1\n");
}

/// Waits at most `secs` for `child`; kills it (ours, by its handle) and fails the test if it hangs.
fn wait_bounded(child: &mut std::process::Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs}s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Reads `child`'s stdout on a thread; the receiver gets each line as it comes.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(out)) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line within `secs`, or a failure naming what was awaited.
fn next_line(rx: &std::sync::mpsc::Receiver<String>, secs: u64, what: &str) -> String {
    rx.recv_timeout(std::time::Duration::from_secs(secs)).unwrap_or_else(|e| panic!("{what}: no line ({e})"))
}

/// Polls `f` for up to ten seconds until it holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Runs a verb that changes state with docker, puts the state back with `reset`, runs it with
/// ours, resets again, and asserts that both printed the same and exited the same.
fn same_stateful(d: &Daemon, args: &[&str], reset: &dyn Fn()) -> Output {
    let theirs = d.docker(args);
    reset();
    let ours = cli(d, args);
    reset();
    assert!(
        ours.stdout == theirs.stdout && ours.stderr == theirs.stderr && ours.status.code() == theirs.status.code(),
        "docker {args:?}\n--- docker:\n{}\n--- tug:\n{}",
        show(&theirs),
        show(&ours)
    );
    ours
}

fn inspect(d: &Daemon, format: &str, name: &str) -> String {
    ok(d.docker(&["inspect", "-f", format, name])).trim().to_string()
}

fn tar_list(path: &std::path::Path) -> Vec<String> {
    let o = Command::new("tar").arg("-tf").arg(path).output().unwrap();
    assert!(o.status.success(), "tar -tf {}: {}", path.display(), stderr(&o));
    let mut names: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    names.sort();
    names
}

#[test]
fn stats_top_port_diff_match_docker() {
    let d = setup("cli-stats");
    let sh = "touch /newfile; rm /etc/group; exec sleep 1000";
    ok(cli(&d, &["run", "-d", "--name", "v1", "-m", "64m", "localhost/busybox", "sh", "-c", sh]));
    ok(cli(&d, &["run", "--name", "done2", "localhost/busybox", "true"]));
    // stats: the stable columns agree, for named containers and for the listing (-a adds the
    // stopped one), through templates and the default table.
    same(&d, &["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "v1"]);
    same(&d, &["stats", "--no-stream", "--format", "{{.Container}} {{.ID}} {{.Name}} {{.PIDs}} {{.NetIO}}", "v1"]);
    same(&d, &["stats", "--no-stream", "--no-trunc", "--format", "{{.ID}} {{.BlockIO}}", "v1", "done2"]);
    same(&d, &["stats", "--no-stream", "-a", "--format", "table {{.Container}}\\t{{.Name}}\\t{{.PIDs}}"]);
    same(&d, &["stats", "--no-stream", "--format", "{{.Name}} {{.Container}}"]);
    same(&d, &["container", "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "done2"]);
    // The stopped container's numbers are docker's zeros.
    let o = ok(cli(&d, &["stats", "--no-stream", "--format", "{{.CPUPerc}} {{.MemUsage}} {{.MemPerc}}", "done2"]));
    assert_eq!(o, "0.00% 0B / 0B 0.00%\n");
    // The default table: docker's header, and our computed limit and percentage for v1.
    let theirs = ok(d.docker(&["stats", "--no-stream", "v1"]));
    let ours = ok(cli(&d, &["stats", "--no-stream", "v1"]));
    assert_eq!(ours.lines().next(), theirs.lines().next());
    assert_eq!(
        ours.lines().next().unwrap(),
        "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS"
    );
    let row: Vec<&str> = ours.lines().nth(1).unwrap().split_whitespace().collect();
    let id = inspect(&d, "{{.Id}}", "v1");
    assert_eq!((row[0], row[1], row[5]), (&id[..12], "v1", "64MiB"), "{ours}");
    assert!(row[2].ends_with('%') && row[6].ends_with('%') && row[13] == "1", "{ours}");
    let used = ours.lines().nth(1).unwrap();
    assert!(!used.contains("0B / 64MiB"), "a running process uses memory: {ours}");
    same(&d, &["stats", "--no-stream", "nosuch", "v1", "other"]);
    same(&d, &["stats", "--bogus"]);
    assert_eq!(cli(&d, &["stats", "--no-stream", "nosuch"]).status.code(), Some(1));
    // top: the header and the process, and the errors.
    let top = same(&d, &["top", "v1"]);
    let top = stdout(&top);
    assert!(top.starts_with("UID                 PID                 PPID"), "{top}");
    assert!(top.lines().nth(1).is_some_and(|l| l.ends_with("sleep 1000")), "{top}");
    same(&d, &["container", "top", "v1", "-o", "pid"]);
    same(&d, &["top", "nosuch"]);
    same(&d, &["top"]);
    // port: nothing is published; every form and error reads as docker's.
    for args in [
        &["port", "v1"][..],
        &["port", "v1", "80"],
        &["port", "v1", "80/tcp"],
        &["port", "v1", "53/udp"],
        &["port", "v1", "abc"],
        &["port", "v1", "99999"],
        &["port", "nosuch"],
        &["port", "nosuch", "80"],
        &["port", "v1", "80", "90"],
        &["container", "port", "v1"],
    ] {
        same(&d, args);
    }
    let o = cli(&d, &["port", "v1", "80/tcp"]);
    assert_eq!((o.status.code(), stderr(&o).as_str()), (Some(1), "Error: No public port '80/tcp' published for v1\n"));
    // diff: the new file, the deleted one and their parent directories.
    eventually("diff shows /newfile", || stdout(&cli(&d, &["diff", "v1"])).contains("A /newfile"));
    let diff = stdout(&same(&d, &["diff", "v1"]));
    assert!(diff.contains("C /etc\n") && diff.contains("D /etc/group\n"), "{diff}");
    same(&d, &["container", "diff", "done2"]);
    same(&d, &["diff", "nosuch"]);
    same(&d, &["wait", "nosuch"]);
    same(&d, &["wait", "done2"]);
}

#[test]
fn pause_rename_export_update_match_docker() {
    let d = setup("cli-state");
    ok(cli(&d, &["run", "-d", "--name", "p1", "-m", "64m", "localhost/busybox", "sleep", "1000"]));
    ok(cli(&d, &["run", "--name", "ex", "localhost/busybox", "sh", "-c", "echo inside > /marker; rm /etc/group"]));
    // pause / unpause: the names printed, State.Paused follows, and the refusals read alike.
    assert_eq!(ok(cli(&d, &["pause", "p1"])), "p1\n");
    assert_eq!(inspect(&d, "{{.State.Status}} {{.State.Paused}}", "p1"), "paused true");
    same(&d, &["pause", "p1"]);
    assert_eq!(ok(cli(&d, &["container", "unpause", "p1"])), "p1\n");
    assert_eq!(inspect(&d, "{{.State.Status}} {{.State.Paused}}", "p1"), "running false");
    same(&d, &["unpause", "p1"]);
    let unpause = || {
        ok(d.docker(&["unpause", "p1"]));
    };
    let o = same_stateful(&d, &["pause", "nosuch", "p1", "other"], &unpause);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("p1\n", Some(1)));
    assert!(stderr(&o).contains("No such container: nosuch") && stderr(&o).contains("No such container: other"));
    same(&d, &["pause"]);
    same(&d, &["unpause", "nosuch"]);
    // rename: silent on success, docker's two lines on failure.
    assert_eq!(ok(cli(&d, &["rename", "p1", "p2"])), "");
    assert_eq!(inspect(&d, "{{.Name}}", "p2"), "/p2");
    same(&d, &["inspect", "p1"]);
    let back = || {
        ok(d.docker(&["rename", "p3", "p2"]));
    };
    same_stateful(&d, &["container", "rename", "p2", "p3"], &back);
    same(&d, &["rename", "nosuch", "xx"]);
    same(&d, &["rename", "p2", "p2"]);
    same(&d, &["rename", "p2", " "]);
    same(&d, &["rename", "p2"]);
    // export: the same archive entries as docker's, to a file and to a pipe.
    let (ours, theirs) = (d.dir.join("ours.tar"), d.dir.join("theirs.tar"));
    assert_eq!(ok(cli(&d, &["export", "-o", ours.to_str().unwrap(), "ex"])), "");
    ok(d.docker(&["export", "-o", theirs.to_str().unwrap(), "ex"]));
    let names = tar_list(&ours);
    assert_eq!(names, tar_list(&theirs));
    assert!(names.iter().any(|n| n == "marker") && !names.iter().any(|n| n == "etc/group"), "{names:?}");
    let piped = cli(&d, &["container", "export", "ex"]);
    std::fs::write(d.dir.join("piped.tar"), &piped.stdout).unwrap();
    assert_eq!(tar_list(&d.dir.join("piped.tar")), names);
    same(&d, &["export", "nosuch"]);
    same(&d, &["export", "-o", "/nonexistent-dir/x.tar", "ex"]);
    same(&d, &["export"]);
    // ...and refuses a terminal, as docker does.
    for prog in [PathBuf::from("docker"), client_path(&d)] {
        let cmd = format!("DOCKER_HOST=unix://{} {} export ex; echo EXIT=$?", d.socket.display(), prog.display());
        let o = Command::new("script").args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::null()).output().unwrap();
        let text = stdout(&o);
        assert!(
            text.contains("cowardly refusing to save to a terminal. Use the -o flag or redirect")
                && text.contains("EXIT=1"),
            "{}: {text}",
            prog.display()
        );
    }
    // update: the names printed, the record and the cgroup changed; docker's flag errors.
    assert_eq!(ok(cli(&d, &["update", "--memory", "128m", "--pids-limit", "20", "--cpu-shares", "512", "p2"])), "p2\n");
    assert_eq!(
        inspect(&d, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}}", "p2"),
        "134217728 20 512"
    );
    let id = inspect(&d, "{{.Id}}", "p2");
    let limit = std::fs::read_to_string(format!("/sys/fs/cgroup/memory/tug/{id}/memory.limit_in_bytes")).unwrap();
    assert_eq!(limit.trim(), "134217728");
    let o = ok(d.docker(&["update", "-m", "96m", "p2"]));
    assert_eq!(o, "p2\n");
    assert_eq!(ok(cli(&d, &["container", "update", "-m", "112m", "--cpus", "0.5", "p2"])), "p2\n");
    assert_eq!(inspect(&d, "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", "p2"), "117440512 500000000");
    assert_eq!(ok(cli(&d, &["update", "--restart", "on-failure:2", "p2"])), "p2\n");
    assert_eq!(inspect(&d, "{{.HostConfig.RestartPolicy.Name}}", "p2"), "on-failure");
    for args in [
        &["update", "p2"][..],
        &["update"],
        &["update", "--memory", "abc", "p2"],
        &["update", "-m", "1x", "p2"],
        &["update", "--cpus", "abc", "p2"],
        &["update", "--pids-limit", "x", "p2"],
        &["update", "-c", "x", "p2"],
        &["update", "--restart", "on-failure:x", "p2"],
        &["update", "--memory", "112m", "p2", "nosuch"],
    ] {
        same(&d, args);
    }
    assert_eq!(cli(&d, &["update", "-m", "abc", "p2"]).status.code(), Some(125));
    // container prune: the same report, each from its own stopped container.
    let prune_of = |o: Output, id: &str| stdout(&o).replace(id, "<id>");
    let theirs_id = ok(cli(&d, &["create", "--name", "x1", "localhost/busybox", "true"])).trim().to_string();
    ok(d.docker(&["rm", "ex"]));
    let theirs = prune_of(d.docker(&["container", "prune", "-f"]), &theirs_id);
    let ours_id = ok(cli(&d, &["create", "--name", "x2", "localhost/busybox", "true"])).trim().to_string();
    let ours = prune_of(cli(&d, &["container", "prune", "-f"]), &ours_id);
    assert_eq!(ours, theirs);
    assert!(ours.starts_with("Deleted Containers:\n<id>\n\nTotal reclaimed space: "), "{ours}");
}

#[test]
fn stats_streams_and_redraws() {
    let d = setup("cli-stream");
    ok(cli(&d, &["run", "-d", "--name", "s1", "localhost/busybox", "sleep", "1000"]));
    // Both clients redraw in place for about two seconds; neither ends on its own.
    let mut frames = Vec::new();
    for mut cmd in [cli_cmd(&d, &["stats", "s1"]), {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", d.socket.display())).args(["stats", "s1"]);
        c
    }] {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut buf);
            buf
        });
        std::thread::sleep(std::time::Duration::from_millis(2200));
        assert!(child.try_wait().unwrap().is_none(), "stats without --no-stream keeps going");
        // docker 28 ignores the first SIGTERM in stats; KILL ends both alike.
        child.kill().unwrap();
        child.wait().unwrap();
        frames.push(String::from_utf8(reader.join().unwrap()).unwrap());
    }
    // A frame: home, the table, the table again with erase-to-end on each line, erase below.
    // The numbers may differ between the two; the layout may not.
    let layout = |s: &str| -> String {
        let frame = s.split_inclusive("\x1b[J").next().unwrap_or("").to_string();
        frame.lines().map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("|")
    };
    let (ours, theirs) = (&frames[0], &frames[1]);
    assert!(ours.starts_with("\x1b[HCONTAINER ID   NAME      CPU %"), "{ours:?}");
    assert!(ours.matches("\x1b[J").count() >= 2, "redrawn at least twice in two seconds: {ours:?}");
    assert_eq!(layout(ours), layout(theirs), "\n{ours:?}\n{theirs:?}");
    assert!(ours.contains(" s1 ") && ours.contains(" \x1b[K\n \x1b[K\n\x1b[J"), "{ours:?}");
}

#[test]
fn interactive_sessions_through_a_pty() {
    let d = setup("cli-pty");
    let tug = client_path(&d);
    let host = format!("DOCKER_HOST=unix://{}", d.socket.display());
    // `run -it`: a real terminal (script(1)), input after the shell is up, the exit code back.
    let cmd = format!("{host} {} run -it --rm localhost/busybox sh", tug.display());
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    use std::io::Write;
    stdin.write_all(b"echo $((6*7)); tty\nexit 5\n").unwrap();
    let st = wait_bounded(&mut child, 20, "run -it");
    drop(stdin);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut text).unwrap();
    assert_eq!(st.code(), Some(5), "{text}");
    assert!(text.contains("42") && text.contains("/dev/pts/0"), "{text}");
    // `attach` to a running TTY container, then the detach keys: both clients print docker's
    // "read escape sequence", exit 1 and leave the container running.
    ok(cli(&d, &["run", "-d", "-it", "--name", "tt", "localhost/busybox", "sh"]));
    for prog in [tug.clone(), PathBuf::from("docker")] {
        let cmd = format!("{host} {} attach tt; echo EXIT=$?", prog.display());
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let rx = lines_of(&mut child);
        std::thread::sleep(std::time::Duration::from_millis(1000));
        stdin.write_all(b"echo $((6*7))\n").unwrap();
        let mut seen = String::new();
        while !seen.lines().any(|l| l == "42") {
            match rx.recv_timeout(std::time::Duration::from_secs(10)) {
                Ok(l) => seen.push_str(&l),
                Err(e) => panic!("{} attach: no 42 ({e}) in {seen:?}", prog.display()),
            }
            seen.push('\n');
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        stdin.write_all(&[0x10, 0x11]).unwrap();
        let mut rest = String::new();
        while !rest.contains("EXIT=") {
            rest.push_str(&next_line(&rx, 10, &format!("{} attach: detach", prog.display())));
            rest.push('\n');
        }
        wait_bounded(&mut child, 10, "attach");
        assert!(rest.contains("read escape sequence\nEXIT=1\n"), "{}: {rest:?}", prog.display());
        assert_eq!(inspect(&d, "{{.State.Status}}", "tt"), "running");
    }
    ok(cli(&d, &["rm", "-f", "tt"]));
    // `logs -f` streams while the container writes: the first line arrives long before the end.
    ok(cli(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "ticker",
            "localhost/busybox",
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6; do echo tick$i; sleep 0.5; done",
        ],
    ));
    let t0 = std::time::Instant::now();
    let mut follow =
        cli_cmd(&d, &["logs", "-f", "ticker"]).stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap();
    let rx = lines_of(&mut follow);
    assert_eq!(next_line(&rx, 10, "logs -f"), "tick1");
    assert!(t0.elapsed() < std::time::Duration::from_millis(2500), "the first line came only at the end");
    let st = wait_bounded(&mut follow, 20, "logs -f");
    let rest: Vec<String> = rx.iter().collect();
    assert!(st.success());
    assert_eq!(rest, ["tick2", "tick3", "tick4", "tick5", "tick6"]);
    assert_eq!(ok(cli(&d, &["logs", "-f", "ticker"])), ok(d.docker(&["logs", "-f", "ticker"])));
}

/// An attached `run` of a container that reports USR1 and TERM, with `extra` flags, through
/// `prog`; returns the child and its stdout lines once the container is ready.
fn trap_run(
    d: &Daemon,
    prog: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let script =
        "trap 'echo got; exit 3' USR1; trap 'echo term; exit 4' TERM; echo ready; while true; do sleep 0.1; done";
    let mut args = vec!["run", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["localhost/busybox", "sh", "-c", script]);
    let mut child = Command::new(prog)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    assert_eq!(next_line(&rx, 15, &format!("{} {name}", prog.display())), "ready");
    (child, rx)
}

#[test]
fn sig_proxy_forwards_or_not_like_docker() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let d = setup("cli-sig");
    for prog in [client_path(&d), PathBuf::from("docker")] {
        let who = prog.display().to_string();
        let tag = if prog == std::path::Path::new("docker") { "d" } else { "t" };
        // Default (--sig-proxy=true): USR1 and TERM reach the container, whose exit code comes back.
        for (sig, extra, word, code) in
            [(Signal::SIGUSR1, &[][..], "got", 3), (Signal::SIGTERM, &["--sig-proxy=true"][..], "term", 4)]
        {
            let name = format!("{tag}-{code}");
            let (mut child, rx) = trap_run(&d, &prog, &name, extra);
            kill(Pid::from_raw(child.id() as i32), sig).unwrap();
            let st = wait_bounded(&mut child, 15, &format!("{who} run after {sig}"));
            assert_eq!(st.code(), Some(code), "{who}: {sig}");
            assert_eq!(rx.iter().collect::<Vec<_>>(), [word], "{who}: {sig}");
            ok(cli(&d, &["rm", &name]));
        }
        // --sig-proxy=false: USR1 stays with the client (which keeps running) and never reaches
        // the container.
        let name = format!("{tag}-noproxy");
        let (mut child, _rx) = trap_run(&d, &prog, &name, &["--sig-proxy=false"]);
        kill(Pid::from_raw(child.id() as i32), Signal::SIGUSR1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1000));
        assert!(child.try_wait().unwrap().is_none(), "{who}: the client outlives an unforwarded USR1");
        assert_eq!(inspect(&d, "{{.State.Status}}", &name), "running", "{who}");
        assert_eq!(ok(cli(&d, &["logs", &name])), "ready\n", "{who}: the trap must not have run");
        // Removing the container ends the attached client.
        ok(cli(&d, &["rm", "-f", &name]));
        wait_bounded(&mut child, 15, &format!("{who} run after rm -f"));
    }
}

#[test]
fn exec_matches_docker() {
    let d = setup("cli-exec");
    ok(cli(&d, &["run", "-d", "--name", "x1", "-e", "BASE=1", "localhost/busybox", "sleep", "1000"]));
    let env_file = d.dir.join("env.list");
    std::fs::write(&env_file, "# comment\nFROMFILE=3\n").unwrap();
    let env_file = env_file.to_str().unwrap();
    // Output on both streams and the exit code; the flags reach the process.
    for args in [
        &["exec", "-e", "EXTRA=2", "x1", "sh", "-c", "echo out $BASE $EXTRA; echo err >&2; exit 5"][..],
        &["exec", "--env-file", env_file, "x1", "sh", "-c", "echo $FROMFILE"],
        &["exec", "-u", "nobody", "-w", "/tmp", "x1", "sh", "-c", "id -un; pwd"],
        &["container", "exec", "--privileged", "x1", "sh", "-c", "grep -c CapEff /proc/self/status"],
        // Not found / not executable: 127 / 126 with the runtime's reason.
        &["exec", "x1", "no-such-cmd"],
        &["exec", "x1", "/etc/passwd"],
        // -t needs a terminal on stdin when stdin is attached.
        &["exec", "-it", "x1", "true"],
        &["exec", "nosuch", "true"],
        &["exec", "x1"],
    ] {
        same(&d, args);
    }
    let o = cli(&d, &["exec", "x1", "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", show(&o));
    assert_eq!(cli(&d, &["exec", "x1", "no-such-cmd"]).status.code(), Some(127));
    assert_eq!(cli(&d, &["exec", "x1", "/etc/passwd"]).status.code(), Some(126));
    // stdin with -i, and its end closes the process's.
    use std::io::Write;
    let mut child = cli_cmd(&d, &["exec", "-i", "x1", "sh", "-c", "tr a-z A-Z; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    assert_eq!(stdout(&child.wait_with_output().unwrap()), "PIPED\ndone\n");
    // -d returns at once; the process runs on.
    assert_eq!(ok(cli(&d, &["exec", "-d", "x1", "sh", "-c", "sleep 0.3; echo bg > /tmp/bg"])), "");
    eventually("exec -d wrote its file", || cli(&d, &["exec", "x1", "cat", "/tmp/bg"]).stdout == b"bg\n");
    // -it through a real terminal: a pty of the client's size, and the exit code.
    let cmd = format!(
        "stty rows 33 cols 101; DOCKER_HOST=unix://{} {} exec -it x1 sh -c 'tty; stty size; exit 4'",
        d.socket.display(),
        client_path(&d).display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_bounded(&mut child, 20, "exec -it");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut text).unwrap();
    assert_eq!(st.code(), Some(4), "{text}");
    assert!(text.contains("/dev/pts/") && text.contains("33 101"), "{text}");
    // A shell through the pty: input typed after it starts, then the detach keys end the session
    // as docker's does (exit 1, "read escape sequence"), the shell left running.
    let cmd = format!(
        "DOCKER_HOST=unix://{} {} exec -it --detach-keys ctrl-x x1 sh; echo EXIT=$?",
        d.socket.display(),
        client_path(&d).display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let rx = lines_of(&mut child);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    stdin.write_all(b"echo $((6*7))\n").unwrap();
    let mut seen = String::new();
    while !seen.lines().any(|l| l.trim_end() == "42") {
        seen.push_str(&next_line(&rx, 10, "exec -it: 42"));
        seen.push('\n');
    }
    stdin.write_all(&[0x18]).unwrap();
    let mut rest = String::new();
    while !rest.contains("EXIT=") {
        rest.push_str(&next_line(&rx, 10, "exec -it: detach"));
        rest.push('\n');
    }
    wait_bounded(&mut child, 10, "exec -it detach");
    assert!(rest.contains("read escape sequence") && rest.contains("EXIT=1"), "{rest:?}");
    // A stopped container: docker's 409 wording, exit 1, from both.
    ok(cli(&d, &["stop", "-t", "0", "x1"]));
    let o = same(&d, &["exec", "x1", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("Error response from daemon: container ") && stderr(&o).contains("is not running"));
}

#[test]
fn volume_verbs_match_docker() {
    let d = setup("cli-vol");
    assert_eq!(ok(cli(&d, &["volume", "create", "--label", "team=a", "--label", "b=2", "v1"])), "v1\n");
    assert_eq!(
        ok(cli(&d, &["volume", "create", "-d", "local", "-o", "type=tmpfs", "-o", "device=tmpfs", "v10"])),
        "v10\n"
    );
    assert_eq!(ok(cli(&d, &["volume", "create", "--name", "v2"])), "v2\n");
    let anon = ok(cli(&d, &["volume", "create"]));
    assert_eq!(anon.trim().len(), 64, "{anon}");
    ok(cli(&d, &["create", "--name", "user", "-v", "v1:/data", "localhost/busybox", "true"]));
    for args in [
        &["volume", "ls"][..],
        &["volume", "ls", "-q"],
        &["volume", "list", "--format", "{{json .}}"],
        &["volume", "ls", "--format", "json"],
        &["volume", "ls", "--format", "table {{.Name}}\\t{{.Driver}}\\t{{.Labels}}\\t{{.Scope}}\\t{{.Mountpoint}}"],
        &["volume", "ls", "--format", "table {{.Name}}\\t{{.Links}}\\t{{.Size}}\\t{{.Status}}"],
        &["volume", "ls", "--filter", "label=team", "--format", "{{.Name}} {{.Label \"team\"}}"],
        &["volume", "ls", "-q", "--filter", "dangling=true"],
        &["volume", "ls", "--filter", "bogus=1"],
        &["volume", "ls", "--filter", "nonsense"],
        &["volume", "inspect", "v1", "v10"],
        &["volume", "inspect", "-f", "{{.Name}} {{.Labels}} {{json .Options}} {{.Driver}}", "v10"],
        // The error cases: a missing volume, a name given twice, too many names, one in use.
        &["volume", "inspect", "v1", "nosuch"],
        &["volume", "inspect", "nosuch"],
        &["volume", "create", "--name", "x", "y"],
        &["volume", "create", "a", "b"],
        &["volume", "rm", "v1"],
        // Without -f, the prompt; no answer cancels.
        &["volume", "prune"],
        &["volume", "prune", "-a"],
        &["volume", "prune", "-a", "--filter", "all=1"],
    ] {
        same(&d, args);
    }
    let recreate = || {
        for v in ["v2", "v3"] {
            ok(d.docker(&["volume", "create", v]));
        }
        ok(d.docker(&["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "v10"]));
    };
    recreate();
    same_stateful(&d, &["volume", "rm", "v2", "nosuch", "v3"], &recreate);
    same_stateful(&d, &["volume", "rm", "-f", "nosuch", "v2"], &recreate);
    // prune: anonymous only by default (their names differ between the runs, so they are
    // masked), every unused one with --all; v1 stays (in use).
    let anon_again = || {
        recreate();
        ok(d.docker(&["volume", "create"]));
    };
    let mask = |o: &Output| -> String {
        let text = format!("{}|{}|{:?}", stdout(o), stderr(o), o.status.code());
        text.split('\n').map(|l| if l.len() == 64 { "<anonymous>" } else { l }).collect::<Vec<_>>().join("\n")
    };
    ok(d.docker(&["volume", "prune", "-f"]));
    anon_again();
    let theirs = mask(&d.docker(&["volume", "prune", "-f"]));
    anon_again();
    let ours = mask(&cli(&d, &["volume", "prune", "-f"]));
    assert_eq!(ours, theirs);
    assert_eq!(ours, "Deleted Volumes:\n<anonymous>\n\nTotal reclaimed space: 0B\n||Some(0)");
    let o = same_stateful(&d, &["volume", "prune", "-f", "--all", "--filter", "label!=team"], &recreate);
    assert!(stdout(&o).starts_with("Deleted Volumes:\nv10\nv2\nv3\n\n"), "{}", show(&o));
    recreate();
    assert_eq!(ok(cli(&d, &["volume", "prune", "-af"])).lines().filter(|l| l.starts_with('v')).count(), 3);
    assert_eq!(ok(cli(&d, &["volume", "ls", "-q"])), "v1\n");
}

#[test]
fn events_match_docker() {
    let d = setup("cli-events");
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let since = now().to_string();
    // A live subscriber (ours), filtered to one container, started before anything happens.
    let mut live =
        cli_cmd(&d, &["events", "--filter", "container=ev", "--format", "{{.Action}} {{.Actor.Attributes.name}}"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
    let rx = lines_of(&mut live);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        cli(&d, &["run", "--name", "ev", "-l", "zz=last", "localhost/busybox", "sh", "-c", "exit 3"]).status.code(),
        Some(3)
    );
    // It streams: the first event arrives while the subscriber runs on.
    assert_eq!(next_line(&rx, 10, "events: create"), "create ev");
    ok(cli(&d, &["run", "-d", "--name", "ev2", "localhost/busybox", "sleep", "100"]));
    ok(cli(&d, &["exec", "ev2", "true"]));
    ok(cli(&d, &["volume", "create", "evv"]));
    ok(cli(&d, &["rm", "-f", "ev", "ev2"]));
    ok(cli(&d, &["volume", "rm", "evv"]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut rest = Vec::new();
    while !rest.iter().any(|l| l == "destroy ev") {
        rest.push(next_line(&rx, 10, "events: destroy"));
    }
    assert!(live.try_wait().unwrap().is_none(), "events without --until runs until interrupted");
    live.kill().unwrap();
    live.wait().unwrap();
    assert_eq!(rest, ["attach ev", "start ev", "die ev", "destroy ev"]);
    let until = (now() + 1).to_string();
    for args in [
        &["events", "--since", &since, "--until", &until][..],
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Status}} {{.ID}} {{.From}} {{.Scope}}",
        ],
        &["events", "--since", &since, "--until", &until, "--format", "{{json .}}"],
        &["system", "events", "--since", &since, "--until", &until, "--format", "json", "--filter", "type=volume"],
        &["events", "--since", &since, "--until", &until, "--filter", "event=die", "--filter", "event=destroy"],
        &["events", "--since", &since, "--until", &until, "--filter", "container=ev2", "--filter", "event=exec_die"],
        &["events", "--since", "1m", "--until", &until, "--filter", "label=zz", "--format", "{{.Action}}"],
        // Errors: a bad filter from the daemon; a template that does not parse.
        &["events", "--until", &until, "--filter", "bogus=1"],
        &["events", "--until", &until, "--filter", "nonsense"],
        &["events", "--until", &until, "--format", "{{.Type"],
    ] {
        same(&d, args);
    }
    // The default line: RFC 3339 with nanoseconds, then type, action, ID and sorted attributes.
    let all = ok(cli(
        &d,
        &["events", "--since", &since, "--until", &until, "--filter", "event=create", "--filter", "container=ev"],
    ));
    let line = all.lines().next().unwrap();
    let (time, rest) = line.split_once(' ').unwrap();
    assert!(time.len() == 30 && time.ends_with('Z') && time.as_bytes()[19] == b'.', "{line}");
    assert!(
        rest.starts_with("container create ") && rest.ends_with(" (image=localhost/busybox, name=ev, zz=last)"),
        "{line}"
    );
    // A template that fails on a message exits 64, as docker's.
    let o = cli(&d, &["events", "--until", &until, "--format", "{{.Nope}}"]);
    assert_eq!(o.status.code(), Some(64), "{}", show(&o));
    assert!(stderr(&o).starts_with("Error parsing format: template: "), "{}", show(&o));
}

/// A directory tree as sorted lines: path, kind, permissions, size and file contents.
fn tree(root: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let what = if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
            "dir".to_string()
        } else if m.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&p).unwrap().display())
        } else {
            format!("file {:?}", std::fs::read_to_string(&p).unwrap_or_default())
        };
        out.push(format!("{rel} {what} {:o}", m.permissions().mode() & 0o7777));
    }
    out.sort();
    out
}

#[test]
fn cp_matches_docker() {
    let d = setup("cli-cp");
    let script = "mkdir -p /d/sub && echo a > /d/a && echo b > /d/sub/b && chmod 600 /d/sub/b && ln -s a /d/link \
                  && ln -s /d /dl && echo f > /f && exec sleep 1000";
    ok(cli(&d, &["run", "-d", "--name", "c1", "localhost/busybox", "sh", "-c", script]));
    eventually("c1 set up", || cli(&d, &["exec", "c1", "test", "-e", "/f"]).status.success());
    // From the container: each case with each client into a fresh directory that holds an
    // existing directory and file; the trees must match.
    let run_both = |args: &[&str], prepare: &dyn Fn(&std::path::Path)| -> Vec<String> {
        let mut results = Vec::new();
        for who in ["docker", "tug"] {
            let dir = d.dir.join(&format!("cp-{who}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("exist")).unwrap();
            std::fs::write(dir.join("file"), "old\n").unwrap();
            prepare(&dir);
            let mut cmd = if who == "docker" {
                let mut c = Command::new("docker");
                c.env("DOCKER_HOST", format!("unix://{}", d.socket.display())).args(args);
                c
            } else {
                cli_cmd(&d, args)
            };
            let o = cmd.current_dir(&dir).stdin(Stdio::null()).output().unwrap();
            let text = show(&o).replace(&dir.display().to_string(), "DIR");
            results.push(format!("{text}\n{}", tree(&dir).join("\n")));
        }
        assert_eq!(results[0], results[1], "cp {args:?}\n--- docker:\n{}\n--- tug:\n{}", results[0], results[1]);
        results.pop().unwrap().lines().map(str::to_string).collect()
    };
    let nothing = |_: &std::path::Path| {};
    for (src, dst) in [
        ("c1:/f", "."),
        ("c1:/f", "new"),
        ("c1:/f", "exist"),
        ("c1:/f", "exist/"),
        ("c1:/f", "file"),
        ("c1:f", "new/"),
        ("c1:/d", "."),
        ("c1:/d", "newd"),
        ("c1:/d", "exist"),
        ("c1:/d/", "newd"),
        ("c1:/d", "file"),
        ("c1:/d/link", "."),
        ("c1:/dl", "x"),
        ("c1:/nosuch", "."),
        ("c1:/f", "no/such/dir"),
        ("nosuch:/f", "."),
        ("c1:/f", "c1:/g"),
        ("f", "g"),
    ] {
        run_both(&["cp", src, dst], &nothing);
    }
    let t = run_both(&["cp", "-L", "c1:/d/link", "got"], &nothing);
    assert!(t.iter().any(|l| l == "got file \"a\\n\" 644"), "{t:?}");
    // A trailing `/` on a symlink to a directory: the copy is the directory, under the name
    // asked for; `SRC/.` is the directory's contents, into an existing directory or as a new
    // one. Both clients, the same trees.
    run_both(&["cp", "-L", "c1:/dl/", "x"], &nothing);
    run_both(&["container", "cp", "c1:/dl/", "y"], &nothing);
    run_both(&["cp", "c1:/d/.", "exist"], &nothing);
    let t = run_both(&["cp", "c1:/d/.", "newd"], &nothing);
    assert!(t.iter().any(|l| l.starts_with("newd/sub/b file")), "{t:?}");
    // A symlink destination is followed.
    run_both(&["cp", "c1:/f", "tolink"], &|dir| std::os::unix::fs::symlink("exist", dir.join("tolink")).unwrap());
    // `-` writes the archive itself.
    let o = cli(&d, &["cp", "c1:/d", "-"]);
    let tar = d.dir.join("out.tar");
    std::fs::write(&tar, &o.stdout).unwrap();
    assert_eq!(tar_list(&tar), ["d/", "d/a", "d/link", "d/sub/", "d/sub/b"]);

    // Into the container: a local tree, each case run by both clients against a reset /t.
    let src = d.dir.join("src");
    std::fs::create_dir_all(src.join("d/sub")).unwrap();
    std::fs::write(src.join("d/a"), "a\n").unwrap();
    std::fs::write(src.join("d/sub/b"), "b\n").unwrap();
    std::os::unix::fs::symlink("a", src.join("d/link")).unwrap();
    std::os::unix::fs::symlink("d", src.join("dl")).unwrap();
    std::fs::write(src.join("f"), "f\n").unwrap();
    std::os::unix::fs::chown(src.join("f"), Some(1000), Some(1000)).unwrap();
    let in_container = || -> String {
        let find = "cd /t && find . | sort | while read f; do echo \"$f $(stat -c '%F %a %s %u' \"$f\")\"; done";
        ok(cli(&d, &["exec", "c1", "sh", "-c", find]))
    };
    let reset = || {
        ok(cli(&d, &["exec", "c1", "sh", "-c", "rm -rf /t; mkdir -p /t/exist; echo old > /t/file"]));
    };
    let to_both = |args: &[&str]| -> String {
        let mut results = Vec::new();
        for who in ["docker", "tug"] {
            reset();
            let o = if who == "docker" {
                Command::new("docker")
                    .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
                    .args(args)
                    .current_dir(&src)
                    .stdin(Stdio::null())
                    .output()
                    .unwrap()
            } else {
                cli_cmd(&d, args).current_dir(&src).stdin(Stdio::null()).output().unwrap()
            };
            // docker logs its abandoned tar writer (`time="…" level=error …`) when the copy is
            // refused; that noise is not part of the result.
            let shown = show(&o);
            let text: Vec<&str> = shown.lines().filter(|l| !l.starts_with("time=\"")).collect();
            results.push(format!("{}\n{}", text.join("\n"), in_container()));
        }
        assert_eq!(results[0], results[1], "cp {args:?}\n--- docker:\n{}\n--- tug:\n{}", results[0], results[1]);
        results.pop().unwrap()
    };
    for (s, t) in [
        ("f", "c1:/t/"),
        ("f", "c1:/t/new"),
        ("f", "c1:/t/exist"),
        ("f", "c1:/t/file"),
        ("f", "c1:/t/nodir/"),
        ("d", "c1:/t/"),
        ("d", "c1:/t/newd"),
        ("d", "c1:/t/exist"),
        ("d/.", "c1:/t/exist"),
        ("d/.", "c1:/t/newd"),
        ("dl", "c1:/t/exist"),
        ("dl/", "c1:/t/exist"),
        ("nosuch", "c1:/t/"),
        ("f", "c1:/t/no/such/dir"),
        ("f", "nosuch:/t/"),
    ] {
        to_both(&["cp", s, t]);
    }
    let r = to_both(&["cp", "-L", "dl", "c1:/t/exist"]);
    assert!(r.contains("./exist/dl/sub/b regular file"), "{r}");
    let r = to_both(&["cp", "-a", "f", "c1:/t/"]);
    assert!(r.contains("./f regular file 644 2 1000"), "{r}");
    let r = to_both(&["cp", "f", "c1:/t/"]);
    assert!(r.contains("./f regular file 644 2 0"), "{r}");
    // A tar on stdin needs a directory destination.
    let tarball = d.dir.join("in.tar");
    let st = Command::new("tar").arg("-C").arg(&src).arg("-cf").arg(&tarball).args(["d", "f"]).status().unwrap();
    assert!(st.success());
    for dst in ["c1:/t/exist", "c1:/t/file"] {
        let mut results = Vec::new();
        for prog in [PathBuf::from("docker"), client_path(&d)] {
            reset();
            let o = Command::new(prog)
                .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
                .args(["cp", "-", dst])
                .stdin(std::fs::File::open(&tarball).unwrap())
                .output()
                .unwrap();
            results.push(format!("{}\n{}", show(&o), in_container()));
        }
        assert_eq!(results[0], results[1]);
    }
    // A stopped container works the same way.
    ok(cli(&d, &["stop", "-t", "0", "c1"]));
    run_both(&["cp", "c1:/d", "."], &nothing);
    let o = cli_cmd(&d, &["cp", "f", "c1:/f2"]).current_dir(&src).output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let o = cli_cmd(&d, &["cp", "c1:/f2", "-"]).output().unwrap();
    std::fs::write(&tar, &o.stdout).unwrap();
    assert_eq!(tar_list(&tar), ["f2"]);
}

/// `text` with every 64-digit hex run (container, volume and image IDs) as `<id>`.
fn mask_ids(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let n = b[i..].iter().take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()).count();
        if n == 64 {
            out.push_str("<id>");
            i += n;
        } else {
            let step = n.max(1);
            out.push_str(&text[i..i + step]);
            i += step;
        }
    }
    out
}

/// Runs `args` with `input` on stdin, with the real CLI or ours.
fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    wait_bounded(&mut child, 60, "prune with an answer");
    child.wait_with_output().unwrap()
}

/// As `same_stateful` for a destructive verb whose report names new IDs: `reset` builds the
/// same state before each client runs, `input` answers the prompt, and IDs are masked.
fn same_after(d: &Daemon, args: &[&str], input: &str, reset: &dyn Fn()) -> String {
    let shown = |o: &Output| mask_ids(&format!("{}|{}|{:?}", stdout(o), stderr(o), o.status.code()));
    reset();
    let mut theirs = Command::new("docker");
    theirs.env("DOCKER_HOST", format!("unix://{}", d.socket.display())).args(args);
    let theirs = shown(&run_with_stdin(theirs, input));
    reset();
    let ours = shown(&run_with_stdin(cli_cmd(d, args), input));
    assert_eq!(ours, theirs, "docker {args:?} with {input:?} on stdin");
    ours
}

#[test]
fn commit_matches_docker() {
    let d = setup("cli-commit");
    let sh = "echo made > /made; rm /bin/ls; sleep 1000";
    ok(cli(&d, &["run", "-d", "--name", "cm", "-e", "X=1", "localhost/busybox", "sh", "-c", sh]));
    eventually("/made written", || cli(&d, &["exec", "cm", "test", "-e", "/made"]).status.success());
    // Each client commits the same container under its own name; each prints the new image's ID.
    let args = |name: &'static str| -> Vec<&'static str> {
        vec!["commit", "-m", "the message", "-a", "someone", "-c", "CMD [\"cat\", \"/made\"]", "cm", name]
    };
    let theirs = d.docker(&args("theirs:1"));
    let ours = cli(&d, &args("ours:1"));
    for o in [&theirs, &ours] {
        let id = stdout(o);
        assert!(id.starts_with("sha256:") && id.len() == 72 && id.ends_with('\n'), "{}", show(o));
        assert_eq!((stderr(o).as_str(), o.status.code()), ("", Some(0)));
    }
    assert_eq!(inspect(&d, "{{.Id}}", "ours:1"), stdout(&ours).trim());
    let f = "{{.Author}}|{{.Comment}}|{{json .Config.Cmd}}|{{.Config.Env}}|{{len .RootFS.Layers}}|{{.Size}}";
    assert_eq!(inspect(&d, f, "ours:1"), inspect(&d, f, "theirs:1"));
    assert_eq!(inspect(&d, "{{.Author}}|{{.Comment}}", "ours:1"), "someone|the message");
    assert_eq!(ok(cli(&d, &["run", "--rm", "ours:1"])), "made\n");
    assert_eq!(inspect(&d, "{{.State.Status}}", "cm"), "running");
    // Without a name (dangling), without pausing, under the group name.
    for args in [&["container", "commit", "--pause=false", "cm"][..], &["commit", "-p=false", "cm", "ours"]] {
        let o = cli(&d, args);
        assert!(stdout(&o).starts_with("sha256:") && stdout(&o).len() == 72, "{}", show(&o));
    }
    assert_eq!(inspect(&d, "{{index .RepoTags 0}}", "ours"), "ours:latest");
    // The refusals: an unknown container, names docker's client rejects, flag and count errors.
    for args in [
        &["commit", "nosuch", "x:1"][..],
        &["commit", "nosuch"],
        &["commit"],
        &["commit", "cm", "a", "b"],
        &["commit", "cm", "-m", "flags end at the container"],
        &["commit", " "],
        &["commit", "cm", "Bad:Name"],
        &["commit", "cm", "x@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
        &["commit", "-p=maybe", "cm"],
        &["commit", "-c", "BOGUS x", "cm"],
        &["container", "commit", "--bogus", "cm"],
    ] {
        same(&d, args);
    }
    assert_eq!(cli(&d, &["commit", "nosuch"]).status.code(), Some(1));
    assert_eq!(cli(&d, &["commit", "-p=maybe", "cm"]).status.code(), Some(125));
}

#[test]
fn system_df_and_prune_match_docker() {
    let d = setup("cli-sys");
    ok(cli(&d, &["run", "-d", "--name", "up", "-v", "used:/u", "localhost/busybox", "sleep", "1000"]));
    ok(cli(
        &d,
        &["run", "--name", "done", "-v", "/anon", "localhost/busybox", "sh", "-c", "head -c 3000 /dev/zero >/big"],
    ));
    ok(cli(&d, &["volume", "create", "spare"]));
    ok(cli(&d, &["commit", "done", "kept:1"]));
    for args in [
        &["system", "df"][..],
        &["system", "df", "-v"],
        &["system", "df", "--format", "json"],
        &["system", "df", "--format", "{{json .}}"],
        &["system", "df", "--format", "raw"],
        &["system", "df", "--format", "table"],
        &["system", "df", "--format", "table {{.Type}}\\t{{.Reclaimable}}\\t{{.Size}}"],
        &["system", "df", "--format", "{{.Type}}: {{.TotalCount}}/{{.Active}}"],
        &["system", "df", "-v", "--format", "{{json .}}"],
        &["system", "df", "-v", "--format", "json"],
        &["system", "df", "-v", "--format", "raw"],
        &["system", "df", "-v", "--format", "table"],
        &["system", "df", "-v", "--format", "{{range .Volumes}}{{.Name}}={{.Links}} {{end}}"],
        &["system", "df", "-v", "--format", "{{json .Images}}"],
        // The errors: bad templates, a field the context lacks, an argument.
        &["system", "df", "--format", "{{.Type"],
        &["system", "df", "--format", "{{.Bogus}}"],
        &["system", "df", "--format", "x {{.Type}} {{.Nope.X}}"],
        &["system", "df", "-v", "--format", "table {{.Type}}"],
        &["system", "df", "-v", "--format", "{{.Images"],
        &["system", "df", "extra"],
        &["system", "df", "--bogus"],
    ] {
        same(&d, args);
    }
    let o = cli(&d, &["system", "df", "--format", "{{.Type"]);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("", Some(1)));
    let summary = ok(cli(&d, &["system", "df"]));
    assert!(summary.contains("\nContainers      2         1         3kB       3kB (100%)\n"), "{summary}");

    // Prompts: no answer or anything but y cancels, quietly and successfully.
    for args in [
        &["system", "prune"][..],
        &["system", "prune", "-a", "--volumes", "--filter", "label=a", "--filter", "label!=b", "--filter", "x=1"],
        &["container", "prune"],
        &["image", "prune"],
        &["image", "prune", "-a"],
        // Refused before asking.
        &["system", "prune", "--volumes", "--filter", "until=1h"],
        &["system", "prune", "--filter", "nonsense"],
        &["container", "prune", "--filter", "nonsense"],
        &["system", "prune", "extra"],
    ] {
        same(&d, args);
    }
    // From here on, each round starts from the same state: the running container, its image, the
    // named volumes, and what `state` makes again.
    ok(cli(&d, &["rm", "-v", "done"]));
    ok(cli(&d, &["rmi", "kept:1"]));
    let state = || {
        let _ = d.docker(&["rm", "-f", "-v", "gone"]);
        let _ = d.docker(&["rmi", "unused:1", "unused:2"]);
        ok(d.docker(&["image", "prune", "-f"]));
        ok(d.docker(&["volume", "prune", "-f"]));
        let sh = "head -c 5000 /dev/zero >/big";
        ok(d.docker(&["run", "--name", "gone", "-v", "/anon2", "localhost/busybox", "sh", "-c", sh]));
        ok(d.docker(&["commit", "gone"]));
        ok(d.docker(&["commit", "gone", "unused:1"]));
        ok(d.docker(&["tag", "unused:1", "unused:2"]));
    };
    let o = same_after(&d, &["container", "prune"], "yes\n", &state);
    assert!(o.ends_with("[y/N] ||Some(0)"), "{o}");
    let o = same_after(&d, &["container", "prune"], "y\n", &state);
    assert!(o.contains("[y/N] Deleted Containers:\n<id>\n\nTotal reclaimed space: 5kB\n"), "{o}");
    let o = same_after(&d, &["image", "prune", "-f"], "", &state);
    assert!(o.starts_with("Deleted Images:\ndeleted: sha256:<id>\n"), "{o}");
    let o = same_after(&d, &["image", "prune", "-a", "--force"], "", &state);
    assert!(o.contains("untagged: unused:1\nuntagged: unused:2\n"), "{o}");
    same_after(&d, &["image", "prune", "-af", "--filter", "label=none"], "", &state);
    let o = same_after(&d, &["system", "prune", "--volumes"], "Y\n", &state);
    assert!(o.contains("Deleted Containers:\n<id>\n\nDeleted Volumes:\n"), "{o}");
    assert!(o.contains("Deleted Images:\n") && o.contains("\nTotal reclaimed space: "), "{o}");
    let o = same_after(&d, &["system", "prune", "-a", "-f"], "", &state);
    assert!(o.contains("untagged: unused:1\n") && !o.contains("Deleted Volumes:"), "{o}");
    // Nothing left to prune: the bare total.
    assert_eq!(same_after(&d, &["system", "prune", "-af"], "", &|| {}), "Total reclaimed space: 0B\n||Some(0)");
    // What stays: the running container, its image and the named volumes.
    assert_eq!(ok(cli(&d, &["ps", "-a", "--format", "{{.Names}}"])), "up\n");
    assert_eq!(ok(cli(&d, &["images", "--format", "{{.Repository}}"])), "localhost/busybox\n");
    same(&d, &["system", "df"]);
}
