"""Running the workflow from tests: snakemake in a temporary working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def ci_config(tmp_path: Path, **training: object) -> Path:
    """config/ci.yaml (with the PSZ2 catalogue shipped with szmass: no network) with some training keys updated."""
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())
    cfg["training"].update(training)
    path = tmp_path / "ci.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def validated_config(name: str = "ci.yaml", **sections: dict) -> dict:
    """``config/<name>`` with some sections replaced, validated by the workflow's schema (defaults filled in)."""
    import yaml
    from snakemake.utils import validate

    cfg = yaml.safe_load((REPO / "config" / name).read_text()) | sections
    validate(cfg, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return cfg


def pristine_results(ci_run: Path) -> Path:
    """The copy of the ``ci_run`` fixture's ``results/`` made right after the run, which no test changes
    (comparisons against it do not depend on the order of the tests)."""
    return ci_run.with_name(f"{ci_run.name}_results")


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile with ``workdir`` as working directory."""
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}")
    return proc
