"""The SLURM tests leave the machine as they found it: a test cluster interrupted by a signal or failing with
an error stops its daemons and removes its files (`MachineRestore`, `restored_on_signals`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_local import MachineRestore

pytestmark = pytest.mark.workflow
HERE = Path(__file__).resolve().parent

# A process that starts a test cluster (configuration in its own folder, so that it never meets the session's
# cluster in /etc/slurm), reports it on stdout, then waits to be signalled or fails.
CHILD = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, {here!r})
from slurm_local import LocalSlurm, MachineRestore, restored_on_signals

conf_dir = Path({conf_dir!r})
os.environ["SLURM_CONF"] = str(conf_dir / "slurm.conf")
restore = MachineRestore()
with restored_on_signals(restore):
    cluster = LocalSlurm(conf_dir=conf_dir)
    restore.clusters.append(cluster)
    cluster.start()
    print(json.dumps({{"pids": cluster.daemon_pids(), "root": str(cluster.root)}}), flush=True)
    if {fail!r}:
        raise RuntimeError("a test failed while the cluster ran")
    time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def start_child(tmp_path: Path, fail: bool) -> tuple[subprocess.Popen, dict]:
    conf_dir = tmp_path / "etc-slurm"
    script = CHILD.format(here=str(HERE), conf_dir=str(conf_dir), fail=fail)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    if not line:
        child.wait(timeout=60)
        pytest.fail(f"the test cluster did not start ({child.returncode}):\n{child.stderr.read()[-3000:]}")
    return child, json.loads(line)


def assert_restored(tmp_path: Path, started: dict) -> None:
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in started["pids"].values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(started["pids"]) == {"munged", "slurmctld", "slurmd"}
    assert not [name for name, pid in started["pids"].items() if alive(pid)]
    assert not (tmp_path / "etc-slurm").exists()  # slurm.conf, gres.conf and the folder it created
    assert not Path(started["root"]).exists()  # state, spool, logs, munge key


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_the_cluster_and_removes_its_files(machine_restore: MachineRestore, tmp_path, signum):
    child, started = start_child(tmp_path, fail=False)
    assert all(alive(pid) for pid in started["pids"].values())
    child.send_signal(signum)
    assert child.wait(timeout=120) == -signum  # cleaned up, then ended by the signal as before
    assert_restored(tmp_path, started)


def test_a_failure_stops_the_cluster_and_removes_its_files(machine_restore: MachineRestore, tmp_path):
    child, started = start_child(tmp_path, fail=True)
    assert child.wait(timeout=120) == 1
    assert "RuntimeError: a test failed while the cluster ran" in child.stderr.read()
    assert_restored(tmp_path, started)


def test_undo_purges_only_the_packages_it_installed(monkeypatch):
    """`undo` stops each cluster once and purges exactly the recorded packages, once, however often called."""
    import slurm_local

    purged, stopped = [], []
    monkeypatch.setattr(slurm_local, "remove_packages", lambda packages: purged.append(list(packages)))
    cluster = slurm_local.LocalSlurm(root=Path(os.devnull))
    monkeypatch.setattr(cluster, "stop", lambda: stopped.append(cluster))
    restore = MachineRestore(packages=["munge", "slurm-wlm", "slurmctld"], clusters=[cluster])
    restore.undo()
    restore.undo()
    assert purged == [["munge", "slurm-wlm", "slurmctld"]] and stopped == [cluster]
