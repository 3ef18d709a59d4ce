"""Kill and resume: SIGKILL during projection and again during training, then a rerun ends where an
uninterrupted run ends (issue 8, item 5).

The run is config/ci.yaml limited to the clean maps, the halo table and one training run (clean mocks, redshift
bin 1, seed 0). Snakemake and its jobs share one process group, which is SIGKILLed as a whole, like a node
failing or a scheduler's hard time limit: nothing gets to clean up, so the working directory stays locked and is
unlocked (`snakemake --unlock`) before each rerun. After each kill every file under results/
is either complete (equal to the uninterrupted run's) or belongs to an output that Snakemake marked incomplete
(so the rerun, with rerun-incomplete from profiles/default, redoes it) or lies in a hidden temporary of
szmass.atomic (never an output path; the next write of that output removes it). The last rerun must leave
exactly the uninterrupted run's files.

Equal means byte for byte, except where a file records when or from which checkout it was made, not what was
computed: provenance records (zarr attribute ``provenance``, ``*.provenance.json`` sidecars) are compared
without ``created_utc``, ``git_commit`` and ``git_dirty`` (the repository may gain commits between the two runs
of a development session), and Keras ``.keras`` archives member by member: ``model.weights.h5`` byte for byte,
``metadata.json`` without its ``date_saved`` (Keras stamps the save time there and in the zip entries' dates),
and ``config.json`` decoded, with its ``shared_object_id`` values (Python ``id()``s of shared objects such as
the dtype policy, i.e. memory addresses that differ from process to process) renumbered by first appearance.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from workflow_utils import REPO, SNAKEMAKE, ci_config, snakemake

pytestmark = pytest.mark.workflow

TRAIN_RUN = "results/models/clean/z1/seed0"
TARGETS = ["results/halos/synth.csv", "results/maps/clean.zarr",
           *(f"{TRAIN_RUN}/{name}" for name in ("model.keras", "history.csv", "predictions.csv"))]
VOLATILE = {"created_utc", "git_commit", "git_dirty"}
"""Provenance fields that say when and from which checkout a file was made, not what was computed."""


def start(workdir: Path, config: Path, phase: str) -> subprocess.Popen:
    """snakemake --cores 2 on TARGETS in its own session and process group (which its jobs inherit)."""
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2",
           *TARGETS, "--configfile", str(config)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    out = open(workdir / f"snakemake_{phase}.txt", "w")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    proc.log_file = out  # type: ignore[attr-defined]
    return proc


def wait_then_kill(proc: subprocess.Popen, workdir: Path, phase: str, ready: Callable[[], bool],
                   timeout: float = 1200) -> float:
    """Wait until ``ready()``, then SIGKILL the whole process group; returns the seconds waited."""
    t0 = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            proc.log_file.close()
            log = (workdir / f"snakemake_{phase}.txt").read_text()
            pytest.fail(f"snakemake ended (rc {proc.returncode}) before the {phase} kill point:\n{log[-4000:]}")
        if time.monotonic() - t0 > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"no {phase} kill point within {timeout} s")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.log_file.close()
    deadline = time.monotonic() + 30
    while True:  # the jobs (children in the same group) are gone too
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "processes of the killed group survive"
        time.sleep(0.1)
    return time.monotonic() - t0


def unlock(workdir: Path, config: Path) -> None:
    """`snakemake --unlock`: a killed Snakemake leaves its working directory locked (as after a power loss)."""
    assert (workdir / ".snakemake" / "locks").is_dir() and any((workdir / ".snakemake" / "locks").iterdir())
    snakemake(workdir, "--unlock", *TARGETS, "--configfile", str(config))


def incomplete_outputs(workdir: Path) -> set[str]:
    """Outputs Snakemake marked incomplete: the records under .snakemake/incomplete are named by the
    urlsafe-base64 of the output path, cut into path segments (all but the last prefixed with '@')."""
    root = workdir / ".snakemake" / "incomplete"
    marked = set()
    for record in root.rglob("*"):
        if record.is_file() and record.name != "migration_underway":
            parts = record.relative_to(root).parts
            encoded = "".join(p.removeprefix("@") for p in parts)
            marked.add(base64.urlsafe_b64decode(encoded).decode())
    return marked


def _strip_volatile(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _strip_volatile(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip_volatile(v) for v in obj]
    return obj


def _renumber_shared_objects(obj: object, ids: dict[int, int]) -> object:
    """Keras config with each ``shared_object_id`` (a Python ``id()``, i.e. a memory address) replaced by the
    rank of its first appearance: the same sharing structure, without the addresses."""
    if isinstance(obj, dict):
        return {k: ids.setdefault(v, len(ids)) if k == "shared_object_id" else _renumber_shared_objects(v, ids)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_renumber_shared_objects(v, ids) for v in obj]
    return obj


def content(path: Path) -> object:
    """What must be equal between two runs (see the module docstring)."""
    if path.name.endswith(".provenance.json") or path.name in ("zarr.json", ".zattrs", ".zmetadata"):
        return _strip_volatile(json.loads(path.read_text()))
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            members = {info.filename: z.read(info) for info in z.infolist()}
        meta = json.loads(members.pop("metadata.json"))
        meta.pop("date_saved")
        config = _renumber_shared_objects(json.loads(members.pop("config.json")), {})
        return meta, config, members  # members: model.weights.h5, byte for byte
    return path.read_bytes()


def result_files(workdir: Path) -> list[Path]:
    return sorted(p.relative_to(workdir) for p in (workdir / "results").rglob("*") if p.is_file())


def is_temporary(rel: Path) -> bool:
    """Inside a hidden temporary of szmass.atomic (``.<name>.<random>.tmp``)."""
    return any(part.startswith(".") and part.endswith(".tmp") for part in rel.parts)


def check_nothing_partial(workdir: Path, reference: Path) -> set[str]:
    """Every file under results/ is complete (as in ``reference``), temporary, in an incomplete-marked output,
    or the checkpoint of a training run with incomplete-marked outputs (kept on purpose: szmass.train resumes
    from it); returns the incomplete-marked outputs."""
    marked = {Path(m) for m in incomplete_outputs(workdir)}
    for rel in result_files(workdir):
        if is_temporary(rel) or any(rel == m or m in rel.parents for m in marked):
            continue
        if "checkpoint" in rel.parts and any(m.parent / "checkpoint" in rel.parents for m in marked):
            continue
        assert (reference / rel).is_file(), f"{rel} survived the kill but is no output of the uninterrupted run"
        assert content(workdir / rel) == content(reference / rel), f"{rel} survived the kill incomplete"
    return {str(m) for m in marked}


def test_killed_twice_then_resumed_equals_the_uninterrupted_run(ci_run, tmp_path):
    t_start = time.monotonic()
    workdir = tmp_path / "killed"
    workdir.mkdir()
    config = ci_config(workdir)
    parts = workdir / "results" / "maps" / "parts" / "synth"

    # 1. during projection: a projection job has written a snapshot's part into its unfinished directory
    proc = start(workdir, config, "projection")
    wait_then_kill(proc, workdir, "projection", lambda: any(parts.glob(".*.tmp/*/*.zarr")))
    marked = check_nothing_partial(workdir, ci_run)
    assert any(m.startswith("results/maps/parts/") for m in marked)
    assert not (workdir / "results" / "maps" / "clean.zarr").exists()
    leftovers = list(parts.glob(".*.tmp"))
    assert leftovers  # the killed job could not clean up; its output directory itself never appeared

    # 2. during training: the run has checkpointed at least one epoch and not yet written its outputs
    models = workdir / TRAIN_RUN
    unlock(workdir, config)
    proc = start(workdir, config, "training")
    wait_then_kill(proc, workdir, "training", lambda: any(p.is_file() for p in (models / "checkpoint").glob("*")))
    marked = check_nothing_partial(workdir, ci_run)
    assert f"{TRAIN_RUN}/model.keras" in marked and not (models / "model.keras").exists()
    assert content(workdir / "results" / "maps" / "clean.zarr" / "zarr.json") == content(
        ci_run / "results" / "maps" / "clean.zarr" / "zarr.json")
    assert not any(p.exists() for p in leftovers)  # removed by the rerun of their projection job

    # 3. rerun to the end: the files of the uninterrupted run, and nothing else
    unlock(workdir, config)
    snakemake(workdir, "--cores", "2", *TARGETS, "--configfile", str(config))
    assert not incomplete_outputs(workdir)
    assert not (models / "checkpoint").exists()
    train_log = (workdir / "logs" / "train" / "clean" / "z1" / "seed0.log")
    if train_log.is_file():  # the training resumed from its checkpoint instead of starting over
        assert "resumed from" in train_log.read_text()
    files = result_files(workdir)
    assert not [f for f in files if is_temporary(f)]
    assert {str(f) for f in files} >= {t for t in TARGETS if not t.endswith(".zarr")}
    for rel in files:
        assert (ci_run / rel).is_file(), f"{rel} is not an output of the uninterrupted run"
        assert content(workdir / rel) == content(ci_run / rel), f"{rel} differs from the uninterrupted run's"
    print(f"\nkill/resume: {len(files)} files equal to the uninterrupted run's; {time.monotonic() - t_start:.0f} s")
