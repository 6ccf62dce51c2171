#!/bin/sh
# Benign: Python's http.server serves a directory on 127.0.0.1 and curl fetches from it.
set -eu
py=${PYTHON:-python3}
mkdir -p site/static
printf '<h1>hello</h1>\n' > site/index.html
printf 'h1 { color: red }\n' > site/static/app.css
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$py" -m http.server "$port" --bind 127.0.0.1 --directory site >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
i=0
until curl -fsS -o /dev/null "http://127.0.0.1:$port/"; do
    i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/static/app.css" | grep -q color
curl -fsS -o page.html "http://127.0.0.1:$port/index.html"
curl -sS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/missing" | grep -q 404
echo served
