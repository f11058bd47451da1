//! Container routes: create, start, wait, attach, list, inspect, logs, stop, kill, restart,
//! remove, resize. The lifecycle itself is in `containers.rs`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::api::{ApiError, ApiResult, Responder};
use super::containers::{human_status, parse_rfc3339, Record};
use super::http::{Body, Head};
use super::images::parse_filters;
use super::Engine;

/// The largest create body accepted.
const MAX_BODY: usize = 4 << 20;

pub fn create(e: &Engine, head: &Head, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    let data = body.read_all(MAX_BODY).map_err(|err| ApiError::bad_request(format!("cannot read body: {err}")))?;
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid JSON: request body is empty"));
    }
    let rec = e.containers.create(head.param("name"), &data, &e.images)?;
    r.json(201, &json!({"Id": rec.id, "Warnings": []}))?;
    Ok(())
}

pub fn start(e: &Engine, id: &str, r: &mut Responder<'_>) -> ApiResult {
    if e.containers.start(id)? {
        r.empty(204)?;
    } else {
        r.empty(304)?;
    }
    Ok(())
}

/// `POST /containers/{id}/wait`: headers go out at once (the CLI starts the container only after
/// it sees them), the status when the condition holds.
pub fn wait(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    e.containers.find(id)?;
    let cond = head.param("condition").unwrap_or("not-running").to_string();
    let mut w = r.stream(200, "application/json", &[])?;
    let body = match e.containers.wait(id, &cond) {
        Ok(code) => json!({"StatusCode": code, "Error": null}),
        Err(err) => json!({"StatusCode": -1, "Error": {"Message": err.message}}),
    };
    w.write_all(format!("{body}\n").as_bytes())?;
    w.finish()?;
    Ok(())
}

/// `POST /containers/{id}/attach`: hijacks the connection; registered before start so that no
/// output is lost.
pub fn attach(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let rec = e.containers.find(id)?;
    if head.flag("logs", false) {
        return Err(ApiError::bad_request("attach with logs=1 is not supported; use docker logs"));
    }
    let upgrade = head.header("Upgrade").is_some();
    let ct = if rec.tty() { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    let stdin = head.flag("stdin", false);
    let stdout = head.flag("stdout", false);
    let stderr = head.flag("stderr", false);
    if rec.state.status == "exited" {
        // Nothing will ever come: answer and close.
        r.hijack(upgrade, ct)?;
        return Ok(());
    }
    let stream = r.hijack(upgrade, ct)?.try_clone()?;
    e.containers.attach(&rec, stream, stdin, stdout, stderr)
}

pub fn summary(e: &Engine, rec: &Record) -> Value {
    let image_name = if rec.image_name.is_empty() { rec.image.clone() } else { rec.image_name.clone() };
    let command = std::iter::once(rec.path.clone()).chain(rec.args.iter().cloned()).collect::<Vec<_>>().join(" ");
    let created = parse_rfc3339(&rec.created).unwrap_or(0);
    let net = rec
        .config
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "bridge".into());
    let _ = e;
    json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": image_name,
        "ImageID": rec.image,
        "Command": command,
        "Created": created,
        "Ports": [],
        "Labels": rec.config.labels.clone().unwrap_or_default(),
        "State": rec.state.status,
        "Status": human_status(rec),
        "HostConfig": {"NetworkMode": net},
        "NetworkSettings": {"Networks": {}},
        "Mounts": super::volumes::MountPoint::api_json(&rec.mounts),
    })
}

/// `GET /containers/json?all=&limit=&filters=`.
pub fn list(e: &Engine, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let all = head.flag("all", false);
    let limit: i64 = head.param("limit").and_then(|l| l.parse().ok()).unwrap_or(-1);
    let filters = parse_filters(head.param("filters"))?;
    let mut out = Vec::new();
    for rec in e.containers.snapshot() {
        let show_all = all || limit > 0 || filters.contains_key("status") || filters.contains_key("exited");
        if !show_all && !rec.running() {
            continue;
        }
        if !matches_filters(&rec, &filters)? {
            continue;
        }
        let mut row = summary(e, &rec);
        if head.flag("size", false) {
            let rw = super::containers::dir_size(&e.containers.container_dir(&rec.id).join("upper"));
            let image = e.images.resolve(&rec.image).map(|i| i.size).unwrap_or(0);
            row["SizeRw"] = json!(rw);
            row["SizeRootFs"] = json!(rw + image);
        }
        out.push(row);
        if limit > 0 && out.len() as i64 >= limit {
            break;
        }
    }
    r.json(200, &Value::Array(out))?;
    Ok(())
}

fn matches_filters(rec: &Record, f: &std::collections::BTreeMap<String, Vec<String>>) -> Result<bool, ApiError> {
    for (k, vals) in f {
        let ok = match k.as_str() {
            "status" => vals.contains(&rec.state.status),
            "name" => vals.iter().any(|v| rec.name.contains(v.trim_start_matches('/'))),
            "id" => vals.iter().any(|v| rec.id.starts_with(v)),
            "ancestor" => vals.iter().any(|v| {
                rec.image_name == *v
                    || rec.image.starts_with(v)
                    || rec.image.trim_start_matches("sha256:").starts_with(v)
                    || rec.image_name == format!("{v}:latest")
            }),
            "exited" => {
                vals.iter().any(|v| rec.state.status == "exited" && v.parse::<i32>().ok() == Some(rec.state.exit_code))
            }
            "label" => {
                let labels = rec.config.labels.clone().unwrap_or_default();
                vals.iter().all(|v| match v.split_once('=') {
                    Some((lk, lv)) => labels.get(lk).is_some_and(|x| x == lv),
                    None => labels.contains_key(v),
                })
            }
            "before" | "since" | "volume" | "network" | "health" | "isolation" | "is-task" | "publish" | "expose" => {
                true
            }
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /containers/{id}/json`: the fields docker-py and `docker inspect -f` templates read.
pub fn inspect(e: &Engine, id: &str, r: &mut Responder<'_>) -> ApiResult {
    let rec = e.containers.find(id)?;
    let dir = e.containers.container_dir(&rec.id);
    let s = &rec.state;
    let mut host = rec.host_config_json.clone();
    if !host.is_object() {
        host = json!({});
    }
    for (k, v) in [
        ("NetworkMode", json!("bridge")),
        ("LogConfig", json!({"Type": "json-file", "Config": {}})),
        ("RestartPolicy", json!({"Name": "no", "MaximumRetryCount": 0})),
    ] {
        if host.get(k).is_none_or(|x| x.is_null() || x == "") {
            host[k] = v;
        }
    }
    let exec_ids = Some(e.execs.of_container(&rec.id)).filter(|v| !v.is_empty());
    let body = json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": s.status,
            "Running": s.status == "running" || s.status == "paused",
            "Paused": s.status == "paused",
            "Restarting": s.status == "restarting",
            "OOMKilled": s.oom_killed,
            "Dead": s.status == "dead",
            "Pid": if rec.running() { s.pid } else { 0 },
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
        },
        "Image": rec.image,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": dir.join("json.log"),
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Driver": e.storage_driver(),
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": exec_ids,
        "HostConfig": host,
        "GraphDriver": if e.storage_driver() == "vfs" {
            json!({"Name": "vfs", "Data": {"Dir": dir.join("rootfs")}})
        } else {
            json!({"Name": "overlay2", "Data": {"UpperDir": dir.join("upper"), "WorkDir": dir.join("work"), "MergedDir": dir.join("rootfs")}})
        },
        "Mounts": super::volumes::MountPoint::api_json(&rec.mounts),
        "Config": {
            "Hostname": std::fs::read_to_string(dir.join("hostname")).unwrap_or_default().trim(),
            "Domainname": rec.config.domainname.clone().unwrap_or_default(),
            "User": rec.config.user.clone().unwrap_or_default(),
            "AttachStdin": rec.config.attach_stdin,
            "AttachStdout": rec.config.attach_stdout,
            "AttachStderr": rec.config.attach_stderr,
            "Tty": rec.config.tty,
            "OpenStdin": rec.config.open_stdin,
            "StdinOnce": rec.config.stdin_once,
            "Env": rec.config.env.clone().unwrap_or_default(),
            "Cmd": rec.config.cmd.clone(),
            "Image": rec.image_name,
            "Volumes": rec.config.volumes.clone(),
            "WorkingDir": rec.config.working_dir.clone().unwrap_or_default(),
            "Entrypoint": rec.config.entrypoint.clone(),
            "Labels": rec.config.labels.clone().unwrap_or_default(),
            "StopSignal": rec.config.stop_signal.clone(),
        },
        "NetworkSettings": {"Bridge": "", "SandboxID": "", "Ports": {}, "Networks": {}, "IPAddress": "", "Gateway": "", "MacAddress": ""},
    });
    r.json(200, &body)?;
    Ok(())
}

/// One json-file entry.
struct Entry {
    stream: u8,
    text: String,
    time: String,
}

fn parse_entry(line: &str) -> Option<Entry> {
    let v: Value = serde_json::from_str(line).ok()?;
    Some(Entry {
        stream: if v["stream"] == "stderr" { 2 } else { 1 },
        text: v["log"].as_str()?.to_string(),
        time: v["time"].as_str().unwrap_or("").to_string(),
    })
}

/// `since`/`until`: unix seconds (with optional fraction) or RFC 3339.
fn parse_time_param(s: &str) -> Option<f64> {
    if s.is_empty() || s == "0" {
        return None;
    }
    if let Ok(f) = s.parse::<f64>() {
        return Some(f);
    }
    parse_rfc3339(s).map(|t| t as f64)
}

fn entry_secs(time: &str) -> f64 {
    let base = parse_rfc3339(time).unwrap_or(0) as f64;
    let frac = time
        .split('.')
        .nth(1)
        .map(|f| f.trim_end_matches('Z'))
        .and_then(|f| format!("0.{f}").parse::<f64>().ok())
        .unwrap_or(0.0);
    base + frac
}

/// `GET /containers/{id}/logs`: from the json-file log, multiplexed (or raw with a TTY).
pub fn logs(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let rec = e.containers.find(id)?;
    let (want_out, want_err) = (head.flag("stdout", false), head.flag("stderr", false));
    if !want_out && !want_err {
        return Err(ApiError::bad_request("You must choose at least one stream"));
    }
    let follow = head.flag("follow", false);
    let timestamps = head.flag("timestamps", false);
    let since = head.param("since").and_then(parse_time_param);
    let until = head.param("until").and_then(parse_time_param);
    let tail: Option<usize> = head.param("tail").filter(|t| *t != "all" && !t.is_empty()).and_then(|t| t.parse().ok());
    let tty = rec.tty();
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    let mut w = r.stream(200, ct, &[])?;
    let emit = |w: &mut dyn Write, en: &Entry| -> std::io::Result<bool> {
        if (en.stream == 1 && !want_out) || (en.stream == 2 && !want_err) {
            return Ok(true);
        }
        let t = entry_secs(&en.time);
        if since.is_some_and(|s| t < s) {
            return Ok(true);
        }
        if until.is_some_and(|u| t > u) {
            return Ok(false);
        }
        let mut payload = Vec::new();
        if timestamps {
            payload.extend_from_slice(en.time.as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(en.text.as_bytes());
        if tty {
            w.write_all(&payload)?;
        } else {
            let mut frame = vec![en.stream, 0, 0, 0];
            frame.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes());
            frame.extend_from_slice(&payload);
            w.write_all(&frame)?;
        }
        Ok(true)
    };
    // Everything already written, honouring tail. Every file is opened before anything is read,
    // and following goes on through the open json.log: a client that reads the stream lazily
    // (docker-py's attached run reads it after `wait` and `remove`) still gets every line, even
    // when the directory is gone by then. json.log is read up to its last complete line, and
    // following resumes exactly there, so no line is lost or repeated.
    let paths = e.containers.log_files(&rec.id);
    let mut files: Vec<std::fs::File> = paths.iter().filter_map(|p| std::fs::File::open(p).ok()).collect();
    let current = if paths.last().is_some_and(|p| p.exists()) { files.pop() } else { None };
    let mut entries: Vec<Entry> = Vec::new();
    let mut pending = Vec::new();
    for f in files.iter_mut() {
        let mut data = Vec::new();
        if Read::read_to_end(f, &mut data).is_ok() {
            collect_entries(&data, &mut entries);
        }
    }
    let mut cur = current;
    if let Some(f) = cur.as_mut() {
        Read::read_to_end(f, &mut pending)?;
        let complete = pending.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        collect_entries(&pending[..complete], &mut entries);
        pending.drain(..complete);
    }
    let skip = tail.map_or(0, |t| entries.len().saturating_sub(t));
    for en in &entries[skip..] {
        if !emit(&mut w, en)? {
            w.finish()?;
            return Ok(());
        }
    }
    if follow {
        // Read what is appended to the open file; when the path names another file (rotated),
        // finish the old one and open the new; stop when the container has exited (or is gone)
        // and nothing more arrives.
        let path = e.containers.container_dir(&rec.id).join("json.log");
        let mut idle_since: Option<Instant> = None;
        loop {
            if cur.is_none() {
                cur = std::fs::File::open(&path).ok();
            }
            let mut got = 0;
            if let Some(f) = cur.as_mut() {
                let before = pending.len();
                Read::read_to_end(f, &mut pending)?;
                got = pending.len() - before;
            }
            if got > 0 || pending.contains(&b'\n') {
                while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=i).collect();
                    if let Some(en) = std::str::from_utf8(&line).ok().and_then(|l| parse_entry(l.trim_end())) {
                        if !emit(&mut w, &en)? {
                            w.finish()?;
                            return Ok(());
                        }
                    }
                }
                idle_since = None;
                continue;
            }
            if let Some(f) = cur.as_mut() {
                if rotated(f, &path) {
                    // The monitor wrote its last lines to this file before renaming it; read
                    // once more so none written between the read above and the rename is lost.
                    let before = pending.len();
                    f.read_to_end(&mut pending)?;
                    if pending.len() > before {
                        continue;
                    }
                    cur = None;
                    pending.clear();
                    continue;
                }
            }
            let running = e.containers.find(&rec.id).map(|x| x.running()).unwrap_or(false);
            if !running {
                // Give the monitor's final writes a moment to land, then stop.
                let t = *idle_since.get_or_insert_with(Instant::now);
                if t.elapsed() > Duration::from_millis(200) {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    w.finish()?;
    Ok(())
}

/// Parse the complete lines of a json.log chunk.
fn collect_entries(data: &[u8], out: &mut Vec<Entry>) {
    for line in data.split(|b| *b == b'\n') {
        if let Some(en) = std::str::from_utf8(line).ok().and_then(parse_entry) {
            out.push(en);
        }
    }
}

/// Whether `path` now names another file than the open `f` (the log was rotated). A path that
/// is gone is not a rotation: the container was removed, and the open file is all there is.
fn rotated(f: &std::fs::File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() != b.ino() || a.dev() != b.dev(),
        _ => false,
    }
}

pub fn stop(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let t = head.param("t").or(head.param("timeout")).and_then(|t| t.parse().ok());
    if e.containers.stop(id, t, head.param("signal").filter(|s| !s.is_empty()))? {
        r.empty(204)?;
    } else {
        r.empty(304)?;
    }
    Ok(())
}

pub fn restart(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let t = head.param("t").and_then(|t| t.parse().ok());
    e.containers.stop(id, t, None)?;
    e.containers.start(id)?;
    if let Ok(rec) = e.containers.find(id) {
        e.events.container(&rec, "restart", &[]);
    }
    r.empty(204)?;
    Ok(())
}

pub fn kill(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    e.containers.kill_by_user(id, head.param("signal").unwrap_or("SIGKILL"))?;
    r.empty(204)?;
    Ok(())
}

pub fn remove(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let rec = e.containers.find(id)?;
    e.containers.remove(id, head.flag("force", false), head.flag("v", false))?;
    e.execs.forget_container(&rec.id);
    r.empty(204)?;
    Ok(())
}

pub fn resize(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let h = head.param("h").and_then(|v| v.parse().ok()).unwrap_or(0);
    let w = head.param("w").and_then(|v| v.parse().ok()).unwrap_or(0);
    e.containers.resize(id, h, w)?;
    r.empty(200)?;
    Ok(())
}

pub fn pause(e: &Engine, id: &str, frozen: bool, r: &mut Responder<'_>) -> ApiResult {
    e.containers.pause(id, frozen)?;
    r.empty(204)?;
    Ok(())
}

pub fn rename(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    e.containers.rename(id, head.param("name").unwrap_or(""))?;
    r.empty(204)?;
    Ok(())
}

pub fn prune(e: &Engine, r: &mut Responder<'_>) -> ApiResult {
    let (ids, space) = e.containers.prune();
    r.json(
        200,
        &json!({"ContainersDeleted": if ids.is_empty() { Value::Null } else { json!(ids) }, "SpaceReclaimed": space}),
    )?;
    Ok(())
}

/// `GET /containers/{id}/top`: `ps -ef` columns from /proc for every process of the container.
pub fn top(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let rec = e.containers.find(id)?;
    let st = e.containers.runtime_state(&rec)?;
    let pids = st.cgroup.pids().map_err(|err| ApiError::internal(format!("cannot list processes: {err}")))?;
    if let Some(args) = head.param("ps_args").filter(|a| !a.trim().is_empty()) {
        return top_with_ps(args, &pids, r);
    }
    let mut rows = Vec::new();
    for pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
        let f: Vec<&str> = after.split(' ').collect();
        let ppid = f.get(1).copied().unwrap_or("0");
        let ticks: u64 =
            f.get(11).and_then(|u| u.parse().ok()).unwrap_or(0) + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let secs = ticks / 100;
        let time = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
        let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1).map(String::from))
            })
            .unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: Vec<String> =
            cmd.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        let uid_name = if uid == "0" { "root".to_string() } else { uid };
        rows.push(json!([uid_name, pid.to_string(), ppid, "0", "", "?", time, cmd.join(" ")]));
    }
    r.json(200, &json!({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": rows}))?;
    Ok(())
}

/// `top` with `ps` options, as Docker does it: the host's `ps` with those options, its rows
/// kept when their PID is one of the container's.
fn top_with_ps(args: &str, pids: &[i32], r: &mut Responder<'_>) -> ApiResult {
    let out = std::process::Command::new("ps")
        .args(args.split_whitespace())
        .output()
        .map_err(|err| ApiError::internal(format!("Error running ps: {err}")))?;
    if !out.status.success() {
        return Err(ApiError::internal(format!(
            "ps: {}",
            String::from_utf8_lossy(&out.stderr).trim().trim_start_matches("error: ")
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| ApiError::internal("Couldn't find PID field in ps output"))?;
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else { continue };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) may hold spaces: it takes the rest of the line.
        let mut row: Vec<String> = fields[..titles.len() - 1].iter().map(|s| s.to_string()).collect();
        row.push(fields[titles.len() - 1..].join(" "));
        rows.push(row);
    }
    r.json(200, &json!({"Titles": titles, "Processes": rows}))?;
    Ok(())
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: from the cgroup files, in Docker's shape
/// (memory_stats, cpu_stats with the system total for the percentage, pids_stats).
pub fn stats(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let rec = e.containers.find(id)?;
    let stream = head.flag("stream", true);
    let one = |prev: &Value| -> Value {
        let (cg, running) = match e.containers.runtime_state(&rec) {
            Ok(st) => (Some(st.cgroup.stats()), true),
            Err(_) => (None, false),
        };
        let system = system_cpu_ns();
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (mem, cpu, pids) = match &cg {
            Some(s) => (
                json!({"usage": s.memory.usage, "max_usage": s.memory.max_usage, "limit": s.memory.limit.unwrap_or_else(super::system::meminfo_total), "stats": s.memory.stat, "failcnt": 0}),
                json!({"cpu_usage": {"total_usage": s.cpu.usage_total_ns, "usage_in_kernelmode": s.cpu.usage_system_ns, "usage_in_usermode": s.cpu.usage_user_ns, "percpu_usage": s.cpu.percpu_ns},
                       "system_cpu_usage": system, "online_cpus": ncpu,
                       "throttling_data": {"periods": s.cpu.periods, "throttled_periods": s.cpu.throttled_periods, "throttled_time": s.cpu.throttled_ns}}),
                json!({"current": s.pids.current, "limit": s.pids.limit}),
            ),
            None => (
                json!({}),
                json!({"cpu_usage": {"total_usage": 0}, "system_cpu_usage": system, "online_cpus": ncpu, "throttling_data": {}}),
                json!({}),
            ),
        };
        let _ = running;
        json!({
            "read": crate::timefmt::now_rfc3339(),
            "preread": prev.get("read").cloned().unwrap_or(json!(super::containers::ZERO_TIME)),
            "id": rec.id,
            "name": format!("/{}", rec.name),
            "num_procs": 0,
            "pids_stats": pids,
            "memory_stats": mem,
            "cpu_stats": cpu,
            "precpu_stats": prev.get("cpu_stats").cloned().unwrap_or(json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}})),
            "blkio_stats": {"io_service_bytes_recursive": null},
            "networks": {},
        })
    };
    if !stream {
        // one-shot or not, a single sample; `precpu_stats` comes from a short second sample so the
        // CPU percentage is meaningful, as the CLI computes it from the difference.
        let first = one(&Value::Null);
        let v = if head.flag("one-shot", false) {
            first
        } else {
            std::thread::sleep(Duration::from_millis(100));
            one(&first)
        };
        r.json(200, &v)?;
        return Ok(());
    }
    let mut w = r.stream(200, "application/json", &[])?;
    let mut prev = Value::Null;
    loop {
        let v = one(&prev);
        if w.write_all(format!("{v}\n").as_bytes()).is_err() {
            return Ok(());
        }
        prev = v;
        if e.containers.find(&rec.id).map(|x| !x.running()).unwrap_or(true) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    w.finish()?;
    Ok(())
}

/// The host's total CPU time in nanoseconds (the `cpu` line of /proc/stat), as Docker reports it.
fn system_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 =
        s.lines().next().map_or(0, |l| l.split_whitespace().skip(1).filter_map(|v| v.parse::<u64>().ok()).sum());
    ticks * 10_000_000
}

/// `GET /containers/{id}/changes`: the upper directory against the image: 0 modified, 1 added,
/// 2 deleted (a whiteout).
pub fn changes(e: &Engine, id: &str, r: &mut Responder<'_>) -> ApiResult {
    let rec = e.containers.find(id)?;
    let layers = {
        let img = e.images.resolve(&rec.image).map_err(|x| super::images::api_error(&x))?;
        e.images.layer_dirs(&img).map_err(ApiError::from)?
    };
    let scratch = e.layout.tmp().join(format!("diff-{}", super::containers::random_hex(8)));
    let upper = e.containers.upper_dir(&rec, &layers, &scratch);
    let result = upper.map_err(ApiError::from).and_then(|upper| changes_in(&upper, &layers));
    let _ = std::fs::remove_dir_all(&scratch);
    r.json(200, &Value::Array(result?))?;
    Ok(())
}

/// The changes an overlay upper directory makes to `layers`, as `docker diff` lists them.
fn changes_in(upper: &std::path::Path, layers: &[std::path::PathBuf]) -> Result<Vec<Value>, ApiError> {
    use std::os::unix::fs::FileTypeExt;
    let in_image = |rel: &std::path::Path| layers.iter().any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok());
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(upper.join(&rel)) else { continue };
        for ent in rd.flatten() {
            let child = rel.join(ent.file_name());
            let path = format!("/{}", child.display());
            let Ok(ft) = ent.file_type() else { continue };
            // A 0:0 character device is overlayfs's whiteout: the path was deleted.
            if ft.is_char_device()
                && ent.metadata().map(|m| std::os::unix::fs::MetadataExt::rdev(&m) == 0).unwrap_or(false)
            {
                out.push(json!({"Path": path, "Kind": 2}));
                continue;
            }
            out.push(json!({"Path": path, "Kind": if in_image(&child) { 0 } else { 1 }}));
            if ft.is_dir() {
                stack.push(child);
            }
        }
    }
    out.sort_by(|a, b| a["Path"].as_str().cmp(&b["Path"].as_str()));
    Ok(out)
}

/// `POST /containers/{id}/update`.
pub fn update(e: &Engine, id: &str, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    let data = body.read_all(MAX_BODY).map_err(|err| ApiError::bad_request(format!("cannot read body: {err}")))?;
    e.containers.update(id, &data)?;
    r.json(200, &json!({"Warnings": []}))?;
    Ok(())
}

/// `GET /containers/{id}/export`: the container's filesystem as a tar (image layers and its own
/// changes merged, nothing mounted), streamed.
pub fn export(e: &Engine, id: &str, r: &mut Responder<'_>) -> ApiResult {
    let rec = e.containers.find(id)?;
    let img = e.images.resolve(&rec.image).map_err(|x| super::images::api_error(&x))?;
    let mut dirs = e.images.layer_dirs(&img).map_err(ApiError::from)?;
    dirs.push(e.containers.container_dir(&rec.id).join("upper"));
    let vfs = e.storage_driver() == "vfs";
    let mut w = r.stream(200, "application/x-tar", &[])?;
    let packed = if vfs {
        crate::image::layer::pack_dir(&e.containers.container_dir(&rec.id).join("rootfs"), &mut w)
    } else {
        crate::image::layer::pack_merged(&dirs, &mut w)
    };
    if let Err(err) = packed {
        // The headers are out: a short stream is how the client learns of the failure.
        eprintln!("tugd: export {}: {err}", rec.short_id());
        return Ok(());
    }
    w.finish()?;
    Ok(())
}
