#!/bin/bash
# Engine benchmarks: tugd through the real docker CLI, with Debian's dockerd (and its containerd)
# and podman measured in the same run when they are installed. See scripts/bench-engine.py.
#
#   scripts/bench-engine.sh [TUG]      TUG defaults to the static build (scripts/build-static.sh)
#
# Environment: N (runs per measurement, default 20), LOAD_MIB (default 300), CP_MIB (default 100),
# ONLY (a comma list of run,exec,cp,load,ps,mem; default all).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
tug=${1:-$top/target/x86_64-unknown-linux-musl/release/tug}
[ -x "$tug" ] || { echo "$0: $tug not found (scripts/build-static.sh)" >&2; exit 2; }
command -v docker >/dev/null || { echo "$0: the docker CLI is required" >&2; exit 2; }
peers=()
command -v dockerd >/dev/null && peers+=(--dockerd)
command -v podman >/dev/null && peers+=(--podman)
exec python3 "$here/bench-engine.py" --tug "$tug" -n "${N:-20}" --load-mib "${LOAD_MIB:-300}" --only "${ONLY:-}" \
    --cp-mib "${CP_MIB:-100}" "${peers[@]}"
