"""Extractors that a rule group writes into its code (``inline`` source) or derives from a
shared value (``via``) give exactly what calling the extractor gives, on any event."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.capture.strategies import events
from workload_agent.rules.fields import REGISTRY


def _bound():
    """(field text, getter) of every field whose extractor is inline or via, with the
    arguments the registry takes (a param name, an index)."""
    out = []
    for spec in REGISTRY:
        for arg in (None, "flags", "name", "fd", "path", "2"):
            try:
                bf = REGISTRY.bind(spec.name, arg)
            except Exception:  # noqa: BLE001 - not every field takes every argument
                continue
            if getattr(bf.get, "inline", None) or getattr(bf.get, "via", None):
                out.append((bf.text, bf.get))
    return out


BOUND = _bound()


def test_the_hot_fields_are_inline_or_shared():
    names = {text for text, _ in BOUND}
    for hot in ("proc.name", "proc.pname", "proc.exepath", "proc.args", "fd.name", "container.id",
                "evt.is_open_read", "evt.is_open_write", "evt.arg[flags]", "evt.rawarg[flags]"):
        assert hot in names


def _derived(e, get):
    inline = getattr(get, "inline", None)
    if inline is not None:
        return eval(inline, dict(getattr(get, "inline_names", {})), {"e": e})  # noqa: S307 - our own source
    key, base, derive = get.via
    v = _derived(e, base) if hasattr(base, "inline") or hasattr(base, "via") else base(e)
    template = getattr(derive, "inline_derive", None)
    if template is not None:
        names = dict(getattr(derive, "inline_names", {}), _w_base=v)
        return eval(template.format(v="_w_base"), names, {"e": e})  # noqa: S307 - our own source
    return derive(e, v)


def _outcome(f):
    try:
        return ("value", f())
    except Exception as exc:  # noqa: BLE001 - the same failure both ways is the same behaviour
        return ("raised", type(exc).__name__)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ev=events())
def test_inline_source_gives_the_getters_value(ev):
    for text, get in BOUND:
        assert _outcome(lambda: _derived(ev, get)) == _outcome(lambda: get(ev)), text


@pytest.mark.parametrize("text", ["proc.name", "evt.is_open_write"])
def test_a_group_does_not_call_an_inline_extractor(text):
    """The point of it: the group's code reads the attribute (or the shared open flags)
    itself instead of calling the field's extractor."""
    from workload_agent.rules.condition.ast import Check, Field, Literal
    from workload_agent.rules.group import _Builder

    node = Check(Field(text), "=", Literal("true" if text.startswith("evt.") else "x"))
    b = _Builder(REGISTRY, "openat")
    b._count(node)
    src = b._gen(node)
    assert b._name(REGISTRY.bind(text, None).get) not in src
