"""`workload-agent rules test`: unit tests for rules, written in YAML.

A test file::

    rules: [../rules/my_rules.yaml]        # for every case; paths relative to this file
    tests:
      - name: cat reading /etc/shadow alerts
        events:                            # or  capture: FILE  or  command: CMD
          - {evt.type: openat, evt.is_open_read: true, fd.name: /etc/shadow, proc.name: cat}
        expect:
          - rule: Shadow file read
            priority: Warning
            output_fields: {fd.name: /etc/shadow, proc.name: cat}
        not_fire: [Some other rule]

Cases run through the live detector code (the Detector with the replay tracker for
events and captures; `workload-agent run` for commands), so what passes here is
what fires in production.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

CASE_KEYS = {"name", "rules", "events", "capture", "command", "expect", "not_fire", "no_other_alerts",
             "rule_matching", "min_priority", "timeout"}
INPUT_KEYS = ("events", "capture", "command")
EXPECT_KEYS = {"rule", "priority", "output_fields", "count"}
FILE_KEYS = {"rules", "tests"}
DEFAULT_TIMEOUT = 60


class SpecFileError(Exception):
    def __init__(self, path: str, line: Optional[int], message: str):
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass
class Expectation:
    rule: str
    priority: Optional[str] = None
    output_fields: Dict[str, Any] = field(default_factory=dict)
    count: Optional[int] = None

    def describe(self) -> str:
        extra = []
        if self.priority:
            extra.append(f"priority {self.priority}")
        extra += [f"{k}={_text(v)}" for k, v in self.output_fields.items()]
        if self.count is not None:
            extra.append(f"{self.count} time(s)")
        return f"'{self.rule}'" + (f" ({', '.join(extra)})" if extra else "")


@dataclass
class Case:
    name: str
    file: str
    line: int
    rules: List[str]
    input_kind: str
    input: Any
    expect: List[Expectation]
    not_fire: List[str]
    no_other_alerts: bool = False
    rule_matching: str = "first"
    min_priority: Optional[str] = None
    timeout: float = DEFAULT_TIMEOUT


@dataclass
class Result:
    name: str
    file: str
    line: int = 0
    failures: List[str] = field(default_factory=list)
    error: Optional[str] = None
    notes: List[str] = field(default_factory=list)
    alerts: List[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


# -- reading test files -------------------------------------------------------------------


def _loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    class Map(dict):
        line = 0

    def mapping(loader, node):
        loader.flatten_mapping(node)
        m = Map(loader.construct_pairs(node, deep=True))
        m.line = node.start_mark.line + 1
        return m

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def _text(v) -> str:
    if v is None:
        return "<NA>"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _str_list(v, path, line, what) -> List[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    raise SpecFileError(path, line, f"{what} must be a string or a list of strings")


def load_test_file(path: str) -> List[Case]:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise SpecFileError(path, None, exc.strerror or str(exc)) from None
    except UnicodeDecodeError as exc:
        raise SpecFileError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        doc = yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", column {mark.column + 1}" if mark else ""
        msg = getattr(exc, "problem", None) or str(exc)
        raise SpecFileError(path, mark.line + 1 if mark else None, f"invalid YAML{where}: {msg}") from None
    base = os.path.dirname(os.path.abspath(path))
    default_rules: List[str] = []
    if isinstance(doc, list):
        cases_doc = doc
    elif isinstance(doc, dict):
        unknown = set(doc) - FILE_KEYS
        if unknown:
            raise SpecFileError(path, getattr(doc, "line", 1), f"unknown key(s) {', '.join(map(str, sorted(unknown)))} "
                                                               f"(expected: {', '.join(sorted(FILE_KEYS))})")
        if "rules" in doc:
            default_rules = _str_list(doc["rules"], path, doc.line, "rules")
        cases_doc = doc.get("tests")
    else:
        raise SpecFileError(path, 1, "a test file is a mapping with `tests:` (and `rules:`) or a list of tests")
    if not isinstance(cases_doc, list) or not cases_doc:
        raise SpecFileError(path, getattr(doc, "line", 1), "no tests: `tests:` must be a non-empty list")
    cases = []
    for i, c in enumerate(cases_doc):
        cases.append(_case(c, i, path, base, default_rules))
    return cases


def _case(c, i: int, path: str, base: str, default_rules: List[str]) -> Case:
    if not isinstance(c, dict):
        raise SpecFileError(path, None, f"test #{i + 1} must be a mapping")
    line = getattr(c, "line", 0)
    unknown = set(c) - CASE_KEYS
    if unknown:
        raise SpecFileError(path, line, f"test #{i + 1}: unknown key(s) {', '.join(map(str, sorted(unknown)))} "
                                        f"(expected: {', '.join(sorted(CASE_KEYS))})")
    name = str(c.get("name") or f"test #{i + 1}")
    given = [k for k in INPUT_KEYS if k in c]
    if len(given) != 1:
        raise SpecFileError(path, line, f"{name}: give exactly one input of {', '.join(INPUT_KEYS)}")
    kind = given[0]
    value = c[kind]
    if kind == "events":
        if not isinstance(value, list) or not value:
            raise SpecFileError(path, line, f"{name}: events must be a non-empty list of field mappings")
    elif kind == "capture":
        if not isinstance(value, str):
            raise SpecFileError(path, line, f"{name}: capture must be a file path")
        value = os.path.join(base, value)
    else:
        value = shlex.split(value) if isinstance(value, str) else value
        if not isinstance(value, list) or not value or not all(isinstance(x, (str, int)) for x in value):
            raise SpecFileError(path, line, f"{name}: command must be a string or a list of arguments")
        value = [str(x) for x in value]
    rules = _str_list(c["rules"], path, line, "rules") if "rules" in c else default_rules
    if not rules:
        raise SpecFileError(path, line, f"{name}: no rules files (give `rules:` in the test or the file)")
    expect = []
    raw_expect = c.get("expect") or []
    if not isinstance(raw_expect, list):
        raise SpecFileError(path, line, f"{name}: expect must be a list of expected alerts")
    for e in raw_expect:
        expect.append(_expectation(e, name, path, getattr(e, "line", line)))
    matching = c.get("rule_matching", "first")
    if matching not in ("first", "all"):
        raise SpecFileError(path, line, f"{name}: rule_matching must be first or all")
    min_priority = c.get("min_priority")
    if min_priority is not None:
        from ..rules.priority import parse_priority

        try:
            min_priority = parse_priority(str(min_priority)).long
        except ValueError as exc:
            raise SpecFileError(path, line, f"{name}: min_priority: {exc}") from None
    timeout = c.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise SpecFileError(path, line, f"{name}: timeout must be a positive number of seconds")
    return Case(name=name, file=path, line=line, rules=[os.path.join(base, r) for r in rules],
                input_kind=kind, input=value, expect=expect,
                not_fire=_str_list(c.get("not_fire") or [], path, line, "not_fire"),
                no_other_alerts=bool(c.get("no_other_alerts", False)), rule_matching=matching,
                min_priority=min_priority, timeout=float(timeout))


def _expectation(e, name: str, path: str, line: int) -> Expectation:
    if isinstance(e, str):
        return Expectation(e)
    if not isinstance(e, dict) or "rule" not in e:
        raise SpecFileError(path, line, f"{name}: an expected alert is a rule name or a mapping with `rule:`")
    unknown = set(e) - EXPECT_KEYS
    if unknown:
        raise SpecFileError(path, line, f"{name}: expected alert: unknown key(s) "
                                        f"{', '.join(map(str, sorted(unknown)))} "
                                        f"(expected: {', '.join(sorted(EXPECT_KEYS))})")
    fields = e.get("output_fields") or {}
    if not isinstance(fields, dict):
        raise SpecFileError(path, line, f"{name}: output_fields must be a mapping of field to value")
    priority = e.get("priority")
    if priority is not None:
        from ..rules.priority import parse_priority

        try:
            priority = parse_priority(str(priority)).long
        except ValueError as exc:
            raise SpecFileError(path, line, f"{name}: {exc}") from None
    count = e.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise SpecFileError(path, line, f"{name}: count must be a non-negative integer")
    return Expectation(str(e["rule"]), priority, {str(k): v for k, v in fields.items()}, count)


# -- running ------------------------------------------------------------------------------


class _Collect:
    """An AlertWriter that keeps the alerts (as their JSON form has them)."""

    def __init__(self) -> None:
        self.alerts: List[dict] = []

    def write(self, ts, priority, rule, message, fields, tags) -> None:
        from ..rules.priority import Priority

        self.alerts.append({"rule": rule, "priority": Priority(priority).long, "output": message,
                            "output_fields": dict(fields), "time_ns": ts})

    def close(self) -> None:
        pass


class Runner:
    """Runs cases; loaded rulesets are shared between the cases that name the same files."""

    def __init__(self) -> None:
        self._rulesets: Dict[tuple, Any] = {}

    def ruleset(self, case: Case):
        from ..detect import load_ruleset

        key = (tuple(case.rules), case.min_priority)
        if key not in self._rulesets:
            self._rulesets[key] = load_ruleset(case.rules, min_priority=case.min_priority)[0]
        return self._rulesets[key]

    def run(self, case: Case) -> Result:
        from ..detect import RulesError
        from .format import CaptureError
        from .inline import InlineEventError

        result = Result(case.name, case.file, case.line)
        start = time.monotonic()
        try:
            ruleset = self.ruleset(case)
            result.alerts = self._alerts(case, ruleset, result)
            result.failures = check(case, ruleset, result.alerts)
        except RulesError as exc:
            result.error = f"cannot load the rules:\n{exc.text}"
        except (CaptureError, InlineEventError, _CommandError) as exc:
            result.error = str(exc)
        except OSError as exc:
            result.error = f"{exc.filename or ''}: {exc.strerror or exc}"
        result.seconds = time.monotonic() - start
        return result

    def _alerts(self, case: Case, ruleset, result: Result) -> List[dict]:
        if case.input_kind == "command":
            return _command_alerts(case)
        from ..detect import Detector
        from .replay import ReplayTracker, as_records

        if case.input_kind == "events":
            from .inline import InlineEventError, build_event

            items = []
            for i, fields in enumerate(case.input):
                try:
                    items.append(build_event(fields, num=i + 1))
                except InlineEventError as exc:
                    raise InlineEventError(f"event #{i + 1}: {exc}") from None
            reader = None
        else:
            from .format import CaptureReader

            reader = CaptureReader(case.input)
            items = reader.records()
        collect = _Collect()
        detector = Detector(ruleset, ReplayTracker(), collect, mode=case.rule_matching)
        detector.handle(list(as_records(items)))
        if reader is not None and reader.truncated:
            result.notes.append(f"{case.input}: incomplete capture: {reader.truncated}")
        return collect.alerts


class _CommandError(Exception):
    pass


def _command_alerts(case: Case) -> List[dict]:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wa-ruletest-") as tmp:
        alerts_path = os.path.join(tmp, "alerts.jsonl")
        argv = [sys.executable, "-m", "workload_agent", "run", "--json", "--alerts-to", alerts_path,
                "--rule-matching", case.rule_matching]
        for r in case.rules:
            argv += ["-r", r]
        if case.min_priority:
            argv += ["--min-priority", str(case.min_priority)]
        argv += ["--"] + case.input
        try:
            p = subprocess.run(argv, cwd=os.path.dirname(os.path.abspath(case.file)), capture_output=True,
                               timeout=case.timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise _CommandError(f"command {' '.join(case.input)} did not finish in {case.timeout:g} s") from None
        err = p.stderr.decode(errors="replace")
        if "workload-agent: cannot load the rules" in err or p.returncode in (125, 126, 127) \
                or not os.path.exists(alerts_path):
            raise _CommandError(f"command {' '.join(case.input)} could not run under the agent "
                                f"(exit {p.returncode}):\n{err.strip()}")
        with open(alerts_path, encoding="utf-8") as f:
            docs = [json.loads(line) for line in f if line.strip()]
    return [{"rule": d["rule"], "priority": d["priority"], "output": d["output"],
             "output_fields": d["output_fields"]} for d in docs]


def _field_text(v) -> str:
    if isinstance(v, list):
        return "(" + ",".join(_text(x) for x in v) + ")"
    return _text(v)


def _mismatches(exp: Expectation, alert: dict) -> List[str]:
    out = []
    if exp.priority and alert["priority"] != exp.priority:
        out.append(f"priority {alert['priority']}, expected {exp.priority}")
    fields = alert["output_fields"]
    for k, want in exp.output_fields.items():
        if k not in fields:
            out.append(f"{k} is not an output field of the rule (it has: {', '.join(sorted(fields))})")
        elif _field_text(fields[k]) != _text(want):
            out.append(f"{k}={_field_text(fields[k])}, expected {_text(want)}")
    return out


def check(case: Case, ruleset, alerts: List[dict]) -> List[str]:
    """What is wrong with these alerts for this case (empty: it passes)."""
    failures = []
    known = {r.name for r in ruleset.rules}
    for name in [e.rule for e in case.expect] + case.not_fire:
        if name not in known:
            failures.append(f"rule '{name}' is not defined in {', '.join(case.rules)}")
    by_rule: Dict[str, List[dict]] = {}
    for a in alerts:
        by_rule.setdefault(a["rule"], []).append(a)
    for exp in case.expect:
        if exp.rule not in known:
            continue
        raised = by_rule.get(exp.rule, [])
        matching = [a for a in raised if not _mismatches(exp, a)]
        if exp.count is not None and len(matching) != exp.count:
            failures.append(f"expected {exp.describe()}: matched {len(matching)} time(s)" +
                            (f"; alerts of the rule: {len(raised)}" if len(raised) != len(matching) else ""))
        elif exp.count is None and not matching:
            if not raised:
                why = ("; raised: " + ", ".join(sorted({a['rule'] for a in alerts}))) if alerts else \
                    "; no alert at all"
                failures.append(f"expected {exp.describe()}: the rule did not fire{why}")
            else:
                failures.append(f"expected {exp.describe()}: it fired {len(raised)} time(s) but: "
                                f"{'; '.join(_mismatches(exp, raised[0]))}")
    for name in case.not_fire:
        raised = by_rule.get(name, [])
        if raised:
            failures.append(f"rule '{name}' must not fire, but raised {len(raised)} alert(s), first: "
                            f"{raised[0]['priority']} {raised[0]['output']}")
    if case.no_other_alerts:
        wanted = {e.rule for e in case.expect}
        others = [a for a in alerts if a["rule"] not in wanted]
        if others:
            failures.append(f"unexpected alerts ({len(others)}): " +
                            "; ".join(f"{a['rule']}: {a['output']}" for a in others[:3]))
    return failures


def run_files(paths: List[str]) -> List[Result]:
    runner = Runner()
    results = []
    for path in paths:
        try:
            cases = load_test_file(path)
        except SpecFileError as exc:
            results.append(Result(f"(loading {os.path.basename(path)})", path, exc.line or 0,
                                  error=str(exc)))
            continue
        results += [runner.run(c) for c in cases]
    return results


# -- reports ------------------------------------------------------------------------------


def report_text(results: List[Result], verbose: bool = False) -> str:
    lines = []
    current = None
    for r in results:
        if r.file != current:
            current = r.file
            lines.append(r.file)
        status = "PASS" if r.passed else ("ERROR" if r.error else "FAIL")
        lines.append(f"  {status:5} {r.name} ({r.seconds * 1000:.0f} ms)")
        for msg in ([r.error] if r.error else []) + r.failures + r.notes:
            first, *rest = msg.splitlines() or [""]
            lines.append(f"        - {first}")
            lines += [f"          {x}" for x in rest]
        if verbose or not r.passed:
            if r.alerts and not r.error:
                lines.append("        alerts raised:")
                lines += [f"          {a['priority']} [{a['rule']}] {a['output']}" for a in r.alerts]
    passed = sum(r.passed for r in results)
    failed = sum(1 for r in results if r.failures and not r.error)
    errors = sum(1 for r in results if r.error)
    lines.append(f"{len(results)} test(s): {passed} passed, {failed} failed, {errors} error(s)")
    return "\n".join(lines)


def junit_xml(results: List[Result]) -> str:
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="workload-agent rules test", tests=str(len(results)),
                      failures=str(sum(1 for r in results if r.failures and not r.error)),
                      errors=str(sum(1 for r in results if r.error)),
                      time=f"{sum(r.seconds for r in results):.3f}")
    suites: Dict[str, Any] = {}
    for r in results:
        suite = suites.get(r.file)
        if suite is None:
            suite = suites[r.file] = ET.SubElement(root, "testsuite", name=r.file, tests="0", failures="0",
                                                   errors="0", time="0")
        suite.set("tests", str(int(suite.get("tests")) + 1))
        suite.set("time", f"{float(suite.get('time')) + r.seconds:.3f}")
        tc = ET.SubElement(suite, "testcase", classname=os.path.splitext(os.path.basename(r.file))[0],
                           name=r.name, file=r.file, line=str(r.line), time=f"{r.seconds:.3f}")
        if r.error:
            suite.set("errors", str(int(suite.get("errors")) + 1))
            el = ET.SubElement(tc, "error", message=r.error.splitlines()[0])
            el.text = r.error
        elif r.failures:
            suite.set("failures", str(int(suite.get("failures")) + 1))
            el = ET.SubElement(tc, "failure", message=r.failures[0])
            el.text = "\n".join(r.failures + [f"alert: {a['priority']} [{a['rule']}] {a['output']}"
                                              for a in r.alerts])
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# -- command ------------------------------------------------------------------------------


def register_test(rules_subparsers) -> None:
    """Adds `rules test` to the `rules` command's subparsers."""
    p = rules_subparsers.add_parser(
        "test", help="run YAML rule tests: inline events, captures or commands against expected alerts",
        description="Each test names rules files and an input (inline events, a capture file, or a command "
                    "run under the agent) with the alerts it must raise and the rules that must not fire. "
                    "Exit status 1 when a test fails. See docs/rule-development.md.")
    p.add_argument("files", nargs="+", metavar="TESTFILE", help="YAML test file")
    p.add_argument("--junit-xml", metavar="PATH", help="also write a JUnit XML report (for CI)")
    p.add_argument("-v", "--verbose", action="store_true", help="list the alerts of passing tests too")
    p.add_argument("--watch", action="store_true",
                   help="run again whenever a test file, or a rules or capture file it names, changes")
    p.set_defaults(func=cmd_test)


def run_once(args) -> int:
    results = run_files(args.files)
    print(report_text(results, verbose=args.verbose), flush=True)
    if args.junit_xml:
        try:
            with open(args.junit_xml, "w", encoding="utf-8") as f:
                f.write(junit_xml(results))
        except OSError as exc:
            sys.stderr.write(f"workload-agent: cannot write {args.junit_xml}: {exc.strerror}\n")
            return 2
    return 0 if all(r.passed for r in results) else 1


def watched_files(paths: List[str]) -> List[str]:
    out = list(paths)
    for path in paths:
        try:
            cases = load_test_file(path)
        except SpecFileError:
            continue
        for c in cases:
            out += c.rules
            if c.input_kind == "capture":
                out.append(c.input)
    return sorted(set(out))


def cmd_test(args) -> int:
    if not args.watch:
        return run_once(args)
    from .watch import watch

    return watch(lambda: watched_files(args.files), lambda: run_once(args))
