"""The self-contained /opt/draios, built without Docker, run in a root filesystem that holds
nothing but Debian's busybox-static and the bundle: no Python, no glibc outside the bundle.

Slow (builds the bundle with pip, ~15 s) and needs root (chroot, mount), gcc with the
static libc, a Debian python3 with venv and headers, and apt to fetch busybox-static.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = Path(f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}")
if not PYTHON.exists():
    PYTHON = Path("/usr/bin/python3")

SHADOW_RULE = """\
- rule: Shadow file read
  desc: something opened /etc/shadow
  condition: evt.type in (open, openat, openat2) and fd.name = /etc/shadow
  output: "shadow file opened (command=%proc.cmdline file=%fd.name)"
  priority: WARNING
"""


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root for chroot and mount"
    if platform.machine() not in ("x86_64", "aarch64"):
        return "checked on x86_64 and aarch64 only"
    for tool in ("gcc", "chroot", "unshare", "apt-get", "dpkg-deb", "ldd"):
        if not shutil.which(tool):
            return f"needs {tool}"
    if not PYTHON.exists() or subprocess.run([str(PYTHON), "-c", "import venv, ensurepip"],
                                             capture_output=True).returncode:
        return f"needs a Debian python3 with venv at {PYTHON}"
    return None


def _installed_busybox_static() -> Path | None:
    """Debian's busybox-static when installed (the arm64 check's guest has no package index)."""
    got = subprocess.run(["dpkg-query", "-L", "busybox-static"], capture_output=True, text=True)
    found = [Path(p) for p in got.stdout.splitlines() if p.endswith("/bin/busybox")] if got.returncode == 0 else []
    return found[0] if found and found[0].is_file() else None


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("bundle")
    busybox = _installed_busybox_static()
    if busybox is None:
        got = subprocess.run(["apt-get", "download", "busybox-static"], cwd=work, capture_output=True, text=True)
        debs = list(work.glob("busybox-static_*.deb"))
        if not debs:
            pytest.skip(f"cannot fetch busybox-static: {got.stderr.strip()[-200:]}")
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(work / "deb")], check=True)
        busybox = work / "deb" / "bin" / "busybox"
    root = work / "root"
    for d in ("bin", "etc", "proc", "tmp", "opt", "rules"):
        (root / d).mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    (root / "etc" / "shadow").write_text("root:$6$salt$notarealhash:19000:0:99999:7:::\n")
    (root / "etc" / "shadow").chmod(0o600)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "rules" / "shadow.yaml").write_text(SHADOW_RULE)
    built = subprocess.run([sys.executable, str(REPO / "tools" / "build_bundle.py"), "--out",
                            str(root / "opt" / "draios"), "--python", str(PYTHON)],
                           capture_output=True, text=True, timeout=3600)  # a hang guard: >10 min emulated
    assert built.returncode == 0, built.stdout + built.stderr
    return root


def run_in(root: Path, argv: list[str], env: dict | None = None, timeout: float = 60, user: str | None = None):
    """argv inside root, with a fresh /proc (as every container has) and exactly env."""
    # the host tools by absolute path: env is the workload's, its PATH is the chroot's
    chroot = [shutil.which("chroot"), *([f"--userspec={user}"] if user else []), str(root), *argv]
    script = '"$1" -t proc proc "$2/proc" && shift 2 && exec "$@"'
    return subprocess.run([shutil.which("unshare"), "--mount", "--pid", "--fork", "/bin/sh", "-c", script, "sh",
                           shutil.which("mount"), str(root), *chroot],
                          env=env if env is not None else {"PATH": "/bin"},
                          capture_output=True, text=True, timeout=timeout)


def test_rootfs_has_no_python_and_no_libc_outside_the_bundle(rootfs):
    outside = sorted(str(p.relative_to(rootfs)) for p in rootfs.rglob("*")
                     if p.is_file() and "opt/draios" not in str(p))
    assert outside == ["bin/busybox", "etc/passwd", "etc/shadow", "rules/shadow.yaml"]
    launcher = (rootfs / "opt/draios/bin/instrument").read_bytes()
    assert b"PT_INTERP" not in launcher and b"/lib64/ld-linux" not in launcher  # static


def test_exit_status_comes_through(rootfs):
    r = run_in(rootfs, ["/opt/draios/bin/instrument", "/bin/busybox", "sh", "-c", "exit 7"])
    assert r.returncode == 7, r.stderr
    r = run_in(rootfs, ["/opt/draios/bin/instrument", "/bin/busybox", "sh", "-c", "echo out; echo err >&2"])
    assert r.returncode == 0 and "out" in r.stdout and "err" in r.stderr, r.stderr


def test_workload_sees_exactly_the_container_environment(rootfs):
    env = {"PATH": "/bin", "APP_MODE": "prod", "PYTHONPATH": "/nowhere", "LD_LIBRARY_PATH": "/app/lib"}
    r = run_in(rootfs, ["/opt/draios/bin/instrument", "/bin/busybox", "sh", "-c", "/bin/busybox env > /tmp/env"],
               env=env)
    assert r.returncode == 0, r.stderr
    seen = dict(line.split("=", 1) for line in (rootfs / "tmp" / "env").read_text().splitlines())
    seen.pop("PWD", None)  # set by the shell itself
    seen.pop("SHLVL", None)
    assert seen == env


def _pipeline_missing() -> str | None:
    """The detection pipeline is assembled on main; the alert test waits for it."""
    try:
        import workload_agent.tracer  # noqa: F401
        from workload_agent.state import StateTracker  # noqa: F401
        from workload_agent import runner  # noqa: F401
    except ImportError as exc:
        return f"the detection pipeline is not importable yet: {exc}"
    return None


def test_shadow_read_is_alerted(rootfs):
    missing = _pipeline_missing()
    if missing:
        pytest.skip(missing)
    env = {"PATH": "/bin", "WORKLOAD_AGENT_RULES": "/rules/shadow.yaml"}
    r = run_in(rootfs, ["/opt/draios/bin/instrument", "/bin/busybox", "sh", "-c",
                        "cat /etc/shadow > /tmp/copy-of-shadow; exit 4"], env=env)
    assert r.returncode == 4, r.stderr
    assert "shadow file opened" in r.stdout + r.stderr, r.stdout + r.stderr


def _tree(top: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(top)): (p.stat().st_size, p.stat().st_mtime_ns) for p in top.rglob("*")}


def test_start_changes_nothing_in_the_bundle_and_its_size(rootfs, record_property):
    """Start-up time is recorded, not asserted (bench/ measures speed; an emulated arm64
    machine is 50 times slower). What can fail: a run writes nothing into /opt/draios
    (every module it imports at start is already byte-compiled, so nothing is parsed at
    start and a read-only /opt/draios starts the same), and the bundle stays small."""
    bundle = rootfs / "opt/draios"
    before = _tree(bundle)
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        r = run_in(rootfs, ["/opt/draios/bin/instrument", "/bin/busybox", "true"])
        times.append(time.monotonic() - t0)
        assert r.returncode == 0, r.stderr
    after = _tree(bundle)
    assert sorted(set(after) - set(before)) == []
    assert [p for p in before if after.get(p) != before[p]] == []
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    record_property("bundle_start_s", min(times))
    record_property("bundle_bytes", size)
    print(f"bundle: {size / 1e6:.1f} MB, start to exit of `true`: {min(times):.3f} s")
    assert size < 80e6  # 46 MB on x86_64 (docs/deploy.md); a dropped stdlib filter would double it


def test_kubernetes_init_copy_as_non_root_then_run_relocated(rootfs):
    """What the patched pod does: a non-root init container copies /opt/draios into an
    emptyDir with busybox cp, and a non-root app runs instrument from the copy."""
    (rootfs / "tmp").chmod(0o1777)
    copy = "/tmp/agent-copy"
    r = run_in(rootfs, ["/bin/busybox", "sh", "-c",
                        f"/bin/busybox mkdir {copy} && /bin/busybox cp -R /opt/draios/. {copy}/"], user="65534:65534")
    assert r.returncode == 0, r.stderr
    r = run_in(rootfs, [f"{copy}/bin/instrument", "/bin/busybox", "sh", "-c", "/bin/busybox id -u; exit 9"],
               user="65534:65534")
    assert r.returncode == 9, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "65534"


def test_bundled_python_loads_the_tracer_extension_and_every_module(rootfs):
    """The C extension was built for the bundled Python, and nothing the agent imports
    was trimmed away (the patch command is not part of the bundle)."""
    code = (
        "import pkgutil, importlib, workload_agent\n"
        "from workload_agent.tracer._core import ffi, lib\n"
        "bad = []\n"
        "for m in pkgutil.walk_packages(workload_agent.__path__, 'workload_agent.'):\n"
        "    if m.name.startswith('workload_agent.patch') or m.name.endswith(('.build', '__main__')):\n"
        "        continue\n"
        "    try:\n"
        "        importlib.import_module(m.name)\n"
        "    except ImportError as exc:\n"
        "        bad.append(f'{m.name}: {exc}')\n"
        "print('\\n'.join(bad) or 'ok')\n"
    )
    py = "/opt/draios/lib/" + next((rootfs / "opt/draios/lib").glob("ld-linux*.so*")).name
    r = run_in(rootfs, [py, "--library-path", "/opt/draios/lib", "/opt/draios/bin/python3.11", "-I", "-c", code])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    # modules of subsystems still being written on other branches may be missing here too
    host_missing = _host_import_failures()
    assert [line for line in lines if line != "ok" and line.split(":")[0] not in host_missing] == []


def _host_import_failures() -> set:
    import importlib
    import pkgutil

    import workload_agent

    bad = set()
    for m in pkgutil.walk_packages(workload_agent.__path__, "workload_agent."):
        if m.name.endswith(("__main__", ".build")):
            continue
        try:
            importlib.import_module(m.name)
        except ImportError:
            bad.add(m.name)
        except Exception:
            pass
    return bad
