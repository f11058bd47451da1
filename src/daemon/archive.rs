//! `docker cp`: `HEAD`/`GET`/`PUT /containers/{id}/archive?path=`.
//!
//! Every file operation runs in a helper process, `tug-archive` (argv[0] only, hidden), that is
//! chrooted into the container's root before it touches a path. The kernel then resolves every
//! `..` and every symlink, absolute or not, inside the container: nothing a container (or a
//! hostile archive) puts in its filesystem can lead a copy out of it.
//!
//! - A running container's root is `/proc/<pid>/root`, which shows its mounts (volumes, binds).
//! - A stopped one has no mounted root: the helper makes a private mount namespace, mounts the
//!   overlay and the container's bind mounts (volumes, binds) as the runtime would, and chroots
//!   there. The mounts vanish with the helper.
//!
//! The helper speaks on stdout: one JSON line (the stat, or `{"error", "missing"}`), then for
//! `get` the tar stream. For `put` it reads the tar from stdin.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use serde_json::{json, Value};

use super::api::{ApiError, ApiResult, Responder};
use super::http::{Body, Head};
use super::Engine;

// Go's os.FileMode type bits, which the docker CLI decodes.
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_PIPE: u32 = 1 << 25;
const MODE_SOCKET: u32 = 1 << 24;
const MODE_SETUID: u32 = 1 << 23;
const MODE_SETGID: u32 = 1 << 22;
const MODE_CHAR: u32 = 1 << 21;
const MODE_STICKY: u32 = 1 << 20;

/// The stat Docker puts in `X-Docker-Container-Path-Stat`.
fn stat_json(path: &Path) -> io::Result<Value> {
    use std::os::unix::fs::FileTypeExt;
    let m = std::fs::symlink_metadata(path)?;
    let ft = m.file_type();
    let mut mode = m.mode() & 0o777;
    if ft.is_dir() {
        mode |= MODE_DIR;
    }
    if ft.is_symlink() {
        mode |= MODE_SYMLINK;
    }
    if ft.is_block_device() {
        mode |= MODE_DEVICE;
    }
    if ft.is_char_device() {
        mode |= MODE_DEVICE | MODE_CHAR;
    }
    if ft.is_fifo() {
        mode |= MODE_PIPE;
    }
    if ft.is_socket() {
        mode |= MODE_SOCKET;
    }
    let raw = m.mode();
    if raw & 0o4000 != 0 {
        mode |= MODE_SETUID;
    }
    if raw & 0o2000 != 0 {
        mode |= MODE_SETGID;
    }
    if raw & 0o1000 != 0 {
        mode |= MODE_STICKY;
    }
    let link = if ft.is_symlink() { std::fs::read_link(path)?.display().to_string() } else { String::new() };
    let name = path.file_name().map_or_else(|| "/".to_string(), |n| n.to_string_lossy().into_owned());
    let mtime = crate::timefmt::rfc3339_nanos(m.mtime(), u32::try_from(m.mtime_nsec()).unwrap_or(0));
    Ok(json!({"name": name, "size": m.size(), "mode": mode, "mtime": mtime, "linkTarget": link}))
}

/// Cleans a container path lexically (`..` cannot climb above `/`; the chroot enforces it too).
fn clean(p: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Entry point of the hidden `tug-archive` applet:
/// `tug-archive (--pid N | --bundle DIR) (stat|get|put) PATH [--no-overwrite-dir-non-dir] [--copy-uid-gid]`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let args: Vec<String> = args.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let mut out = io::stdout().lock();
    match helper(&args, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err((missing, msg)) => {
            let _ = writeln!(out, "{}", json!({"error": msg, "missing": missing}));
            ExitCode::from(1)
        }
    }
}

type HelperErr = (bool, String);

fn helper(args: &[String], out: &mut dyn Write) -> Result<(), HelperErr> {
    let fail = |m: String| (false, m);
    let arg = |i: usize| args.get(i).cloned().ok_or_else(|| fail("tug-archive: missing arguments".into()));
    let (how, src, op, path) = (arg(0)?, arg(1)?, arg(2)?, arg(3)?);
    let flags = &args[4.min(args.len())..];
    let root = match how.as_str() {
        "--pid" => PathBuf::from(format!("/proc/{src}/root")),
        "--bundle" => mount_stopped(Path::new(&src)).map_err(fail)?,
        _ => return Err(fail(format!("tug-archive: unknown mode {how}"))),
    };
    nix::unistd::chroot(&root).map_err(|e| fail(format!("chroot {}: {e}", root.display())))?;
    nix::unistd::chdir("/").map_err(|e| fail(format!("chdir: {e}")))?;
    // A trailing `/` (or `/.`) names what a symlink points to, as Docker resolves it; inside the
    // chroot the resolution cannot leave the container.
    let follow = path.ends_with('/') || path.ends_with("/.");
    // What the client calls it: the last element of the path as asked (`.` for `d/.`, `dl` for
    // `dl/`), not of what it resolves to; the client renames entries by this.
    let asked = if path.ends_with("/.") || path == "." {
        ".".to_string()
    } else {
        clean(&path).file_name().map_or_else(|| "/".to_string(), |n| n.to_string_lossy().into_owned())
    };
    let mut path = clean(&path);
    if follow {
        if let Ok(p) = std::fs::canonicalize(&path) {
            path = p;
        }
    }
    let missing = |e: io::Error| (e.kind() == io::ErrorKind::NotFound, format!("{}: {e}", path.display()));
    match op.as_str() {
        "stat" => {
            let mut st = stat_json(&path).map_err(missing)?;
            st["name"] = json!(asked);
            writeln!(out, "{st}").map_err(|e| fail(e.to_string()))
        }
        "get" => {
            let mut st = stat_json(&path).map_err(missing)?;
            st["name"] = json!(asked);
            writeln!(out, "{st}").map_err(|e| fail(e.to_string()))?;
            let name = st["name"].as_str().unwrap_or("").to_string();
            let mut b = tar::Builder::new(out);
            write_tree(&mut b, &path, name.as_bytes())
                .and_then(|()| b.finish())
                .map_err(|e| fail(format!("archive {}: {e}", path.display())))
        }
        "put" => {
            let meta = std::fs::metadata(&path).map_err(missing)?;
            if !meta.is_dir() {
                return Err(fail("extraction point is not a directory".into()));
            }
            let no_overwrite = flags.iter().any(|f| f == "--no-overwrite-dir-non-dir");
            let keep_ids = flags.iter().any(|f| f == "--copy-uid-gid");
            extract(io::stdin().lock(), &path, no_overwrite, keep_ids).map_err(fail)?;
            writeln!(out, "{}", json!({"ok": true})).map_err(|e| fail(e.to_string()))
        }
        other => Err(fail(format!("tug-archive: unknown operation {other}"))),
    }
}

/// Writes `path` (and, for a directory, everything under it) as tar entries named `name`,
/// `name/child`, … exactly as given: `./a` stays `./a` (the tar crate's own path handling would
/// drop the `.`, and the docker CLI renames `SRC/.` copies by that prefix). Directories end in
/// `/`; owners, modes and times are kept; symlinks are not followed.
fn write_tree<W: Write>(b: &mut tar::Builder<W>, path: &Path, name: &[u8]) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::symlink_metadata(path)?;
    let ft = md.file_type();
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
    let mut full = name.to_vec();
    if ft.is_dir() && !full.ends_with(b"/") {
        full.push(b'/');
    }
    let kind = if ft.is_dir() {
        tar::EntryType::Directory
    } else if ft.is_symlink() {
        tar::EntryType::Symlink
    } else if ft.is_file() {
        tar::EntryType::Regular
    } else if ft.is_char_device() {
        tar::EntryType::Char
    } else if ft.is_block_device() {
        tar::EntryType::Block
    } else if ft.is_fifo() {
        tar::EntryType::Fifo
    } else {
        return Ok(()); // sockets have no tar form
    };
    h.set_entry_type(kind);
    if !ft.is_file() {
        h.set_size(0);
    }
    if ft.is_symlink() {
        let target = std::fs::read_link(path)?;
        let t = target.as_os_str().as_bytes();
        if t.len() > 100 {
            long_entry(b, b'K', t)?;
        }
        let n = t.len().min(100);
        h.as_old_mut().linkname = [0; 100];
        h.as_old_mut().linkname[..n].copy_from_slice(&t[..n]);
    }
    if full.len() > 100 {
        long_entry(b, b'L', &full)?;
    }
    let n = full.len().min(100);
    h.as_old_mut().name = [0; 100];
    h.as_old_mut().name[..n].copy_from_slice(&full[..n]);
    h.set_cksum();
    if ft.is_file() {
        b.append(&h, std::fs::File::open(path)?)?;
    } else {
        b.append(&h, io::empty())?;
    }
    if ft.is_dir() {
        let mut names: Vec<OsString> =
            std::fs::read_dir(path)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
        names.sort();
        for child in names {
            let mut sub = full.clone();
            sub.extend_from_slice(child.as_bytes());
            write_tree(b, &path.join(&child), &sub)?;
        }
    }
    Ok(())
}

/// A GNU long-name (`L`) or long-link (`K`) entry carrying `value` for the header that follows.
fn long_entry<W: Write>(b: &mut tar::Builder<W>, kind: u8, value: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    let tag = b"././@LongLink";
    h.as_old_mut().name[..tag.len()].copy_from_slice(tag);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(value.len() as u64 + 1);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    let mut data = value.to_vec();
    data.push(0);
    b.append(&h, &data[..])
}

/// A stopped container's filesystem, assembled in a private mount namespace: the overlay at the
/// root path of its bundle, its bind mounts (volumes, binds) on top.
fn mount_stopped(bundle: &Path) -> Result<PathBuf, String> {
    use nix::mount::{mount, MsFlags};
    let spec = crate::runtime::spec::Spec::load(bundle)?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare: {e}"))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| format!("make / private: {e}"))?;
    let root = PathBuf::from(spec.root.as_ref().map(|r| r.path.clone()).unwrap_or_default());
    if let Some(ov) = spec.annotations.get(crate::runtime::mounts::OVERLAY_ANNOTATION) {
        crate::runtime::mounts::mount_overlay(ov, &root)?;
    }
    for m in &spec.mounts {
        if m.kind.as_deref() != Some("bind") {
            continue;
        }
        let Some(src) = m.source.as_deref() else { continue };
        let dest = crate::runtime::mounts::secure_join(&root, &m.destination);
        // Only where the mount point exists already: a copy must not create it.
        if std::fs::symlink_metadata(&dest).is_err() || std::fs::metadata(src).is_err() {
            continue;
        }
        mount(Some(src), &dest, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(|e| format!("bind {src}: {e}"))?;
        if m.options.iter().any(|o| o == "ro") {
            let f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            mount(None::<&str>, &dest, None::<&str>, f, None::<&str>).map_err(|e| format!("remount ro: {e}"))?;
        }
    }
    Ok(root)
}

/// Extracts a tar into `dir` (inside the chroot). Entries with `..` are refused; ownership is
/// the container's root unless the caller asked for the archive's ids (`cp -a`).
fn extract(input: impl Read, dir: &Path, no_overwrite: bool, keep_ids: bool) -> Result<(), String> {
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    for entry in ar.entries().map_err(|e| format!("bad archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("bad archive: {e}"))?;
        let rel = entry.path().map_err(|e| format!("bad archive: {e}"))?.into_owned();
        if rel.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!("bad archive: entry {} climbs out of the destination", rel.display()));
        }
        let target = dir.join(rel.components().filter(|c| matches!(c, Component::Normal(_))).collect::<PathBuf>());
        let is_dir = entry.header().entry_type().is_dir();
        if no_overwrite {
            if let Ok(existing) = std::fs::symlink_metadata(&target) {
                if existing.is_dir() && !is_dir {
                    return Err(format!(
                        "cannot overwrite directory {:?} with non-directory",
                        target.display().to_string()
                    ));
                }
                if !existing.is_dir() && is_dir {
                    return Err(format!(
                        "cannot overwrite non-directory {:?} with directory",
                        target.display().to_string()
                    ));
                }
            }
        }
        let (uid, gid) = (entry.header().uid().unwrap_or(0), entry.header().gid().unwrap_or(0));
        if !entry.unpack_in(dir).map_err(|e| format!("extract {}: {e}", rel.display()))? {
            return Err(format!("bad archive: entry {} climbs out of the destination", rel.display()));
        }
        let (uid, gid) = if keep_ids { (uid as u32, gid as u32) } else { (0, 0) };
        let _ = std::os::unix::fs::lchown(&target, Some(uid), Some(gid));
        if !entry.header().entry_type().is_symlink() {
            // chown clears set-id bits: put the archive's mode back.
            if let Ok(mode) = entry.header().mode() {
                let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o7777));
            }
        }
    }
    Ok(())
}

/// Starts the helper for a container.
fn spawn(e: &Engine, id: &str, op: &str, path: &str, flags: &[&str]) -> Result<std::process::Child, ApiError> {
    let rec = e.containers.find(id)?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("tug-archive");
    if rec.running() {
        let st = e.containers.runtime_state(&rec)?;
        cmd.arg("--pid").arg(st.pid.to_string());
    } else {
        cmd.arg("--bundle").arg(e.containers.container_dir(&rec.id).join("bundle"));
    }
    cmd.arg(op).arg(path).args(flags);
    cmd.stdin(if op == "put" { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::null());
    cmd.spawn().map_err(|err| ApiError::internal(format!("cannot start the archive helper: {err}")))
}

/// Reads the helper's first line: the stat, or its error mapped to Docker's answers.
fn first_line(id: &str, path: &str, r: &mut impl BufRead) -> Result<Value, ApiError> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|err| ApiError::internal(format!("archive helper: {err}")))?;
    let v: Value = serde_json::from_str(line.trim())
        .map_err(|_| ApiError::internal(format!("archive helper said {:?}", line.trim())))?;
    if let Some(msg) = v["error"].as_str() {
        if v["missing"].as_bool() == Some(true) {
            return Err(ApiError::not_found(format!("Could not find the file {path} in container {id}")));
        }
        return Err(ApiError::bad_request(msg.to_string()));
    }
    Ok(v)
}

fn stat_header(v: &Value) -> String {
    crate::b64::encode(v.to_string().as_bytes())
}

fn path_param(head: &Head) -> Result<String, ApiError> {
    head.param("path")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("path is required"))
}

/// `HEAD /containers/{id}/archive?path=`.
pub fn stat(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let path = path_param(head)?;
    let mut child = spawn(e, id, "stat", &path, &[])?;
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let res = first_line(id, &path, &mut out);
    let _ = child.wait();
    let v = res?;
    r.bytes(200, "application/json", b"", &[("X-Docker-Container-Path-Stat", stat_header(&v))])?;
    Ok(())
}

/// `GET /containers/{id}/archive?path=`: the stat header, then the tar.
pub fn get(e: &Engine, id: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let path = path_param(head)?;
    let mut child = spawn(e, id, "get", &path, &[])?;
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let v = match first_line(id, &path, &mut out) {
        Ok(v) => v,
        Err(err) => {
            let _ = child.wait();
            return Err(err);
        }
    };
    let mut w = r.stream(200, "application/x-tar", &[("X-Docker-Container-Path-Stat", stat_header(&v))])?;
    let copied = io::copy(&mut out, &mut w);
    let status = child.wait();
    // A helper that failed midway leaves a short archive: end without the final chunk.
    if copied.is_err() || !status.is_ok_and(|s| s.success()) {
        return Ok(());
    }
    w.finish()?;
    Ok(())
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`.
pub fn put(e: &Engine, id: &str, head: &Head, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    let path = path_param(head)?;
    let rec = e.containers.find(id)?;
    if rec.config.host_config.as_ref().is_some_and(|h| h.readonly_rootfs) && rec.running() {
        return Err(ApiError::new(403, "container rootfs is marked read-only"));
    }
    let mut flags = Vec::new();
    if head.flag("noOverwriteDirNonDir", false) {
        flags.push("--no-overwrite-dir-non-dir");
    }
    if head.flag("copyUIDGID", false) {
        flags.push("--copy-uid-gid");
    }
    let mut child = spawn(e, id, "put", &path, &flags)?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    // The body goes in while the helper extracts; a helper that stops early (a bad archive)
    // closes its stdin and the rest of the body is drained.
    let fed = io::copy(body, &mut stdin);
    drop(stdin);
    let _ = body.drain();
    let res = first_line(id, &path, &mut out);
    let _ = child.wait();
    res?;
    if let Err(err) = fed {
        if err.kind() != io::ErrorKind::BrokenPipe {
            return Err(ApiError::bad_request(format!("reading the archive: {err}")));
        }
    }
    r.empty(200)?;
    Ok(())
}
