#!/bin/bash
# The main job, end to end on a fresh machine with no network beyond Debian's packages: build tug,
# start its daemon on a private socket and data root, load a busybox image made from Debian's
# busybox-static, and run a container through the daemon with the tug client (the docker CLI
# works the same way against the socket). Then the same container through the bare OCI runtime.
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
chmod 0755 "$work"
"$bin" install "$work/bin" >/dev/null
export PATH=$work/bin:$PATH DOCKER_HOST=unix://$work/tugd.sock
tugd -H "$DOCKER_HOST" --data-root "$work/root" --pidfile "$work/tugd.pid" 2>"$work/tugd.log" &
daemon=$!
cleanup() {
    tug rm -f $(tug ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do [ -S "$work/tugd.sock" ] && break; sleep 0.05; done

if [ "$#" -eq 0 ]; then
    set -- sh -c 'echo "hello from a tug container: pid $$ on $(hostname)"; id; grep CapEff /proc/self/status'
fi
"$here/busybox-image.sh" "$work/busybox.tar" >/dev/null
echo "\$ tug load -i busybox.tar" >&2
tug load -i "$work/busybox.tar"
echo "\$ tug run --rm --network none localhost/busybox $*" >&2
tug run --rm --network none localhost/busybox "$@"

# The same through the OCI runtime alone, as podman or containerd would call it.
"$here/busybox-rootfs.sh" "$work/bundle/rootfs"
(cd "$work/bundle" && tug-runtime spec)
python3 - "$work/bundle/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
c = json.load(open(path))
c["process"]["args"] = args
c["process"]["terminal"] = False
json.dump(c, open(path, "w"), indent=2)
PY
echo "\$ tug-runtime run --bundle bundle demo" >&2
tug-runtime --root "$work/state" run --bundle "$work/bundle" "demo-$$"
