"""Output sinks on their own: file rotation and crash repair, HTTP drop accounting."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from workload_agent.orchestrator.outputs import (FileOutput, HttpOutput, OutputError, encode_record,
                                                 make_output)

from orch_harness import wait_for


def _rec(agent, seq):
    return encode_record({"rule": "r", "output": "x" * 50,
                          "orchestrator": {"agent_id": agent, "instance": "i", "seq": seq}})


def test_file_rotation_keeps_backups_and_recovers_marks(tmp_path):
    path = tmp_path / "alerts.jsonl"
    out = FileOutput(str(path), max_bytes=1000, backups=2)
    for seq in range(1, 61):
        out.emit([_rec("a", seq)])
    out.close()
    assert path.with_name("alerts.jsonl.1").exists() and path.with_name("alerts.jsonl.2").exists()
    assert not path.with_name("alerts.jsonl.3").exists()
    for name in ("alerts.jsonl", "alerts.jsonl.1", "alerts.jsonl.2"):
        assert (tmp_path / name).stat().st_size <= 1000 + 200
    assert FileOutput(str(path), max_bytes=1000, backups=2).recover() == {("a", "i"): 60}


def test_half_written_line_is_cut_at_start(tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text(_rec("a", 1) + "\n" + _rec("a", 2)[:30])
    out = FileOutput(str(path))
    assert out.recover() == {("a", "i"): 1}
    out.emit([_rec("a", 2)])
    out.close()
    lines = path.read_text().splitlines()
    assert [json.loads(l)["orchestrator"]["seq"] for l in lines] == [1, 2]


def test_make_output_errors_name_the_spec(tmp_path):
    for spec, fragment in [("ftp://x", "unknown --output"), ("file:", "needs a path"),
                           (f"file:{tmp_path}/no/such/dir/x.jsonl", "No such file"),
                           ("http://", "bad URL")]:
        with pytest.raises(OutputError, match=fragment):
            make_output(spec)


class _Refuser(http.server.BaseHTTPRequestHandler):
    got = 0

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got += 1
        self.send_response(400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_http_4xx_is_dropped_and_counted_not_retried():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuser)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        out = HttpOutput(f"http://127.0.0.1:{httpd.server_address[1]}/")
        out.emit([_rec("a", 1), _rec("a", 2)])
        wait_for(lambda: out.stats()["dropped"] == 2, what="drops counted")
        assert _Refuser.got == 2 and out.stats()["retries"] == 0
        out.close(1)
    finally:
        httpd.shutdown()


def test_http_deliver_waits_for_acceptance_and_fails_at_close():
    """What deliver() has not seen accepted is never reported safe (never acked)."""
    import asyncio

    out = HttpOutput("http://127.0.0.1:9/", max_backoff=0.1)  # discard port: refused

    async def main():
        task = asyncio.ensure_future(out.deliver([_rec("a", s) for s in range(1, 11)]))
        await asyncio.sleep(0.5)
        assert not task.done() and out.stats()["queued"] == 10 and out.stats()["retries"] >= 2
        await asyncio.get_running_loop().run_in_executor(None, out.close, 0.2)
        with pytest.raises(Exception, match="closed while failing"):
            await task

    asyncio.run(main())
    assert out.stats()["sent"] == 0 and out.stats()["queued"] == 0


def test_bundle_validation_uses_the_rules_loader_when_present():
    from workload_agent.orchestrator.bundle import validate_files

    rule = "- rule: r\n  desc: d\n  condition: evt.type = open{}\n  output: o\n  priority: WARNING\n"
    assert validate_files({"a.yaml": rule.format("")}) == []
    (problem,) = validate_files({"a.yaml": rule.format(" and no.such.field = 1")})
    assert problem.startswith("a.yaml:3:") and "no.such.field" in problem


def test_bundle_validation_yaml_positions():
    from workload_agent.orchestrator.bundle import validate_files

    (problem,) = validate_files({"ok.yaml": "- list: l\n  items: []\n", "c.yaml": "- rule: [unclosed\n"})
    assert problem.startswith("c.yaml:")
    assert validate_files({}) == ["the rules directory holds no *.yaml or *.yml file"]
