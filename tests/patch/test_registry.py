"""Registry lookup of image ENTRYPOINT/CMD against a real HTTP registry on loopback."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import patch_helpers as h
from workload_agent.patch.core import PatchError
from workload_agent.patch.images import parse_reference, registry_config

CONFIGS = {
    "amd64": {"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/srv/amd64"], "Cmd": ["run"]}},
    "arm64": {"architecture": "arm64", "os": "linux", "config": {"Entrypoint": ["/srv/arm64"], "Cmd": ["run"]}},
}


class Registry(BaseHTTPRequestHandler):
    """Index -> per-platform manifest -> config blob, behind an anonymous bearer token."""

    def log_message(self, *a):
        pass

    def _send(self, code, body=b"", ctype="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        port = self.server.server_address[1]
        if self.path.startswith("/token"):
            return self._send(200, json.dumps({"token": "tok"}).encode())
        if self.headers.get("Authorization") != "Bearer tok":
            realm = f'Bearer realm="http://127.0.0.1:{port}/token",service="test",scope="repository:app:pull"'
            return self._send(401, b"{}", headers=[("WWW-Authenticate", realm)])
        if self.path == "/v2/app/manifests/1":
            index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
                {"digest": f"sha256:m-{a}", "platform": {"os": "linux", "architecture": a}} for a in CONFIGS]}
            return self._send(200, json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json")
        for a in CONFIGS:
            if self.path == f"/v2/app/manifests/sha256:m-{a}":
                return self._send(200, json.dumps({"schemaVersion": 2, "config": {"digest": f"sha256:c-{a}"}}).encode())
            if self.path == f"/v2/app/blobs/sha256:c-{a}":
                return self._send(200, json.dumps(CONFIGS[a]).encode())
        self._send(404, b'{"errors": []}')


@pytest.fixture
def registry():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_platform_is_picked_from_the_index(registry):
    amd = registry_config(f"{registry}/app:1", "amd64", insecure=(registry,))
    arm = registry_config(f"{registry}/app:1", "arm64", insecure=(registry,))
    assert amd.entrypoint == ["/srv/amd64"] and arm.entrypoint == ["/srv/arm64"]
    assert registry_config(f"{registry}/app:1", None, insecure=(registry,)).entrypoint == ["/srv/amd64"]


def test_failures_are_errors_naming_the_image(registry):
    with pytest.raises(PatchError, match=r"app:2'.*answered 404"):
        registry_config(f"{registry}/app:2", "amd64", insecure=(registry,))
    with pytest.raises(PatchError, match="no linux/s390x image"):
        registry_config(f"{registry}/app:1", "s390x", insecure=(registry,))
    with pytest.raises(PatchError, match="cannot reach registry"):
        registry_config("127.0.0.1:9/app:1", "amd64", insecure=("127.0.0.1:9",), timeout=2)


def test_cli_registry_lookup_for_an_arm64_task(registry, tmp_path):
    td = {"family": "t", "requiresCompatibilities": ["FARGATE"],
          "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
          "containerDefinitions": [{"name": "app", "image": f"{registry}/app:1", "command": ["--fast"]}]}
    f = tmp_path / "td.json"
    f.write_text(json.dumps(td))
    rc, out, err = h.run_cli(["patch", "taskdef", str(f), "--registry-lookup", "--insecure-registry", registry])
    assert rc == 0, err
    (app, _) = json.loads(out)["containerDefinitions"]
    assert app["command"] == ["/srv/arm64", "--fast"]
    rc, _, err = h.run_cli(["patch", "taskdef", str(f)])  # without the lookup: a clear error
    assert rc == 1 and "--image-config" in err


@pytest.mark.parametrize("ref, want", [
    ("nginx", ("registry-1.docker.io", "library/nginx", "latest")),
    ("nginx:1.27", ("registry-1.docker.io", "library/nginx", "1.27")),
    ("docker.io/grafana/grafana:11", ("registry-1.docker.io", "grafana/grafana", "11")),
    ("ghcr.io/org/tool/sub:v1", ("ghcr.io", "org/tool/sub", "v1")),
    ("localhost:5000/app@sha256:abc", ("localhost:5000", "app", "sha256:abc")),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/app", ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "app",
                                                          "latest")),
])
def test_parse_reference(ref, want):
    assert parse_reference(ref) == want
