#!/bin/bash
# The project's one test command. Run it as root from anywhere in the tree:
#
#   scripts/test.sh
#
# Steps: install missing packages (scripts/install-deps.sh), cargo fmt --check, cargo clippy
# --all-targets -D warnings, cargo build, cargo test, the podman scenarios (tests/podman.sh) against
# target/debug/tug as `tug-runtime`, and the static release build (scripts/build-static.sh). A failing step does
# not stop the independent ones after it; the build failing skips what needs the binary. Prints a
# summary and exits non-zero if anything failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
cd "$top"

if [ "$(id -u)" != 0 ]; then
    echo "warning: not root; tests that need root (namespaces, mounts, cgroups, podman) will fail" >&2
fi

results=()
status=0
step() {
    # step NAME CMD...: runs CMD, records the result.
    local name=$1 start rc
    shift
    echo
    echo "==> $name: $*"
    start=$(date +%s)
    "$@"
    rc=$?
    if [ "$rc" = 0 ]; then
        results+=("ok      $name ($(($(date +%s) - start))s)")
    else
        results+=("FAILED  $name (exit $rc, $(($(date +%s) - start))s)")
        status=1
    fi
    return "$rc"
}
skip() {
    results+=("FAILED  $1 (not run: $2)")
    status=1
}

# A fresh machine gets its packages (podman, busybox-static, runc, skopeo, the musl target) here.
"$here/install-deps.sh" || { echo "scripts/test.sh: cannot install dependencies" >&2; exit 2; }
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH=$HOME/.cargo/bin:$PATH
fi

step "cargo fmt --check" cargo fmt --check
step "cargo clippy" cargo clippy --all-targets -- -D warnings
if step "cargo build" cargo build; then
    # The engine tests (a daemon and many containers each) run on their own, one at a time, so
    # they do not starve a two-core machine together with the rest.
    step "cargo test" cargo test -- --skip engine::
    step "cargo test (engine, serial)" cargo test --test it engine:: -- --test-threads=1

    target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') ||
        target_dir=$top/target
    bin=$target_dir/debug/tug
    links=$(mktemp -d "${TMPDIR:-/tmp}/tug-test.XXXXXX")
    trap 'rm -rf "$links"' EXIT
    chmod 0755 "$links"
    ln -s "$bin" "$links/tug-runtime"
    step "podman scenarios" "$top/tests/podman.sh" "$links/tug-runtime"
    step "static build (< 8 MiB, no dynamic section)" "$here/build-static.sh"
else
    skip "cargo test" "build failed"
    skip "podman scenarios" "build failed"
fi

echo
echo "==> summary"
printf '  %s\n' "${results[@]}"
if [ "$status" = 0 ]; then
    echo "all passed"
else
    echo "some steps failed"
fi
exit "$status"
