//! `export [-o FILE] CONTAINER`: the container's filesystem as a tar, to a file (written beside
//! it and renamed into place) or to stdout, which must not be a terminal.

use std::io::Write;
use std::path::Path;

use super::client::{enc, Body};
use super::flags::Parsed;
use super::{stream, Ctx, Error};

/// docker's `ValidateOutputPath`: the directory must exist, and an existing target must be a
/// regular file or a directory.
fn validate_output(path: &str) -> Result<(), String> {
    let target = Path::new(path);
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        if let Err(e) = std::fs::metadata(dir) {
            return Err(format!("invalid output path: stat {}: {}", dir.display(), go_errno(&e)));
        }
    }
    match std::fs::metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("stat {path}: {}", go_errno(&e))),
        Ok(m) if m.is_dir() || m.is_file() => Ok(()),
        Ok(_) => Err(format!("invalid output path: {path:?} must be a directory or a regular file")),
    }
}

/// An I/O error as Go words it: the bare strerror text, lower case, without Rust's "(os error N)".
fn go_errno(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

pub fn export(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let output = p.get("output").filter(|o| !o.is_empty());
    if output.is_none() && stream::is_tty(1) {
        return Err(Error::msg("cowardly refusing to save to a terminal. Use the -o flag or redirect"));
    }
    if let Some(o) = output {
        validate_output(o).map_err(|e| Error::msg(format!("failed to export container: {e}")))?;
    }
    let mut r = ctx.client.request("GET", &format!("/containers/{}/export", enc(&p.args[0])), Body::None)?;
    let Some(path) = output else {
        let mut o = std::io::stdout().lock();
        std::io::copy(&mut r, &mut o).map_err(Error::io)?;
        return o.flush().map_err(Error::io);
    };
    // Written next to the target and renamed, so a broken stream leaves no partial archive.
    let target = Path::new(path);
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tug_export_{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::copy(&mut r, &mut f)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::msg(go_errno(&e)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths() {
        assert_eq!(
            validate_output("/nonexistent-dir/x.tar").unwrap_err(),
            "invalid output path: stat /nonexistent-dir: no such file or directory"
        );
        assert!(validate_output("x.tar").is_ok());
        assert!(validate_output("/").is_ok());
        assert!(validate_output("/dev/null").unwrap_err().contains("must be a directory or a regular file"));
    }
}
