"""Documented blind spots of the default rules (docs/default-rules.md, "Blind spots"):
each test runs the evasion for real and asserts that the rule it evades does NOT fire,
so the day it is caught the test fails and the documentation gets updated."""
from __future__ import annotations

import pytest

from .catalog import ATTACK, Scenario, sh
from .harness import OUR_RULES, make_workdir, pipeline_missing_reason, remove_workdir, run

_missing = pipeline_missing_reason()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")


def _run(scenario, mode_args):
    workdir = make_workdir(shared=False)
    try:
        return run(scenario, [OUR_RULES], workdir, extra=mode_args)
    finally:
        remove_workdir(workdir)


def test_io_uring_operations_are_invisible(mode_args):
    """An open submitted through io_uring is not a system call: the read of /etc/shadow
    is not reported by the file rules. Only the ring's setup is, by "io_uring used in
    container": that alert is the whole of what the agent can say."""
    outcome = _run(Scenario("io-uring-shadow", tuple(f"{ATTACK} io-uring-open /etc/shadow".split())),
                   mode_args)
    assert "io_uring openat /etc/shadow: res=" in outcome.stdout, outcome.describe()
    assert "io_uring used in container" in outcome.rules, outcome.describe()
    assert "Read of password or sudoers file" not in outcome.rules, outcome.describe()


def test_decoding_inside_a_script_is_not_seen(mode_args):
    """"Encoded payload decoded" looks at programs and command lines: a script that
    decodes its payload with a library call (base64 module) leaves neither, and what it
    runs (here `echo`) is an ordinary program."""
    outcome = _run(Scenario("decode-in-script", sh(
        f"echo ZWNobyBkZWNvZGVkLWluLXByb2Nlc3MK > blob && {ATTACK} decode-in-process blob")),
        mode_args)
    assert "decoded-in-process" in outcome.stdout, outcome.describe()
    assert "Encoded payload decoded" not in outcome.rules, outcome.describe()


def test_overwriting_without_a_wiping_tool_is_not_seen(mode_args):
    """"Data destruction tool run" knows wiping programs: overwriting a file with random
    bytes and deleting it from a script is, syscall by syscall, an ordinary write and
    unlink (write is never traced: it is the hottest call there is)."""
    outcome = _run(Scenario("overwrite", sh(
        f"printf secret > data && {ATTACK} overwrite-and-delete data")), mode_args)
    assert "overwrote and removed data" in outcome.stdout, outcome.describe()
    assert "Data destruction tool run" not in outcome.rules, outcome.describe()


def test_encrypting_to_new_files_without_renames_is_not_seen(mode_args):
    """"Mass file encryption pattern" counts renames that append an extension: writing
    the encrypted copy under the new name and deleting the original makes no rename,
    and counting plain writes and unlinks would fire on every build and git checkout."""
    outcome = _run(Scenario("rewrite", tuple(f"{ATTACK} mass-rename {{workdir}}/docs 30 rewrite"
                                             .split())), mode_args)
    assert "30 files locked (rewrite)" in outcome.stdout, outcome.describe()
    assert "Mass file encryption pattern" not in outcome.rules, outcome.describe()
