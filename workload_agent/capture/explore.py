"""`capture info` and `capture events`: what a capture holds."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any, Dict

# sysdig's default line: number, time, cpu, process (thread), direction, type, arguments.
LINE_FORMAT = "%evt.num %evt.time %evt.cpu %proc.name (%thread.tid) %evt.dir %evt.type %evt.args"
JSON_FIELDS = ("evt.num", "evt.rawtime", "evt.type", "evt.dir", "evt.res", "evt.args", "proc.pid",
               "thread.tid", "proc.name", "proc.cmdline", "proc.pname", "user.name", "fd.name",
               "container.id")


def compile_filter(text: str):
    """A Falco condition as an event predicate; ConditionError with an offset when invalid."""
    from ..rules.compiler import compile_condition
    from ..rules.condition import parse_condition

    return compile_condition(parse_condition(text))


class EventLines:
    def __init__(self, json_lines: bool = False) -> None:
        from ..rules.output import compile_output

        self.json = json_lines
        self.line = compile_output(LINE_FORMAT)
        self.fields = compile_output(" ".join("%" + f for f in JSON_FIELDS))

    def event(self, ev) -> str:
        if self.json:
            return json.dumps(self.fields.fields(ev), ensure_ascii=False, separators=(",", ":"))
        return self.line.render(ev)

    def drop(self, d) -> str:
        if self.json:
            return json.dumps({"drop": d.count, "evt.rawtime": d.ts}, separators=(",", ":"))
        return f"-- {d.count} events dropped by the tracer here --"


def summarize(reader) -> Dict[str, Any]:
    types: Counter = Counter()
    processes = set()
    first = last = None
    drops = 0
    for item in reader.records():
        if hasattr(item, "count"):
            drops += item.count
            continue
        types[item.type] += 1
        if item.proc is not None:
            processes.add((item.proc.pid, item.proc.start_ts))
        if item.ts:
            first = item.ts if first is None else min(first, item.ts)
            last = item.ts if last is None else max(last, item.ts)
    h = reader.header
    return {
        "file": reader.path, "format_version": reader.version, "hostname": h.get("hostname"),
        "agent_version": h.get("agent_version"), "command": h.get("command"),
        "traced_syscalls": h.get("syscalls"), "events": sum(types.values()), "processes": len(processes),
        "first_ts": first, "last_ts": last,
        "duration_s": None if first is None else (last - first) / 1e9, "drops": drops,
        "event_types": dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))),
        "complete": reader.complete, "truncated": reader.truncated,
    }


def info_text(info: Dict[str, Any]) -> str:
    from ..rules.fields.evt import iso8601_utc

    span = "-"
    if info["first_ts"] is not None:
        span = (f"{iso8601_utc(info['first_ts'])} .. {iso8601_utc(info['last_ts'])} "
                f"({info['duration_s']:.3f} s)")
    lines = [
        f"file:        {info['file']} (format version {info['format_version']})",
        f"recorded:    {' '.join(info['command'] or []) or '-'} on {info['hostname'] or '-'}"
        f" (workload-agent {info['agent_version'] or '?'})",
        f"events:      {info['events']}",
        f"processes:   {info['processes']}",
        f"time span:   {span}",
        f"drops:       {info['drops']}",
        f"complete:    {'yes' if info['complete'] else 'no: ' + (info['truncated'] or '')}",
        "event types:",
    ]
    width = max((len(t) for t in info["event_types"]), default=0)
    lines += [f"  {t.ljust(width)}  {n}" for t, n in info["event_types"].items()]
    if info["traced_syscalls"]:
        lines.append(f"traced syscalls: {' '.join(info['traced_syscalls'])}")
    return "\n".join(lines)
