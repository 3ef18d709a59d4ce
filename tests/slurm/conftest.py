"""A one-node SLURM cluster on the test machine for the SLURM end-to-end test (tests/slurm/)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):  # slurm_local; workflow_utils and reference_data of tests/
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from slurm_local import TIMINGS, LocalSlurm, MachineRestore, SlurmUnavailable, install_slurm, restored_on_signals


@pytest.fixture(scope="session")
def machine_restore() -> Iterator[MachineRestore]:
    """slurm-wlm and munge installed with apt-get if needed; everything the SLURM tests change on this machine
    (packages, clusters) undone at the end, also when the session fails or is interrupted (SIGTERM, SIGHUP,
    SIGINT). Skips without root or apt-get; fails when apt-get fails, with its output."""
    restore = MachineRestore()
    with restored_on_signals(restore):
        try:
            seconds, restore.packages = install_slurm()
        except SlurmUnavailable as exc:
            pytest.skip(str(exc))
        except RuntimeError as exc:
            pytest.fail(f"could not install SLURM: {exc}")
        TIMINGS["apt-get install slurm-wlm munge"] = f"{seconds:.1f} s" if seconds else "already installed"
        yield restore


@pytest.fixture(scope="session")
def slurm_cluster(machine_restore: MachineRestore) -> Iterator[LocalSlurm]:
    """A running one-node SLURM; stopped afterwards (or by `machine_restore` on a signal).

    Skips where the machine has a SLURM configuration of its own; fails when a daemon fails, with its logs.
    """
    cluster = LocalSlurm()
    machine_restore.clusters.append(cluster)
    try:
        cluster.start()
    except SlurmUnavailable as exc:
        cluster.stop()
        pytest.skip(str(exc))
    except Exception:
        cluster.stop()
        raise
    TIMINGS["cluster start (munged, slurmctld, slurmd; node idle)"] = f"{cluster.startup_s:.1f} s"
    try:
        yield cluster
    finally:
        cluster.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("SLURM end-to-end test")
        for what, value in TIMINGS.items():
            terminalreporter.write_line(f"{what}: {value}")
