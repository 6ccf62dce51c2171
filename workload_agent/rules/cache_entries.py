"""Where the compiled-rules cache (rules/cache.py) keeps its entries, how they are keyed
and read: the part a start needs before it knows whether it will load any rules, so it
imports neither the rules' classes nor pickle.

Two codecs: pickle for entries that hold objects (the rules, a derived Prefilter), and
marshal for entries of plain values only (tuples, lists, dicts, str, bytes, ints, None),
which load without importing anything. The directory is ours alone either way (see
cache.py): unpickling runs code, and marshal is not meant for data anyone else wrote.
"""
from __future__ import annotations

import os
import sys

try:   # the built-in SHA-256, without hashlib's load of OpenSSL (~3 ms of every start)
    from _sha2 import sha256   # Python >= 3.12
except ImportError:
    try:
        from _sha256 import sha256
    except ImportError:
        from hashlib import sha256

from .. import __version__

TYPE_CHECKING = False  # typing costs milliseconds at every container start
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

FORMAT = 1


def cache_dir() -> Optional[str]:
    env = os.environ.get("WORKLOAD_AGENT_RULES_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "no", "false") else env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "workload-agent")


_fingerprint: Optional[bytes] = None


def _code_fingerprint() -> bytes:
    """Every module of the agent, by size and mtime: the rules' trees depend on the fields
    registry and the event tables, a prefilter on the tracer's and the state's modules."""
    global _fingerprint
    if _fingerprint is not None:
        return _fingerprint
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = sha256(here.encode("utf-8", "surrogateescape"))
    for root, dirs, files in os.walk(here):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                st = os.stat(path)
                h.update(f"{path[len(here):]}:{st.st_size}:{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    _fingerprint = h.digest()
    return _fingerprint


def cache_key(files: List[Tuple[str, bytes]]) -> str:
    h = sha256()
    h.update(f"{FORMAT}\0{__version__}\0{sys.version}\0".encode())
    h.update(_code_fingerprint())
    for name, data in files:
        h.update(os.path.abspath(name).encode("utf-8", "surrogateescape") + b"\0")
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def _private_dir(path: str, create: bool) -> bool:
    """True if ``path`` is a directory only we can write (made so when ``create``)."""
    try:
        if create:
            os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def read_files(paths) -> Optional[List[Tuple[str, bytes]]]:
    """(name, bytes) of every rules file in load order; None if one cannot be read
    (the full loader then reports it)."""
    from .paths import expand_paths

    out = []
    for name in expand_paths(paths):
        try:
            with open(name, "rb") as fh:
                out.append((name, fh.read()))
        except OSError:
            return None
    return out


def read_entry(name: str, key: str, codec: str = "pickle") -> Optional[dict]:
    """The entry file ``name`` if it is ours alone, whole, and stored under ``key``.
    codec: "pickle" or "marshal", as it was written."""
    d = cache_dir()
    if d is None or not _private_dir(d, create=False):
        return None
    path = os.path.join(d, name)
    try:
        st = os.stat(path)
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return None
        with open(path, "rb") as fh:
            if codec == "marshal":
                import marshal

                doc = marshal.loads(fh.read())   # marshal.load reads a file piece by piece
            else:
                import pickle

                doc = pickle.load(fh)
    except Exception:  # noqa: BLE001 - unreadable, cut short, from another version: a miss
        return None
    if not isinstance(doc, dict) or doc.get("key") != key:
        return None
    return doc


def write_entry(name: str, doc: dict, codec: str = "pickle") -> bool:
    """Store ``doc`` as the entry file ``name`` (readers see a whole entry or none)."""
    d = cache_dir()
    if d is None or not _private_dir(d, create=True):
        return False
    path = os.path.join(d, name)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            if codec == "marshal":
                import marshal

                marshal.dump(doc, fh)
            else:
                import pickle

                pickle.dump(doc, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except Exception:  # noqa: BLE001 - a value that does not store, a full disk: not kept
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    kind = name.split("-", 1)[0]
    # a few derived entries per rules entry (syscall sets, starts with and without a state)
    prune(d, keep=path, prefix=kind + "-", limit=8 if kind == "rules" else 32)
    return True


def prune(d: str, keep: str, prefix: str = "rules-", limit: int = 8) -> None:
    """Keep the most recent few entries of a kind: each changed rules file makes a new one."""
    try:
        entries = [os.path.join(d, n) for n in os.listdir(d)
                   if n.startswith(prefix) and n.endswith((".pickle", ".marshal"))]
        if len(entries) <= limit:
            return
        entries.sort(key=lambda p: os.stat(p).st_mtime_ns)
        for p in entries[:-limit]:
            if p != keep:
                os.unlink(p)
    except OSError:
        pass
