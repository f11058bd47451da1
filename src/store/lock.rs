//! The root lock: one daemon per data root, held with `flock` for the holder's whole life.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

/// An exclusive lock, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RootLock {
    _lock: Flock<File>,
}

impl RootLock {
    /// Takes the lock without waiting; fails with `WouldBlock` naming the path if it is held.
    pub fn try_acquire(path: &Path) -> io::Result<RootLock> {
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(RootLock { _lock: l }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another process", path.display()),
            )),
            Err((_, e)) => Err(io::Error::from(e)),
        }
    }

    /// Takes the lock, waiting for the current holder.
    pub fn acquire(path: &Path) -> io::Result<RootLock> {
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        let l = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        Ok(RootLock { _lock: l })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_release() {
        let d = crate::store::atomic::tests::temp_dir("lock");
        let p = d.join("lock");
        let a = RootLock::try_acquire(&p).unwrap();
        let err = RootLock::try_acquire(&p).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(a);
        RootLock::try_acquire(&p).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
