//! The multicall dispatch: the same executable under each applet name.

use std::process::Command;

use crate::util::{ok, tug, Dir};

#[test]
fn every_applet_name_dispatches() {
    let dir = Dir::new("applets");
    let out = ok(Command::new(tug()).arg("install").arg(&dir.path).output().unwrap());
    for name in ["tug", "docker", "tug-runtime"] {
        assert!(out.contains(&format!("/{name}\n")), "install did not write {name}: {out}");
        let link = dir.join(name);
        assert_eq!(std::fs::read_link(&link).unwrap(), std::fs::canonicalize(tug()).unwrap());
    }
    let v = ok(Command::new(dir.join("tug-runtime")).arg("--version").output().unwrap());
    let lines: Vec<&str> = v.lines().collect();
    assert_eq!(lines.len(), 3, "{v}");
    assert!(lines[0].starts_with("tug-runtime version "), "{v}");
    assert!(lines[1].starts_with("commit: "), "{v}");
    assert!(lines[2].starts_with("spec: 1."), "{v}");
    // `tug runtime` is the same applet as `tug-runtime`.
    assert_eq!(ok(Command::new(tug()).args(["runtime", "--version"]).output().unwrap()), v);
    // A leading '-' (login shells) is stripped from argv[0].
    let dash = dir.join("-tug-runtime");
    std::os::unix::fs::symlink(tug(), &dash).unwrap();
    assert_eq!(ok(Command::new(&dash).arg("--version").output().unwrap()), v);
    // The client names itself as it was called, as docker's does.
    let v = ok(Command::new(dir.join("tug")).arg("--version").output().unwrap());
    assert!(v.starts_with("tug version "), "{v}");
    let v = ok(Command::new(dir.join("docker")).arg("--version").output().unwrap());
    assert!(v.starts_with("Docker version "), "{v}");
    // Reinstalling replaces the links without error and never clobbers a real file.
    std::fs::remove_file(dir.join("docker")).unwrap();
    std::fs::write(dir.join("docker"), "keep").unwrap();
    ok(Command::new(tug()).arg("install").arg(&dir.path).output().unwrap());
    assert_eq!(std::fs::read_to_string(dir.join("docker")).unwrap(), "keep");
    // tug-init is reachable only through argv[0], and refuses to run outside the runtime.
    let init = dir.join("tug-init");
    std::os::unix::fs::symlink(tug(), &init).unwrap();
    let o = Command::new(&init).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(tug()).arg("tug-init").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "tug-init must not be a verb");
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown command: tug tug-init"));
}
