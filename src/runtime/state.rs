//! A container's runtime state: `<root>/<id>/state.json`, what `tug-runtime state` prints, and how
//! the live status is derived from it.
//!
//! The stored status is only a hint; the truth is the init process (matched by pid *and* start time,
//! since pids are reused), the exec fifo (present until `start`) and the freezer.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cgroups::Cgroup;
use crate::store::atomic;

/// The default state root, as runc's `/run/runc`.
pub const DEFAULT_ROOT: &str = "/run/tug-runtime";

/// What is persisted for one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat` when the container was created.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub cgroup: Cgroup,
    /// Set once `start` has run, so a dead init reads as stopped rather than created.
    #[serde(default)]
    pub started: bool,
}

/// The statuses of the OCI lifecycle plus `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Paths inside one container's state directory.
pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path, id: &str) -> StateDir {
        StateDir { dir: root.join(id) }
    }
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn fifo(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }
    /// A copy of config.json taken at create, so exec and delete work if the bundle changes.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
}

impl State {
    pub fn load(sd: &StateDir) -> io::Result<State> {
        let data = std::fs::read(sd.state_file())?;
        serde_json::from_slice(&data)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", sd.state_file().display())))
    }

    pub fn save(&self, sd: &StateDir) -> io::Result<()> {
        let data = serde_json::to_vec(self).map_err(io::Error::other)?;
        atomic::replace(&sd.state_file(), &data)
    }

    /// Whether the recorded init process is still the one we started (and not a zombie).
    pub fn init_alive(&self) -> bool {
        self.pid > 0 && proc_start_time(self.pid).is_some_and(|(t, state)| t == self.start_time && state != 'Z')
    }

    /// The live status.
    pub fn status(&self, sd: &StateDir) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if !self.started && sd.fifo().exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state document (`tug-runtime state`, and the stdin of hooks).
    pub fn oci_json(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped { 0 } else { self.pid };
        serde_json::json!({
            "ociVersion": super::spec::OCI_VERSION,
            "id": self.id,
            "pid": pid,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "annotations": self.annotations,
            "owner": "",
        })
    }
}

/// (start time in clock ticks, state letter) of a process, from `/proc/<pid>/stat`.
pub fn proc_start_time(pid: i32) -> Option<(u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 overall is index 19 after the state letter (field 3).
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// Checks a container id: non-empty, no path separators or dot-only names, printable.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id == "." || id == ".." || id.len() > 1024 {
        return Err(format!("invalid container id {id:?}"));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c)) {
        return Err(format!("invalid container id {id:?}: only [a-zA-Z0-9_+.-] allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["abc", "a-b_c.d+1", "0123456789abcdef"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn own_start_time_is_readable() {
        let (t, s) = proc_start_time(std::process::id() as i32).unwrap();
        assert!(t > 0);
        assert!(s == 'R' || s == 'S');
    }
}
