//! `exec`: a second process in a running container. Create, then start — detached, or hijacking
//! the connection (multiplexed output without a TTY, raw bytes and a raw terminal with one,
//! resized on SIGWINCH) — then the exec's inspect for the exit status the client exits with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};
use serde_json::{json, Value};

use super::client::{enc, Body, Client};
use super::flags::Parsed;
use super::run::{env_entry, env_file, DEFAULT_DETACH_KEYS};
use super::stream::{self, RawTerminal, StdinEnd};
use super::{err_line, Ctx, Error};

/// The `POST /containers/{id}/exec` body for the flags, as docker's `parseExec` builds it.
fn exec_body(p: &Parsed, size: Option<(u16, u16)>) -> Result<Value, Error> {
    let detach = p.on("detach");
    let mut env = Vec::new();
    for f in p.all("env-file") {
        env.extend(env_file(&f)?);
    }
    env.extend(p.all("env").iter().map(|e| env_entry(e)));
    let mut body = json!({
        "User": p.get("user").unwrap_or(""),
        "Privileged": p.on("privileged"),
        "Tty": p.on("tty"),
        "AttachStdin": !detach && p.on("interactive"),
        "AttachStdout": !detach,
        "AttachStderr": !detach,
        "DetachKeys": p.get("detach-keys").unwrap_or(""),
        "Env": env,
        "WorkingDir": p.get("workdir").unwrap_or(""),
        "Cmd": p.args[1..],
    });
    if let Some((h, w)) = size {
        body["ConsoleSize"] = json!([h, w]);
    }
    Ok(body)
}

fn resize_exec(client: &Client, id: &str) {
    if let Some((h, w)) = stream::window_size() {
        let _ = client.post(&format!("/exec/{id}/resize?h={h}&w={w}"), Body::None);
    }
}

pub fn exec(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let container = &p.args[0];
    let detach = p.on("detach");
    let tty = p.on("tty");
    let stdin = !detach && p.on("interactive");
    // The container is looked up first so that "No such container" wins over any other
    // complaint, and no exec is left behind when the TTY check fails.
    ctx.client.get_json(&format!("/containers/{}/json", enc(container)))?;
    if stdin && tty && !stream::is_tty(0) {
        return Err(Error::msg("the input device is not a TTY"));
    }
    let size = if tty && stream::is_tty(1) { stream::window_size() } else { None };
    let body = exec_body(&p, size)?;
    let created = ctx.client.request("POST", &format!("/containers/{}/exec", enc(container)), Body::Json(body))?;
    let id = created.json()?["Id"].as_str().unwrap_or("").to_string();
    if id.is_empty() {
        return Err(Error::msg("exec ID empty"));
    }
    let mut start = json!({"Detach": detach, "Tty": tty});
    if let Some((h, w)) = size {
        start["ConsoleSize"] = json!([h, w]);
    }
    if detach {
        return ctx.client.post(&format!("/exec/{id}/start"), Body::Json(start));
    }
    // The escape sequence is only watched for on a TTY, as docker's hijacked streamer does; bad
    // keys fall back to the default.
    let keys = if tty {
        let spec = p.get("detach-keys").filter(|k| !k.is_empty()).unwrap_or(DEFAULT_DETACH_KEYS);
        stream::detach_keys(spec).or_else(|_| stream::detach_keys(DEFAULT_DETACH_KEYS))?
    } else {
        Vec::new()
    };
    let mut sigs = SigSet::empty();
    if tty {
        sigs.add(Signal::SIGWINCH);
    }
    let _ = sigs.thread_block();
    let (mut reader, conn) = ctx.client.hijack_with(&format!("/exec/{id}/start"), Body::Json(start))?;
    let raw = if tty && stdin && stream::is_tty(0) { RawTerminal::enter() } else { None };
    if tty && stream::is_tty(0) {
        resize_exec(&ctx.client, &id);
        let client = Client::new(ctx.client.host.clone(), &ctx.prog);
        let id = id.clone();
        std::thread::spawn(move || {
            while let Ok(sig) = sigs.wait() {
                if sig == Signal::SIGWINCH {
                    resize_exec(&client, &id);
                }
            }
        });
    }
    let detached = Arc::new(AtomicBool::new(false));
    if stdin {
        let w = conn.try_clone().map_err(Error::io)?;
        let closer = conn.try_clone().map_err(Error::io)?;
        let flag = detached.clone();
        std::thread::spawn(move || {
            if let StdinEnd::Detached = stream::pump_stdin(w, &keys) {
                flag.store(true, Ordering::SeqCst);
                closer.close();
            }
        });
    } else {
        // Nothing to send: the daemon sees our input end at once.
        let _ = conn.close_write();
    }
    let res = if tty { stream::copy_raw(&mut reader) } else { stream::demux(&mut reader) };
    drop(raw);
    if detached.load(Ordering::SeqCst) {
        return Err(Error::msg("read escape sequence"));
    }
    if let Err(e) = res {
        err_line(&format!("error reading from the exec: {e}"));
    }
    let info = ctx.client.get_json(&format!("/exec/{id}/json"))?;
    let code = info["ExitCode"].as_i64().unwrap_or(0);
    if code != 0 {
        return Err(Error::exit(u8::try_from(code.rem_euclid(256)).unwrap_or(1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_like_parse_exec() {
        let words: Vec<String> =
            "-it -e A=1 -w /tmp -u 1000 --privileged c sh -c x".split(' ').map(str::to_string).collect();
        let p = super::super::flags::parse(&words, super::super::EXEC_FLAGS, false).unwrap();
        let b = exec_body(&p, Some((24, 80))).unwrap();
        assert_eq!(b["Cmd"], json!(["sh", "-c", "x"]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!((b["AttachStdin"].as_bool(), b["Tty"].as_bool()), (Some(true), Some(true)));
        assert_eq!((b["User"].as_str(), b["WorkingDir"].as_str()), (Some("1000"), Some("/tmp")));
        assert_eq!(b["ConsoleSize"], json!([24, 80]));
        let words: Vec<String> = "-d -i c true".split(' ').map(str::to_string).collect();
        let p = super::super::flags::parse(&words, super::super::EXEC_FLAGS, false).unwrap();
        let b = exec_body(&p, None).unwrap();
        assert_eq!((b["AttachStdin"].as_bool(), b["AttachStdout"].as_bool()), (Some(false), Some(false)));
    }
}
