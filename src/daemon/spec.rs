//! From Docker's container config (`POST /containers/create`: Config + HostConfig) and the image
//! config to the OCI runtime spec the runtime runs: Docker's defaults, then what the user asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::api::ApiError;
use crate::runtime::defaults;
use crate::runtime::spec::*;

/// The parts of `Config` tug acts on; the whole JSON is kept as sent for inspect.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateConfig {
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub user: Option<String>,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub image: String,
    pub working_dir: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub host_config: Option<HostConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub mounts: Option<Vec<super::volumes::ApiMount>>,
    pub volumes_from: Option<Vec<String>>,
    pub log_config: Option<LogConfig>,
    pub network_mode: Option<String>,
    pub restart_policy: Option<RestartPolicy>,
    pub auto_remove: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub oom_score_adj: Option<i32>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub shm_size: Option<i64>,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub cpu_shares: Option<i64>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub ulimits: Option<Vec<Ulimit>>,
    pub init: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// Parses a create body; a wrong type names the field (400).
pub fn parse_create(body: &[u8]) -> Result<CreateConfig, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!("invalid JSON in request body: {path}: {}", e.into_inner()))
    })
}

/// What the spec needs besides the configs.
pub struct Inputs<'a> {
    pub id: &'a str,
    pub cfg: &'a CreateConfig,
    /// The image's config object (`config` of the OCI image config).
    pub image_config: &'a Value,
    /// Unpacked layers, bottom first.
    pub layers: &'a [PathBuf],
    /// containers/<id>/
    pub dir: &'a Path,
}

fn strs(v: &Value, key: &str) -> Option<Vec<String>> {
    v.get(key)?.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
}

/// The command: Entrypoint + Cmd, where the container's values replace the image's (an explicit
/// entrypoint also drops the image's Cmd, as Docker does).
pub fn command(cfg: &CreateConfig, image: &Value) -> Vec<String> {
    let entry = cfg.entrypoint.clone().or_else(|| strs(image, "Entrypoint")).unwrap_or_default();
    let cmd = match (&cfg.cmd, &cfg.entrypoint) {
        (Some(c), _) => c.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => strs(image, "Cmd").unwrap_or_default(),
    };
    entry.into_iter().chain(cmd).collect()
}

/// The environment: image, then container (later wins), PATH and HOSTNAME ensured.
pub fn environment(cfg: &CreateConfig, image: &Value, hostname: &str) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: &str| {
        let key = kv.split('=').next().unwrap_or(kv);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.to_string());
    };
    set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    set(&format!("HOSTNAME={hostname}"));
    for kv in strs(image, "Env").unwrap_or_default() {
        set(&kv);
    }
    for kv in cfg.env.clone().unwrap_or_default() {
        // `-e NAME` without a value is resolved by the client; a bare name here is dropped.
        if kv.contains('=') {
            set(&kv);
        }
    }
    let has_term = cfg.env.iter().flatten().chain(strs(image, "Env").iter().flatten()).any(|e| e.starts_with("TERM="));
    if cfg.tty && !has_term {
        set("TERM=xterm");
    }
    env
}

/// Finds `rel` in the layers, top first.
fn layer_file(layers: &[PathBuf], rel: &str) -> Option<String> {
    layers.iter().rev().find_map(|l| std::fs::read_to_string(l.join(rel)).ok())
}

/// Resolves `user[:group]` (names through the image's /etc/passwd and /etc/group) to ids.
pub fn resolve_user(spec: &str, layers: &[PathBuf]) -> Result<User, ApiError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = layer_file(layers, "etc/passwd").unwrap_or_default();
    let entry = |name: &str| -> Option<(u32, u32)> {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && (f[0] == name || f[2] == name)).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    };
    let (uid, mut gid) = if u.is_empty() {
        (0, 0)
    } else if let Ok(n) = u.parse::<u32>() {
        entry(u).map_or((n, 0), |(_, g)| (n, g))
    } else {
        entry(u).ok_or_else(|| {
            ApiError::bad_request(format!("unable to find user {u}: no matching entries in passwd file"))
        })?
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = layer_file(layers, "etc/group").unwrap_or_default();
                group
                    .lines()
                    .find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == g).then(|| f[2].parse().ok())?
                    })
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("unable to find group {g}: no matching entries in group file"))
                    })?
            }
        };
    }
    Ok(User { uid, gid, umask: None, additional_gids: Vec::new() })
}

fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// "All capabilities", as Docker means it: every one in the daemon's own bounding set, so a
/// daemon confined to fewer (a container, a restricted host) can still run privileged
/// containers instead of asking the kernel for what it cannot grant.
pub fn all_capabilities() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string())))
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(u64::MAX);
    crate::runtime::caps::NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bounding & (1u64 << i) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// Docker's capability arithmetic: defaults, then drops, then adds; `ALL` on either side.
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>, ApiError> {
    if host.privileged {
        return Ok(all_capabilities());
    }
    let mut caps: Vec<String> = crate::runtime::caps::DOCKER_DEFAULT.iter().map(|s| s.to_string()).collect();
    for d in host.cap_drop.clone().unwrap_or_default() {
        let d = cap_name(&d);
        if d == "CAP_ALL" {
            caps.clear();
        } else if crate::runtime::caps::number(&d).is_none() {
            return Err(ApiError::bad_request(format!("invalid CapDrop: unknown capability: {d:?}")));
        } else {
            caps.retain(|c| *c != d);
        }
    }
    for a in host.cap_add.clone().unwrap_or_default() {
        let a = cap_name(&a);
        if a == "CAP_ALL" {
            caps = all_capabilities();
        } else if crate::runtime::caps::number(&a).is_none() {
            return Err(ApiError::bad_request(format!("invalid CapAdd: unknown capability: {a:?}")));
        } else if !caps.contains(&a) {
            caps.push(a);
        }
    }
    Ok(caps)
}

fn rlimit_name(n: &str) -> Result<String, ApiError> {
    let name = format!("RLIMIT_{}", n.to_ascii_uppercase());
    if crate::runtime::init::is_rlimit(&name) {
        Ok(name)
    } else {
        Err(ApiError::bad_request(format!("invalid ulimit type: {n}")))
    }
}

/// Docker's restart-policy rules.
pub fn check_restart_policy(p: &RestartPolicy, auto_remove: bool) -> Result<(), ApiError> {
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if p.maximum_retry_count != 0 {
                return Err(ApiError::bad_request(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'",
                ));
            }
        }
        "on-failure" => {
            if p.maximum_retry_count < 0 {
                return Err(ApiError::bad_request(
                    "invalid restart policy: maximum retry count must be a positive integer",
                ));
            }
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )))
        }
    }
    if auto_remove && !matches!(p.name.as_str(), "" | "no") {
        return Err(ApiError::bad_request("can't create 'AutoRemove' container with restart policy"));
    }
    Ok(())
}

/// Builds the OCI spec for a container.
pub fn build(inp: &Inputs<'_>) -> Result<Spec, ApiError> {
    let cfg = inp.cfg;
    let host = cfg.host_config.clone().unwrap_or_default();
    if let Some(p) = &host.restart_policy {
        check_restart_policy(p, host.auto_remove)?;
    }
    let img = inp.image_config;
    let mut spec = defaults::spec();
    let hostname = cfg.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| inp.id[..12].to_string());
    let args = command(cfg, img);
    if args.is_empty() {
        return Err(ApiError::bad_request("no command specified"));
    }
    let user_spec = cfg.user.clone().filter(|u| !u.is_empty()).or_else(|| img.get("User")?.as_str().map(String::from));
    let mut user = resolve_user(user_spec.as_deref().unwrap_or(""), inp.layers)?;
    for g in host.group_add.clone().unwrap_or_default() {
        user.additional_gids.push(g.parse().map_err(|_| ApiError::bad_request(format!("invalid GroupAdd {g:?}")))?);
    }
    let caps = capabilities(&host)?;
    let process = spec.process.as_mut().expect("defaults have a process");
    process.args = args;
    process.env = environment(cfg, img, &hostname);
    process.cwd = cfg
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| img.get("WorkingDir")?.as_str().filter(|w| !w.is_empty()).map(String::from))
        .unwrap_or_else(|| "/".into());
    if !process.cwd.starts_with('/') {
        return Err(ApiError::bad_request(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            process.cwd
        )));
    }
    process.terminal = cfg.tty;
    process.user = user;
    process.capabilities =
        Some(Capabilities { bounding: caps.clone(), effective: caps.clone(), permitted: caps, ..Default::default() });
    process.no_new_privileges = false;
    process.oom_score_adj = host.oom_score_adj;
    process.rlimits = Vec::new();
    for u in host.ulimits.clone().unwrap_or_default() {
        process.rlimits.push(Rlimit {
            kind: rlimit_name(&u.name)?,
            soft: u64::try_from(u.soft).unwrap_or(u64::MAX),
            hard: u64::try_from(u.hard).unwrap_or(u64::MAX),
        });
    }
    for opt in host.security_opt.clone().unwrap_or_default() {
        match opt.as_str() {
            "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                process.no_new_privileges = true
            }
            "no-new-privileges=false" | "no-new-privileges:false" => {}
            o if o.starts_with("seccomp=unconfined") || o.starts_with("seccomp:unconfined") => {}
            o if o.starts_with("label") || o.starts_with("apparmor") => {}
            o => return Err(ApiError::bad_request(format!("invalid --security-opt: {o:?}"))),
        }
    }
    let seccomp_off = host.privileged
        || host
            .security_opt
            .iter()
            .flatten()
            .any(|o| o.starts_with("seccomp=unconfined") || o.starts_with("seccomp:unconfined"));
    spec.hostname = Some(hostname);
    spec.domainname = cfg.domainname.clone().filter(|d| !d.is_empty());
    spec.root = Some(Root { path: inp.dir.join("rootfs").display().to_string(), readonly: host.readonly_rootfs });
    // Files the daemon writes per container, bind-mounted like Docker's.
    for f in ["hostname", "hosts", "resolv.conf"] {
        spec.mounts.push(Mount {
            destination: format!("/etc/{f}"),
            kind: Some("bind".into()),
            source: Some(inp.dir.join(f).display().to_string()),
            options: vec!["rbind".into(), "rprivate".into()],
        });
    }
    if host.init == Some(true) {
        spec.annotations.insert(crate::runtime::init::INIT_ANNOTATION.into(), "true".into());
    }
    // Volumes, binds and tmpfs are added by the caller once they exist (volumes::realize).
    if let Some(shm) = host.shm_size.filter(|s| *s > 0) {
        if let Some(m) = spec.mounts.iter_mut().find(|m| m.destination == "/dev/shm") {
            m.options.retain(|o| !o.starts_with("size="));
            m.options.push(format!("size={shm}"));
        }
    }
    let linux = spec.linux.as_mut().expect("defaults have linux");
    let mode = host.network_mode.clone().unwrap_or_default();
    match mode.as_str() {
        "host" => linux.namespaces.retain(|n| n.kind != "network"),
        "" | "default" | "bridge" | "none" => {}
        other => return Err(ApiError::bad_request(format!("network {other} not found"))),
    }
    if host.privileged {
        linux.masked_paths.clear();
        linux.readonly_paths.clear();
        linux.resources = Some(Resources {
            devices: vec![DeviceCgroup { allow: true, access: Some("rwm".into()), ..Default::default() }],
            ..Default::default()
        });
    }
    linux.sysctl = host.sysctls.clone().unwrap_or_default();
    linux.cgroups_path = Some(format!("/tug/{}", inp.id));
    let limits = resources(&host)?;
    let res = linux.resources.get_or_insert_with(Resources::default);
    res.memory = limits.memory;
    res.cpu = limits.cpu;
    res.pids = limits.pids;
    if !seccomp_off {
        linux.seccomp = Some(crate::runtime::seccomp::default_profile());
    }
    // Image layers under an overlay mounted inside the container's own mount namespace.
    let lower: Vec<&PathBuf> = inp.layers.iter().rev().collect();
    spec.annotations.insert(
        crate::runtime::mounts::OVERLAY_ANNOTATION.to_string(),
        serde_json::json!({"lower": lower, "upper": inp.dir.join("upper"), "work": inp.dir.join("work")}).to_string(),
    );
    Ok(spec)
}

/// Memory, CPU and pids limits from a HostConfig (create and update).
pub fn resources(host: &HostConfig) -> Result<Resources, ApiError> {
    let mut res = Resources::default();
    let mem = Memory {
        limit: host.memory.filter(|m| *m > 0),
        swap: host.memory_swap.filter(|m| *m != 0),
        reservation: host.memory_reservation.filter(|m| *m > 0),
        ..Default::default()
    };
    if mem.limit.is_some() || mem.swap.is_some() || mem.reservation.is_some() {
        if let (Some(l), Some(s)) = (mem.limit, mem.swap) {
            if s > 0 && s < l {
                return Err(ApiError::bad_request(
                    "Minimum memoryswap limit should be larger than memory limit, see usage",
                ));
            }
        }
        res.memory = Some(mem);
    }
    let mut cpu = Cpu::default();
    if let Some(n) = host.nano_cpus.filter(|n| *n > 0) {
        cpu.period = Some(100_000);
        cpu.quota = Some(n / 10_000);
    }
    if let Some(q) = host.cpu_quota.filter(|q| *q > 0) {
        cpu.quota = Some(q);
    }
    if let Some(p) = host.cpu_period.filter(|p| *p > 0) {
        cpu.period = Some(p.unsigned_abs());
    }
    cpu.shares = host.cpu_shares.filter(|s| *s > 0).map(i64::unsigned_abs);
    cpu.cpus = host.cpuset_cpus.clone().filter(|s| !s.is_empty());
    cpu.mems = host.cpuset_mems.clone().filter(|s| !s.is_empty());
    if cpu.period.is_some() || cpu.quota.is_some() || cpu.shares.is_some() || cpu.cpus.is_some() || cpu.mems.is_some() {
        res.cpu = Some(cpu);
    }
    if let Some(p) = host.pids_limit.filter(|p| *p != 0) {
        res.pids = Some(Pids { limit: p });
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn command_and_env_follow_docker() {
        let img = json!({"Entrypoint": ["/entry"], "Cmd": ["default"], "Env": ["PATH=/img", "A=1"]});
        let mut c = CreateConfig::default();
        assert_eq!(command(&c, &img), vec!["/entry", "default"]);
        c.cmd = Some(vec!["x".into()]);
        assert_eq!(command(&c, &img), vec!["/entry", "x"]);
        c.entrypoint = Some(vec!["sh".into()]);
        c.cmd = None;
        assert_eq!(command(&c, &img), vec!["sh"], "an explicit entrypoint drops the image's Cmd");
        c.env = Some(vec!["A=2".into(), "B=3".into(), "BARE".into()]);
        assert_eq!(environment(&c, &img, "h"), vec!["HOSTNAME=h", "PATH=/img", "A=2", "B=3"]);
    }

    #[test]
    fn capability_arithmetic() {
        let h = HostConfig {
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(vec!["chown".into()]),
            ..Default::default()
        };
        assert_eq!(capabilities(&h).unwrap(), vec!["CAP_CHOWN"]);
        let h = HostConfig { cap_add: Some(vec!["NOPE".into()]), ..Default::default() };
        assert_eq!(capabilities(&h).unwrap_err().status, 400);
        assert_eq!(capabilities(&HostConfig::default()).unwrap().len(), 14);
    }

    #[test]
    fn users_from_the_image() {
        let d = crate::store::atomic::tests::temp_dir("user");
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(d.join("etc/passwd"), "root:x:0:0::/:/bin/sh\nweb:x:33:34::/:/bin/sh\n").unwrap();
        std::fs::write(d.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let layers = vec![d.clone()];
        let u = resolve_user("web", &layers).unwrap();
        assert_eq!((u.uid, u.gid), (33, 34));
        let u = resolve_user("1000:staff", &layers).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert_eq!(resolve_user("nobody", &layers).unwrap_err().status, 400);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn malformed_body_names_the_field() {
        let e = parse_create(br#"{"Image":"x","HostConfig":{"Memory":"lots"}}"#).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("HostConfig.Memory"), "{}", e.message);
    }
}
