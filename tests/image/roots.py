"""Root filesystems and container tooling for the image and README tests.

Only Debian's mirror and PyPI are reachable here, so nothing is pulled from a container
registry: a Debian root comes from mmdebstrap, a busybox root from Debian's
busybox-static, and both are imported into a private containers/storage (vfs) under the
names the Dockerfile uses. The Debian root is cached between runs (see debian_tar).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
MMDEBSTRAP = ["mmdebstrap", "--variant=minbase", "--quiet", SUITE]
# A cached root older than this is rebuilt: it is only a base (the Dockerfile and the
# README run apt-get update themselves), but a very old one drifts from the mirror.
MAX_AGE_S = 7 * 24 * 3600
# The CA bundle this machine trusts: PyPI is reached through a TLS-inspecting proxy here,
# whose CA a fresh root does not know. It is handed to pip only, the way a user behind
# such a proxy would configure it; the Dockerfile and README commands stay unchanged.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def need(reason: str | None) -> None:
    """Skip with the reason locally; under CI a missing tool is a failure, not a skip."""
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


def missing(tools: tuple[str, ...]) -> str | None:
    if os.geteuid() != 0:
        return "needs root (chroot, mount, rootful containers)"
    if platform.machine() != "x86_64":
        return "checked on x86_64 only"
    for tool in tools:
        if not shutil.which(tool):
            return f"needs {tool} (Debian package; .ci/run installs it)"
    return None


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    d = base / "workload-agent" / "image"
    d.mkdir(parents=True, exist_ok=True)
    return d


class Timings:
    """Wall-clock durations of the expensive steps, for the report (never asserted)."""

    def __init__(self):
        self.steps: dict[str, float] = {}

    def step(self, name: str):
        timings = self

        class _Step:
            def __enter__(self):
                self.t0 = time.monotonic()

            def __exit__(self, *exc):
                timings.steps[name] = round(time.monotonic() - self.t0, 1)

        return _Step()

    def show(self) -> str:
        return ", ".join(f"{k} {v:.1f} s" for k, v in self.steps.items())


def report(request, line: str) -> None:
    """A line in pytest's terminal output even when output is captured."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter and capture:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


def debian_tar(timings: Timings) -> Path:
    """A minbase Debian root as a tarball, cached by the exact mmdebstrap command."""
    argv = [*MMDEBSTRAP, "-", MIRROR]
    key = hashlib.sha256(json.dumps(argv).encode()).hexdigest()[:16]
    tar = cache_dir() / f"debian-{SUITE}-{key}.tar"
    if tar.exists() and time.time() - tar.stat().st_mtime < MAX_AGE_S:
        return tar
    part = tar.with_name(f"{tar.name}.{os.getpid()}.part")
    with timings.step("mmdebstrap"):
        with open(part, "wb") as out:
            r = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, text=True, timeout=1200)
    if r.returncode:
        part.unlink(missing_ok=True)
        pytest.fail(f"mmdebstrap failed: {r.stderr[-2000:]}")
    part.rename(tar)  # atomic: a concurrent run sees the whole file or none
    return tar


def busybox_static(work: Path) -> Path:
    """Debian's busybox-static binary (fetched with apt-get download, not installed)."""
    deb_dir = work / "busybox-deb"
    deb_dir.mkdir(exist_ok=True)
    got = subprocess.run(["apt-get", "download", "busybox-static"], cwd=deb_dir, capture_output=True, text=True)
    debs = list(deb_dir.glob("busybox-static_*.deb"))
    if not debs:
        pytest.fail(f"cannot fetch busybox-static with apt-get download: {got.stderr.strip()[-300:]}")
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(deb_dir / "x")], check=True)
    return deb_dir / "x" / "bin" / "busybox"


def busybox_tar(work: Path, name: str, busybox: Path, files: dict[str, tuple[str, int]] | None = None) -> Path:
    """A root holding busybox-static, its applets as symlinks (as in the busybox image),
    a world-writable /tmp and the given extra files {path: (text, mode)}."""
    out = work / f"{name}.tar"
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    with tarfile.open(out, "w") as tar:
        def add_dir(path: str, mode: int = 0o755):
            info = tarfile.TarInfo(path)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        for d in ("bin", "etc", "proc", "sys", "dev", "root"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        tar.add(str(busybox), "bin/busybox")
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        for path, (text, mode) in (files or {}).items():
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out


def ptrace_needs_cap_profile(dest: Path) -> Path:
    """The container engine's default seccomp profile, changed the way AWS Fargate's
    behaves: ptrace and process_vm_readv/writev only with CAP_SYS_PTRACE (Docker's
    default profile does the same on kernels before 4.8)."""
    profile = json.loads(Path("/usr/share/containers/seccomp.json").read_text())
    gated = {"ptrace", "process_vm_readv", "process_vm_writev"}
    granted = False
    for rule in profile["syscalls"]:
        if not rule.get("includes") and not rule.get("excludes"):
            rule["names"] = [n for n in rule["names"] if n not in gated]
        if rule.get("includes") == {"caps": ["CAP_SYS_PTRACE"]} or rule.get("excludes") == {"caps": ["CAP_SYS_PTRACE"]}:
            rule["names"] = sorted(set(rule["names"]) | gated)
            granted = True
    assert granted, "the default profile has no CAP_SYS_PTRACE rule to extend"
    dest.write_text(json.dumps(profile, indent=1))
    return dest


class Engine:
    """buildah and podman on a private vfs storage with runc (crun does not work here).

    Everything machine-specific lives in the two config files their environment points
    at, so the command lines the tests run are the ones docs/deploy.md gives.
    """

    def __init__(self, work: Path, seccomp_profile: Path):
        self.work = work
        for d in ("storage", "run", "libpod"):
            (work / d).mkdir(parents=True, exist_ok=True)
        storage = work / "storage.conf"
        storage.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{work / "storage"}"\n'
                           f'runroot = "{work / "run"}"\n')
        # podman lowers its own RLIMIT_NPROC to 32768 and would ask the container for 1M
        # open files; without CAP_SYS_RESOURCE (as here) runc cannot raise either.
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        conf = work / "containers.conf"
        conf.write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            f'seccomp_profile = "{seccomp_profile}"\n'
            'netns = "none"\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'tmp_dir = "{work / "libpod"}"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}

    def run(self, argv: list[str], timeout: float = 300, check: bool = True, cwd: Path | None = None,
            ) -> subprocess.CompletedProcess:
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, cwd=cwd)
        if check and r.returncode:
            raise AssertionError(f"{' '.join(argv)} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    def import_tar(self, tar: Path, name: str, config: list[str] = ()) -> None:
        """A one-layer image from a root tarball, committed under `name`."""
        ctr = self.run(["buildah", "from", "scratch"]).stdout.strip()
        try:
            self.run(["buildah", "add", ctr, str(tar), "/"], timeout=600)
            if config:
                self.run(["buildah", "config", *config, ctr])
            self.run(["buildah", "commit", "--quiet", ctr, name], timeout=600)
        finally:
            self.run(["buildah", "rm", ctr], check=False)

    def close(self) -> None:
        self.run(["podman", "rm", "--all", "--force"], check=False)
        self.run(["podman", "volume", "prune", "--force"], check=False)
        self.run(["buildah", "rm", "--all"], check=False)
        shutil.rmtree(self.work, ignore_errors=True)
