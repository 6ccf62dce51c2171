#!/bin/sh
# Benign: a typical container entrypoint. It checks the environment, renders its
# configuration from a template, prepares directories, then execs the server.
set -eu
: "${APP_HOME:=$PWD/app}"
: "${APP_PORT:=8080}"
: "${APP_ENV:=production}"
echo "entrypoint: starting as $(id -un) ($(id -u)) on $(uname -m)"
if command -v dpkg >/dev/null 2>&1; then
    echo "entrypoint: architecture $(dpkg --print-architecture)"
fi
mkdir -p "$APP_HOME/conf" "$APP_HOME/run" "$APP_HOME/logs"
cat > "$APP_HOME/conf/app.conf.template" <<'TEMPLATE'
listen = @PORT@
environment = @ENV@
TEMPLATE
sed -e "s/@PORT@/$APP_PORT/" -e "s/@ENV@/$APP_ENV/" \
    "$APP_HOME/conf/app.conf.template" > "$APP_HOME/conf/app.conf"
chmod 0644 "$APP_HOME/conf/app.conf"
grep -q "listen = $APP_PORT" "$APP_HOME/conf/app.conf"
for f in "$APP_HOME"/conf/*.conf; do
    echo "entrypoint: using $(basename "$f")"
done
exec "${PYTHON:-python3}" "$(dirname "$0")/webapp.py" "$APP_HOME/run"
