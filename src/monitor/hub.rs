//! Fan-out of the container's output to its attachers.
//!
//! Every attacher gets its own bounded queue and writer thread, so the pumps that read the
//! container's pipes only ever take a lock and append: a slow attacher falls behind on its own,
//! and one that falls more than [`MAX_BACKLOG`] behind (or whose socket fails) is disconnected.
//! The log is written by the pumps before fan-out and never waits for anyone.

use std::collections::VecDeque;
use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// How far behind an attacher may fall before it is dropped. Memory is used only while an
/// attacher actually lags, so a container with healthy attachers costs nothing here.
pub const MAX_BACKLOG: usize = 1 << 20;

/// Stream numbers of Docker's multiplexed framing.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// The 8-byte header `[stream, 0, 0, 0, len as big-endian u32]` and the payload, as one buffer.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.push(stream);
    f.extend_from_slice(&[0, 0, 0]);
    // Pump reads are far below 4 GiB, so the length always fits.
    f.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking writer thread must not take the monitor down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Arc<[u8]>>,
    bytes: usize,
    /// No more output will come: drain, then close.
    closed: bool,
    /// Disconnected: drop everything.
    dead: bool,
}

/// One attacher's output side.
pub struct Sink {
    stdout: bool,
    stderr: bool,
    queue: Mutex<Queue>,
    cv: Condvar,
    sock: UnixStream,
}

impl Sink {
    /// A sink writing to `sock`, wanting the given streams.
    pub fn new(sock: UnixStream, stdout: bool, stderr: bool) -> Arc<Sink> {
        Arc::new(Sink { stdout, stderr, queue: Mutex::new(Queue::default()), cv: Condvar::new(), sock })
    }

    fn wants(&self, stream: u8) -> bool {
        (stream == STDOUT && self.stdout) || (stream == STDERR && self.stderr)
    }

    /// Queues a chunk; false when the sink is (or has just been made) dead.
    fn push(&self, chunk: &Arc<[u8]>) -> bool {
        let mut q = lock(&self.queue);
        if q.dead {
            return false;
        }
        if q.bytes + chunk.len() > MAX_BACKLOG {
            q.dead = true;
            q.chunks.clear();
            drop(q);
            self.kill();
            return false;
        }
        q.bytes += chunk.len();
        q.chunks.push_back(chunk.clone());
        self.cv.notify_one();
        true
    }

    fn close(&self) {
        lock(&self.queue).closed = true;
        self.cv.notify_one();
    }

    /// Shuts the socket both ways: unblocks the writer thread and the attacher's stdin reader.
    fn kill(&self) {
        let _ = self.sock.shutdown(Shutdown::Both);
        self.cv.notify_one();
    }

    /// The writer loop, run on the attacher's own thread until the output ends or the socket
    /// fails; then the connection is closed.
    pub fn run(&self) {
        let mut out = &self.sock;
        loop {
            let chunk = {
                let mut q = lock(&self.queue);
                loop {
                    if q.dead {
                        break None;
                    }
                    if let Some(c) = q.chunks.pop_front() {
                        q.bytes -= c.len();
                        break Some(c);
                    }
                    if q.closed {
                        break None;
                    }
                    q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some(chunk) = chunk else { break };
            if out.write_all(&chunk).is_err() {
                let mut q = lock(&self.queue);
                q.dead = true;
                q.chunks.clear();
                break;
            }
        }
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}

/// The set of attachers.
pub struct Hub {
    /// With a TTY there is one stream and no framing.
    tty: bool,
    inner: Mutex<(Vec<Arc<Sink>>, bool)>,
}

impl Hub {
    pub fn new(tty: bool) -> Hub {
        Hub { tty, inner: Mutex::new((Vec::new(), false)) }
    }

    /// Adds an attacher; false once the output has ended (the container has exited).
    pub fn register(&self, sink: Arc<Sink>) -> bool {
        let mut g = lock(&self.inner);
        if g.1 {
            return false;
        }
        g.0.push(sink);
        true
    }

    /// Hands one chunk of a stream to every attacher that wants it, dropping dead ones.
    pub fn publish(&self, stream: u8, data: &[u8]) {
        let mut g = lock(&self.inner);
        if g.0.is_empty() {
            return;
        }
        let chunk: Arc<[u8]> = if self.tty { Arc::from(data) } else { Arc::from(frame(stream, data)) };
        g.0.retain(|s| !s.wants(stream) || s.push(&chunk));
    }

    /// The output has ended: every attacher drains what it has and is closed.
    pub fn close_all(&self) {
        let mut g = lock(&self.inner);
        g.1 = true;
        for s in g.0.drain(..) {
            s.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn frames_have_dockers_header() {
        assert_eq!(frame(STDERR, b"hi"), [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn attachers_get_their_streams_and_a_stalled_one_is_dropped() {
        let hub = Hub::new(false);
        let (a, mut a_peer) = UnixStream::pair().unwrap();
        let (b, b_peer) = UnixStream::pair().unwrap();
        let sa = Sink::new(a, true, false);
        let sb = Sink::new(b, true, true);
        assert!(hub.register(sa.clone()));
        assert!(hub.register(sb.clone()));
        let ta = std::thread::spawn(move || sa.run());
        // `b` has no writer thread: it never drains, as an attacher whose client stopped reading.
        hub.publish(STDOUT, b"out");
        hub.publish(STDERR, b"err");
        let big = vec![0u8; 64 * 1024];
        for _ in 0..(MAX_BACKLOG / big.len() + 2) {
            hub.publish(STDERR, &big);
        }
        assert!(lock(&sb.queue).dead, "a stalled attacher must be dropped");
        assert_eq!(lock(&hub.inner).0.len(), 1);
        hub.close_all();
        assert!(!hub.register(Sink::new(UnixStream::pair().unwrap().0, true, true)));
        ta.join().unwrap();
        let mut got = Vec::new();
        a_peer.read_to_end(&mut got).unwrap();
        assert_eq!(got, frame(STDOUT, b"out"));
        drop(b_peer);
    }
}
