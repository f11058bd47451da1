#!/usr/bin/env python3
"""Registry benchmarks: push and pull through the real docker CLI, concurrent blob GETs, and
registry memory; tug's pair and Docker's pair measured in the same run.

    scripts/bench-registry.py --tug PATH [-n N] [--random-mib R] [--text-mib T]
                              [--clients C] [--gets G] [--rounds K] [--blob-mib B]

Pairs: tugd pushing to and pulling from `tug registry serve`; Debian's dockerd (with its own
containerd) and Debian's docker-registry (distribution 2.8). Both registries serve a fresh
directory on a loopback port; both daemons a private data root and socket.

1. Push and pull of an image of busybox, an R MiB random layer and a T MiB text layer, stored
   uncompressed as `docker load` leaves them, so a push compresses them:
   - "first push": a fresh daemon, `docker load` (not timed), `docker push` (timed) to a fresh
     registry, `docker rmi`, `docker pull` (timed). N runs, each on a new daemon, so every one
     pays the compression (tugd keeps the compressed form after its first push; dockerd keeps
     none and compresses on every push).
   - "push again": the daemon of the last first-push run pushes the image it pulled to a new,
     empty registry, then rmi and pull. N runs, each to a new registry root and port.
   The pairs take turns run by run. A push that reports a layer as already there, or a pull that
   finds one, stops the benchmark: nothing is measured against a warm registry or store.
2. Concurrent blob GETs: C curl processes at once, each fetching one B MiB blob G times over a
   kept-alive connection, from each registry; K rounds, the registries taking turns; throughput is
   all bytes over the round's wall time. Peak memory of each registry over all its rounds: the
   kernel's high-water RSS (VmHWM, reset before the test) and the highest PSS seen (sampled).
3. Idle memory of each registry (PSS), just started on an empty root and after the GET test.

Prints Markdown tables, and the load average before and after. Needs root, the docker CLI,
dockerd, docker-registry and curl; scripts/big-image.sh builds the image.
"""

import argparse
import hashlib
import http.client
import importlib.util
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
LOCAL = "localhost/big:latest"
REPO = "bench/big"

# The engine benchmark's daemon handling (private roots, stopped by pid) is reused as is.
_spec = importlib.util.spec_from_file_location("bench_engine", os.path.join(HERE, "bench-engine.py"))
engine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(engine)


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


class Registry:
    """A registry process on a fresh root and a free loopback port; stopped by pid."""

    kind = ""

    def __init__(self, work, tag):
        self.dir = os.path.join(work, tag)
        os.makedirs(self.dir)
        self.root = os.path.join(self.dir, "root")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "registry.log"), "w"))
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.kind} exited early: {self.log()}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/v2/")
                if c.getresponse().status == 200:
                    c.close()
                    break
                c.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.kind} did not start: {self.log()}")
            time.sleep(0.05)

    def log(self):
        try:
            with open(os.path.join(self.dir, "registry.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stored_bytes(self):
        """Bytes of blob data in the registry (what a pull transfers, manifests aside)."""
        total = 0
        for top, _, files in os.walk(os.path.join(self.root, "docker", "registry", "v2", "blobs")):
            total += sum(os.path.getsize(os.path.join(top, f)) for f in files if f == "data")
        return total

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["rm", "-rf", self.root])


class TugRegistry(Registry):
    kind = "tug registry"

    def __init__(self, tug, work, tag):
        self.tug = tug
        super().__init__(work, tag)

    def argv(self):
        return [self.tug, "registry", "serve", "--addr", f"127.0.0.1:{self.port}", "--root", self.root]


class Distribution(Registry):
    kind = "docker-registry"

    def argv(self):
        # Debian's shipped config.yml, less htpasswd and the storage health check, on our root and
        # port. Its default log level (info) logs each request, as tug's registry does.
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  fields:\n    service: registry\nstorage:\n  cache:\n"
                    "    blobdescriptor: inmemory\n  filesystem:\n"
                    f"    rootdirectory: {self.root}\n  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{self.port}\n  headers:\n    X-Content-Type-Options: [nosniff]\n")
        return ["docker-registry", "serve", cfg]


class Pair:
    """One engine and its registry kind."""

    def __init__(self, name, a, make_engine, make_registry):
        self.name, self.a = name, a
        self.make_engine, self.make_registry = make_engine, make_registry
        self.engine = None
        self.engines = 0
        self.count = 0
        self.ran = False
        self.first_push, self.first_pull, self.push, self.pull = [], [], [], []
        self.stored, self.reg_hwm = [], []
        self.first_downloaded, self.downloaded = [], []

    def fresh_engine(self):
        self.stop_engine()
        self.engines += 1
        w = os.path.join(self.a.work, f"{self.name}-engine{self.engines}")
        os.makedirs(w)
        self.engine = self.make_engine(w)

    def stop_engine(self):
        if self.engine:
            e, self.engine = self.engine, None
            e.stop()
            subprocess.run(["rm", "-rf", e.work])

    def docker(self, *args, timeout=600):
        r = subprocess.run(["docker", *args], env=self.engine.env, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise SystemExit(f"{self.name}: docker {' '.join(args)}: {r.stderr}")
        return r.stdout

    def timed(self, *args):
        t0 = time.perf_counter()
        out = self.docker(*args)
        return time.perf_counter() - t0, out

    def cycle(self, source, first):
        """Push `source` to a new registry, remove every local image, pull it back."""
        self.count += 1
        reg = self.make_registry(self.a.work, f"{self.name}-registry{self.count}")
        try:
            ref = f"{reg.host}/{REPO}:{self.count}"
            self.docker("tag", source, ref)
            t_push, out = self.timed("push", ref)
            if "already exists" in out or "Mounted from" in out:
                raise SystemExit(f"{self.name}: push to an empty registry skipped layers:\n{out}")
            ids = self.docker("images", "-q").split()
            self.docker("rmi", "-f", *sorted(set(ids)))
            left = self.docker("images", "-aq").split()
            if left:
                raise SystemExit(f"{self.name}: images left after rmi: {left}")
            t_pull, out = self.timed("pull", ref)
            if "Already exists" in out:
                raise SystemExit(f"{self.name}: pull found layers already there:\n{out}")
            # A layer the daemon still held as a blob is unpacked without a download.
            downloaded = out.count(": Download complete")
            if not self.ran:
                # Once: the pulled image runs (busybox is its base layer).
                self.docker("run", "--rm", "--network", "none", ref, "true")
                self.ran = True
            (self.first_push if first else self.push).append(t_push)
            (self.first_pull if first else self.pull).append(t_pull)
            (self.first_downloaded if first else self.downloaded).append(downloaded)
            self.stored.append(reg.stored_bytes())
            self.reg_hwm.append(status_kb(reg.proc.pid, "VmHWM"))
            return ref
        finally:
            reg.stop()
            subprocess.run(["rm", "-rf", reg.dir])

    def first_run(self):
        self.fresh_engine()
        self.docker("load", "-i", self.a.image)
        self.last = self.cycle(LOCAL, True)

    def again_run(self):
        self.last = self.cycle(self.last, False)


def blob_upload(reg, data):
    """Pushes `data` as one blob through the API (POST, then one PUT with the body)."""
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    c = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=120)
    c.request("POST", f"/v2/{REPO}/blobs/uploads/", headers={"Content-Length": "0"})
    r = c.getresponse()
    r.read()
    if r.status != 202:
        raise SystemExit(f"{reg.kind}: POST upload: {r.status}")
    loc = urllib.parse.urlsplit(r.getheader("Location"))
    path = loc.path + "?" + (loc.query + "&" if loc.query else "") + "digest=" + d
    c.request("PUT", path, body=data, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse()
    r.read()
    c.close()
    if r.status != 201:
        raise SystemExit(f"{reg.kind}: PUT upload: {r.status}")
    return d


class Sampler(threading.Thread):
    """Highest PSS of a process, polled until stopped (bounded by `limit` seconds)."""

    def __init__(self, pid, limit):
        super().__init__(daemon=True)
        self.pid, self.limit, self.peak = pid, limit, 0
        self.done = threading.Event()

    def run(self):
        end = time.monotonic() + self.limit
        while not self.done.is_set() and time.monotonic() < end:
            self.peak = max(self.peak, engine.pss_kb(self.pid))
            time.sleep(0.02)


def get_round(reg, d, a):
    url = f"http://{reg.host}/v2/{REPO}/blobs/{d}"
    cmd = ["curl", "-sS", "--max-time", "300", "-w", "%{http_code} %{size_download}\\n"]
    for _ in range(a.gets):
        cmd += ["-o", "/dev/null", url]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(a.clients)]
    outs = [p.communicate(timeout=330)[0] for p in procs]
    dt = time.perf_counter() - t0
    total = 0
    for out in outs:
        got = [line.split() for line in out.strip().splitlines()]
        if len(got) != a.gets or any(code != "200" or int(n) != a.blob_mib << 20 for code, n in got):
            raise SystemExit(f"{reg.kind}: GET answers: {got}")
        total += sum(int(n) for _, n in got)
    return total / (1 << 20) / dt


def bench_gets(a, regs):
    data = os.urandom(a.blob_mib << 20)
    idle = {}
    for r in regs:
        time.sleep(1)
        idle[r.kind] = engine.pss_kb(r.proc.pid)
    digests = {r.kind: blob_upload(r, data) for r in regs}
    del data
    samplers = {}
    for r in regs:
        # Reset the high-water RSS (proc(5), clear_refs "5") so VmHWM covers the test only.
        with open(f"/proc/{r.proc.pid}/clear_refs", "w") as f:
            f.write("5")
        samplers[r.kind] = Sampler(r.proc.pid, 3600)
        samplers[r.kind].start()
    tput = {r.kind: [] for r in regs}
    for _ in range(a.rounds):
        for r in regs:
            tput[r.kind].append(get_round(r, digests[r.kind], a))
    rows = []
    for r in regs:
        samplers[r.kind].done.set()
        samplers[r.kind].join()
        time.sleep(1)
        rows.append((r.kind, tput[r.kind], idle[r.kind], status_kb(r.proc.pid, "VmHWM"), samplers[r.kind].peak,
                     engine.pss_kb(r.proc.pid)))
    return rows


def stats(xs):
    return statistics.median(xs), min(xs), max(xs), len(xs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tug", required=True)
    p.add_argument("-n", type=int, default=5)
    p.add_argument("--random-mib", type=int, default=100)
    p.add_argument("--text-mib", type=int, default=200)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--gets", type=int, default=4)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--blob-mib", type=int, default=64)
    p.add_argument("--gets-only", action="store_true", help="only the concurrent GETs and registry memory")
    a = p.parse_args()
    a.tug = os.path.abspath(a.tug)
    a.work = tempfile.mkdtemp(prefix="bench-registry.")
    a.image = os.path.join(a.work, "big.tar")
    load_before = load()
    print(f"load average before: {load_before}", file=sys.stderr)
    pairs, regs = [], []
    try:
        if not a.gets_only:
            subprocess.run([os.path.join(HERE, "big-image.sh"), a.image, str(a.random_mib), LOCAL, str(a.text_mib)],
                           check=True, stdout=subprocess.DEVNULL)
            pairs = [
                Pair("tug", a, lambda w: engine.Tugd(a.tug, w), lambda w, t: TugRegistry(a.tug, w, t)),
                Pair("docker", a, engine.Dockerd, Distribution),
            ]
        for i in range(a.n if pairs else 0):
            for pr in pairs:
                pr.first_run()
                print(f"{pr.name} first push {i + 1}: push {pr.first_push[-1]:.2f}s pull {pr.first_pull[-1]:.2f}s "
                      f"(load {load()})", file=sys.stderr)
        for i in range(a.n if pairs else 0):
            for pr in pairs:
                pr.again_run()
                print(f"{pr.name} push again {i + 1}: push {pr.push[-1]:.2f}s pull {pr.pull[-1]:.2f}s "
                      f"(load {load()})", file=sys.stderr)
        for pr in pairs:
            pr.stop_engine()
        load_mid = load()
        regs = [TugRegistry(a.tug, a.work, "tug-get"), Distribution(a.work, "docker-get")]
        gets = bench_gets(a, regs)
    finally:
        for r in regs:
            r.stop()
        for pr in pairs:
            pr.stop_engine()
        subprocess.run(["rm", "-rf", a.work])
    load_after = load()

    if pairs:
        print(f"Image: busybox + {a.random_mib} MiB random + {a.text_mib} MiB text, loaded uncompressed. N={a.n}.")
    mid = f", after push/pull {load_mid}" if pairs else ""
    print(f"Load average before {load_before}{mid}, after GETs {load_after}.")
    print()
    if pairs:
        print("| pair | measurement | median s | min s | max s | runs |")
        print("|---|---|---:|---:|---:|---:|")
        med = {}
        for pr in pairs:
            series = [
                ("first push (compresses)", pr.first_push),
                ("pull after first push", pr.first_pull),
                ("first push + pull", [x + y for x, y in zip(pr.first_push, pr.first_pull)]),
                ("push again", pr.push),
                ("pull", pr.pull),
                ("push again + pull", [x + y for x, y in zip(pr.push, pr.pull)]),
            ]
            for what, xs in series:
                m, lo, hi, n = stats(xs)
                med[(pr.name, what)] = m
                print(f"| {pr.name} | {what} | {m:.2f} | {lo:.2f} | {hi:.2f} | {n} |")
        print()
        print("| measurement | tug / docker (time) | docker / tug (speed-up) |")
        print("|---|---:|---:|")
        for what in ["first push (compresses)", "pull after first push", "first push + pull", "push again", "pull",
                     "push again + pull"]:
            t, d = med[("tug", what)], med[("docker", what)]
            print(f"| {what} | {t / d:.2f} | {d / t:.2f} |")
        print()
        print("| pair | blob bytes in the registry after a push | registry peak RSS during push + pull (median) "
              "| layers downloaded by each pull after first push | … by each later pull |")
        print("|---|---:|---:|---|---|")
        for pr in pairs:
            print(f"| {pr.name} | {statistics.median(pr.stored) / (1 << 20):.1f} MiB | "
                  f"{statistics.median(pr.reg_hwm) / 1024:.1f} MiB | {pr.first_downloaded} of 3 | {pr.downloaded} of 3 |")
        print()
    print(f"Concurrent GETs: {a.clients} curl processes, each fetching a {a.blob_mib} MiB blob {a.gets} times "
          f"over one connection; {a.rounds} rounds.")
    print()
    print("| registry | median MiB/s | min MiB/s | max MiB/s | rounds | idle PSS | peak RSS (VmHWM) | peak PSS (sampled) "
          "| PSS after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, t, idle, hwm, peak, after in gets:
        m, lo, hi, n = stats(t)
        print(f"| {kind} | {m:.0f} | {lo:.0f} | {hi:.0f} | {n} | {idle / 1024:.1f} MiB | {hwm / 1024:.1f} MiB "
              f"| {peak / 1024:.1f} MiB | {after / 1024:.1f} MiB |")


if __name__ == "__main__":
    sys.exit(main())
