# cffi_modules is a setup() keyword with no pyproject.toml spelling yet.
import glob

from setuptools import setup

setup(
    cffi_modules=["workload_agent/tracer/build.py:ffibuilder"],
    # The shipped ruleset, found at run time under <prefix>/share/workload-agent/rules.
    data_files=[("share/workload-agent/rules", sorted(glob.glob("rules/*.yaml")))],
)
