//! The channel between the runtime and `tug-init`: newline-delimited JSON messages over a unix
//! socketpair, so either side sees EOF the moment the other dies.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

/// What init tells the runtime.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum FromInit {
    /// Init has unshared its user namespace: write its uid/gid maps, then answer `Continue`.
    UserNs,
    /// Mounts are ready: run prestart and createRuntime hooks, then answer `Continue`.
    Hooks,
    /// Setup is done; init now waits for `start`.
    Ready,
    /// An exec'd process exists with this host pid (from the exec intermediate).
    Pid { pid: i32 },
    /// Setup failed.
    Error { message: String },
}

/// What the runtime tells init.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ToInit {
    Continue,
    Error { message: String },
}

/// One end of the channel.
pub struct Channel {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Channel {
    pub fn new(sock: UnixStream) -> io::Result<Channel> {
        let writer = sock.try_clone()?;
        Ok(Channel { reader: BufReader::new(sock), writer })
    }

    /// Sends one message.
    pub fn send<T: Serialize>(&mut self, msg: &T) -> io::Result<()> {
        let mut line = serde_json::to_vec(msg).map_err(io::Error::other)?;
        line.push(b'\n');
        self.writer.write_all(&line)
    }

    /// Receives one message; `Ok(None)` at EOF (the peer closed or died).
    pub fn recv<T: for<'de> Deserialize<'de>>(&mut self) -> io::Result<Option<T>> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&line)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad message from peer: {e}")))
    }
}
