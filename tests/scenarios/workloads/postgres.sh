#!/bin/sh
# Benign: PostgreSQL initdb, pg_ctl start, pgbench -i and a short pgbench run, on a
# Unix socket in the work directory. PostgreSQL refuses to run as root: root hands the
# work to nobody first.
set -eu
if [ "$(id -u)" = 0 ]; then
    chmod 0777 .
    exec setpriv --reuid=65534 --regid=65534 --clear-groups -- "$0" "$@"
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export PATH="$bin:$PATH"
here=$(pwd)
initdb -A trust -U bench -D "$here/pgdata" >/dev/null
pg_ctl -s -w -D "$here/pgdata" -l "$here/pg.log" \
    -o "-k $here -c listen_addresses= -c fsync=off" start
trap 'pg_ctl -s -w -D "$here/pgdata" -m fast stop' EXIT
pgbench -q -i -s 1 -h "$here" -U bench postgres 2>/dev/null
pgbench -n -c 2 -j 1 -t 50 -h "$here" -U bench postgres | grep -q "number of transactions actually processed"
echo pgbench done
