# cffi_modules is a setup() keyword with no pyproject.toml spelling yet.
from setuptools import setup

setup(cffi_modules=["workload_agent/tracer/build.py:ffibuilder"])
