//! `tug install DIR`: one symlink per applet name pointing at this executable, like
//! `busybox --install`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn main(args: Vec<OsString>) -> ExitCode {
    let Some(dir) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: tug install DIR");
        return ExitCode::from(2);
    };
    match install(&dir) {
        Ok(names) => {
            for n in names {
                println!("{}", dir.join(n).display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tug install: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes (or replaces) the symlinks; returns the names written.
fn install(dir: &Path) -> Result<Vec<&'static str>, String> {
    let exe = std::fs::canonicalize("/proc/self/exe").map_err(|e| format!("cannot find own executable: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = crate::applet_names();
    // Never replace a real file: `./tug install .` must not clobber the executable itself.
    names.retain(|n| std::fs::symlink_metadata(dir.join(n)).map_or(true, |m| m.file_type().is_symlink()));
    for name in &names {
        let link = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&exe, &tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        // rename replaces an existing link atomically, so a reinstall never leaves a gap.
        std::fs::rename(&tmp, &link).map_err(|e| format!("{}: {e}", link.display()))?;
    }
    Ok(names)
}
