//! Byte streams between the daemon and this terminal: the 8-byte multiplexed framing, progress
//! message streams (`errorDetail` ends them in failure), raw terminal mode, window size, and the
//! stdin pump that watches for the detach keys.

use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsFd;

use nix::sys::termios::{self, SetArg, Termios};

use super::client::Conn;
use super::Error;

/// Copies a multiplexed stream (`[stream,0,0,0,len be32]` + payload) to stdout and stderr
/// until EOF.
pub fn demux(r: &mut dyn Read) -> io::Result<()> {
    let mut hdr = [0u8; 8];
    let mut buf = Vec::new();
    loop {
        if let Err(e) = r.read_exact(&mut hdr) {
            return if matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset) {
                Ok(())
            } else {
                Err(e)
            };
        }
        let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        buf.resize(len, 0);
        r.read_exact(&mut buf)?;
        if hdr[0] == 2 {
            let mut e = io::stderr().lock();
            let _ = e.write_all(&buf);
        } else {
            let mut o = io::stdout().lock();
            let _ = o.write_all(&buf);
            let _ = o.flush();
        }
    }
}

/// Copies a raw (TTY) stream to stdout until EOF.
pub fn copy_raw(r: &mut dyn Read) -> io::Result<()> {
    let mut buf = [0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut o = io::stdout().lock();
        let _ = o.write_all(&buf[..n]);
        let _ = o.flush();
    }
}

/// Prints a progress stream (pull, load, import) as docker does without a terminal, calling
/// `aux` for `aux` objects; an `errorDetail`/`error` message fails with that message.
pub fn json_messages(r: impl Read, to: &mut dyn Write, mut aux: impl FnMut(&serde_json::Value)) -> Result<(), Error> {
    let reader = io::BufReader::new(r);
    for line in reader.lines() {
        let line = line.map_err(Error::io)?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if let Some(e) = m["errorDetail"]["message"].as_str().or(m["error"].as_str()) {
            return Err(Error::msg(e.to_string()));
        }
        if !m["aux"].is_null() {
            aux(&m["aux"]);
            continue;
        }
        let mut s = String::new();
        if let Some(id) = m["id"].as_str() {
            s.push_str(&format!("{id}: "));
        }
        if let Some(st) = m["stream"].as_str() {
            s.push_str(st);
        } else if let Some(st) = m["status"].as_str() {
            // Progress bars only make sense on a terminal.
            if m["progressDetail"]["current"].is_number() {
                continue;
            }
            s.push_str(st);
            s.push('\n');
        } else {
            continue;
        }
        let _ = to.write_all(s.as_bytes());
        let _ = to.flush();
    }
    Ok(())
}

/// Raw mode on stdin for the life of the value; the saved settings come back on drop.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    pub fn enter() -> Option<RawTerminal> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Whether fd 0/1 is a terminal.
pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor number; an invalid one returns 0.
    unsafe { nix::libc::isatty(fd) == 1 }
}

/// The terminal's (rows, columns) on stdout, if it is one.
pub fn window_size() -> Option<(u16, u16)> {
    let mut ws = nix::libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass, which lives on our stack.
    let r = unsafe { nix::libc::ioctl(1, nix::libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Parses docker's `--detach-keys` (`ctrl-p,ctrl-q`, `a`, `ctrl-@`…) into bytes.
pub fn detach_keys(spec: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for k in spec.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c {
                "@" => 0,
                "[" => 27,
                "\\" => 28,
                "]" => 29,
                "^" => 30,
                "_" => 31,
                s if s.len() == 1 && s.as_bytes()[0].is_ascii_alphabetic() => {
                    s.as_bytes()[0].to_ascii_lowercase() - b'a' + 1
                }
                _ => return Err(Error::msg(format!("Unknown character: '{c}'"))),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(Error::msg(format!("Unknown character: '{k}'")));
        }
    }
    Ok(out)
}

/// What ended the stdin pump.
pub enum StdinEnd {
    /// stdin reached EOF; the write side was half-closed.
    Eof,
    /// The detach sequence was typed.
    Detached,
}

/// Copies stdin to the connection; holds back a partial detach sequence and stops when it is
/// complete. A read error counts as EOF.
pub fn pump_stdin(mut conn: Conn, keys: &[u8]) -> StdinEnd {
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 4096];
    let mut matched = 0usize;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = conn.close_write();
                return StdinEnd::Eof;
            }
            Ok(n) => n,
        };
        let mut send = Vec::with_capacity(n);
        for &b in &buf[..n] {
            if !keys.is_empty() && b == keys[matched] {
                matched += 1;
                if matched == keys.len() {
                    let _ = conn.write_all(&send);
                    return StdinEnd::Detached;
                }
                continue;
            }
            // A broken sequence is sent on as typed.
            send.extend_from_slice(&keys[..matched]);
            matched = 0;
            if !keys.is_empty() && b == keys[0] {
                matched = 1;
                continue;
            }
            send.push(b);
        }
        if conn.write_all(&send).is_err() {
            return StdinEnd::Eof;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_keys() {
        assert_eq!(detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(detach_keys("a,ctrl-@").unwrap(), [b'a', 0]);
        assert!(detach_keys("ctrl-long").is_err());
        let mut sink = Vec::new();
        let stream = br#"{"stream":"Loaded image: x\n"}
{"status":"sha256:abc"}
{"id":"l1","status":"Downloading","progressDetail":{"current":1,"total":2}}
"#;
        json_messages(&stream[..], &mut sink, |_| {}).unwrap();
        assert_eq!(String::from_utf8(sink).unwrap(), "Loaded image: x\nsha256:abc\n");
        let bad = br#"{"errorDetail":{"message":"boom"},"error":"boom"}"#;
        assert_eq!(json_messages(&bad[..], &mut Vec::new(), |_| {}).unwrap_err().msg, "boom");
    }
}
