"""End to end: config/ci.yaml through snakemake, then physical checks of each stage's products."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from szmass.cosmology import make_cosmology, rho_crit_msun_kpc3
from workflow_utils import ci_config, snakemake

pytestmark = pytest.mark.workflow
MAP_COORDS = ["sim", "region", "snapshot", "halo_id", "projection", "redshift", "M500", "R500",
              "Y500_cyl", "Y500_sph", "model"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The whole ci.yaml DAG, run once for the module."""
    workdir = tmp_path_factory.mktemp("ci_run")
    config = ci_config(workdir)
    snakemake(workdir, "--cores", "2", "--configfile", str(config))
    return workdir


def test_halo_table_follows_the_contract(run):
    halos = pd.read_csv(run / "results" / "halos" / "synth.csv")
    assert list(halos.columns[:10]) == ["sim", "region", "snapshot", "redshift", "halo_id", "M500", "R500",
                                        "centre_x", "centre_y", "centre_z"]
    assert len(halos) > 0 and set(halos["region"]) <= {1, 2} and set(halos["snapshot"]) <= {117, 124}
    cosmo = make_cosmology()
    h = cosmo.H0.value / 100
    assert (halos["M500"] > 1e14 / h).all()  # the selection cut, converted to Msun
    assert ((halos["redshift"] > 0) & (halos["redshift"] <= 1)).all()
    # M500 is the mass inside R500 at 500 times the critical density
    m_from_r = 4 / 3 * np.pi * 500 * rho_crit_msun_kpc3(cosmo, halos["redshift"].to_numpy()) * halos["R500"] ** 3
    np.testing.assert_allclose(m_from_r, halos["M500"], rtol=1e-6)
    assert (halos["model"] == "gadget_x").all()


def test_clean_maps_follow_the_contract(run):
    halos = pd.read_csv(run / "results" / "halos" / "synth.csv")
    ds = xr.open_dataset(run / "results" / "maps" / "clean.zarr", engine="zarr", consolidated=False)
    assert ds["y"].dims == ("map", "py", "px") and ds["y"].shape[1:] == (96, 96) and ds["y"].dtype == np.float32
    assert set(MAP_COORDS) <= set(ds.coords)
    assert ds.sizes["map"] == 3 * len(halos)  # ci.yaml: 3 lines of sight per halo
    assert np.isfinite(ds["y"].values).all() and (ds["y"].values >= 0).all()
    # Y500 in the cylinder includes the gas in front of and behind the sphere: ~1.2 in THE THREE HUNDRED
    ratio = ds["Y500_cyl"].values / ds["Y500_sph"].values
    assert np.all((ratio > 1.0) & (ratio < 2.0))
    # each halo sits at its map's centre: the central 8 x 8 pixels are far brighter than the border
    y = ds["y"].values
    jj, ii = np.indices(y.shape[1:]) - 47.5
    border = np.hypot(jj, ii) > 44
    centre = y[:, 44:52, 44:52].mean(axis=(1, 2))
    assert np.all(centre > 5 * y[:, border].mean(axis=1))


def test_nothing_to_rerun(run):
    proc = snakemake(run, "-n", "--configfile", str(run / "ci.yaml"))
    assert "Nothing to be done" in proc.stdout + proc.stderr
