"""Planck mocks (clean maps + noise cutouts) and the S/N mass cut per redshift bin (szmass.mocks)."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from szmass import healpix, noise
from szmass.constants import ARCMIN_PER_RAD
from szmass.cosmology import angular_diameter_distance_kpc, make_cosmology, r500_from_m500
from szmass.mapstore import MapConfig, maps_dataset, open_maps, write_part
from szmass.mocks import (
    cap_noise_std,
    compensated_aperture,
    mass_cut,
    mass_cuts,
    mock_snr,
    passes_mass_cut,
    planck_mocks,
    write_planck_mocks,
)
from szmass.planck import centre_distance_arcmin
from workflow_utils import validated_config

COSMO = make_cosmology()
_DEFAULT = validated_config(ymaps={}, instrument={})
DEFAULT_MAPS = MapConfig.from_sections(_DEFAULT["ymaps"], _DEFAULT["instrument"])
"""The map settings of the schema's defaults."""
RESO = 1.7


def toy_clean_store(m500, redshift, *, projections=3, seed=0, npix=96):
    """A clean map store of Gaussian clusters (beam-smoothed, FWHM 10') whose Y500 follows the Planck
    Y-M relation (E^-2/3 D_A^2 Y500 = 10^-0.19 1e-4 Mpc^2 (M500 / 6e14 Msun)^1.79), one halo per mass,
    ``projections`` maps per halo whose widths differ by up to 10 %."""
    rng = np.random.default_rng(seed)
    m = np.repeat(np.asarray(m500, float), projections)
    z = np.repeat(np.asarray(redshift, float), projections)
    n_halo = len(m500)
    r500 = r500_from_m500(COSMO, m, z)
    da_mpc = angular_diameter_distance_kpc(COSMO, z) / 1e3
    theta500 = r500 / 1e3 / da_mpc * ARCMIN_PER_RAD
    y500 = 1e-4 * 10**-0.19 * (m / 6e14) ** 1.79 * COSMO.efunc(z) ** (2 / 3) / da_mpc**2 * ARCMIN_PER_RAD**2
    width = np.hypot(10.0 / 2.3548, theta500 / 3) * rng.uniform(0.9, 1.1, m.size)  # arcmin
    x = (np.arange(npix) - 0.5 * (npix - 1)) * RESO
    r2 = x[None, :, None] ** 2 + x[None, None, :] ** 2
    y = (y500 / (2 * np.pi * width**2))[:, None, None] * np.exp(-r2 / (2 * width[:, None, None] ** 2))
    halo = np.repeat(np.arange(n_halo), projections)
    coords = {
        "sim": np.full(m.size, "toy"), "region": halo + 1, "snapshot": np.zeros(m.size, int), "halo_id": halo,
        "projection": np.tile(np.arange(projections), n_halo), "redshift": z, "M500": m, "R500": r500,
        "M200": 1.4 * m, "R200": r500 * (1.4 * 500 / 200) ** (1 / 3),  # an NFW halo of c500 ~ 2.5
        "Y500_cyl": y500, "Y500_sph": y500 / 1.2, "model": np.full(m.size, "toy"),
    }
    return maps_dataset(y, coords, sim="toy", region=0, snapshot=0, config=replace(DEFAULT_MAPS, npix_out=npix))


def toy_catalogue(n=60, seed=0):
    """PSZ2-like positions away from the galactic plane (|b| > 20 deg)."""
    rng = np.random.default_rng(seed)
    lat = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(20)), 1.0, n))) * rng.choice([-1, 1], n)
    return pd.DataFrame({"NAME": [f"T{i}" for i in range(n)], "GLON": rng.uniform(0, 360, n), "GLAT": lat})


@pytest.fixture(scope="module")
def noise_map():
    return noise.realise(noise.default_noise_model(256), 11)


@pytest.fixture(scope="module")
def clean():
    rng = np.random.default_rng(5)
    return toy_clean_store(10 ** rng.uniform(14.0, 15.3, 24), rng.choice([0.05, 0.15, 0.3, 0.5], 24))


def test_mocks_are_the_clean_maps_plus_the_noise_at_the_recorded_position(clean, noise_map):
    ds = planck_mocks(clean, noise_map, toy_catalogue(), seed=3)
    assert ds["y"].dtype == np.float32 and ds["y"].shape == clean["y"].shape
    assert {"M500", "R500", "M200", "R200"} <= set(ds.coords)  # every mass definition carried, for either target
    for k in clean.coords:
        np.testing.assert_array_equal(ds[k].values, clean[k].values)
    expected = healpix.cutouts(noise_map, ds["noise_glon"].values, ds["noise_glat"].values)
    mock = ds["y"].values.astype(np.float64)
    difference = mock - clean["y"].values.astype(np.float64)
    # exact up to the float32 rounding of the stored sum (half a unit in the last place)
    np.testing.assert_array_less(np.abs(difference - expected), 0.5 * np.spacing(np.abs(ds["y"].values)) + 1e-30)
    assert np.std(expected) > 1e-7  # the noise is really there


def test_mocks_are_seeded_block_independent_and_from_catalogue_positions(clean, noise_map):
    cat = toy_catalogue()
    a = planck_mocks(clean, noise_map, cat, seed=3)
    xr.testing.assert_identical(a, planck_mocks(clean, noise_map, cat, seed=3, block=7))
    b = planck_mocks(clean, noise_map, cat, seed=4)
    assert not np.array_equal(a["noise_glon"].values, b["noise_glon"].values)
    catalogue = set(zip(cat["GLON"], cat["GLAT"]))
    assert set(zip(a["noise_glon"].values, a["noise_glat"].values)) <= catalogue
    assert a.attrs["noise_seed"] == 3


def test_written_store_equals_the_in_memory_mocks(clean, noise_map, tmp_path):
    cat = toy_catalogue()
    write_part(clean, tmp_path / "clean.zarr")
    stored_clean = open_maps(tmp_path / "clean.zarr")  # lazy, as the workflow opens it
    write_planck_mocks(stored_clean, noise_map, cat, tmp_path / "planck.zarr", seed=3, block=10)
    on_disk = open_maps(tmp_path / "planck.zarr").load()
    xr.testing.assert_identical(on_disk, planck_mocks(clean, noise_map, cat, seed=3))


def test_compensated_aperture_of_a_top_hat_and_a_constant():
    r = centre_distance_arcmin(96, RESO)
    theta = 12.0
    top_hat = (r <= theta).astype(float)
    np.testing.assert_allclose(compensated_aperture(np.stack([top_hat, 2.0 + 0 * top_hat]), theta), [1.0, 0.0], atol=1e-15)
    ring = ((r > theta) & (r <= np.sqrt(2) * theta)).astype(float)
    np.testing.assert_allclose(compensated_aperture(ring[None], theta), [-1.0])
    with pytest.raises(ValueError, match="CAP aperture"):
        compensated_aperture(top_hat[None], 60.0)  # the annulus would leave the 163' field


def test_cap_noise_std_of_white_noise_is_analytic():
    rng = np.random.default_rng(0)
    cutouts = rng.normal(0.0, 2.0, size=(4000, 48, 48))
    theta = np.array([5.0, 12.0, 20.0])
    r = centre_distance_arcmin(48, RESO)
    n_in = np.array([(r <= t).sum() for t in theta])
    n_ann = np.array([((r > t) & (r <= np.sqrt(2) * t)).sum() for t in theta])
    expected = 2.0 * np.sqrt(1.0 / n_in + 1.0 / n_ann)  # sum of two independent means
    np.testing.assert_allclose(cap_noise_std(cutouts, theta), expected, rtol=0.05)


def test_snr_of_noise_only_mocks_is_unit_normal(noise_map):
    rng = np.random.default_rng(4)
    clean = toy_clean_store(10 ** rng.uniform(14.0, 15.0, 200), rng.uniform(0.05, 0.6, 200), projections=2)
    empty = clean.copy(data={"y": np.zeros_like(clean["y"].values)})
    snr = mock_snr(planck_mocks(empty, noise_map, toy_catalogue(150), seed=2), noise_map)
    assert snr.std() == pytest.approx(1.0, abs=0.1)  # 400 maps: the std is known to ~4 %
    assert abs(snr.mean()) < 0.2
    signal = mock_snr(planck_mocks(clean, noise_map, toy_catalogue(150), seed=2), noise_map)
    assert np.median(signal - snr) > 1.0  # the clusters add S/N on top of the same noise


def test_mass_cut_of_a_known_power_law():
    m0 = 4e14
    m = np.logspace(14, 15, 2001)
    snr = 4.5 * (m / m0) ** (5 / 3)  # S/N = 4.5 exactly at M0
    assert mass_cut(m, snr, n_mass_bins=20) == pytest.approx(m0, rel=0.01)
    # symmetric scatter about the power law leaves the median, hence the cut, in place
    rng = np.random.default_rng(1)
    noisy = snr + rng.normal(0.0, 1.0, m.size)
    assert mass_cut(m, noisy, n_mass_bins=20) == pytest.approx(m0, rel=0.05)
    assert mass_cut(m, snr + 100.0) == m.min()  # every group passes: nothing to cut
    assert mass_cut(m, snr * 0.0) == np.inf  # none passes
    assert np.isnan(mass_cut(np.array([]), np.array([])))


def test_mass_cuts_rise_with_the_noise_level(noise_map):
    rng = np.random.default_rng(2)
    n = 60
    clean = toy_clean_store(10 ** rng.uniform(14.0, 15.4, n), np.repeat([0.05, 0.15, 0.3, 0.5], n // 4), projections=2)
    cat = toy_catalogue(80)
    tables = [mass_cuts(planck_mocks(clean, k * noise_map, cat, seed=1), k * noise_map) for k in (1.0, 2.0, 4.0)]
    for t in tables:
        assert list(t["bin"]) == [1, 2, 3, 4] and np.all(t["n_maps"] == 30)
        ds_keep = passes_mass_cut(clean["redshift"].values, clean["M500"].values, t)
        assert ds_keep.sum() == t["n_maps_kept"].sum()
    cuts = np.array([t["M500_cut"].to_numpy() for t in tables])
    kept = np.array([t["n_maps_kept"].to_numpy() for t in tables])
    assert np.all(np.diff(cuts, axis=0) >= 0)  # more noise, higher cut, in every bin
    assert np.all(np.diff(kept, axis=0) <= 0)
    assert np.sum(np.diff(cuts, axis=0) > 0) >= 4  # and really higher where the cut is resolved
    # the noise-free signal ranks the bins: nearer clusters are detected down to lower masses
    finite = np.isfinite(cuts[0])
    assert np.all(np.diff(cuts[0][finite]) > 0)
