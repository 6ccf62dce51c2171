#!/bin/sh
# Benign: a small Python build (setuptools build, byte-compiling, a wheel assembled from
# the build) and `pip install` of that local wheel, with no network.
set -eu
py=${PYTHON:-python3}
mkdir -p src/wa_demo
cat > src/wa_demo/__init__.py <<'PY'
def greet(name):
    return "hello " + name
PY
cat > src/setup.py <<'PY'
from setuptools import setup
setup(name="wa-demo", version="1.0", packages=["wa_demo"])
PY
(cd src && "$py" setup.py -q build 2>/dev/null)
"$py" -m compileall -q src/build/lib
"$py" - <<'PY'
import base64, hashlib, os, zipfile
info = "wa_demo-1.0.dist-info"
files = {"wa_demo/__init__.py": open("src/build/lib/wa_demo/__init__.py", "rb").read(),
         f"{info}/METADATA": b"Metadata-Version: 2.1\nName: wa-demo\nVersion: 1.0\n",
         f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: wa-demo\nRoot-Is-Purelib: true\n"
                          b"Tag: py3-none-any\n"}
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
record = "".join(f"{n},{digest(d)},{len(d)}\n" for n, d in files.items()) + f"{info}/RECORD,,\n"
os.makedirs("dist", exist_ok=True)
with zipfile.ZipFile("dist/wa_demo-1.0-py3-none-any.whl", "w") as whl:
    for name, data in files.items():
        whl.writestr(name, data)
    whl.writestr(f"{info}/RECORD", record)
PY
"$py" -m pip install -q --no-deps --no-index --disable-pip-version-check --target site-dir \
    dist/wa_demo-1.0-py3-none-any.whl
PYTHONPATH=site-dir "$py" -c 'import wa_demo; print(wa_demo.greet("pip"))'
