//! `run`, `create`, `start`, `attach`: docker's flags turned into a create body, the pull when
//! the image is missing, and the attached session — attach before start, wait from before
//! start, raw terminal and resizes with a TTY, signal proxying without one, detach keys.

use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};
use serde_json::{json, Map, Value};

use super::client::{enc, query, Body, Response};
use super::flags::Parsed;
use super::images::{pull, tagged};
use super::stream::{self, RawTerminal, StdinEnd};
use super::{err_line, out, Ctx, Error};

pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// go-units `RAMInBytes`: `512m`, `1g`, `100k`, `1.5GB`, `2 MiB`, plain bytes; 1024-based. The
/// errors are go-units' (`invalid size: 'abc'`, `invalid suffix: 'x'`).
pub fn ram_bytes(s: &str) -> Result<i64, String> {
    // The number is everything up to the last digit, dot or space; one space may separate it.
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{s}'"));
    };
    let num = if s.as_bytes()[sep] == b' ' { &s[..sep] } else { &s[..=sep] };
    let sfx = &s[sep + 1..];
    let size: f64 = num.parse().map_err(|_| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    if size < 0.0 || num.starts_with('-') {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = |sfx: &str| Err(format!("invalid suffix: '{sfx}'"));
    if sfx.len() > 3 {
        return bad(sfx);
    }
    let lower = sfx.to_lowercase();
    let mul: f64 = match lower.as_bytes()[0] {
        b'b' if lower.len() == 1 => return Ok(size as i64),
        b'k' => 1024.0,
        b'm' => 1024f64.powi(2),
        b'g' => 1024f64.powi(3),
        b't' => 1024f64.powi(4),
        b'p' => 1024f64.powi(5),
        _ => return bad(&lower),
    };
    if (lower.len() == 2 && &lower[1..] != "b") || (lower.len() == 3 && &lower[1..] != "ib") {
        return bad(&lower);
    }
    Ok((size * mul) as i64)
}

/// `-e K` takes K's value from our environment when it is set.
pub fn env_entry(e: &str) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match std::env::var(e) {
        Ok(v) => format!("{e}={v}"),
        Err(_) => e.to_string(),
    }
}

pub fn env_file(path: &str) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::msg(format!("open {path}: {e}")))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains('=') {
            out.push(line.to_string());
        } else if let Ok(v) = std::env::var(line.trim_end()) {
            out.push(format!("{}={v}", line.trim_end()));
        }
    }
    Ok(out)
}

fn ulimit(s: &str) -> Result<Value, Error> {
    let bad = || Error::msg(format!("invalid argument \"{s}\" for \"--ulimit\" flag: invalid ulimit argument: {s}"));
    let (name, vals) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a.parse::<i64>().map_err(|_| bad())?, b.parse::<i64>().map_err(|_| bad())?),
        None => {
            let v = vals.parse::<i64>().map_err(|_| bad())?;
            (v, v)
        }
    };
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

fn kv_map(items: &[String]) -> Map<String, Value> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (l.to_string(), Value::String(String::new())),
        })
        .collect()
}

fn flag_err(flag: &str, value: &str, why: &str) -> Error {
    Error::msg(format!("invalid argument \"{value}\" for \"{flag}\" flag: {why}"))
}

/// The `POST /containers/create` body for run/create flags; `args` are IMAGE [COMMAND…].
pub fn create_body(p: &Parsed, detach: bool) -> Result<Value, Error> {
    let image = &p.args[0];
    let cmd: Option<Vec<String>> = if p.args.len() > 1 { Some(p.args[1..].to_vec()) } else { None };
    let tty = p.on("tty");
    let stdin = p.on("interactive");
    let attach = p.all("attach");
    let (a_in, a_out, a_err) = if detach {
        (false, false, false)
    } else if attach.is_empty() {
        (stdin, true, true)
    } else {
        let has = |s: &str| attach.iter().any(|a| a.eq_ignore_ascii_case(s));
        (has("stdin"), has("stdout"), has("stderr"))
    };
    let mut env = Vec::new();
    for f in p.all("env-file") {
        env.extend(env_file(&f)?);
    }
    env.extend(p.all("env").iter().map(|e| env_entry(e)));
    let mut config = json!({
        "Hostname": p.get("hostname").unwrap_or(""),
        "Domainname": p.get("domainname").unwrap_or(""),
        "User": p.get("user").unwrap_or(""),
        "AttachStdin": a_in,
        "AttachStdout": a_out,
        "AttachStderr": a_err,
        "Tty": tty,
        "OpenStdin": stdin,
        "StdinOnce": stdin && a_in,
        "Env": env,
        "Cmd": cmd,
        "Image": image,
        "Volumes": {},
        "WorkingDir": p.get("workdir").unwrap_or(""),
        "Entrypoint": Value::Null,
        "Labels": kv_map(&p.all("label")),
    });
    if let Some(e) = p.get("entrypoint") {
        // `--entrypoint ""` resets the image's entrypoint.
        config["Entrypoint"] = json!([e]);
    }
    if let Some(s) = p.get("stop-signal") {
        config["StopSignal"] = json!(s);
    }
    if let Some(t) = p.get("stop-timeout") {
        config["StopTimeout"] = json!(t.parse::<i64>().map_err(|_| flag_err("--stop-timeout", t, "invalid syntax"))?);
    }
    let mut host = json!({
        "AutoRemove": p.on("rm"),
        "Privileged": p.on("privileged"),
        "ReadonlyRootfs": p.on("read-only"),
        "LogConfig": {"Type": p.get("log-driver").unwrap_or(""), "Config": kv_map(&p.all("log-opt"))},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    });
    if let Some(n) = p.get("network").or(p.get("net")) {
        host["NetworkMode"] = json!(n);
    }
    for (flag, key) in [
        ("cap-add", "CapAdd"),
        ("cap-drop", "CapDrop"),
        ("security-opt", "SecurityOpt"),
        ("dns", "Dns"),
        ("add-host", "ExtraHosts"),
        ("volume", "Binds"),
    ] {
        let v = p.all(flag);
        if !v.is_empty() {
            host[key] = json!(v);
        }
    }
    let tmpfs: Map<String, Value> = p
        .all("tmpfs")
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_string(), json!(opts)),
            None => (t.clone(), json!("")),
        })
        .collect();
    if !tmpfs.is_empty() {
        host["Tmpfs"] = Value::Object(tmpfs);
    }
    if let Some(m) = p.get("memory") {
        host["Memory"] = json!(ram_bytes(m).map_err(|e| flag_err("--memory", m, &e))?);
    }
    if let Some(m) = p.get("memory-swap") {
        let v = if m == "-1" { -1 } else { ram_bytes(m).map_err(|e| flag_err("--memory-swap", m, &e))? };
        host["MemorySwap"] = json!(v);
    }
    if let Some(c) = p.get("cpus") {
        let f: f64 = c.parse().map_err(|_| flag_err("--cpus", c, "failed to parse as a rational number"))?;
        host["NanoCpus"] = json!((f * 1e9) as i64);
    }
    if let Some(c) = p.get("cpu-shares") {
        host["CpuShares"] = json!(c.parse::<i64>().map_err(|_| flag_err("--cpu-shares", c, "invalid syntax"))?);
    }
    if let Some(c) = p.get("cpuset-cpus") {
        host["CpusetCpus"] = json!(c);
    }
    if let Some(c) = p.get("pids-limit") {
        host["PidsLimit"] = json!(c.parse::<i64>().map_err(|_| flag_err("--pids-limit", c, "invalid syntax"))?);
    }
    let ulimits = p.all("ulimit").iter().map(|u| ulimit(u)).collect::<Result<Vec<_>, _>>()?;
    if !ulimits.is_empty() {
        host["Ulimits"] = json!(ulimits);
    }
    if p.has("init") {
        host["Init"] = json!(p.on("init"));
    }
    if let Some(r) = p.get("restart") {
        let (name, count) = match r.split_once(':') {
            Some((n, c)) => (
                n,
                c.parse::<i64>()
                    .map_err(|_| Error::msg("invalid restart policy format: maximum retry count must be an integer"))?,
            ),
            None => (r, 0),
        };
        if !["no", "always", "on-failure", "unless-stopped"].contains(&name) {
            return Err(Error::msg(format!("invalid restart policy format: unknown policy '{name}'")));
        }
        if p.on("rm") && name != "no" {
            return Err(Error::msg("conflicting options: cannot specify both --restart and --rm"));
        }
        host["RestartPolicy"] = json!({"Name": name, "MaximumRetryCount": count});
    }
    config["HostConfig"] = host;
    config["NetworkingConfig"] = json!({"EndpointsConfig": {}});
    Ok(config)
}

/// Creates the container, pulling the image on a 404 as docker does; returns the ID.
fn create_container(ctx: &Ctx, p: &Parsed, body: Value) -> Result<String, Error> {
    let mut q = Vec::new();
    if let Some(n) = p.get("name") {
        q.push(("name", n.to_string()));
    }
    if let Some(pl) = p.get("platform") {
        q.push(("platform", pl.to_string()));
    }
    let path = format!("/containers/create?{}", query(&q));
    let image = &p.args[0];
    let pull_policy = p.get("pull").unwrap_or("missing");
    if pull_policy == "always" {
        pull(ctx, image, p.on("quiet"))?;
    }
    let resp = match ctx.client.request("POST", &path, Body::Json(body.clone())) {
        Err(e) if e.status == 404 && pull_policy != "never" => {
            err_line(&format!("Unable to find image '{}' locally", tagged(image)));
            pull(ctx, image, p.on("quiet"))?;
            ctx.client.request("POST", &path, Body::Json(body))?
        }
        other => other?,
    };
    let v = resp.json()?;
    for w in v["Warnings"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        err_line(&format!("WARNING: {w}"));
    }
    Ok(v["Id"].as_str().unwrap_or("").to_string())
}

/// docker run's wrapping of an error: `docker: <msg>` + the help hint, exit 125 (or `code`).
fn run_error(ctx: &Ctx, e: Error, code: u8) -> Error {
    if e.msg.is_empty() {
        return e;
    }
    Error {
        msg: format!("{}: {}\n\nRun '{} --help' for more information", ctx.prog, e.msg, ctx.cmd),
        code,
        status: e.status,
    }
}

/// docker's exit status for a failed start: 127 not found, 126 not executable, else 125.
fn start_error_code(msg: &str) -> u8 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

pub fn create(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let body = create_body(&p, true).map_err(|e| run_error(ctx, e, 125))?;
    let id = create_container(ctx, &p, body).map_err(|e| run_error(ctx, e, 125))?;
    out(&format!("{id}\n"));
    Ok(())
}

/// Starts the wait request and returns once its headers are in, so that start cannot win.
fn begin_wait(ctx: &Ctx, id: &str, condition: &str) -> Result<Response, Error> {
    ctx.client.request(
        "POST",
        &format!("/containers/{id}/wait?{}", query(&[("condition", condition.to_string())])),
        Body::None,
    )
}

/// The exit status from a wait response (`-1` when the stream broke).
fn finish_wait(r: Response) -> Result<i64, Error> {
    let v = r.json()?;
    if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(Error::msg(m.to_string()));
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(-1))
}

fn resize(ctx: &Ctx, id: &str) {
    if let Some((h, w)) = stream::window_size() {
        let _ = ctx.client.post(&format!("/containers/{id}/resize?h={h}&w={w}"), Body::None);
    }
}

/// What an attached session needs to know.
struct Session {
    id: String,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: Vec<u8>,
    sig_proxy: bool,
}

/// Signals the helper thread waits for; blocked in every thread before any is spawned.
fn session_signals(s: &Session) -> SigSet {
    // SIGUSR1/2 are always taken: forwarded with the proxy, else dropped, as the docker CLI (a Go
    // program, which ignores them unless asked) leaves them without killing the session.
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR1);
    set.add(Signal::SIGUSR2);
    if s.tty {
        set.add(Signal::SIGWINCH);
    } else if s.sig_proxy {
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
            set.add(sig);
        }
    }
    set
}

/// The attached part of run/start -a/attach: hijack, then `start` (if given), then stream until
/// the daemon closes. Returns `Ok(None)` when the user detached.
fn attach_session(ctx: &Ctx, s: &Session, start: Option<&dyn Fn() -> Result<(), Error>>) -> Result<Option<()>, Error> {
    let sigs = session_signals(s);
    let _ = sigs.thread_block();
    let mut q = vec![("stream", "1".to_string())];
    for (k, on) in [("stdin", s.stdin), ("stdout", s.stdout), ("stderr", s.stderr)] {
        if on {
            q.push((k, "1".to_string()));
        }
    }
    let (mut reader, conn) = ctx.client.hijack(&format!("/containers/{}/attach?{}", s.id, query(&q)))?;
    let raw = if s.tty && s.stdin && stream::is_tty(0) { RawTerminal::enter() } else { None };
    if let Some(start) = start {
        start()?;
    }
    if s.tty && stream::is_tty(1) {
        if start.is_none() {
            // A program attached to again redraws only when its terminal size changes: bump the
            // size by one, then set the real one, as docker attach does.
            if let Some((h, w)) = stream::window_size() {
                let (h, w) = (h.saturating_add(1), w.saturating_add(1));
                let _ = ctx.client.post(&format!("/containers/{}/resize?h={h}&w={w}", s.id), Body::None);
            }
        }
        resize(ctx, &s.id);
    }
    {
        let id = s.id.clone();
        let forward = s.sig_proxy && !s.tty;
        let client = Arc::new(super::client::Client::new(ctx.client.host.clone(), &ctx.prog));
        std::thread::spawn(move || {
            while let Ok(sig) = sigs.wait() {
                if sig == Signal::SIGWINCH {
                    if let Some((h, w)) = stream::window_size() {
                        let _ = client.post(&format!("/containers/{id}/resize?h={h}&w={w}"), Body::None);
                    }
                } else if forward {
                    let _ = client.post(&format!("/containers/{id}/kill?signal={}", sig as i32), Body::None);
                }
            }
        });
    }
    let detached = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if s.stdin {
        let w = conn.try_clone().map_err(Error::io)?;
        let keys = s.detach_keys.clone();
        let flag = detached.clone();
        let closer = conn.try_clone().map_err(Error::io)?;
        std::thread::spawn(move || {
            if let StdinEnd::Detached = stream::pump_stdin(w, &keys) {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                // Ends the output copy below.
                closer.close();
            }
        });
    }
    let res = if s.tty { stream::copy_raw(&mut reader) } else { stream::demux(&mut reader) };
    drop(raw);
    if detached.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(None);
    }
    res.map_err(|e| Error::msg(format!("error reading from the container: {e}")))?;
    Ok(Some(()))
}

fn detach_keys(p: &Parsed) -> Result<Vec<u8>, Error> {
    stream::detach_keys(p.get("detach-keys").filter(|k| !k.is_empty()).unwrap_or(DEFAULT_DETACH_KEYS))
}

pub fn run(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let detach = p.on("detach");
    let body = create_body(&p, detach).map_err(|e| run_error(ctx, e, 125))?;
    let keys = detach_keys(&p).map_err(|e| run_error(ctx, e, 125))?;
    let id = create_container(ctx, &p, body.clone()).map_err(|e| run_error(ctx, e, 125))?;
    let start = || -> Result<(), Error> {
        ctx.client.post(&format!("/containers/{id}/start"), Body::None).map_err(|e| {
            let code = start_error_code(&e.msg);
            run_error(ctx, e, code)
        })
    };
    if detach {
        start()?;
        out(&format!("{id}\n"));
        return Ok(());
    }
    let condition = if p.on("rm") { "removed" } else { "next-exit" };
    let session = Session {
        id: id.clone(),
        tty: p.on("tty"),
        stdin: body["AttachStdin"].as_bool().unwrap_or(false),
        stdout: body["AttachStdout"].as_bool().unwrap_or(false),
        stderr: body["AttachStderr"].as_bool().unwrap_or(false),
        detach_keys: keys,
        sig_proxy: !p.has("sig-proxy") || p.on("sig-proxy"),
    };
    // Attach first, then wait, then start: no output is lost and the exit cannot be missed.
    let wait: std::cell::RefCell<Option<Response>> = std::cell::RefCell::new(None);
    let start_fn = || -> Result<(), Error> {
        let w = begin_wait(ctx, &id, condition).map_err(|e| run_error(ctx, e, 125))?;
        *wait.borrow_mut() = Some(w);
        start()
    };
    let attached = if session.stdout || session.stderr || session.stdin {
        attach_session(ctx, &session, Some(&start_fn))?
    } else {
        start_fn()?;
        Some(())
    };
    if attached.is_none() {
        return Ok(());
    }
    let Some(w) = wait.into_inner() else { return Ok(()) };
    let code = finish_wait(w).map_err(|e| run_error(ctx, e, 125))?;
    if code != 0 {
        return Err(Error::exit(u8::try_from(code.clamp(0, 255)).unwrap_or(125)));
    }
    Ok(())
}

pub fn start(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    if !p.on("attach") && !p.on("interactive") {
        let mut failed = Vec::new();
        for id in &p.args {
            match ctx.client.post(&format!("/containers/{}/start", enc(id)), Body::None) {
                Ok(()) => out(&format!("{id}\n")),
                Err(e) => {
                    err_line(&e.msg);
                    failed.push(id.clone());
                }
            }
        }
        if !failed.is_empty() {
            return Err(Error::msg(format!("Error: failed to start containers: {}", failed.join(", "))));
        }
        return Ok(());
    }
    if p.args.len() > 1 {
        return Err(Error::msg("you cannot start and attach multiple containers at once"));
    }
    let info = ctx.client.get_json(&format!("/containers/{}/json", enc(&p.args[0])))?;
    let id = info["Id"].as_str().unwrap_or("").to_string();
    let session = Session {
        id: id.clone(),
        tty: info["Config"]["Tty"].as_bool().unwrap_or(false),
        stdin: p.on("interactive") && info["Config"]["OpenStdin"].as_bool().unwrap_or(false),
        stdout: true,
        stderr: true,
        detach_keys: detach_keys(&p)?,
        sig_proxy: true,
    };
    let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let wait = begin_wait(ctx, &id, if auto_remove { "removed" } else { "next-exit" })?;
    let start_fn = || ctx.client.post(&format!("/containers/{id}/start"), Body::None);
    if attach_session(ctx, &session, Some(&start_fn))?.is_none() {
        return Ok(());
    }
    let code = finish_wait(wait)?;
    if code != 0 {
        return Err(Error::exit(u8::try_from(code.clamp(0, 255)).unwrap_or(1)));
    }
    Ok(())
}

pub fn attach(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let info = ctx.client.get_json(&format!("/containers/{}/json", enc(&p.args[0])))?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(Error::msg("You cannot attach to a stopped container, start it first"));
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        return Err(Error::msg("You cannot attach to a paused container, unpause it first"));
    }
    let id = info["Id"].as_str().unwrap_or("").to_string();
    let session = Session {
        id: id.clone(),
        tty: info["Config"]["Tty"].as_bool().unwrap_or(false),
        stdin: !p.on("no-stdin") && info["Config"]["OpenStdin"].as_bool().unwrap_or(false),
        stdout: true,
        stderr: true,
        detach_keys: detach_keys(&p)?,
        sig_proxy: !p.has("sig-proxy") || p.on("sig-proxy"),
    };
    let wait = begin_wait(ctx, &id, "not-running")?;
    if attach_session(ctx, &session, None)?.is_none() {
        // docker attach reports the detach as an error (exit 1); run -it does not.
        return Err(Error::msg("read escape sequence"));
    }
    let code = finish_wait(wait)?;
    if code != 0 {
        return Err(Error::exit(u8::try_from(code.clamp(0, 255)).unwrap_or(1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_body() {
        assert_eq!(ram_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(ram_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_bytes("1.5GB").unwrap(), 3 << 29);
        assert_eq!(ram_bytes("100").unwrap(), 100);
        assert_eq!(ram_bytes("2 MiB").unwrap(), 2 << 20);
        assert_eq!(ram_bytes("12x").unwrap_err(), "invalid suffix: 'x'");
        assert_eq!(ram_bytes("1XYZW").unwrap_err(), "invalid suffix: 'XYZW'");
        assert_eq!(ram_bytes("abc").unwrap_err(), "invalid size: 'abc'");
        assert_eq!(ram_bytes("1mbb").unwrap_err(), "invalid suffix: 'mbb'");
        let words: Vec<String> =
            "-e A=1 --rm -l k=v --ulimit nofile=10:20 --cpus 1.5 -m 64m --restart no --entrypoint= img echo hi"
                .split(' ')
                .map(str::to_string)
                .collect();
        let spec = super::super::RUN_FLAGS;
        let p = super::super::flags::parse(&words, spec, false).unwrap();
        let b = create_body(&p, false).unwrap();
        assert_eq!(b["Image"], "img");
        assert_eq!(b["Cmd"], json!(["echo", "hi"]));
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["Labels"], json!({"k": "v"}));
        assert_eq!(b["HostConfig"]["AutoRemove"], true);
        assert_eq!(b["HostConfig"]["NanoCpus"], 1_500_000_000i64);
        assert_eq!(b["HostConfig"]["Memory"], 64 << 20);
        assert_eq!(b["HostConfig"]["Ulimits"], json!([{"Name": "nofile", "Soft": 10, "Hard": 20}]));
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["AttachStdin"], false);
    }
}
