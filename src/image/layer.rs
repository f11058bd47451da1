//! Layer tars: unpacking into an overlayfs lower directory, diff and chain IDs, and packing a
//! directory back into a deterministic tar.
//!
//! Unpacking is the security boundary of the image store (DESIGN §4): a layer is hostile input.
//! Every entry path is cleaned lexically (absolute paths become relative, `..` may not climb above
//! the root), every parent directory is opened with `O_NOFOLLOW` one component at a time from a
//! directory fd of the root, and the entry itself is created with `*at` calls that never follow a
//! final symlink. So no symlink in the destination — planted by an earlier entry or not — is ever
//! followed, and nothing is written outside `dest`. Entries that would need that (a path through a
//! symlink, a hard link leaving the root) are refused with an error naming the entry.
//!
//! The caller unpacks into a fresh directory under the store's `tmp/` and renames it into place only
//! when `unpack` succeeds; on error it removes the partial tree. `unpack` itself does not clean up.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use sha2::{Digest as _, Sha256};

use crate::store::digest::{hex, Digest};

/// What an unpack may create beyond plain files, directories, links and fifos.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Create character and block device nodes. Off for image layers pulled from anywhere: a device
    /// node in a lower directory would hand a container raw access to a host device.
    pub allow_devices: bool,
}

/// The overlayfs whiteout and opaque-directory conventions of the OCI image spec.
const WHITEOUT_PREFIX: &str = ".wh.";
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Unpacks a layer (plain or gzip-compressed tar, told apart by magic bytes) into the existing,
/// empty directory `dest`, converting whiteouts for overlayfs. Returns the diff ID (sha256 of the
/// uncompressed tar stream, trailing padding included) and the bytes of regular-file content.
///
/// Errors are `InvalidData` for a hostile or corrupt layer, naming the entry.
pub fn unpack(reader: impl Read, dest: &Path, opts: &UnpackOptions) -> io::Result<(Digest, u64)> {
    let mut hashed = HashReader::new(decompressed(reader)?);
    let root =
        open_dir(None, dest.as_os_str()).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dest.display())))?;
    let mut size = 0u64;
    let mut dir_times = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut hashed);
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            size += unpack_entry(&root, &mut entry, opts, &mut dir_times)
                .map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))?;
        }
    }
    // Directory times last: creating children updates a directory's mtime. Re-walk with O_NOFOLLOW
    // because a later entry may have replaced a parent with a symlink.
    for (comps, mtime) in dir_times.iter().rev() {
        if let Ok(dir) = walk(&root, comps, false) {
            set_times(&dir, OsStr::new("."), *mtime)?;
        }
    }
    // The diff ID covers the whole uncompressed stream, including padding after the end marker.
    io::copy(&mut hashed, &mut io::sink()).map_err(corrupt)?;
    Ok((hashed.digest(), size))
}

/// The diff ID of a plain or gzip-compressed layer, without unpacking it.
pub fn diff_id(reader: impl Read) -> io::Result<Digest> {
    let mut hashed = HashReader::new(decompressed(reader)?);
    io::copy(&mut hashed, &mut io::sink()).map_err(corrupt)?;
    Ok(hashed.digest())
}

/// Whether the first bytes of a blob are a gzip header.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

/// The chain ID of a layer on top of `parent` (OCI image spec: `sha256(parent + " " + diff_id)`;
/// the bottom layer's chain ID is its diff ID).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// The chain IDs of a stack of diff IDs, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let c = chain_id(out.last(), d);
        out.push(c);
    }
    out
}

/// Writes a tar of `dir`'s contents (not `dir` itself) to `out`: names sorted, numeric owners, no
/// user or group names, hard links kept as links, so the same tree gives the same bytes. Extended
/// attributes are not included.
pub fn pack_dir(dir: &Path, out: impl Write) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    pack_tree(&mut builder, dir, Path::new(""), &mut links)?;
    builder.into_inner()?.flush()
}

fn pack_tree<W: Write>(
    b: &mut tar::Builder<W>,
    base: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    pack_tree_with(b, base, rel, links, false)
}

/// Writes a container's overlay upper directory as an image layer (`docker commit`): as
/// [`pack_dir`], with overlayfs' whiteouts (0:0 character devices) written as `.wh.NAME` files and
/// opaque directories marked with `.wh..wh..opq`, as the OCI image spec has them.
pub fn pack_diff(upper: &Path, out: impl Write) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    pack_tree_with(&mut builder, upper, Path::new(""), &mut links, true)?;
    builder.into_inner()?.flush()
}

fn pack_tree_with<W: Write>(
    b: &mut tar::Builder<W>,
    base: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
    diff: bool,
) -> io::Result<()> {
    let mut names: Vec<OsString> =
        std::fs::read_dir(base.join(rel))?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    names.sort();
    if diff && !rel.as_os_str().is_empty() && is_opaque(&base.join(rel)) {
        append_marker(b, &rel.join(WHITEOUT_OPAQUE))?;
    }
    for name in names {
        let entry_rel = rel.join(&name);
        let path = base.join(&entry_rel);
        if diff {
            let md = std::fs::symlink_metadata(&path)?;
            if is_whiteout(&md) {
                let mut marker = OsString::from(WHITEOUT_PREFIX);
                marker.push(&name);
                append_marker(b, &rel.join(marker))?;
                continue;
            }
        }
        if append_entry(b, &path, &entry_rel, links)? {
            pack_tree_with(b, base, &entry_rel, links, diff)?;
        }
    }
    Ok(())
}

/// An empty regular file: a whiteout marker.
fn append_marker<W: Write>(b: &mut tar::Builder<W>, rel: &Path) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, rel, io::empty())
}

/// Writes one tar entry for the file at `path`, named `rel`; true if it is a directory (whose
/// contents the caller then walks).
fn append_entry<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<bool> {
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::symlink_metadata(path)?;
    let mut h = tar::Header::new_gnu();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(u64::from(md.uid()));
    h.set_gid(u64::from(md.gid()));
    h.set_mtime(u64::try_from(md.mtime()).unwrap_or(0));
    h.set_size(0);
    let ft = md.file_type();
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        let mut name = rel.as_os_str().to_owned();
        name.push("/");
        b.append_data(&mut h, Path::new(&name), io::empty())?;
        return Ok(true);
    }
    if ft.is_symlink() {
        h.set_entry_type(tar::EntryType::Symlink);
        b.append_link(&mut h, rel, std::fs::read_link(path)?)?;
    } else if ft.is_file() {
        if md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, rel, first)?;
                return Ok(false);
            }
            links.insert((md.dev(), md.ino()), rel.to_path_buf());
        }
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(md.len());
        b.append_data(&mut h, rel, File::open(path)?)?;
    } else {
        h.set_entry_type(if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else if ft.is_fifo() {
            tar::EntryType::Fifo
        } else {
            return Ok(false); // sockets have no tar form
        });
        let rdev = md.rdev();
        h.set_device_major(nix::sys::stat::major(rdev).try_into().unwrap_or(0))?;
        h.set_device_minor(nix::sys::stat::minor(rdev).try_into().unwrap_or(0))?;
        b.append_data(&mut h, rel, io::empty())?;
    }
    Ok(false)
}

/// The union of overlay-style layers (`dirs`, bottom first), as a tar: what the container sees,
/// without mounting anything (`docker export`). Whiteouts (0:0 character devices) hide what is
/// below them, and an opaque directory hides the lower layers' contents of that directory.
pub fn pack_merged(dirs: &[PathBuf], out: impl Write) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    let mut links = HashMap::new();
    for (rel, src) in merged_entries(dirs)? {
        append_entry(&mut builder, &src, &rel, &mut links)?;
    }
    builder.into_inner()?.flush()
}

/// Every path visible in the union of overlay-style layers (`dirs`, bottom first), with the file
/// that provides it: the merged view `pack_merged` writes, as a list.
pub fn merged_entries(dirs: &[PathBuf]) -> io::Result<Vec<(PathBuf, PathBuf)>> {
    let top_first: Vec<&Path> = dirs.iter().rev().map(PathBuf::as_path).collect();
    let mut out = Vec::new();
    union_entries(&top_first, Path::new(""), &mut out)?;
    Ok(out)
}

fn union_entries(layers: &[&Path], rel: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> io::Result<()> {
    let mut hidden = std::collections::BTreeSet::new();
    let mut winners: std::collections::BTreeMap<OsString, usize> = std::collections::BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        let dir = layer.join(rel);
        match std::fs::symlink_metadata(&dir) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => break,
            Err(_) => continue,
        }
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name();
            if hidden.contains(&name) || winners.contains_key(&name) {
                continue;
            }
            if is_whiteout(&e.metadata()?) {
                hidden.insert(name);
            } else {
                winners.insert(name, i);
            }
        }
        if is_opaque(&dir) {
            break;
        }
    }
    for (name, i) in winners {
        let rel = rel.join(&name);
        let src = layers[i].join(&rel);
        let is_dir = std::fs::symlink_metadata(&src)?.is_dir();
        out.push((rel.clone(), src));
        if is_dir {
            union_entries(&layers[i..], &rel, out)?;
        }
    }
    Ok(())
}

fn is_whiteout(md: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    md.file_type().is_char_device() && md.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_encoded_bytes()) else { return false };
    let mut v = [0u8; 1];
    // SAFETY: valid C strings and a one-byte buffer whose length is passed; the kernel writes at
    // most that many bytes.
    let n =
        unsafe { nix::libc::lgetxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), v.as_mut_ptr().cast(), v.len()) };
    n == 1 && v[0] == b'y'
}

/// Wraps `r` in a gzip decoder if it starts with the gzip magic; refuses other compressions by name
/// rather than failing later with a confusing tar error.
fn decompressed<'a>(mut r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = head[..n].to_vec();
    let unsupported =
        |what: &str| Err(io::Error::new(io::ErrorKind::InvalidData, format!("{what} layers are not supported")));
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return unsupported("zstd");
    }
    if head.starts_with(b"BZh") {
        return unsupported("bzip2");
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return unsupported("xz");
    }
    let whole = io::Cursor::new(head).chain(r);
    if is_gzip(&whole.get_ref().0.get_ref()[..]) {
        // Multi-member: concatenated gzip members (parallel compressors) are one valid stream.
        Ok(Box::new(flate2::read::MultiGzDecoder::new(whole)))
    } else {
        Ok(Box::new(whole))
    }
}

/// Names the failure of reading the stream itself (truncation, bad gzip) as corrupt input.
fn corrupt(e: io::Error) -> io::Error {
    let kind = match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::Other => io::ErrorKind::InvalidData,
        k => k,
    };
    io::Error::new(kind, format!("corrupt layer: {e}"))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A reader that hashes and counts what passes through it.
struct HashReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> HashReader<R> {
    fn new(inner: R) -> Self {
        HashReader { inner, hash: Sha256::new() }
    }
    fn digest(&self) -> Digest {
        Digest::parse(&format!("sha256:{}", hex(&self.hash.clone().finalize()))).unwrap_or_else(|_| Digest::of(b""))
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Cleans an entry path into components below the root: `/a` is `a`, `.` and empty components
/// vanish, `a/../b` is `b`; a `..` that would climb above the root is refused.
fn clean(path: &[u8]) -> io::Result<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for c in Path::new(OsStr::from_bytes(path)).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(invalid("path escapes the layer root"));
                }
            }
            Component::Normal(n) => out.push(n.to_owned()),
        }
    }
    Ok(out)
}

/// Opens a directory without following a symlink at the last component.
fn open_dir(at: Option<&OwnedFd>, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(at.map(|f| f.as_raw_fd()), name, flags, Mode::empty())?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `comps` below `root` one component at a time, never following a symlink; with `create`,
/// missing directories are made (0755, as tar implementations do for implied parents).
fn walk(root: &OwnedFd, comps: &[OsString], create: bool) -> io::Result<OwnedFd> {
    let mut cur = open_dir(Some(root), OsStr::new("."))?;
    for (i, c) in comps.iter().enumerate() {
        let next = match open_dir(Some(&cur), c) {
            Err(e) if e.raw_os_error() == Some(Errno::ENOENT as i32) && create => {
                mkdirat(Some(cur.as_raw_fd()), c.as_os_str(), Mode::from_bits_truncate(0o755))?;
                open_dir(Some(&cur), c)
            }
            r => r,
        };
        cur = match next {
            Ok(fd) => fd,
            Err(e) => {
                let prefix = comps[..=i].iter().map(|c| c.to_string_lossy()).collect::<Vec<_>>().join("/");
                return Err(match lstat_kind(&cur, c) {
                    Some(SFlag::S_IFLNK) => invalid(format!("refusing to write through symlink {prefix}")),
                    Some(k) if k != SFlag::S_IFDIR => invalid(format!("{prefix} is not a directory")),
                    _ => io::Error::new(e.kind(), format!("{prefix}: {e}")),
                });
            }
        };
    }
    Ok(cur)
}

/// The file type of `name` in `dir` (not following a symlink), or None if it does not exist.
fn lstat_kind(dir: &OwnedFd, name: &OsStr) -> Option<SFlag> {
    let st = fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
    Some(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)
}

/// Removes whatever is at `name` (a directory tree too) so an entry can take its place.
fn remove_existing(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    match lstat_kind(dir, name) {
        None => Ok(()),
        Some(SFlag::S_IFDIR) => {
            let sub = open_dir(Some(dir), name)?;
            remove_children(&sub)?;
            Ok(unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir)?)
        }
        Some(_) => Ok(unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)?),
    }
}

/// Empties a directory through its fd, never following symlinks.
fn remove_children(dir: &OwnedFd) -> io::Result<()> {
    // Read the names through a /proc-free path: a dup of the fd turned into a directory stream.
    let names: Vec<OsString> = {
        let d = nix::dir::Dir::openat(Some(dir.as_raw_fd()), ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
        let mut d = d;
        d.iter()
            .filter_map(Result::ok)
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
            .filter(|n| n != "." && n != "..")
            .collect()
    };
    for n in names {
        remove_existing(dir, &n)?;
    }
    Ok(())
}

/// Metadata an entry carries beyond its header: PAX overrides and extended attributes.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    let id = |v: u64, what: &str| u32::try_from(v).map_err(|_| invalid(format!("{what} {v} out of range")));
    let mut m = Meta {
        mode: h.mode()? & 0o7777,
        uid: id(h.uid()?, "uid")?,
        gid: id(h.gid()?, "gid")?,
        mtime: i64::try_from(h.mtime()?).unwrap_or(0),
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let num = || std::str::from_utf8(value).ok().and_then(|v| v.split('.').next()?.parse::<u64>().ok());
            match key {
                "uid" => m.uid = id(num().ok_or_else(|| invalid("bad pax uid"))?, "uid")?,
                "gid" => m.gid = id(num().ok_or_else(|| invalid("bad pax gid"))?, "gid")?,
                "mtime" => m.mtime = num().and_then(|v| i64::try_from(v).ok()).unwrap_or(m.mtime),
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        m.xattrs.push((name.to_string(), value.to_vec()));
                    }
                }
            }
        }
    }
    Ok(m)
}

/// Creates one entry; returns the regular-file bytes written.
fn unpack_entry<R: Read>(
    root: &OwnedFd,
    entry: &mut tar::Entry<'_, R>,
    opts: &UnpackOptions,
    dir_times: &mut Vec<(Vec<OsString>, i64)>,
) -> io::Result<u64> {
    let kind = entry.header().entry_type();
    if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
        return Ok(0);
    }
    let comps = clean(&entry.path_bytes())?;
    let meta = read_meta(entry)?;
    let Some((name, parents)) = comps.split_last() else {
        // "./" itself: the layer root's own metadata.
        if kind.is_dir() {
            apply_meta(root, OsStr::new("."), &meta, false)?;
            dir_times.push((Vec::new(), meta.mtime));
        }
        return Ok(0);
    };
    let parent = walk(root, parents, true)?;
    let name_str = name.to_string_lossy();

    if name_str == WHITEOUT_OPAQUE {
        set_xattr(&parent, OsStr::new("."), OPAQUE_XATTR, b"y")?;
        return Ok(0);
    }
    if name_str.starts_with(WHITEOUT_META_PREFIX) {
        return Ok(0); // other .wh..wh. names are aufs bookkeeping with no overlay meaning
    }
    if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        let hidden = OsStr::from_bytes(hidden);
        if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.as_bytes().contains(&b'/') {
            return Err(invalid("bad whiteout name"));
        }
        // overlayfs: a 0:0 character device hides the same name in lower layers.
        remove_existing(&parent, hidden)?;
        mknodat(Some(parent.as_raw_fd()), hidden, SFlag::S_IFCHR, Mode::empty(), 0)?;
        return Ok(0);
    }

    let fd = Some(parent.as_raw_fd());
    match kind {
        tar::EntryType::Directory => {
            if lstat_kind(&parent, name) != Some(SFlag::S_IFDIR) {
                remove_existing(&parent, name)?;
                mkdirat(fd, name.as_os_str(), Mode::from_bits_truncate(0o700))?;
            }
            apply_meta(&parent, name, &meta, false)?;
            dir_times.push((comps.clone(), meta.mtime));
            Ok(0)
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            remove_existing(&parent, name)?;
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let raw = openat(fd, name.as_os_str(), flags, Mode::from_bits_truncate(0o600))?;
            // SAFETY: openat just returned this descriptor and nothing else owns it.
            let mut file = unsafe { File::from_raw_fd(raw) };
            let want = entry.size();
            let got = io::copy(entry, &mut file).map_err(corrupt)?;
            if got != want {
                return Err(invalid(format!("truncated: {got} of {want} bytes")));
            }
            drop(file);
            apply_meta(&parent, name, &meta, false)?;
            Ok(got)
        }
        tar::EntryType::Symlink => {
            let target = entry.link_name_bytes().ok_or_else(|| invalid("symlink without target"))?;
            remove_existing(&parent, name)?;
            // The target is content, stored as-is (absolute targets are legal); it is never followed here.
            symlinkat(OsStr::from_bytes(&target), fd, name.as_os_str())?;
            apply_meta(&parent, name, &meta, true)?;
            Ok(0)
        }
        tar::EntryType::Link => {
            let target = entry.link_name_bytes().ok_or_else(|| invalid("hard link without target"))?;
            let tcomps = clean(&target).map_err(|_| {
                invalid(format!("hard link target {} is outside the layer", String::from_utf8_lossy(&target)))
            })?;
            let Some((tname, tparents)) = tcomps.split_last() else {
                return Err(invalid("hard link to the layer root"));
            };
            let shown = String::from_utf8_lossy(&target);
            let tparent = walk(root, tparents, false).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => invalid(format!("hard link target {shown} not found in layer")),
                _ => invalid(format!("hard link target {shown}: {e}")),
            })?;
            match lstat_kind(&tparent, tname) {
                None => return Err(invalid(format!("hard link target {shown} not found in layer"))),
                Some(SFlag::S_IFDIR) => return Err(invalid("hard link to a directory")),
                Some(_) => {}
            }
            if tcomps == comps {
                return Ok(0);
            }
            remove_existing(&parent, name)?;
            // Flags 0: link the target itself even if it is a symlink, never what it points to.
            linkat(Some(tparent.as_raw_fd()), tname.as_os_str(), fd, name.as_os_str(), AtFlags::empty())?;
            Ok(0)
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let sflag = match kind {
                tar::EntryType::Char => SFlag::S_IFCHR,
                tar::EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            if sflag != SFlag::S_IFIFO && !opts.allow_devices {
                return Err(invalid("device nodes are not allowed in this layer"));
            }
            // Some writers leave the device fields blank for fifos; blank means 0.
            let h = entry.header();
            let dev = nix::sys::stat::makedev(
                u64::from(h.device_major().ok().flatten().unwrap_or(0)),
                u64::from(h.device_minor().ok().flatten().unwrap_or(0)),
            );
            remove_existing(&parent, name)?;
            mknodat(fd, name.as_os_str(), sflag, Mode::from_bits_truncate(0o600), dev)?;
            apply_meta(&parent, name, &meta, false)?;
            Ok(0)
        }
        other => Err(invalid(format!("unsupported tar entry type {other:?}"))),
    }
}

/// Ownership, then mode (chown clears set-id bits), extended attributes and times.
fn apply_meta(dir: &OwnedFd, name: &OsStr, m: &Meta, symlink: bool) -> io::Result<()> {
    let fd = Some(dir.as_raw_fd());
    if let Err(e) =
        fchownat(fd, name, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)), AtFlags::AT_SYMLINK_NOFOLLOW)
    {
        // Only root can give files away; an unprivileged unpack (tests, rootless) keeps its own ids.
        if e != Errno::EPERM || nix::unistd::geteuid().is_root() {
            return Err(e.into());
        }
    }
    if !symlink {
        // FollowSymlink is safe: the name was just created as a non-symlink by this process.
        fchmodat(fd, name, Mode::from_bits_truncate(m.mode), FchmodatFlags::FollowSymlink)?;
    }
    for (key, value) in &m.xattrs {
        // A layer must not steer overlayfs (redirects, metacopy, opacity) through raw xattrs; opacity
        // comes only from the .wh..wh..opq convention.
        if key.starts_with("trusted.overlay.") {
            continue;
        }
        match set_xattr(dir, name, key, value) {
            Err(e) if [Errno::ENOTSUP as i32, Errno::EPERM as i32].contains(&e.raw_os_error().unwrap_or(0)) => {}
            r => r.map_err(|e| io::Error::new(e.kind(), format!("setting xattr {key}: {e}")))?,
        }
    }
    set_times(dir, name, m.mtime)
}

fn set_times(dir: &OwnedFd, name: &OsStr, mtime: i64) -> io::Result<()> {
    let t = TimeSpec::new(mtime, 0);
    Ok(utimensat(Some(dir.as_raw_fd()), name, &t, &t, UtimensatFlags::NoFollowSymlink)?)
}

/// Sets an extended attribute on `name` in `dir` without following a final symlink. There is no
/// `*at` form of setxattr, so the path goes through the directory fd's /proc entry; the kernel
/// resolves that magic link to the already-open directory, not through any path a layer controls.
fn set_xattr(dir: &OwnedFd, name: &OsStr, key: &str, value: &[u8]) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.as_bytes());
    let path = CString::new(path).map_err(|_| invalid("NUL in path"))?;
    let key = CString::new(key).map_err(|_| invalid("NUL in xattr name"))?;
    // SAFETY: both strings are NUL-terminated and live across the call; value/len describe a valid slice.
    let r = unsafe { nix::libc::lsetxattr(path.as_ptr(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r != 0 {
        // Raw errno kept so callers can tell ENOTSUP (filesystem without xattrs) apart.
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::atomic::tests::temp_dir;
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    /// One tar entry for [`tar_bytes`]: the name is written raw, so hostile names survive.
    pub(crate) struct E<'a> {
        pub name: &'a str,
        pub kind: tar::EntryType,
        pub data: &'a [u8],
        pub link: &'a str,
        pub mode: u32,
        pub uid: u64,
        pub dev: (u32, u32),
    }

    pub(crate) fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
        E { name, kind: tar::EntryType::Regular, data, link: "", mode: 0o644, uid: 0, dev: (0, 0) }
    }
    pub(crate) fn dir(name: &str) -> E<'_> {
        E { name, kind: tar::EntryType::Directory, data: b"", link: "", mode: 0o755, uid: 0, dev: (0, 0) }
    }
    pub(crate) fn link<'a>(name: &'a str, kind: tar::EntryType, target: &'a str) -> E<'a> {
        E { name, kind, data: b"", link: target, mode: 0o777, uid: 0, dev: (0, 0) }
    }

    pub(crate) fn tar_bytes(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
            h.set_entry_type(e.kind);
            h.set_mode(e.mode);
            h.set_uid(e.uid);
            h.set_gid(e.uid);
            h.set_mtime(1_000_000);
            h.set_size(e.data.len() as u64);
            if e.dev != (0, 0) {
                h.set_device_major(e.dev.0).unwrap();
                h.set_device_minor(e.dev.1).unwrap();
            }
            h.set_cksum();
            b.append(&h, e.data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn lgetxattr(path: &Path, key: &str) -> Option<Vec<u8>> {
        let p = CString::new(path.as_os_str().as_bytes()).unwrap();
        let k = CString::new(key).unwrap();
        let mut buf = [0u8; 64];
        // SAFETY: valid C strings and a buffer of the length passed.
        let n = unsafe { nix::libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        usize::try_from(n).ok().map(|n| buf[..n].to_vec())
    }

    #[test]
    fn unpacks_whiteouts_links_and_metadata() {
        let root = temp_dir("layer-ok");
        let mut f = file("a/f", b"hello");
        f.mode = 0o4750;
        f.uid = 1000;
        let fifo = E { kind: tar::EntryType::Fifo, ..file("a/p", b"") };
        let plain = tar_bytes(&[
            dir("./"),
            dir("a/"),
            f,
            link("a/g", tar::EntryType::Link, "a/f"),
            link("abs", tar::EntryType::Symlink, "/etc/passwd"),
            file("./a/.wh..wh..opq", b""),
            file(".wh.gone", b""),
            file("b/../c", b"x"),
            fifo,
        ]);
        for (n, input) in [plain.clone(), gzip(&plain)].into_iter().enumerate() {
            let dest = root.join(format!("d{n}"));
            fs::create_dir(&dest).unwrap();
            let (diff_id, size) = unpack(&input[..], &dest, &UnpackOptions::default()).unwrap();
            assert_eq!(diff_id, Digest::of(&plain), "diff ID is the sha256 of the uncompressed tar");
            assert_eq!(size, 6);
            let md = fs::symlink_metadata(dest.join("a/f")).unwrap();
            assert_eq!((md.mode() & 0o7777, md.uid(), md.gid(), md.mtime()), (0o4750, 1000, 1000, 1_000_000));
            assert_eq!(fs::read(dest.join("a/f")).unwrap(), b"hello");
            assert_eq!(fs::symlink_metadata(dest.join("a/g")).unwrap().ino(), md.ino(), "hard link");
            assert_eq!(fs::read_link(dest.join("abs")).unwrap(), Path::new("/etc/passwd"));
            let wh = fs::symlink_metadata(dest.join("gone")).unwrap();
            assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "whiteout is a 0:0 char device");
            assert!(!dest.join(".wh.gone").exists());
            assert_eq!(lgetxattr(&dest.join("a"), OPAQUE_XATTR).as_deref(), Some(&b"y"[..]));
            assert!(!dest.join("a/.wh..wh..opq").exists());
            assert!(dest.join("c").is_file() && !dest.join("b/c").exists());
            assert!(fs::symlink_metadata(dest.join("a/p")).unwrap().file_type().is_fifo());
            assert_eq!(fs::symlink_metadata(dest.join("a")).unwrap().mtime(), 1_000_000, "dir mtime set last");
        }
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn rejects_hostile_layers_without_writing_outside() {
        let root = temp_dir("layer-hostile");
        let outside = root.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"keep").unwrap();
        let out = outside.to_str().unwrap().to_string();
        let sym_out = format!("{out}/pwned");
        let char_dev = E { kind: tar::EntryType::Char, dev: (1, 3), ..file("null", b"") };
        let plain = tar_bytes(&[file("big", &[7u8; 3000])]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("dotdot", tar_bytes(&[file("../outside/pwned", b"x")]), "escapes"),
            ("dotdot-deep", tar_bytes(&[file("a/../../../../etc/x", b"x")]), "escapes"),
            (
                "symlink-abs",
                tar_bytes(&[link("evil", tar::EntryType::Symlink, &out), file("evil/pwned", b"x")]),
                "symlink",
            ),
            (
                "symlink-root",
                tar_bytes(&[link("evil", tar::EntryType::Symlink, "/"), file("evil/etc/passwd", b"x")]),
                "symlink",
            ),
            (
                "symlink-rel",
                tar_bytes(&[link("evil", tar::EntryType::Symlink, "../outside"), file("evil/pwned", b"x")]),
                "symlink",
            ),
            ("hardlink-abs", tar_bytes(&[link("pw", tar::EntryType::Link, "/etc/passwd")]), "not found"),
            ("hardlink-up", tar_bytes(&[link("pw", tar::EntryType::Link, "../outside/keep")]), "outside"),
            (
                "hardlink-via-symlink",
                tar_bytes(&[link("l", tar::EntryType::Symlink, &out), link("pw", tar::EntryType::Link, "l/keep")]),
                "symlink",
            ),
            ("device", tar_bytes(&[char_dev]), "device"),
            (
                "truncated-gzip",
                {
                    let g = gzip(&plain);
                    g[..g.len() / 2].to_vec()
                },
                "corrupt",
            ),
            ("truncated-tar", plain[..1024].to_vec(), ""),
            ("zstd", vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0], "zstd"),
        ];
        for (name, data, want) in cases {
            let dest = root.join(name);
            fs::create_dir(&dest).unwrap();
            let err = unpack(&data[..], &dest, &UnpackOptions::default()).expect_err(name).to_string();
            assert!(err.contains(want), "{name}: {err}");
            let listing: Vec<_> = fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(listing, vec![OsString::from("keep")], "{name} wrote outside");
            assert_eq!(fs::read(outside.join("keep")).unwrap(), b"keep");
        }
        assert!(!Path::new("/etc/x").exists());
        // An absolute entry path is confined to the root, not refused.
        let dest = root.join("absolute");
        fs::create_dir(&dest).unwrap();
        unpack(&tar_bytes(&[file(&sym_out, b"x")])[..], &dest, &UnpackOptions::default()).unwrap();
        assert!(dest.join(sym_out.trim_start_matches('/')).is_file());
        assert!(!outside.join("pwned").exists());
        // Devices are fine when allowed.
        let dest = root.join("devices-ok");
        fs::create_dir(&dest).unwrap();
        let char_dev = E { kind: tar::EntryType::Char, dev: (1, 3), ..file("null", b"") };
        unpack(&tar_bytes(&[char_dev])[..], &dest, &UnpackOptions { allow_devices: true }).unwrap();
        assert_eq!(fs::symlink_metadata(dest.join("null")).unwrap().rdev(), nix::sys::stat::makedev(1, 3));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let root = temp_dir("layer-replace");
        let dest = root.join("d");
        fs::create_dir(&dest).unwrap();
        let t = tar_bytes(&[
            file("x/y", b"1"),
            file("x", b"now a file"),
            link("s", tar::EntryType::Symlink, "/"),
            dir("s/"),
            file("s/inside", b"2"),
        ]);
        unpack(&t[..], &dest, &UnpackOptions::default()).unwrap();
        assert_eq!(fs::read(dest.join("x")).unwrap(), b"now a file");
        assert!(fs::symlink_metadata(dest.join("s")).unwrap().is_dir());
        assert!(dest.join("s/inside").is_file());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn pack_dir_is_deterministic_and_round_trips() {
        let root = temp_dir("layer-pack");
        let src = root.join("src");
        fs::create_dir_all(src.join("d/e")).unwrap();
        fs::write(src.join("d/f"), b"data").unwrap();
        fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::hard_link(src.join("d/f"), src.join("h")).unwrap();
        std::os::unix::fs::symlink("d/f", src.join("s")).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        pack_dir(&src, &mut a).unwrap();
        pack_dir(&src, &mut b).unwrap();
        assert_eq!(a, b);
        let dest = root.join("dest");
        fs::create_dir(&dest).unwrap();
        let (d, _) = unpack(&a[..], &dest, &UnpackOptions::default()).unwrap();
        assert_eq!(d, Digest::of(&a));
        assert_eq!(fs::read(dest.join("h")).unwrap(), b"data");
        assert_eq!(fs::metadata(dest.join("h")).unwrap().ino(), fs::metadata(dest.join("d/f")).unwrap().ino());
        assert_eq!(fs::metadata(dest.join("d/f")).unwrap().mode() & 0o777, 0o600);
        let mut c = Vec::new();
        pack_dir(&dest, &mut c).unwrap();
        assert_eq!(a, c, "unpack then pack gives the same bytes");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        assert_eq!(chain_id(None, &a), a);
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
