#!/bin/sh
# Benign: nginx serves static files on 127.0.0.1 and is fetched, then stops
# gracefully. Everything nginx writes (logs, pid, temp files) stays in ./nginx.
set -eu
PY="${PYTHON:-python3}"
root="$PWD/nginx"
mkdir -p "$root/html/static" "$root/logs" "$root/tmp"
printf '<h1>hello from nginx</h1>\n' > "$root/html/index.html"
printf 'body { margin: 0 }\n' > "$root/html/static/site.css"
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$root/nginx.conf" <<CONF
worker_processes 1;
error_log $root/logs/error.log;
pid $root/nginx.pid;
events { worker_connections 64; }
http {
    access_log $root/logs/access.log;
    client_body_temp_path $root/tmp/body;
    proxy_temp_path $root/tmp/proxy;
    fastcgi_temp_path $root/tmp/fastcgi;
    uwsgi_temp_path $root/tmp/uwsgi;
    scgi_temp_path $root/tmp/scgi;
    types { text/html html; text/css css; }
    server {
        listen 127.0.0.1:$port;
        root $root/html;
        autoindex on;
    }
}
CONF
nginx -p "$root" -e "$root/logs/error.log" -c "$root/nginx.conf" -g 'daemon off;' &
server=$!
"$PY" - "$port" <<'FETCH'
import sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(200):
    try:
        urllib.request.urlopen(base + "/", timeout=2).read()
        break
    except OSError:
        time.sleep(0.05)
for path in ("/", "/static/site.css", "/static/"):
    with urllib.request.urlopen(base + path, timeout=5) as resp:
        print(path, resp.status, len(resp.read()))
FETCH
kill -QUIT "$server"
wait "$server" || true
