#!/bin/bash
# Engine benchmarks through the real docker CLI against tugd:
#   - `docker run --rm --network none busybox true`, end to end (N runs, default 20)
#   - `docker ps -a` with 100 containers
#   - daemon RSS idle, and with 100 running containers including every per-container process
#     (monitor + container), from /proc/<pid>/status VmRSS
#
#   scripts/bench-engine.sh [TUG]      TUG defaults to the static build (scripts/build-static.sh);
#                                      needs root, busybox-static and the docker CLI
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
tug=${1:-$top/target/x86_64-unknown-linux-musl/release/tug}
n=${N:-20}
[ -x "$tug" ] || { echo "$0: $tug not found (cargo build --release)" >&2; exit 2; }
command -v docker >/dev/null || { echo "$0: the docker CLI is required" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-engine.XXXXXX")
sock=$work/tugd.sock
export DOCKER_HOST=unix://$sock DOCKER_CONFIG=$work/docker-config
"$tug" daemon -H "unix://$sock" --data-root "$work/root" --pidfile "$work/tugd.pid" 2>"$work/tugd.log" &
dpid=$!
cleanup() {
    docker rm -f $(docker ps -aq) >/dev/null 2>&1 || true
    kill "$dpid" 2>/dev/null || true
    wait "$dpid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done
"$here/busybox-image.sh" "$work/busybox.tar" >/dev/null
docker load -i "$work/busybox.tar" >/dev/null
img=localhost/busybox

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# Proportional set size: shared pages (the one executable every monitor maps) divided among
# their users, so a sum over processes is the memory they really take.
pss_kb() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
idle=$(rss_kb "$dpid")

python3 - "$n" "$img" <<'PY'
import statistics, subprocess, sys, time
n, img = int(sys.argv[1]), sys.argv[2]
def median_ms(cmd, runs):
    t = []
    for i in range(runs + 2):
        t0 = time.perf_counter_ns()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        if i >= 2:
            t.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(t), min(t), max(t)
m = median_ms(["docker", "run", "--rm", "--network", "none", img, "true"], n)
print("| `docker run --rm --network none busybox true` | %.1f | %.1f | %.1f | %d |" % (m + (n,)))
PY

for i in $(seq 1 100); do docker run -d --network none --name "b$i" "$img" sleep 100000 >/dev/null; done
python3 - "$n" <<'PY'
import statistics, subprocess, sys, time
n = int(sys.argv[1])
t = []
for i in range(n + 2):
    t0 = time.perf_counter_ns()
    subprocess.run(["docker", "ps", "-a"], check=True, stdout=subprocess.DEVNULL)
    if i >= 2:
        t.append((time.perf_counter_ns() - t0) / 1e6)
print("| `docker ps -a`, 100 containers | %.1f | %.1f | %.1f | %d |" % (statistics.median(t), min(t), max(t), n))
PY
busy=$(rss_kb "$dpid")
per=0
count=0
for m in $(pgrep -f "^tug-monitor .*--runtime-root $work/root" || true); do
    per=$((per + $(pss_kb "$m")))
    for c in $(ps -o pid= --ppid "$m"); do per=$((per + $(pss_kb "$c"))); done
    count=$((count + 1))
done
echo
echo "tugd RSS idle: $((idle / 1024)) MiB ($idle kB); with 100 running containers: $((busy / 1024)) MiB ($busy kB)"
echo "per running container (monitor + container process, PSS): $((per / (count > 0 ? count : 1))) kB over $count containers"
