import os

import pytest


def need(ok: bool, reason: str) -> None:
    """Skip when a component is missing here; under CI=true it must be there."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)
