"""Config validation and DAG construction for every shipped config."""

import re
from pathlib import Path

import healpy as hp
import numpy as np
import pytest
import yaml
from workflow_utils import REPO, snakemake

from szmass.data import PSZ2_CATALOGUE
from szmass.healpix import write_healpix_map


@pytest.mark.parametrize("name", ["config.yaml", "ci.yaml"])
def test_dry_run_builds_the_dag(tmp_path, name):
    proc = snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / name))
    assert "select_halos" in proc.stdout and "simulate" in proc.stdout


def test_real_data_template_builds_the_dag(tmp_path):
    """config/the300_planck.yaml with its path templates pointed at a tree of (empty) stand-in files."""
    cfg = yaml.safe_load((REPO / "config" / "the300_planck.yaml").read_text())
    sim = cfg["sims"]["gadgetx"]
    root = tmp_path / "the300"
    for key in ("snapshot_path", "ahf_path"):
        sim[key] = sim[key].replace("/path/to/The300", str(root))
    for region in range(1, sim["regions"] + 1):
        for snapshot, z in sim["snapshots"].items():
            for key in ("snapshot_path", "ahf_path"):
                p = Path(sim[key].format(region=region, snapshot=snapshot, redshift=z))
                p.parent.mkdir(parents=True, exist_ok=True)
                if key == "snapshot_path" and region % 2 == 0:  # multi-file snapshots: snap_127.0, snap_127.1
                    for k in range(2):
                        p.with_name(f"{p.name}.{k}").touch()
                else:
                    p.touch()
    planck = cfg["planck"]
    planck["ymap"] = planck["ymap"].replace("/path/to", str(root))
    planck["masks"] = [m.replace("/path/to", str(root)) for m in planck["masks"]]
    planck["nside"] = 64  # small stand-in maps: their header is checked at start (HEALPix, NSIDE, mask column)
    for p in [planck["ymap"], *planck["masks"]]:
        write_healpix_map(p, np.ones(hp.nside2npix(64)))
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "--quiet", "rules", "--configfile", str(path))
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.MULTILINE))
    # one halo-selection and one projection job per region (all its snapshots)
    assert jobs["select_halos"] == jobs["project_maps"] == str(sim["regions"])
    assert "simulate" not in proc.stdout and "synthetic_sky" not in proc.stdout  # real inputs are never generated
    assert "download_psz2" not in proc.stdout  # the shipped PSZ2 catalogue


def load_workflow(tmp_path: Path, cfg: dict):
    """The parsed workflow (rules, resources) of ``cfg``, through Snakemake's API (no DAG, no jobs)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, ResourceSettings

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with SnakemakeApi() as api:
        settings = ConfigSettings(configfiles=[path])
        return api.workflow(ResourceSettings(), settings, snakefile=REPO / "Snakefile", workdir=tmp_path)._workflow


def test_psz2_download_only_on_request(tmp_path):
    """psz2_url (with no catalogue configured) adds the download, a local job (compute nodes often have no
    internet) writing resources/planck/; with a catalogue configured, or none, there is no download rule."""
    cfg = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())
    wf = load_workflow(tmp_path, cfg)
    assert "download_psz2" not in {r.name for r in wf.rules}
    assert wf.get_rule("planck_mocks").input.psz2 == str(PSZ2_CATALOGUE)  # the shipped catalogue
    cfg["planck"]["psz2_url"] = "https://example.org/HFI_PCCS_SZ-union_R2.08.fits.gz"
    wf = load_workflow(tmp_path, cfg)
    assert wf._localrules == {"download_psz2"}
    assert list(wf.get_rule("download_psz2").output) == ["resources/planck/HFI_PCCS_SZ-union_R2.08.fits"]
    cfg["planck"]["psz2_catalogue"] = str(PSZ2_CATALOGUE)
    assert "download_psz2" not in {r.name for r in load_workflow(tmp_path, cfg).rules}


def test_memory_and_time_grow_with_the_attempt(tmp_path):
    """A job killed for time or memory is retried with 2x, then 3x (every rule that sets its own resources)."""
    from snakemake.iocontainers import InputFiles, Wildcards

    cfg = yaml.safe_load((REPO / "config" / "study.yaml").read_text())  # the studies' training rules too
    wf = load_workflow(tmp_path, cfg)
    values = {"sim": "gx", "region": "0001", "chunk": "0", "nside": "256", "dataset": "clean", "zbin": "1",
              "seed": "0", "nbins": "2", "arch": "0", "gas_model": "gadget_x", "train_model": "gadget_x",
              "rate": "0.001", "fraction": "0.5"}
    checked = set()
    for rule in wf.rules:
        for key in {"mem_mb", "runtime"} & set(rule.resources.keys()):
            w = Wildcards(fromdict={k: values[k] for k in rule.wildcard_names})
            first, second, third = (rule.expand_resources(w, InputFiles(), attempt=a)[key] for a in (1, 2, 3))
            assert first > 0 and second == 2 * first and third == 3 * first, (rule.name, key)
            checked.add(rule.name)
    assert {"simulate", "select_halos", "project_maps", "clean_maps", "noise_map", "planck_mocks", "synthetic_sky",
            "sky_cutouts", "train", "study_zbins_train", "study_cross_model_train"} <= checked
    # the SLURM profile's defaults and per-rule times (rules that set none) grow the same way
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    limits = [profile["default-resources"]] + [v for v in profile["set-resources"].values() if isinstance(v, dict)]
    assert all("* attempt" in str(d[k]) for d in limits for k in ("mem_mb", "runtime") if k in d)


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c.__setitem__("halo_selecton", c.pop("halo_selection")), "halo_selecton"),
        (lambda c: c["sims"]["synth"]["synthetic"].__setitem__("gas_partcle_mass", 1e10), "gas_partcle_mass"),
        (lambda c: c["ymaps"].__setitem__("hires_npix", "big"), "hires_npix"),
        (lambda c: c["sims"]["synth"]["snapshots"].__setitem__(99, 1.5), "snapshots"),
    ],
)
def test_config_errors_name_the_key(tmp_path, mutate, key):
    cfg = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())
    mutate(cfg)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "--configfile", str(path), check=False)
    assert proc.returncode != 0
    assert key in proc.stdout + proc.stderr
