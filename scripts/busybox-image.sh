#!/bin/bash
# Build a one-layer busybox image as a docker-archive (the legacy `docker save` format).
#
#   scripts/busybox-image.sh OUT.tar [TAG]      TAG defaults to localhost/busybox:latest
#
# The layer is the tree from scripts/busybox-rootfs.sh. The archive holds manifest.json,
# repositories, <config-digest>.json and <diff-id>/{layer.tar,VERSION,json}; every tar is built
# deterministically (sorted names, mtime 0, numeric root ownership), so the same busybox gives the
# same image ID. Load it with `podman load -i OUT.tar`, `docker load -i OUT.tar`, or read it with
# `skopeo inspect docker-archive:OUT.tar`.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ -z "$1" ]; then
    echo "usage: $0 OUT.tar [TAG]" >&2
    exit 2
fi
out=$1
tag=${2:-localhost/busybox:latest}
case $tag in
*:*) ;;
*) tag=$tag:latest ;;
esac
# The tag is the part after the last ':' unless that ':' belongs to a registry port (host:5000/x).
repo=${tag%:*}
ver=${tag##*:}
case $ver in
*/*) repo=$tag ver=latest tag=$tag:latest ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/busybox-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$here/busybox-rootfs.sh" "$work/rootfs"

# Whoever builds this, files come out owned by root (uid 1000's home stays 1000).
printf '+%s +0\n' "$(id -u)" > "$work/owner.map"
printf '+%s +0\n' "$(id -g)" > "$work/group.map"
dtar() {
    # deterministic tar of the current directory's given entries to stdout
    tar --create --format=gnu --sort=name --mtime=@0 --numeric-owner \
        --owner-map="$work/owner.map" --group-map="$work/group.map" \
        --no-acls --no-xattrs --no-selinux "$@"
}

mkdir "$work/out"
(cd "$work/rootfs" && dtar -f "$work/layer.tar" .)
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)

arch=$(uname -m)
case $arch in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
armv7l | armv6l) arch=arm ;;
esac

epoch=1970-01-01T00:00:00Z
config=$(printf '{"architecture":"%s","os":"linux","created":"%s","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":"busybox-image.sh"}]}' \
    "$arch" "$epoch" "$diff_id" "$epoch")
printf '%s' "$config" > "$work/config.json"
config_id=$(sha256sum "$work/config.json" | cut -d' ' -f1)

mkdir "$work/out/$diff_id"
mv "$work/layer.tar" "$work/out/$diff_id/layer.tar"
printf '1.0' > "$work/out/$diff_id/VERSION"
printf '{"id":"%s","created":"%s","os":"linux","architecture":"%s","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}}' \
    "$diff_id" "$epoch" "$arch" > "$work/out/$diff_id/json"
mv "$work/config.json" "$work/out/$config_id.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
    "$config_id" "$tag" "$diff_id" > "$work/out/manifest.json"
printf '{"%s":{"%s":"%s"}}' "$repo" "$ver" "$diff_id" > "$work/out/repositories"

mkdir -p "$(dirname "$out")"
(cd "$work/out" && dtar -f "$work/image.tar" .)
mv -f "$work/image.tar" "$out"
echo "$out: $tag sha256:$config_id"
