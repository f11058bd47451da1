#!/usr/bin/env bash
# Builds the release executable statically linked and stripped: the musl target when it is
# installed, else glibc with +crt-static. Prints the path and size and proves it is static.
set -euo pipefail
cd "$(dirname "$0")/.."

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export TUG_COMMIT="$commit"
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    target=x86_64-unknown-linux-musl
    # ring (TLS for the registry client) compiles C and assembly: with musl's gcc wrapper.
    if [ -z "${CC_x86_64_unknown_linux_musl:-}" ] && command -v musl-gcc >/dev/null 2>&1; then
        export CC_x86_64_unknown_linux_musl=musl-gcc
    fi
    cargo build --release --locked --target "$target" >&2
else
    target=x86_64-unknown-linux-gnu
    echo "musl target missing: building glibc +crt-static" >&2
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" >&2
fi
bin="target/$target/release/tug"

# Static means: no program interpreter and no dynamic section.
if readelf -l "$bin" | grep -q 'Requesting program interpreter' || readelf -d "$bin" 2>/dev/null | grep -q 'NEEDED'; then
    echo "error: $bin is dynamically linked" >&2
    exit 1
fi
size=$(stat -c %s "$bin")
limit=$((8 * 1024 * 1024))
printf '%s\nstatic: yes\nsize: %d bytes (%.2f MiB)\n' "$bin" "$size" "$(echo "$size / 1048576" | bc -l)"
if [ "$size" -gt "$limit" ]; then
    echo "error: $bin is larger than 8 MiB" >&2
    exit 1
fi
