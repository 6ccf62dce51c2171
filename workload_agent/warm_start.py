"""A warm start: what a run's start derives from its rules, found again without loading them.

Before the workload's exec a run needs, of its rules, only what they make the tracer do:
the syscalls to stop on, their capture specs, the prefilter, and the notes to print. The
first start with a given content of the rules files derives these and keeps them in the
compiled-rules cache as plain values (marshal); the next starts read them back, importing
neither the rules engine nor the event tables, and load the rules themselves only when the
first record arrives, from the very bytes the key was made of (runner.py). A workload that
never does anything a rule could judge never loads them.

Key: the rules' own cache key (the files' names and contents, the agent's code and version,
the Python version: rules/cache_entries.py), the minimum priority (which rules are
enabled) and the architecture. Only a start whose every rules file loaded stores one.
"""
from __future__ import annotations

FORMAT = 1


class WarmStart:
    """names: the syscalls to trace; notes: the start's messages (load warnings); capture:
    name -> (exit_needed, args, when) for tracer.core.CaptureSpec; image: the prefilter
    (tracer/prefilter_image.py) compiled for a stand-in start."""

    __slots__ = ("files", "min_priority", "names", "notes", "capture", "image")

    def __init__(self, files, min_priority, names, notes, capture, image):
        self.files = files
        self.min_priority = min_priority
        self.names = names
        self.notes = notes
        self.capture = capture
        self.image = image

    def capture_specs(self) -> dict:
        from .tracer.core import CaptureSpec

        return {name: CaptureSpec(*spec) for name, spec in self.capture.items()}

    def ruleset(self):
        """The rules this start was derived from (as the files were read at the start)."""
        from .detect import RulesError
        from .rules.cache import load_rules_cached

        result = load_rules_cached([name for name, _ in self.files], min_priority=self.min_priority,
                                   files=self.files)
        if not result.ok:   # they loaded when this entry was stored: a changed agent?
            raise RulesError("\n".join(m.as_text() for m in result.errors))
        return result.ruleset


def _key(rules_key: str, min_priority, arch: str) -> str:
    from .rules.cache_entries import sha256

    text = f"{FORMAT}\0start\0{rules_key}\0{min_priority!r}\0{arch}\0"
    return sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def find(paths, min_priority, arch: str):
    """The WarmStart for these rules paths (files and directories, in load order), or None."""
    from .rules import cache_entries as ce

    if ce.cache_dir() is None:
        return None
    try:
        files = ce.read_files(paths)
    except OSError:   # a directory that cannot be listed: the full load reports it
        return None
    if files is None:
        return None
    key = _key(ce.cache_key(files), min_priority, arch)
    doc = ce.read_entry(f"start-{key}.marshal", key, "marshal")
    if doc is None:
        return None
    try:
        from .tracer.prefilter_image import PrefilterImage

        return WarmStart(files, min_priority, list(doc["names"]), list(doc["notes"]),
                         dict(doc["capture"]), PrefilterImage.from_data(doc["image"]))
    except (KeyError, TypeError, ValueError):
        return None


def remember(ruleset, min_priority, arch: str, names, notes, capture: dict, image) -> bool:
    """Keep what this start derived from ``ruleset`` (loaded through the cache, whole) for
    the next start with the same rules files; False when it was not kept."""
    from .rules import cache_entries as ce

    rules_key = getattr(ruleset, "cache_key", None)
    if rules_key is None or ce.cache_dir() is None:
        return False
    key = _key(rules_key, min_priority, arch)
    doc = {"key": key, "names": list(names), "notes": list(notes),
           "capture": {name: (bool(s.exit_needed), tuple(s.args), tuple(s.when))
                       for name, s in capture.items()},
           "image": image.as_data()}
    return ce.write_entry(f"start-{key}.marshal", doc, "marshal")
