#!/bin/bash
# Build a minimal root filesystem from a static busybox (Debian's busybox-static package by default).
#
#   scripts/busybox-rootfs.sh DIR
#
# DIR gets bin/busybox, one symlink per applet (as `busybox --list-full` places them, plus a /bin
# link for each so that both /bin/sh and /usr/bin/env work), /etc/passwd with root and user 1000,
# /etc/group, /etc/hostname, /etc/hosts, and empty /tmp /proc /sys /dev /root /home/user /run /var.
# Running it again on the same DIR is harmless (idempotent). BUSYBOX=path overrides the binary.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
busybox=${BUSYBOX:-/bin/busybox}
if [ ! -x "$busybox" ]; then
    echo "$0: $busybox not found (install busybox-static)" >&2
    exit 1
fi
# A dynamically linked busybox would not run inside a rootfs without its libraries.
if command -v file >/dev/null 2>&1 && file -L "$busybox" | grep -q 'dynamically linked'; then
    echo "$0: $busybox is dynamically linked; install busybox-static" >&2
    exit 1
fi

mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root home/user run var/tmp
chmod 1777 tmp var/tmp
chmod 0700 root
# cp to a temp name then rename, so an existing bin/busybox that is in use is replaced atomically.
cp "$busybox" bin/.busybox.new
chmod 0755 bin/.busybox.new
mv -f bin/.busybox.new bin/busybox

# `--list-full` gives paths like bin/sh, usr/bin/env, sbin/ifconfig.
"$busybox" --list-full | while IFS= read -r applet; do
    [ -n "$applet" ] || continue
    name=${applet##*/}
    [ "$name" = busybox ] && continue
    sub=${applet%/*}
    case $sub in
    bin) rel=busybox ;;
    sbin) rel=../bin/busybox ;;
    usr/bin | usr/sbin) rel=../../bin/busybox ;;
    *) continue ;;
    esac
    [ -L "$applet" ] || ln -sfn "$rel" "$applet"
    # Also make every applet reachable from /bin, the one directory always on PATH.
    [ -e "bin/$name" ] || [ -L "bin/$name" ] || ln -sfn busybox "bin/$name"
done

cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
user:x:1000:
nogroup:x:65534:
GROUP
echo busybox > etc/hostname
cat > etc/hosts <<'HOSTS'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
HOSTS
: > etc/resolv.conf
chown 1000:1000 home/user 2>/dev/null || true
# Fixed mtimes keep images built from this tree reproducible.
find . -mindepth 1 -exec touch -h -d @0 {} + 2>/dev/null || true
