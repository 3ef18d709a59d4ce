"""config/ci.yaml through `--profile profiles/slurm` on a real one-node SLURM, against the `--cores 2` run.

The SLURM run builds the catalogue and both data sets' test predictions: every simulation, map, training,
selection and sky job of the DAG; the figures, whose rules the local run covers, are left out (each would
cost a submission and a status-poll cycle, about half a minute on this one-node cluster).

The user profile is used as it is; the command line adds only what this test cluster needs (see
`slurm_test_options`): it has no accounting database, its node has this machine's CPUs and memory, and
its status is polled every 2 s rather than every 40 s.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
import yte
from slurm_local import TIMINGS, LocalSlurm
from workflow_utils import REPO, ci_config, pristine_results, snakemake

pytestmark = pytest.mark.workflow
PROFILE = REPO / "profiles" / "slurm"
GPU_FLAG = re.compile(r"--gpus?[= ]|--gres[= ]\S*gpu|--gpus-per")


def slurm_test_options(cluster: LocalSlurm) -> list[str]:
    """Command-line options of the test run on top of the profile (each replaces one profile key)."""
    cpus, mem_mb = cluster.node_cpus_mem()
    return [
        "--slurm-status-command", "squeue",  # accounting is off: no sacct
        "--slurm-no-account",  # no accounts to guess or validate (sacctmgr needs the accounting database)
        "--slurm-init-seconds-before-status-checks", "2",  # poll every 2 s (+10 s per quiet poll), not 40 s
        "--latency-wait", "5",  # one machine: no shared file system lag
        # one submission may use at most the node: its CPUs and memory (the profile's 8 CPUs and 32 GB
        # describe a cluster node); gpu=1 as in the profile
        "--cores", str(cpus), "--resources", "gpu=1", f"mem_mb={mem_mb}",
        "--verbose",  # prints each sbatch call; the job steps log their environment
        "--slurm-keep-successful-logs",  # to check which jobs SLURM gave the GPU
    ]


def slurm_targets() -> list[str]:
    """The catalogue, the mass cuts, the halo tables and every data set's test predictions and redshift bins
    (hence every training run): the products of the DAG but its figures."""
    cfg = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())
    per_dataset = [(f"results/tables/test_predictions_{d}.csv", f"results/models/{d}/redshift_bins.json")
                   for d in cfg["training"]["datasets"]]  # fmt: skip
    return ["catalogue", "mass_cuts", *(f"results/halos/{sim}.csv" for sim in cfg["sims"]),
            *(t for pair in per_dataset for t in pair)]  # fmt: skip


@dataclass
class SlurmRun:
    workdir: Path
    log: str
    wall_s: float

    def submissions(self) -> list[str]:
        """The sbatch command lines of the run, in submission order."""
        return re.findall(r"^sbatch call: (sbatch .*)$", self.log, flags=re.MULTILINE)

    def jobs_run(self) -> int:
        """Jobs that Snakemake ran (the `Finished jobid` lines; a group counts each of its jobs)."""
        return len(re.findall(r"^Finished jobid: ", self.log, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster: LocalSlurm, tmp_path_factory: pytest.TempPathFactory) -> SlurmRun:
    """The ci.yaml DAG up to :data:`SLURM_TARGETS` submitted to the test cluster through profiles/slurm."""
    workdir = tmp_path_factory.mktemp("ci_slurm")
    config = ci_config(workdir)
    start = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("SZMASS_SLURM_")]:  # the profile's defaults
            mp.delenv(name)
        mp.setenv("SZMASS_SLURM_PARTITION", slurm_cluster.partition)  # every job, the GPU ones included
        # the targets first: --configfile takes every argument after it as a config file
        proc = snakemake(workdir, *slurm_targets(), "--profile", str(PROFILE), *slurm_test_options(slurm_cluster),
                         "--configfile", str(config), timeout=3600)
    run = SlurmRun(workdir, proc.stdout + proc.stderr, time.perf_counter() - start)
    TIMINGS["snakemake --profile profiles/slurm, ci.yaml up to the catalogue"] = (
        f"{run.wall_s:.0f} s wall, {run.jobs_run()} jobs in {len(run.submissions())} submissions")
    return run


def load_profile() -> dict:
    """profiles/slurm/config.yaml as Snakemake reads it (YTE templating)."""
    with open(PROFILE / "config.yaml") as f:
        return yte.process_yaml(f, require_use_yte=True)


# ---------------------------------------------------------------------------------------------------------------
# Comparison of the two runs' results/ trees

def keras_content(path: Path) -> dict[str, object]:
    """A .keras archive decoded: architecture, Keras version and every weight array. Two saves of one model
    differ in bytes: zip entry times, metadata.json's ``date_saved``, and config.json's ``shared_object_id``
    (the Python id(), a memory address, of objects shared between layers); the ids are replaced by their
    order of first appearance, so which layers share an object is still compared."""
    content: dict[str, object] = {}
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("metadata.json"))
        meta.pop("date_saved", None)
        content["metadata.json"] = meta
        ids: dict[int, int] = {}
        content["config.json"] = json.loads(
            zf.read("config.json"),
            object_hook=lambda d: {**d, "shared_object_id": ids.setdefault(d["shared_object_id"], len(ids))}
            if "shared_object_id" in d else d)
        with h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as h5:
            h5.visititems(lambda name, obj: content.__setitem__(name, obj[()])
                          if isinstance(obj, h5py.Dataset) else None)
    return content


def same_content(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def result_files(root: Path) -> dict[str, Path]:
    """Every file under a results/ folder, by its path relative to it."""
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def test_outputs_equal_the_local_run(slurm_run: SlurmRun, ci_run: Path) -> None:
    """Every file of the SLURM run is a file of the local run, with the same bytes (zarr chunks and metadata,
    CSV, FITS, PNG, provenance sidecars), and the SLURM run made every model, map, sky and catalogue file; except
    the .keras archives, whose bytes differ between any two saves: their models and weights are compared,
    bit for bit. The jobs ran in other processes, grouped, on SLURM's CPUs: none of it may change a result.
    The local run's results are its copy taken right after it ran, whatever other tests added since."""
    slurm, local = result_files(slurm_run.workdir / "results"), result_files(pristine_results(ci_run))
    assert set(slurm) <= set(local), sorted(set(slurm) - set(local))
    assert {".keras", ".csv", ".png", ".fits", ".json"} <= {Path(name).suffix for name in slurm}
    assert {n for n in local if n.startswith(("halos/", "models/", "maps/", "sky/", "catalogue/"))} <= set(slurm)
    differ = []
    for name, path in ((n, local[n]) for n in slurm):
        if name.endswith(".keras"):
            a, b = keras_content(path), keras_content(slurm[name])
            if a.keys() != b.keys() or not all(same_content(a[k], b[k]) for k in a):
                differ.append(name)
        elif path.read_bytes() != slurm[name].read_bytes():
            differ.append(name)
    assert not differ, f"{len(differ)} of {len(slurm)} result files differ between SLURM and --cores 2: {differ[:20]}"


# ---------------------------------------------------------------------------------------------------------------
# What was submitted

def test_jobs_went_out_in_groups(slurm_run: SlurmRun) -> None:
    """Fewer submissions than jobs: a region's simulate -> select_halos -> project_maps chain and the training
    runs travel in groups of the sizes the profile's group-components give; every other job alone."""
    n_components = load_profile()["group-components"]
    cfg = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())
    training = cfg["training"]
    n_train = len(training["datasets"]) * (len(training["redshift_edges"]) - 1) * training["seeds"]
    n_regions = sum(sim["regions"] for sim in cfg["sims"].values())
    finished = re.findall(r"^Finished jobid: \d+ \(Rule: (\w+)\)", slurm_run.log, flags=re.MULTILINE)
    assert finished.count("train") == n_train and finished.count("simulate") == n_regions

    subs = slurm_run.submissions()
    train_subs = [s for s in subs if "--comment rule_train_train " in s]
    sims_subs = [s for s in subs if "--comment rule_sims_" in s]
    assert len(train_subs) == math.ceil(n_train / n_components["train"])
    assert len(sims_subs) == math.ceil(n_regions / n_components["sims"])
    grouped = sum(finished.count(rule) for rule in ("train", "simulate", "select_halos", "project_maps"))
    local = len(re.findall(r"^localrule \w+:", slurm_run.log, flags=re.MULTILINE))  # `all`: nothing to run
    # every other job alone: submissions = jobs - grouped jobs - local jobs + groups
    assert len(subs) == len(finished) - grouped - local + len(train_subs) + len(sims_subs)


def test_only_training_asks_for_a_gpu(slurm_run: SlurmRun) -> None:
    """`--gpus=1` on every training submission and on no other; SLURM gave the GPU to those jobs only."""
    subs = slurm_run.submissions()
    for s in subs:
        is_train = "--comment rule_train_train" in s
        assert bool(GPU_FLAG.search(s)) == is_train, s
        if is_train:
            assert re.search(r"--gpus=1(\s|$)", s), s
        # every submission states its wall time, memory and CPUs, and the partition of SZMASS_SLURM_PARTITION
        assert re.search(r" -p debug( |$)", s), s
        assert re.search(r" -t \d+ ", s) and re.search(r" --mem \d+ ", s) and re.search(r"--cpus-per-task=\d+", s), s
    # the job steps log their environment (--verbose): SLURM_JOB_GPUS is set in the GPU allocations only
    logs = sorted((slurm_run.workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(logs) == len(subs)
    for log in logs:
        text = log.read_text(errors="replace")
        assert ("'SLURM_JOB_GPUS': '0'" in text) == (log.parent.name == "group_train_train"), log


def test_profile_takes_account_partitions_and_qos_from_the_environment(monkeypatch) -> None:
    """SZMASS_SLURM_* reach every job (account, partition, QoS) and the GPU jobs (GPU partition and QoS);
    unset, the profile names none. (The test cluster has no accounting database to accept an account.)"""
    for name in [n for n in os.environ if n.startswith("SZMASS_SLURM_")]:
        monkeypatch.delenv(name)
    plain = load_profile()
    assert not {"slurm_account", "slurm_partition", "qos"} & set(plain["default-resources"])
    env = {"ACCOUNT": "proj42", "PARTITION": "compute", "GPU_PARTITION": "gpu", "QOS": "normal", "GPU_QOS": "high"}
    for key, value in env.items():
        monkeypatch.setenv(f"SZMASS_SLURM_{key}", value)
    profile = load_profile()
    defaults = profile["default-resources"]
    assert (defaults["slurm_account"], defaults["slurm_partition"], defaults["qos"]) == ("'proj42'", "'compute'",
                                                                                      "'normal'")
    for rule in ("train", "study_zbins_train", "study_hyperparameters_train", "study_learning_rates_train",
                 "study_train_size_train", "study_cross_model_train"):
        assert profile["set-resources"][rule] == {"gpu": 1, "slurm_partition": "'gpu'", "qos": "'high'"}


RETRY_SNAKEFILE = """
rule all:
    input: "retried.txt"

rule retried:
    output: "retried.txt"
    shell: "test {resources.mem_mb} -ge 8000 && echo {resources.mem_mb} {resources.runtime} > {output}"
"""


def test_a_failed_job_is_resubmitted_with_more_time_and_memory(slurm_cluster: LocalSlurm, tmp_path) -> None:
    """profiles/slurm on the test cluster: a job that needs 8 GB fails with the profile's first 4 GB and is
    resubmitted once, with 2x its memory and wall time, and then succeeds."""
    (tmp_path / "Snakefile").write_text(RETRY_SNAKEFILE)
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(tmp_path / "Snakefile"),
           "--directory", str(tmp_path), "--profile", str(PROFILE), *slurm_test_options(slurm_cluster)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    subs = re.findall(r"^sbatch call: (sbatch .*)$", log, flags=re.MULTILINE)
    assert len(subs) == 2, subs
    assert re.search(r" -t 30 .*--mem 4000 ", subs[0]) and re.search(r" -t 60 .*--mem 8000 ", subs[1]), subs
    assert (tmp_path / "retried.txt").read_text().split() == ["8000", "60"]
