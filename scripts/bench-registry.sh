#!/bin/bash
# Registry benchmarks: push and pull through the real docker CLI (tugd with `tug registry serve`,
# Debian's dockerd with its docker-registry), concurrent blob GETs and registry memory, both pairs
# in the same run. See scripts/bench-registry.py.
#
#   scripts/bench-registry.sh [TUG]      TUG defaults to the static build (scripts/build-static.sh)
#
# Environment: N (push/pull runs per series, default 5), RANDOM_MIB (default 100), TEXT_MIB
# (default 200), CLIENTS (default 16), GETS (per client per round, default 4), ROUNDS (default 7),
# BLOB_MIB (default 64).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
tug=${1:-$top/target/x86_64-unknown-linux-musl/release/tug}
[ -x "$tug" ] || { echo "$0: $tug not found (scripts/build-static.sh)" >&2; exit 2; }
for c in docker dockerd docker-registry curl; do
    command -v "$c" >/dev/null || { echo "$0: $c is required (scripts/install-deps.sh)" >&2; exit 2; }
done
exec python3 "$here/bench-registry.py" --tug "$tug" -n "${N:-5}" --random-mib "${RANDOM_MIB:-100}" \
    --text-mib "${TEXT_MIB:-200}" --clients "${CLIENTS:-16}" --gets "${GETS:-4}" --rounds "${ROUNDS:-7}" \
    --blob-mib "${BLOB_MIB:-64}"
