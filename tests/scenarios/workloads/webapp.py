"""Benign: a small Python web application (WSGI) that renders a template, answers a
JSON API, keeps a log file and an SQLite database, and is exercised by a client."""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

data_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "data")
os.makedirs(data_dir, exist_ok=True)
logging.basicConfig(filename=os.path.join(data_dir, "app.log"), level=logging.INFO)
template = os.path.join(data_dir, "page.html")
with open(template, "w") as fh:
    fh.write("<p>Hello {name}</p>\n")
db = sqlite3.connect(os.path.join(data_dir, "app.db"), check_same_thread=False)
db.execute("create table if not exists hits (path text)")
lock = threading.Lock()


def app(environ, start_response):
    path = environ["PATH_INFO"]
    with lock:
        db.execute("insert into hits values (?)", (path,))
        db.commit()
        count = db.execute("select count(*) from hits").fetchone()[0]
    logging.info("request %s", path)
    if path.startswith("/api"):
        body = json.dumps({"hits": count, "pid": os.getpid()}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
    else:
        with open(template) as fh:
            body = fh.read().format(name=path.strip("/") or "world").encode()
        start_response("200 OK", [("Content-Type", "text/html")])
    return [body]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
thread = threading.Thread(target=server.serve_forever, daemon=True)
thread.start()
base = f"http://127.0.0.1:{server.server_port}"
for path in ("/", "/alice", "/api/stats", "/api/stats"):
    with urllib.request.urlopen(base + path, timeout=5) as resp:
        print(path, resp.status, resp.read()[:60])
server.shutdown()
