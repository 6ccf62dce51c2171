"""Golden fixtures: each directory under golden/ holds an input, the CLI arguments, and the
expected output (checked by hand once) or the expected error lines.

Set WA_REGEN_GOLDEN=1 to write a missing expected file (then read it before committing).
"""
from __future__ import annotations

import os
import shutil

import pytest

import patch_helpers as h

CASES = h.case_dirs()


def _expected(case):
    found = [p for p in case.iterdir() if p.name.startswith("expected.")]
    return found[0] if found else None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case, monkeypatch):
    monkeypatch.chdir(h.GOLDEN)
    src = h.case_input(case)
    rc, out, err = h.run_cli(["patch", h.case_kind(case), str(src), *h.case_args(case)])
    exp = _expected(case)
    if exp is None:
        if not os.environ.get("WA_REGEN_GOLDEN"):
            pytest.fail(f"{case.name}: no expected file")
        if rc == 0:
            (case / ("expected" + src.suffix)).write_text(out)
        else:
            (case / "expected.err").write_text(err)
        pytest.skip("expected file written; review it")
    if exp.name == "expected.err":
        assert rc == 1, out
        for line in exp.read_text().splitlines():
            assert line in err, f"missing error line {line!r} in:\n{err}"
        assert "Traceback" not in err
        return
    assert rc == 0, err
    assert out == exp.read_text()


@pytest.mark.parametrize("case", [c for c in CASES if (c / "args").exists() and not (c / "expected.err").exists()],
                         ids=lambda c: c.name)
def test_golden_idempotent_and_check(case, tmp_path, monkeypatch):
    """A second run is byte-identical; --check accepts the output and flags a changed input."""
    monkeypatch.chdir(h.GOLDEN)
    kind, args = h.case_kind(case), h.case_args(case)
    src = h.case_input(case)
    first = tmp_path / ("first" + src.suffix)
    rc, _, err = h.run_cli(["patch", kind, str(src), *args, "-o", str(first)])
    assert rc == 0, err
    rc, second, err = h.run_cli(["patch", kind, str(first), *args])
    assert rc == 0, err
    assert second == first.read_text()
    rc, _, err = h.run_cli(["patch", kind, str(first), *args, "--check"])
    assert rc == 0, err
    rc, _, _ = h.run_cli(["patch", kind, str(src), *args, "--check"])
    from workload_agent.patch import docio

    def content(path):
        return [docio.plain(d) for d in docio.load(path.read_text(), str(path), multi=kind == "k8s").docs]

    assert rc == (0 if content(first) == content(src) else 3)
    # --in-place writes what -o wrote
    inplace = tmp_path / ("inplace" + src.suffix)
    shutil.copy(src, inplace)
    rc, out, err = h.run_cli(["patch", kind, str(inplace), *args, "--in-place"])
    assert rc == 0 and out == "", err
    assert inplace.read_text() == first.read_text()
