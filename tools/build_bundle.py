#!/usr/bin/env python3
"""Build /opt/draios without Docker: a self-contained `bin/instrument` for any image.

    python3 tools/build_bundle.py --out build/opt-draios [--python /usr/bin/python3.11]

The "own loader" layout (see the project's bundle notes): a distribution's Python
binary, the shared libraries `ldd` lists for it and for its extension modules (the
dynamic loader included), its standard library, and the project with its dependencies
installed by that same Python (so the tracer's C extension matches it). bin/instrument
is a small static program that runs
`lib/ld-linux*.so --library-path lib bin/python3.X -I -c <entry> ARGS...`: nothing is
unpacked at start, and no environment variable is set for the agent, so the workload
sees exactly the container's environment.

Install the result at /opt/draios (the launcher finds its root from /proc/self/exe,
falling back to --prefix). Needs: a Debian-style python3.X with venv and its -dev
headers, gcc and the static libc (libc6-dev), network access to the package index
(pip installs the project's dependencies).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Standard-library parts an agent never uses; dropping them saves about half the size.
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
               "unittest", "distutils", "venv", "site-packages", "dist-packages", "sqlite3", "dbm"}
DYNLOAD_SKIP = re.compile(r"^(_test|_xx|xx|_ctypes_test|_tkinter|_curses|readline|nis|ossaudiodev|audioop"
                          r"|_sqlite3|_dbm|_gdbm)")
# Installed packages the agent does not import at run time: packaging tools, cffi's
# build-time half (the compiled tracer needs only _cffi_backend), and ruamel.yaml (used
# by `workload-agent patch`, which runs on the user's machine, not in the container).
SITE_SKIP = re.compile(r"^(pip|setuptools|_distutils_hack|pkg_resources|wheel|cffi|pycparser|ruamel[._]yaml"
                       r"|ruamel)([-_.].*)?$|^distutils-precedence\.pth$")


def run(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def ldd_deps(path: Path) -> dict[str, Path]:
    """{soname: resolved file} of path's shared-library dependencies, loader included."""
    out: dict[str, Path] = {}
    for line in run(["ldd", str(path)]).splitlines():
        line = line.strip()
        m = re.match(r"(\S+) => (\S+) \(0x", line)
        if m:
            out[m.group(1)] = Path(m.group(2))
            continue
        m = re.match(r"(/\S+) \(0x", line)  # the dynamic loader itself
        if m:
            out[Path(m.group(1)).name] = Path(m.group(1))
    return out


def copy_libs(binaries: list[Path], libdir: Path) -> str:
    """Copy every dependency of binaries into libdir; returns the loader's file name."""
    loader = None
    for b in binaries:
        for soname, src in ldd_deps(b).items():
            if soname.startswith("ld-linux"):
                loader = soname
            dst = libdir / soname
            if not dst.exists():
                shutil.copy2(src.resolve(), dst)
    if loader is None:
        raise SystemExit("build_bundle: ldd shows no ld-linux loader; is the Python static?")
    return loader


def copy_stdlib(stdlib: Path, dest: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = set()
        top = Path(directory) == stdlib
        for n in names:
            if top and (n in STDLIB_SKIP or n.startswith("config-")):
                skip.add(n)
            elif Path(directory).name == "lib-dynload" and DYNLOAD_SKIP.match(n):
                skip.add(n)
        return skip

    shutil.copytree(stdlib, dest, ignore=ignore, symlinks=False)


def install_project(python: Path, site: Path, work: Path) -> None:
    """pip-install the project (and so its dependencies) with the bundled Python itself."""
    venv = work / "venv"
    run([str(python), "-m", "venv", str(venv)])
    vpy = venv / "bin" / "python"
    subprocess.run([str(vpy), "-m", "pip", "install", "--quiet", "--no-compile", str(REPO)], check=True)
    vsite = Path(run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    site.mkdir(parents=True, exist_ok=True)
    for entry in vsite.iterdir():
        if SITE_SKIP.match(entry.name):
            continue
        if entry.is_dir():
            shutil.copytree(entry, site / entry.name, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, site / entry.name)


def build_launcher(out: Path, loader: str, pyname: str, prefix: str, work: Path) -> None:
    src = REPO / "tools" / "instrument_launcher.c"
    run(["gcc", "-static", "-Os", "-s", "-Wall", "-Werror",
         f'-DLDSO="{loader}"', f'-DPYTHON="{pyname}"', f'-DPREFIX="{prefix}"',
         "-o", str(out), str(src)])


def build(out: Path, python: Path, prefix: str) -> None:
    version = run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).strip()
    stdlib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"]).strip())
    pyname = f"python{version}"
    if out.exists():
        shutil.rmtree(out)
    (out / "bin").mkdir(parents=True)
    lib = out / "lib"
    lib.mkdir()
    shutil.copy2(python.resolve(), out / "bin" / pyname)
    copy_stdlib(stdlib, lib / pyname)
    # Debian's site.py looks for packages in <prefix>/lib/python3/dist-packages
    site = lib / "python3" / "dist-packages"
    with tempfile.TemporaryDirectory() as tmp:
        install_project(python, site, Path(tmp))
        extensions = sorted((lib / pyname / "lib-dynload").glob("*.so")) + sorted(site.rglob("*.so"))
        loader = copy_libs([python.resolve(), *extensions], lib)
        build_launcher(out / "bin" / "instrument", loader, pyname, prefix, Path(tmp))
    rules = REPO / "rules"
    if rules.is_dir():
        shutil.copytree(rules, out / "rules")
    else:
        (out / "rules").mkdir()
    # byte-compile what pip left uncompiled: startup reads .pyc instead of parsing
    subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", str(site)], check=False,
                   stdout=subprocess.DEVNULL)
    for p in out.rglob("*"):  # world-readable, so non-root containers can run it
        mode = p.stat().st_mode
        p.chmod(mode | 0o444 | (0o111 if p.is_dir() or mode & 0o100 else 0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="directory to create (its contents go to /opt/draios)")
    default_py = Path(sys.executable) if sys.executable.startswith("/usr/bin/") else Path("/usr/bin/python3")
    ap.add_argument("--python", type=Path, default=default_py,
                    help="a distribution's Python to bundle (default %(default)s)")
    ap.add_argument("--prefix", default="/opt/draios", help="install location (launcher fallback)")
    args = ap.parse_args(argv)
    if shutil.which("readelf") and "RUNPATH" in run(["readelf", "-d", str(args.python.resolve())]):
        print(f"build_bundle: warning: {args.python} carries DT_RUNPATH; prefer the distribution's Python",
              file=sys.stderr)
    build(args.out, args.python, args.prefix)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{args.out}: {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
