"""Mapping an offset in a decoded YAML scalar back to the file's line and column."""
from __future__ import annotations

import pytest

from workload_agent.rules.yaml_positions import SourceFile, compose_documents, scalar_char_index


def scalar(content):
    doc = compose_documents(content)[0]
    return doc.value[0].value[1][1]  # the condition scalar


CASES = {
    "plain": "- macro: m\n  condition: evt.type = open and\n     proc.name = bash\n",
    "folded": "- macro: m\n  condition: >\n    evt.type = open and\n    proc.name = bash\n",
    "literal": "- macro: m\n  condition: |-\n    evt.type = open and\n      proc.name = bash\n",
    "double": '- macro: m\n  condition: "evt.type = open and\\t\n    proc.name = \\"bash\\""\n',
    "single": "- macro: m\n  condition: 'evt.type = open and\n    proc.name = ''bash'''\n",
}


@pytest.mark.parametrize("style", sorted(CASES))
def test_every_character_of_proc_name_maps_to_its_source(style):
    content = CASES[style]
    node = scalar(content)
    value = node.value
    start = value.index("proc.name")
    for k in range(start, start + len("proc.name")):
        index = scalar_char_index(node, content, k)
        assert content[index] == value[k], (style, k)
    src = SourceFile("f", content)
    line, col = src.line_col(scalar_char_index(node, content, start))
    expected_line = next(i for i, text in enumerate(content.split("\n")) if "proc.name" in text)
    assert (line, content.split("\n")[line][col:col + 9]) == (expected_line, "proc.name")


def test_quoted_escapes_and_doubled_quotes_are_skipped():
    content = CASES["double"]
    node = scalar(content)
    k = node.value.index('"bash"')
    assert content[scalar_char_index(node, content, k)] == "\\"  # the escape producing the quote
    assert content[scalar_char_index(node, content, k + 1)] == "b"
    content = CASES["single"]
    node = scalar(content)
    k = node.value.index("'bash'")
    assert content[scalar_char_index(node, content, k + 1)] == "b"


def test_offset_at_end_points_after_the_last_character():
    content = "- macro: m\n  condition: evt.type = open and\n"
    node = scalar(content)
    index = scalar_char_index(node, content, len(node.value))
    assert content[index - 3:index] == "and"


def test_line_col_of_indexes():
    src = SourceFile("f", "ab\ncd\n\nx")
    assert src.line_col(0) == (0, 0)
    assert src.line_col(4) == (1, 1)
    assert src.line_col(6) == (2, 0)
    assert src.line_col(7) == (3, 0)
    assert src.line_col(100) == (3, 1)


from hypothesis import given, settings, strategies as st  # noqa: E402
import yaml  # noqa: E402

TEXT = st.lists(st.sampled_from(list("ab (),='\"\\%é\t\n") + ["proc.name", " and "]), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from([None, "'", '"', "|", ">"]), st.integers(10, 60))
def test_mapping_lands_on_the_producing_character(text, style, width):
    """For any scalar PyYAML writes, each visible character maps to itself (or its escape)."""
    content = yaml.dump([{"condition": text}], default_style=style, width=width, allow_unicode=True)
    node = compose_documents(content)[0].value[0].value[0][1]
    value = node.value
    for k, c in enumerate(value):
        index = scalar_char_index(node, content, k)
        assert 0 <= index <= len(content)
        if not c.isspace():
            assert content[index] in (c, "\\"), (content, k)
    end = scalar_char_index(node, content, len(value))
    assert 0 <= end <= len(content)
