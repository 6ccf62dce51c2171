"""Container detection: ECS task metadata v4 from a real local HTTP server, cgroup and
mountinfo forms of the runtimes, the hostname fallback, the host, explicit values."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workload_agent.state.container import (ECS_ENV, detect_container, id_from_cgroup,
                                            id_from_mountinfo, parse_image)

FULL = "8b1e5ec2f2d5e9a3c1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4"
TASK_ARN = "arn:aws:ecs:eu-west-1:123456789012:task/prod/0d8b4c7e1f2a43b5a6c7d8e9f0a1b2c3"

CONTAINER_DOC = {
    "DockerId": "0d8b4c7e1f2a43b5a6c7d8e9f0a1b2c3-2495160603",
    "Name": "web",
    "DockerName": "web",
    "Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:2.4.1",
    "ImageID": "sha256:5b0c2e7c3e1a9f8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d",
    "Labels": {
        "com.amazonaws.ecs.cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
        "com.amazonaws.ecs.container-name": "web",
        "com.amazonaws.ecs.task-arn": TASK_ARN,
        "com.amazonaws.ecs.task-definition-family": "shop-web",
        "com.amazonaws.ecs.task-definition-version": "17",
    },
    "DesiredStatus": "RUNNING",
    "KnownStatus": "RUNNING",
    "Limits": {"CPU": 2, "Memory": 0},
    "CreatedAt": "2026-11-26T12:01:02.123456789Z",
    "StartedAt": "2026-11-26T12:01:03.123456789Z",
    "Type": "NORMAL",
    "LogDriver": "awslogs",
    "ContainerARN": "arn:aws:ecs:eu-west-1:123456789012:container/prod/0d8b4c7e/1a2b3c4d",
    "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["10.0.3.17"],
                  "AttachmentIndex": 0, "MACAddress": "0a:1b:2c:3d:4e:5f",
                  "IPv4SubnetCIDRBlock": "10.0.3.0/24", "PrivateDNSName": "ip-10-0-3-17"}],
}
TASK_DOC = {
    "Cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
    "TaskARN": TASK_ARN,
    "Family": "shop-web",
    "Revision": "17",
    "DesiredStatus": "RUNNING",
    "KnownStatus": "RUNNING",
    "Limits": {"CPU": 0.5, "Memory": 1024},
    "PullStartedAt": "2026-11-26T12:00:40.1Z",
    "PullStoppedAt": "2026-11-26T12:00:59.9Z",
    "AvailabilityZone": "eu-west-1b",
    "LaunchType": "FARGATE",
    "Containers": [CONTAINER_DOC],
    "ClockDrift": {"ClockErrorBound": 0.4, "ReferenceTimestamp": "2026-11-26T12:00:00Z",
                   "ClockSynchronizationStatus": "SYNCHRONIZED"},
    "EphemeralStorageMetrics": {"Utilized": 261, "Reserved": 20496},
}


@pytest.fixture
def ecs_server():
    """The task metadata endpoint v4 on 127.0.0.1 (the agent's GETs are recorded)."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            seen.append(self.path)
            doc = {"/v4/abc": CONTAINER_DOC, "/v4/abc/task": TASK_DOC}.get(self.path)
            body = json.dumps(doc).encode() if doc is not None else b"not found"
            self.send_response(200 if doc is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d/v4/abc" % srv.server_address[1], seen
    srv.shutdown()
    srv.server_close()


def test_ecs_task_metadata(ecs_server, tmp_path):
    url, seen = ecs_server
    c = detect_container(environ={ECS_ENV: url}, root=str(tmp_path))
    assert seen == ["/v4/abc", "/v4/abc/task"]
    assert c.id == "0d8b4c7e1f2a" and c.full_id == CONTAINER_DOC["DockerId"]
    assert c.name == "web"
    assert c.image == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:2.4.1"
    assert c.repository == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web"
    assert c.tag == "2.4.1"
    assert c.image_id == "5b0c2e7c3e1a"
    assert c.ip == "10.0.3.17"
    assert c.privileged is False          # Fargate
    assert c.labels["ecs.cluster"] == TASK_DOC["Cluster"]
    assert c.labels["ecs.task_arn"] == TASK_ARN
    assert c.labels["ecs.task_family"] == "shop-web"
    assert c.labels["ecs.task_revision"] == "17"
    assert c.labels["ecs.availability_zone"] == "eu-west-1b"
    assert c.labels["com.amazonaws.ecs.container-name"] == "web"


def test_ecs_fields_reach_the_rules(ecs_server, tmp_path):
    from workload_agent.rules.event import Event, Process
    from workload_agent.rules.output import compile_output

    url, _ = ecs_server
    c = detect_container(environ={ECS_ENV: url}, root=str(tmp_path))
    ev = Event(type="open", proc=Process(pid=1, container=c))
    out = compile_output("%container.id %container.image.repository "
                         "%container.label[ecs.availability_zone] %container.ip")
    assert out.render(ev) == ("0d8b4c7e1f2a 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web "
                              "eu-west-1b 10.0.3.17")


def test_explicit_values_override_ecs(ecs_server, tmp_path):
    url, _ = ecs_server
    c = detect_container(environ={ECS_ENV: url}, container_id=FULL, image="nginx:1.25",
                         privileged=True, root=str(tmp_path))
    assert (c.id, c.full_id, c.image, c.repository, c.tag, c.privileged) == \
        (FULL[:12], FULL, "nginx:1.25", "nginx", "1.25", True)
    assert c.labels["ecs.task_family"] == "shop-web"   # the task is still known


def test_unreachable_ecs_endpoint_falls_back(tmp_path, caplog):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens there now
    proc = tmp_path / "proc/self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text("0::/system.slice/docker-%s.scope\n" % FULL)
    c = detect_container(environ={ECS_ENV: "http://127.0.0.1:%d/v4/x" % port},
                         root=str(tmp_path))
    assert c.id == FULL[:12] and c.type == "docker"
    assert "ECS task metadata" in caplog.text


@pytest.mark.parametrize("line,kind", [
    ("12:memory:/docker/%s", "docker"),
    ("0::/system.slice/docker-%s.scope", "docker"),
    ("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice/"
     "cri-containerd-%s.scope", "containerd"),
    ("0::/kubepods.slice/kubepods-pod1a2b.slice/crio-%s.scope", "cri-o"),
    ("0::/machine.slice/libpod-%s.scope/container", "podman"),
    ("11:cpu:/kubepods/besteffort/pod4b7a-11/%s", "containerd"),
    ("9:pids:/ecs/0d8b4c7e1f2a43b5a6c7d8e9f0a1b2c3/%s", "docker"),
])
def test_cgroup_forms(line, kind):
    text = "1:name=systemd:/init.scope\n" + (line % FULL) + "\n"
    assert id_from_cgroup(text) == (kind, FULL)


def test_cgroup_without_a_runtime_id():
    assert id_from_cgroup("0::/\n4:memory:/process_api/27477b9576ee9a378f068fc6c5da32fc\n") is None
    assert id_from_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n") is None


def test_mountinfo_forms():
    docker = ("731 722 254:1 /var/lib/docker/containers/%s/hostname /etc/hostname rw,relatime "
              "- ext4 /dev/vda1 rw\n" % FULL)
    assert id_from_mountinfo("22 27 0:21 / /proc rw - proc proc rw\n" + docker) == ("docker", FULL)
    podman = ("1 2 0:1 /containers/storage/overlay-containers/%s/userdata/hosts /etc/hosts rw "
              "- tmpfs tmpfs rw\n" % FULL)
    assert id_from_mountinfo(podman)[1] == FULL
    assert id_from_mountinfo("22 27 0:21 / /proc rw - proc proc rw\n") is None


def _fake_root(tmp_path, cgroup="0::/\n", mountinfo="", markers=()):
    proc = tmp_path / "proc/self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text(mountinfo)
    (proc / "status").write_text("Name:\tx\nCapBnd:\t000001ffffffffff\n")
    for m in markers:
        (tmp_path / m).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / m).write_text("")
    return str(tmp_path)


def test_host_when_not_in_a_container(tmp_path):
    c = detect_container(environ={}, root=_fake_root(tmp_path))
    assert c.id == "host" and c.image is None


def test_hostname_when_in_a_container_without_a_visible_id(tmp_path):
    c = detect_container(environ={}, root=_fake_root(tmp_path, markers=[".dockerenv"]))
    assert c.id == socket.gethostname()[:12]
    assert c.privileged is True   # the fake status has the full bounding set
    assert (c.image, c.repository, c.tag) == ("", "", "")


def test_explicit_id_on_a_host(tmp_path):
    c = detect_container(environ={}, container_id="cafe", image="reg:5000/team/app",
                         root=_fake_root(tmp_path))
    assert (c.id, c.repository, c.tag) == ("cafe", "reg:5000/team/app", "")


@pytest.mark.parametrize("ref,expected", [
    ("nginx", ("nginx", "", "")),
    ("nginx:1.25", ("nginx", "1.25", "")),
    ("docker.io/library/nginx:1.25@sha256:abc", ("docker.io/library/nginx", "1.25", "sha256:abc")),
    ("localhost:5000/app", ("localhost:5000/app", "", "")),
    ("localhost:5000/app:v2", ("localhost:5000/app", "v2", "")),
    ("", ("", "", "")),
])
def test_parse_image(ref, expected):
    assert parse_image(ref) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parsers_never_raise(text):
    assert id_from_cgroup(text) is None or len(id_from_cgroup(text)[1]) == 64
    assert id_from_mountinfo(text) is None or len(id_from_mountinfo(text)[1]) == 64
    repo, tag, digest = parse_image(text)
    assert "/" not in tag
