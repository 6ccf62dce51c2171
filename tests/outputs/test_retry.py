"""outputs/retry.py: the backoff and outage log that the agent's orchestrator client and
http output and the orchestrator's http output share."""
from __future__ import annotations

import logging
import random
import socket
import threading
import time

import pytest

from workload_agent.outputs.retry import FLUSH_PAUSE, Backoff, Outage

log = logging.getLogger("tests.retry")


def test_steps_double_up_to_the_maximum_each_wait_jittered_below_its_step():
    random.seed(11)
    b = Backoff(0.1, 1.0)
    steps = []
    for _ in range(7):
        step = b.step()
        delay = b.next_delay()
        assert step / 2 <= delay <= step
        steps.append(step)
    assert steps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert b.failures == 7
    b.reset()
    assert b.step() == pytest.approx(0.1)
    b.at_least(4)       # a refused key: straight to a long wait
    assert b.step() == pytest.approx(1.0)
    b.reset()
    b.at_least(2)
    b.at_least(1)       # never back down
    assert b.step() == pytest.approx(0.4)


def test_many_failures_stay_at_the_maximum():
    b = Backoff(0.2, 5.0)
    for _ in range(2000):
        assert b.next_delay() <= 5.0
    assert b.step() == 5.0


def test_agents_that_fail_together_do_not_come_back_together():
    first = [Backoff(0.2, 5.0).next_delay() for _ in range(200)]
    assert min(first) >= 0.1 and max(first) <= 0.2
    assert max(first) - min(first) > 0.05   # spread over the window, not one instant


@pytest.mark.parametrize("initial, maximum", [(0, 1), (-1, 1), (2, 1)])
def test_bad_bounds_are_refused(initial, maximum):
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial, maximum)


def _in_thread(fn):
    """Run fn in a thread; (thread, result box). A wait that is never cut leaves the thread
    alive, which the test then reports instead of hanging."""
    box = []
    t = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    t.start()
    return t, box


def test_cut_ends_an_hour_long_wait():
    b = Backoff(3600, 3600)
    t, box = _in_thread(b.wait)
    while b.failures == 0:      # the wait has begun
        time.sleep(0.01)
    b.cut.set()
    t.join(30)
    assert not t.is_alive() and box == [False]
    assert b.wait() is False    # once cut, a wait does not sleep at all


def test_a_deadline_bounds_an_hour_long_wait():
    b = Backoff(3600, 3600)
    t, box = _in_thread(lambda: b.wait(time.monotonic() + 0.05))
    t.join(30)
    assert not t.is_alive() and box == [True]
    t, box = _in_thread(lambda: b.wait(time.monotonic() - 1))   # already past: no wait
    t.join(30)
    assert not t.is_alive() and box == [True]


def test_flush_pause_is_short_and_ends_on_stop():
    stop = threading.Event()
    assert Backoff.flush_pause(stop) is True
    stop.set()
    assert Backoff.flush_pause(stop) is False
    assert FLUSH_PAUSE[1] <= 0.2


def _refusing_port():
    """A bound TCP socket that does not listen yet: connecting to it is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def test_a_sender_retries_until_the_endpoint_listens_and_logs_the_outage_twice(caplog):
    caplog.set_level(logging.DEBUG, logger=log.name)
    server, port = _refusing_port()
    backoff = Backoff(0.01, 0.05)
    outage = Outage(log, f"test 127.0.0.1:{port}")
    connected = []

    def sender():
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError as exc:
                outage.failed(f"{type(exc).__name__}: {exc}")
                backoff.wait()
                continue
            outage.over()
            backoff.reset()
            conn.sendall(b"hello")
            conn.close()
            connected.append(True)
            return

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while outage.failures < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outage.failures >= 4 and not connected
    assert "ConnectionRefusedError" in outage.last_error
    server.listen(1)                      # the endpoint is back
    peer, _ = server.accept()
    peer.settimeout(10)
    assert peer.recv(5) == b"hello"
    peer.close()
    server.close()
    t.join(30)
    assert connected and outage.failures == 0 and backoff.failures == 0 and outage.last_error == ""
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == log.name]
    warnings = [m for lvl, m in lines if lvl == logging.WARNING]
    infos = [m for lvl, m in lines if lvl == logging.INFO]
    debugs = [m for lvl, m in lines if lvl == logging.DEBUG]
    assert len(warnings) == 1 and warnings[0].endswith("will retry (quietly until it is back)")
    assert warnings[0].startswith(f"test 127.0.0.1:{port}: ConnectionRefusedError")
    assert len(infos) == 1 and infos[0].startswith(f"test 127.0.0.1:{port}: delivering again after ")
    failures = int(infos[0].split("after ")[1].split()[0])
    assert failures >= 4 and len(debugs) == failures - 1


def test_an_error_level_reason_is_repeated_when_it_changes(caplog):
    caplog.set_level(logging.DEBUG, logger=log.name)
    outage = Outage(log, "orch", back="connected")
    for reason in ("key refused", "key refused", "key refused", "key expired", "key expired"):
        outage.failed(reason, logging.ERROR)
    outage.over()
    got = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == log.name]
    assert got[0] == ("ERROR", "orch: key refused; will retry (quietly until it is back)")
    assert got[3] == ("ERROR", "orch: key expired")
    assert [lvl for lvl, _ in got] == ["ERROR", "DEBUG", "DEBUG", "ERROR", "DEBUG", "INFO"]
    assert got[-1][1].startswith("orch: connected after 5 failed attempts in ")
