"""The documented tuning knobs work on a real run: the io_uring rule is silenced for the
programs appended to wa_io_uring_programs, and only for them."""
from __future__ import annotations

import pytest

from .catalog import BY_NAME
from .harness import OUR_RULES, make_workdir, pipeline_missing_reason, remove_workdir, run

_missing = pipeline_missing_reason()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

IO_URING = "io_uring used in container"


def _run_with(tuning_yaml, mode_args):
    workdir = make_workdir(shared=False)
    try:
        rules = [OUR_RULES]
        if tuning_yaml:
            tuning = workdir / "tuning.yaml"
            tuning.write_text(tuning_yaml)
            rules.append(tuning)
        return run(BY_NAME["io-uring"], rules, workdir, extra=mode_args)
    finally:
        remove_workdir(workdir)


def test_io_uring_programs_list_silences_the_rule(mode_args):
    plain = _run_with(None, mode_args)
    hits = [a for a in plain.alerts if a["rule"] == IO_URING]
    assert hits, plain.describe()
    program = hits[0]["output_fields"]["proc.name"]
    tuned = _run_with(f"- list: wa_io_uring_programs\n  items: [{program}]\n"
                      "  override:\n    items: append\n", mode_args)
    assert "io_uring_setup: ret=" in tuned.stdout, tuned.describe()
    assert IO_URING not in tuned.rules, tuned.describe()
    other = _run_with("- list: wa_io_uring_programs\n  items: [my-db-server]\n"
                      "  override:\n    items: append\n", mode_args)
    assert IO_URING in other.rules, other.describe()
