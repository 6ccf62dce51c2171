"""container.* and k8s.* fields (supplied natively, in place of Falco's container plugin)."""
from __future__ import annotations

import re
from typing import List

from . import types as T
from .spec import ARG_INDEX_OR_KEY, ARG_KEY, FieldSpec, inline


def _c(get, host):
    """Container field: ``host`` is the value outside containers (None = NULL)."""
    def f(e):
        p = e.proc
        if p is None:
            return None
        c = p.container
        if c is None or c.id == "host":
            return host
        return get(c)
    return f


def _mounts_text(c):
    return None if c.mounts is None else ",".join(m.text() for m in c.mounts)


def _mount_selector(arg, match_attr: str):
    """Pick a mount by index, or the first whose ``match_attr`` contains a match of
    the key read as a regex (the container plugin's behaviour)."""
    if arg is None:
        raise ValueError("needs [N] or [PATTERN]")
    if isinstance(arg, int):
        def by_index(c, i=arg):
            ms = c.mounts
            return ms[i] if ms is not None and i < len(ms) else None
        return by_index
    try:
        rx = re.compile(arg)
    except re.error as exc:
        raise ValueError(f"bad pattern {arg!r}: {exc}") from None

    def by_pattern(c):
        for m in c.mounts or ():
            if rx.search(getattr(m, match_attr)):
                return m
        return None
    return by_pattern


def _mount_field(attr, match_attr="source"):
    def factory(arg):
        select = _mount_selector(arg, match_attr)

        def get(c):
            m = select(c)
            if m is None:
                return None
            if attr is None:
                return m.text()
            v = getattr(m, attr)
            return ("true" if v else "false") if isinstance(v, bool) else v
        return _c(get, None)
    return factory


def _label(attr):
    def factory(key):
        if key is None or isinstance(key, int):
            raise ValueError("needs [KEY] or .KEY")
        return _c(lambda c, k=key: (getattr(c, attr) or {}).get(k), None)
    return factory


def _labels_text(labels, exclude=()):
    if labels is None:
        return None
    return ", ".join(f"{k}:{v}" for k, v in labels.items() if not k.startswith(exclude))


def _start_ts(e):
    """The pid namespace init's start (no runtime lookup needed), else the runtime's."""
    p = e.proc
    if p is None:
        return None
    if p.pidns_init_start_ts:
        return p.pidns_init_start_ts
    c = p.container
    return c.start_ts if c is not None and c.start_ts else None


def _duration(e):
    start = _start_ts(e)
    return None if start is None else e.ts - start


def _f(name, type_, desc, get, **kw):
    return FieldSpec(name, type_, desc, get, **kw)


FIELDS: List[FieldSpec] = [
    _f("container.id", T.CHARBUF, "12-character container id, or 'host'.",
       inline(_c(lambda c: c.id, "host"),
              "None if (_p := e.proc) is None else 'host' if (_c := _p.container) is None else _c.id")),
    _f("container.full_id", T.CHARBUF, "Full container id.", _c(lambda c: c.full_id, "host")),
    _f("container.name", T.CHARBUF, "Container name.", _c(lambda c: c.name, "host")),
    _f("container.type", T.CHARBUF, "Container runtime type.", _c(lambda c: c.type, "host")),
    _f("container.image", T.CHARBUF, "Image reference.", _c(lambda c: c.image, "")),
    _f("container.image.id", T.CHARBUF, "Image id.", _c(lambda c: c.image_id, "")),
    _f("container.image.repository", T.CHARBUF, "Image repository.", _c(lambda c: c.repository, "")),
    _f("container.image.tag", T.CHARBUF, "Image tag.", _c(lambda c: c.tag, "")),
    _f("container.image.digest", T.CHARBUF, "Image digest.", _c(lambda c: c.digest, "")),
    _f("container.privileged", T.BOOL, "Started privileged.", _c(lambda c: c.privileged, False)),
    _f("container.mounts", T.CHARBUF, "All mounts as source:dest:mode:rdwr:propagation, comma "
       "separated.", _c(_mounts_text, "")),
    _f("container.mount", T.CHARBUF, "One mount by [N] or [SOURCE-pattern].", _mount_field(None),
       arg=ARG_INDEX_OR_KEY, arg_required=True),
    _f("container.mount.source", T.CHARBUF, "Source of the mount by [N] or [DEST-pattern].",
       _mount_field("source", "dest"), arg=ARG_INDEX_OR_KEY, arg_required=True),
    _f("container.mount.dest", T.CHARBUF, "Destination of the mount by [N] or [SOURCE-pattern].",
       _mount_field("dest"), arg=ARG_INDEX_OR_KEY, arg_required=True),
    _f("container.mount.mode", T.CHARBUF, "Mode of the mount by [N] or [SOURCE-pattern].",
       _mount_field("mode"), arg=ARG_INDEX_OR_KEY, arg_required=True),
    _f("container.mount.rdwr", T.CHARBUF, "true/false: the mount is read-write.",
       _mount_field("rdwr"), arg=ARG_INDEX_OR_KEY, arg_required=True),
    _f("container.mount.propagation", T.CHARBUF, "Propagation of the mount.",
       _mount_field("propagation"), arg=ARG_INDEX_OR_KEY, arg_required=True),
    _f("container.start_ts", T.ABSTIME, "Container start (pid namespace init start, epoch ns).",
       _start_ts),
    _f("container.duration", T.RELTIME, "ns since the container started.", _duration),
    _f("container.ip", T.CHARBUF, "Primary IPv4 of the container.", _c(lambda c: c.ip, None)),
    _f("container.cni.json", T.CHARBUF, "CNI result (not available).", lambda e: None, live=False),
    _f("container.host_pid", T.BOOL, "Shares the host pid namespace.", _c(lambda c: c.host_pid, None)),
    _f("container.host_network", T.BOOL, "Shares the host network namespace.",
       _c(lambda c: c.host_network, None)),
    _f("container.host_ipc", T.BOOL, "Shares the host ipc namespace.", _c(lambda c: c.host_ipc, None)),
    _f("container.label", T.CHARBUF, "Container label value ([KEY] or .KEY).", _label("labels"),
       arg=ARG_KEY, dotted=True, arg_required=True),
    _f("container.labels", T.CHARBUF, "Container labels as k:v, comma separated.",
       _c(lambda c: _labels_text(c.labels, ("annotation.", "io.kubernetes.")), None)),
    _f("container.healthcheck", T.CHARBUF, "Deprecated; never set.", lambda e: None, live=False),
    _f("container.liveness_probe", T.CHARBUF, "Deprecated; never set.", lambda e: None, live=False),
    _f("container.readiness_probe", T.CHARBUF, "Deprecated; never set.", lambda e: None, live=False),
    _f("k8s.ns.name", T.CHARBUF, "Pod namespace.", _c(lambda c: c.k8s_ns_name, None)),
    _f("k8s.pod.name", T.CHARBUF, "Pod name.", _c(lambda c: c.k8s_pod_name, None)),
    _f("k8s.pod.uid", T.CHARBUF, "Pod uid.", _c(lambda c: c.k8s_pod_uid, None)),
    _f("k8s.pod.id", T.CHARBUF, "Legacy alias of k8s.pod.uid.", _c(lambda c: c.k8s_pod_uid, None)),
    _f("k8s.pod.sandbox_id", T.CHARBUF, "Pod sandbox id (12 characters).",
       _c(lambda c: None if c.k8s_pod_sandbox_id is None else c.k8s_pod_sandbox_id[:12], None)),
    _f("k8s.pod.full_sandbox_id", T.CHARBUF, "Full pod sandbox id.",
       _c(lambda c: c.k8s_pod_sandbox_id, None)),
    _f("k8s.pod.label", T.CHARBUF, "Pod label value ([KEY] or .KEY).", _label("k8s_pod_labels"),
       arg=ARG_KEY, dotted=True, arg_required=True),
    _f("k8s.pod.labels", T.CHARBUF, "Pod labels as k:v, comma separated.",
       _c(lambda c: _labels_text(c.k8s_pod_labels), None)),
    _f("k8s.pod.ip", T.CHARBUF, "Pod IPv4.", _c(lambda c: c.k8s_pod_ip, None)),
    _f("k8s.pod.cni.json", T.CHARBUF, "Pod CNI result (not available).", lambda e: None, live=False),
]
