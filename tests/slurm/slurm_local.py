"""A throw-away single-node SLURM cluster on the test machine (Debian's slurm-wlm and munge).

`install_slurm()` installs the packages with apt-get when they are missing (root and apt-get needed, else
the caller skips); `LocalSlurm` writes a one-node configuration (accounting off, select/cons_tres, one GPU
declared as a generic resource backed by /dev/null), starts munged, slurmctld and slurmd on free local
ports with their state, logs and munge key in a temporary directory, waits for the node to be idle and
stops everything again.

slurm.conf and gres.conf go to the default location, /etc/slurm, as on a real cluster: the job steps
(`srun` inside each job, started by snakemake-executor-plugin-slurm-jobstep) run with every ``SLURM_*``
variable but the job's identity removed, ``SLURM_CONF`` included, so only the default path reaches them.
The files carry a marker line; a configuration there without it (a machine that belongs to a real
cluster) is never touched, and the files are removed again at the end.

`MachineRestore` undoes everything once, from a fixture finaliser or, through `restored_on_signals`, from
a SIGTERM, SIGHUP or SIGINT: it stops the clusters (daemons, jobs, their files, /etc/slurm if it created
it) and purges the packages that `install_slurm` installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel")
SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
CONF_DIR = Path("/etc/slurm")  # Debian's compiled-in default (SLURM_CONF does not reach the job steps)
MARKER = "# szmass test cluster (tests/slurm): written and removed by the test"
TIMINGS: dict[str, str] = {}
"""What the SLURM test measured (install, start-up, run), printed in pytest's terminal summary."""


def which(name: str) -> str | None:
    """Path of an executable on PATH or in the sbin directories (daemons live there; PATH may lack them)."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def missing_programs() -> list[str]:
    """The SLURM and munge programs that are not installed."""
    return [p for p in (*DAEMONS, *CLIENTS) if which(p) is None]


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed on this machine (the reason is the message); tests skip on it."""


def _apt(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(["apt-get", *args], check=False, capture_output=True, text=True, timeout=timeout, env=env)


def installed_packages() -> set[str]:
    """The Debian packages installed now (``dpkg-query``; empty without dpkg)."""
    if shutil.which("dpkg-query") is None:
        return set()
    out = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\n"], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("ii ")}


def remove_packages(packages: list[str], timeout: float = 600) -> None:
    """Purge ``packages`` with apt-get (those `install_slurm` installed); RuntimeError with its output on failure."""
    proc = _apt(["purge", "-y", *packages], timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"apt-get purge failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def install_slurm(timeout: float = 600) -> tuple[float, list[str]]:
    """Install slurm-wlm and munge with apt-get if any program is missing: the seconds it took (0 if present)
    and the packages it installed (dependencies included), for `remove_packages` to take away again.

    Raises `SlurmUnavailable` without root or apt-get, and RuntimeError with apt-get's output when the
    installation fails. Runs ``apt-get update`` first only when the package lists do not know the packages.
    """
    if not missing_programs():
        return 0.0, []
    if os.geteuid() != 0:
        raise SlurmUnavailable(f"SLURM is not installed ({', '.join(missing_programs())} missing) and the tests "
                               "do not run as root, so they cannot apt-get install slurm-wlm munge")
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable(f"SLURM is not installed ({', '.join(missing_programs())} missing) and there is "
                               "no apt-get to install slurm-wlm and munge with")
    start = time.perf_counter()
    before = installed_packages()
    try:
        known = _apt(["install", "--simulate", "--no-install-recommends", *PACKAGES], timeout=120)
        if known.returncode != 0:  # empty or stale package lists (e.g. a fresh container)
            update = _apt(["update"], timeout=timeout / 2)
            if update.returncode != 0:
                raise RuntimeError(f"apt-get update failed ({update.returncode}):\n{update.stdout[-2000:]}\n"
                                   f"{update.stderr[-2000:]}")
        proc = _apt(["install", "-y", "--no-install-recommends", *PACKAGES], timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"apt-get did not finish within {exc.timeout:.0f} s: {' '.join(exc.cmd)}") from exc
    added = sorted(installed_packages() - before)
    if proc.returncode != 0 or missing_programs():
        if added:  # a half-done installation is taken away again
            remove_packages(added)
        raise RuntimeError(f"apt-get install {' '.join(PACKAGES)} failed ({proc.returncode}; still missing: "
                           f"{missing_programs()}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, added


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_hardware(slurmd: str) -> dict[str, str]:
    """This machine as slurmd sees it (``slurmd -C``): CPUs, sockets, cores, threads, RealMemory [MB]."""
    out = subprocess.run([slurmd, "-C"], capture_output=True, text=True, check=True, timeout=60).stdout
    first = out.splitlines()[0]
    fields = dict(item.split("=", 1) for item in first.split())
    keep = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    missing = [k for k in ("CPUs", "RealMemory") if k not in fields]
    if missing:
        raise RuntimeError(f"`slurmd -C` printed no {missing}: {first!r}")
    return {k: fields[k] for k in keep if k in fields}


@dataclass
class LocalSlurm:
    """One node (this machine) in one partition ``debug``, with one GPU declared (backed by /dev/null)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="szmass-slurm-")))
    conf_dir: Path = CONF_DIR
    partition: str = "debug"
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    node: str = ""
    """The node's name: this machine's short host name."""
    hardware: str = ""
    """The node's hardware as slurm.conf declares it (``CPUs=2 ... RealMemory=24105``, memory in MB)."""
    startup_s: float = 0.0
    created_conf_dir: bool = False
    """Whether `write_config` created ``conf_dir`` (then `stop` removes it)."""

    @property
    def conf(self) -> Path:
        return self.conf_dir / "slurm.conf"

    def _config_files(self) -> list[Path]:
        return [self.conf, self.conf_dir / "gres.conf"]

    def _ours(self, path: Path) -> bool:
        return path.read_text(errors="replace").startswith(MARKER)

    def write_config(self) -> None:
        """slurm.conf and gres.conf (read from slurm.conf's directory) in ``conf_dir``; munge key, state
        and logs under ``root``. Raises `SlurmUnavailable` if ``conf_dir`` holds another configuration."""
        foreign = [str(p) for p in self._config_files() if p.exists() and not self._ours(p)]
        if foreign:
            raise SlurmUnavailable(f"this machine has its own SLURM configuration ({', '.join(foreign)}); the test "
                                   "brings up its own one-node cluster only where there is none")
        root = self.root
        for sub in ("state", "spool", "log", "munge"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "munge").chmod(0o700)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.node = socket.gethostname().split(".")[0]
        hw = " ".join(f"{k}={v}" for k, v in node_hardware(which("slurmd")).items())
        self.hardware = hw
        self.created_conf_dir = self.created_conf_dir or not self.conf_dir.exists()
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(f"""\
{MARKER}
ClusterName=szmass-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root / "munge" / "munge.socket"}
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={self.node} NodeAddr=127.0.0.1 {hw} Gres=gpu:1 State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
        # a GPU count without a device file leaves the node invalid; /dev/null stands in for the device
        (self.conf_dir / "gres.conf").write_text(f"{MARKER}\nName=gpu File=/dev/null Count=1\n")

    def _spawn(self, name: str, args: list[str]) -> None:
        with open(self.root / "log" / f"{name}.out", "wb") as log:  # the child keeps its own descriptor
            self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), check=False, capture_output=True, text=True, timeout=timeout)

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}) while the test cluster started:\n"
                                   f"{self.logs()}")

    def logs(self, tail: int = 3000) -> str:
        """The daemons' log tails, for error messages."""
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name}\n{text[-tail:]}")
        return "\n".join(parts)

    def start(self, timeout: float = 120) -> None:
        """Start munged, slurmctld and slurmd in the foreground of child processes; wait for an idle node."""
        start = time.perf_counter()
        self.write_config()
        m = self.root / "munge"
        self._spawn("munged", [which("munged"), "--foreground", "--force", f"--socket={m / 'munge.socket'}",
                               f"--key-file={m / 'munge.key'}", f"--pid-file={m / 'munged.pid'}",
                               f"--seed-file={m / 'munged.seed'}", f"--log-file={self.root / 'log' / 'munged.log'}"])
        deadline = time.monotonic() + timeout
        while not (m / "munge.socket").exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"munged did not open its socket within {timeout} s:\n{self.logs()}")
            time.sleep(0.1)
        conf = str(self.conf)
        self._spawn("slurmctld", [which("slurmctld"), "-D", "-c", "-i", "-f", conf])
        self._spawn("slurmd", [which("slurmd"), "-D", "-f", conf, "-N", self.node])
        state = ""
        while time.monotonic() < deadline:
            self._check_alive()
            proc = self._run("sinfo", "--noheader", "--Node", "--format=%T")
            state = proc.stdout.strip()
            if proc.returncode == 0 and state == "idle":
                self.startup_s = time.perf_counter() - start
                return
            time.sleep(0.5)
        raise RuntimeError(f"the test node is not idle after {timeout} s (state {state!r}):\n{self.logs()}")

    def node_cpus_mem(self) -> tuple[int, int]:
        """CPUs and memory [MB] of the test node (this machine's, from ``slurmd -C``)."""
        fields = dict(item.split("=", 1) for item in self.hardware.split())
        return int(fields["CPUs"]), int(fields["RealMemory"])

    def node_info(self) -> str:
        """``scontrol show node`` of the test node."""
        return self._run("scontrol", "show", "node", self.node).stdout

    def daemon_pids(self) -> dict[str, int]:
        """Process ids of the daemons started (running or not)."""
        return {name: proc.pid for name, proc in self.procs.items()}

    def stop(self) -> None:
        """Cancel every job, stop the daemons (SIGTERM, then SIGKILL), remove the configuration files (and
        ``conf_dir`` if it created it) and the temporary directory. Safe to call twice."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                self._run("scancel", "--full", f"--partition={self.partition}", timeout=30)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and self._run("squeue", "--noheader").stdout.strip():
                    time.sleep(0.5)
            except subprocess.TimeoutExpired:
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)
        for path in self._config_files():
            if path.exists() and self._ours(path):
                path.unlink()
        if self.created_conf_dir and self.conf_dir.is_dir() and not any(self.conf_dir.iterdir()):
            self.conf_dir.rmdir()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class MachineRestore:
    """What the SLURM tests changed on this machine, undone once by `undo` (a finaliser or a signal handler)."""

    packages: list[str] = field(default_factory=list)
    """Packages `install_slurm` installed: purged by `undo`."""
    clusters: list[LocalSlurm] = field(default_factory=list)
    """Test clusters started: stopped by `undo`."""

    def undo(self) -> None:
        """Stop every cluster, then purge the packages; each only once, however often it is called."""
        while self.clusters:
            self.clusters.pop().stop()
        packages, self.packages = self.packages, []
        if packages:
            remove_packages(packages)


@contextlib.contextmanager
def restored_on_signals(restore: MachineRestore, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP,
                                                                             signal.SIGINT)) -> Iterator[None]:
    """Run ``restore.undo()`` when the block ends, however it ends, and on any of ``signals`` while it runs.

    A signal first undoes the changes, then takes its previous effect (the default of SIGTERM and SIGHUP
    ends the process; pytest's SIGINT handler raises KeyboardInterrupt).
    """
    previous = {s: signal.getsignal(s) for s in signals}

    def handler(signum: int, frame: object) -> None:
        restore.undo()
        signal.signal(signum, previous[signum])
        os.kill(os.getpid(), signum)

    for s in signals:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        restore.undo()
