//! `monitor.sock`: one request per connection, its first line JSON; an attach then turns the
//! connection into the container's stream. The protocol is documented in `mod.rs`.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::hub::Sink;
use super::{lock, spawn, Shared};
use crate::runtime::console;
use crate::runtime::container;
use crate::runtime::spec::ConsoleSize;

/// A request line longer than this is refused rather than buffered.
const MAX_REQUEST: usize = 64 * 1024;

/// A client that connects but sends no request within this time is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Start,
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
        /// Close the container's stdin when this client's input ends (Docker's `StdinOnce`).
        #[serde(default = "yes")]
        stdin_once: bool,
    },
    Resize {
        h: u16,
        w: u16,
    },
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    State,
    Wait,
}

fn yes() -> bool {
    true
}

fn parse(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))
}

/// Accepts connections for the monitor's whole life, one thread each.
pub fn serve(listener: UnixListener, sh: Arc<Shared>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let sh = sh.clone();
        let _ = spawn("monitor-conn", move || handle(conn, &sh));
    }
}

/// Reads the request line byte by byte: anything after it belongs to the attach stream.
fn read_line(mut conn: &UnixStream) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match conn.read(&mut b) {
            Ok(1) if b[0] == b'\n' => return Some(line),
            Ok(1) if line.len() < MAX_REQUEST => line.push(b[0]),
            _ => return None,
        }
    }
}

fn reply(mut conn: &UnixStream, v: &Value) -> bool {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    conn.write_all(&out).is_ok()
}

fn answer(conn: &UnixStream, r: Result<Value, String>) {
    let v = match r {
        Ok(v) => v,
        Err(e) => json!({ "error": e }),
    };
    reply(conn, &v);
}

fn handle(conn: UnixStream, sh: &Arc<Shared>) {
    let _ = conn.set_read_timeout(Some(REQUEST_TIMEOUT));
    let Some(line) = read_line(&conn) else { return };
    let _ = conn.set_read_timeout(None);
    let req = match parse(&line) {
        Ok(r) => r,
        Err(e) => return answer(&conn, Err(e)),
    };
    match req {
        Request::Start => answer(&conn, start(sh)),
        Request::Attach { stdin, stdout, stderr, stdin_once } => attach(conn, sh, stdin, stdout, stderr, stdin_once),
        Request::Resize { h, w } => answer(&conn, resize(sh, h, w)),
        Request::Kill { signal, all } => answer(&conn, kill(sh, signal, all)),
        Request::State => answer(&conn, Ok(state(sh))),
        Request::Wait => {
            let _busy = sh.busy();
            let mut life = lock(&sh.life);
            while life.exit.is_none() {
                life = sh.cv.wait(life).unwrap_or_else(|e| e.into_inner());
            }
            let doc = life.exit.clone().unwrap_or_default();
            drop(life);
            reply(&conn, &doc);
        }
    }
}

fn start(sh: &Shared) -> Result<Value, String> {
    // Serialise starts: two racing requests must not both pass the runtime's status check.
    let mut life = lock(&sh.life);
    if life.exit.is_some() {
        return Err("container has exited".into());
    }
    if life.started_at.is_some() {
        return Err("container already started".into());
    }
    container::start(&sh.global, &sh.id)?;
    let now = super::log::go_time_now();
    life.started_at = Some(now.clone());
    Ok(json!({ "ok": true, "started_at": now }))
}

fn resize(sh: &Shared, h: u16, w: u16) -> Result<Value, String> {
    let master = sh.master.as_ref().ok_or("container has no terminal")?;
    console::set_size(master.as_raw_fd(), ConsoleSize { height: h, width: w })
        .map_err(|e| format!("cannot resize terminal: {e}"))?;
    Ok(json!({ "ok": true }))
}

fn kill(sh: &Shared, signal: i32, all: bool) -> Result<Value, String> {
    let sig = Signal::try_from(signal).map_err(|_| format!("invalid signal {signal}"))?;
    if lock(&sh.life).exit.is_some() {
        return Err("container has exited".into());
    }
    container::kill(&sh.global, &sh.id, sig, all)?;
    Ok(json!({ "ok": true }))
}

fn state(sh: &Shared) -> Value {
    let life = lock(&sh.life);
    let status = match (&life.exit, &life.started_at) {
        (Some(_), _) => "exited",
        (None, Some(_)) => "running",
        (None, None) => "created",
    };
    json!({
        "pid": sh.pid,
        "running": status == "running",
        "status": status,
        "started_at": life.started_at,
        "exit_code": life.exit.as_ref().map(|e| e["ExitCode"].clone()),
    })
}

fn attach(conn: UnixStream, sh: &Arc<Shared>, stdin: bool, stdout: bool, stderr: bool, stdin_once: bool) {
    let _busy = sh.busy();
    let Ok(out) = conn.try_clone() else { return };
    let sink = Sink::new(out, stdout, stderr);
    // Registered before the answer, so a client that attaches and then starts sees every byte.
    if !sh.hub.register(sink.clone()) {
        return answer(&conn, Err("container has exited".into()));
    }
    if !reply(&conn, &json!({ "ok": true })) {
        return;
    }
    // Stdin is ignored unless the container was created with it open, as Docker does.
    if stdin && sh.stdin_open {
        let sh2 = sh.clone();
        let _ = spawn("monitor-stdin", move || copy_stdin(conn, &sh2, stdin_once));
    }
    sink.run();
}

/// Copies the client's bytes to the container's stdin until the client half-closes.
fn copy_stdin(mut conn: UnixStream, sh: &Shared, stdin_once: bool) {
    let mut buf = [0u8; 8192];
    let mut broken = false;
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if broken {
            // The container no longer reads stdin; keep draining so the client is not stuck.
            continue;
        }
        let mut g = lock(&sh.stdin);
        match g.as_mut() {
            Some(f) => broken = f.write_all(&buf[..n]).is_err(),
            None => broken = true,
        }
    }
    // With a TTY, stdin cannot be closed without hanging up the terminal; Docker leaves it too.
    if stdin_once && !sh.tty {
        lock(&sh.stdin).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(parse(br#"{"op":"start"}"#), Ok(Request::Start));
        assert_eq!(
            parse(br#"{"op":"attach","stdout":true}"#),
            Ok(Request::Attach { stdin: false, stdout: true, stderr: false, stdin_once: true })
        );
        assert_eq!(parse(br#"{"op":"resize","h":30,"w":100}"#), Ok(Request::Resize { h: 30, w: 100 }));
        assert_eq!(parse(br#"{"op":"kill","signal":9}"#), Ok(Request::Kill { signal: 9, all: false }));
        assert!(parse(br#"{"op":"explode"}"#).unwrap_err().starts_with("bad request: "));
        assert!(parse(br#"{"op":"resize","h":-1,"w":1}"#).is_err());
        assert!(parse(b"not json").is_err());
    }
}
