"""Makes orch_harness importable (pytest runs with --import-mode=importlib) and provides
the orchestrator process fixture."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from orch_harness import OrchProcess  # noqa: E402


@pytest.fixture
def orch_factory(tmp_path):
    started = []

    def make(*extra, **kw):
        o = OrchProcess(tmp_path, *extra, **kw)
        started.append(o)
        return o.start()

    yield make
    for o in started:
        o.stop()


