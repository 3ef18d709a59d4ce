"""Config validation and DAG construction for every shipped config."""

import re
from pathlib import Path

import pytest
import yaml
from workflow_utils import REPO, snakemake


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
    planck["psz2_catalogue"] = planck["psz2_catalogue"].replace("/path/to", str(root))
    planck["ymap"] = planck["ymap"].replace("/path/to", str(root))
    planck["masks"] = [m.replace("/path/to", str(root)) for m in planck["masks"]]
    for p in [planck["psz2_catalogue"], planck["ymap"], *planck["masks"]]:
        Path(p).touch()
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "--quiet", "rules", "--configfile", str(path))
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.MULTILINE))
    # one halo-selection and one projection job per region (all its snapshots)
    assert jobs["select_halos"] == jobs["project_maps"] == str(sim["regions"])
    assert "simulate" not in proc.stdout and "synthetic_sky" not in proc.stdout  # real inputs are never generated
    assert "download_psz2" not in proc.stdout


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c.__setitem__("halo_selecton", c.pop("halo_selection")), "halo_selecton"),
        (lambda c: c["sims"]["synth"]["synthetic"].__setitem__("gas_partcle_mass", 1e10), "gas_partcle_mass"),
        (lambda c: c["ymaps"].__setitem__("npix", "big"), "npix"),
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
