"""The field registry: every field a condition or output may use."""
from __future__ import annotations

from . import agent, container, evt, fd, proc, rates
from .evttypes import EVENT_TYPES
from .spec import BoundField, FieldSpec, Registry

REGISTRY = Registry(evt.FIELDS + proc.FIELDS + fd.FIELDS + container.FIELDS + agent.FIELDS + rates.FIELDS)

__all__ = ["REGISTRY", "Registry", "FieldSpec", "BoundField", "EVENT_TYPES"]
