"""Image ENTRYPOINT/CMD for containers whose definition does not say what they run.

Sources, in order: `--image-config IMAGE=FILE` (FILE is `docker image inspect` output, an
OCI image config, or {"Entrypoint": [...], "Cmd": [...]}), then, when asked for, a local
`docker image inspect`, then, when asked for, the image's registry (anonymous pull,
the task's architecture picked from a multi-platform index). A lookup that fails is an
error naming the image, never a silent guess: a wrong argv would run the wrong program.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Lookup:
    """Where to look for images not given with --image-config (both off by default)."""

    docker: bool = False
    registry: bool = False
    insecure: tuple = ()  # registries spoken to over plain HTTP


def make_resolver(configs: dict[str, ImageConfig], lookup: "Lookup | None" = None,
                  image_name: Callable[[Any], "str | None"] = lambda v: v if isinstance(v, str) else None):
    """A core.ImageResolver; image_name turns an image value (maybe an intrinsic) into a name."""
    lookup = lookup or Lookup()
    cache: dict = {}

    def resolve(image: Any, arch: str | None, container: str) -> ImageConfig | None:
        name = image_name(image)
        if name is not None and name in configs:
            return configs[name]
        if container in configs:
            return configs[container]
        if name is not None and lookup.docker:
            found = docker_inspect(name)
            if found is not None:
                return found
        if name is not None and lookup.registry:
            if (name, arch) not in cache:
                cache[(name, arch)] = registry_config(name, arch, lookup.insecure)
            return cache[(name, arch)]
        return None

    return resolve


# ---------------------------------------------------------------- registry lookup (opt-in)

_MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
_DOCKER_HUB = "registry-1.docker.io"


def parse_reference(image: str) -> tuple[str, str, str]:
    """(registry host, repository, tag or digest) of an image reference, Docker's way."""
    name, digest = (image.split("@", 1) + [""])[:2]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repo = first, rest
    else:
        registry, repo = _DOCKER_HUB, name
    tag = ""
    if ":" in repo.rsplit("/", 1)[-1]:
        repo, tag = repo.rsplit(":", 1)
    if registry in (_DOCKER_HUB, "docker.io", "index.docker.io"):
        registry = _DOCKER_HUB
        if "/" not in repo:
            repo = "library/" + repo
    if not repo or not all(part for part in repo.split("/")):
        raise PatchError(f"image {image!r}: not a valid image reference")
    return registry, repo, digest or tag or "latest"


def registry_config(image: str, arch: str | None, insecure: tuple = (), timeout: float = 20.0) -> ImageConfig:
    """The image's config from its registry (anonymous pull), for the task's architecture.

    Every failure is an error naming the image: a guess would run the wrong program.
    """
    import urllib.error
    import urllib.request

    registry, repo, ref = parse_reference(image)
    base = f"{'http' if registry in insecure else 'https'}://{registry}/v2/{repo}"
    token: list[str] = []

    def get(url: str, accept: str) -> tuple[bytes, str]:
        for attempt in range(2):
            headers = {"Accept": accept}
            if token:
                headers["Authorization"] = f"Bearer {token[0]}"
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                    return resp.read(), resp.headers.get("Content-Type", "")
            except urllib.error.HTTPError as exc:
                challenge = exc.headers.get("WWW-Authenticate", "") if exc.headers else ""
                if exc.code == 401 and attempt == 0 and challenge.lower().startswith("bearer "):
                    token[:] = [_bearer_token(challenge[7:], timeout)]
                    continue
                raise PatchError(f"image {image!r}: registry {registry} answered {exc.code} for {url}") from None
            except (urllib.error.URLError, OSError) as exc:
                raise PatchError(f"image {image!r}: cannot reach registry {registry}: "
                                 f"{getattr(exc, 'reason', exc)}") from None
        raise PatchError(f"image {image!r}: registry {registry} refused the anonymous token")

    body, ctype = get(f"{base}/manifests/{ref}", _MANIFEST_TYPES)
    manifest = _json(body, image, "manifest")
    if "manifests" in manifest:  # an index: pick the task's platform
        want = arch or "amd64"
        chosen = [m for m in manifest["manifests"] if isinstance(m, dict)
                  and (m.get("platform") or {}).get("os") == "linux"
                  and _arch_name((m.get("platform") or {}).get("architecture", "")) == _arch_name(want)]
        if not chosen:
            raise PatchError(f"image {image!r}: no linux/{want} image in its index")
        body, ctype = get(f"{base}/manifests/{chosen[0]['digest']}", _MANIFEST_TYPES)
        manifest = _json(body, image, "manifest")
    digest = (manifest.get("config") or {}).get("digest")
    if not isinstance(digest, str):
        raise PatchError(f"image {image!r}: its manifest names no config blob")
    body, _ = get(f"{base}/blobs/{digest}", "application/json")
    conf = parse_image_config(_json(body, image, "config"), f"image {image!r} config")
    if arch and conf.architecture and _arch_name(conf.architecture) != _arch_name(arch):
        raise PatchError(f"image {image!r} is built for {conf.architecture}, the task runs on {arch}")
    return conf


def _arch_name(a: str) -> str:
    from .core import _norm_arch

    return _norm_arch(a)


def _json(body: bytes, image: str, what: str) -> dict:
    try:
        data = json.loads(body)
    except ValueError:
        raise PatchError(f"image {image!r}: the registry's {what} is not JSON") from None
    if not isinstance(data, dict):
        raise PatchError(f"image {image!r}: the registry's {what} is not a JSON object")
    return data


def _bearer_token(params: str, timeout: float) -> str:
    import re
    import urllib.parse
    import urllib.request

    fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
    realm = fields.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise PatchError(f"registry asked for a token from an unusable realm {realm!r}")
    url = realm + "?" + urllib.parse.urlencode(fields)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        raise PatchError(f"cannot get a registry token from {realm}: {exc}") from None
    tok = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(tok, str):
        raise PatchError(f"the token service {realm} returned no token")
    return tok
