"""Tests of szmass.noise: the noise statistics, the MILCA calibration and seeded realisations."""

from __future__ import annotations

from pathlib import Path

import healpy as hp
import numpy as np
import pytest
from astropy.io import fits

from szmass import noise
from szmass.healpix import cutouts

from reference_data import CUTOUT as REAL_CUTOUT  # noqa: E402
TARGET = np.array(noise.MILCA_CORR)


@pytest.mark.skipif(not REAL_CUTOUT.exists(), reason=f"reference cutout {REAL_CUTOUT} not available")
def test_measure_noise_stats_on_the_real_milca_cutout() -> None:
    image = fits.getdata(REAL_CUTOUT)
    stats = noise.measure_noise_stats(image)
    np.testing.assert_allclose(stats["std"], 1.58e-6, rtol=0.01)
    np.testing.assert_allclose(noise.measure_noise_stats(image, r_min_pix=35)["std"], 1.59e-6, rtol=0.01)
    np.testing.assert_array_equal(stats["lags"], noise.MILCA_CORR_LAGS)
    # FACTS' coefficients come from the same cutout with an unrecorded estimator; estimators differ
    # by a few hundredths, the statistical error of one cutout (about 300 independent patches of
    # the ~4 pixel correlation length beyond 25 pixels: 1 / sqrt(300) ~ 0.06).
    np.testing.assert_allclose(stats["corr"], TARGET, atol=0.055)


def test_measure_noise_stats_on_fields_of_known_correlation() -> None:
    rng = np.random.default_rng(11)
    white = rng.standard_normal((300, 301))
    stats = noise.measure_noise_stats(white, r_min_pix=0, lags=(1, 2, 5))
    np.testing.assert_allclose(stats["std"], 1.0, rtol=0.01)
    np.testing.assert_allclose(stats["corr"], 0.0, atol=4 / np.sqrt(2 * 300 * 300))
    # sum of horizontal neighbours: variance 2, correlation 1/2 at lag 1 along rows, 0 along
    # columns and beyond; the estimator pools both directions equally -> 1/4
    smooth = white[:, 1:] + white[:, :-1]
    stats = noise.measure_noise_stats(smooth, r_min_pix=0, lags=(1, 2))
    np.testing.assert_allclose(stats["std"], np.sqrt(2), rtol=0.01)
    np.testing.assert_allclose(stats["corr"], [0.25, 0.0], atol=0.01)
    with pytest.raises(ValueError, match="lags"):
        noise.measure_noise_stats(white, lags=(0,))
    with pytest.raises(ValueError, match="NaN"):
        noise.measure_noise_stats(np.full((96, 96), np.nan))


def test_calibrated_spectrum_predicts_the_milca_correlations() -> None:
    spectrum = noise.milca_spectrum()
    assert 2 < spectrum.fwhm_small_arcmin < 12 < spectrum.fwhm_large_arcmin < 120
    expected = noise.expected_cutout_stats(spectrum.cl(3 * 2048 - 1), 2048)
    np.testing.assert_allclose(expected["corr"], TARGET, rtol=0.2)
    # the cutout's mean removal lowers its std below the pixel std, by a little
    assert 0.95 < expected["std_ratio"] < 1.0


def test_spectrum_is_unit_variance_and_lmax_holds_the_variance() -> None:
    spectrum = noise.NoiseSpectrum(6.0, 20.0, 3.0)
    lmax = spectrum.lmax_for(1e-3)
    cl = spectrum.cl(lmax)
    ell = np.arange(lmax + 1)
    np.testing.assert_allclose(np.sum((2 * ell + 1) * cl) / (4 * np.pi), 1.0, rtol=1e-12)
    full = spectrum.cl(4 * lmax)
    kept = np.sum((2 * ell + 1) * full[: lmax + 1]) / (4 * np.pi)
    assert 1 - 1e-3 <= kept < 1 - 1e-4
    assert cl[0] == cl[1] == 0


@pytest.fixture(scope="module")
def model_2048() -> noise.NoiseModel:
    return noise.default_noise_model(2048)


def test_default_model_cutouts_at_b30_match_the_real_noise(model_2048: noise.NoiseModel) -> None:
    # Nside 2048 (the real map's) is needed for 1.7' pixels; lmax ~3200 (the spectrum keeps
    # 99.9 % of its variance) keeps the realisation at ~10 s.
    hpmap = noise.realise(model_2048, seed=2024)
    rng = np.random.default_rng(5)
    glon = rng.uniform(0, 360, 150)
    glat = rng.choice([-1, 1], 150) * rng.uniform(25, 35, 150)
    stats = [noise.measure_noise_stats(img) for img in cutouts(hpmap, glon, glat)]
    corr = np.mean([s["corr"] for s in stats], axis=0)
    np.testing.assert_allclose(corr, TARGET, rtol=0.2)
    np.testing.assert_allclose(np.median([s["std"] for s in stats]), noise.MILCA_STD, rtol=0.2)
    # and the semi-analytic expectation used for the calibration describes the realisation
    # (mean of 150 cutouts: standard error <= 0.005)
    np.testing.assert_allclose(corr, noise.expected_cutout_stats(model_2048.cl, 2048)["corr"], atol=0.015)


def test_cutout_statistics_at_low_nside_follow_the_prediction() -> None:
    # At Nside 512 (6.9' pixels) neighbouring 1.7' cutout pixels often read one HEALPix pixel:
    # the correlations differ from Nside 2048, as expected_cutout_stats predicts.
    model = noise.default_noise_model(512)
    hpmap = noise.realise(model, seed=3)
    rng = np.random.default_rng(8)
    glon, glat = rng.uniform(0, 360, 120), rng.uniform(-60, 60, 120)
    measured = np.mean([noise.measure_noise_stats(img)["corr"] for img in cutouts(hpmap, glon, glat)], axis=0)
    predicted = noise.expected_cutout_stats(model.cl, 512)["corr"]
    np.testing.assert_allclose(measured, predicted, atol=0.015)
    assert abs(predicted[0] - noise.expected_cutout_stats(noise.milca_spectrum().cl(6143), 2048)["corr"][0]) > 0.03


def test_realisations_depend_only_on_the_seed() -> None:
    model = noise.default_noise_model(64)
    first = noise.realise(model, seed=1)
    assert np.array_equal(first, noise.realise(model, seed=1))
    assert not np.allclose(first, noise.realise(model, seed=2))
    # the std map sets the pixel std: <(n / sigma)^2> = 1 (49k pixels, nearly white at Nside 64)
    np.testing.assert_allclose(np.mean((first / model.std_map) ** 2), 1.0, rtol=0.03)
    with pytest.raises(ValueError, match="seed"):
        noise.realise(model, seed=None)


def test_realise_draws_the_spectrum_in_healpy_alm_layout() -> None:
    # a flat band 20 <= l <= 40 on a constant std map: anafast recovers it, nothing elsewhere
    nside, lmax = 32, 95
    cl = np.zeros(lmax + 1)
    cl[20:41] = 1.0
    model = noise.NoiseModel(cl=cl, std_map=np.ones(hp.nside2npix(nside)), nside=nside)
    measured = np.mean([hp.anafast(noise.realise(model, seed=s), lmax=lmax) for s in range(4)], axis=0)
    ell = np.arange(lmax + 1)
    level = 4 * np.pi / np.sum(2 * ell[20:41] + 1)  # unit pixel variance
    band = measured[20:41] / level
    # cosmic variance of the band mean: sqrt(2 / (4 * sum(2l + 1))) ~ 0.02
    np.testing.assert_allclose(band.mean(), 1.0, atol=0.08)
    assert np.all(np.abs(band - 1) < 4 * np.sqrt(2 / (4 * (2 * ell[20:41] + 1))))
    assert measured[:20].max() < 1e-3 * level and measured[41:].max() < 1e-3 * level


def test_ecliptic_std_map_follows_the_hit_count_model() -> None:
    nside, floor = 128, noise.ECLIPTIC_COS_FLOOR
    std = noise.ecliptic_std_map(nside, 2e-6, noise.MILCA_GLON, noise.MILCA_GLAT)
    to_ecliptic = hp.Rotator(coord=["G", "E"])
    beta = 90.0 - np.degrees(to_ecliptic(*hp.pix2ang(nside, np.arange(hp.nside2npix(nside))))[0])
    beta_ref = to_ecliptic(noise.MILCA_GLON, noise.MILCA_GLAT, lonlat=True)[1]
    shape = lambda b: np.sqrt(np.cos(np.radians(b)) + floor)  # noqa: E731
    np.testing.assert_allclose(std, 2e-6 * shape(beta) / shape(beta_ref), rtol=1e-9)
    # deepest at the ecliptic poles: sqrt(c / (1 + c)) = 0.28 of the ecliptic-plane std
    np.testing.assert_allclose(std.min() / std.max(), np.sqrt(floor / (1 + floor)), rtol=0.03)
    assert np.all(np.abs(beta[std < 1.01 * std.min()]) > 89)


def test_noise_model_from_files(tmp_path: Path) -> None:
    std_path = tmp_path / "std.fits"
    hp.write_map(std_path, np.full(hp.nside2npix(16), 3e-6), dtype=np.float64)
    ell = np.arange(2, 300)
    cl_text = tmp_path / "cl.txt"
    np.savetxt(cl_text, np.column_stack([ell, 1.0 / ell**2]))
    model = noise.noise_model_from_files(std_path, cl_text, nside=32)
    assert model.nside == 32 and model.lmax == 95
    np.testing.assert_allclose(model.std_map, 3e-6)
    np.testing.assert_allclose(model.cl[2:], 1.0 / ell[:94] ** 2)
    assert model.cl[0] == model.cl[1] == 0
    cl_fits = tmp_path / "cl.fits"
    hp.write_cl(cl_fits, np.concatenate([[0.0, 0.0], 1.0 / ell**2]))
    np.testing.assert_allclose(noise.noise_model_from_files(std_path, cl_fits, nside=32).cl, model.cl)
    bad = np.full(hp.nside2npix(16), 3e-6)
    bad[5] = hp.UNSEEN
    hp.write_map(tmp_path / "holes.fits", bad, dtype=np.float64)
    with pytest.raises(ValueError, match=r"holes\.fits.*UNSEEN"):
        noise.noise_model_from_files(tmp_path / "holes.fits", cl_text, nside=32)
    np.savetxt(tmp_path / "gap.txt", np.column_stack([[2, 3, 5], [1.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"gap\.txt.*contiguous"):
        noise.noise_model_from_files(std_path, tmp_path / "gap.txt", nside=32)


def test_noise_model_validates() -> None:
    with pytest.raises(ValueError, match="std_map"):
        noise.NoiseModel(cl=np.ones(10), std_map=np.ones(5), nside=4)
    with pytest.raises(ValueError, match="lmax"):
        noise.NoiseModel(cl=np.ones(100), std_map=np.ones(hp.nside2npix(4)), nside=4)
