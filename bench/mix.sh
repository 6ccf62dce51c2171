#!/bin/sh
# a realistic mix: process spawns, file opens, python imports, sockets
cd /tmp
for i in $(seq 60); do
  cat /etc/hostname /etc/passwd >/dev/null
  ls /usr/bin >/dev/null
  grep -q root /etc/group
  echo $i > /tmp/perf-mix-$$.txt; rm -f /tmp/perf-mix-$$.txt
  id >/dev/null
done
python3 -c 'import json, email, http.client, urllib.request, sqlite3, xml.dom.minidom, socket
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); p=s.getsockname()[1]
c=socket.create_connection(("127.0.0.1",p)); a,_=s.accept(); a.close(); c.close(); s.close()
for f in ["/etc/shadow","/root/.ssh/id_rsa","/etc/hosts"]:
    try: open(f).read()
    except OSError: pass
'
for i in $(seq 20); do sh -c 'uname -a; whoami; env >/dev/null' >/dev/null; done
