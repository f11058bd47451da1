//! Atomic file replacement: write a temp file beside the target, fsync it, rename it over the
//! target, fsync the directory. A crash leaves either the old or the new content, never a mix;
//! leftover `.tmp-*` files are garbage the next start may sweep.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The directory of `path` and a fresh temporary name in it, unique per process and call.
fn temp_beside(path: &Path) -> io::Result<(&Path, std::path::PathBuf)> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok((dir, dir.join(format!(".tmp-{}-{}-{n}", name.to_string_lossy(), std::process::id()))))
}

/// Replaces `path` with `data` atomically and durably (mode 0644).
pub fn write(path: &Path, data: &[u8]) -> io::Result<()> {
    write_with(path, 0o644, |f| f.write_all(data))
}

/// Like [`write`], with the content produced by `fill` and the given file mode.
pub fn write_with(path: &Path, mode: u32, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let (dir, tmp) = temp_beside(path)?;
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Replaces `path` with `data` atomically for readers, without fsync: for runtime state (under
/// /run, discarded by a reboot anyway) where a power loss may lose the update but a reader never
/// sees a torn file. Saves the two fsyncs that dominate a container start on a disk filesystem.
pub fn replace(path: &Path, data: &[u8]) -> io::Result<()> {
    let (_, tmp) = temp_beside(path)?;
    let result = std::fs::write(&tmp, data).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// fsyncs a directory so a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a directory tree by first renaming it to `<name>.removing`, so a crash midway leaves a
/// name that startup sweeps rather than a half-deleted live entry.
pub fn remove_dir(path: &Path) -> io::Result<()> {
    remove_dir_with(path, true)
}

/// As [`remove_dir`], without flushing the rename to disk.
pub fn remove_dir_unsynced(path: &Path) -> io::Result<()> {
    remove_dir_with(path, false)
}

fn remove_dir_with(path: &Path, sync: bool) -> io::Result<()> {
    let mut removing = path.as_os_str().to_owned();
    removing.push(".removing");
    match std::fs::rename(path, &removing) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent().filter(|_| sync) {
        sync_dir(parent)?;
    }
    super::crash_point("remove-dir.renamed");
    std::fs::remove_dir_all(&removing)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh directory for one test; no tempfile crate.
    pub(crate) fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tug-test-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn write_replaces_and_leaves_no_temp() {
        let d = temp_dir("atomic");
        let p = d.join("f.json");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        let err = write_with(&p, 0o644, |_| Err(io::Error::other("fill failed")));
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"two", "failed write must keep the old content");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "failed write must leave no temp file");
        replace(&p, b"three").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        remove_dir(&d).unwrap();
        assert!(!d.exists());
    }
}
