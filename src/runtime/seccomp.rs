//! Seccomp filters: compiles `linux.seccomp` from config.json into classic BPF in-process (no
//! libseccomp), installs it with seccomp(2), and provides Docker's default profile.
//!
//! Owns the syscall name tables (x86_64, aarch64), the compiler and the program layout. Does not
//! own `no_new_privs` (set it before [`Filter::install`] when the process lacks CAP_SYS_ADMIN) nor
//! SCMP_ACT_NOTIFY listeners (refused).
//!
//! Only the native ABI is compiled. A syscall made through another ABI that `architectures` lists
//! (SCMP_ARCH_X86 or SCMP_ARCH_X32 on x86_64, SCMP_ARCH_ARM on aarch64) gets the default action
//! without looking at its number — or KILL_PROCESS when the default action allows, since the rules
//! could not be enforced for it. An ABI that is not listed is killed, as libseccomp does.
//!
//! Program layout: check the arch, load the syscall number, then a balanced binary search
//! (`jge`) over number intervals whose leaves are a `ret` or one syscall's argument checks. Long
//! forward jumps are rewritten into `ja` trampolines by a small assembler, so no conditional jump
//! ever needs more than 255 instructions and lookups take about log2(intervals) steps.

use std::collections::BTreeMap;
use std::io;

use nix::libc;

use super::spec::{Seccomp, SyscallArg, SyscallRule};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Classic BPF's limit on program length (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

/// Numbers at or above this on x86_64 with AUDIT_ARCH_X86_64 are the x32 ABI (__X32_SYSCALL_BIT).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A compiled filter, ready to [`install`](Filter::install).
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter").field("instructions", &self.program.len()).field("flags", &self.flags).finish()
    }
}

impl Filter {
    /// Installs the filter on the calling thread (all threads with SECCOMP_FILTER_FLAG_TSYNC).
    ///
    /// The kernel refuses (EACCES) unless the thread has no_new_privs set or holds CAP_SYS_ADMIN.
    pub fn install(&self) -> io::Result<()> {
        let len = u16::try_from(self.program.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seccomp program too long"))?;
        let prog = libc::sock_fprog {
            len,
            // The kernel only reads through this pointer; the field is `*mut` for C's sake.
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `self.program`, which lives for the whole call; the kernel
        // copies the program and reads exactly `len` instructions. No memory is written.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        if ret > 0 {
            // With TSYNC a positive return is the id of a thread that could not be synchronized.
            return Err(io::Error::other(format!("seccomp: thread {ret} cannot be synchronized (TSYNC)")));
        }
        Ok(())
    }
}

/// One architecture's facts: its AUDIT_ARCH value and its syscall numbers.
#[derive(Clone, Copy)]
struct Arch {
    audit: u32,
    syscalls: &'static [(&'static str, u32)],
    /// x86_64 shares its AUDIT_ARCH with the x32 ABI, told apart by X32_SYSCALL_BIT.
    has_x32: bool,
}

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

#[cfg_attr(not(any(target_arch = "x86_64", test)), allow(dead_code))]
const X86_64: Arch = Arch { audit: AUDIT_ARCH_X86_64, syscalls: X86_64_SYSCALLS, has_x32: true };

#[cfg_attr(not(any(target_arch = "aarch64", test)), allow(dead_code))]
const AARCH64: Arch = Arch { audit: AUDIT_ARCH_AARCH64, syscalls: AARCH64_SYSCALLS, has_x32: false };

#[cfg(target_arch = "x86_64")]
const NATIVE: Option<Arch> = Some(X86_64);
#[cfg(target_arch = "aarch64")]
const NATIVE: Option<Arch> = Some(AARCH64);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE: Option<Arch> = None;

/// libseccomp's architecture names and their AUDIT_ARCH values (EM_* | 64-bit | little-endian).
/// SCMP_ARCH_X32 is absent: it shares AUDIT_ARCH_X86_64 and is handled by number.
const ARCH_NAMES: &[(&str, u32)] = &[
    ("SCMP_ARCH_X86", 0x4000_0003),
    ("SCMP_ARCH_X86_64", AUDIT_ARCH_X86_64),
    ("SCMP_ARCH_ARM", 0x4000_0028),
    ("SCMP_ARCH_AARCH64", AUDIT_ARCH_AARCH64),
    ("SCMP_ARCH_MIPS", 0x0000_0008),
    ("SCMP_ARCH_MIPSEL", 0x4000_0008),
    ("SCMP_ARCH_MIPS64", 0x8000_0008),
    ("SCMP_ARCH_MIPSEL64", 0xC000_0008),
    ("SCMP_ARCH_MIPS64N32", 0xA000_0008),
    ("SCMP_ARCH_MIPSEL64N32", 0xE000_0008),
    ("SCMP_ARCH_PPC", 0x0000_0014),
    ("SCMP_ARCH_PPC64", 0x8000_0015),
    ("SCMP_ARCH_PPC64LE", 0xC000_0015),
    ("SCMP_ARCH_S390", 0x0000_0016),
    ("SCMP_ARCH_S390X", 0x8000_0016),
    ("SCMP_ARCH_PARISC", 0x0000_000F),
    ("SCMP_ARCH_PARISC64", 0x8000_000F),
    ("SCMP_ARCH_RISCV32", 0x4000_00F3),
    ("SCMP_ARCH_RISCV64", 0xC000_00F3),
    ("SCMP_ARCH_LOONGARCH64", 0xC000_0102),
    ("SCMP_ARCH_M68K", 0x0000_0004),
    ("SCMP_ARCH_SH", 0x4000_002A),
    ("SCMP_ARCH_SHEB", 0x0000_002A),
];

fn lookup(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table.iter().find(|(n, _)| *n == name).map(|&(_, nr)| nr)
}

/// Compiles the spec's rules for the host architecture (x86_64, or aarch64 when built there).
///
/// Rules whose action equals the default action are dropped and unknown syscall names are
/// skipped, as runc does. Rules naming the same syscall are tried in order; the first whose
/// argument conditions all hold decides.
pub fn compile(spec: &Seccomp) -> Result<Filter, String> {
    let arch = NATIVE.ok_or("linux.seccomp: seccomp is not supported on this architecture")?;
    compile_for(spec, arch)
}

fn compile_for(spec: &Seccomp, arch: Arch) -> Result<Filter, String> {
    let default = parse_action(
        &spec.default_action,
        spec.default_errno_ret,
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;
    if spec.listener_path.is_some() {
        return Err("linux.seccomp.listenerPath: SCMP_ACT_NOTIFY is not supported".into());
    }
    let flags = parse_flags(&spec.flags)?;

    // Other ABIs cannot be checked by number (we only have the native table), so they get the
    // default action when it denies and are killed when it would let them through unchecked.
    let allows = |ret: u32| matches!(ret & libc::SECCOMP_RET_ACTION_FULL, RET_ALLOW | RET_LOG);
    let uncompiled = if allows(default) { KILL_PROCESS } else { default };
    let mut foreign: Vec<u32> = Vec::new();
    let mut x32 = KILL_PROCESS;
    for (i, name) in spec.architectures.iter().enumerate() {
        if name == "SCMP_ARCH_X32" {
            x32 = uncompiled;
            continue;
        }
        let audit = ARCH_NAMES
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, a)| a)
            .ok_or_else(|| format!("linux.seccomp.architectures[{i}]: unknown architecture {name:?}"))?;
        if audit != arch.audit && !foreign.contains(&audit) {
            foreign.push(audit);
        }
    }

    let mut per_syscall: BTreeMap<u32, Vec<Rule>> = BTreeMap::new();
    for (i, rule) in spec.syscalls.iter().enumerate() {
        let parsed = parse_rule(rule, i)?;
        if parsed.action == default {
            continue;
        }
        for name in &rule.names {
            if let Some(nr) = lookup(arch.syscalls, name) {
                per_syscall.entry(nr).or_default().push(parsed.clone());
            }
        }
    }

    let intervals = intervals(per_syscall, default, arch.has_x32.then_some(x32));
    let mut asm = Asm::default();
    let native = asm.label();
    asm.ld(OFF_ARCH);
    asm.jump(BPF_JEQ, arch.audit, Tgt::To(native), Tgt::Next);
    if !foreign.is_empty() {
        let listed = asm.label();
        for audit in &foreign {
            asm.jump(BPF_JEQ, *audit, Tgt::To(listed), Tgt::Next);
        }
        asm.ret(KILL_PROCESS);
        asm.mark(listed);
        asm.ret(uncompiled);
    } else {
        asm.ret(KILL_PROCESS);
    }
    asm.mark(native);
    asm.ld(OFF_NR);
    emit_tree(&mut asm, &intervals, default);
    let program = asm.finish()?;
    if program.len() > MAX_INSNS {
        return Err(format!(
            "linux.seccomp: the compiled filter has {} instructions, more than the kernel's {MAX_INSNS}",
            program.len()
        ));
    }
    Ok(Filter { program, flags })
}

// ---- actions, flags and rules -------------------------------------------------------------

const KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_LOG: u32 = libc::SECCOMP_RET_LOG;

/// Turns an SCMP_ACT_* name into a SECCOMP_RET_* value; errno (or the trace value) goes in the
/// 16 data bits and defaults to EPERM as in runc.
fn parse_action(name: &str, errno: Option<u32>, field: &str, errno_field: &str) -> Result<u32, String> {
    let data = || -> Result<u32, String> {
        let value = errno.unwrap_or(EPERM);
        if value > libc::SECCOMP_RET_DATA {
            return Err(format!("{errno_field}: {value} out of range (0-65535)"));
        }
        Ok(value)
    };
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => libc::SECCOMP_RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => KILL_PROCESS,
        "SCMP_ACT_TRAP" => libc::SECCOMP_RET_TRAP,
        "SCMP_ACT_ERRNO" => libc::SECCOMP_RET_ERRNO | data()?,
        "SCMP_ACT_TRACE" => libc::SECCOMP_RET_TRACE | data()?,
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        "SCMP_ACT_LOG" => RET_LOG,
        "SCMP_ACT_NOTIFY" => return Err(format!("{field}: SCMP_ACT_NOTIFY is not supported")),
        _ => return Err(format!("{field}: unknown action {name:?}")),
    })
}

fn parse_flags(names: &[String]) -> Result<libc::c_ulong, String> {
    let mut flags = 0;
    for (i, name) in names.iter().enumerate() {
        flags |= match name.as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => libc::SECCOMP_FILTER_FLAG_TSYNC,
            "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            _ => return Err(format!("linux.seccomp.flags[{i}]: unsupported flag {name:?}")),
        };
    }
    Ok(flags)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One argument condition: `args[index] <op> value` (for MASKED_EQ: `args & value == value_two`).
#[derive(Clone, Debug)]
struct Cond {
    index: u32,
    op: Op,
    value: u64,
    value_two: u64,
}

#[derive(Clone, Debug)]
struct Rule {
    conds: Vec<Cond>,
    action: u32,
}

fn parse_rule(rule: &SyscallRule, i: usize) -> Result<Rule, String> {
    let field = format!("linux.seccomp.syscalls[{i}]");
    let action = parse_action(&rule.action, rule.errno_ret, &format!("{field}.action"), &format!("{field}.errnoRet"))?;
    let conds = rule
        .args
        .iter()
        .enumerate()
        .map(|(j, arg)| parse_arg(arg, &format!("{field}.args[{j}]")))
        .collect::<Result<_, _>>()?;
    Ok(Rule { conds, action })
}

fn parse_arg(arg: &SyscallArg, field: &str) -> Result<Cond, String> {
    if arg.index > 5 {
        return Err(format!("{field}.index: {} out of range (0-5)", arg.index));
    }
    let op = match arg.op.as_str() {
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        other => return Err(format!("{field}.op: unknown operator {other:?}")),
    };
    Ok(Cond { index: arg.index, op, value: arg.value, value_two: arg.value_two })
}

// ---- layout --------------------------------------------------------------------------------

/// What a range of syscall numbers leads to.
#[derive(Clone, Debug)]
enum Leaf {
    Ret(u32),
    /// One syscall's rules, tried in order; `tail` is returned when none matches.
    Check {
        rules: Vec<Rule>,
        tail: u32,
    },
}

/// Splits the 32-bit number space into intervals `(first number, leaf)`, sorted, the first at 0.
/// Neighbouring numbers with the same plain action share one interval.
fn intervals(per_syscall: BTreeMap<u32, Vec<Rule>>, default: u32, x32: Option<u32>) -> Vec<(u32, Leaf)> {
    let mut out: Vec<(u32, Leaf)> = vec![(0, Leaf::Ret(default))];
    let push = |out: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf| {
        // A later interval starting at the same number replaces the placeholder before it.
        if out.last().is_some_and(|(s, _)| *s == start) {
            out.pop();
        }
        if let (Some((_, Leaf::Ret(last))), Leaf::Ret(new)) = (out.last(), &leaf) {
            if last == new {
                return;
            }
        }
        out.push((start, leaf));
    };
    for (nr, rules) in per_syscall {
        // An unconditional rule ends the list: later rules for this syscall can never match.
        let mut conditional = Vec::new();
        let mut tail = default;
        for rule in rules {
            if rule.conds.is_empty() {
                tail = rule.action;
                break;
            }
            conditional.push(rule);
        }
        let leaf = if conditional.is_empty() { Leaf::Ret(tail) } else { Leaf::Check { rules: conditional, tail } };
        push(&mut out, nr, leaf);
        if let Some(next) = nr.checked_add(1) {
            push(&mut out, next, Leaf::Ret(default));
        }
    }
    if let Some(x32) = x32 {
        push(&mut out, X32_SYSCALL_BIT, Leaf::Ret(x32));
        // nr -1 is what a tracer sets to skip a call; it is not an x32 syscall.
        push(&mut out, u32::MAX, Leaf::Ret(default));
    }
    out
}

/// Emits a binary search over `intervals` (A holds the syscall number).
fn emit_tree(asm: &mut Asm, intervals: &[(u32, Leaf)], default: u32) {
    match intervals {
        [] => asm.ret(default),
        [(_, leaf)] => emit_leaf(asm, leaf),
        _ => {
            let mid = intervals.len() / 2;
            let right = asm.label();
            asm.jump(BPF_JGE, intervals[mid].0, Tgt::To(right), Tgt::Next);
            emit_tree(asm, &intervals[..mid], default);
            asm.mark(right);
            emit_tree(asm, &intervals[mid..], default);
        }
    }
}

fn emit_leaf(asm: &mut Asm, leaf: &Leaf) {
    match leaf {
        Leaf::Ret(action) => asm.ret(*action),
        Leaf::Check { rules, tail } => {
            for rule in rules {
                let fail = asm.label();
                for cond in &rule.conds {
                    emit_cond(asm, cond, fail);
                }
                asm.ret(rule.action);
                asm.mark(fail);
            }
            asm.ret(*tail);
        }
    }
}

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

/// Offsets in `struct seccomp_data` of the high and low 32-bit words of `args[index]`.
fn arg_offsets(index: u32) -> (u32, u32) {
    let base = 16 + 8 * index;
    if cfg!(target_endian = "little") {
        (base + 4, base)
    } else {
        (base, base + 4)
    }
}

fn split(value: u64) -> (u32, u32) {
    let hi = u32::try_from(value >> 32).unwrap_or(u32::MAX);
    let lo = u32::try_from(value & 0xFFFF_FFFF).unwrap_or(u32::MAX);
    (hi, lo)
}

/// Emits a 64-bit unsigned comparison that falls through when it holds and jumps to `fail`
/// otherwise. BPF loads 32 bits at a time: the high words decide unless they are equal.
fn emit_cond(asm: &mut Asm, cond: &Cond, fail: Label) {
    let (hi_off, lo_off) = arg_offsets(cond.index);
    let (vh, vl) = split(cond.value);
    let ok = asm.label();
    let (ok_t, fail_t) = (Tgt::To(ok), Tgt::To(fail));
    match cond.op {
        Op::Eq => {
            asm.ld(hi_off);
            asm.jump(BPF_JEQ, vh, Tgt::Next, fail_t);
            asm.ld(lo_off);
            asm.jump(BPF_JEQ, vl, ok_t, fail_t);
        }
        Op::Ne => {
            asm.ld(hi_off);
            asm.jump(BPF_JEQ, vh, Tgt::Next, ok_t);
            asm.ld(lo_off);
            asm.jump(BPF_JEQ, vl, fail_t, ok_t);
        }
        Op::Gt | Op::Ge => {
            asm.ld(hi_off);
            asm.jump(BPF_JGT, vh, ok_t, Tgt::Next);
            asm.jump(BPF_JEQ, vh, Tgt::Next, fail_t);
            asm.ld(lo_off);
            let op = if cond.op == Op::Gt { BPF_JGT } else { BPF_JGE };
            asm.jump(op, vl, ok_t, fail_t);
        }
        Op::Lt | Op::Le => {
            asm.ld(hi_off);
            asm.jump(BPF_JGT, vh, fail_t, Tgt::Next);
            asm.jump(BPF_JEQ, vh, Tgt::Next, ok_t);
            asm.ld(lo_off);
            // arg_lo < vl  ⇔  !(arg_lo >= vl);  arg_lo <= vl  ⇔  !(arg_lo > vl)
            let op = if cond.op == Op::Lt { BPF_JGE } else { BPF_JGT };
            asm.jump(op, vl, fail_t, ok_t);
        }
        Op::MaskedEq => {
            let (mh, ml) = (vh, vl);
            let (dh, dl) = split(cond.value_two);
            for (off, mask, datum) in [(hi_off, mh, dh), (lo_off, ml, dl)] {
                if mask == 0 {
                    // (x & 0) == datum is constant: nothing to load.
                    if datum != 0 {
                        asm.ja(fail);
                    }
                    continue;
                }
                asm.ld(off);
                if mask != u32::MAX {
                    asm.and(mask);
                }
                asm.jump(BPF_JEQ, datum, Tgt::Next, fail_t);
            }
        }
    }
    asm.mark(ok);
}

// ---- a tiny assembler with forward labels and automatic trampolines --------------------------

const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;

type Label = usize;

#[derive(Clone, Copy, Debug)]
enum Tgt {
    Next,
    To(Label),
}

#[derive(Clone, Copy, Debug)]
enum Ins {
    Ld(u32),
    And(u32),
    Jump { op: u16, k: u32, jt: Tgt, jf: Tgt },
    Ja(Label),
    Ret(u32),
    Mark(Label),
}

#[derive(Default)]
struct Asm {
    ins: Vec<Ins>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }
    fn mark(&mut self, label: Label) {
        self.ins.push(Ins::Mark(label));
    }
    fn ld(&mut self, offset: u32) {
        self.ins.push(Ins::Ld(offset));
    }
    fn and(&mut self, mask: u32) {
        self.ins.push(Ins::And(mask));
    }
    fn jump(&mut self, op: u16, k: u32, jt: Tgt, jf: Tgt) {
        self.ins.push(Ins::Jump { op, k, jt, jf });
    }
    fn ja(&mut self, label: Label) {
        self.ins.push(Ins::Ja(label));
    }
    fn ret(&mut self, value: u32) {
        self.ins.push(Ins::Ret(value));
    }

    /// Resolves labels. A conditional jump whose target is more than 255 instructions ahead gets
    /// a `ja` trampoline right after it; widening one jump can push another out of range, so
    /// this repeats until nothing changes (it only ever widens, so it ends).
    fn finish(self) -> Result<Vec<libc::sock_filter>, String> {
        let mut far = vec![(false, false); self.ins.len()];
        let tramps = |far: (bool, bool)| usize::from(far.0) + usize::from(far.1);
        let size = |ins: &Ins, far: (bool, bool)| match ins {
            Ins::Mark(_) => 0,
            Ins::Jump { .. } => 1 + tramps(far),
            _ => 1,
        };
        let (pos, labels) = loop {
            let mut pos = Vec::with_capacity(self.ins.len());
            let mut labels = vec![usize::MAX; self.labels];
            let mut at = 0;
            for (i, ins) in self.ins.iter().enumerate() {
                pos.push(at);
                if let Ins::Mark(l) = ins {
                    labels[*l] = at;
                }
                at += size(ins, far[i]);
            }
            let mut changed = false;
            for (i, ins) in self.ins.iter().enumerate() {
                if let Ins::Jump { jt, jf, .. } = ins {
                    let after = pos[i] + 1;
                    let reach = |t: &Tgt| match t {
                        Tgt::Next => 0,
                        Tgt::To(l) => labels[*l].saturating_sub(after),
                    };
                    if !far[i].0 && reach(jt) > 255 {
                        far[i].0 = true;
                        changed = true;
                    }
                    if !far[i].1 && reach(jf) > 255 {
                        far[i].1 = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break (pos, labels);
            }
        };

        let target = |l: Label, from: usize| -> Result<usize, String> {
            let to = labels[l];
            if to == usize::MAX || to < from {
                return Err("linux.seccomp: internal error: bad jump target".into());
            }
            Ok(to - from)
        };
        let mut out = Vec::new();
        for (i, ins) in self.ins.iter().enumerate() {
            let after = pos[i] + 1;
            match *ins {
                Ins::Mark(_) => {}
                Ins::Ld(off) => out.push(stmt(BPF_LD_W_ABS, off)),
                Ins::And(mask) => out.push(stmt(BPF_ALU_AND_K, mask)),
                Ins::Ret(value) => out.push(stmt(BPF_RET_K, value)),
                Ins::Ja(l) => out.push(stmt(BPF_JMP_JA, to_u32(target(l, after)?)?)),
                Ins::Jump { op, k, jt, jf } => {
                    let (far_t, far_f) = far[i];
                    let n = tramps(far[i]);
                    // Offsets count from the instruction after the jump; trampolines sit there.
                    let near = |t: Tgt| -> Result<u8, String> {
                        let off = match t {
                            Tgt::Next => n,
                            Tgt::To(l) => target(l, after)?,
                        };
                        u8::try_from(off).map_err(|_| "linux.seccomp: internal error: jump too long".into())
                    };
                    let t_off = if far_t { 0 } else { near(jt)? };
                    let f_off = if far_f { u8::from(far_t) } else { near(jf)? };
                    out.push(libc::sock_filter { code: BPF_JMP_K | op, jt: t_off, jf: f_off, k });
                    let far_targets = [(far_t, jt), (far_f, jf)];
                    for (j, (_, t)) in far_targets.into_iter().filter(|(f, _)| *f).enumerate() {
                        let Tgt::To(l) = t else {
                            return Err("linux.seccomp: internal error: far fallthrough".into());
                        };
                        out.push(stmt(BPF_JMP_JA, to_u32(target(l, after + j + 1)?)?));
                    }
                }
            }
        }
        Ok(out)
    }
}

// Opcodes (linux/filter.h): class | size/op | source.
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const BPF_JMP_K: u16 = 0x05; // BPF_JMP | BPF_K, or'ed with BPF_JEQ/JGT/JGE
const BPF_JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

fn to_u32(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| "linux.seccomp: filter too large".to_string())
}

// ---- Docker's default profile ---------------------------------------------------------------

/// Docker's default seccomp profile (moby `profiles/seccomp/default.json`) as Docker renders it
/// for the host architecture and the default 14 capabilities: ERRNO(EPERM) by default, the common
/// allow list, `personality` only with the known-safe personas, `socket` except AF_VSOCK,
/// `clone` without namespace flags, `clone3` answering ENOSYS so libc falls back to `clone`, and
/// `chroot` (CAP_SYS_CHROOT is a default capability). Rules that need other capabilities are left
/// out.
#[allow(dead_code, reason = "the daemon's default for `docker run`; the runtime alone never needs it")]
pub fn default_profile() -> Seccomp {
    docker_profile(cfg!(target_arch = "aarch64"))
}

fn docker_profile(aarch64: bool) -> Seccomp {
    let allow = |names: &[&str]| SyscallRule {
        names: names.iter().map(|n| n.to_string()).collect(),
        action: "SCMP_ACT_ALLOW".into(),
        errno_ret: None,
        args: Vec::new(),
    };
    let allow_if = |name: &str, index: u32, value: u64, op: &str| SyscallRule {
        args: vec![SyscallArg { index, value, value_two: 0, op: op.into() }],
        ..allow(&[name])
    };
    let mut syscalls = vec![
        allow(DOCKER_ALLOW),
        // minKernel 4.8: from then on ptrace cannot be used to bypass seccomp.
        allow(&["process_vm_readv", "process_vm_writev", "ptrace"]),
        allow_if("socket", 0, AF_VSOCK, "SCMP_CMP_NE"),
    ];
    // PER_LINUX, UNAME26, PER_LINUX32, UNAME26|PER_LINUX32, and 0xffffffff (query).
    for persona in [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
        syscalls.push(allow_if("personality", 0, persona, "SCMP_CMP_EQ"));
    }
    if aarch64 {
        syscalls.push(allow(&[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ]));
    } else {
        syscalls.push(allow(&["arch_prctl", "modify_ldt"]));
    }
    // Without CAP_SYS_ADMIN: clone only when no CLONE_NEW* flag is set (flags are arg 0 outside
    // s390), and clone3, whose flags live in memory BPF cannot read, fails with ENOSYS.
    syscalls.push(allow_if("clone", 0, CLONE_NEW_MASK, "SCMP_CMP_MASKED_EQ"));
    syscalls.push(SyscallRule {
        names: vec!["clone3".into()],
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(ENOSYS),
        args: Vec::new(),
    });
    syscalls.push(allow(&["chroot"]));
    let architectures: &[&str] = if aarch64 {
        &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    } else {
        &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    };
    Seccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(EPERM),
        architectures: architectures.iter().map(|a| a.to_string()).collect(),
        flags: Vec::new(),
        listener_path: None,
        syscalls,
    }
}

const AF_VSOCK: u64 = 40;

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET (2114060288 in default.json).
const CLONE_NEW_MASK: u64 = 0x7E02_0000;

/// The unconditional allow list of Docker's default profile; names of other architectures are
/// skipped at compile time.
#[rustfmt::skip]
const DOCKER_ALLOW: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod",
    "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
    "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd",
    "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32",
    "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
    "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents", "getdents64",
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage",
    "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32",
    "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
    "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get",
    "ioprio_set", "io_setup", "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc",
    "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32",
    "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore",
    "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
    "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat",
    "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
    "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
    "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt",
    "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall",
    "socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime",
    "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
];

// ---- syscall tables ---------------------------------------------------------------------------
// From the kernel's arch/x86/entry/syscalls/syscall_64.tbl (64-bit and common entries; the x32
// range 512-547 is not native) and include/uapi/asm-generic/unistd.h as arm64 configures it,
// through Linux 6.17 (file_setattr, 469).

#[rustfmt::skip]
const X86_64_SYSCALLS: &[(&str, u32)] = &[
    ("read", 0), ("write", 1), ("open", 2), ("close", 3), ("stat", 4), ("fstat", 5), ("lstat", 6),
    ("poll", 7), ("lseek", 8), ("mmap", 9), ("mprotect", 10), ("munmap", 11), ("brk", 12),
    ("rt_sigaction", 13), ("rt_sigprocmask", 14), ("rt_sigreturn", 15), ("ioctl", 16),
    ("pread64", 17), ("pwrite64", 18), ("readv", 19), ("writev", 20), ("access", 21), ("pipe", 22),
    ("select", 23), ("sched_yield", 24), ("mremap", 25), ("msync", 26), ("mincore", 27),
    ("madvise", 28), ("shmget", 29), ("shmat", 30), ("shmctl", 31), ("dup", 32), ("dup2", 33),
    ("pause", 34), ("nanosleep", 35), ("getitimer", 36), ("alarm", 37), ("setitimer", 38),
    ("getpid", 39), ("sendfile", 40), ("socket", 41), ("connect", 42), ("accept", 43),
    ("sendto", 44), ("recvfrom", 45), ("sendmsg", 46), ("recvmsg", 47), ("shutdown", 48),
    ("bind", 49), ("listen", 50), ("getsockname", 51), ("getpeername", 52), ("socketpair", 53),
    ("setsockopt", 54), ("getsockopt", 55), ("clone", 56), ("fork", 57), ("vfork", 58),
    ("execve", 59), ("exit", 60), ("wait4", 61), ("kill", 62), ("uname", 63), ("semget", 64),
    ("semop", 65), ("semctl", 66), ("shmdt", 67), ("msgget", 68), ("msgsnd", 69), ("msgrcv", 70),
    ("msgctl", 71), ("fcntl", 72), ("flock", 73), ("fsync", 74), ("fdatasync", 75),
    ("truncate", 76), ("ftruncate", 77), ("getdents", 78), ("getcwd", 79), ("chdir", 80),
    ("fchdir", 81), ("rename", 82), ("mkdir", 83), ("rmdir", 84), ("creat", 85), ("link", 86),
    ("unlink", 87), ("symlink", 88), ("readlink", 89), ("chmod", 90), ("fchmod", 91), ("chown", 92),
    ("fchown", 93), ("lchown", 94), ("umask", 95), ("gettimeofday", 96), ("getrlimit", 97),
    ("getrusage", 98), ("sysinfo", 99), ("times", 100), ("ptrace", 101), ("getuid", 102),
    ("syslog", 103), ("getgid", 104), ("setuid", 105), ("setgid", 106), ("geteuid", 107),
    ("getegid", 108), ("setpgid", 109), ("getppid", 110), ("getpgrp", 111), ("setsid", 112),
    ("setreuid", 113), ("setregid", 114), ("getgroups", 115), ("setgroups", 116),
    ("setresuid", 117), ("getresuid", 118), ("setresgid", 119), ("getresgid", 120),
    ("getpgid", 121), ("setfsuid", 122), ("setfsgid", 123), ("getsid", 124), ("capget", 125),
    ("capset", 126), ("rt_sigpending", 127), ("rt_sigtimedwait", 128), ("rt_sigqueueinfo", 129),
    ("rt_sigsuspend", 130), ("sigaltstack", 131), ("utime", 132), ("mknod", 133), ("uselib", 134),
    ("personality", 135), ("ustat", 136), ("statfs", 137), ("fstatfs", 138), ("sysfs", 139),
    ("getpriority", 140), ("setpriority", 141), ("sched_setparam", 142), ("sched_getparam", 143),
    ("sched_setscheduler", 144), ("sched_getscheduler", 145), ("sched_get_priority_max", 146),
    ("sched_get_priority_min", 147), ("sched_rr_get_interval", 148), ("mlock", 149),
    ("munlock", 150), ("mlockall", 151), ("munlockall", 152), ("vhangup", 153), ("modify_ldt", 154),
    ("pivot_root", 155), ("_sysctl", 156), ("prctl", 157), ("arch_prctl", 158), ("adjtimex", 159),
    ("setrlimit", 160), ("chroot", 161), ("sync", 162), ("acct", 163), ("settimeofday", 164),
    ("mount", 165), ("umount2", 166), ("swapon", 167), ("swapoff", 168), ("reboot", 169),
    ("sethostname", 170), ("setdomainname", 171), ("iopl", 172), ("ioperm", 173),
    ("create_module", 174), ("init_module", 175), ("delete_module", 176), ("get_kernel_syms", 177),
    ("query_module", 178), ("quotactl", 179), ("nfsservctl", 180), ("getpmsg", 181),
    ("putpmsg", 182), ("afs_syscall", 183), ("tuxcall", 184), ("security", 185), ("gettid", 186),
    ("readahead", 187), ("setxattr", 188), ("lsetxattr", 189), ("fsetxattr", 190),
    ("getxattr", 191), ("lgetxattr", 192), ("fgetxattr", 193), ("listxattr", 194),
    ("llistxattr", 195), ("flistxattr", 196), ("removexattr", 197), ("lremovexattr", 198),
    ("fremovexattr", 199), ("tkill", 200), ("time", 201), ("futex", 202),
    ("sched_setaffinity", 203), ("sched_getaffinity", 204), ("set_thread_area", 205),
    ("io_setup", 206), ("io_destroy", 207), ("io_getevents", 208), ("io_submit", 209),
    ("io_cancel", 210), ("get_thread_area", 211), ("lookup_dcookie", 212), ("epoll_create", 213),
    ("epoll_ctl_old", 214), ("epoll_wait_old", 215), ("remap_file_pages", 216), ("getdents64", 217),
    ("set_tid_address", 218), ("restart_syscall", 219), ("semtimedop", 220), ("fadvise64", 221),
    ("timer_create", 222), ("timer_settime", 223), ("timer_gettime", 224),
    ("timer_getoverrun", 225), ("timer_delete", 226), ("clock_settime", 227),
    ("clock_gettime", 228), ("clock_getres", 229), ("clock_nanosleep", 230), ("exit_group", 231),
    ("epoll_wait", 232), ("epoll_ctl", 233), ("tgkill", 234), ("utimes", 235), ("vserver", 236),
    ("mbind", 237), ("set_mempolicy", 238), ("get_mempolicy", 239), ("mq_open", 240),
    ("mq_unlink", 241), ("mq_timedsend", 242), ("mq_timedreceive", 243), ("mq_notify", 244),
    ("mq_getsetattr", 245), ("kexec_load", 246), ("waitid", 247), ("add_key", 248),
    ("request_key", 249), ("keyctl", 250), ("ioprio_set", 251), ("ioprio_get", 252),
    ("inotify_init", 253), ("inotify_add_watch", 254), ("inotify_rm_watch", 255),
    ("migrate_pages", 256), ("openat", 257), ("mkdirat", 258), ("mknodat", 259), ("fchownat", 260),
    ("futimesat", 261), ("newfstatat", 262), ("unlinkat", 263), ("renameat", 264), ("linkat", 265),
    ("symlinkat", 266), ("readlinkat", 267), ("fchmodat", 268), ("faccessat", 269),
    ("pselect6", 270), ("ppoll", 271), ("unshare", 272), ("set_robust_list", 273),
    ("get_robust_list", 274), ("splice", 275), ("tee", 276), ("sync_file_range", 277),
    ("vmsplice", 278), ("move_pages", 279), ("utimensat", 280), ("epoll_pwait", 281),
    ("signalfd", 282), ("timerfd_create", 283), ("eventfd", 284), ("fallocate", 285),
    ("timerfd_settime", 286), ("timerfd_gettime", 287), ("accept4", 288), ("signalfd4", 289),
    ("eventfd2", 290), ("epoll_create1", 291), ("dup3", 292), ("pipe2", 293),
    ("inotify_init1", 294), ("preadv", 295), ("pwritev", 296), ("rt_tgsigqueueinfo", 297),
    ("perf_event_open", 298), ("recvmmsg", 299), ("fanotify_init", 300), ("fanotify_mark", 301),
    ("prlimit64", 302), ("name_to_handle_at", 303), ("open_by_handle_at", 304),
    ("clock_adjtime", 305), ("syncfs", 306), ("sendmmsg", 307), ("setns", 308), ("getcpu", 309),
    ("process_vm_readv", 310), ("process_vm_writev", 311), ("kcmp", 312), ("finit_module", 313),
    ("sched_setattr", 314), ("sched_getattr", 315), ("renameat2", 316), ("seccomp", 317),
    ("getrandom", 318), ("memfd_create", 319), ("kexec_file_load", 320), ("bpf", 321),
    ("execveat", 322), ("userfaultfd", 323), ("membarrier", 324), ("mlock2", 325),
    ("copy_file_range", 326), ("preadv2", 327), ("pwritev2", 328), ("pkey_mprotect", 329),
    ("pkey_alloc", 330), ("pkey_free", 331), ("statx", 332), ("io_pgetevents", 333), ("rseq", 334),
    ("uretprobe", 335), ("uprobe", 336), ("pidfd_send_signal", 424), ("io_uring_setup", 425),
    ("io_uring_enter", 426), ("io_uring_register", 427), ("open_tree", 428), ("move_mount", 429),
    ("fsopen", 430), ("fsconfig", 431), ("fsmount", 432), ("fspick", 433), ("pidfd_open", 434),
    ("clone3", 435), ("close_range", 436), ("openat2", 437), ("pidfd_getfd", 438),
    ("faccessat2", 439), ("process_madvise", 440), ("epoll_pwait2", 441), ("mount_setattr", 442),
    ("quotactl_fd", 443), ("landlock_create_ruleset", 444), ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446), ("memfd_secret", 447), ("process_mrelease", 448),
    ("futex_waitv", 449), ("set_mempolicy_home_node", 450), ("cachestat", 451), ("fchmodat2", 452),
    ("map_shadow_stack", 453), ("futex_wake", 454), ("futex_wait", 455), ("futex_requeue", 456),
    ("statmount", 457), ("listmount", 458), ("lsm_get_self_attr", 459), ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461), ("mseal", 462), ("setxattrat", 463), ("getxattrat", 464),
    ("listxattrat", 465), ("removexattrat", 466), ("open_tree_attr", 467), ("file_getattr", 468),
    ("file_setattr", 469),
];

#[rustfmt::skip]
const AARCH64_SYSCALLS: &[(&str, u32)] = &[
    ("io_setup", 0), ("io_destroy", 1), ("io_submit", 2), ("io_cancel", 3), ("io_getevents", 4),
    ("setxattr", 5), ("lsetxattr", 6), ("fsetxattr", 7), ("getxattr", 8), ("lgetxattr", 9),
    ("fgetxattr", 10), ("listxattr", 11), ("llistxattr", 12), ("flistxattr", 13),
    ("removexattr", 14), ("lremovexattr", 15), ("fremovexattr", 16), ("getcwd", 17),
    ("lookup_dcookie", 18), ("eventfd2", 19), ("epoll_create1", 20), ("epoll_ctl", 21),
    ("epoll_pwait", 22), ("dup", 23), ("dup3", 24), ("fcntl", 25), ("inotify_init1", 26),
    ("inotify_add_watch", 27), ("inotify_rm_watch", 28), ("ioctl", 29), ("ioprio_set", 30),
    ("ioprio_get", 31), ("flock", 32), ("mknodat", 33), ("mkdirat", 34), ("unlinkat", 35),
    ("symlinkat", 36), ("linkat", 37), ("renameat", 38), ("umount2", 39), ("mount", 40),
    ("pivot_root", 41), ("nfsservctl", 42), ("statfs", 43), ("fstatfs", 44), ("truncate", 45),
    ("ftruncate", 46), ("fallocate", 47), ("faccessat", 48), ("chdir", 49), ("fchdir", 50),
    ("chroot", 51), ("fchmod", 52), ("fchmodat", 53), ("fchownat", 54), ("fchown", 55),
    ("openat", 56), ("close", 57), ("vhangup", 58), ("pipe2", 59), ("quotactl", 60),
    ("getdents64", 61), ("lseek", 62), ("read", 63), ("write", 64), ("readv", 65), ("writev", 66),
    ("pread64", 67), ("pwrite64", 68), ("preadv", 69), ("pwritev", 70), ("sendfile", 71),
    ("pselect6", 72), ("ppoll", 73), ("signalfd4", 74), ("vmsplice", 75), ("splice", 76),
    ("tee", 77), ("readlinkat", 78), ("newfstatat", 79), ("fstat", 80), ("sync", 81), ("fsync", 82),
    ("fdatasync", 83), ("sync_file_range", 84), ("timerfd_create", 85), ("timerfd_settime", 86),
    ("timerfd_gettime", 87), ("utimensat", 88), ("acct", 89), ("capget", 90), ("capset", 91),
    ("personality", 92), ("exit", 93), ("exit_group", 94), ("waitid", 95), ("set_tid_address", 96),
    ("unshare", 97), ("futex", 98), ("set_robust_list", 99), ("get_robust_list", 100),
    ("nanosleep", 101), ("getitimer", 102), ("setitimer", 103), ("kexec_load", 104),
    ("init_module", 105), ("delete_module", 106), ("timer_create", 107), ("timer_gettime", 108),
    ("timer_getoverrun", 109), ("timer_settime", 110), ("timer_delete", 111),
    ("clock_settime", 112), ("clock_gettime", 113), ("clock_getres", 114), ("clock_nanosleep", 115),
    ("syslog", 116), ("ptrace", 117), ("sched_setparam", 118), ("sched_setscheduler", 119),
    ("sched_getscheduler", 120), ("sched_getparam", 121), ("sched_setaffinity", 122),
    ("sched_getaffinity", 123), ("sched_yield", 124), ("sched_get_priority_max", 125),
    ("sched_get_priority_min", 126), ("sched_rr_get_interval", 127), ("restart_syscall", 128),
    ("kill", 129), ("tkill", 130), ("tgkill", 131), ("sigaltstack", 132), ("rt_sigsuspend", 133),
    ("rt_sigaction", 134), ("rt_sigprocmask", 135), ("rt_sigpending", 136),
    ("rt_sigtimedwait", 137), ("rt_sigqueueinfo", 138), ("rt_sigreturn", 139), ("setpriority", 140),
    ("getpriority", 141), ("reboot", 142), ("setregid", 143), ("setgid", 144), ("setreuid", 145),
    ("setuid", 146), ("setresuid", 147), ("getresuid", 148), ("setresgid", 149), ("getresgid", 150),
    ("setfsuid", 151), ("setfsgid", 152), ("times", 153), ("setpgid", 154), ("getpgid", 155),
    ("getsid", 156), ("setsid", 157), ("getgroups", 158), ("setgroups", 159), ("uname", 160),
    ("sethostname", 161), ("setdomainname", 162), ("getrlimit", 163), ("setrlimit", 164),
    ("getrusage", 165), ("umask", 166), ("prctl", 167), ("getcpu", 168), ("gettimeofday", 169),
    ("settimeofday", 170), ("adjtimex", 171), ("getpid", 172), ("getppid", 173), ("getuid", 174),
    ("geteuid", 175), ("getgid", 176), ("getegid", 177), ("gettid", 178), ("sysinfo", 179),
    ("mq_open", 180), ("mq_unlink", 181), ("mq_timedsend", 182), ("mq_timedreceive", 183),
    ("mq_notify", 184), ("mq_getsetattr", 185), ("msgget", 186), ("msgctl", 187), ("msgrcv", 188),
    ("msgsnd", 189), ("semget", 190), ("semctl", 191), ("semtimedop", 192), ("semop", 193),
    ("shmget", 194), ("shmctl", 195), ("shmat", 196), ("shmdt", 197), ("socket", 198),
    ("socketpair", 199), ("bind", 200), ("listen", 201), ("accept", 202), ("connect", 203),
    ("getsockname", 204), ("getpeername", 205), ("sendto", 206), ("recvfrom", 207),
    ("setsockopt", 208), ("getsockopt", 209), ("shutdown", 210), ("sendmsg", 211), ("recvmsg", 212),
    ("readahead", 213), ("brk", 214), ("munmap", 215), ("mremap", 216), ("add_key", 217),
    ("request_key", 218), ("keyctl", 219), ("clone", 220), ("execve", 221), ("mmap", 222),
    ("fadvise64", 223), ("swapon", 224), ("swapoff", 225), ("mprotect", 226), ("msync", 227),
    ("mlock", 228), ("munlock", 229), ("mlockall", 230), ("munlockall", 231), ("mincore", 232),
    ("madvise", 233), ("remap_file_pages", 234), ("mbind", 235), ("get_mempolicy", 236),
    ("set_mempolicy", 237), ("migrate_pages", 238), ("move_pages", 239), ("rt_tgsigqueueinfo", 240),
    ("perf_event_open", 241), ("accept4", 242), ("recvmmsg", 243), ("arch_specific_syscall", 244),
    ("wait4", 260), ("prlimit64", 261), ("fanotify_init", 262), ("fanotify_mark", 263),
    ("name_to_handle_at", 264), ("open_by_handle_at", 265), ("clock_adjtime", 266), ("syncfs", 267),
    ("setns", 268), ("sendmmsg", 269), ("process_vm_readv", 270), ("process_vm_writev", 271),
    ("kcmp", 272), ("finit_module", 273), ("sched_setattr", 274), ("sched_getattr", 275),
    ("renameat2", 276), ("seccomp", 277), ("getrandom", 278), ("memfd_create", 279), ("bpf", 280),
    ("execveat", 281), ("userfaultfd", 282), ("membarrier", 283), ("mlock2", 284),
    ("copy_file_range", 285), ("preadv2", 286), ("pwritev2", 287), ("pkey_mprotect", 288),
    ("pkey_alloc", 289), ("pkey_free", 290), ("statx", 291), ("io_pgetevents", 292), ("rseq", 293),
    ("kexec_file_load", 294), ("pidfd_send_signal", 424), ("io_uring_setup", 425),
    ("io_uring_enter", 426), ("io_uring_register", 427), ("open_tree", 428), ("move_mount", 429),
    ("fsopen", 430), ("fsconfig", 431), ("fsmount", 432), ("fspick", 433), ("pidfd_open", 434),
    ("clone3", 435), ("close_range", 436), ("openat2", 437), ("pidfd_getfd", 438),
    ("faccessat2", 439), ("process_madvise", 440), ("epoll_pwait2", 441), ("mount_setattr", 442),
    ("quotactl_fd", 443), ("landlock_create_ruleset", 444), ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446), ("memfd_secret", 447), ("process_mrelease", 448),
    ("futex_waitv", 449), ("set_mempolicy_home_node", 450), ("cachestat", 451), ("fchmodat2", 452),
    ("map_shadow_stack", 453), ("futex_wake", 454), ("futex_wait", 455), ("futex_requeue", 456),
    ("statmount", 457), ("listmount", 458), ("lsm_get_self_attr", 459), ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461), ("mseal", 462), ("setxattrat", 463), ("getxattrat", 464),
    ("listxattrat", 465), ("removexattrat", 466), ("open_tree_attr", 467), ("file_getattr", 468),
    ("file_setattr", 469),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a classic BPF program the way the kernel's seccomp would, over a synthetic
    /// `seccomp_data`; panics on anything the compiler must never produce.
    fn run(prog: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&nr.to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0x1234_5678u64.to_ne_bytes());
        for a in args {
            data.extend_from_slice(&a.to_ne_bytes());
        }
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        for _ in 0..prog.len() {
            let ins = prog[pc];
            let next = pc + 1;
            match ins.code {
                BPF_LD_W_ABS => {
                    let off = ins.k as usize;
                    assert!(off.is_multiple_of(4) && off + 4 <= data.len(), "bad load {off}");
                    acc = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap());
                    pc = next;
                }
                BPF_ALU_AND_K => {
                    acc &= ins.k;
                    pc = next;
                }
                BPF_RET_K => return ins.k,
                c if c == BPF_JMP_JA && ins.jt == 0 && ins.jf == 0 => pc = next + ins.k as usize,
                c if c & 0x07 == BPF_JMP_K => {
                    let taken = match c & 0xf0 {
                        BPF_JEQ => acc == ins.k,
                        BPF_JGT => acc > ins.k,
                        BPF_JGE => acc >= ins.k,
                        op => panic!("unknown jump {op:#x}"),
                    };
                    pc = next + usize::from(if taken { ins.jt } else { ins.jf });
                }
                c => panic!("unknown opcode {c:#x}"),
            }
            assert!(pc < prog.len(), "ran off the end");
        }
        panic!("loop in program");
    }

    fn nr_of(arch: Arch, name: &str) -> u32 {
        lookup(arch.syscalls, name).unwrap_or_else(|| panic!("no syscall {name}"))
    }

    fn decide(f: &Filter, arch: Arch, name: &str, args: [u64; 6]) -> u32 {
        run(&f.program, nr_of(arch, name), arch.audit, args)
    }

    fn parse(json: &str) -> Seccomp {
        serde_json::from_str(json).unwrap()
    }

    fn errno(e: u32) -> u32 {
        libc::SECCOMP_RET_ERRNO | e
    }

    const ARCHES: [Arch; 2] = [X86_64, AARCH64];
    const NONE: [u64; 6] = [0; 6];

    #[test]
    fn tables_are_unique() {
        for arch in ARCHES {
            let mut names: Vec<_> = arch.syscalls.iter().map(|(n, _)| *n).collect();
            let mut nrs: Vec<_> = arch.syscalls.iter().map(|(_, nr)| *nr).collect();
            names.sort_unstable();
            nrs.sort_unstable();
            let (n, m) = (names.len(), nrs.len());
            names.dedup();
            nrs.dedup();
            assert_eq!((names.len(), nrs.len()), (n, m));
            assert!(nrs.contains(&460) && nrs.contains(&469));
        }
        assert_eq!(lookup(X86_64_SYSCALLS, "getppid"), Some(110));
        assert_eq!(lookup(AARCH64_SYSCALLS, "getppid"), Some(173));
        assert_eq!(lookup(X86_64_SYSCALLS, "clone3"), Some(435));
        assert_eq!(lookup(AARCH64_SYSCALLS, "openat"), Some(56));
        assert_eq!(lookup(AARCH64_SYSCALLS, "open"), None);
    }

    #[test]
    fn allow_list_and_errno() {
        let spec = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":13,"syscalls":[
                {"names":["read","write","no_such_call"],"action":"SCMP_ACT_ALLOW"},
                {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                {"names":["gettid"],"action":"SCMP_ACT_ERRNO"},
                {"names":["uname"],"action":"SCMP_ACT_LOG"},
                {"names":["kill"],"action":"SCMP_ACT_TRACE","errnoRet":7},
                {"names":["tkill"],"action":"SCMP_ACT_TRAP"},
                {"names":["tgkill"],"action":"SCMP_ACT_KILL"},
                {"names":["exit"],"action":"SCMP_ACT_KILL_PROCESS"},
                {"names":["brk"],"action":"SCMP_ACT_KILL_THREAD"}]}"#,
        );
        for arch in ARCHES {
            let f = compile_for(&spec, arch).unwrap();
            assert_eq!(decide(&f, arch, "read", NONE), RET_ALLOW);
            assert_eq!(decide(&f, arch, "write", NONE), RET_ALLOW);
            assert_eq!(decide(&f, arch, "close", NONE), errno(13));
            assert_eq!(decide(&f, arch, "getpid", NONE), errno(38));
            assert_eq!(decide(&f, arch, "gettid", NONE), errno(EPERM));
            assert_eq!(decide(&f, arch, "uname", NONE), RET_LOG);
            assert_eq!(decide(&f, arch, "kill", NONE), libc::SECCOMP_RET_TRACE | 7);
            assert_eq!(decide(&f, arch, "tkill", NONE), libc::SECCOMP_RET_TRAP);
            assert_eq!(decide(&f, arch, "tgkill", NONE), libc::SECCOMP_RET_KILL_THREAD);
            assert_eq!(decide(&f, arch, "exit", NONE), KILL_PROCESS);
            assert_eq!(decide(&f, arch, "brk", NONE), libc::SECCOMP_RET_KILL_THREAD);
            // Unassigned and huge numbers get the default action.
            assert_eq!(run(&f.program, 1000, arch.audit, NONE), errno(13));
            assert_eq!(run(&f.program, u32::MAX, arch.audit, NONE), errno(13));
        }
    }

    fn one_arg(op: &str, value: u64, value_two: u64) -> Filter {
        let spec = Seccomp {
            default_action: "SCMP_ACT_ALLOW".into(),
            syscalls: vec![SyscallRule {
                names: vec!["getppid".into()],
                action: "SCMP_ACT_ERRNO".into(),
                errno_ret: Some(99),
                args: vec![SyscallArg { index: 2, value, value_two, op: op.into() }],
            }],
            ..Seccomp::default()
        };
        compile_for(&spec, X86_64).unwrap()
    }

    fn matches(f: &Filter, arg: u64) -> bool {
        match decide(f, X86_64, "getppid", [0, 0, arg, 0, 0, 0]) {
            r if r == errno(99) => true,
            RET_ALLOW => false,
            r => panic!("unexpected {r:#x}"),
        }
    }

    #[test]
    fn every_operator_on_64_bit_values() {
        let v = 0x0000_0005_8000_0000u64;
        let probes = [
            0,
            1,
            v - 1,
            v,
            v + 1,
            0x0000_0004_ffff_ffff,
            0x0000_0006_0000_0000,
            0x0000_0005_0000_0000,
            0x0000_0004_9000_0000, // high word lower, low word higher
            0x0000_0006_1000_0000, // high word higher, low word lower
            u64::MAX,
            0x8000_0000,
        ];
        type Check = fn(u64, u64) -> bool;
        let ops: [(&str, Check); 6] = [
            ("SCMP_CMP_EQ", |a, b| a == b),
            ("SCMP_CMP_NE", |a, b| a != b),
            ("SCMP_CMP_LT", |a, b| a < b),
            ("SCMP_CMP_LE", |a, b| a <= b),
            ("SCMP_CMP_GT", |a, b| a > b),
            ("SCMP_CMP_GE", |a, b| a >= b),
        ];
        for (op, want) in ops {
            for value in [v, 0, u64::MAX, 0xffff_ffff] {
                let f = one_arg(op, value, 0);
                for arg in probes {
                    assert_eq!(matches(&f, arg), want(arg, value), "{op} {arg:#x} vs {value:#x}");
                }
            }
        }
    }

    #[test]
    fn masked_eq() {
        let cases = [
            (0x7E02_0000u64, 0u64),
            (0xff, 0x11),
            (0xffff_0000_0000_0000, 0x1234_0000_0000_0000),
            (0xffff_ffff_ffff_ffff, 0xdead_beef_0000_0001),
            (0x0000_00ff_0000_0000, 0x0000_0001_0000_0000),
            (0xf0, 0x0f), // datum outside the mask never matches
            (0, 0x1_0000_0000),
        ];
        let probes = [
            0u64,
            0x11,
            0x111,
            0x1000_0000,
            0x0002_0000,
            0x1234_0000_0000_0000,
            0x1234_0000_ffff_ffff,
            0xdead_beef_0000_0001,
            0x0000_0001_0000_0000,
            0x0000_0101_0000_0011,
            u64::MAX,
        ];
        for (mask, datum) in cases {
            let f = one_arg("SCMP_CMP_MASKED_EQ", mask, datum);
            for arg in probes {
                assert_eq!(matches(&f, arg), arg & mask == datum, "{arg:#x} & {mask:#x} == {datum:#x}");
            }
        }
    }

    #[test]
    fn several_args_are_anded_and_rules_ored_in_order() {
        let spec = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["mmap"],"action":"SCMP_ACT_ERRNO","errnoRet":5,
                 "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":5,"value":10,"op":"SCMP_CMP_GT"}]},
                {"names":["mmap"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
                {"names":["mmap"],"action":"SCMP_ACT_LOG","args":[{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
                {"names":["mmap"],"action":"SCMP_ACT_TRAP"},
                {"names":["mmap"],"action":"SCMP_ACT_ALLOW"},
                {"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":3,"op":"SCMP_CMP_LE"}]}]}"#,
        );
        for arch in ARCHES {
            let f = compile_for(&spec, arch).unwrap();
            let d = |args| decide(&f, arch, "mmap", args);
            assert_eq!(d([1, 0, 0, 0, 0, 11]), errno(5));
            assert_eq!(d([1, 0, 0, 0, 0, 10]), RET_ALLOW);
            assert_eq!(d([1, 2, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(d([0, 2, 0, 0, 0, 99]), RET_LOG);
            // The unconditional TRAP ends the list; the ALLOW after it never applies.
            assert_eq!(d([0, 0, 0, 0, 0, 99]), libc::SECCOMP_RET_TRAP);
            assert_eq!(decide(&f, arch, "read", [3, 0, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(decide(&f, arch, "read", [4, 0, 0, 0, 0, 0]), errno(EPERM));
        }
    }

    #[test]
    fn rules_with_the_default_action_are_dropped() {
        // As in runc: an ERRNO rule equal to the default must not shadow the ALLOW after it.
        let spec = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["personality"],"action":"SCMP_ACT_ERRNO"},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        let f = compile_for(&spec, X86_64).unwrap();
        assert_eq!(decide(&f, X86_64, "personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(decide(&f, X86_64, "personality", [9, 0, 0, 0, 0, 0]), errno(EPERM));
    }

    #[test]
    fn wrong_arch_and_x32() {
        let i386 = 0x4000_0003;
        let arm = 0x4000_0028;
        let mut spec =
            parse(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#);
        let f = compile_for(&spec, X86_64).unwrap();
        assert_eq!(run(&f.program, 0, i386, NONE), KILL_PROCESS);
        assert_eq!(run(&f.program, 0, AUDIT_ARCH_AARCH64, NONE), KILL_PROCESS);
        assert_eq!(run(&f.program, X32_SYSCALL_BIT, AUDIT_ARCH_X86_64, NONE), KILL_PROCESS);
        // A tracer's "skip this call" nr -1 is not x32.
        assert_eq!(run(&f.program, u32::MAX, AUDIT_ARCH_X86_64, NONE), errno(EPERM));

        spec.architectures = vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into(), "SCMP_ARCH_X32".into()];
        let f = compile_for(&spec, X86_64).unwrap();
        assert_eq!(run(&f.program, 0, i386, NONE), errno(EPERM));
        assert_eq!(run(&f.program, X32_SYSCALL_BIT, AUDIT_ARCH_X86_64, NONE), errno(EPERM));
        assert_eq!(run(&f.program, X32_SYSCALL_BIT | 3, AUDIT_ARCH_X86_64, NONE), errno(EPERM));
        assert_eq!(run(&f.program, 0, AUDIT_ARCH_X86_64, NONE), RET_ALLOW);
        assert_eq!(run(&f.program, 0, arm, NONE), KILL_PROCESS);

        // aarch64 has no x32 check: a huge number is just unknown.
        spec.architectures = vec!["SCMP_ARCH_AARCH64".into(), "SCMP_ARCH_ARM".into()];
        let f = compile_for(&spec, AARCH64).unwrap();
        assert_eq!(run(&f.program, X32_SYSCALL_BIT, AUDIT_ARCH_AARCH64, NONE), errno(EPERM));
        assert_eq!(run(&f.program, 63, AUDIT_ARCH_AARCH64, NONE), RET_ALLOW);
        assert_eq!(run(&f.program, 63, arm, NONE), errno(EPERM));
        assert_eq!(run(&f.program, 63, AUDIT_ARCH_X86_64, NONE), KILL_PROCESS);

        // A default that allows cannot be let through unchecked on an ABI we did not compile.
        spec.default_action = "SCMP_ACT_ALLOW".into();
        spec.syscalls[0].action = "SCMP_ACT_ERRNO".into();
        let f = compile_for(&spec, AARCH64).unwrap();
        assert_eq!(run(&f.program, 63, arm, NONE), KILL_PROCESS);
        assert_eq!(run(&f.program, 63, AUDIT_ARCH_AARCH64, NONE), errno(EPERM));
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |json: &str| compile_for(&parse(json), X86_64).unwrap_err();
        assert_eq!(
            bad(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["a"],"action":"SCMP_ACT_ERRNO"},{"names":["b"],"action":"SCMP_ACT_ERRNO"},
                {"names":["c"],"action":"SCMP_ACT_ERRNO"},{"names":["d"],"action":"SCMP_ACT_FOO"}]}"#),
            r#"linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO""#
        );
        assert_eq!(bad(r#"{"defaultAction":"KILL"}"#), r#"linux.seccomp.defaultAction: unknown action "KILL""#);
        assert!(bad(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).contains("not supported"));
        assert!(bad(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#
        )
        .starts_with("linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY is not supported"));
        assert_eq!(
            bad(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO",
                "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":1,"op":"SCMP_CMP_XX"}]}]}"#),
            r#"linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_XX""#
        );
        assert_eq!(
            bad(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO",
                "args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#),
            "linux.seccomp.syscalls[0].args[0].index: 6 out of range (0-5)"
        );
        assert_eq!(
            bad(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_Z80"]}"#),
            r#"linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80""#
        );
        assert_eq!(
            bad(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","X"]}"#),
            r#"linux.seccomp.flags[1]: unsupported flag "X""#
        );
        assert_eq!(
            bad(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}"#),
            "linux.seccomp.defaultErrnoRet: 70000 out of range (0-65535)"
        );
        let f = compile_for(
            &parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"]}"#),
            X86_64,
        )
        .unwrap();
        assert_eq!(f.flags, 7);
    }

    /// A profile the size of podman's: every name the table knows, names it does not, and
    /// argument rules on every fourth syscall, with actions varying so nothing merges.
    fn big_profile(arch: Arch) -> (Seccomp, Vec<(u32, u32)>) {
        let mut rules = Vec::new();
        let mut expect = Vec::new();
        for (i, &(name, nr)) in arch.syscalls.iter().enumerate() {
            let e = u32::try_from(i % 50).unwrap() + 1;
            let args = if i % 4 == 0 {
                vec![
                    SyscallArg { index: 0, value: 7, value_two: 0, op: "SCMP_CMP_NE".into() },
                    SyscallArg { index: 1, value: 0xff, value_two: 0x10, op: "SCMP_CMP_MASKED_EQ".into() },
                    SyscallArg { index: 5, value: 1 << 40, value_two: 0, op: "SCMP_CMP_LT".into() },
                ]
            } else {
                Vec::new()
            };
            let (action, ret) = if i % 2 == 0 { ("SCMP_ACT_ALLOW", RET_ALLOW) } else { ("SCMP_ACT_ERRNO", errno(e)) };
            rules.push(SyscallRule { names: vec![name.into()], action: action.into(), errno_ret: Some(e), args });
            expect.push((nr, ret));
        }
        for i in 0..30 {
            rules.push(SyscallRule {
                names: vec![format!("made_up_{i}"), "chown32".into(), "_llseek".into()],
                action: "SCMP_ACT_ALLOW".into(),
                ..SyscallRule::default()
            });
        }
        let spec = Seccomp { default_action: "SCMP_ACT_KILL_PROCESS".into(), syscalls: rules, ..Seccomp::default() };
        (spec, expect)
    }

    #[test]
    fn big_profile_compiles_and_decides_at_both_ends() {
        for arch in ARCHES {
            let (spec, expect) = big_profile(arch);
            assert!(spec.syscalls.iter().map(|r| r.names.len()).sum::<usize>() >= 400);
            let f = compile_for(&spec, arch).unwrap();
            assert!(f.program.len() < MAX_INSNS, "{} instructions", f.program.len());
            eprintln!("big profile: {} instructions", f.program.len());
            for (i, &(nr, ret)) in expect.iter().enumerate() {
                let hit = [0, 0x10, 0, 0, 0, 5];
                assert_eq!(run(&f.program, nr, arch.audit, hit), ret, "nr {nr}");
                if i % 4 == 0 {
                    let miss = [7, 0x10, 0, 0, 0, 5];
                    assert_eq!(run(&f.program, nr, arch.audit, miss), KILL_PROCESS, "nr {nr}");
                    let miss = [0, 0x10, 0, 0, 0, 1 << 40];
                    assert_eq!(run(&f.program, nr, arch.audit, miss), KILL_PROCESS, "nr {nr}");
                }
            }
            assert_eq!(run(&f.program, 2000, arch.audit, NONE), KILL_PROCESS);
        }
    }

    #[test]
    fn plain_allow_list_of_400_names() {
        for arch in ARCHES {
            let mut names: Vec<String> = arch.syscalls.iter().map(|(n, _)| n.to_string()).collect();
            names.retain(|n| n != "kexec_load" && n != "reboot");
            while names.len() < 400 {
                names.push(format!("unknown_{}", names.len()));
            }
            let spec = Seccomp {
                default_action: "SCMP_ACT_ERRNO".into(),
                syscalls: vec![SyscallRule { names, action: "SCMP_ACT_ALLOW".into(), ..SyscallRule::default() }],
                ..Seccomp::default()
            };
            let f = compile_for(&spec, arch).unwrap();
            let first = arch.syscalls[0].0;
            let last = arch.syscalls[arch.syscalls.len() - 1].0;
            assert_eq!(decide(&f, arch, first, NONE), RET_ALLOW);
            assert_eq!(decide(&f, arch, last, NONE), RET_ALLOW);
            assert_eq!(decide(&f, arch, "kexec_load", NONE), errno(EPERM));
            assert_eq!(decide(&f, arch, "reboot", NONE), errno(EPERM));
            // Contiguous allowed numbers share one interval, so this stays tiny.
            assert!(f.program.len() < 40, "{} instructions", f.program.len());
            eprintln!("400-name allow list: {} instructions", f.program.len());
        }
    }

    #[test]
    fn long_argument_rules_use_trampolines() {
        // 60 conditions in one rule put the fail target far beyond 255 instructions.
        let args: Vec<SyscallArg> = (0..60)
            .map(|i| SyscallArg { index: i % 6, value: 1 << 33, value_two: 0, op: "SCMP_CMP_LT".into() })
            .collect();
        let spec = Seccomp {
            default_action: "SCMP_ACT_ALLOW".into(),
            syscalls: vec![SyscallRule {
                names: vec!["read".into()],
                action: "SCMP_ACT_ERRNO".into(),
                errno_ret: Some(3),
                args,
            }],
            ..Seccomp::default()
        };
        let f = compile_for(&spec, X86_64).unwrap();
        assert!(f.program.len() > 300);
        assert_eq!(decide(&f, X86_64, "read", [1; 6]), errno(3));
        assert_eq!(decide(&f, X86_64, "read", [1, 1, 1, 1, 1, 1 << 34]), RET_ALLOW);
    }

    #[test]
    fn default_profile_decisions() {
        for (arch, aarch64) in [(X86_64, false), (AARCH64, true)] {
            let f = compile_for(&docker_profile(aarch64), arch).unwrap();
            let d = |name, args| decide(&f, arch, name, args);
            for name in ["read", "write", "execve", "openat", "exit_group", "futex", "chroot", "ptrace"] {
                assert_eq!(d(name, NONE), RET_ALLOW, "{name}");
            }
            for name in ["kexec_load", "mount", "unshare", "setns", "bpf", "reboot", "init_module", "open_by_handle_at"]
            {
                assert_eq!(d(name, NONE), errno(EPERM), "{name}");
            }
            let newuser = 0x1000_0000;
            assert_eq!(d("unshare", [newuser, 0, 0, 0, 0, 0]), errno(EPERM));
            // clone's flags: fork-like allowed, any CLONE_NEW* denied.
            let sigchld = 17;
            assert_eq!(d("clone", [sigchld | 0x0100_0000 | 0x0020_0000, 0, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(d("clone", [sigchld | newuser, 0, 0, 0, 0, 0]), errno(EPERM));
            assert_eq!(d("clone", [sigchld | 0x2000_0000, 0, 0, 0, 0, 0]), errno(EPERM));
            assert_eq!(d("clone3", NONE), errno(ENOSYS));
            assert_eq!(d("socket", [2, 1, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(d("socket", [AF_VSOCK, 1, 0, 0, 0, 0]), errno(EPERM));
            assert_eq!(d("personality", [0, 0, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(d("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(d("personality", [0x0040_0000, 0, 0, 0, 0, 0]), errno(EPERM));
            if aarch64 {
                assert_eq!(run(&f.program, 63, 0x4000_0028, NONE), errno(EPERM));
            } else {
                assert_eq!(d("arch_prctl", NONE), RET_ALLOW);
                assert_eq!(d("iopl", NONE), errno(EPERM));
                assert_eq!(run(&f.program, X32_SYSCALL_BIT, arch.audit, NONE), errno(EPERM));
            }
            eprintln!(
                "default profile ({}): {} instructions",
                if aarch64 { "aarch64" } else { "x86_64" },
                f.program.len()
            );
        }
        assert!(compile(&default_profile()).is_ok());
    }

    /// Forks; the child installs `filter` (after no_new_privs) and runs `checks`, whose nonzero
    /// result becomes its exit code. Filters are compiled before the fork: the child of a
    /// threaded test runner should not allocate.
    fn in_child(filter: &Filter, checks: fn() -> i32) {
        use nix::sys::wait::{waitpid, WaitStatus};
        use nix::unistd::{fork, ForkResult};
        // SAFETY: the child only makes raw syscalls and leaves with _exit.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes integer arguments only.
                let code = if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                    100
                } else if filter.install().is_err() {
                    101
                } else {
                    checks()
                };
                // SAFETY: _exit ends the child without running the parent's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                let status = waitpid(child, None).unwrap();
                assert_eq!(status, WaitStatus::Exited(child, 0), "child check failed");
            }
        }
    }

    /// errno after a failed raw syscall.
    fn last_errno() -> i32 {
        io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// A real filter: getppid fails with ENOSYS and uname(NULL) with E2BIG, other calls work.
    #[test]
    fn installed_filter_returns_errno_in_child() {
        let spec = parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[
                {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                {"names":["uname"],"action":"SCMP_ACT_ERRNO","errnoRet":7,"args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        in_child(&compile(&spec).unwrap(), || {
            // SAFETY: getppid takes no arguments.
            if unsafe { libc::syscall(libc::SYS_getppid) } != -1 || last_errno() != 38 {
                return 12;
            }
            // SAFETY: getpid takes no arguments.
            if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
                return 13;
            }
            // SAFETY: uname(NULL) is denied by the filter before the kernel would use it.
            if unsafe { libc::syscall(libc::SYS_uname, 0usize) } != -1 || last_errno() != 7 {
                return 14;
            }
            // SAFETY: all-zero bytes are a valid utsname.
            let mut buf: libc::utsname = unsafe { std::mem::zeroed() };
            // SAFETY: `buf` is a valid, writable utsname.
            if unsafe { libc::uname(&mut buf) } != 0 {
                return 15;
            }
            0
        });
    }

    /// The kernel accepts the default profile and enforces it as the interpreter says.
    #[test]
    fn installed_default_profile() {
        in_child(&compile(&default_profile()).unwrap(), || {
            // SAFETY: getpid takes no arguments.
            if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
                return 20;
            }
            // SAFETY: unshare takes a flags integer.
            if unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) } != -1 || last_errno() != 1 {
                return 21;
            }
            // SAFETY: clone3 with a null argument is denied before the kernel reads it.
            if unsafe { libc::syscall(libc::SYS_clone3, 0usize, 0usize) } != -1 || last_errno() != 38 {
                return 22;
            }
            // SAFETY: socket takes integers; the returned fd (if any) is closed.
            let fd = unsafe { libc::syscall(libc::SYS_socket, libc::AF_VSOCK, libc::SOCK_STREAM, 0) };
            if fd != -1 || last_errno() != 1 {
                return 23;
            }
            // SAFETY: personality(0xffffffff) only queries the persona.
            if unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffffu32) } == -1 {
                return 24;
            }
            0
        });
    }

    /// The kernel accepts a program full of trampolines, and both ends of a 400-name profile.
    #[test]
    fn installed_big_programs() {
        let args: Vec<SyscallArg> = (0..60)
            .map(|i| SyscallArg { index: i % 6, value: 1 << 33, value_two: 0, op: "SCMP_CMP_LT".into() })
            .collect();
        let spec = Seccomp {
            default_action: "SCMP_ACT_ALLOW".into(),
            syscalls: vec![SyscallRule {
                names: vec!["getppid".into()],
                action: "SCMP_ACT_ERRNO".into(),
                errno_ret: Some(3),
                args,
            }],
            ..Seccomp::default()
        };
        in_child(&compile(&spec).unwrap(), || {
            // SAFETY: getppid ignores its (unused) argument registers.
            if unsafe { libc::syscall(libc::SYS_getppid, 1, 1, 1, 1, 1, 1) } != -1 || last_errno() != 3 {
                return 30;
            }
            0
        });
        let (mut spec, _) = big_profile(NATIVE.unwrap());
        // Keep the child alive: allow what the interpreter test expects to be killed.
        spec.default_action = "SCMP_ACT_ERRNO".into();
        spec.default_errno_ret = Some(9);
        for rule in &mut spec.syscalls {
            if ["exit_group", "exit", "getpid", "getppid", "seccomp", "prctl"].contains(&rule.names[0].as_str()) {
                *rule = SyscallRule {
                    names: rule.names.clone(),
                    action: "SCMP_ACT_ALLOW".into(),
                    ..SyscallRule::default()
                };
            }
        }
        let filter = compile(&spec).unwrap();
        assert!(filter.program.len() > 255);
        in_child(&filter, || {
            // SAFETY: getpid takes no arguments.
            if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
                return 40;
            }
            0
        });
    }
}
