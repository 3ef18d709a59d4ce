"""Fixtures shared by the test modules: one uninterrupted run of the whole config/ci.yaml DAG per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_utils import ci_config, snakemake


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Working directory of the whole ci.yaml DAG run once with ``--cores 2`` (its config at ``ci.yaml``).

    Shared by every workflow test module (the end-to-end checks, the kill/resume and SLURM comparisons):
    the reference outputs of an uninterrupted run. Tests that change files in it (e.g. the stale-rerun
    checks) must leave it up to date again.
    """
    workdir = tmp_path_factory.mktemp("ci_run")
    config = ci_config(workdir)
    snakemake(workdir, "--cores", "2", "--configfile", str(config))
    return workdir
