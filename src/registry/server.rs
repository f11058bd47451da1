//! The registry's HTTP side: a bounded pool of connection threads over the project's HTTP/1.1
//! layer (`daemon::http`), plain or over TLS (`tls`), Basic authentication against an htpasswd
//! file, and the writing of responses — blobs streamed from disk with the kernel's copy (a
//! buffered copy over TLS), never read into memory.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::api::ApiError;
use super::handlers::{self, Payload, Registry, Response};
use crate::daemon::http::{self, write_head, Body, Conn, Head, Stream};

/// How long a connection may sit idle (or stall mid-body) before it is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// What is left of a request body that is read and discarded to keep the connection; past this
/// the connection is closed instead.
const DRAIN_LIMIT: u64 = 1 << 20;

/// The most read and dropped while closing a connection (see [`linger`]).
const LINGER_LIMIT: usize = 64 << 20;

/// The realm in `WWW-Authenticate`.
const REALM: &str = "tug-registry";

/// Counts connection threads: accept waits while all `max` are busy, so extra clients queue in
/// the listen backlog.
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Slots {
    fn acquire(&self) {
        let mut n = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= self.max {
            n = self.freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
    }

    fn release(&self) {
        let mut n = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        self.freed.notify_one();
    }
}

/// Releases a slot when the connection thread ends, however it ends.
struct SlotGuard(Arc<Slots>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Everything a connection thread needs.
pub struct Server {
    pub registry: Registry,
    pub auth: Option<Htpasswd>,
    /// Serve HTTPS with this configuration (`--tls-cert/--tls-key`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Accepts connections for ever, one thread each, at most `max` at once.
pub fn serve(listener: TcpListener, server: Arc<Server>, max: usize) -> io::Result<()> {
    let slots = Arc::new(Slots { busy: Mutex::new(0), freed: Condvar::new(), max: max.max(1) });
    loop {
        slots.acquire();
        let guard = SlotGuard(slots.clone());
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("tug-registry: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let server = server.clone();
        let spawned = std::thread::Builder::new().name("registry-conn".into()).spawn(move || {
            let _guard = guard;
            serve_conn(stream, &server);
        });
        if let Err(e) = spawned {
            eprintln!("tug-registry: cannot start a connection thread: {e}");
        }
    }
}

/// Serves the requests of one connection, one after another (keep-alive).
fn serve_conn(stream: TcpStream, server: &Server) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let stream = match &server.tls {
        None => Stream::Tcp(stream),
        Some(config) => match super::tls::accept(stream, config, IO_TIMEOUT) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tug-registry: {peer}: {e}");
                return;
            }
        },
    };
    let Ok(mut conn) = Conn::new(stream) else { return };
    loop {
        let head = match conn.read_head() {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidData {
                    let err = ApiError::new(400, "UNSUPPORTED", format!("malformed request: {e}"));
                    let _ = write_response(&mut conn.writer, false, Response::error(&err), true);
                }
                return;
            }
        };
        let started = Instant::now();
        let expects = head.header("Expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if expects && conn.writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return;
        }
        let mut body = Body::new(&mut conn.reader, &head);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| respond(server, &head, &mut body)));
        let resp = match outcome {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Response::error(&e),
            Err(_) => Response::error(&ApiError::new(500, "UNKNOWN", "internal error")),
        };
        // What the handler left unread must go before the next request can be parsed.
        let drained =
            matches!(io::copy(&mut (&mut body).take(DRAIN_LIMIT + 1), &mut io::sink()), Ok(n) if n <= DRAIN_LIMIT);
        let close = head.close || !drained;
        let status = resp.status;
        let ok = write_response(&mut conn.writer, head.method == "HEAD", resp, close).is_ok();
        eprintln!("tug-registry: {peer} {} {} {status} {}ms", head.method, head.path, started.elapsed().as_millis());
        if close || !ok {
            linger(&mut conn);
            return;
        }
    }
}

/// Closes after an answer given before the request body was read (a refused upload): shuts the
/// write side, then reads and drops what the client is still sending for a moment, so that the
/// kernel does not reset the connection and destroy the answer before the client reads it.
fn linger(conn: &mut Conn) {
    let _ = conn.writer.shutdown_write();
    let linger_timeout = Some(Duration::from_secs(2));
    match &conn.writer {
        Stream::Tcp(t) => {
            let _ = t.set_read_timeout(linger_timeout);
        }
        Stream::Tls(t) => {
            let _ = http::lock(t).sock.set_read_timeout(linger_timeout);
        }
        Stream::Unix(_) => {}
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    while Instant::now() < deadline && total < LINGER_LIMIT {
        match conn.reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// Authenticates, then hands the request to the endpoints.
fn respond(server: &Server, head: &Head, body: &mut dyn Read) -> Result<Response, ApiError> {
    if let Some(auth) = &server.auth {
        if !auth.check(head.header("Authorization")) {
            return Err(ApiError::new(401, "UNAUTHORIZED", "authentication required")
                .header("WWW-Authenticate", format!("Basic realm=\"{REALM}\"")));
        }
    }
    handlers::handle(&server.registry, head, body)
}

/// Writes status, headers and body; blob bodies go from the file to the socket in the kernel.
fn write_response(w: &mut Stream, is_head: bool, resp: Response, close: bool) -> io::Result<()> {
    let len = match &resp.payload {
        Payload::Empty => 0,
        Payload::Bytes(b) => b.len() as u64,
        Payload::File { len, .. } => *len,
        Payload::Head(n) => *n,
    };
    let mut headers: Vec<(&str, String)> = vec![("Docker-Distribution-API-Version", "registry/2.0".into())];
    headers.extend(resp.headers.iter().map(|(k, v)| (*k, v.clone())));
    headers.push(("Content-Length", len.to_string()));
    if close {
        headers.push(("Connection", "close".into()));
    }
    write_head(w, resp.status, &headers)?;
    if is_head {
        return w.flush();
    }
    match resp.payload {
        Payload::Empty | Payload::Head(_) => w.flush(),
        Payload::Bytes(b) => {
            w.write_all(&b)?;
            w.flush()
        }
        Payload::File { mut file, offset, len } => {
            use std::io::Seek;
            // The kernel copies file to socket (std's io::copy does not use sendfile from a file
            // to a socket, and would move 8 KiB per read and write).
            if let Stream::Tcp(t) = w {
                return send_file(&file, offset, len, t);
            }
            file.seek(io::SeekFrom::Start(offset))?;
            let mut src = file.take(len);
            // TLS must encrypt in user space, in records of up to 16 KiB, so a large buffer
            // saves lock and write calls.
            let sent = match w {
                Stream::Tcp(t) => io::copy(&mut src, t)?,
                Stream::Unix(u) => io::copy(&mut src, u)?,
                Stream::Tls(_) => {
                    let mut buffered = BufWriter::with_capacity(256 << 10, &mut *w);
                    let n = io::copy(&mut src, &mut buffered)?;
                    buffered.flush()?;
                    n
                }
            };
            if sent != len {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob shorter than its size"));
            }
            w.flush()
        }
    }
}

/// Users and bcrypt hashes from an Apache htpasswd file (`user:$2y$…`), the format distribution's
/// htpasswd auth reads. Credentials that verified once are remembered (by their SHA-256) so a
/// push does not pay bcrypt's deliberate cost on every request.
pub struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<String>>,
}

/// How many verified credentials are remembered.
const MAX_VERIFIED: usize = 256;

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(format!("{}:{}: expected user:hash", path.display(), i + 1));
            };
            if !(hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$")) {
                return Err(format!("{}:{}: only bcrypt entries are supported (htpasswd -B)", path.display(), i + 1));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd { users, verified: Mutex::new(HashSet::new()) })
    }

    /// Does an `Authorization: Basic …` header name a user with the right password?
    pub fn check(&self, header: Option<&str>) -> bool {
        let Some(b64) = header.and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic "))) else {
            return false;
        };
        let key = crate::store::digest::Digest::of(b64.trim().as_bytes()).to_string();
        if self.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return true;
        }
        let Some(plain) = crate::b64::decode(b64.trim()).and_then(|b| String::from_utf8(b).ok()) else { return false };
        let Some((user, password)) = plain.split_once(':') else { return false };
        let Some(hash) = self.users.get(user) else { return false };
        if !bcrypt::verify(password, hash).unwrap_or(false) {
            return false;
        }
        let mut v = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() >= MAX_VERIFIED {
            v.clear();
        }
        v.insert(key);
        true
    }
}

/// Writes `len` bytes of `file` from `offset` to the socket with sendfile(2).
fn send_file(file: &std::fs::File, offset: u64, len: u64, sock: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsFd;
    let mut off = i64::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    let mut left = len;
    while left > 0 {
        let chunk = usize::try_from(left.min(1 << 30)).unwrap_or(1 << 30);
        match nix::sys::sendfile::sendfile(sock.as_fd(), file.as_fd(), Some(&mut off), chunk) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob shorter than its size")),
            Ok(n) => left -= n as u64,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_htpasswd() {
        assert_eq!(crate::b64::decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(crate::b64::decode("YQ==").unwrap(), b"a");
        assert_eq!(crate::b64::decode("YWI=").unwrap(), b"ab");
        assert!(crate::b64::decode("Y").is_none() && crate::b64::decode("**").is_none());
        let dir = crate::store::atomic::tests::temp_dir("htpasswd");
        let p = dir.join("htpasswd");
        let hash = bcrypt::hash("pass", 4).unwrap().replacen("$2b$", "$2y$", 1);
        std::fs::write(&p, format!("# users\nuser:{hash}\n")).unwrap();
        let h = Htpasswd::load(&p).unwrap();
        assert!(h.check(Some("Basic dXNlcjpwYXNz")));
        assert!(h.check(Some("Basic dXNlcjpwYXNz")), "remembered");
        assert!(!h.check(Some("Basic dXNlcjpwYXN4")));
        assert!(!h.check(None));
        std::fs::write(&p, "user:{SHA}abc\n").unwrap();
        assert!(Htpasswd::load(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
