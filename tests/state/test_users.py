"""The container's passwd/group databases."""
from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from workload_agent.state import users as U
from workload_agent.state.users import UserDb, parse_group, parse_passwd


def test_parse_passwd_and_group():
    text = ("# comment\nroot:x:0:0:root:/root:/bin/bash\n\nbad\nnobody:x:65534:65534::/:/sbin/nologin\n"
            "dup:x:0:0::/x:/bin/sh\nneg:x:-1:0::/:/bin/sh\nnotnum:x:abc:0::/:/bin/sh\n")
    assert parse_passwd(text) == {0: ("root", "/root", "/bin/bash"),
                                  65534: ("nobody", "/", "/sbin/nologin")}
    assert parse_group("root:x:0:\nwheel:x:10:a,b\nbad:x\n") == {0: "root", 10: "wheel"}


def test_unknown_ids_and_missing_files(tmp_path):
    db = UserDb(str(tmp_path / "nope"), str(tmp_path / "nope2"))
    assert db.user(0).name is None and db.group(5).name is None
    assert db.user(7) is db.user(7)   # one shared object per id


def test_reload_when_the_file_changes(tmp_path, monkeypatch):
    pw = tmp_path / "passwd"
    pw.write_text("a:x:1000:1000::/home/a:/bin/sh\n")
    db = UserDb(str(pw), str(tmp_path / "group"))
    assert db.user_name(1000) == "a" and db.user_name(1001) is None
    pw.write_text("a:x:1000:1000::/home/a:/bin/sh\nb:x:1001:1001::/home/b:/bin/sh\n")
    os.utime(pw, ns=(1, 1))
    monkeypatch.setattr(U, "RECHECK_NS", 0)
    assert db.user_name(1001) == "b"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parsers_never_raise(text):
    for uid, (name, home, shell) in parse_passwd(text).items():
        assert uid >= 0 and ":" not in name
    for gid, name in parse_group(text).items():
        assert gid >= 0 and ":" not in name


def test_tracker_takes_an_etc_directory(tmp_path):
    import time

    from workload_agent.rules.event import Container
    from workload_agent.state import StateTracker

    (tmp_path / "passwd").write_text("svc:x:4321:4321::/srv:/bin/false\n")
    (tmp_path / "group").write_text("svc:x:4321:\n")
    t = StateTracker(Container(), users=str(tmp_path), start_ns=time.time_ns())
    assert t.users.user_name(4321) == "svc" and t.users.group_name(4321) == "svc"
