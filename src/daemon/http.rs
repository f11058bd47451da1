//! A small HTTP/1.1 server side for the Engine API, written for what Docker's clients need and
//! general servers make awkward: headers flushed before a long wait, chunked streams flushed per
//! message, and connection hijacking (`101 UPGRADED`) with half-close for attach and exec.
//!
//! One thread per connection; requests on a connection are served one after another (keep-alive).
//! The registry also serves it over TLS ([`Stream::Tls`]); the Engine API does not.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};

/// The largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// A TLS session over TCP after its handshake.
pub type TlsStream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// A client connection over a unix or TCP socket, or TLS over TCP.
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    /// One TLS session cannot be split into two sockets as a TCP one can, so the reading and
    /// writing halves of a [`Conn`] share it; they are used from one thread, one after another.
    Tls(Arc<Mutex<TlsStream>>),
}

impl Stream {
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Tls(s) => Stream::Tls(s.clone()),
        })
    }

    /// Closes the write half: the client sees EOF on its read side (after TLS's close_notify).
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Tls(s) => {
                let mut t = lock(s);
                t.conn.send_close_notify();
                t.flush()?;
                t.sock.shutdown(Shutdown::Write)
            }
        }
    }
}

/// The TLS session. The lock is held only for one rustls call, by the connection's one thread;
/// a poisoned lock is taken as is, and rustls reports a broken session on the next call.
pub fn lock(s: &Mutex<TlsStream>) -> MutexGuard<'_, TlsStream> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => lock(s).read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => lock(s).write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            // Sockets are unbuffered; TLS may hold records its last write could not send.
            Stream::Unix(_) | Stream::Tcp(_) => Ok(()),
            Stream::Tls(s) => lock(s).flush(),
        }
    }
}

/// A parsed request head; the body is read through [`Conn::body`].
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub method: String,
    /// The path without query string, percent-decoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub content_length: Option<u64>,
    pub chunked: bool,
    pub close: bool,
}

impl Head {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A query parameter's last value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated query parameter.
    pub fn params(&self, name: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// A boolean parameter as Docker's clients send them: `1`, `true`, `True`; absent is `default`.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        match self.param(name) {
            None => default,
            Some(v) => matches!(v, "1" | "true" | "True" | "TRUE" | "yes"),
        }
    }
}

/// Decodes `%XX` and, in query strings, `+`.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One connection: a buffered reader for request heads and bodies, and the writing half.
pub struct Conn {
    pub reader: BufReader<Stream>,
    pub writer: Stream,
}

impl Conn {
    pub fn new(s: Stream) -> io::Result<Conn> {
        let writer = s.try_clone()?;
        Ok(Conn { reader: BufReader::with_capacity(16 * 1024, s), writer })
    }

    /// Reads the next request head; `Ok(None)` when the client closed the connection cleanly.
    pub fn read_head(&mut self) -> io::Result<Option<Head>> {
        let mut line = String::new();
        let mut total = 0;
        // Tolerate blank lines between requests (RFC 9112 §2.2).
        loop {
            line.clear();
            let n = self.reader.read_line(&mut line)?;
            if n == 0 {
                return Ok(None);
            }
            total += n;
            if !line.trim().is_empty() {
                break;
            }
        }
        let request_line = std::mem::take(&mut line);
        let mut parts = request_line.split_whitespace();
        let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("malformed request line"));
        };
        if !version.starts_with("HTTP/1.") {
            return Err(bad("unsupported HTTP version"));
        }
        let mut head = Head { method: method.to_string(), ..Head::default() };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        head.path = percent_decode(path, false);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            head.query.push((percent_decode(k, true), percent_decode(v, true)));
        }
        loop {
            line.clear();
            let n = self.reader.read_line(&mut line)?;
            total += n;
            if n == 0 || total > MAX_HEAD {
                return Err(bad("request head too large or truncated"));
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').ok_or_else(|| bad("malformed header"))?;
            head.headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        head.content_length =
            head.header("Content-Length").map(|v| v.parse()).transpose().map_err(|_| bad("bad Content-Length"))?;
        head.chunked = head.header("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        head.close =
            head.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) || version == "HTTP/1.0";
        Ok(Some(head))
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

enum BodyKind {
    Length(u64),
    Chunked { left: u64, done: bool },
}

/// A request body: Content-Length bounded or chunked.
pub struct Body<'a> {
    r: &'a mut BufReader<Stream>,
    kind: BodyKind,
}

impl<'a> Body<'a> {
    /// The body of the request `head`, read from the connection's buffered reader.
    pub fn new(r: &'a mut BufReader<Stream>, head: &Head) -> Body<'a> {
        let kind = if head.chunked {
            BodyKind::Chunked { left: 0, done: false }
        } else {
            BodyKind::Length(head.content_length.unwrap_or(0))
        };
        Body { r, kind }
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    pub fn read_all(&mut self, limit: usize) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.take(limit as u64 + 1).read_to_end(&mut v)?;
        if v.len() > limit {
            return Err(bad("request body too large"));
        }
        Ok(v)
    }

    /// Reads and discards what is left, so the next request on the connection can be parsed.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.kind {
            BodyKind::Length(left) => {
                if *left == 0 || buf.is_empty() {
                    return Ok(0);
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.r.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "request body truncated"));
                }
                *left -= n as u64;
                Ok(n)
            }
            BodyKind::Chunked { left, done } => {
                if *done || buf.is_empty() {
                    return Ok(0);
                }
                if *left == 0 {
                    let mut line = String::new();
                    self.r.read_line(&mut line)?;
                    let size = line.trim().split(';').next().unwrap_or("");
                    let size = u64::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
                    if size == 0 {
                        // Trailer section, then the final CRLF.
                        loop {
                            line.clear();
                            if self.r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                                break;
                            }
                        }
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.r.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "request body truncated"));
                }
                *left -= n as u64;
                if *left == 0 {
                    let mut crlf = [0u8; 2];
                    self.r.read_exact(&mut crlf)?;
                }
                Ok(n)
            }
        }
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "UPGRADED",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a status line and headers (each `(name, value)`), then the blank line.
pub fn write_head(w: &mut impl Write, status: u16, headers: &[(&str, String)]) -> io::Result<()> {
    let mut h = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        h.push_str(k);
        h.push_str(": ");
        h.push_str(v);
        h.push_str("\r\n");
    }
    h.push_str("\r\n");
    w.write_all(h.as_bytes())
}

/// A chunked response body; every `write` goes out as one chunk at once (no buffering), so
/// clients see each progress message or log line as it happens.
pub struct Chunked<'a> {
    w: &'a mut Stream,
}

impl<'a> Chunked<'a> {
    pub fn new(w: &'a mut Stream) -> Chunked<'a> {
        Chunked { w }
    }

    /// Ends the body with the zero-length chunk.
    pub fn finish(self) -> io::Result<()> {
        self.w.write_all(b"0\r\n\r\n")
    }
}

impl Write for Chunked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut msg = format!("{:x}\r\n", buf.len()).into_bytes();
        msg.extend_from_slice(buf);
        msg.extend_from_slice(b"\r\n");
        self.w.write_all(&msg)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn_with(input: &[u8]) -> (Conn, UnixStream) {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(input).unwrap();
        b.shutdown(Shutdown::Write).unwrap();
        (Conn::new(Stream::Unix(a)).unwrap(), b)
    }

    #[test]
    fn parses_heads_queries_and_bodies() {
        let (mut c, _peer) = conn_with(
            b"POST /v1.44/containers/create?name=web%201&x=a+b&x=c HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\n\r\nhelloGET /_ping HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
        );
        let h = c.read_head().unwrap().unwrap();
        assert_eq!((h.method.as_str(), h.path.as_str()), ("POST", "/v1.44/containers/create"));
        assert_eq!(h.param("name"), Some("web 1"));
        assert_eq!(h.params("x"), vec!["a b", "c"]);
        assert_eq!(Body::new(&mut c.reader, &h).read_all(100).unwrap(), b"hello");
        let h = c.read_head().unwrap().unwrap();
        assert!(h.chunked);
        assert_eq!(Body::new(&mut c.reader, &h).read_all(100).unwrap(), b"abcde");
        assert!(c.read_head().unwrap().is_none());
    }

    #[test]
    fn rejects_garbage_and_oversized() {
        let (mut c, _p) = conn_with(b"NONSENSE\r\n\r\n");
        assert!(c.read_head().is_err());
        let (mut c, _p) = conn_with(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789");
        let h = c.read_head().unwrap().unwrap();
        assert!(Body::new(&mut c.reader, &h).read_all(4).is_err());
        let (mut c, _p) = conn_with(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123");
        let h = c.read_head().unwrap().unwrap();
        assert!(Body::new(&mut c.reader, &h).read_all(100).is_err(), "truncated body");
        assert_eq!(percent_decode("a%2Fb%zz+", true), "a/b%zz ");
    }
}
