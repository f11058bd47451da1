//! cgroup v1 controller files: cpuset inheritance on create, the OCI resource mapping
//! (memory, cpu, cpuset, pids, devices), the freezer, and usage counters.
//! Directory bookkeeping and the choice of v1 vs v2 live in `mod.rs`.

use std::fs;
use std::io;
use std::path::Path;

use nix::unistd::{sysconf, SysconfVar};

use super::{
    flat_keyed, limit_value, read_file, read_u64, wait_until, with_path, write_file, write_raw, write_value, Cgroup,
    CpuStats, MemoryStats, PidsStats, Stats, FREEZE_TIMEOUT,
};
use crate::runtime::spec::{Cpu, DeviceCgroup, Memory, Resources};

/// v1 reports "no limit" as the largest page-aligned i64 (0x7FFFFFFFFFFFF000 with 4 KiB pages);
/// anything this large is treated as unlimited.
const UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// Creates `mount/comps…` level by level. A new v1 cpuset starts with empty `cpuset.cpus` and
/// `cpuset.mems`, and the kernel refuses tasks in it (ENOSPC), so each empty level gets its
/// parent's values; by induction the parent is already non-empty.
pub(super) fn create_cpuset(mount: &Path, comps: &[&str]) -> io::Result<()> {
    let mut parent = mount.to_path_buf();
    for comp in comps {
        let child = parent.join(comp);
        match fs::create_dir(&child) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(with_path(&child, e)),
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = fs::read_to_string(child.join(file)).unwrap_or_default();
            if !own.trim().is_empty() {
                continue;
            }
            let inherited = fs::read_to_string(parent.join(file)).unwrap_or_default();
            let inherited = inherited.trim();
            if !inherited.is_empty() {
                // fs::write may create: on cgroupfs the file always exists, in a fake tree it does not.
                fs::write(child.join(file), inherited).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot copy {inherited:?} to {}: {e}", child.join(file).display()),
                    )
                })?;
            }
        }
        parent = child;
    }
    Ok(())
}

/// The directory of `controller`, an error if it is needed but not mounted.
fn need<'a>(cg: &'a Cgroup, controller: &str, needed: bool) -> Result<Option<&'a Path>, String> {
    match cg.v1_dir(controller) {
        Some(d) => Ok(Some(d)),
        None if needed => {
            Err(format!("the requested limits need the {controller} cgroup controller, which is not mounted"))
        }
        None => Ok(None),
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub(super) fn apply(cg: &Cgroup, r: &Resources) -> Result<(), String> {
    if let Some(m) = &r.memory {
        let wanted = [m.limit, m.reservation, m.swap].iter().any(|v| v.is_some_and(|v| v != 0))
            || m.swappiness.is_some()
            || m.disable_oom_killer == Some(true);
        if let Some(dir) = need(cg, "memory", wanted)? {
            let has_memsw = dir.join(MEMSW).exists();
            let current = read_u64(dir, "memory.limit_in_bytes");
            for (file, value) in memory_writes(m, has_memsw, current)? {
                write_value(dir, file, &value)?;
            }
        }
    }
    if let Some(c) = &r.cpu {
        let wanted =
            c.shares.is_some_and(|v| v != 0) || c.quota.is_some_and(|v| v != 0) || c.period.is_some_and(|v| v != 0);
        if let Some(dir) = need(cg, "cpu", wanted)? {
            apply_cpu(dir, c)?;
        }
        let (cpus, mems) = (non_empty(&c.cpus), non_empty(&c.mems));
        if let Some(dir) = need(cg, "cpuset", cpus.is_some() || mems.is_some())? {
            if let Some(cpus) = cpus {
                write_value(dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = mems {
                write_value(dir, "cpuset.mems", mems)?;
            }
        }
    }
    if let Some(p) = &r.pids {
        if let Some(dir) = need(cg, "pids", true)? {
            let value = if p.limit > 0 { p.limit.to_string() } else { "max".to_string() };
            write_value(dir, "pids.max", &value)?;
        }
    }
    // Only configs with rules touch the devices controller: `runc update` documents carry none,
    // and must not reset the container's device access.
    if !r.devices.is_empty() {
        if let Some(dir) = need(cg, "devices", true)? {
            for (file, line) in device_writes(&r.devices)? {
                write_value(dir, file, &line)?;
            }
        }
    }
    Ok(())
}

const MEMSW: &str = "memory.memsw.limit_in_bytes";

/// The ordered writes for the memory controller. `has_memsw` says whether swap accounting exists;
/// `current_limit` is the present `memory.limit_in_bytes`.
///
/// The kernel keeps memory ≤ memory+swap after every single write, so memsw is written first when
/// it grows to at least the current memory limit, and last when it shrinks below it.
fn memory_writes(
    m: &Memory,
    has_memsw: bool,
    current_limit: Option<u64>,
) -> Result<Vec<(&'static str, String)>, String> {
    let limit = limit_value("memory.limit", m.limit)?;
    let reservation = limit_value("memory.reservation", m.reservation)?;
    let mut swap = limit_value("memory.swap", m.swap)?;
    // An unlimited memory limit with no word on swap lifts the swap limit too, or the old memsw
    // limit would keep capping the container.
    if limit == Some(-1) && swap.is_none() && has_memsw {
        swap = Some(-1);
    }
    if let (Some(l), Some(s)) = (limit, swap) {
        if l > 0 && s > 0 && s < l {
            return Err(format!("memory.swap {s} is below memory.limit {l}; swap counts memory plus swap"));
        }
    }
    if let Some(s) = swap {
        if !has_memsw {
            // Without swap accounting only "no extra swap limit" can be honoured.
            if s != -1 && Some(s) != limit {
                return Err(format!("memory.swap {s}: {MEMSW} does not exist (swap accounting is disabled)"));
            }
            swap = None;
        }
    }
    let mut out = Vec::new();
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let swap_first = s == -1 || current_limit.is_some_and(|cur| u64::try_from(s).is_ok_and(|s| s >= cur));
            if swap_first {
                out.push((MEMSW, s.to_string()));
                out.push(("memory.limit_in_bytes", l.to_string()));
            } else {
                out.push(("memory.limit_in_bytes", l.to_string()));
                out.push((MEMSW, s.to_string()));
            }
        }
        (Some(l), None) => out.push(("memory.limit_in_bytes", l.to_string())),
        (None, Some(s)) => out.push((MEMSW, s.to_string())),
        (None, None) => {}
    }
    if let Some(r) = reservation {
        out.push(("memory.soft_limit_in_bytes", r.to_string()));
    }
    if let Some(s) = m.swappiness {
        if s > 100 {
            return Err(format!("memory.swappiness {s} is above 100"));
        }
        out.push(("memory.swappiness", s.to_string()));
    }
    if m.disable_oom_killer == Some(true) {
        out.push(("memory.oom_control", "1".to_string()));
    }
    Ok(out)
}

fn apply_cpu(dir: &Path, c: &Cpu) -> Result<(), String> {
    if let Some(shares) = c.shares.filter(|&s| s != 0) {
        write_value(dir, "cpu.shares", &shares.to_string())?;
    }
    let period = c.period.filter(|&p| p != 0).map(|p| p.to_string());
    let quota = c.quota.filter(|&q| q != 0).map(|q| if q < 0 { "-1".to_string() } else { q.to_string() });
    let mut quota_done = false;
    if let Some(period) = &period {
        // The kernel checks quota/period against the parent's bandwidth after each write, so a
        // new period can be refused under the old quota: then write the quota first and retry.
        if write_raw(&dir.join("cpu.cfs_period_us"), period).is_err() {
            let Some(quota) = &quota else {
                return write_value(dir, "cpu.cfs_period_us", period);
            };
            write_value(dir, "cpu.cfs_quota_us", quota)?;
            write_value(dir, "cpu.cfs_period_us", period)?;
            quota_done = true;
        }
    }
    if let (Some(quota), false) = (&quota, quota_done) {
        write_value(dir, "cpu.cfs_quota_us", quota)?;
    }
    Ok(())
}

/// Device nodes every container gets (runtime-spec "Default Devices" plus the pty devices),
/// appended after the config's rules as runc does.
fn default_device_rules() -> Vec<DeviceCgroup> {
    let rule = |kind: &str, major: i64, minor: Option<i64>| DeviceCgroup {
        allow: true,
        kind: Some(kind.to_string()),
        major: Some(major),
        minor,
        access: Some("rwm".to_string()),
    };
    vec![
        rule("c", 1, Some(3)),    // null
        rule("c", 1, Some(5)),    // zero
        rule("c", 1, Some(7)),    // full
        rule("c", 1, Some(8)),    // random
        rule("c", 1, Some(9)),    // urandom
        rule("c", 5, Some(0)),    // tty
        rule("c", 5, Some(2)),    // ptmx
        rule("c", 136, None),     // pts/*
        rule("c", 10, Some(200)), // net/tun
    ]
}

/// The ordered (file, line) writes for the devices controller: deny everything, then the config's
/// rules in order, then the defaults. Lines look like `c 1:3 rwm`; a missing or negative
/// major/minor is `*`.
fn device_writes(rules: &[DeviceCgroup]) -> Result<Vec<(&'static str, String)>, String> {
    let mut out = vec![("devices.deny", "a".to_string())];
    for d in rules.iter().chain(default_device_rules().iter()) {
        let file = if d.allow { "devices.allow" } else { "devices.deny" };
        out.push((file, device_line(d)?));
    }
    Ok(out)
}

fn device_line(d: &DeviceCgroup) -> Result<String, String> {
    let kind = d.kind.as_deref().unwrap_or("a");
    if !matches!(kind, "a" | "b" | "c") {
        return Err(format!("device rule type {kind:?} is not one of a, b, c"));
    }
    let num = |n: Option<i64>| n.filter(|&n| n >= 0).map_or("*".to_string(), |n| n.to_string());
    let access = d.access.as_deref().filter(|a| !a.is_empty()).unwrap_or("rwm");
    if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) || access.len() > 3 {
        return Err(format!("device rule access {access:?} is not made of r, w, m"));
    }
    Ok(format!("{kind} {}:{} {access}", num(d.major), num(d.minor)))
}

pub(super) fn freeze(dir: &Path, frozen: bool) -> io::Result<()> {
    let state = dir.join("freezer.state");
    if !frozen {
        return write_file(&state, "THAWED");
    }
    write_file(&state, "FROZEN")?;
    let mut polls = 0u32;
    let settled = wait_until(FREEZE_TIMEOUT, || {
        polls += 1;
        // A freeze can stall in FREEZING (a task in vfork or an uninterruptible sleep); writing
        // FROZEN again makes the kernel retry the tasks it missed.
        if polls.is_multiple_of(8) {
            let _ = write_file(&state, "FROZEN");
        }
        read_file(&state).is_ok_and(|s| s.trim() == "FROZEN")
    });
    if settled {
        return Ok(());
    }
    let _ = write_file(&state, "THAWED");
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{}: did not reach FROZEN within {FREEZE_TIMEOUT:?}; thawed again", state.display()),
    ))
}

pub(super) fn is_frozen(dir: &Path) -> bool {
    read_file(&dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
}

pub(super) fn stats(cg: &Cgroup) -> Stats {
    let mut st = Stats::default();
    if let Some(dir) = cg.v1_dir("memory") {
        st.memory = memory_stats(dir);
    }
    if let Some(dir) = cg.v1_dir("cpuacct") {
        cpuacct_stats(dir, &mut st.cpu);
    }
    if let Some(dir) = cg.v1_dir("cpu") {
        let s = read_file(&dir.join("cpu.stat")).map(|t| flat_keyed(&t)).unwrap_or_default();
        st.cpu.periods = s.get("nr_periods").copied().unwrap_or(0);
        st.cpu.throttled_periods = s.get("nr_throttled").copied().unwrap_or(0);
        st.cpu.throttled_ns = s.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(dir) = cg.v1_dir("pids") {
        st.pids = PidsStats { current: read_u64(dir, "pids.current").unwrap_or(0), limit: read_u64(dir, "pids.max") };
    }
    st
}

fn memory_stats(dir: &Path) -> MemoryStats {
    let oom = read_file(&dir.join("memory.oom_control")).map(|t| flat_keyed(&t)).unwrap_or_default();
    MemoryStats {
        usage: read_u64(dir, "memory.usage_in_bytes").unwrap_or(0),
        max_usage: read_u64(dir, "memory.max_usage_in_bytes").unwrap_or(0),
        limit: read_u64(dir, "memory.limit_in_bytes").filter(|&l| l < UNLIMITED_THRESHOLD),
        oom_kills: oom.get("oom_kill").copied().unwrap_or(0),
        stat: read_file(&dir.join("memory.stat")).map(|t| flat_keyed(&t)).unwrap_or_default(),
    }
}

fn cpuacct_stats(dir: &Path, cpu: &mut CpuStats) {
    cpu.usage_total_ns = read_u64(dir, "cpuacct.usage").unwrap_or(0);
    cpu.percpu_ns = read_file(&dir.join("cpuacct.usage_percpu"))
        .map(|t| t.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    // cpuacct.usage_user/_sys (Linux 4.7) are nanoseconds; cpuacct.stat is in USER_HZ ticks.
    if let (Some(user), Some(sys)) = (read_u64(dir, "cpuacct.usage_user"), read_u64(dir, "cpuacct.usage_sys")) {
        cpu.usage_user_ns = user;
        cpu.usage_system_ns = sys;
    } else if let Ok(t) = read_file(&dir.join("cpuacct.stat")) {
        let ticks = flat_keyed(&t);
        let hz = sysconf(SysconfVar::CLK_TCK).ok().flatten().and_then(|v| u64::try_from(v).ok()).filter(|&v| v > 0);
        let ns_per_tick = 1_000_000_000 / hz.unwrap_or(100);
        cpu.usage_user_ns = ticks.get("user").copied().unwrap_or(0).saturating_mul(ns_per_tick);
        cpu.usage_system_ns = ticks.get("system").copied().unwrap_or(0).saturating_mul(ns_per_tick);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{detect, Mode};
    use super::*;
    use crate::runtime::spec::Pids;
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;

    const MEM_FILES: &[&str] = &[
        "memory.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
    ];

    /// A pure v1 tree with the container cgroup `/tug/c1` already holding the controller files.
    fn fake_v1(root: &Path) -> Cgroup {
        for d in ["cpu,cpuacct", "cpuset", "memory", "devices", "freezer", "pids", "systemd"] {
            touch(&root.join(d), &["cgroup.procs"]);
        }
        symlink("cpu,cpuacct", root.join("cpu")).unwrap();
        symlink("cpu,cpuacct", root.join("cpuacct")).unwrap();
        let c1 = |d: &str| root.join(d).join("tug/c1");
        touch(&c1("memory"), MEM_FILES);
        put(&c1("memory"), "memory.limit_in_bytes", "9223372036854771712\n");
        touch(&c1("cpu,cpuacct"), &["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"]);
        touch(&c1("cpuset"), &["cpuset.cpus", "cpuset.mems"]);
        touch(&c1("pids"), &["pids.max"]);
        touch(&c1("devices"), &["devices.allow", "devices.deny"]);
        put(&c1("freezer"), "freezer.state", "THAWED\n");
        let layout = detect(root).unwrap();
        assert_eq!(layout.mode, Mode::V1);
        Cgroup::new(&layout, "/tug/c1")
    }

    fn full_resources() -> Resources {
        Resources {
            memory: Some(Memory {
                limit: Some(64 << 20),
                reservation: Some(32 << 20),
                swap: Some(128 << 20),
                kernel: Some(1 << 20),
                swappiness: Some(10),
                disable_oom_killer: Some(true),
            }),
            cpu: Some(Cpu {
                shares: Some(512),
                quota: Some(50_000),
                period: Some(100_000),
                cpus: Some("0-1".into()),
                mems: Some("0".into()),
            }),
            pids: Some(Pids { limit: 10 }),
            devices: vec![DeviceCgroup { allow: false, access: Some("rwm".into()), ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn apply_writes_each_file() {
        let t = TempDir::new("v1apply");
        let root = t.path();
        let cg = fake_v1(root);
        cg.apply(&full_resources()).unwrap();
        let c1 = |d: &str| root.join(d).join("tug/c1");
        let mem = c1("memory");
        assert_eq!(get(&mem, "memory.limit_in_bytes"), "67108864");
        assert_eq!(get(&mem, "memory.memsw.limit_in_bytes"), "134217728");
        assert_eq!(get(&mem, "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(get(&mem, "memory.swappiness"), "10");
        assert_eq!(get(&mem, "memory.oom_control"), "1");
        // memory.kernel is not applied (kmem limits are gone since Linux 5.16).
        assert!(!mem.join("memory.kmem.limit_in_bytes").exists());
        let cpu = c1("cpu,cpuacct");
        assert_eq!(get(&cpu, "cpu.shares"), "512");
        assert_eq!(get(&cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(get(&cpu, "cpu.cfs_period_us"), "100000");
        assert_eq!(get(&c1("cpuset"), "cpuset.cpus"), "0-1");
        assert_eq!(get(&c1("cpuset"), "cpuset.mems"), "0");
        assert_eq!(get(&c1("pids"), "pids.max"), "10");
        // The last write of each devices file: the deny-all rule, then the last default.
        assert_eq!(get(&c1("devices"), "devices.deny"), "a *:* rwm");
        assert_eq!(get(&c1("devices"), "devices.allow"), "c 10:200 rwm");
        // The freezer is left alone by apply.
        assert_eq!(get(&c1("freezer"), "freezer.state"), "THAWED\n");
    }

    #[test]
    fn apply_unset_and_unlimited() {
        let t = TempDir::new("v1unset");
        let root = t.path();
        let cg = fake_v1(root);
        let r = Resources {
            memory: Some(Memory { limit: Some(-1), reservation: Some(0), ..Default::default() }),
            cpu: Some(Cpu { quota: Some(-1), ..Default::default() }),
            pids: Some(Pids { limit: 0 }),
            ..Default::default()
        };
        cg.apply(&r).unwrap();
        let c1 = |d: &str| root.join(d).join("tug/c1");
        assert_eq!(get(&c1("memory"), "memory.limit_in_bytes"), "-1");
        // Unlimited memory with no swap word lifts the swap limit as well.
        assert_eq!(get(&c1("memory"), "memory.memsw.limit_in_bytes"), "-1");
        assert_eq!(get(&c1("memory"), "memory.soft_limit_in_bytes"), "");
        assert_eq!(get(&c1("memory"), "memory.oom_control"), "");
        assert_eq!(get(&c1("cpu,cpuacct"), "cpu.cfs_quota_us"), "-1");
        assert_eq!(get(&c1("cpu,cpuacct"), "cpu.cfs_period_us"), "");
        assert_eq!(get(&c1("cpu,cpuacct"), "cpu.shares"), "");
        assert_eq!(get(&c1("pids"), "pids.max"), "max");
        // Empty device list: the devices controller is not touched.
        assert_eq!(get(&c1("devices"), "devices.deny"), "");

        let bad =
            Resources { unified: Some(BTreeMap::from([("memory.high".into(), "1".into())])), ..Default::default() };
        assert!(cg.apply(&bad).unwrap_err().contains("v2"));
    }

    #[test]
    fn apply_errors_name_file_and_value() {
        let t = TempDir::new("v1err");
        let root = t.path();
        let cg = fake_v1(root);
        fs::remove_file(root.join("pids/tug/c1/pids.max")).unwrap();
        let err = cg.apply(&Resources { pids: Some(Pids { limit: 5 }), ..Default::default() }).unwrap_err();
        assert!(err.contains("\"5\"") && err.contains("pids/tug/c1/pids.max"), "{err}");

        let mut cg2 = cg.clone();
        cg2.v1.remove("pids");
        let err = cg2.apply(&Resources { pids: Some(Pids { limit: 5 }), ..Default::default() }).unwrap_err();
        assert!(err.contains("pids cgroup controller"), "{err}");
        // A memory-less host is fine when no memory limit is asked for.
        cg2.v1.remove("memory");
        cg2.apply(&Resources { memory: Some(Memory::default()), ..Default::default() }).unwrap();
    }

    fn mem(limit: i64, swap: Option<i64>) -> Memory {
        Memory { limit: Some(limit), swap, ..Default::default() }
    }

    fn files(w: &[(&'static str, String)]) -> Vec<String> {
        w.iter().map(|(f, v)| format!("{f}={v}")).collect()
    }

    #[test]
    fn memory_swap_write_order() {
        let m100 = 100 << 20;
        // Raising (new memsw ≥ current limit): memsw first.
        let w = memory_writes(&mem(200 << 20, Some(400 << 20)), true, Some(m100)).unwrap();
        assert_eq!(files(&w), ["memory.memsw.limit_in_bytes=419430400", "memory.limit_in_bytes=209715200"]);
        // Lowering below the current limit: memory first.
        let w = memory_writes(&mem(10 << 20, Some(20 << 20)), true, Some(m100)).unwrap();
        assert_eq!(files(&w), ["memory.limit_in_bytes=10485760", "memory.memsw.limit_in_bytes=20971520"]);
        // Unlimited swap always goes first.
        let w = memory_writes(&mem(10 << 20, Some(-1)), true, Some(m100)).unwrap();
        assert_eq!(files(&w), ["memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=10485760"]);
        // Unknown current limit: memory first.
        let w = memory_writes(&mem(10 << 20, Some(20 << 20)), true, None).unwrap();
        assert_eq!(w[0].0, "memory.limit_in_bytes");
    }

    #[test]
    fn memory_without_swap_accounting() {
        // swap == limit or -1: nothing to enforce, no error.
        let w = memory_writes(&mem(10, Some(10)), false, None).unwrap();
        assert_eq!(files(&w), ["memory.limit_in_bytes=10"]);
        let w = memory_writes(&mem(10, Some(-1)), false, None).unwrap();
        assert_eq!(files(&w), ["memory.limit_in_bytes=10"]);
        let w = memory_writes(&mem(-1, None), false, None).unwrap();
        assert_eq!(files(&w), ["memory.limit_in_bytes=-1"]);
        // A real swap limit cannot be honoured.
        let err = memory_writes(&mem(10, Some(20)), false, None).unwrap_err();
        assert!(err.contains("memory.memsw.limit_in_bytes"), "{err}");
        // Inconsistent or invalid values.
        assert!(memory_writes(&mem(20, Some(10)), true, None).is_err());
        assert!(memory_writes(&mem(-2, None), true, None).is_err());
        assert!(memory_writes(&Memory { swappiness: Some(101), ..Default::default() }, true, None).is_err());
    }

    #[test]
    fn device_rules() {
        let rules = vec![
            DeviceCgroup { allow: false, access: Some("rwm".into()), ..Default::default() },
            DeviceCgroup {
                allow: true,
                kind: Some("c".into()),
                major: Some(1),
                minor: Some(3),
                access: Some("rwm".into()),
            },
            DeviceCgroup { allow: true, kind: Some("b".into()), major: Some(8), minor: None, access: Some("r".into()) },
            DeviceCgroup { allow: false, kind: Some("c".into()), major: Some(-1), minor: Some(-1), access: None },
        ];
        let w = device_writes(&rules).unwrap();
        assert_eq!(
            files(&w[..5]),
            [
                "devices.deny=a",
                "devices.deny=a *:* rwm",
                "devices.allow=c 1:3 rwm",
                "devices.allow=b 8:* r",
                "devices.deny=c *:* rwm",
            ]
        );
        assert_eq!(w.len(), 5 + default_device_rules().len());
        assert!(files(&w).contains(&"devices.allow=c 136:* rwm".to_string()));
        let bad = |d: DeviceCgroup| device_writes(&[d]).is_err();
        assert!(bad(DeviceCgroup { kind: Some("x".into()), ..Default::default() }));
        assert!(bad(DeviceCgroup { access: Some("rwx".into()), ..Default::default() }));
    }

    #[test]
    fn freezer_states() {
        let t = TempDir::new("v1freeze");
        let cg = fake_v1(t.path());
        assert!(!cg.is_frozen());
        cg.freeze(true).unwrap();
        assert!(cg.is_frozen());
        assert_eq!(get(&t.path().join("freezer/tug/c1"), "freezer.state"), "FROZEN");
        cg.freeze(false).unwrap();
        assert!(!cg.is_frozen());
        assert_eq!(get(&t.path().join("freezer/tug/c1"), "freezer.state"), "THAWED");
    }

    #[test]
    fn stats_from_sample_files() {
        let t = TempDir::new("v1stats");
        let root = t.path();
        let cg = fake_v1(root);
        let mem = root.join("memory/tug/c1");
        put(&mem, "memory.usage_in_bytes", "1048576\n");
        put(&mem, "memory.max_usage_in_bytes", "2097152\n");
        put(&mem, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
        put(&mem, "memory.stat", "cache 4096\nrss 8192\ntotal_inactive_file 4096\n");
        let cpu = root.join("cpu,cpuacct/tug/c1");
        put(&cpu, "cpuacct.usage", "123456789\n");
        put(&cpu, "cpuacct.usage_percpu", "100000000 23456789 \n");
        put(&cpu, "cpuacct.stat", "user 7\nsystem 3\n");
        put(&cpu, "cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\n");
        let pids = root.join("pids/tug/c1");
        put(&pids, "pids.current", "4\n");
        put(&pids, "pids.max", "max\n");

        let s = cg.stats();
        assert_eq!(s.memory.usage, 1 << 20);
        assert_eq!(s.memory.max_usage, 2 << 20);
        assert_eq!(s.memory.limit, None, "the unlimited sentinel is not a limit");
        assert_eq!(s.memory.oom_kills, 3);
        assert_eq!(s.memory.stat.get("rss"), Some(&8192));
        assert_eq!(s.cpu.usage_total_ns, 123_456_789);
        assert_eq!(s.cpu.percpu_ns, vec![100_000_000, 23_456_789]);
        // From ticks; CLK_TCK is 100 on Linux.
        assert_eq!((s.cpu.usage_user_ns, s.cpu.usage_system_ns), (70_000_000, 30_000_000));
        assert_eq!((s.cpu.periods, s.cpu.throttled_periods, s.cpu.throttled_ns), (10, 2, 5000));
        assert_eq!(s.pids, PidsStats { current: 4, limit: None });
        assert!(cg.oom_killed());

        put(&cpu, "cpuacct.usage_user", "111\n");
        put(&cpu, "cpuacct.usage_sys", "222\n");
        put(&mem, "memory.limit_in_bytes", "33554432\n");
        put(&pids, "pids.max", "10\n");
        let s = cg.stats();
        assert_eq!((s.cpu.usage_user_ns, s.cpu.usage_system_ns), (111, 222));
        assert_eq!(s.memory.limit, Some(32 << 20));
        assert_eq!(s.pids.limit, Some(10));
    }
}
