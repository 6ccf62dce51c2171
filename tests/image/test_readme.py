"""README.md's two commands, as written, in a fresh Debian 12 root (mmdebstrap minbase:
no Python, no compiler), as its root user would type them in a copy of the checkout.

The commands are read from README.md by tools/readme_command.py, the same script CI uses
to run the second one. Slow: apt-get and pip fetch from Debian's mirror and PyPI.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import roots

sys.path.insert(0, str(roots.REPO / "tools"))
import readme_command  # noqa: E402

ALERT = "Password or sudoers file opened for reading (file=/etc/shadow"
# The README's test command runs the whole suite; here it runs the tracer's core tests
# and the end-to-end detection tests through pytest's own environment variable, which
# leaves the command untouched (the whole suite runs in CI, on the host, from the same
# command).
SUBSET = "-p no:cacheprovider tests/tracer/test_core.py tests/detect/test_end_to_end.py"
CHECKOUT = "/src/workload-agent"


def copy_checkout(dest: Path) -> None:
    """The files a clone would have (tracked, plus new ones not ignored), not build output."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=roots.REPO, capture_output=True)
    if listed.returncode:
        pytest.fail(f"needs a git checkout to copy: {listed.stderr.decode()[-300:]}")
    for rel in filter(None, listed.stdout.decode().split("\0")):
        src = roots.REPO / rel
        if not src.exists():  # deleted in the work tree, not yet committed
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def in_root(root: Path, command: str, env: dict, timeout: float):
    """`sh -c command` in the root, from the checkout, with a fresh /proc and /dev/shm."""
    script = ('mount -t proc proc "$1/proc" && mount -t tmpfs tmpfs "$1/dev/shm" '
              '&& exec chroot "$1" /bin/sh -c "cd $2 && $3"')
    return subprocess.run(["unshare", "--mount", "--pid", "--fork", "/bin/sh", "-c", script, "sh",
                           str(root), CHECKOUT, command],
                          env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def debian(tmp_path_factory, request):
    roots.need(roots.missing(("mmdebstrap", "unshare", "chroot", "git")))
    timings = roots.Timings()
    work = tmp_path_factory.mktemp("readme")
    root = work / "root"
    root.mkdir()
    try:
        tar = roots.debian_tar(timings)
        with timings.step("unpack root"):
            subprocess.run(["tar", "-xf", str(tar), "-C", str(root)], check=True)
        assert not (root / "usr/bin/python3").exists(), "the root is meant to be without Python"
        copy_checkout(root / CHECKOUT.lstrip("/"))
        shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        ca = root / "usr/local/share/host-ca/ca.crt"
        ca.parent.mkdir(parents=True)
        shutil.copy2(roots.HOST_CA, ca)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
               "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
               # see roots.HOST_CA: this machine's route to PyPI, not part of the commands
               "PIP_CERT": "/" + str(ca.relative_to(root))}
        yield root, env, timings
    finally:
        roots.report(request, f"\ntests/image/test_readme.py durations: {timings.show()}")
        shutil.rmtree(work, ignore_errors=True)


def test_readme_has_two_commands():
    found = readme_command.commands(readme_command.README.read_text())
    assert len(found) == 2, found
    setup, tests = found
    assert "python3 -m venv" in setup and "workload-agent run" in setup
    assert "pytest" in tests


def test_readme_commands_on_a_fresh_debian(debian):
    root, env, timings = debian
    setup, tests = readme_command.commands(readme_command.README.read_text())
    with timings.step("README command 1"):
        r = in_root(root, setup, env, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.splitlines()[-1] == "done", r.stdout[-2000:]
    assert ALERT in r.stderr, r.stderr[-3000:]

    with timings.step("README command 2"):
        r = in_root(root, tests, {**env, "PYTEST_ADDOPTS": SUBSET}, timeout=1800)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-3000:]
    summary = r.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    assert os.path.exists(root / CHECKOUT.lstrip("/") / ".venv/bin/workload-agent")
