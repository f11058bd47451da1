//! `/_ping`, `/version`, `/info`: what a client asks first.

use serde_json::{json, Value};

use super::api::{ApiResult, Responder, API_VERSION, MIN_API_VERSION};
use super::http::Head;
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

/// `GET /system/df?type=`: what images, containers, volumes (and the build cache, which tug does
/// not keep) take on disk, with the counts `docker system df` prints.
pub fn df(e: &Engine, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let types = head.params("type");
    let want = |t: &str| types.is_empty() || types.contains(&t);
    let containers = e.containers.all();
    let mut out = json!({"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []});
    if want("image") {
        let images = e.images.list();
        // Layers shared by several images count once in LayersSize and as SharedSize in each.
        let mut uses: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for img in &images {
            for c in &img.chain_ids {
                *uses.entry(c.as_str().to_string()).or_default() += 1;
            }
        }
        let mut layers_size = 0u64;
        let mut counted = std::collections::HashSet::new();
        let mut rows = Vec::new();
        for img in &images {
            let mut shared = 0u64;
            for (c, size) in img.chain_ids.iter().zip(&img.layer_sizes) {
                if counted.insert(c.as_str().to_string()) {
                    layers_size += size;
                }
                if uses.get(c.as_str()).copied().unwrap_or(0) > 1 {
                    shared += size;
                }
            }
            let mut row = e.images.summary_json(img);
            let n = containers.iter().filter(|c| c.image == img.id.as_str()).count();
            row["Containers"] = json!(n);
            row["SharedSize"] = json!(shared);
            rows.push(row);
        }
        out["LayersSize"] = json!(layers_size);
        out["Images"] = json!(rows);
    }
    if want("container") {
        let rows: Vec<Value> = containers
            .iter()
            .map(|rec| {
                let mut row = super::containers_api::summary(e, rec);
                let rw = super::containers::dir_size(&e.containers.container_dir(&rec.id).join("upper"));
                let image = e.images.resolve(&rec.image).map(|i| i.size).unwrap_or(0);
                row["SizeRw"] = json!(rw);
                row["SizeRootFs"] = json!(rw + image);
                row
            })
            .collect();
        out["Containers"] = json!(rows);
    }
    if want("volume") {
        let vols = &e.containers.volumes;
        let rows: Vec<Value> = vols
            .list()
            .iter()
            .map(|v| {
                let mut row = vols.json(v);
                let refs = containers
                    .iter()
                    .filter(|c| c.mounts.iter().any(|m| m.kind == "volume" && m.name == v.name))
                    .count();
                row["UsageData"] = json!({"Size": vols.size(&v.name), "RefCount": refs});
                row
            })
            .collect();
        out["Volumes"] = json!(rows);
    }
    r.json(200, &out)?;
    Ok(())
}

/// `POST /build/prune`: tug keeps no build cache, so there is never anything to reclaim.
pub fn build_prune(r: &mut Responder<'_>) -> ApiResult {
    r.json(200, &json!({"CachesDeleted": [], "SpaceReclaimed": 0}))?;
    Ok(())
}

/// `POST /networks/prune`: the only networks are the built-in ones, which are never pruned.
pub fn networks_prune(r: &mut Responder<'_>) -> ApiResult {
    r.json(200, &json!({"NetworksDeleted": []}))?;
    Ok(())
}
