"""End to end: config/ci.yaml through snakemake, then physical checks of each stage's products."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from workflow_utils import REPO, pristine_results, snakemake

from szmass.cosmology import make_cosmology, rho_crit_msun_kpc3
from szmass.mapstore import open_maps
from szmass.splits import cluster_identity

pytestmark = pytest.mark.workflow
MAP_COORDS = ["sim", "region", "snapshot", "halo_id", "projection", "redshift", "M500", "R500", "M200", "R200",
              "Y500_cyl", "Y500_sph", "model"]


@pytest.fixture(scope="module")
def run(ci_run):
    """The whole ci.yaml DAG, run once per session (tests/conftest.py)."""
    return ci_run


def test_halo_table_follows_the_contract(run):
    halos = pd.read_csv(run / "results" / "halos" / "synth.csv")
    assert list(halos.columns[:12]) == ["sim", "region", "snapshot", "redshift", "halo_id", "M500", "R500", "M200",
                                        "R200", "centre_x", "centre_y", "centre_z"]
    assert len(halos) > 0 and set(halos["region"]) <= {1, 2, 3} and set(halos["snapshot"]) <= {110, 117, 121, 126}
    cosmo = make_cosmology()
    h = cosmo.H0.value / 100
    assert (halos["M500"] > 5e13 / h).all()  # ci.yaml's selection cut, converted to Msun
    assert ((halos["redshift"] > 0) & (halos["redshift"] <= 1)).all()
    # M500 is the mass inside R500 at 500 times the critical density
    for delta in (500, 200):  # and M200 inside R200 at 200 times, a larger sphere holding more mass
        rho = delta * rho_crit_msun_kpc3(cosmo, halos["redshift"].to_numpy())
        m_from_r = 4 / 3 * np.pi * rho * halos[f"R{delta}"] ** 3
        np.testing.assert_allclose(m_from_r, halos[f"M{delta}"], rtol=1e-6)
    assert (halos["M200"] > halos["M500"]).all() and (halos["R200"] > halos["R500"]).all()
    assert (halos["model"] == "gadget_x").all()


def test_clean_maps_follow_the_contract(run):
    halos = pd.read_csv(run / "results" / "halos" / "synth.csv")
    ds = xr.open_dataset(run / "results" / "maps" / "clean.zarr", engine="zarr", consolidated=False)
    assert ds["y"].dims == ("map", "py", "px") and ds["y"].shape[1:] == (96, 96) and ds["y"].dtype == np.float32
    assert set(MAP_COORDS) <= set(ds.coords)
    assert ds.sizes["map"] == 8 * len(halos)  # ci.yaml: 8 lines of sight per halo
    assert np.isfinite(ds["y"].values).all() and (ds["y"].values >= 0).all()
    # Y500 in the cylinder includes the gas in front of and behind the sphere (~1.2 in THE THREE HUNDRED;
    # much more for a small halo seen through a massive neighbour); the sphere lies inside the cylinder
    ratio = ds["Y500_cyl"].values / ds["Y500_sph"].values
    assert np.all(ratio > 0.98) and 1.05 < np.median(ratio) < 1.6
    # each halo sits at its map's centre: the central 8 x 8 pixels are far brighter than the border
    y = ds["y"].values
    jj, ii = np.indices(y.shape[1:]) - 47.5
    border = np.hypot(jj, ii) > 44
    centre = y[:, 44:52, 44:52].mean(axis=(1, 2))
    assert np.all(centre > 5 * y[:, border].mean(axis=1))


def test_nothing_to_rerun(run):
    proc = snakemake(run, "-n", "--configfile", str(run / "ci.yaml"))
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_planck_mocks_add_noise_to_the_clean_maps(run):
    clean = xr.open_dataset(run / "results" / "maps" / "clean.zarr", engine="zarr", consolidated=False)
    planck = xr.open_dataset(run / "results" / "maps" / "planck.zarr", engine="zarr", consolidated=False)
    np.testing.assert_array_equal(planck["halo_id"].values, clean["halo_id"].values)
    noise = planck["y"].values.astype(float) - clean["y"].values
    # the noise realisation has the Planck-like pixel std (~1e-6) wherever it was cut out
    assert 3e-7 < np.std(noise) < 5e-6
    cuts = pd.read_csv(run / "results" / "tables" / "mass_cuts.csv")
    assert list(cuts["bin"]) == [1, 2, 3, 4]


def test_sky_cutouts_follow_the_contract(run):
    sky = xr.open_dataset(run / "results" / "sky" / "cutouts.zarr", engine="zarr")
    assert sky["y"].dims == ("cluster", "py", "px") and sky.sizes["cluster"] == 1094
    assert {"name", "glon", "glat", "redshift", "MSZ", "golden", "M500"} <= set(sky.variables)
    assert 0.5 < float(sky["golden"].mean()) < 1.0
    truth = pd.read_csv(run / "results" / "sky" / "truth.csv")
    np.testing.assert_allclose(sky["M500"].values, truth["M500"].to_numpy())


def test_training_and_selection(run):
    models = run / "results" / "models"
    for dataset in ("clean", "planck"):
        for zbin in (1, 2, 3, 4):
            runs = [pd.read_csv(models / dataset / f"z{zbin}" / f"seed{s}" / "predictions.csv") for s in (0, 1)]
            # the same maps in every run, the test set fixed across seeds, train/validation redrawn
            assert runs[0]["map"].tolist() == runs[1]["map"].tolist()
            test = [set(r.loc[r["split"] == "test", "map"]) for r in runs]
            assert test[0] == test[1] and len(test[0]) > 0
            history = pd.read_csv(models / dataset / f"z{zbin}" / "seed0" / "history.csv")
            assert list(history["epoch"]) == [0, 1] or list(history["epoch"]) == [1, 2]
            selection = pd.read_csv(models / dataset / f"z{zbin}" / "selection.csv")
            assert len(selection) == 2 and selection["selected"].sum() == 1
            assert (models / dataset / f"z{zbin}" / "best.keras").stat().st_size > 100_000
    assert (run / "results" / "figures" / "supp_fig4_planck.png").stat().st_size > 10_000


def test_predict_with_the_selected_models(run, tmp_path):
    """`szmass predict` on the sky cutouts with the run's selected models: each cluster through its bin's best.keras."""
    import keras

    from szmass.cli import main
    from szmass.zbins import redshift_bins

    out = tmp_path / "masses.csv"
    models = run / "results" / "models" / "clean"
    # the ci networks (2 epochs, clean maps) put part of the noisy sky below log10 M = 13: flagged, exit 3 without the flag
    assert main(["predict", str(run / "results" / "sky" / "cutouts.zarr"), "--weights", str(models),
                 "--output", str(out), "--allow-out-of-range"]) == 0
    masses = pd.read_csv(out)
    sky = xr.open_dataset(run / "results" / "sky" / "cutouts.zarr", engine="zarr")
    assert len(masses) == 1094 and np.isfinite(masses["log10_M500"]).all()
    bins = redshift_bins(sky["redshift"].values)
    for zbin in (1, 4):
        sel = np.flatnonzero(bins == zbin)[:20]
        best = keras.models.load_model(models / f"z{zbin}" / "best.keras")
        direct = best.predict(sky["y"].values[sel][..., None], verbose=0)[:, 0]
        np.testing.assert_allclose(masses["log10_M500"].to_numpy()[sel], direct, rtol=0, atol=1e-4)


def test_stale_reruns(run):
    """Touching one snapshot reruns only what depends on it; a training setting reruns no projection."""
    import os
    import re

    config = str(run / "ci.yaml")
    snap = run / "resources" / "sims" / "synth" / "NewMDCLUSTER_0002" / "snap_121.hdf5"
    os.utime(snap)
    # Snakemake compares checksums instead of times for files below --max-checksum-file-size (1 MB);
    # real snapshots are far larger, so judge this tiny one by its time as well
    dry = snakemake(run, "-n", "--max-checksum-file-size", "0", "--configfile", config)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout, re.MULTILINE))
    assert jobs["select_halos"] == "1" and jobs["project_maps"] == "1" and "simulate" not in jobs
    # ci.yaml: snapshots_per_job 2, so snapshot 121 is in region 2's second chunk (121, 126) of (110, 117, 121, 126)
    outputs = {f for line in re.findall(r"^\s*output: (.*)$", dry.stdout, re.MULTILINE) for f in line.split(", ")}
    assert {f for f in outputs if "/parts/" in f} == {"results/halos/parts/synth/0002_c1.csv",
                                                      "results/maps/parts/synth/0002_c1"}
    assert jobs["clean_maps"] == jobs["halo_table"] == "1"
    snakemake(run, "--touch", "--cores", "1", "--configfile", config)  # mark everything up to date again
    import yaml

    cfg = yaml.safe_load((run / "ci.yaml").read_text())
    cfg["training"]["learning_rate"] = 2e-4
    changed = run / "ci_lr.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", snakemake(run, "-n", "--configfile", str(changed)).stdout, re.MULTILINE))
    assert int(jobs["train"]) == 16 and "project_maps" not in jobs and "simulate" not in jobs
    # another estimator reuses every trained run: the selections and what reads them only
    cfg["training"]["learning_rate"] = yaml.safe_load((run / "ci.yaml").read_text())["training"]["learning_rate"]
    cfg["training"]["estimator"] = "mean"
    changed.write_text(yaml.safe_dump(cfg))
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", snakemake(run, "-n", "--configfile", str(changed)).stdout, re.MULTILINE))
    assert "train" not in jobs and jobs["select_model"] == "8" and jobs["test_predictions"] == "2"
    assert jobs["sky_predictions"] == "1" and jobs["catalogue"] == "1"


def test_full_scale_dag(tmp_path):
    """config/scale.yaml (324 regions x 32 snapshots x 27 lines of sight, 2 x 4 x 100 training runs): the
    job count per rule of `snakemake -n`, sized for a scheduler; the build time is printed, not asserted
    (docs/benchmarks.md: under 20 s on the 2-core development VM)."""
    import re
    import time

    import yaml

    from szmass import layout

    config = REPO / "config" / "scale.yaml"
    t0 = time.perf_counter()
    proc = snakemake(tmp_path, "-n", "--configfile", str(config))
    seconds = time.perf_counter() - t0
    table = proc.stdout[proc.stdout.rindex("Job stats:"):]
    jobs = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}
    print(f"\nscale.yaml: DAG of {jobs['total']} jobs built in {seconds:.1f} s; per rule: {jobs}")
    sim = yaml.safe_load(config.read_text())["sims"]["synth"]
    n_regions, n_snapshots = sim["regions"], len(sim["snapshots"])
    assert (n_regions, n_snapshots) == (324, 32)
    n_chunks = len(layout.snapshot_chunks(sim))
    assert jobs["simulate"] == n_regions  # one job per region writes its 32 snapshots
    assert jobs["select_halos"] == jobs["project_maps"] == n_regions * n_chunks
    assert jobs["halo_table"] == jobs["clean_maps"] == jobs["planck_mocks"] == 1
    # no rule with a job per (region, snapshot), let alone per map
    assert max(n for rule, n in jobs.items() if rule != "total") < n_regions * n_snapshots / 8
    assert jobs["total"] == sum(n for rule, n in jobs.items() if rule != "total")


def test_provenance_of_the_outputs(run):
    """Map stores, tables and sky cutouts record the run's config checksum, code and library versions and rule.

    The checksum is over Snakemake's config, which is what the jobs ran with: the config file plus the
    defaults that schema validation fills in (so the file is validated here before hashing).
    """
    import hashlib
    import json
    import subprocess

    import yaml
    from snakemake.utils import validate
    from workflow_utils import REPO

    import szmass
    from szmass.provenance import read_provenance

    cfg = yaml.safe_load((run / "ci.yaml").read_text())
    validate(cfg, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    expected = hashlib.sha256(json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    outputs = {"results/maps/clean.zarr": "clean_maps", "results/tables/mass_cuts.csv": "mass_cuts",
               "results/sky/cutouts.zarr": "sky_cutouts"}
    for path, rule in outputs.items():
        rec = read_provenance(run / path)
        assert rec["config_sha256"] == expected and rec["rule"] == rule, path
        assert rec["szmass"] == szmass.__version__ and rec["numpy"] == np.__version__ and rec["xarray"] == xr.__version__
        if (REPO / ".git").exists():  # the commit szmass ran from: HEAD, or an ancestor if HEAD moved since
            ancestor = subprocess.run(["git", "-C", str(REPO), "merge-base", "--is-ancestor", rec["git_commit"], "HEAD"],
                                      check=False)
            assert ancestor.returncode == 0 and rec["git_dirty"] in {"true", "false"}, path
        else:  # a source tree outside git (e.g. an unpacked sdist)
            assert rec["git_commit"] == rec["git_dirty"] == "unknown", path
    assert (run / "results/tables/mass_cuts.csv.provenance.json").is_file()
    clean = xr.open_zarr(run / "results/maps/clean.zarr", consolidated=True)  # the consolidated metadata is current
    assert clean.attrs["provenance"] == read_provenance(run / "results/maps/clean.zarr")


def test_products_follow_the_contract(run):
    """Stage 8: the catalogue (CSV and FITS with units), the bias tables, every figure, and the report."""
    from astropy import units as u
    from astropy.table import Table
    from matplotlib.image import imread

    cat = pd.read_csv(run / "results" / "catalogue" / "psz2_cnn_masses.csv")
    sky = xr.open_zarr(run / "results" / "sky" / "cutouts.zarr")
    assert len(cat) == sky.sizes["cluster"] and list(cat["NAME"]) == [str(n) for n in sky["name"].values]
    assert np.all(cat["LOG10_M500_P16"] <= cat["LOG10_M500_P50"]) and np.all(cat["LOG10_M500_P50"] <= cat["LOG10_M500_P84"])
    np.testing.assert_allclose(cat["M_CNN"], 10 ** cat["LOG10_M500_P50"], rtol=1e-5)
    np.testing.assert_allclose(cat["M500_TRUE"], sky["M500"].values, rtol=1e-5)  # the synthetic sky's truth
    fits = Table.read(run / "results" / "catalogue" / "psz2_cnn_masses.fits")
    assert fits["M_CNN"].unit == u.Msun and fits["Y500_CNN"].unit == u.arcmin**2 and len(fits) == len(cat)

    bias = pd.read_csv(run / "results" / "tables" / "supp_table2_bias.csv")
    whole = bias[(bias["zbin"] == "all") & (bias["mass_range"] == "all")].set_index(["sample", "statistic"])
    tests = pd.read_csv(run / "results" / "tables" / "test_predictions_planck.csv")
    assert whole.loc[("planck", "b_t"), "n"] == len(tests)
    b = 1 - 10 ** (tests["log10_M_true"] - tests["log10_M_cnn"])
    assert whole.loc[("planck", "b_t"), "median"] == pytest.approx(np.median(b), rel=1e-5)
    clusters = cluster_identity(open_maps(run / "results" / "maps" / "planck.zarr").isel(map=tests["map"].to_numpy()))
    assert whole.loc[("planck", "b_t"), "n_clusters"] == len(set(clusters)) < len(tests)  # bootstrap over clusters
    assert whole.loc[("golden", "b_P"), "n"] == int(sky["golden"].sum())
    coverage = pd.read_csv(run / "results" / "tables" / "posterior_coverage.csv").set_index("zbin")
    assert 0 <= coverage.loc["all", "coverage_68"] <= coverage.loc["all", "coverage_95"] <= 1
    for name in ["figure1", "figure2", "figure3", "supp_fig1_mass_redshift", "supp_fig2_example_maps", "posterior_examples",
                 "posterior_pit", "saliency_examples", "saliency_profile", "supp_fig4_planck"]:
        image = imread(run / "results" / "figures" / f"{name}.png")
        assert image.ndim == 3 and min(image.shape[:2]) > 200, name

    snakemake(run, "--configfile", str(run / "ci.yaml"), "--report", "results/report.html")
    html = (run / "results" / "report.html").read_text(errors="replace")
    for name in ["figure1.png", "supp_table2_bias.csv", "psz2_cnn_masses.csv", "posterior_pit.png"]:
        assert name in html, name
    # every supplementary figure, the training figures and every figure the run made, each a key of the report's
    # embedded results (JSON keyed by the output path)
    supplementary = ["supp_fig1_mass_redshift", "supp_fig2_example_maps", "supp_fig3_architecture",
                     "supp_fig5_run_errors", "supp_fig6_bias_distributions", "supp_fig7_kde", "supp_fig8_log_ratio",
                     "supp_fig9_saliency_examples", "supp_fig10_saliency_radial"]  # fmt: skip
    per_dataset = [f"{kind}_{dataset}" for kind in ("supp_fig4", "learning_curves", "predicted_vs_true")
                   for dataset in ("clean", "planck")]  # fmt: skip
    made = [p.stem for p in (pristine_results(run) / "figures").glob("*.png")]
    for name in sorted({*supplementary, *per_dataset, *made}):
        assert f'"results/figures/{name}.png"' in html, name
