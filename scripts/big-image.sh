#!/bin/bash
# Build a docker-archive (legacy `docker save` format) of busybox plus one layer of SIZE MiB of
# random (incompressible) data in several files, and optionally a layer of TEXT MiB of
# compressible text (words drawn Zipf-like from a made-up vocabulary: gzip takes it to about a
# third), for load, push and pull benchmarks. Layers are stored uncompressed, as `docker save`.
#
#   scripts/big-image.sh OUT.tar SIZE_MIB [TAG [TEXT_MIB]]    TAG defaults to localhost/big:latest
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 4 ]; then
    echo "usage: $0 OUT.tar SIZE_MIB [TAG [TEXT_MIB]]" >&2
    exit 2
fi
out=$1
size=$2
tag=${3:-localhost/big:latest}
text=${4:-0}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/big-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$here/busybox-image.sh" "$work/busybox.tar" >/dev/null
python3 - "$work/busybox.tar" "$out" "$size" "$tag" "$text" <<'PY'
import hashlib, io, itertools, json, os, random, sys, tarfile

src, out, size_mib, tag, text_mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
with tarfile.open(src) as t:
    names = set(t.getnames())
    get = lambda n: t.extractfile(n if n in names else "./" + n)
    manifest = json.load(get("manifest.json"))[0]
    config = json.load(get(manifest["Config"]))
    base_layer = get(manifest["Layers"][0]).read()

# The data layer: files of at most 64 MiB each, deterministic names, random content.
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as lt:
    d = tarfile.TarInfo("data")
    d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
    lt.addfile(d)
    left, i = size_mib << 20, 0
    while left > 0:
        n = min(left, 64 << 20)
        ti = tarfile.TarInfo("data/blob%02d" % i)
        ti.size, ti.mode, ti.mtime = n, 0o644, 0
        lt.addfile(ti, io.BytesIO(os.urandom(n)))
        left, i = left - n, i + 1
data_layer = buf.getvalue()

def text_block(rng, words, cum):
    """1 MiB of lines of words; gzip's 32 KiB window never sees one block from another."""
    out, n = [], 0
    while n < 1 << 20:
        line = " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(5, 14))) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[: 1 << 20]

layers = [base_layer, data_layer]
if text_mib > 0:
    # Deterministic: the same TEXT_MIB gives the same layer. 1 MiB files cycling 8 blocks.
    rng = random.Random(text_mib)
    words = ["".join(rng.choices("etaoinshrdlcumwfgypbvkjxqz", k=rng.randint(2, 9))) for _ in range(5000)]
    cum = list(itertools.accumulate(1 / (i + 1) for i in range(len(words))))
    blocks = [text_block(rng, words, cum) for _ in range(8)]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as lt:
        d = tarfile.TarInfo("text")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
        lt.addfile(d)
        for i in range(text_mib):
            ti = tarfile.TarInfo("text/f%04d.txt" % i)
            ti.size, ti.mode, ti.mtime = 1 << 20, 0o644, 0
            lt.addfile(ti, io.BytesIO(blocks[i % len(blocks)]))
    layers.append(buf.getvalue())
ids = [hashlib.sha256(l).hexdigest() for l in layers]
config["rootfs"]["diff_ids"] = ["sha256:" + i for i in ids]
config["history"] = config.get("history", []) + [{"created": "1970-01-01T00:00:00Z", "created_by": "big-image.sh %d MiB" % size_mib}]
if text_mib > 0:
    config["history"].append({"created": "1970-01-01T00:00:00Z", "created_by": "big-image.sh %d MiB of text" % text_mib})
cfg = json.dumps(config, separators=(",", ":")).encode()
cfg_id = hashlib.sha256(cfg).hexdigest()
repo, _, ver = tag.rpartition(":")

def add(tf, name, data):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
    tf.addfile(ti, io.BytesIO(data))

with tarfile.open(out + ".part", "w", format=tarfile.GNU_FORMAT) as o:
    for i, l in zip(ids, layers):
        add(o, i + "/layer.tar", l)
        add(o, i + "/VERSION", b"1.0")
    add(o, cfg_id + ".json", cfg)
    add(o, "manifest.json", json.dumps([{"Config": cfg_id + ".json", "RepoTags": [tag], "Layers": [i + "/layer.tar" for i in ids]}]).encode())
    add(o, "repositories", json.dumps({repo: {ver: ids[-1]}}).encode())
os.replace(out + ".part", out)
print("%s: %s sha256:%s (%d MiB of data, %d MiB of text)" % (out, tag, cfg_id, size_mib, text_mib))
PY
