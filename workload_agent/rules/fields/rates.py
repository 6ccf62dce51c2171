"""wa.rate.* fields: per-process counts over the last window (workload_agent/state/rates.py).

Not Falco fields: a rules file using them loads in workload-agent only."""
from __future__ import annotations

from . import types as T
from .spec import FieldSpec

_RENAMES = frozenset(("rename", "renameat", "renameat2"))


def _snapshot(attr: str):
    def f(e):
        snap = getattr(e, "wa_rates", None)
        return None if snap is None else getattr(snap, attr)
    return f


FIELDS = [
    FieldSpec("wa.rate.connect_ports", T.UINT64,
              "Distinct remote ports this process called connect() on in the last 10 s "
              "(this call included, refused ones too).",
              _snapshot("connect_ports"), event_types=frozenset(("connect",))),
    FieldSpec("wa.rate.suffix_renames", T.UINT64,
              "Renames by this process in the last 10 s that only appended an extension to "
              "the file name (a.txt -> a.txt.enc), this one included.",
              _snapshot("suffix_renames"), event_types=_RENAMES),
]
