#!/bin/bash
# The main job, end to end on a fresh machine with no network beyond Debian's packages: build tug,
# make a busybox root filesystem, and run a container in it through `tug runtime run`.
#
#   scripts/demo.sh [COMMAND...]      default: a few lines from inside the container
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
if [ "$(id -u)" != 0 ]; then
    echo "demo: containers need root; run: sudo $0" >&2
    exit 2
fi
"$here/install-deps.sh"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH=$HOME/.cargo/bin:$PATH
fi
bin=$("$here/build-static.sh" | head -1)

work=$(mktemp -d "${TMPDIR:-/tmp}/tug-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
"$bin" install "$work/bin" >/dev/null
"$here/busybox-rootfs.sh" "$work/bundle/rootfs"
(cd "$work/bundle" && "$work/bin/tug-runtime" spec)
if [ "$#" -eq 0 ]; then
    set -- sh -c 'echo "hello from a tug container: pid $$ on $(hostname)"; id; grep CapEff /proc/self/status'
fi
python3 - "$work/bundle/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
c = json.load(open(path))
c["process"]["args"] = args
c["process"]["terminal"] = False
json.dump(c, open(path, "w"), indent=2)
PY
echo "\$ tug-runtime run --bundle $work/bundle demo" >&2
"$work/bin/tug-runtime" --root "$work/state" run --bundle "$work/bundle" "demo-$$"
