"""Fixtures shared by the test modules: one uninterrupted run of the whole config/ci.yaml DAG per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from workflow_utils import ci_config, pristine_results, snakemake


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Working directory of the whole ci.yaml DAG run once with ``--cores 2`` (its config at ``ci.yaml``).

    Shared by every workflow test module (the end-to-end checks, the kill/resume and SLURM comparisons):
    the reference outputs of an uninterrupted run. Tests that change files in it (e.g. the stale-rerun
    checks) must leave it up to date again. A copy of its ``results/`` as the run left it, which no test
    touches, is at :func:`pristine_results` (e.g. before the report test adds ``results/report.html``).
    """
    workdir = tmp_path_factory.mktemp("ci_run")
    config = ci_config(workdir)
    snakemake(workdir, "--cores", "2", "--configfile", str(config))
    shutil.copytree(workdir / "results", pristine_results(workdir), symlinks=True)
    return workdir
