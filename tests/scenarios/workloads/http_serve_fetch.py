"""Benign: `python3 -m http.server` serves a directory on 127.0.0.1 and is fetched."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

site = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "site")
os.makedirs(os.path.join(site, "static"), exist_ok=True)
for name, body in {"index.html": "<h1>hello</h1>\n", "static/app.css": "h1 { color: red }\n",
                   "static/data.json": '{"items": [1, 2, 3]}\n'}.items():
    with open(os.path.join(site, name), "w") as fh:
        fh.write(body)

with socket.socket() as probe:  # a free port
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]

server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                           "--directory", site], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/", timeout=2).read()
            break
        except OSError:
            time.sleep(0.05)
    for path in ("/", "/static/app.css", "/static/data.json", "/static/"):
        with urllib.request.urlopen(base + path, timeout=5) as resp:
            print(path, resp.status, len(resp.read()))
    try:
        urllib.request.urlopen(base + "/missing", timeout=5)
    except urllib.error.HTTPError as exc:
        print("/missing", exc.code)
finally:
    server.terminate()
    server.wait(10)
