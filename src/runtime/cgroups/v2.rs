//! cgroup v2 (unified hierarchy) files: enabling controllers down the tree, the OCI resource
//! mapping (memory, cpu, cpuset, pids, the verbatim `unified` map), `cgroup.freeze`, and usage
//! counters. Device rules are not applied: on v2 they need an eBPF program attached to the cgroup,
//! which this module does not own.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::Path;

use super::{
    flat_keyed, limit_value, read_file, read_u64, wait_until, with_path, write_file, write_raw, write_value, CpuStats,
    MemoryStats, PidsStats, Stats, FREEZE_TIMEOUT,
};
use crate::runtime::spec::{Cpu, Memory, Resources};

/// Creates `mount/comps…` level by level, enabling in every ancestor's `cgroup.subtree_control`
/// all the controllers it offers, so the leaf gets their interface files. The leaf itself gets
/// none: a v2 cgroup with processes may not delegate controllers ("no internal processes").
pub(super) fn create(mount: &Path, comps: &[&str]) -> io::Result<()> {
    let mut parent = mount.to_path_buf();
    for comp in comps {
        enable_controllers(&parent);
        let child = parent.join(comp);
        match fs::create_dir(&child) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(with_path(&child, e)),
        }
        parent = child;
    }
    Ok(())
}

/// Best effort: a controller that cannot be enabled shows up later as a missing file, which
/// `apply` reports with the file and value.
fn enable_controllers(dir: &Path) {
    let Ok(available) = fs::read_to_string(dir.join("cgroup.controllers")) else {
        return;
    };
    let control = dir.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&control).unwrap_or_default();
    let enabled: HashSet<&str> = enabled.split_whitespace().collect();
    let missing: Vec<String> =
        available.split_whitespace().filter(|c| !enabled.contains(c)).map(|c| format!("+{c}")).collect();
    if missing.is_empty() {
        return;
    }
    // One write enables all or nothing; if it fails (one controller busy or threaded-only), enable
    // them one by one.
    if write_raw(&control, &missing.join(" ")).is_err() {
        for m in &missing {
            let _ = write_raw(&control, m);
        }
    }
}

/// `-1` → `max`, other values as they are.
fn v2_limit(v: i64) -> String {
    if v == -1 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

pub(super) fn apply(dir: &Path, r: &Resources) -> Result<(), String> {
    if let Some(m) = &r.memory {
        apply_memory(dir, m)?;
    }
    if let Some(c) = &r.cpu {
        apply_cpu(dir, c)?;
    }
    if let Some(p) = &r.pids {
        let value = if p.limit > 0 { p.limit.to_string() } else { "max".to_string() };
        write_value(dir, "pids.max", &value)?;
    }
    // r.devices: v2 has no devices.allow/deny files; enforcing rules means attaching a
    // BPF_CGROUP_DEVICE program. Until that exists the rules are skipped, not failed, so
    // containers still run on v2 hosts (device nodes are limited by what mounts.rs creates).
    if let Some(u) = &r.unified {
        apply_unified(dir, u)?;
    }
    Ok(())
}

fn apply_memory(dir: &Path, m: &Memory) -> Result<(), String> {
    let limit = limit_value("memory.limit", m.limit)?;
    let reservation = limit_value("memory.reservation", m.reservation)?;
    let swap = swap_max(m)?;
    if let Some(l) = limit {
        write_value(dir, "memory.max", &v2_limit(l))?;
    }
    if let Some(swap) = swap {
        // Without swap accounting the file is absent; only "no extra limit" can be honoured then.
        if dir.join("memory.swap.max").exists() {
            write_value(dir, "memory.swap.max", &swap)?;
        } else if swap != "max" && swap != "0" {
            return Err(format!(
                "memory.swap: {} does not exist (swap accounting is disabled)",
                dir.join("memory.swap.max").display()
            ));
        }
    }
    if let Some(r) = reservation {
        write_value(dir, "memory.low", &v2_limit(r))?;
    }
    // memory.swappiness and disableOOMKiller have no v2 counterpart and are ignored, as runc does.
    Ok(())
}

/// The spec's `swap` is memory plus swap (the v1 memsw meaning); `memory.swap.max` is swap alone.
fn swap_max(m: &Memory) -> Result<Option<String>, String> {
    let limit = limit_value("memory.limit", m.limit)?;
    let swap = limit_value("memory.swap", m.swap)?;
    match (limit, swap) {
        // Unlimited memory with no word on swap lifts the swap limit too.
        (Some(-1), None) => Ok(Some("max".to_string())),
        (_, None) => Ok(None),
        (_, Some(-1)) => Ok(Some("max".to_string())),
        (None | Some(-1), Some(s)) => Err(format!("memory.swap {s} needs a memory.limit on cgroup v2")),
        (Some(l), Some(s)) if s < l => {
            Err(format!("memory.swap {s} is below memory.limit {l}; swap counts memory plus swap"))
        }
        (Some(l), Some(s)) => Ok(Some((s - l).to_string())),
    }
}

/// Maps v1 `cpu.shares` [2, 262144] linearly onto v2 `cpu.weight` [1, 10000]; 0 means unset.
pub(super) fn shares_to_weight(shares: u64) -> Option<u64> {
    if shares == 0 {
        return None;
    }
    let s = shares.clamp(2, 262_144);
    Some(1 + ((s - 2) * 9999) / 262_142)
}

fn apply_cpu(dir: &Path, c: &Cpu) -> Result<(), String> {
    if let Some(w) = c.shares.and_then(shares_to_weight) {
        write_value(dir, "cpu.weight", &w.to_string())?;
    }
    let quota = c.quota.filter(|&q| q != 0);
    let period = c.period.filter(|&p| p != 0);
    if quota.is_some() || period.is_some() {
        let quota = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_string(),
            // Only the period changes: keep the quota that is there.
            None => read_file(&dir.join("cpu.max"))
                .ok()
                .and_then(|t| t.split_whitespace().next().map(str::to_string))
                .unwrap_or_else(|| "max".to_string()),
        };
        let value = match period {
            Some(p) => format!("{quota} {p}"),
            None => quota,
        };
        write_value(dir, "cpu.max", &value)?;
    }
    if let Some(cpus) = c.cpus.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        write_value(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        write_value(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// Writes `linux.resources.unified` verbatim: each key is a file in the cgroup directory.
pub(super) fn apply_unified(dir: &Path, unified: &BTreeMap<String, String>) -> Result<(), String> {
    for (key, value) in unified {
        if key.is_empty() || key.contains('/') || key == "." || key == ".." {
            return Err(format!("unified resource key {key:?} is not a cgroup file name"));
        }
        write_value(dir, key, value)?;
    }
    Ok(())
}

pub(super) fn freeze(dir: &Path, frozen: bool) -> io::Result<()> {
    let control = dir.join("cgroup.freeze");
    if !control.exists() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{}: missing (the cgroup v2 freezer needs Linux 5.2)", control.display()),
        ));
    }
    let want = u64::from(frozen);
    write_file(&control, &want.to_string())?;
    // cgroup.freeze is only the request; cgroup.events says when every task has stopped.
    let events = dir.join("cgroup.events");
    let settled = wait_until(FREEZE_TIMEOUT, || match read_file(&events) {
        Ok(t) => flat_keyed(&t).get("frozen") == Some(&want),
        Err(_) => true,
    });
    if settled {
        return Ok(());
    }
    if frozen {
        let _ = write_file(&control, "0");
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{}: \"frozen {want}\" not reached within {FREEZE_TIMEOUT:?}", events.display()),
    ))
}

pub(super) fn is_frozen(dir: &Path) -> bool {
    match read_file(&dir.join("cgroup.events")) {
        Ok(t) => flat_keyed(&t).get("frozen") == Some(&1),
        Err(_) => read_file(&dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1"),
    }
}

pub(super) fn stats(dir: &Path) -> Stats {
    let keyed = |file: &str| read_file(&dir.join(file)).map(|t| flat_keyed(&t)).unwrap_or_default();
    let cpu = keyed("cpu.stat");
    let cpu_ns = |key: &str| cpu.get(key).copied().unwrap_or(0).saturating_mul(1000);
    Stats {
        memory: MemoryStats {
            usage: read_u64(dir, "memory.current").unwrap_or(0),
            max_usage: read_u64(dir, "memory.peak").unwrap_or(0),
            limit: read_u64(dir, "memory.max"),
            oom_kills: keyed("memory.events").get("oom_kill").copied().unwrap_or(0),
            stat: keyed("memory.stat"),
        },
        cpu: CpuStats {
            usage_total_ns: cpu_ns("usage_usec"),
            usage_user_ns: cpu_ns("user_usec"),
            usage_system_ns: cpu_ns("system_usec"),
            percpu_ns: Vec::new(),
            periods: cpu.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
            throttled_ns: cpu_ns("throttled_usec"),
        },
        pids: PidsStats { current: read_u64(dir, "pids.current").unwrap_or(0), limit: read_u64(dir, "pids.max") },
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{detect, Cgroup, Mode};
    use super::*;
    use crate::runtime::spec::{DeviceCgroup, Pids};
    use std::path::PathBuf;

    const FILES: &[&str] = &[
        "cgroup.procs",
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "cpu.weight",
        "cpu.max",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "memory.high",
    ];

    /// A pure v2 tree with the container cgroup `/tug/c1` holding the controller files.
    fn fake_v2(root: &Path) -> (Cgroup, PathBuf) {
        put(root, "cgroup.controllers", "cpuset cpu io memory pids\n");
        put(root, "cgroup.subtree_control", "");
        let dir = root.join("tug/c1");
        touch(&dir, FILES);
        put(&dir, "cpu.max", "max 100000\n");
        let layout = detect(root).unwrap();
        assert_eq!(layout.mode, Mode::V2);
        (Cgroup::new(&layout, "/tug/c1"), dir)
    }

    #[test]
    fn apply_writes_each_file() {
        let t = TempDir::new("v2apply");
        let (cg, dir) = fake_v2(t.path());
        let r = Resources {
            memory: Some(Memory {
                limit: Some(64 << 20),
                reservation: Some(32 << 20),
                swap: Some(96 << 20),
                swappiness: Some(10),
                disable_oom_killer: Some(true),
                ..Default::default()
            }),
            cpu: Some(Cpu {
                shares: Some(1024),
                quota: Some(50_000),
                period: Some(200_000),
                cpus: Some("0-1".into()),
                mems: Some("0".into()),
            }),
            pids: Some(Pids { limit: 10 }),
            devices: vec![DeviceCgroup { allow: false, access: Some("rwm".into()), ..Default::default() }],
            unified: Some(BTreeMap::from([("memory.high".to_string(), "50000000".to_string())])),
            ..Default::default()
        };
        cg.apply(&r).unwrap();
        assert_eq!(get(&dir, "memory.max"), "67108864");
        assert_eq!(get(&dir, "memory.low"), "33554432");
        assert_eq!(get(&dir, "memory.swap.max"), "33554432");
        assert_eq!(get(&dir, "cpu.weight"), "39");
        assert_eq!(get(&dir, "cpu.max"), "50000 200000");
        assert_eq!(get(&dir, "cpuset.cpus"), "0-1");
        assert_eq!(get(&dir, "cpuset.mems"), "0");
        assert_eq!(get(&dir, "pids.max"), "10");
        assert_eq!(get(&dir, "memory.high"), "50000000");
        // No v1 files and no device files appear.
        for f in ["memory.swappiness", "memory.oom_control", "devices.deny", "devices.allow"] {
            assert!(!dir.join(f).exists(), "{f}");
        }
    }

    #[test]
    fn apply_unlimited_and_unset() {
        let t = TempDir::new("v2unl");
        let (cg, dir) = fake_v2(t.path());
        put(&dir, "cpu.max", "20000 100000\n");
        let r = Resources {
            memory: Some(Memory { limit: Some(-1), reservation: Some(0), ..Default::default() }),
            cpu: Some(Cpu { period: Some(50_000), ..Default::default() }),
            pids: Some(Pids { limit: -1 }),
            ..Default::default()
        };
        cg.apply(&r).unwrap();
        assert_eq!(get(&dir, "memory.max"), "max");
        assert_eq!(get(&dir, "memory.swap.max"), "max");
        assert_eq!(get(&dir, "memory.low"), "");
        // Only the period changed; the quota stays.
        assert_eq!(get(&dir, "cpu.max"), "20000 50000");
        assert_eq!(get(&dir, "cpu.weight"), "");
        assert_eq!(get(&dir, "pids.max"), "max");

        cg.apply(&Resources { cpu: Some(Cpu { quota: Some(-1), ..Default::default() }), ..Default::default() })
            .unwrap();
        assert_eq!(get(&dir, "cpu.max"), "max");
    }

    #[test]
    fn swap_conversion() {
        let m = |limit, swap| Memory { limit, swap, ..Default::default() };
        assert_eq!(swap_max(&m(Some(100), Some(300))).unwrap(), Some("200".into()));
        assert_eq!(swap_max(&m(Some(100), Some(100))).unwrap(), Some("0".into()));
        assert_eq!(swap_max(&m(Some(100), Some(-1))).unwrap(), Some("max".into()));
        assert_eq!(swap_max(&m(Some(-1), None)).unwrap(), Some("max".into()));
        assert_eq!(swap_max(&m(Some(100), None)).unwrap(), None);
        assert_eq!(swap_max(&m(None, None)).unwrap(), None);
        assert!(swap_max(&m(Some(100), Some(50))).is_err());
        assert!(swap_max(&m(None, Some(50))).is_err());
        assert!(swap_max(&m(Some(-1), Some(50))).is_err());
    }

    #[test]
    fn swap_without_accounting() {
        let t = TempDir::new("v2noswap");
        let (cg, dir) = fake_v2(t.path());
        fs::remove_file(dir.join("memory.swap.max")).unwrap();
        let mem = |limit, swap| Resources {
            memory: Some(Memory { limit, swap, ..Default::default() }),
            ..Default::default()
        };
        cg.apply(&mem(Some(100), Some(100))).unwrap();
        cg.apply(&mem(Some(100), Some(-1))).unwrap();
        let err = cg.apply(&mem(Some(100), Some(200))).unwrap_err();
        assert!(err.contains("memory.swap.max"), "{err}");
    }

    #[test]
    fn shares_to_weight_table() {
        assert_eq!(shares_to_weight(0), None);
        assert_eq!(shares_to_weight(1), Some(1));
        assert_eq!(shares_to_weight(2), Some(1));
        assert_eq!(shares_to_weight(512), Some(20));
        assert_eq!(shares_to_weight(1024), Some(39));
        assert_eq!(shares_to_weight(262_144), Some(10_000));
        assert_eq!(shares_to_weight(u64::MAX), Some(10_000));
    }

    #[test]
    fn unified_keys_are_file_names() {
        let t = TempDir::new("v2unified");
        let (cg, _dir) = fake_v2(t.path());
        for key in ["../../etc/passwd", "a/b", "..", ""] {
            let r =
                Resources { unified: Some(BTreeMap::from([(key.to_string(), "1".to_string())])), ..Default::default() };
            assert!(cg.apply(&r).unwrap_err().contains("not a cgroup file name"), "{key}");
        }
        let r = Resources {
            unified: Some(BTreeMap::from([("io.weight".to_string(), "50".to_string())])),
            ..Default::default()
        };
        let err = cg.apply(&r).unwrap_err();
        assert!(err.contains("io.weight") && err.contains("\"50\"") && err.contains("controller not enabled"), "{err}");
    }

    #[test]
    fn hybrid_writes_unified_map_to_the_unified_dir() {
        let t = TempDir::new("hyunified");
        let root = t.path();
        touch(&root.join("memory"), &["tasks"]);
        touch(&root.join("unified"), &["cgroup.controllers"]);
        let cg = Cgroup::new(&detect(root).unwrap(), "/c");
        assert_eq!(cg.mode, Mode::Hybrid);
        touch(&root.join("unified/c"), &["hugetlb.2MB.max"]);
        let r =
            Resources { unified: Some(BTreeMap::from([("hugetlb.2MB.max".into(), "0".into())])), ..Default::default() };
        cg.apply(&r).unwrap();
        assert_eq!(get(root, "unified/c/hugetlb.2MB.max"), "0");
    }

    #[test]
    fn freeze_waits_for_events() {
        let t = TempDir::new("v2freeze");
        let (cg, dir) = fake_v2(t.path());
        assert_eq!(cg.freeze(true).unwrap_err().kind(), io::ErrorKind::Unsupported);
        put(&dir, "cgroup.freeze", "0\n");
        put(&dir, "cgroup.events", "populated 1\nfrozen 1\n");
        cg.freeze(true).unwrap();
        assert_eq!(get(&dir, "cgroup.freeze"), "1");
        assert!(cg.is_frozen());
        put(&dir, "cgroup.events", "populated 1\nfrozen 0\n");
        assert!(!cg.is_frozen());
        cg.freeze(false).unwrap();
        assert_eq!(get(&dir, "cgroup.freeze"), "0");
        // Never reaches "frozen 1": times out and undoes the request.
        let err = cg.freeze(true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(get(&dir, "cgroup.freeze"), "0");
    }

    #[test]
    fn stats_from_sample_files() {
        let t = TempDir::new("v2stats");
        let (cg, dir) = fake_v2(t.path());
        put(&dir, "memory.current", "1048576\n");
        put(&dir, "memory.peak", "2097152\n");
        put(&dir, "memory.max", "max\n");
        put(&dir, "memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n");
        put(&dir, "memory.stat", "anon 4096\nfile 8192\ninactive_file 100\n");
        put(
            &dir,
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 3\nthrottled_usec 42\n",
        );
        put(&dir, "pids.current", "3\n");
        put(&dir, "pids.max", "100\n");
        let s = cg.stats();
        assert_eq!((s.memory.usage, s.memory.max_usage, s.memory.limit), (1 << 20, 2 << 20, None));
        assert_eq!(s.memory.oom_kills, 1);
        assert_eq!(s.memory.stat.get("inactive_file"), Some(&100));
        assert_eq!((s.cpu.usage_total_ns, s.cpu.usage_user_ns, s.cpu.usage_system_ns), (1_500_000, 1_000_000, 500_000));
        assert_eq!((s.cpu.periods, s.cpu.throttled_periods, s.cpu.throttled_ns), (7, 3, 42_000));
        assert_eq!(s.pids, PidsStats { current: 3, limit: Some(100) });
        put(&dir, "memory.max", "33554432\n");
        assert_eq!(cg.stats().memory.limit, Some(32 << 20));
    }
}
