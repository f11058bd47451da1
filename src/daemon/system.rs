//! `/_ping`, `/version`, `/info`: what a client asks first.

use serde_json::json;

use super::api::{ApiResult, Responder, API_VERSION, MIN_API_VERSION};
use super::Engine;

/// `GET|HEAD /_ping`: the headers carry the negotiation; HEAD has no body.
pub fn ping(r: &mut Responder<'_>) -> ApiResult {
    let extra = [
        ("Builder-Version", "1".to_string()),
        ("Swarm", "inactive".to_string()),
        ("Cache-Control", "no-cache, no-store, must-revalidate".to_string()),
        ("Pragma", "no-cache".to_string()),
    ];
    r.bytes(200, "text/plain; charset=utf-8", b"OK", &extra)?;
    Ok(())
}

fn uname() -> nix::sys::utsname::UtsName {
    nix::sys::utsname::uname().expect("uname cannot fail")
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /version`.
pub fn version(_e: &Engine, r: &mut Responder<'_>) -> ApiResult {
    let u = uname();
    let kernel = u.release().to_string_lossy().into_owned();
    let v = crate::version::VERSION;
    let body = json!({
        "Platform": {"Name": "tug"},
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": crate::version::COMMIT,
                        "Os": "linux", "Arch": arch(), "KernelVersion": kernel, "Experimental": "false"}
        }],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": crate::version::COMMIT,
        "GoVersion": "n/a (Rust)",
        "Os": "linux",
        "Arch": arch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    });
    r.json(200, &body)?;
    Ok(())
}

/// MemTotal from /proc/meminfo, in bytes.
pub fn meminfo_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| "Linux".to_string())
}

/// `GET /info`: real figures from the store, the kernel and /proc.
pub fn info(e: &Engine, r: &mut Responder<'_>) -> ApiResult {
    let u = uname();
    let counts = e.container_counts();
    let cgroup_version = if e.cgroup_v2 { "2" } else { "1" };
    let body = json!({
        "ID": e.id,
        "Name": u.nodename().to_string_lossy(),
        "Containers": counts.0 + counts.1 + counts.2,
        "ContainersRunning": counts.0,
        "ContainersPaused": counts.1,
        "ContainersStopped": counts.2,
        "Images": e.image_count(),
        "Driver": e.storage_driver(),
        "DriverStatus": [["Backing Filesystem", "extfs"]],
        "DockerRootDir": e.layout.root(),
        "MemTotal": meminfo_total(),
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "KernelVersion": u.release().to_string_lossy(),
        "OperatingSystem": os_name(),
        "OSType": "linux",
        "OSVersion": "",
        "Architecture": u.machine().to_string_lossy(),
        "ServerVersion": crate::version::VERSION,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "MemoryLimit": true,
        "SwapLimit": std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() || e.cgroup_v2,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map(|s| s.trim() == "1").unwrap_or(false),
        "Debug": false,
        "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
        "NGoroutines": 0,
        "SystemTime": crate::timefmt::now_rfc3339(),
        "LoggingDriver": "json-file",
        "NEventsListener": 0,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
        "Runtimes": {"tug": {"path": "tug-runtime"}},
        "DefaultRuntime": "tug",
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
        "Labels": [],
        "ExperimentalBuild": false,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Warnings": null,
    });
    r.json(200, &body)?;
    Ok(())
}
