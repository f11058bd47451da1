//! Linux capabilities: names, the five sets of `process.capabilities`, and applying them with
//! `capset`, `PR_CAPBSET_DROP` and `PR_CAP_AMBIENT_RAISE` (no libcap).

use std::io;

use nix::libc;

use super::spec::Capabilities;

/// Capability names in number order (CAP_CHOWN = 0 …).
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The number of a capability name (`CAP_` prefix optional, any case), if known.
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    NAMES.iter().position(|n| *n == full).and_then(|i| u32::try_from(i).ok())
}

/// A set as a bit mask; unknown names are ignored, as runc does, so configs written for newer
/// kernels still run.
pub fn mask(names: &[String]) -> u64 {
    names.iter().filter_map(|n| number(n)).fold(0, |m, c| m | (1u64 << c))
}

/// The highest capability this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40)
}

/// Drops every capability not in `bounding` from the bounding set. Needs CAP_SETPCAP, so it runs
/// before the user switch.
pub fn drop_bounding(caps: &Capabilities) -> io::Result<()> {
    let keep = mask(&caps.bounding);
    for c in 0..=last_cap() {
        if keep & (1 << c) == 0 {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(c), 0, 0, 0) };
            if r != 0 {
                let e = io::Error::last_os_error();
                // EINVAL: the kernel does not know this capability.
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Sets effective, permitted and inheritable, then raises the ambient set.
pub fn apply(caps: &Capabilities) -> io::Result<()> {
    let (e, p, i) = (mask(&caps.effective), mask(&caps.permitted), mask(&caps.inheritable));
    let mut hdr = CapHeader { version: CAP_VERSION_3, pid: 0 };
    let lo = |m: u64| (m & 0xffff_ffff) as u32;
    let hi = |m: u64| (m >> 32) as u32;
    let data = [
        CapData { effective: lo(e), permitted: lo(p), inheritable: lo(i) },
        CapData { effective: hi(e), permitted: hi(p), inheritable: hi(i) },
    ];
    // SAFETY: the header and a two-element data array in the layout capset(2) defines for
    // version 3; the kernel only reads them.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    for name in &caps.ambient {
        if let Some(c) = number(name) {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    libc::c_ulong::from(c),
                    0,
                    0,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Keeps permitted capabilities across the setuid that follows (they are then set explicitly).
pub fn keep_caps(on: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_masks() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("net_raw"), Some(13));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
        let m = mask(&DOCKER_DEFAULT.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(m, 0xa80425fb, "Docker's default 14 capabilities");
        assert_eq!(m.count_ones(), 14);
    }
}
