"""Alerts cannot be forged: a workload that puts newlines, carriage returns or escape
sequences into a file name, argv or its environment gets them escaped in text alerts and
in the --events lines, so it cannot make a line that reads as another alert or event."""
import json
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from workload_agent.escape import escape_controls

FORGED = "2026-01-01T00:00:00.000000000+0000: Critical FORGED alert"

RULES = """
- rule: Marker read
  desc: d
  condition: evt.type in (open, openat) and fd.name contains wa-forge-marker
  output: "marker read (file=%fd.name cmdline=%proc.cmdline env=%proc.env)"
  priority: WARNING
"""


def test_a_forged_line_stays_inside_its_alert(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text(RULES)
    name = tmp_path / f"wa-forge-marker\n{FORGED} (file=x)\r\x1b[2K"
    name.write_text("x")
    events = tmp_path / "events.txt"
    script = "import sys; open(sys.argv[1]).read()"
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "-r", str(rules), "--events-file", str(events),
                        "--", sys.executable, "-c", script, str(name), f"arg\n{FORGED}"],
                       capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "EVIL": f"v\n{FORGED}"})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1, lines  # one alert, one line
    assert not any(line.startswith(FORGED[:10]) and "FORGED" in line.split(": ", 1)[1][:20] for line in lines)
    assert "\\n" + FORGED in lines[0] and "\\r\\x1b[2K" in lines[0]  # visible, escaped
    ev = events.read_text().splitlines()
    assert not any(line.startswith(FORGED) for line in ev)
    assert any("wa-forge-marker\\n" in line for line in ev)


def test_json_lines_were_already_safe(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text(RULES)
    name = tmp_path / f"wa-forge-marker\n{FORGED}"
    name.write_text("x")
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "--json", "-r", str(rules), "--",
                        sys.executable, "-c", "import sys; open(sys.argv[1]).read()", str(name)],
                       capture_output=True, text=True, timeout=60)
    lines = p.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["output_fields"]["fd.name"] == str(name)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escaped_text_has_no_control_characters_and_keeps_the_rest(text):
    out = escape_controls(text)
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c in "\u2028\u2029" for c in out)
    assert len(out.splitlines()) <= 1
    # printable text is untouched
    if all(c.isprintable() and c not in "\u2028\u2029" for c in text):
        assert out == text
