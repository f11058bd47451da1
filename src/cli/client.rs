//! HTTP/1.1 to the Engine API over `unix://` or `tcp://`, on std sockets: one connection per
//! request, API version negotiated once through `/_ping`, bodies by length, chunked or to EOF,
//! and hijacked (upgraded) connections for attach. Knows nothing about docker verbs.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;

use serde_json::Value;

use super::Error;

/// The newest API version this client speaks.
pub const MAX_API: &str = "1.44";
/// The daemon address when neither `-H` nor `DOCKER_HOST` names one.
pub const DEFAULT_HOST: &str = "unix:///run/tug.sock";

/// A connection to the daemon, either kind.
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }

    /// Half-closes the write side: the daemon sees stdin end.
    pub fn close_write(&self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
        }
    }

    /// Closes both directions, which also ends a reader blocked on another handle.
    pub fn close(&self) {
        let _ = match self {
            Conn::Unix(s) => s.shutdown(Shutdown::Both),
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A request body.
pub enum Body<'a> {
    None,
    Json(Value),
    /// Streamed with chunked transfer encoding (archives from a file or stdin).
    Stream(&'a mut dyn Read, &'a str),
}

/// How much of the response body is left.
enum Framing {
    Length(u64),
    Chunked { left: u64, done: bool },
    Eof,
}

/// A response whose body is read on demand.
pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    reader: BufReader<Conn>,
    framing: Framing,
    /// A second handle on the socket, for writing after a hijack.
    pub conn: Conn,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(mut self) -> io::Result<String> {
        let mut s = String::new();
        self.read_to_string(&mut s)?;
        Ok(s)
    }

    pub fn json(self) -> Result<Value, Error> {
        let text = self.text().map_err(Error::io)?;
        serde_json::from_str(&text).map_err(|e| Error::msg(format!("cannot parse daemon response: {e}")))
    }

    /// The buffered reader of the raw socket, for hijacked streams.
    pub fn into_raw(self) -> (BufReader<Conn>, Conn) {
        (self.reader, self.conn)
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.framing {
            Framing::Eof => self.reader.read(buf),
            Framing::Length(left) => {
                if *left == 0 {
                    return Ok(0);
                }
                let max = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                let n = self.reader.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-body"));
                }
                *left -= n as u64;
                Ok(n)
            }
            Framing::Chunked { left, done } => {
                if *done {
                    return Ok(0);
                }
                if *left == 0 {
                    let mut line = String::new();
                    self.reader.read_line(&mut line)?;
                    if line.is_empty() {
                        // The daemon closed without the last chunk: treat as the end.
                        *done = true;
                        return Ok(0);
                    }
                    let size = line.trim().split(';').next().unwrap_or("");
                    *left = u64::from_str_radix(size, 16)
                        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
                    if *left == 0 {
                        // Trailers end with an empty line.
                        loop {
                            line.clear();
                            if self.reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                                break;
                            }
                        }
                        *done = true;
                        return Ok(0);
                    }
                }
                let max = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                let n = self.reader.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-chunk"));
                }
                *left -= n as u64;
                if *left == 0 {
                    let mut crlf = String::new();
                    self.reader.read_line(&mut crlf)?;
                }
                Ok(n)
            }
        }
    }
}

/// Where the daemon listens.
#[derive(Clone, Debug)]
pub enum Host {
    Unix(String),
    Tcp(String),
}

impl Host {
    pub fn parse(s: &str) -> Result<Host, Error> {
        if let Some(p) = s.strip_prefix("unix://") {
            return Ok(Host::Unix(p.to_string()));
        }
        if let Some(a) = s.strip_prefix("tcp://").or_else(|| s.strip_prefix("http://")) {
            let a = a.trim_end_matches('/');
            let a = if a.contains(':') { a.to_string() } else { format!("{a}:2375") };
            return Ok(Host::Tcp(a));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(s.to_string()));
        }
        Err(Error::msg(format!("unable to parse docker host `{s}`")))
    }

    fn url(&self) -> String {
        match self {
            Host::Unix(p) => format!("unix://{p}"),
            Host::Tcp(a) => format!("tcp://{a}"),
        }
    }
}

/// The daemon, as the verbs see it.
pub struct Client {
    pub host: Host,
    /// `docker` or `tug`, for the cannot-connect message.
    pub prog: String,
    api: OnceLock<String>,
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `a=1&b=2` from pairs, skipping none.
pub fn query(pairs: &[(&str, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect::<Vec<_>>().join("&")
}

impl Client {
    pub fn new(host: Host, prog: &str) -> Client {
        Client { host, prog: prog.to_string(), api: OnceLock::new() }
    }

    fn connect(&self) -> Result<Conn, Error> {
        let r = match &self.host {
            Host::Unix(p) => UnixStream::connect(p).map(Conn::Unix),
            Host::Tcp(a) => TcpStream::connect(a).map(Conn::Tcp),
        };
        r.map_err(|e| {
            let who = if self.prog == "docker" { "Docker" } else { "tug" };
            let hint = match e.kind() {
                io::ErrorKind::PermissionDenied => format!(
                    "permission denied while trying to connect to the {who} daemon socket at {}",
                    self.host.url()
                ),
                _ => format!(
                    "Cannot connect to the {who} daemon at {}. Is the {} daemon running?",
                    self.host.url(),
                    self.prog
                ),
            };
            Error::msg(hint)
        })
    }

    /// The negotiated API version: min(ours, the daemon's `Api-Version`), or
    /// `DOCKER_API_VERSION` when set.
    pub fn api_version(&self) -> Result<String, Error> {
        if let Some(v) = self.api.get() {
            return Ok(v.clone());
        }
        let v = match std::env::var("DOCKER_API_VERSION").ok().filter(|v| !v.is_empty()) {
            Some(v) => v,
            None => {
                let r = self.send("HEAD", "/_ping", Body::None, &[])?;
                // No header means a daemon older than negotiation: 1.24.
                let server = r.header("Api-Version").unwrap_or("1.24").to_string();
                if version_lt(&server, MAX_API) {
                    server
                } else {
                    MAX_API.to_string()
                }
            }
        };
        let _ = self.api.set(v.clone());
        Ok(v)
    }

    /// Sends one request on a new connection and reads the response head.
    fn send(&self, method: &str, path: &str, body: Body<'_>, headers: &[(&str, &str)]) -> Result<Response, Error> {
        let conn = self.connect()?;
        let mut w = conn.try_clone().map_err(Error::io)?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/{} (linux)\r\n",
            crate::version::VERSION
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let io_err = |e: io::Error| Error::msg(format!("error during connect: {method} {path}: {e}"));
        match body {
            Body::None => {
                if method == "POST" {
                    head.push_str("Content-Length: 0\r\n");
                }
                head.push_str("\r\n");
                w.write_all(head.as_bytes()).map_err(io_err)?;
            }
            Body::Json(v) => {
                let data = serde_json::to_vec(&v).unwrap_or_default();
                head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", data.len()));
                w.write_all(head.as_bytes()).map_err(io_err)?;
                w.write_all(&data).map_err(io_err)?;
            }
            Body::Stream(r, ct) => {
                head.push_str(&format!("Content-Type: {ct}\r\nTransfer-Encoding: chunked\r\n\r\n"));
                w.write_all(head.as_bytes()).map_err(io_err)?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = r.read(&mut buf).map_err(Error::io)?;
                    if n == 0 {
                        break;
                    }
                    let mut chunk = format!("{n:x}\r\n").into_bytes();
                    chunk.extend_from_slice(&buf[..n]);
                    chunk.extend_from_slice(b"\r\n");
                    w.write_all(&chunk).map_err(io_err)?;
                }
                w.write_all(b"0\r\n\r\n").map_err(io_err)?;
            }
        }
        let mut reader = BufReader::new(conn);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(io_err)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::msg(format!("malformed HTTP response from daemon: {:?}", line.trim_end())))?;
        let mut hdrs = Vec::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(io_err)? == 0 {
                break;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                hdrs.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let get = |n: &str| hdrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        let framing = if method == "HEAD" || status == 204 || status == 304 || status == 101 {
            if status == 101 {
                Framing::Eof
            } else {
                Framing::Length(0)
            }
        } else if get("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            Framing::Chunked { left: 0, done: false }
        } else if let Some(n) = get("Content-Length").and_then(|v| v.parse().ok()) {
            Framing::Length(n)
        } else {
            Framing::Eof
        };
        Ok(Response { status, headers: hdrs, reader, framing, conn: w })
    }

    /// A versioned API request; non-2xx answers become `Error response from daemon: …`.
    pub fn request(&self, method: &str, path: &str, body: Body<'_>) -> Result<Response, Error> {
        self.request_with(method, path, body, &[])
    }

    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        body: Body<'_>,
        headers: &[(&str, &str)],
    ) -> Result<Response, Error> {
        let v = self.api_version()?;
        let r = self.send(method, &format!("/v{v}{path}"), body, headers)?;
        if r.status >= 400 {
            let status = r.status;
            let text = r.text().unwrap_or_default();
            let msg = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string());
            return Err(Error::daemon(status, msg));
        }
        Ok(r)
    }

    pub fn get_json(&self, path: &str) -> Result<Value, Error> {
        self.request("GET", path, Body::None)?.json()
    }

    /// POST with no interesting answer body.
    pub fn post(&self, path: &str, body: Body<'_>) -> Result<(), Error> {
        let r = self.request("POST", path, body)?;
        r.text().map_err(Error::io)?;
        Ok(())
    }

    /// Upgrades a POST to a raw bidirectional stream (attach); anything but 101 or 200 fails.
    pub fn hijack(&self, path: &str) -> Result<(BufReader<Conn>, Conn), Error> {
        self.hijack_with(path, Body::None)
    }

    /// As [`Client::hijack`], with a request body (exec start's `{Detach, Tty}`).
    pub fn hijack_with(&self, path: &str, body: Body<'_>) -> Result<(BufReader<Conn>, Conn), Error> {
        let r = self.request_with("POST", path, body, &[("Connection", "Upgrade"), ("Upgrade", "tcp")])?;
        if r.status != 101 && r.status != 200 {
            return Err(Error::msg(format!("unexpected status {} from attach", r.status)));
        }
        Ok(r.into_raw())
    }
}

/// Compares dotted versions numerically (`1.9` < `1.44`).
pub fn version_lt(a: &str, b: &str) -> bool {
    let p = |s: &str| s.split('.').map(|x| x.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>();
    p(a) < p(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_queries() {
        assert!(matches!(Host::parse("unix:///run/x.sock").unwrap(), Host::Unix(p) if p == "/run/x.sock"));
        assert!(matches!(Host::parse("tcp://127.0.0.1").unwrap(), Host::Tcp(a) if a == "127.0.0.1:2375"));
        assert!(Host::parse("ftp://x").is_err());
        assert_eq!(
            query(&[("filters", r#"{"a":{"b":true}}"#.into()), ("all", "1".into())]),
            "filters=%7B%22a%22%3A%7B%22b%22%3Atrue%7D%7D&all=1"
        );
        assert!(version_lt("1.9", "1.44"));
        assert!(!version_lt("1.50", "1.44"));
    }
}
