//! `tug registry serve --tls-cert/--tls-key`: the server's certificate chain and key read from PEM
//! files into a rustls configuration (ring), and the handshake of each accepted connection, done
//! in the connection's own thread under a deadline.
//!
//! Not here: client certificates, SNI with several certificates, reloading a renewed certificate
//! (restart the server).

use std::io::{self, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::daemon::http::Stream;

/// The most time a client gets to complete its handshake (and the first look at its bytes), so a
/// silent or slow peer cannot hold a connection slot for the whole idle timeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most reads in a handshake; a well-behaved client needs a handful.
const HANDSHAKE_READS: usize = 1000;

/// What Go's net/http answers a plain HTTP request on a TLS port; clients show its body.
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Reads the certificate chain (`CERTIFICATE` sections, the server's own first) and the private
/// key (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`) and checks that
/// the key belongs to the first certificate.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = read_chain(cert)?;
    let key_der = read_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Load the key alone first, so that an unusable key is blamed on its own file.
    provider
        .key_provider
        .load_private_key(key_der.clone_key())
        .map_err(|e| format!("{}: {}", key.display(), why(e)))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("{} is not the private key of the certificate in {}", key.display(), cert.display())
            }
            e => format!("{}: {}", cert.display(), why(e)),
        })?;
    // Only HTTP/1.1 is spoken: a client offering h2 and http/1.1 (Go, curl) is told so.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// rustls's error without the words that fit a peer's certificate or an internal fault.
fn why(e: rustls::Error) -> String {
    match e {
        rustls::Error::General(msg) => msg,
        rustls::Error::InvalidCertificate(e) => format!("invalid certificate: {e:?}"),
        e => e.to_string(),
    }
}

fn read_pem(path: &Path) -> Result<Vec<(SectionKind, Vec<u8>)>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    <(SectionKind, Vec<u8>)>::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM: {e}", path.display()))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<_> = read_pem(path)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der))
        .collect();
    if chain.is_empty() {
        return Err(format!("{}: no CERTIFICATE in the PEM file", path.display()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let sections = read_pem(path)?;
    let mut keys = sections.into_iter().filter_map(|(kind, der)| PrivateKeyDer::from_pem(kind, der));
    match (keys.next(), keys.next()) {
        (Some(k), None) => Ok(k),
        (Some(_), Some(_)) => Err(format!("{}: more than one private key", path.display())),
        (None, _) => Err(format!(
            "{}: no unencrypted private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) in the PEM file",
            path.display()
        )),
    }
}

/// Completes the server side of a handshake on a freshly accepted connection within
/// [`HANDSHAKE_TIMEOUT`], then restores `io_timeout` on the socket. A client that speaks plain
/// HTTP gets a plain 400 and an error here; so does every failed handshake, and the caller just
/// drops the connection.
pub fn accept(mut tcp: TcpStream, config: &Arc<ServerConfig>, io_timeout: Duration) -> io::Result<Stream> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    // Every TLS connection opens with a handshake record (content type 22); a request line opens
    // with a letter.
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).map_err(timed_out)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the TLS handshake"));
    }
    if first[0].is_ascii_uppercase() {
        let _ = tcp.write_all(PLAIN_HTTP_ANSWER);
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        return Err(io::Error::new(io::ErrorKind::InvalidData, "plain HTTP request on the TLS port"));
    }
    let mut conn = rustls::ServerConnection::new(config.clone()).map_err(io::Error::other)?;
    // rustls's complete_io would do this too, but keeps reading past any deadline while a client
    // trickles bytes; here every read is bounded by what is left.
    let mut reads = 0;
    loop {
        while conn.wants_write() {
            if conn.write_tls(&mut tcp).map_err(timed_out)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        if !conn.is_handshaking() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        reads += 1;
        if left.is_zero() || reads > HANDSHAKE_READS || !conn.wants_read() {
            return Err(timed_out(io::ErrorKind::TimedOut.into()));
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        if conn.read_tls(&mut tcp).map_err(timed_out)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed during the TLS handshake"));
        }
        if let Err(e) = conn.process_new_packets() {
            // The alert rustls queued tells the client why.
            let _ = conn.write_tls(&mut tcp);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
    tcp.set_read_timeout(Some(io_timeout))?;
    tcp.set_write_timeout(Some(io_timeout))?;
    Ok(Stream::Tls(Arc::new(Mutex::new(rustls::StreamOwned::new(conn, tcp)))))
}

/// A socket timeout (EAGAIN from SO_RCVTIMEO, which std reports as WouldBlock) as what it means.
fn timed_out(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
        }
        _ => e,
    }
}
