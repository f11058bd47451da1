#!/bin/bash
# Installs what the tests and the demo need on a Debian machine, if anything is missing:
# busybox-static (the test image's only binary), podman and its helpers, runc (benchmark peer),
# skopeo, docker-registry (distribution 2.8, the registry tests' peer; the tests run it on a
# loopback port with their own config), openssl and curl (the registry's TLS tests), docker-py, and the musl target and musl-gcc (ring, under
# rustls, has C code) for the static build. The docker CLI 28 client is expected at /usr/local/bin/docker. Quick when everything is present.
set -euo pipefail

need=()
[ -x /bin/busybox ] || need+=(busybox-static)
for cmd in podman conmon runc skopeo docker-registry script readelf python3 bc musl-gcc openssl curl; do
    command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing ${need[*]}; run as root to install them" >&2
        exit 2
    fi
    echo "install-deps: installing packages for: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # podman's helpers are listed explicitly so that recommends can stay off.
    apt-get install -y -qq --no-install-recommends \
        busybox-static podman conmon runc skopeo docker-registry uidmap golang-github-containers-common \
        netavark aardvark-dns containernetworking-plugins catatonit fuse-overlayfs slirp4netns \
        util-linux bsdutils coreutils procps iproute2 tar file binutils bc python3 ca-certificates musl-tools openssl curl \
        >/dev/null
fi

# docker-py, for the test that drives the daemon from Python.
if ! python3 -c 'import docker' >/dev/null 2>&1; then
    echo "install-deps: installing docker-py from PyPI" >&2
    python3 -m pip install -q docker >&2 || pip3 install -q docker >&2 ||
        { echo "install-deps: cannot install docker-py" >&2; exit 2; }
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH=$HOME/.cargo/bin:$PATH
fi
if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup target list --installed 2>/dev/null || true)
    if ! grep -qx x86_64-unknown-linux-musl <<<"$installed"; then
        rustup target add x86_64-unknown-linux-musl >&2 || echo "install-deps: no musl target; the static build falls back to glibc" >&2
    fi
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >&2 || true
fi
command -v cargo >/dev/null 2>&1 || { echo "install-deps: cargo not found; install Rust with rustup" >&2; exit 2; }
