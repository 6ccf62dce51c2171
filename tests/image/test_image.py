"""The repository's Dockerfile built for real (buildah, chroot isolation, vfs, no pulls)
and its image run as real containers (podman with runc), with the docs' recipes.

The base images the Dockerfile names are made locally (mmdebstrap, busybox-static) under
those very names. The containers get the engine's default capabilities, and a seccomp
profile that is the engine's default with ptrace tied to CAP_SYS_PTRACE, as on Fargate.
Slow: the image build alone takes minutes (timings are printed at the end).
"""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from . import roots

DOCS = roots.REPO / "docs" / "deploy.md"

# docs/deploy.md gives these, word for word (test_docs_give_the_tested_recipes).
BUILD = "docker build -t workload-agent:0.1.0 ."
SIDECAR = "docker run --name workload-agent workload-agent:0.1.0"
SHADOW = "/opt/draios/bin/instrument sh -c 'cat /etc/shadow; exit 3'"
AS_ROOT = f"docker run --rm --cap-add SYS_PTRACE --volumes-from workload-agent:ro myapp:1.0 {SHADOW}"
AS_USER = f"docker run --rm --cap-add SYS_PTRACE --user 10001 --volumes-from workload-agent:ro myapp:1.0 {SHADOW}"
NO_PTRACE = f"docker run --rm --volumes-from workload-agent:ro myapp:1.0 {SHADOW}"
NO_PTRACE_SECURITY = ("docker run --rm -e WORKLOAD_AGENT_PRIORITY=security --volumes-from workload-agent:ro "
                      f"myapp:1.0 {SHADOW}")
EMBED = "docker build -t myapp:1.0-instrumented -f Dockerfile.instrumented ."
AS_EMBEDDED = "docker run --rm --cap-add SYS_PTRACE myapp:1.0-instrumented sh -c 'cat /etc/shadow; exit 3'"

SHADOW_LINE = "root:$6$salt$notarealhash:19000:0:99999:7:::"
ALERT = "Password or sudoers file opened for reading (file=/etc/shadow"
EXIT_REFUSED = 125


def base_images(dockerfile: str) -> list[str]:
    """The registry images the Dockerfile's FROM lines name, with ARG defaults applied."""
    args = dict(re.findall(r"(?m)^ARG (\w+)=(\S+)", dockerfile))
    stages = set(re.findall(r"(?mi)^FROM \S+ AS (\S+)", dockerfile))
    names = []
    for ref in re.findall(r"(?m)^FROM (\S+)", dockerfile):
        ref = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], ref)
        if ref not in stages:
            names.append(ref)
    return names


def qualified(ref: str) -> str:
    """docker.io/library/NAME for Docker Hub's short names, as a pull would store them."""
    return f"docker.io/library/{ref}" if "/" not in ref else ref


class Images:
    def __init__(self, work: Path):
        self.work = work
        self.timings = roots.Timings()
        self.profile = roots.ptrace_needs_cap_profile(work / "seccomp-ptrace-needs-cap.json")
        self.engine = roots.Engine(work / "engine", self.profile)

    def docker(self, recipe: str, timeout: float = 120, check: bool = False):
        """A docs recipe run as written, with podman standing in for docker."""
        argv = shlex.split(recipe)
        assert argv[0] == "docker"
        return self.engine.run(["podman", *argv[1:]], timeout=timeout, check=check)


@pytest.fixture(scope="module")
def images(tmp_path_factory, request):
    roots.need(roots.missing(("buildah", "podman", "runc", "mmdebstrap", "apt-get", "dpkg-deb")))
    if not Path("/usr/share/containers/seccomp.json").exists():
        roots.need("needs the engine's default seccomp profile (golang-github-containers-common)")
    im = Images(tmp_path_factory.mktemp("image"))
    t = im.timings
    try:
        busybox = roots.busybox_static(im.work)
        wanted = base_images((roots.REPO / "Dockerfile").read_text())
        for ref in wanted:
            repo = ref.split(":")[0]
            with t.step(f"import {repo}"):
                if repo == "debian":
                    im.engine.import_tar(roots.debian_tar(t), qualified(ref), ["--cmd", "bash"])
                elif repo == "busybox":
                    im.engine.import_tar(roots.busybox_tar(im.work, "busybox", busybox), qualified(ref),
                                         ["--cmd", "sh"])
                else:
                    pytest.fail(f"the Dockerfile names {ref}: the test makes local debian and busybox bases only")
        # pip in the build verifies PyPI against this machine's CA (see roots.HOST_CA)
        pip_conf = im.work / "pip.conf"
        pip_conf.write_text("[global]\ncert = /run/host-ca.crt\n")
        argv = shlex.split(BUILD)
        with t.step("build"):
            im.engine.run(["buildah", "bud", "--isolation", "chroot", "--pull=never",
                           "-v", f"{roots.HOST_CA}:/run/host-ca.crt:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro",
                           *argv[2:]], timeout=1800, cwd=roots.REPO)
        app = roots.busybox_tar(im.work, "myapp", busybox, {
            "/etc/shadow": (SHADOW_LINE + "\n", 0o600),
            "/etc/passwd": ("root:x:0:0:root:/root:/bin/sh\napp:x:10001:10001:app:/tmp:/bin/sh\n"
                            "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644),
        })
        with t.step("import myapp"):
            im.engine.import_tar(app, "localhost/myapp:1.0", ["--cmd", "sh", "--env", "PATH=/bin"])
        with t.step("sidecar"):
            r = im.docker(SIDECAR)
            assert r.returncode == 0, r.stderr
        yield im
    finally:
        roots.report(request, f"\ntests/image/test_image.py durations: {t.show()}")
        im.engine.close()
        shutil.rmtree(im.work, ignore_errors=True)


def test_image_is_the_bundle_on_busybox(images):
    cfg = images.engine.run(["podman", "image", "inspect", "--format",
                             "{{json .Config.User}} {{json .Config.Entrypoint}} {{json .Config.Volumes}}",
                             "workload-agent:0.1.0"]).stdout
    assert cfg.split() == ['"65534:65534"', '["/bin/true"]', '{"/opt/draios":{}}']
    r = images.engine.run(["podman", "run", "--rm", "--entrypoint", "/bin/sh", "workload-agent:0.1.0", "-c",
                           "id -u; ls /opt/draios; ls /opt/draios/bin; test -e /usr || echo no-usr"])
    # busybox and the bundle, nothing else: no /usr, so no Python or libc of a distribution
    assert r.stdout.split() == ["65534", "bin", "lib", "rules", "instrument", "python3.11", "no-usr"]


def test_sidecar_pattern_as_root(images):
    r = images.docker(AS_ROOT)
    assert r.returncode == 3, r.stderr
    assert r.stdout.splitlines()[0] == SHADOW_LINE
    alert = [line for line in r.stdout.splitlines() if ALERT in line]  # on stdout, as the docs say
    assert len(alert) == 1 and "result=SUCCESS" in alert[0] and "uid=0" in alert[0], r.stdout + r.stderr


def test_sidecar_pattern_as_non_root(images):
    r = images.docker(AS_USER)
    assert r.returncode == 3, r.stderr
    assert "can't open '/etc/shadow': Permission denied" in r.stderr
    # the refused attempt is an alert too, under the workload's own uid
    alert = [line for line in r.stdout.splitlines() if ALERT in line]
    assert len(alert) == 1 and "result=EACCES" in alert[0] and "uid=10001" in alert[0], r.stdout + r.stderr
    assert SHADOW_LINE not in r.stdout + r.stderr


def test_workload_sees_exactly_the_container_environment(images):
    plain = shlex.split(AS_ROOT)
    i = plain.index("myapp:1.0")
    extra = ["--hostname", "app", "-e", "APP_MODE=prod", "-e", "PYTHONPATH=/nowhere", "-e", "LD_LIBRARY_PATH=/app/lib"]
    head = ["podman", *plain[1:i], *extra, "myapp:1.0"]
    bare = images.engine.run([*head, "sh", "-c", "env"]).stdout
    traced = images.engine.run([*head, "/opt/draios/bin/instrument", "sh", "-c", "env"]).stdout
    assert "APP_MODE=prod" in bare and "PYTHONPATH=/nowhere" in bare
    assert sorted(traced.splitlines()) == sorted(bare.splitlines())


def test_without_sys_ptrace_availability_runs_it_untraced_and_says_so(images):
    r = images.docker(NO_PTRACE)
    assert r.returncode == 3, r.stderr
    # the degraded-detection alert goes to the reachable output (stdout) before the workload runs
    lines = r.stdout.splitlines()
    assert SHADOW_LINE in lines
    assert "Critical Workload agent detection degraded: tracing could not start" in lines[0]
    assert "WARNING: tracing could not start: PTRACE_SEIZE: Operation not permitted" in r.stderr
    assert "running the workload UNTRACED" in r.stderr
    assert ALERT not in r.stdout + r.stderr


def test_without_sys_ptrace_security_refuses(images):
    r = images.docker(NO_PTRACE_SECURITY)
    assert r.returncode == EXIT_REFUSED, r.stderr
    assert "refusing to start the workload untraced (priority: security)" in r.stderr
    assert SHADOW_LINE not in r.stdout


def test_embedded_at_build_time(images, tmp_path):
    """Pattern 1 of docs/deploy.md: COPY --from the agent image, instrument in front."""
    text = DOCS.read_text()
    block = re.search(r"```dockerfile\n(FROM myapp:1\.0\n.*?)```", text, re.S)
    assert block, "docs/deploy.md lost the myapp:1.0 Dockerfile"
    (tmp_path / "Dockerfile.instrumented").write_text(block.group(1))
    argv = shlex.split(EMBED)
    with images.timings.step("build embedded"):
        images.engine.run(["buildah", "bud", "--isolation", "chroot", "--pull=never", *argv[2:]],
                          timeout=600, cwd=tmp_path)
    r = images.docker(AS_EMBEDDED)
    assert r.returncode == 3, r.stderr
    assert r.stdout.splitlines()[0] == SHADOW_LINE
    assert ALERT in r.stdout


def test_docs_give_the_tested_recipes():
    text = DOCS.read_text()
    lines = {re.sub(r"\\\n\s*", "", m).strip() for m in re.findall(r"(?ms)^(docker (?:run|build) .*?)(?<!\\)$", text)}
    for recipe in (BUILD, SIDECAR, AS_ROOT, AS_USER, NO_PTRACE, NO_PTRACE_SECURITY, EMBED, AS_EMBEDDED):
        assert recipe in lines, f"docs/deploy.md does not give: {recipe}"
