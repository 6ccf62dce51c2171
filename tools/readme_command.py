#!/usr/bin/env python3
"""Print the Nth shell command of README.md (1: set up and trace, 2: run the tests).

The README's commands are its first fenced ```sh blocks. CI runs the second one through
this script and tests/image/test_readme.py runs both in a fresh Debian root, so what a
reader copies is what is checked.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M)


def commands(text: str) -> list[str]:
    """Each ```sh block as one command line: backslash continuations joined."""
    return [re.sub(r"\\\n\s*", "", block).strip() for block in FENCE.findall(text)]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit() or int(argv[0]) < 1:
        sys.stderr.write("usage: readme_command.py N   (1-based)\n")
        return 2
    found = commands(README.read_text())
    n = int(argv[0])
    if n > len(found):
        sys.stderr.write(f"{README}: has {len(found)} ```sh blocks, not {n}\n")
        return 1
    print(found[n - 1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
