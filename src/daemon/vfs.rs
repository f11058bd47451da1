//! The `vfs` storage driver: where overlayfs is not available (a kernel without it, a data root
//! on a filesystem that cannot be an overlay's upper layer), a container's root filesystem is a
//! plain copy of its image's layers, made at create.
//!
//! What the overlay driver reads from the upper directory (`diff`, `commit`) is then computed:
//! [`upper_view`] compares the copy with the image's merged layers and builds, in a scratch
//! directory, the upper directory an overlay would have had: added and changed entries (files
//! hard-linked, not copied), whiteouts for deleted ones.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Fills `rootfs` with the merged view of `layers` (bottom first).
pub fn populate(layers: &[PathBuf], rootfs: &Path) -> io::Result<()> {
    let (reader, writer) = io::pipe()?;
    let layers = layers.to_vec();
    let packer = std::thread::spawn(move || crate::image::layer::pack_merged(&layers, writer));
    let unpacked = crate::image::layer::unpack(reader, rootfs, &crate::image::layer::UnpackOptions::default());
    let packed = packer.join().map_err(|_| io::Error::other("copying layers: a thread panicked"))?;
    packed?;
    unpacked.map(|_| ())
}

/// Whether an entry in the copy is the one in the image: same type, mode, owner, and for files
/// size and modification time, for symlinks target.
fn same(a: &std::fs::Metadata, b: &std::fs::Metadata, a_path: &Path, b_path: &Path) -> bool {
    if a.file_type() != b.file_type() || a.mode() != b.mode() || a.uid() != b.uid() || a.gid() != b.gid() {
        return false;
    }
    if a.is_dir() {
        return true;
    }
    if a.file_type().is_symlink() {
        return std::fs::read_link(a_path).ok() == std::fs::read_link(b_path).ok();
    }
    a.len() == b.len() && a.mtime() == b.mtime() && a.rdev() == b.rdev()
}

/// Builds in `out` (an empty directory on the same filesystem as `rootfs`) the upper directory
/// that turns `layers` into `rootfs`.
pub fn upper_view(rootfs: &Path, layers: &[PathBuf], out: &Path) -> io::Result<()> {
    let image: HashMap<PathBuf, PathBuf> = crate::image::layer::merged_entries(layers)?.into_iter().collect();
    walk(rootfs, Path::new(""), &image, out)?;
    // Deleted: in the image, not in the copy, with a parent that is still there.
    for rel in image.keys() {
        if std::fs::symlink_metadata(rootfs.join(rel)).is_err()
            && rel.parent().is_none_or(|p| p.as_os_str().is_empty() || rootfs.join(p).is_dir())
        {
            ensure_parents(rootfs, rel, out)?;
            nix::sys::stat::mknod(&out.join(rel), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
                .map_err(io::Error::from)?;
        }
    }
    Ok(())
}

fn walk(rootfs: &Path, rel: &Path, image: &HashMap<PathBuf, PathBuf>, out: &Path) -> io::Result<()> {
    let mut names: Vec<_> =
        std::fs::read_dir(rootfs.join(rel))?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let r = rel.join(&name);
        let path = rootfs.join(&r);
        let md = std::fs::symlink_metadata(&path)?;
        let unchanged = image
            .get(&r)
            .and_then(|src| std::fs::symlink_metadata(src).ok().map(|m| same(&md, &m, &path, src)))
            .unwrap_or(false);
        if !unchanged {
            ensure_parents(rootfs, &r, out)?;
            place(&path, &md, &out.join(&r))?;
        }
        if md.is_dir() {
            walk(rootfs, &r, image, out)?;
        }
    }
    Ok(())
}

/// Makes the parent directories of `rel` in `out`, with the copy's owners and modes.
fn ensure_parents(rootfs: &Path, rel: &Path, out: &Path) -> io::Result<()> {
    let mut built = PathBuf::new();
    for c in rel.parent().into_iter().flat_map(|p| p.components()) {
        built.push(c);
        let target = out.join(&built);
        if target.exists() {
            continue;
        }
        let md = std::fs::symlink_metadata(rootfs.join(&built))?;
        place(&rootfs.join(&built), &md, &target)?;
    }
    Ok(())
}

/// One entry of the view: a directory with the same metadata, a hard link to a file, a symlink.
fn place(src: &Path, md: &std::fs::Metadata, dst: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if md.is_dir() {
        if !dst.exists() {
            std::fs::create_dir(dst)?;
        }
        std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid()))?;
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    } else if md.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
        std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid()))?;
    } else {
        std::fs::hard_link(src, dst)?;
    }
    Ok(())
}

/// Whether overlayfs works here: a small overlay is mounted (and at once unmounted) under the
/// data root's scratch directory, where containers' upper directories will live.
pub fn overlay_works(scratch: &Path) -> bool {
    let dir = scratch.join(format!("overlay-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ok = (|| -> io::Result<bool> {
        for d in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            dir.join("lower").display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        let m = nix::mount::mount(
            Some("overlay"),
            &dir.join("merged"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        );
        if m.is_err() {
            return Ok(false);
        }
        let _ = nix::mount::umount2(&dir.join("merged"), nix::mount::MntFlags::MNT_DETACH);
        Ok(true)
    })()
    .unwrap_or(false);
    let _ = std::fs::remove_dir_all(&dir);
    ok
}
