"""docker-py (the `docker` package from PyPI) against tugd: DOCKER_HOST names the daemon,
BUSYBOX_TAR a docker-archive of busybox tagged localhost/busybox:latest."""
import os
import sys

import docker

IMG = "localhost/busybox"
c = docker.from_env()
assert c.version()["ApiVersion"] == "1.44"

with open(os.environ["BUSYBOX_TAR"], "rb") as f:
    loaded = c.images.load(f.read())
assert [i.tags for i in loaded] == [["localhost/busybox:latest"]], loaded
assert any("localhost/busybox:latest" in i.tags for i in c.images.list())

# The attached form: docker-py opens the log stream with follow, waits, removes the container,
# and only then reads the stream. Every line must still arrive.
for i in range(20):
    out = c.containers.run(IMG, ["sh", "-c", "echo out%d; echo err%d >&2" % (i, i)], remove=True)
    assert out == b"out%d\n" % i, (i, out)
assert not c.containers.list(all=True), c.containers.list(all=True)
try:
    c.containers.run(IMG, ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    raise AssertionError("a failing attached run must raise ContainerError")
except docker.errors.ContainerError as err:
    assert err.exit_status == 3 and b"bad" in err.stderr, (err.exit_status, err.stderr)

ct = c.containers.run(IMG, ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done; exit 4"], detach=True)
lines = list(ct.logs(stream=True, follow=True))
assert b"".join(lines) == b"line1\nline2\nline3\n", lines
assert ct.wait() == {"Error": None, "StatusCode": 4}
info = c.api.inspect_container(ct.id)
assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 4, info["State"]
ct.remove()

ct = c.containers.run(IMG, ["sleep", "100"], detach=True, name="py-sleeper")
ct.reload()
assert ct.status == "running"
ct.stop(timeout=1)
ct.reload()
assert ct.status == "exited"
ct.remove()
try:
    c.containers.get("py-sleeper")
    sys.exit("removed container still found")
except docker.errors.NotFound:
    pass
try:
    c.containers.run("no-such-image-here", ["true"], remove=True)
    sys.exit("missing image did not fail")
except (docker.errors.ImageNotFound, docker.errors.APIError):
    pass
print("docker-py: all passed")
