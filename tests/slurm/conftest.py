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

from slurm_local import TIMINGS, LocalSlurm, SlurmUnavailable, install_slurm


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurm]:
    """A running one-node SLURM (slurm-wlm installed with apt-get first if needed); stopped afterwards.

    Skips without root or apt-get, or where the machine has a SLURM configuration of its own; fails when
    apt-get or a daemon fails, with their output.
    """
    try:
        seconds = install_slurm()
    except SlurmUnavailable as exc:
        pytest.skip(str(exc))
    except RuntimeError as exc:
        pytest.fail(f"could not install SLURM: {exc}")
    TIMINGS["apt-get install slurm-wlm munge"] = f"{seconds:.1f} s" if seconds else "already installed"
    cluster = LocalSlurm()
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
