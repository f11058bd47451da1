#!/bin/bash
# Podman scenarios for an OCI runtime.
#
#   tests/podman.sh RUNTIME
#
# RUNTIME is the path of a runc-compatible binary (for tug, a symlink named tug-runtime to the tug
# executable; for comparison, runc itself). Every podman call uses `--runtime RUNTIME` and a private
# --root/--runroot/--tmpdir under a temporary directory, so nothing outside it is touched; it is
# removed on exit. The busybox image comes from scripts/busybox-image.sh.
#
# Prints one `ok - NAME` or `not ok - NAME` line per check (details of failures on `# ` lines) and
# exits 1 if any check failed, 2 if the setup itself failed.
#
# Environment: PODMAN (default podman), PODMAN_CGROUP_MANAGER (default cgroupfs unless systemd is
# pid 1), PODMAN_STORAGE_DRIVER (default: podman's choice), KEEP=1 keeps the temporary directory.
set -uo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 RUNTIME" >&2
    exit 2
fi
runtime=$1
# Absolute, but symlinks kept: the runtime may choose what it is from its own name.
case $runtime in
/*) ;;
*/*) runtime=$PWD/$runtime ;;
*) runtime=$(command -v "$runtime") || {
    echo "$0: runtime $1 not found" >&2
    exit 2
} ;;
esac
if [ ! -x "$runtime" ]; then
    echo "$0: runtime $runtime is not executable" >&2
    exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
podman_bin=${PODMAN:-podman}
work=$(mktemp -d "${TMPDIR:-/tmp}/podman-test.XXXXXX")
chmod 0755 "$work"

if [ -z "${PODMAN_CGROUP_MANAGER:-}" ]; then
    if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
        PODMAN_CGROUP_MANAGER=systemd
    else
        PODMAN_CGROUP_MANAGER=cgroupfs
    fi
fi

P=("$podman_bin" --runtime "$runtime" --root "$work/root" --runroot "$work/runroot"
    --tmpdir "$work/tmp" --cgroup-manager "$PODMAN_CGROUP_MANAGER" --events-backend file)
if [ -n "${PODMAN_STORAGE_DRIVER:-}" ]; then
    P+=(--storage-driver "$PODMAN_STORAGE_DRIVER")
fi
IMG=localhost/busybox:latest
# Root may lack CAP_SYS_RESOURCE (in a sandbox or a container), so podman's default rlimits, which
# may exceed the hard limits, are replaced by ones that fit common hard limits.
RUN=("${P[@]}" run --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
CTR=tugtest-detached

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    timeout -k 5 60 "${P[@]}" rm -af -t 0 >/dev/null 2>&1
    timeout -k 5 60 "${P[@]}" system reset -f >/dev/null 2>&1
    # Anything podman left mounted below the work directory, deepest first.
    awk -v w="$work" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while IFS= read -r m; do umount -l "$m" 2>/dev/null; done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "# kept $work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
failures=()
ok() {
    passed=$((passed + 1))
    echo "ok - $1"
}
notok() {
    failed=$((failed + 1))
    failures+=("$1")
    echo "not ok - $1"
    shift
    local line
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/#   /'
    done
    if [ -n "${out+x}" ]; then
        echo "#   exit code: $rc"
        printf '%s\n' "$out" | sed 's/^/#   stdout: /'
        sed 's/^/#   stderr: /' "$work/stderr" 2>/dev/null
    fi
}

# t SECONDS CMD...: runs CMD bounded in time; sets out (stdout, final newline stripped), rc, and
# leaves stderr in $work/stderr. 124/137 from timeout means it did not finish in time.
t() {
    local secs=$1
    shift
    out=$(timeout -k 5 "$secs" "$@" 2>"$work/stderr")
    rc=$?
}
err() { cat "$work/stderr"; }

# check NAME EXPECTED_RC EXPECTED_STDOUT: compares the last t's result.
check() {
    if [ "$rc" = "$2" ] && [ "$out" = "$3" ]; then
        ok "$1"
    else
        notok "$1" "expected exit code $2 and stdout: $3"
    fi
}

# pty SECONDS COMMAND_STRING: runs the shell command through script(1), i.e. on a real terminal;
# sets out (CR and NUL removed) and rc. script's stdin is a pipe that stays open (nothing is typed):
# with stdin at EOF, `podman run -it` sometimes ends before it has copied the container's output.
pty() {
    local secs=$1 holder fd
    exec {fd}< <(exec sleep $((secs + 30)))
    holder=$!
    out=$(SHELL=/bin/sh timeout -k 5 "$secs" script -qec "$2" /dev/null <&"$fd" 2>"$work/stderr" |
        tr -d '\r\000')
    rc=${PIPESTATUS[0]}
    exec {fd}<&-
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
}
quote() { printf '%q ' "$@"; }

echo "# runtime: $runtime ($(timeout 10 "$runtime" --version 2>&1 | head -1))"
echo "# podman: $("$podman_bin" --version 2>&1), cgroup manager $PODMAN_CGROUP_MANAGER"

# --- setup ---------------------------------------------------------------------------------------
if ! "$top/scripts/busybox-image.sh" "$work/busybox.tar" "$IMG" >"$work/stderr" 2>&1; then
    echo "not ok - build busybox image"
    sed 's/^/#   /' "$work/stderr"
    exit 2
fi
t 120 "${P[@]}" load -i "$work/busybox.tar"
if [ "$rc" != 0 ]; then
    notok "podman load busybox image"
    exit 2
fi
ok "podman load busybox image"

# --- basics --------------------------------------------------------------------------------------
t 60 "${RUN[@]}" --rm "$IMG" echo hello
check "run echo hello" 0 hello

t 60 "${RUN[@]}" --rm "$IMG" sh -c 'exit 3'
check "exit code 3 propagated" 3 ""

t 60 "${RUN[@]}" --rm -e FOO=bar "$IMG" sh -c 'echo $FOO'
check "env -e FOO=bar" 0 bar

t 60 "${RUN[@]}" --rm -w /tmp "$IMG" pwd
check "workdir -w /tmp" 0 /tmp

t 60 "${RUN[@]}" --rm --user 1000:1000 "$IMG" sh -c 'id -u; id -g'
check "user --user 1000:1000" 0 $'1000\n1000'

t 60 "${RUN[@]}" --rm --hostname tugtest "$IMG" hostname
check "hostname --hostname tugtest" 0 tugtest

# --- read-only rootfs ----------------------------------------------------------------------------
t 60 "${RUN[@]}" --rm --read-only "$IMG" touch /x
# Messages are matched with busybox's prefix so that a runtime error cannot pass for the result.
if [ "$rc" = 1 ] && grep -q 'touch: /x: Read-only file system' "$work/stderr"; then
    ok "read-only: touch /x fails"
else
    notok "read-only: touch /x fails" "expected exit code 1 and 'touch: /x: Read-only file system'"
fi
# podman's --read-only-tmpfs (default true) mounts tmpfs on /tmp, /var/tmp and /run.
t 60 "${RUN[@]}" --rm --read-only "$IMG" sh -c 'touch /tmp/x /var/tmp/x /run/x && echo writable'
check "read-only: /tmp /var/tmp /run writable (tmpfs)" 0 writable

# --- resources -----------------------------------------------------------------------------------
# ash keeps a command substitution's whole output in memory: ~100 MB against a 32 MB limit.
t 120 "${RUN[@]}" --rm --memory 32m "$IMG" \
    sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived ${#x}'
if [ "$rc" = 137 ] && [[ $out != *survived* ]]; then
    ok "memory 32m: allocating 100 MB is OOM-killed (137)"
else
    notok "memory 32m: allocating 100 MB is OOM-killed (137)" "expected exit code 137, no 'survived'"
fi
# The same allocation without a limit survives, so the limit is what killed it.
t 120 "${RUN[@]}" --rm "$IMG" sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived ${#x}'
check "memory: same allocation without limit survives" 0 "survived 100000000"

start=$(date +%s)
t 90 "${RUN[@]}" --rm --pids-limit 10 "$IMG" sh -c 'for i in $(seq 1 50); do sleep 5 & done; wait'
elapsed=$(($(date +%s) - start))
if [ "$rc" -lt 124 ] && [ "$elapsed" -lt 60 ] && grep -q "^sh: can't fork" "$work/stderr"; then
    ok "pids-limit 10: fork bomb gets 'can't fork' and ends (${elapsed}s)"
else
    notok "pids-limit 10: fork bomb gets 'can't fork' and ends" \
        "took ${elapsed}s; expected 'sh: can't fork' and an exit code below 124"
fi
t 60 "${RUN[@]}" --rm --pids-limit 100 "$IMG" sh -c 'for i in $(seq 1 50); do sleep 1 & done; wait; echo forked'
check "pids-limit 100: 50 children fork fine" 0 forked

# --- capabilities --------------------------------------------------------------------------------
t 60 "${RUN[@]}" --rm --cap-drop ALL "$IMG" chown 1000 /tmp
if [ "$rc" = 1 ] && grep -q 'chown: /tmp: Operation not permitted' "$work/stderr"; then
    ok "cap-drop ALL: chown fails with EPERM"
else
    notok "cap-drop ALL: chown fails with EPERM" "expected exit code 1 and 'chown: /tmp: Operation not permitted'"
fi
t 60 "${RUN[@]}" --rm "$IMG" sh -c 'chown 1000 /tmp && stat -c %u /tmp'
check "default caps: chown succeeds" 0 1000

# --- detached container, exec, stop, rm ----------------------------------------------------------
t 60 "${RUN[@]}" -d --name "$CTR" "$IMG" sleep 1000
if [ "$rc" = 0 ] && [[ $out =~ ^[0-9a-f]{64}$ ]]; then
    ok "run -d --name $CTR"
else
    notok "run -d --name $CTR" "expected exit code 0 and a container id"
fi

t 30 "${P[@]}" inspect --format '{{.State.Status}} {{.State.Running}}' "$CTR"
check "inspect: running" 0 "running true"
if [ "$out" != "running true" ]; then
    # Without a running container the checks below would test nothing (stop and rm of a container
    # that never ran succeed); they fail instead.
    unset out
    for name in "exec echo inexec" "exec exit code 5 propagated" "exec --user -w -e" \
        "exec -it: on a pty" "stop -t 2" "inspect: exited after stop" "rm" "ps -a no longer lists $CTR"; do
        notok "$name" "not run: $CTR is not running"
    done
    timeout -k 5 60 "${P[@]}" rm -f -t 0 "$CTR" >/dev/null 2>&1
else
    t 60 "${P[@]}" exec "$CTR" echo inexec
    check "exec echo inexec" 0 inexec

    t 60 "${P[@]}" exec "$CTR" sh -c 'exit 5'
    check "exec exit code 5 propagated" 5 ""

    t 60 "${P[@]}" exec --user 1000:1000 -w /tmp -e BAR=baz "$CTR" sh -c 'echo $(id -u) $(pwd) $BAR'
    check "exec --user -w -e" 0 "1000 /tmp baz"

    pty 60 "$(quote "${P[@]}" exec -it "$CTR" sh -c 'tty; echo $((6*7))')"
    # With -i and stdin at EOF, podman exec passes a NUL to the container's pty, which echoes it
    # as "^@" (runc too); accepted in case a caller's stdin is at EOF.
    if [ "$rc" = 0 ] && grep -Eqx '(\^@)*/dev/pts/[0-9]+' <<<"$out" && grep -qx 42 <<<"$out"; then
        ok "exec -it: on a pty"
    else
        notok "exec -it: on a pty" "expected /dev/pts/N and 42"
    fi

    # sleep as pid 1 ignores SIGTERM, so this also covers the SIGKILL after the 2 s grace period.
    t 60 "${P[@]}" stop -t 2 "$CTR"
    check "stop -t 2" 0 "$CTR"

    t 30 "${P[@]}" inspect --format '{{.State.Status}}' "$CTR"
    check "inspect: exited after stop" 0 exited

    t 60 "${P[@]}" rm "$CTR"
    check "rm" 0 "$CTR"

    t 30 "${P[@]}" ps -a --format '{{.Names}}'
    if [ "$rc" = 0 ] && ! grep -qx "$CTR" <<<"$out"; then
        ok "ps -a no longer lists $CTR"
    else
        notok "ps -a no longer lists $CTR" "expected exit code 0 and no $CTR"
    fi
fi

# --- terminal ------------------------------------------------------------------------------------
pty 60 "$(quote "${RUN[@]}" --rm -it "$IMG" sh -c 'tty; echo $((6*7))')"
if [ "$rc" = 0 ] && grep -qx /dev/pts/0 <<<"$out" && grep -qx 42 <<<"$out"; then
    ok "run -it: on /dev/pts/0"
else
    notok "run -it: on /dev/pts/0" "expected /dev/pts/0 and 42"
fi

# --- summary -------------------------------------------------------------------------------------
unset out
echo "# podman scenarios with $runtime: $passed passed, $failed failed"
for f in "${failures[@]}"; do
    echo "#   failed: $f"
done
[ "$failed" = 0 ]
