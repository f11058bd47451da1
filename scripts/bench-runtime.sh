#!/bin/bash
# Container start-to-exit latency: `RUNTIME run ID` of /bin/true in a busybox bundle.
#
#   scripts/bench-runtime.sh [TUG]      TUG defaults to target/release/tug
#
# Times N runs (default 25, env N) after 2 warm-up runs for: tug as `tug-runtime` (a symlink to TUG,
# so any runc-compatible binary can stand in), runc, and two floors that no runtime can beat — a plain
# fork+exec of /bin/true and `unshare -fmpiun --mount-proc` of it. Prints the machine, runc's version
# and a markdown table of medians in milliseconds. Both runtimes run the same bundle: the config.json
# `tug-runtime spec` writes (Docker's defaults: pid, net, ipc, uts, mount and cgroup namespaces,
# masked and read-only paths, 14 capabilities, a cgroup with device rules), with args ["/bin/true"]
# and terminal false. The runtimes take turns run by run, so neither gets a quieter machine. Needs root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
tug=${1:-$top/target/release/tug}
case $tug in
/*) ;;
*/*) tug=$PWD/$tug ;;
*) tug=$(command -v "$tug") ;;
esac
n=${N:-25}
runc=${RUNC:-$(command -v runc || true)}
if [ ! -x "$tug" ]; then
    echo "$0: $tug not found; build it with cargo build --release, or pass a runc-compatible binary" >&2
    exit 2
fi
if [ -z "$runc" ]; then
    echo "$0: runc not found (install the runc package)" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-runtime.XXXXXX")
chmod 0755 "$work"
cleanup() {
    # State a failed run may have left behind; the runtimes remove their own on success.
    for r in "$work/tug-runtime" "$runc"; do
        for id in $("$r" --root "$work/state-$(basename "$r")" list -q 2>/dev/null); do
            "$r" --root "$work/state-$(basename "$r")" delete -f "$id" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$work"
}
trap cleanup EXIT

ln -s "$tug" "$work/tug-runtime"
"$here/busybox-rootfs.sh" "$work/rootfs"

# bundle NAME RUNTIME: $work/bundle-NAME with RUNTIME's spec, using the shared read-only rootfs
# (by absolute path: runtimes refuse a rootfs that is a symlink).
bundle() {
    local b=$work/bundle-$1
    mkdir -p "$b"
    (cd "$b" && "$2" spec)
    python3 - "$b/config.json" "$work/rootfs" <<'EOF'
import json, sys
path = sys.argv[1]
with open(path) as f:
    c = json.load(f)
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["root"] = {"path": sys.argv[2], "readonly": True}
with open(path, "w") as f:
    json.dump(c, f, indent=2)
EOF
}
bundle shared "$work/tug-runtime"

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r) $(uname -m)"
echo "runc: $("$runc" --version | head -1) ($runc)"
echo "tug-runtime: $(timeout 10 "$work/tug-runtime" --version 2>&1 | head -1) ($tug)"
echo "runs: $n each, after 2 warm-up runs"
echo

python3 - "$n" "$work" "$runc" <<'EOF'
import os, statistics, subprocess, sys, time

n, work, runc = int(sys.argv[1]), sys.argv[2], sys.argv[3]
tug = os.path.join(work, "tug-runtime")

def runtime_cmd(binary, name):
    def cmd(i):
        return [binary, "--root", os.path.join(work, "state-" + os.path.basename(binary)),
                "run", "--bundle", os.path.join(work, "bundle-shared"), "bench-%s-%d" % (name, i)]
    return cmd

cases = [
    ("tug-runtime", runtime_cmd(tug, "tug")),
    ("runc", runtime_cmd(runc, "runc")),
    ("floor: unshare -fmpiun --mount-proc", lambda i: ["unshare", "-fmpiun", "--mount-proc", "/bin/true"]),
    ("floor: fork+exec /bin/true", lambda i: ["/bin/true"]),
]

times = {name: [] for name, _ in cases}
failed = set()
for i in range(n + 2):
    for name, cmd in cases:
        if name in failed:
            continue
        t0 = time.perf_counter_ns()
        p = subprocess.run(cmd(i), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        t1 = time.perf_counter_ns()
        if p.returncode != 0:
            sys.stderr.write("%s: %s exited %d: %s\n" % (name, " ".join(cmd(i)), p.returncode,
                                                        p.stderr.decode(errors="replace").strip()))
            failed.add(name)
            continue
        if i >= 2:
            times[name].append((t1 - t0) / 1e6)
rows = []
for name, _ in cases:
    t = times[name]
    if name in failed or len(t) != n:
        rows.append((name, None, None, None))
    else:
        rows.append((name, statistics.median(t), min(t), max(t)))

print("| runtime | median ms | min ms | max ms | runs |")
print("|---|---:|---:|---:|---:|")
for name, med, lo, hi in rows:
    if med is None:
        print("| %s | failed | | | |" % name)
    else:
        print("| %s | %.2f | %.2f | %.2f | %d |" % (name, med, lo, hi, n))
sys.exit(1 if failed else 0)
EOF
