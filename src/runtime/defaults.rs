//! Docker's defaults as an OCI config (what `tug-runtime spec` writes and the daemon starts from),
//! and the `features` document.

use serde_json::json;

use super::caps::{DOCKER_DEFAULT, NAMES};
use super::spec::*;

/// Paths Docker masks in every container.
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Paths Docker makes read-only in every container.
pub const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn mount(dest: &str, kind: &str, source: &str, opts: &[&str]) -> Mount {
    Mount { destination: dest.into(), kind: Some(kind.into()), source: Some(source.into()), options: strings(opts) }
}

/// The standard container mounts: proc, /dev, devpts, shm, mqueue, sysfs, cgroup.
pub fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"]),
    ]
}

/// A config for `sh` in `rootfs` with Docker's security defaults.
pub fn spec() -> Spec {
    let caps = strings(&DOCKER_DEFAULT);
    Spec {
        oci_version: OCI_VERSION.into(),
        process: Some(Process {
            terminal: true,
            args: strings(&["sh"]),
            env: strings(&["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]),
            cwd: "/".into(),
            capabilities: Some(Capabilities {
                bounding: caps.clone(),
                effective: caps.clone(),
                inheritable: Vec::new(),
                permitted: caps,
                ambient: Vec::new(),
            }),
            rlimits: vec![Rlimit { kind: "RLIMIT_NOFILE".into(), hard: 1024, soft: 1024 }],
            no_new_privileges: true,
            ..Default::default()
        }),
        root: Some(Root { path: "rootfs".into(), readonly: true }),
        hostname: Some("tug".into()),
        mounts: default_mounts(),
        linux: Some(Linux {
            namespaces: ["pid", "network", "ipc", "uts", "mount", "cgroup"]
                .iter()
                .map(|k| Namespace { kind: (*k).into(), path: None })
                .collect(),
            resources: Some(Resources {
                devices: vec![DeviceCgroup { allow: false, access: Some("rwm".into()), ..Default::default() }],
                ..Default::default()
            }),
            masked_paths: strings(&MASKED_PATHS),
            readonly_paths: strings(&READONLY_PATHS),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The runtime-spec `features` document.
pub fn features() -> serde_json::Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand",
            "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid",
            "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable",
            "rw", "shared", "slave", "strictatime", "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": NAMESPACE_KINDS,
            "capabilities": NAMES.to_vec(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {"io.github.tug.runtime.version": crate::version::VERSION},
    })
}
