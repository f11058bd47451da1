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
