"""Our generated syscall tables against an independent oracle (python-ptrace, GPL-2.0,
used here only: the runtime never imports it)."""
import pathlib
import platform
import subprocess
import sys

import pytest

from tests.conftest import needs

from workload_agent.events.syscall_table import SYSCALLS

ORACLE = {"x86_64": "ptrace.syscall.linux.x86_64", "i386": "ptrace.syscall.linux.i386",
          "aarch64": "ptrace.syscall.linux.aarch64"}


@pytest.mark.parametrize("arch", sorted(ORACLE))
def test_numbers_agree_with_python_ptrace(arch):
    mod = needs(ORACLE[arch])
    oracle = mod.SYSCALL_NAMES  # nr -> name
    ours = SYSCALLS[arch]
    common = [(nr, name) for nr, name in oracle.items() if name in ours]
    assert len(common) > 250
    mismatched = [(name, nr, ours[name]) for nr, name in common
                  if ours[name] != nr and not _same_call_other_name(arch, ours, name, nr)]
    assert mismatched == []


# python-ptrace gives the newer i386 calls their base names (kernel: getuid32, ugetrlimit...).
I386_NEWER = {"umount": "umount2", "select": "_newselect", "getrlimit": "ugetrlimit"}


def _same_call_other_name(arch, ours, name, nr):
    if arch == "x86_64" and 512 <= nr < 548:
        return True  # x32-only compat numbers, which the oracle folds into its x86_64 table
    return nr in (ours.get(name + "32"), ours.get("old" + name), ours.get(I386_NEWER.get(name, "")))


def test_aarch64_lacks_legacy_calls_and_has_the_at_forms():
    a = SYSCALLS["aarch64"]
    for legacy in ("open", "fork", "vfork", "unlink", "rename", "mkdir", "chmod", "dup2"):
        assert legacy not in a
    for at in ("openat", "unlinkat", "renameat", "renameat2", "mkdirat", "fchmodat", "dup3", "clone"):
        assert at in a


def test_generator_reproduces_the_committed_table(tmp_path):
    root = pathlib.Path(__file__).resolve().parents[2]
    committed = (root / "workload_agent/events/syscall_table.py").read_text()
    gen = root / "tools/gen_syscall_table.py"
    if not pathlib.Path("/usr/include/asm-generic/unistd.h").exists():
        pytest.skip("kernel headers (linux-libc-dev) not installed")
    if platform.machine() != "x86_64":  # seen on arm64: no asm/unistd_64.h there
        pytest.skip("the generator reads x86_64's and i386's asm headers, which x86_64's linux-libc-dev has")
    code = gen.read_text().replace('OUT = ROOT / "workload_agent" / "events" / "syscall_table.py"',
                                   f'OUT = __import__("pathlib").Path({str(tmp_path / "t.py")!r})')
    script = tmp_path / "gen.py"
    script.write_text(code)
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    assert (tmp_path / "t.py").read_text() == committed
