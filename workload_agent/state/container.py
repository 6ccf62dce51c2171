"""Which container the agent (and so the whole traced workload) runs in.

Falco's container plugin asks the runtime; inside the container we have what the
container itself can see: the ECS task metadata endpoint v4 on ECS/Fargate, else
the id in /proc/self/cgroup or /proc/self/mountinfo, else (in a container whose id
does not show) the hostname, which runtimes set to the short id by default.
"""
from __future__ import annotations

import os
import time
from typing import Dict, Mapping, Optional, Tuple

from ..rules.event import Container

ECS_ENV = "ECS_CONTAINER_METADATA_URI_V4"
ECS_TIMEOUT_S = 2.0
#: Keys under which the ECS task's fields are exposed as container labels
#: (container.label[ecs.cluster] ...); Container has no slot for them.
ECS_LABELS = (
    ("Cluster", "ecs.cluster"),
    ("TaskARN", "ecs.task_arn"),
    ("Family", "ecs.task_family"),
    ("Revision", "ecs.task_revision"),
    ("AvailabilityZone", "ecs.availability_zone"),
    ("LaunchType", "ecs.launch_type"),
)

_HEX64 = r"([0-9a-f]{64})"
# (runtime type, pattern on a cgroup path); the first capture group is the full id.
_CGROUP_PATTERNS = (
    ("docker", r"/docker[/-]" + _HEX64 + r"(?:\.scope)?(?:/|$)"),
    ("containerd", r"cri-containerd[-:]" + _HEX64 + r"(?:\.scope)?(?:/|$)"),
    ("cri-o", r"crio[-:]" + _HEX64 + r"(?:\.scope)?(?:/|$)"),
    ("podman", r"libpod[-:]" + _HEX64 + r"(?:\.scope)?(?:/|$)"),
    ("containerd", r"/kubepods[^ ]*/" + _HEX64 + r"$"),
    ("docker", r"/ecs/[0-9a-f-]+/" + _HEX64 + r"$"),
)
# mountinfo: the files a runtime bind-mounts into the container name its directory.
_MOUNT_PATTERNS = (
    ("docker", r"/docker/containers/" + _HEX64 + r"/"),
    ("podman", r"/containers/(?:storage/)?overlay-containers/" + _HEX64 + r"/"),
    ("containerd", r"/io\.containerd\.[^/ ]+/[^/ ]+/" + _HEX64 + r"/"),
    ("cri-o", r"/containers/storage/[^ ]*/" + _HEX64 + r"/userdata/"),
    ("containerd", r"/pods/[0-9a-f-]+/containers/[^/ ]+/" + _HEX64),
)
# hex digits -> "x", and "x" itself -> "-": a run of 64 "x" is a run of 64 hex digits
_HEX_MARK = str.maketrans({**{c: "x" for c in "0123456789abcdef"}, "x": "-"})


def _has_id(text: str) -> bool:
    """Whether text holds a run of 64 hex digits, which every pattern above needs: on a
    host (and under runtimes whose ids do not show) no pattern is compiled at start-up."""
    return "x" * 64 in text.translate(_HEX_MARK)


def _search(patterns, text: str) -> Optional[Tuple[str, str]]:
    import re

    for kind, pattern in patterns:
        m = re.search(pattern, text)
        if m:
            return kind, m.group(1)
    return None
_CAP_ALL = (1 << 41) - 1


def parse_image(ref: Optional[str]) -> Tuple[str, str, str]:
    """(repository, tag, digest) of an image reference; "" for missing parts."""
    if not ref:
        return "", "", ""
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:], digest
    return ref, "", digest


def id_from_cgroup(text: str) -> Optional[Tuple[str, str]]:
    """(runtime type, full id) from /proc/PID/cgroup text, or None."""
    if not _has_id(text):
        return None
    for line in text.splitlines():
        found = _search(_CGROUP_PATTERNS, line.split(":", 2)[-1].strip())
        if found:
            return found
    return None


def id_from_mountinfo(text: str) -> Optional[Tuple[str, str]]:
    """(runtime type, full id) from /proc/PID/mountinfo text, or None."""
    if not _has_id(text):
        return None
    for line in text.splitlines():
        found = _search(_MOUNT_PATTERNS, line)
        if found:
            return found
    return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _in_container(root: str, environ: Mapping[str, str]) -> bool:
    """Markers runtimes leave, for a container whose id does not show in cgroups."""
    if environ.get("container") or environ.get("KUBERNETES_SERVICE_HOST"):
        return True
    return any(os.path.exists(os.path.join(root, p)) for p in (".dockerenv", "run/.containerenv"))


def _get_json(url: str) -> dict:
    import json
    import urllib.request  # only on ECS: it costs every other start-up ~30 ms

    with urllib.request.urlopen(url, timeout=ECS_TIMEOUT_S) as resp:
        doc = json.loads(resp.read().decode("utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def _str(v) -> Optional[str]:
    return None if v is None else str(v)


def from_ecs(base_url: str) -> Container:
    """The container and task documents of the ECS task metadata endpoint v4."""
    doc = _get_json(base_url.rstrip("/"))
    task = _get_json(base_url.rstrip("/") + "/task")
    full_id = _str(doc.get("DockerId")) or ""
    image = _str(doc.get("Image")) or ""
    repo, tag, digest = parse_image(image)
    labels: Dict[str, str] = {}
    raw_labels = doc.get("Labels")
    if isinstance(raw_labels, dict):
        labels.update({str(k): str(v) for k, v in raw_labels.items()})
    for key, label in ECS_LABELS:
        if task.get(key) is not None:
            labels[label] = str(task[key])
    ip = None
    nets = doc.get("Networks")
    if isinstance(nets, list):
        for net in nets:
            addrs = net.get("IPv4Addresses") if isinstance(net, dict) else None
            if isinstance(addrs, list) and addrs:
                ip = str(addrs[0])
                break
    image_id = _str(doc.get("ImageID")) or ""
    if image_id.startswith("sha256:"):
        image_id = image_id[len("sha256:"):]
    return Container(
        id=full_id[:12] or "host", full_id=full_id or None, name=_str(doc.get("Name")),
        type="ecs", image=image, image_id=image_id[:12], repository=repo, tag=tag,
        digest=digest or None,
        # Fargate never runs privileged containers; EC2 launch type does not say.
        privileged=False if task.get("LaunchType") == "FARGATE" else None,
        ip=ip, labels=labels)


def _boot_epoch_ns() -> int:
    return time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def start_ts_of(pid: int, root: str = "/") -> Optional[int]:
    """Epoch ns at which PID started (/proc/PID/stat starttime)."""
    text = _read(os.path.join(root, "proc", str(pid), "stat"))
    try:
        fields = text[text.rindex(")") + 2:].split()
        ticks = int(fields[19])
    except (ValueError, IndexError):
        return None
    return _boot_epoch_ns() + ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _privileged_guess(root: str) -> Optional[bool]:
    """A runtime's privileged mode leaves the full capability bounding set."""
    for line in _read(os.path.join(root, "proc/self/status")).splitlines():
        if line.startswith("CapBnd:"):
            try:
                return int(line.split()[1], 16) & _CAP_ALL == _CAP_ALL
            except (ValueError, IndexError):
                return None
    return None


def detect_container(*, container_id: Optional[str] = None, image: Optional[str] = None,
                     privileged: Optional[bool] = None,
                     environ: Optional[Mapping[str, str]] = None, root: str = "/") -> Container:
    """The agent's container; explicit values override what is detected.

    ``root`` lets tests point the /proc and marker-file lookups elsewhere.
    """
    env = os.environ if environ is None else environ
    c: Optional[Container] = None
    ecs_url = env.get(ECS_ENV)
    if ecs_url:
        try:
            c = from_ecs(ecs_url)
        except (OSError, ValueError) as exc:  # URLError is an OSError
            import logging

            logging.getLogger(__name__).warning("ECS task metadata (%s) unavailable: %s", ecs_url, exc)
    if c is None:
        found = (id_from_cgroup(_read(os.path.join(root, "proc/self/cgroup")))
                 or id_from_mountinfo(_read(os.path.join(root, "proc/self/mountinfo"))))
        if found is not None:
            kind, full = found
            c = Container(id=full[:12], full_id=full, type=kind)
        elif _in_container(root, env):
            c = Container(id=os.uname().nodename[:12] or "host")  # what gethostname() gives
        else:
            c = Container()
    if container_id:
        c.id = container_id[:12]
        c.full_id = c.full_id if c.full_id and c.full_id.startswith(container_id) else container_id
    if image:
        c.image = image
        c.repository, c.tag, digest = parse_image(image)
        c.digest = digest or c.digest
    if privileged is not None:
        c.privileged = privileged
    if c.id != "host":
        c.start_ts = c.start_ts or start_ts_of(1, root)
        if c.privileged is None:
            c.privileged = _privileged_guess(root)
        # Fields the runtime would know: present (maybe empty) rather than unknown.
        for attr in ("image", "repository", "tag"):
            if getattr(c, attr) is None:
                setattr(c, attr, "")
        if c.name is None:
            c.name = c.id
    return c
