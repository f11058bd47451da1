#!/usr/bin/env python3
"""Engine benchmarks through the real docker CLI, tugd and its peers measured in the same run.

    scripts/bench-engine.py --tug PATH [--dockerd] [--podman] [-n N] [--load-mib M] [--cp-mib C]

For each engine (tugd; dockerd with its own containerd when --dockerd; podman for run and exec
when --podman), on a private data root and socket:
  - `docker run --rm --network none busybox true`, end to end
  - `docker exec C true`
  - `docker cp` of a C MiB directory into and out of a container
  - `docker load` of an image with an M MiB random layer (the image removed between runs)
  - `docker ps -a` (and `tug ps -a`) with 100 containers
  - memory: the daemon idle (dockerd + containerd), and with 100 running containers the daemon and
    every per-container process (monitor or shim, and the container), as PSS
Medians of N runs after 2 warm-ups; prints Markdown tables. Needs root, the docker CLI, and
Debian's busybox-static (scripts/busybox-image.sh).
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IMG = "localhost/busybox"


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def timed(cmd, runs, env, before=None, warm=2):
    t = []
    for i in range(runs + warm):
        if before:
            before(i)
        t0 = time.perf_counter_ns()
        r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = (time.perf_counter_ns() - t0) / 1e6
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.decode()}")
        if i >= warm:
            t.append(dt)
    return statistics.median(t), min(t), max(t), runs


def wait_socket(path, proc, what):
    for _ in range(600):
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited early")
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start")


class Engine:
    def __init__(self, name, work):
        self.name, self.work = name, work
        self.sock = os.path.join(work, "engine.sock")
        self.env = dict(os.environ, DOCKER_HOST="unix://" + self.sock, DOCKER_CONFIG=os.path.join(work, "cfg"))
        self.proc = None

    def docker(self, *args, check=True):
        r = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise SystemExit(f"docker {' '.join(args)}: {r.stderr}")
        return r.stdout

    def daemon_pids(self):
        return [self.proc.pid]

    def per_container_pids(self):
        return []

    def stop(self):
        ids = self.docker("ps", "-aq", check=False).split()
        for i in range(0, len(ids), 50):
            self.docker("rm", "-f", *ids[i : i + 50], check=False)
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Tugd(Engine):
    def __init__(self, tug, work):
        super().__init__("tugd", work)
        self.tug = tug
        self.proc = subprocess.Popen(
            [tug, "daemon", "-H", "unix://" + self.sock, "--data-root", os.path.join(work, "root"),
             "--pidfile", os.path.join(work, "tugd.pid")],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "tugd.log"), "w"))
        wait_socket(self.sock, self.proc, "tugd")

    def per_container_pids(self):
        root = os.path.join(self.work, "root", "containers")
        pids = []
        for c in os.listdir(root):
            try:
                with open(os.path.join(root, c, "monitor.pid")) as f:
                    pids.extend(tree(int(f.read().strip())))
            except (OSError, ValueError):
                pass
        return pids


class Dockerd(Engine):
    def __init__(self, work):
        super().__init__("dockerd", work)
        # Its own roots and socket; no iptables and no bridge, so the host's firewall and the
        # other bridges stay as they are.
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", os.path.join(work, "root"), "--exec-root", os.path.join(work, "exec"),
             "-H", "unix://" + self.sock, "--pidfile", os.path.join(work, "dockerd.pid"),
             "--iptables=false", "--bridge=none", "--ip-masq=false", "--userland-proxy=false"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "dockerd.log"), "w"))
        wait_socket(self.sock, self.proc, "dockerd")
        for _ in range(200):
            if subprocess.run(["docker", "version"], env=self.env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)

    def daemon_pids(self):
        # dockerd and the containerd it manages (its child).
        return [p for p in tree(self.proc.pid) if "containerd-shim" not in cmdline(p)]

    def per_container_pids(self):
        out = []
        for p in tree(self.proc.pid):
            if "containerd-shim" in cmdline(p):
                out.extend(tree(p))
        # Shims reparent to init; find them by their -address under our exec root.
        for p in os.listdir("/proc"):
            if p.isdigit() and "containerd-shim" in cmdline(int(p)) and self.work in cmdline(int(p)):
                if int(p) not in out:
                    out.extend(tree(int(p)))
        return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def make_dir_tree(path, mib):
    os.makedirs(path)
    for i in range(10):
        with open(os.path.join(path, f"f{i}"), "wb") as f:
            f.write(os.urandom((mib << 20) // 10))


def bench(e, a, big_tar, cp_src, rows, mem):
    want = lambda what: not a.only or what in a.only.split(",")
    e.docker("load", "-i", os.path.join(a.work, "busybox.tar"))
    idle = sum(pss_kb(p) for p in e.daemon_pids())
    if want("run"):
        rows.append((e.name, "`docker run --rm --network none busybox true`",
                     timed(["docker", "run", "--rm", "--network", "none", IMG, "true"], a.n, e.env)))
    e.docker("run", "-d", "--name", "ex", IMG, "sleep", "100000")
    if want("exec"):
        rows.append((e.name, "`docker exec C true`", timed(["docker", "exec", "ex", "true"], a.n, e.env)))
    cp_runs = max(5, a.n // 4)
    if not want("cp"):
        cp_runs = 0
    if cp_runs:
        rows.append((e.name, f"`docker cp` of a {a.cp_mib} MiB directory into a container",
                     timed(["docker", "cp", cp_src, "ex:/tmp/in"], cp_runs, e.env,
                           before=lambda i: e.docker("exec", "ex", "rm", "-rf", "/tmp/in"))))
        out = os.path.join(a.work, f"out-{e.name}")
        rows.append((e.name, f"`docker cp` of a {a.cp_mib} MiB directory out of a container",
                     timed(["docker", "cp", "ex:/tmp/in", out], cp_runs, e.env,
                           before=lambda i: shutil.rmtree(out, ignore_errors=True))))
    e.docker("rm", "-f", "ex")
    if want("load"):
        rows.append((e.name, f"`docker load` of a {a.load_mib} MiB image",
                     timed(["docker", "load", "-i", big_tar], a.n, e.env,
                           before=lambda i: e.docker("rmi", "-f", "localhost/big:latest", check=False))))
    if not (want("ps") or want("mem")):
        return
    for i in range(100):
        e.docker("run", "-d", "--network", "none", "--name", f"b{i}", IMG, "sleep", "100000")
    rows.append((e.name, "`docker ps -a`, 100 containers", timed(["docker", "ps", "-a"], a.n, e.env)))
    rows.append((e.name, "`tug ps -a`, 100 containers", timed([a.tug, "ps", "-a"], a.n, e.env)))
    busy = sum(pss_kb(p) for p in e.daemon_pids())
    per = e.per_container_pids()
    mem.append((e.name, idle, busy, sum(pss_kb(p) for p in per) / 100))


def bench_podman(a, rows):
    root = os.path.join(a.work, "podman")
    base = ["podman", "--root", os.path.join(root, "root"), "--runroot", os.path.join(root, "run")]
    # Root may lack CAP_SYS_RESOURCE, and podman's default rlimits may exceed the hard limits:
    # ones that fit common hard limits instead (as tests/podman.sh).
    lim = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
    env = dict(os.environ)
    subprocess.run(base + ["load", "-i", os.path.join(a.work, "busybox.tar")], check=True, capture_output=True)
    rows.append(("podman", "`podman run --rm --network none busybox true`",
                 timed(base + ["run", "--rm", "--network", "none", *lim, IMG, "true"], a.n, env)))
    subprocess.run(base + ["run", "-d", *lim, "--name", "ex", IMG, "sleep", "100000"], check=True, capture_output=True)
    rows.append(("podman", "`podman exec C true`", timed(base + ["exec", "ex", "true"], a.n, env)))
    subprocess.run(base + ["rm", "-f", "-t", "0", "ex"], capture_output=True)
    subprocess.run(base + ["system", "reset", "-f"], capture_output=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tug", required=True)
    p.add_argument("--dockerd", action="store_true")
    p.add_argument("--podman", action="store_true")
    p.add_argument("-n", type=int, default=20)
    p.add_argument("--load-mib", type=int, default=300)
    p.add_argument("--cp-mib", type=int, default=100)
    p.add_argument("--only", default="", help="comma list of run,exec,cp,load,ps,mem")
    a = p.parse_args()
    a.tug = os.path.abspath(a.tug)
    a.work = tempfile.mkdtemp(prefix="bench-engine.")
    rows, mem, engines = [], [], []
    try:
        subprocess.run([os.path.join(HERE, "busybox-image.sh"), os.path.join(a.work, "busybox.tar")],
                       check=True, stdout=subprocess.DEVNULL)
        big = os.path.join(a.work, "big.tar")
        subprocess.run([os.path.join(HERE, "big-image.sh"), big, str(a.load_mib)], check=True, stdout=subprocess.DEVNULL)
        cp_src = os.path.join(a.work, "cp-src")
        make_dir_tree(cp_src, a.cp_mib)
        kinds = [("tugd", lambda w: Tugd(a.tug, w))]
        if a.dockerd:
            kinds.append(("dockerd", Dockerd))
        for name, make in kinds:
            w = os.path.join(a.work, name)
            os.makedirs(w)
            e = make(w)
            engines.append(e)
            try:
                bench(e, a, big, cp_src, rows, mem)
            finally:
                e.stop()
                engines.remove(e)
        if a.podman and (not a.only or "run" in a.only or "exec" in a.only):
            bench_podman(a, rows)
    finally:
        for e in engines:
            e.stop()
        # podman's storage may leave its overlay mount behind.
        subprocess.run(["umount", "-R", os.path.join(a.work, "podman", "root", "overlay")], capture_output=True)
        subprocess.run(["rm", "-rf", a.work])
    print("| engine | command | median ms | min ms | max ms | runs |")
    print("|---|---|---:|---:|---:|---:|")
    for eng, what, (med, lo, hi, n) in rows:
        print(f"| {eng} | {what} | {med:.1f} | {lo:.1f} | {hi:.1f} | {n} |")
    if a.only and "mem" not in a.only:
        return
    print()
    print("| engine | daemon idle (PSS) | daemon, 100 running | per running container (PSS) |")
    print("|---|---:|---:|---:|")
    for eng, idle, busy, per in mem:
        print(f"| {eng} | {idle / 1024:.1f} MiB | {busy / 1024:.1f} MiB | {per:.0f} kB |")


if __name__ == "__main__":
    sys.exit(main())
