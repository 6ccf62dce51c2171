"""`run`'s command line read without argparse (cli.quick_args): whatever it reads, it
reads as argparse does; whatever it is not sure of, argparse reads (help, errors)."""
import contextlib
import io
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from workload_agent.cli import build_parser, quick_args


def argparse_reads(argv):
    """vars() of argparse's namespace, or "error" when it stops with a message."""
    parser = build_parser("run")
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return vars(parser.parse_args(argv))
        except SystemExit:
            return "error"


def run_options():
    sub = next(a for a in build_parser("run")._actions if a.dest == "command").choices["run"]
    return sorted(s for a in sub._actions for s in a.option_strings)


OPTIONS = run_options()
VALUES = ["security", "availability", "all", "first", "4096", "-1", "x.yaml", "", "-", "--stats",
          "trace", "never", "alert", "deny", "any", "follow", "WARNING", "a=b"]
TOKEN = st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES),
                  st.builds(lambda o, v: f"{o}={v}", st.sampled_from(OPTIONS), st.sampled_from(VALUES)),
                  st.text(min_size=0, max_size=6))


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKEN, max_size=6), st.booleans(), st.lists(st.one_of(TOKEN, st.just("--")), max_size=4))
def test_what_it_reads_argparse_reads_the_same(opts, dashes, command):
    argv = ["run", *opts] + (["--"] if dashes else []) + command
    quick = quick_args(argv)
    if quick is not None:
        assert vars(quick) == argparse_reads(argv), argv


def test_the_usual_forms_are_read_without_argparse():
    for argv in (["run", "--", "true"],
                 ["run", "--priority", "security", "--", "/bin/true", "-x", "--y"],
                 ["run", "-r", "a.yaml", "--rules=b.yaml", "--json", "--stats", "--no-tls",
                  "--ring-size", "65536", "--alerts-to", "stderr", "--", "sh", "-c", "exit 3"],
                 ["run", "--no-seccomp", "--min-priority", "WARNING", "--attach-foreign=never", "--"]):
        quick = quick_args(argv)
        assert quick is not None, argv
        assert vars(quick) == argparse_reads(argv), argv


def test_help_and_errors_are_argparse_s():
    for argv in (["run", "-h"], ["run", "--priority", "bogus", "--", "true"], ["run", "--prio", "security", "--", "true"],
                 ["run", "--ring-size", "lots", "--", "true"], ["run", "true"]):
        assert quick_args(argv) is None, argv
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "--priority", "bogus", "--", "true"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "invalid choice: 'bogus'" in p.stderr
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and "--no-tls" in p.stdout and "--tracer-cpu" in p.stdout


def test_a_run_reads_its_options_without_importing_argparse():
    code = ("import sys\nfrom workload_agent.cli import quick_args\n"
            "args = quick_args(['run', '--priority', 'security', '-r', 'x', '--', 'true'])\n"
            "print(args.priority, args.rules, args.command, 'argparse' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["security", "['x']", "['true']", "False"]
