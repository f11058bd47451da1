//! `cp`: files between a container and this machine, through the archive endpoints.
//!
//! The daemon only stats, tars one path and untars into one directory; what a copy means is
//! decided here, with docker's rules: an existing directory destination receives the source
//! inside it; a missing destination becomes the source renamed; `SRC/.` means the directory's
//! contents; a trailing `/` asserts a directory; `-L` follows a symlink source. Archives are
//! renamed entry by entry on the way (the first path element becomes the destination's name)
//! rather than by extracting elsewhere and moving.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::client::{enc, query, Body};
use super::flags::Parsed;
use super::format::human_size;
use super::{err_line, stream, Ctx, Error};

// Go's os.FileMode bits, as the daemon's stat header carries them.
const MODE_DIR: u64 = 1 << 31;
const MODE_SYMLINK: u64 = 1 << 27;
const MODE_DEVICE: u64 = 1 << 26;
const MODE_IRREGULAR: u64 = 1 << 19;

// ---- Go's path/filepath semantics, `/` only ----

/// `filepath.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// `filepath.Base`.
pub fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// `filepath.Dir`.
pub fn dir(p: &str) -> String {
    let d = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    clean(d)
}

/// `filepath.Join` of two elements.
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean(b),
        (false, true) => clean(a),
        (false, false) => clean(&format!("{a}/{b}")),
    }
}

fn specifies_current_dir(p: &str) -> bool {
    base(p) == "."
}

fn asserts_directory(p: &str) -> bool {
    p.ends_with('/') || specifies_current_dir(p)
}

/// Puts back the trailing `/` or `/.` that cleaning took from `original`.
fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut c = cleaned.to_string();
    if !specifies_current_dir(&c) && specifies_current_dir(original) {
        if !c.ends_with('/') {
            c.push('/');
        }
        c.push('.');
    }
    if !c.ends_with('/') && original.ends_with('/') {
        c.push('/');
    }
    c
}

/// The directory and the entry a path names, keeping a final `.`.
fn split_dir_entry(p: &str) -> (String, String) {
    let mut c = clean(p);
    if specifies_current_dir(p) {
        c.push_str("/.");
    }
    (dir(&c), base(&c))
}

/// Go's `strings.Replace(s, old, new, 1)` (an empty `old` matches at the start).
fn replace_once(s: &str, old: &str, new: &str) -> String {
    match s.find(old) {
        Some(i) => format!("{}{new}{}", &s[..i], &s[i + old.len()..]),
        None => s.to_string(),
    }
}

/// One archive rename, applied as docker's `RebaseArchiveEntries` does.
#[derive(Clone, Debug)]
struct Rebase {
    old: String,
    new: String,
}

impl Rebase {
    fn new(old: &str, new: &str) -> Rebase {
        // The root has no name to replace: the new one goes in front.
        let old = if old == "/" { "" } else { old };
        Rebase { old: old.to_string(), new: new.to_string() }
    }
    fn apply(list: &[Rebase], name: &str) -> String {
        list.iter().fold(name.to_string(), |n, r| replace_once(&n, &r.old, &r.new))
    }
}

/// What a copy's source or destination is.
#[derive(Clone, Debug, Default)]
struct CopyInfo {
    path: String,
    exists: bool,
    is_dir: bool,
    rebase_name: String,
}

/// Go's error text for a failed system call on a path: `lstat /x: no such file or directory`.
fn go_err(op: &str, path: &str, e: &io::Error) -> Error {
    let why = match e.raw_os_error() {
        Some(n) => {
            let d = nix::errno::Errno::from_raw(n).desc();
            let mut c = d.chars();
            c.next().map(|f| f.to_lowercase().collect::<String>() + c.as_str()).unwrap_or_default()
        }
        None => e.to_string(),
    };
    Error::msg(format!("{op} {path}: {why}"))
}

/// `filepath.EvalSymlinks` of an absolute path: every link resolved, the path must exist.
fn eval_symlinks(p: &str) -> Result<String, Error> {
    fs::canonicalize(p).map(|c| c.to_string_lossy().into_owned()).map_err(|e| go_err("lstat", &clean(p), &e))
}

/// docker's `PrepareArchiveCopy`: the directory to extract into and the rename the archive needs.
fn prepare(src: &CopyInfo, dst: &CopyInfo) -> Result<(String, Option<Rebase>), Error> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let (_, mut src_base) = split_dir_entry(&src.path);
    if !src.rebase_name.is_empty() {
        src_base = src.rebase_name.clone();
    }
    if dst.exists && dst.is_dir {
        return Ok((dst.path.clone(), None));
    }
    if dst.exists && src.is_dir {
        return Err(Error::msg("cannot copy directory"));
    }
    if !dst.exists && !src.is_dir && asserts_directory(&dst.path) {
        return Err(Error::msg("no such directory"));
    }
    Ok((dst_dir, Some(Rebase::new(&src_base, &dst_base))))
}

/// `CONTAINER:PATH` or a local path (absolute, or with a `.` before any `:`).
fn split_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

/// An absolute local path that keeps a trailing `/` or `/.`.
fn resolve_local(p: &str) -> Result<String, Error> {
    let abs = if p.starts_with('/') {
        clean(p)
    } else {
        let cwd = std::env::current_dir().map_err(Error::io)?;
        join(&cwd.to_string_lossy(), p)
    };
    Ok(preserve_trailing(&abs, p))
}

/// The daemon's stat of a container path (`X-Docker-Container-Path-Stat`).
fn decode_stat(header: Option<&str>) -> Value {
    header.and_then(crate::b64::decode).and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null)
}

fn stat_path(ctx: &Ctx, container: &str, path: &str) -> Result<Value, Error> {
    let q = query(&[("path", path.to_string())]);
    let r = ctx.client.request("HEAD", &format!("/containers/{}/archive?{q}", enc(container)), Body::None)?;
    Ok(decode_stat(r.header("X-Docker-Container-Path-Stat")))
}

fn mode_of(stat: &Value) -> u64 {
    stat["mode"].as_u64().unwrap_or(0)
}

pub fn cp(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let (src, dst) = (&p.args[0], &p.args[1]);
    if src.is_empty() {
        return Err(Error::msg("source can not be empty"));
    }
    if dst.is_empty() {
        return Err(Error::msg("destination can not be empty"));
    }
    // Progress is for terminals: without one (or with -q) the copy is silent.
    let quiet = p.on("quiet") || !stream::is_tty(1);
    let follow = p.on("follow-link");
    match (split_arg(src), split_arg(dst)) {
        ((Some(c), sp), (None, dp)) => from_container(ctx, c, sp, dp, follow, quiet),
        ((None, sp), (Some(c), dp)) => to_container(ctx, c, sp, dp, follow, p.on("archive"), quiet),
        ((Some(_), _), (Some(_), _)) => Err(Error::msg("copying between containers is not supported")),
        _ => Err(Error::msg("must specify at least one container source")),
    }
}

/// docker's `ValidateOutputPath`: the parent must exist; an existing path must be a directory
/// or a regular file.
fn validate_output_path(path: &str) -> Result<(), Error> {
    let d = dir(&clean(path));
    if !d.is_empty() && d != "." && fs::metadata(&d).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        return Err(Error::msg(format!("invalid output path: directory {d:?} does not exist")));
    }
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(go_err("stat", path, &e)),
        Ok(m) if m.is_dir() || m.is_file() => Ok(()),
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            let ft = m.file_type();
            if ft.is_block_device() || ft.is_char_device() {
                return Err(Error::msg(format!(
                    "invalid output path: {path:?} must be a directory or a regular file: got a device"
                )));
            }
            Ok(())
        }
    }
}

/// docker's `CopyInfoDestinationPath` on this machine: symlinks followed (at most 10), a missing
/// path is fine when its parent is a directory.
fn local_destination(path: &str) -> Result<CopyInfo, Error> {
    let mut path = path.to_string();
    let original = path.clone();
    let mut n = 0;
    loop {
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                n += 1;
                if n > 11 {
                    return Err(Error::msg(format!("too many symlinks in {original}")));
                }
                let target = fs::read_link(&path).map_err(|e| go_err("readlink", &path, &e))?;
                let target = target.to_string_lossy().into_owned();
                path = if target.starts_with('/') { target } else { join(&split_dir_entry(&path).0, &target) };
            }
            Ok(m) => return Ok(CopyInfo { path, exists: true, is_dir: m.is_dir(), ..Default::default() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = split_dir_entry(&path).0;
                let pm = fs::metadata(&parent).map_err(|e| go_err("stat", &parent, &e))?;
                if !pm.is_dir() {
                    return Err(Error::msg("not a directory"));
                }
                return Ok(CopyInfo { path, ..Default::default() });
            }
            Err(e) => return Err(go_err("lstat", &path, &e)),
        }
    }
}

/// docker's `GetRebaseName`: the resolved path keeps the original's trailing `/.` or `/`, and the
/// original's name when resolving changed it.
fn rebase_name(path: &str, resolved: &str) -> (String, String) {
    let mut r = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&r) {
        r.push_str("/.");
    }
    if path.ends_with('/') && !r.ends_with('/') {
        r.push('/');
    }
    let name = if base(path) != base(&r) { base(path) } else { String::new() };
    (r, name)
}

/// Counts what passes through, for the summary line.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn from_container(ctx: &Ctx, container: &str, src: &str, dst: &str, follow: bool, quiet: bool) -> Result<(), Error> {
    let dst = if dst == "-" { dst.to_string() } else { resolve_local(dst)? };
    validate_output_path(&dst)?;
    let mut src = src.to_string();
    let mut rebase = String::new();
    if follow {
        if let Ok(st) = stat_path(ctx, container, &src) {
            if mode_of(&st) & MODE_SYMLINK != 0 {
                let mut target = st["linkTarget"].as_str().unwrap_or("").to_string();
                if !target.starts_with('/') {
                    target = join(&split_dir_entry(&src).0, &target);
                }
                (src, rebase) = rebase_name(&src, &target);
            }
        }
    }
    let q = query(&[("path", src.clone())]);
    let resp = ctx.client.request("GET", &format!("/containers/{}/archive?{q}", enc(container)), Body::None)?;
    let stat = decode_stat(resp.header("X-Docker-Container-Path-Stat"));
    let mut body = Counting { inner: resp, n: 0 };
    if dst == "-" {
        let mut o = io::stdout().lock();
        io::copy(&mut body, &mut o).map_err(Error::io)?;
        return o.flush().map_err(Error::io);
    }
    let src_info =
        CopyInfo { path: src.clone(), exists: true, is_dir: mode_of(&stat) & MODE_DIR != 0, rebase_name: rebase };
    let mut renames = Vec::new();
    // The archive's entries start with the requested path's last element (`.` for `dir/.`); a
    // daemon that names them after the stat instead is brought in line first.
    let wanted = base(&preserve_trailing(&clean(&format!("/{src}")), &src));
    if let Some(named) = stat["name"].as_str().filter(|n| !n.is_empty() && *n != wanted && *n != "/") {
        renames.push(Rebase::new(named, &wanted));
    }
    if !src_info.rebase_name.is_empty() {
        renames.push(Rebase::new(&split_dir_entry(&src_info.path).1, &src_info.rebase_name));
    }
    let dst_info = local_destination(&dst)?;
    let (dst_dir, r) = prepare(&src_info, &dst_info)?;
    renames.extend(r);
    let res = untar(&mut body, Path::new(&dst_dir), &renames);
    if !quiet {
        err_line(&format!("Successfully copied {} to {dst}", human_size(body.n as f64)));
    }
    res
}

/// Extracts `r` into `dir` as docker's `Untar` with `NoLchown` and `NoOverwriteDirNonDir`:
/// entries renamed by `renames`, none outside `dir`, files owned by whoever runs the copy.
fn untar(r: &mut dyn Read, dir: &Path, renames: &[Rebase]) -> Result<(), Error> {
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    let bad = |e: io::Error| Error::msg(format!("Error processing tar file({e}): "));
    let mut dirs = Vec::new();
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = Rebase::apply(renames, &raw);
        let Some(rel) = relative(&name) else {
            return Err(Error::msg(format!("invalid archive entry {name:?}: it climbs out of the destination")));
        };
        let target = dir.join(&rel);
        let kind = entry.header().entry_type();
        if let Ok(existing) = fs::symlink_metadata(&target) {
            let (t, d) = (target.display(), dir.display());
            if existing.is_dir() && !kind.is_dir() {
                return Err(Error::msg(format!("cannot overwrite directory \"{t}\" with non-directory \"{d}\"")));
            }
            if !existing.is_dir() && kind.is_dir() {
                return Err(Error::msg(format!("cannot overwrite non-directory \"{t}\" with directory \"{d}\"")));
            }
            if !existing.is_dir() {
                fs::remove_file(&target).map_err(|e| go_err("unlinkat", &target.display().to_string(), &e))?;
            }
        }
        if let Some(parent) = target.parent() {
            if !parent.exists() {
                fs::create_dir_all(parent).map_err(|e| go_err("mkdir", &parent.display().to_string(), &e))?;
            }
        }
        if kind.is_hard_link() {
            let link = entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            let Some(link_rel) = relative(&Rebase::apply(renames, &link)) else {
                return Err(Error::msg(format!("invalid hardlink {link:?} in the archive")));
            };
            fs::hard_link(dir.join(link_rel), &target)
                .map_err(|e| go_err("link", &target.display().to_string(), &e))?;
            continue;
        }
        if kind.is_dir() && target.is_dir() {
            // Only the mode and times change on an existing directory.
            dirs.push((target.clone(), entry.header().mode().ok(), entry.header().mtime().ok()));
            continue;
        }
        entry.unpack(&target).map_err(|e| Error::msg(format!("{}: {e}", target.display())))?;
        if kind.is_dir() {
            dirs.push((target, None, entry.header().mtime().ok()));
        }
    }
    // Directory times last: extracting into a directory changes its mtime.
    for (d, mode, mtime) in dirs.into_iter().rev() {
        if let Some(m) = mode {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&d, fs::Permissions::from_mode(m & 0o7777));
        }
        if let Some(t) = mtime.and_then(|t| i64::try_from(t).ok()) {
            let ts = nix::sys::time::TimeSpec::new(t, 0);
            let _ = nix::sys::stat::utimensat(None, &d, &ts, &ts, nix::sys::stat::UtimensatFlags::NoFollowSymlink);
        }
    }
    Ok(())
}

/// An archive name as a relative path with no `..`; `None` for one that would leave.
fn relative(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// docker's `CopyInfoSourcePath`: the parent's symlinks resolved (the whole path's with `-L`).
fn local_source(path: &str, follow: bool) -> Result<CopyInfo, Error> {
    let (resolved, rebase) = if follow {
        let r = eval_symlinks(path)?;
        rebase_name(path, &r)
    } else {
        let cut = path.rfind('/').map_or(0, |i| i + 1);
        let (d, b) = path.split_at(cut);
        let rd = eval_symlinks(if d.is_empty() { "." } else { d })?;
        let resolved = format!("{}/{b}", rd.trim_end_matches('/'));
        let name = if path.ends_with('/') && base(path) != base(&resolved) { base(path) } else { String::new() };
        (resolved, name)
    };
    let m = fs::symlink_metadata(&resolved).map_err(|e| go_err("lstat", &resolved, &e))?;
    Ok(CopyInfo { path: resolved, exists: true, is_dir: m.is_dir(), rebase_name: rebase })
}

/// Writes the tar of `src` with its top entry named `name` (`.` keeps the directory's contents
/// at the top), as docker's `TarResource` with the renames applied.
fn write_tar(w: impl Write, src: &CopyInfo, name: &str) -> io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    let path = src.path.trim_end_matches("/.").trim_end_matches('/');
    let path = if path.is_empty() { "/" } else { path };
    let m = fs::symlink_metadata(path)?;
    if m.is_dir() {
        b.append_dir_all(name, path)?;
    } else {
        b.append_path_with_name(path, name)?;
    }
    b.into_inner()?.flush()
}

fn to_container(
    ctx: &Ctx,
    container: &str,
    src: &str,
    dst: &str,
    follow: bool,
    keep_ids: bool,
    quiet: bool,
) -> Result<(), Error> {
    let src = if src == "-" { src.to_string() } else { resolve_local(src)? };
    let mut dst_info = CopyInfo { path: dst.to_string(), ..Default::default() };
    // A failed stat is not an error: the parent may exist and the extraction still succeed.
    if let Ok(mut st) = stat_path(ctx, container, dst) {
        let mut ok = true;
        if mode_of(&st) & MODE_SYMLINK != 0 {
            let mut target = st["linkTarget"].as_str().unwrap_or("").to_string();
            if !target.starts_with('/') {
                target = join(&split_dir_entry(dst).0, &target);
            }
            dst_info.path = target.clone();
            match stat_path(ctx, container, &target) {
                Ok(s) => st = s,
                Err(_) => ok = false,
            }
        }
        if ok {
            let mode = mode_of(&st);
            let why = if mode & MODE_DEVICE != 0 {
                Some("got a device")
            } else if mode & MODE_IRREGULAR != 0 {
                Some("got an irregular file")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Error::msg(format!(
                    "destination \"{container}:{dst}\" must be a directory or a regular file: {why}"
                )));
            }
            dst_info.exists = true;
            dst_info.is_dir = mode & MODE_DIR != 0;
        }
    }
    let mut q = vec![("path", String::new()), ("noOverwriteDirNonDir", "true".to_string())];
    if keep_ids {
        q.push(("copyUIDGID", "true".to_string()));
    }
    let put = |path: &str, body: &mut dyn Read| -> Result<(), Error> {
        let mut q = q.clone();
        q[0].1 = path.to_string();
        let path = format!("/containers/{}/archive?{}", enc(container), query(&q));
        let r = ctx.client.request("PUT", &path, Body::Stream(body, "application/x-tar"))?;
        r.text().map_err(Error::io)?;
        Ok(())
    };
    if src == "-" {
        if !dst_info.is_dir {
            return Err(Error::msg(format!("destination \"{container}:{dst}\" must be a directory")));
        }
        return put(&dst_info.path, &mut io::stdin().lock());
    }
    let src_info = local_source(&src, follow)?;
    let (dst_dir, rename) = prepare(&src_info, &dst_info)?;
    // The top entry's name: the source's own, renamed by -L / a trailing slash, then for the
    // destination.
    let (_, mut top) = split_dir_entry(&src_info.path);
    if !src_info.rebase_name.is_empty() {
        top = src_info.rebase_name.clone();
    }
    if let Some(r) = rename {
        top = Rebase::apply(&[r], &top);
    }
    let (reader, writer) = io::pipe().map_err(Error::io)?;
    let info = src_info.clone();
    let name = top.clone();
    let producer = std::thread::spawn(move || write_tar(writer, &info, &name));
    let mut body = Counting { inner: reader, n: 0 };
    let sent = put(&dst_dir, &mut body);
    drop(body.inner);
    let made = producer.join().unwrap_or_else(|_| Err(io::Error::other("archive writer panicked")));
    sent?;
    made.map_err(|e| Error::msg(format!("cannot archive {}: {e}", src_info.path)))?;
    if !quiet {
        err_line(&format!("Successfully copied {} to {container}:{}", human_size(body.n as f64), dst_info.path));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_paths() {
        assert_eq!(clean("/a/./b/../c/"), "/a/c");
        assert_eq!(clean("a/../.."), "..");
        assert_eq!((base("/a/b/"), base("/"), base("")), ("b".into(), "/".into(), ".".into()));
        assert_eq!((dir("/a/b"), dir("a"), dir("/a")), ("/a".into(), ".".into(), "/".into()));
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(preserve_trailing("/x/a", "a/."), "/x/a/.");
        assert_eq!(preserve_trailing("/x/a", "a/"), "/x/a/");
        assert_eq!(split_arg("c:/etc"), (Some("c"), "/etc"));
        assert_eq!(split_arg("./f:g"), (None, "./f:g"));
        assert_eq!(split_arg("/abs:x"), (None, "/abs:x"));
        assert_eq!(Rebase::apply(&[Rebase::new("/", "x")], "/etc"), "x/etc");
        assert_eq!(rebase_name("/l/", "/t"), ("/t/".into(), "l".into()));
    }

    #[test]
    fn copy_rules() {
        let file = CopyInfo { path: "/s/f".into(), exists: true, ..Default::default() };
        let dir_src = CopyInfo { path: "/s/d".into(), exists: true, is_dir: true, ..Default::default() };
        let contents = CopyInfo { path: "/s/d/.".into(), exists: true, is_dir: true, ..Default::default() };
        let existing_dir = CopyInfo { path: "/t".into(), exists: true, is_dir: true, ..Default::default() };
        let missing = CopyInfo { path: "/t/new".into(), ..Default::default() };
        let existing_file = CopyInfo { path: "/t/file".into(), exists: true, ..Default::default() };
        let missing_dir = CopyInfo { path: "/t/new/".into(), ..Default::default() };
        assert_eq!(prepare(&file, &existing_dir).unwrap().0, "/t");
        assert!(prepare(&file, &existing_dir).unwrap().1.is_none());
        let (d, r) = prepare(&dir_src, &missing).unwrap();
        assert_eq!((d.as_str(), Rebase::apply(&[r.unwrap()], "d/x")), ("/t", "new/x".to_string()));
        let (_, r) = prepare(&contents, &missing).unwrap();
        assert_eq!(Rebase::apply(&[r.unwrap()], "./x"), "new/x");
        assert_eq!(prepare(&dir_src, &existing_file).unwrap_err().msg, "cannot copy directory");
        assert_eq!(prepare(&file, &missing_dir).unwrap_err().msg, "no such directory");
        let (d, r) = prepare(&file, &existing_file).unwrap();
        assert_eq!((d.as_str(), Rebase::apply(&[r.unwrap()], "f")), ("/t", "file".to_string()));
    }
}
