"""`workload-agent orchestrator`: run the alert collector."""
from __future__ import annotations

import argparse
import os

DEFAULT_LISTEN = "0.0.0.0:6667"
DEFAULT_METRICS = "0.0.0.0:9667"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "orchestrator", help="collect alerts from many agents and serve them rules",
        description="Accept agent connections, forward their alerts (de-duplicated) to the "
                    "outputs, and serve the rules bundle from --rules-dir.")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address for agents (default {DEFAULT_LISTEN})")
    p.add_argument("--tls-cert", metavar="PEM", help="server certificate chain (enables TLS)")
    p.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    p.add_argument("--plaintext", action="store_true",
                   help="accept agents without TLS (needed when no --tls-cert is given)")
    p.add_argument("--access-key", metavar="KEY",
                   help="key agents must present (default: env WORKLOAD_AGENT_ACCESS_KEY, "
                        "SYSDIG_ACCESS_KEY); prefer the environment, argv is visible to others")
    p.add_argument("--rules-dir", metavar="DIR",
                   help="serve the *.yaml files in DIR as the rules bundle; changes are "
                        "validated and pushed to agents")
    p.add_argument("--output", action="append", metavar="SPEC",
                   help="stdout | file:PATH | http(s)://HOST[:PORT]/PATH (Falco http_output) | "
                        "nats://HOST[:PORT]/STREAM (JetStream); repeatable (default stdout)")
    p.add_argument("--output-ca", metavar="PEM", help="CA bundle for https outputs")
    p.add_argument("--file-max-bytes", type=int, default=100 * 1024 * 1024, metavar="N",
                   help="rotate file outputs at this size (default 100 MiB)")
    p.add_argument("--file-backups", type=int, default=5, metavar="N",
                   help="rotated files kept per file output (default 5)")
    p.add_argument("--metrics-listen", default=DEFAULT_METRICS, metavar="HOST:PORT",
                   help=f"/healthz and /metrics (default {DEFAULT_METRICS}; 'off' disables)")
    p.add_argument("--max-frame", type=int, default=None, metavar="BYTES",
                   help="largest frame accepted from an agent (default 4 MiB)")
    p.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS",
                   help="close agent connections silent this long (default 120)")
    p.add_argument("--hello-timeout", type=float, default=None, metavar="SECONDS",
                   help="close a connection whose complete hello has not arrived by then (default 10)")
    p.add_argument("--max-connections", type=int, default=None, metavar="N",
                   help="connections served at once; more are closed and counted (default 20000)")
    p.add_argument("--max-unauthenticated", type=int, default=None, metavar="N",
                   help="connections that have not presented the key yet, at once (default 256)")
    p.add_argument("--write-timeout", type=float, default=None, metavar="SECONDS",
                   help="drop an agent that has not read what we sent for this long (default 30)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes sharing the agents' port (SO_REUSEPORT; default 1). "
                        "Each keeps its own dedup marks and file output (PATH becomes "
                        "STEM-wI.SUFFIX); metrics on the metrics port + I - 1")
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="info",
                   choices=("debug", "info", "warning", "error"), help="log level (stderr)")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    import sys
    print(f"workload-agent orchestrator: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    import asyncio
    import logging
    import signal
    import ssl

    from ..configuration import BY_NAME, split_host_port
    from .outputs import OutputError, make_output
    from .server import Limits, Orchestrator, server_ssl_context

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("workload_agent.orchestrator")

    key_env = BY_NAME["access_key"].env_names
    key = args.access_key or next((os.environ[v] for v in key_env if os.environ.get(v)), None)
    if not key:
        return _fail(f"no access key: give --access-key or set {' or '.join(key_env)}")
    if bool(args.tls_cert) != bool(args.tls_key):
        return _fail("--tls-cert and --tls-key go together")
    if not args.tls_cert and not args.plaintext:
        return _fail("no TLS certificate: give --tls-cert/--tls-key, or --plaintext to "
                     "accept unencrypted agents")
    try:
        host, port = split_host_port(args.listen, allow_port_zero=True)
        if port is None:
            raise ValueError(f"bad address {args.listen!r}: no port")
        mhost = mport = None
        if args.metrics_listen != "off":
            mhost, mport = split_host_port(args.metrics_listen, allow_port_zero=True)
            if mport is None:
                raise ValueError(f"bad address {args.metrics_listen!r}: no port")
    except ValueError as exc:
        return _fail(str(exc))
    if args.workers < 1:
        return _fail("--workers must be 1 or more")
    if args.workers > 1 and not args.worker_index:
        return _supervise(args, host, port, mhost, mport, log)
    worker = args.worker_index
    if worker:
        # each worker its own metrics port and its own files: appends and rotations of
        # separate processes must not meet in one file
        if mport:
            mport += worker - 1
        given = args.output or ["stdout"]
        args.output = [_worker_output(spec, worker) for spec in given]
    ssl_ctx = None
    if args.tls_cert:
        try:
            ssl_ctx = server_ssl_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            return _fail(f"cannot load --tls-cert {args.tls_cert} / --tls-key {args.tls_key}: {exc}")
    outputs = []
    try:
        for spec in args.output or ["stdout"]:
            outputs.append(make_output(spec, args.file_max_bytes, args.file_backups, args.output_ca))
    except OutputError as exc:
        return _fail(str(exc))
    if worker:
        from .outputs import FileOutput

        for spec, out in zip(given, outputs):
            if isinstance(out, FileOutput):
                # the dedup marks of the siblings' files too: an agent that reconnects may
                # land on another worker, which must know what was already written
                out.recover_also = [worker_path(spec[len("file:"):], i)
                                    for i in range(1, args.workers + 1) if i != worker]
    if args.rules_dir and not os.path.isdir(args.rules_dir):
        return _fail(f"--rules-dir {args.rules_dir}: not a directory")
    limits = Limits()
    if args.max_frame:
        limits.max_frame = args.max_frame
    if args.idle_timeout:
        limits.idle_timeout = args.idle_timeout
    if args.hello_timeout:
        limits.hello_timeout = args.hello_timeout
    if args.max_connections:
        limits.max_connections = args.max_connections
    if args.max_unauthenticated:
        limits.max_unauthenticated = args.max_unauthenticated
    if args.write_timeout:
        limits.write_timeout = args.write_timeout

    orch = Orchestrator(key, outputs, args.rules_dir, limits)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            bound = await orch.start(host, port, ssl_ctx, mhost, mport, reuse_port=bool(worker))
        except ValueError as exc:
            return _fail(str(exc))
        except OSError as exc:
            return _fail(f"cannot listen on {args.listen}: {exc.strerror}")
        log.info("listening on %s:%d (%s%s)", host, bound["port"], "tls" if ssl_ctx else "plaintext",
                 f", worker {worker} of {args.workers}" if worker else "")
        if bound["metrics_port"] is not None:
            log.info("metrics on %s:%d", mhost, bound["metrics_port"])
        await stop.wait()
        log.info("stopping")
        await orch.stop()
        return 0

    return asyncio.run(main())


def worker_path(path: str, worker: int) -> str:
    stem, dot, suffix = path.rpartition(".") if "." in os.path.basename(path) else (path, "", "")
    return f"{stem}-w{worker}{dot}{suffix}"


def _worker_output(spec: str, worker: int) -> str:
    return f"file:{worker_path(spec[len('file:'):], worker)}" if spec.startswith("file:") else spec


def _supervise(args, host: str, port: int, mhost, mport, log) -> int:
    """Start --workers copies of this command on one port; restart one that dies; pass
    SIGTERM/SIGINT on and wait for them."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    # Hold the port (bound, never listening: the kernel gives connections only to the
    # workers' listening sockets) so that port 0 means one port for all, and a
    # restarted worker gets the same one back.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError as exc:
        return _fail(f"cannot listen on {args.listen}: {exc.strerror}")
    port = holder.getsockname()[1]
    listen = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    base = [sys.executable, "-m", "workload_agent"] + _argv_from_orchestrator()

    def spawn(i: int) -> subprocess.Popen:
        return subprocess.Popen(base + ["--listen", listen, "--worker-index", str(i)],
                                pass_fds=())

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    workers = {i: spawn(i) for i in range(1, args.workers + 1)}
    log.info("supervising %d workers on %s", args.workers, listen)
    while not stopping:
        time.sleep(0.2)
        for i, proc in list(workers.items()):
            if proc.poll() is not None and not stopping:
                log.error("worker %d exited with %s; restarting it", i, proc.returncode)
                time.sleep(0.5)
                workers[i] = spawn(i)
    for proc in workers.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    code = 0
    for proc in workers.values():
        try:
            code = max(code, proc.wait(30))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = 1
    holder.close()
    return code


def _argv_from_orchestrator() -> list:
    import sys

    argv = sys.argv[1:]
    return argv[argv.index("orchestrator"):] if "orchestrator" in argv else ["orchestrator"] + argv
