"""Users and groups from the container's own /etc/passwd and /etc/group.

libsinsp resolves names in the passwd/group databases of the process's root; the
agent runs inside the workload's container, so its /etc files are those. The
files are re-read when they change (a workload may add users at run time), but
at most every RECHECK_NS, so lookups stay dictionary reads.
"""
from __future__ import annotations

import os
import time
from typing import Dict, Optional, Tuple

from ..rules.event import Group, User

RECHECK_NS = 2_000_000_000


def parse_passwd(text: str) -> Dict[int, Tuple[str, str, str]]:
    """uid -> (name, home, shell); malformed lines are skipped (first entry wins)."""
    out: Dict[int, Tuple[str, str, str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < 7:
            continue
        try:
            uid = int(parts[2])
        except ValueError:
            continue
        if uid < 0:
            continue
        out.setdefault(uid, (parts[0], parts[5], parts[6]))
    return out


def parse_group(text: str) -> Dict[int, str]:
    """gid -> name; malformed lines are skipped (first entry wins)."""
    out: Dict[int, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < 3:
            continue
        try:
            gid = int(parts[2])
        except ValueError:
            continue
        if gid < 0:
            continue
        out.setdefault(gid, parts[0])
    return out


def _read(path: str) -> Tuple[Optional[Tuple[int, int]], str]:
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return (st.st_mtime_ns, st.st_size), f.read()
    except OSError:
        return None, ""


class UserDb:
    """uid/gid -> shared User/Group objects (one per id, so events reuse them)."""

    def __init__(self, passwd: str = "/etc/passwd", group: str = "/etc/group") -> None:
        self.passwd_path = passwd
        self.group_path = group
        self._users: Dict[int, User] = {}
        self._groups: Dict[int, Group] = {}
        self._passwd: Dict[int, Tuple[str, str, str]] = {}
        self._group: Dict[int, str] = {}
        self._sig: Tuple = (None, None)
        self._checked = 0
        self._reload()

    def _reload(self) -> None:
        psig, ptext = _read(self.passwd_path)
        gsig, gtext = _read(self.group_path)
        self._sig = (psig, gsig)
        self._passwd = parse_passwd(ptext)
        self._group = parse_group(gtext)
        self._users.clear()
        self._groups.clear()

    def _maybe_reload(self) -> None:
        now = time.monotonic_ns()
        if now - self._checked < RECHECK_NS:
            return
        self._checked = now
        sig = (_read_sig(self.passwd_path), _read_sig(self.group_path))
        if sig != self._sig:
            self._reload()

    def user(self, uid: int) -> User:
        self._maybe_reload()
        u = self._users.get(uid)
        if u is None:
            entry = self._passwd.get(uid)
            u = User(uid) if entry is None else User(uid, entry[0], entry[1], entry[2])
            self._users[uid] = u
        return u

    def group(self, gid: int) -> Group:
        self._maybe_reload()
        g = self._groups.get(gid)
        if g is None:
            g = Group(gid, self._group.get(gid))
            self._groups[gid] = g
        return g

    def user_name(self, uid: int) -> Optional[str]:
        return self.user(uid).name

    def group_name(self, gid: int) -> Optional[str]:
        return self.group(gid).name


def _read_sig(path: str):
    try:
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size)
    except OSError:
        return None
