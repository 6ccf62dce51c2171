"""Image ENTRYPOINT/CMD for containers whose definition does not say what they run.

Sources, in order: `--image-config IMAGE=FILE` (FILE is `docker image inspect` output, an
OCI image config, or {"Entrypoint": [...], "Cmd": [...]}), then, when asked for, a local
`docker image inspect`. There is no registry lookup: a wrong guess would silently run
the wrong program, so an unknown image is an error that says how to supply its config.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any, Callable

from .core import ImageConfig, PatchError


def parse_image_config(data: Any, source: str) -> ImageConfig:
    """ImageConfig from any of the three accepted JSON shapes."""
    if isinstance(data, list):  # docker image inspect prints a list
        if len(data) != 1:
            raise PatchError(f"{source}: expected one image in the inspect output, found {len(data)}")
        data = data[0]
    if not isinstance(data, dict):
        raise PatchError(f"{source}: expected a JSON object")
    arch = data.get("Architecture") or data.get("architecture")
    conf = data
    for key in ("Config", "config"):
        if isinstance(data.get(key), dict):
            conf = data[key]
            break
    entry = conf.get("Entrypoint", conf.get("entrypoint"))
    cmd = conf.get("Cmd", conf.get("cmd"))
    for label, value in (("Entrypoint", entry), ("Cmd", cmd)):
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise PatchError(f"{source}: {label} must be a list of strings or null")
    if entry is None and cmd is None and not any(k in conf for k in ("Entrypoint", "Cmd", "entrypoint", "cmd")):
        raise PatchError(f"{source}: no Entrypoint or Cmd found (give docker inspect output, "
                         "an OCI image config, or {\"Entrypoint\": [...], \"Cmd\": [...]})")
    return ImageConfig(entry, cmd, arch)


def load_image_configs(specs: list[str]) -> dict[str, ImageConfig]:
    """`IMAGE=FILE` arguments -> {image or container name: ImageConfig}."""
    out: dict[str, ImageConfig] = {}
    for spec in specs:
        key, sep, path = spec.rpartition("=")
        if not sep or not key or not path:
            raise PatchError(f"--image-config {spec!r}: expected IMAGE=FILE")
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except OSError as exc:
            raise PatchError(f"--image-config {spec}: {exc.strerror}: {path}") from None
        except json.JSONDecodeError as exc:
            raise PatchError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        out[key] = parse_image_config(data, path)
    return out


def docker_inspect(image: str) -> ImageConfig | None:
    if not shutil.which("docker"):
        return None
    try:
        res = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0:
        return None
    try:
        return parse_image_config(json.loads(res.stdout), f"docker image inspect {image}")
    except (ValueError, PatchError):
        return None


def make_resolver(configs: dict[str, ImageConfig], use_docker: bool = False,
                  image_name: Callable[[Any], "str | None"] = lambda v: v if isinstance(v, str) else None):
    """A core.ImageResolver; image_name turns an image value (maybe an intrinsic) into a name."""

    def resolve(image: Any, arch: str | None, container: str) -> ImageConfig | None:
        name = image_name(image)
        if name is not None and name in configs:
            return configs[name]
        if container in configs:
            return configs[container]
        if name is not None and use_docker:
            return docker_inspect(name)
        return None

    return resolve
