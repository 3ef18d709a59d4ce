"""The sky's CNN masses and the catalogue with posteriors and units (szmass.catalogue)."""

import keras
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy import units as u
from astropy.table import Table
from scipy import stats

from szmass.catalogue import (
    CALIBRATED,
    build_catalogue,
    crossfit_bin_pit,
    posterior_calibration,
    sky_predictions,
    write_catalogue,
)
from szmass.cosmology import make_cosmology
from szmass.model import with_standardisation
from szmass.predict import MassModels
from szmass.sbi import KDEPosterior, PITRecalibration, group_folds, interval_coverage
from szmass.scaling import y500_from_m500


def mean_y_model(offset: float) -> keras.Model:
    """log10 M = offset + 1e5 x (mean y of the map): a known answer for every map (identity standardisation)."""
    model = keras.Sequential([keras.Input((96, 96, 1)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
    model.layers[-1].set_weights([np.array([[1e5]], dtype=np.float32), np.array([offset], dtype=np.float32)])
    return with_standardisation(model, 0.0, 1.0)


def sky_store(n=6, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 2e-5, (n, 1, 1)) * np.ones((1, 96, 96))
    z = np.linspace(0.05, 0.6, n)
    coords = {"name": ("cluster", [f"PSZ2 G{i:03d}" for i in range(n)]), "glon": ("cluster", rng.uniform(0, 360, n)),
              "glat": ("cluster", rng.uniform(-80, 80, n)), "redshift": ("cluster", z),
              "MSZ": ("cluster", np.r_[0.0, rng.uniform(2e14, 9e14, n - 1)]), "golden": ("cluster", np.arange(n) % 2 == 0),
              "M500": ("cluster", rng.uniform(2e14, 9e14, n))}
    return xr.Dataset({"y": (("cluster", "py", "px"), y.astype(np.float32))}, coords=coords)


def test_sky_predictions_use_the_model_of_each_bin():
    ds = sky_store()
    models = MassModels({1: mean_y_model(14.0), 2: mean_y_model(15.0)}, (0.0, 0.3, 1.0))
    table = sky_predictions(ds, models)
    zbin = np.where(ds["redshift"].values <= 0.3, 1, 2)
    np.testing.assert_array_equal(table["zbin"], zbin)
    expected = np.where(zbin == 1, 14.0, 15.0) + 1e5 * ds["y"].values.mean(axis=(1, 2))
    np.testing.assert_allclose(table["log10_M_cnn"], expected, rtol=0, atol=1e-5)
    assert np.isnan(table["log10_MSZ"][0])  # MSZ = 0: no PSZ2 mass
    np.testing.assert_allclose(table["log10_M_true"], np.log10(ds["M500"].values))
    # constant maps: no fluctuation at all, far below the training std 1 of these models
    assert all(w.startswith("y-map std 0 outside [0.001, 100] x the training std 1 ") for w in table["warning"])


def test_sky_predictions_ensemble_spread():
    """The epistemic spread of each cutout is the std (ddof = 1) of its bin's members' log10 M_CNN: members
    offset by 0 and 0.2 dex give 0.2 / sqrt(2); a single member gives 0."""
    ds = sky_store()
    models = MassModels({1: mean_y_model(14.0), 2: mean_y_model(15.0)}, (0.0, 0.3, 1.0))
    members = {1: [mean_y_model(14.0), mean_y_model(14.2)], 2: [mean_y_model(15.0)]}
    table = sky_predictions(ds, models, members=members)
    bin1 = (table["zbin"] == 1).to_numpy()
    np.testing.assert_allclose(table.loc[bin1, "log10_M_cnn_std"], 0.2 / np.sqrt(2.0), rtol=1e-5)
    np.testing.assert_array_equal(table.loc[~bin1, "log10_M_cnn_std"], 0.0)
    assert table["n_runs"].tolist() == np.where(bin1, 2, 1).tolist()
    cat = build_catalogue(table.assign(log10_MSZ=14.5), gaussian_tests(100, 1, 4).assign(zbin=1).pipe(
        lambda t: pd.concat([t, t.assign(zbin=2)])), make_cosmology(None))  # fmt: skip
    np.testing.assert_array_equal(cat["LOG10_M_CNN_STD"], table["log10_M_cnn_std"])
    np.testing.assert_array_equal(cat["N_RUNS"], table["n_runs"])


def test_sky_predictions_name_a_missing_field():
    with pytest.raises(ValueError, match=r"sky.zarr: .*\['golden'\]"):
        sky_predictions(sky_store().drop_vars("golden"), MassModels({1: mean_y_model(14.0)}, (0.0, 1.0)),
                        source="sky.zarr")


def gaussian_tests(n, zbin, seed):
    rng = np.random.default_rng(seed)
    true = rng.normal(14.5, 0.25, n)
    return pd.DataFrame({"zbin": zbin, "log10_M_true": true, "log10_M_cnn": true + rng.normal(0, 0.08, n)})


def test_catalogue_posteriors_units_and_y500(tmp_path):
    tests = pd.concat([gaussian_tests(3000, 1, 1), gaussian_tests(5, 2, 2)], ignore_index=True)
    sky = pd.DataFrame({"name": ["A", "B", "C"], "glon": [10.0, 20.0, 30.0], "glat": [40.0, -50.0, 60.0],
                        "redshift": [0.1, 0.2, 0.5], "zbin": [1, 1, 2], "log10_MSZ": [14.4, 14.6, 14.8],
                        "log10_M_cnn": [14.5, 14.7, 14.9], "golden": [True, False, True]})
    cosmo = make_cosmology(None)
    cat = build_catalogue(sky, tests, cosmo, min_test_maps=20)
    assert cat["POSTERIOR_POOLED"].tolist() == [False, False, True]  # bin 2 has 5 test maps
    assert np.all(cat["LOG10_M500_P16"] < cat["LOG10_M500_P50"]) and np.all(cat["LOG10_M500_P50"] < cat["LOG10_M500_P84"])
    # Gaussian truth (14.5, 0.25 dex) seen with 0.08 dex errors: the posterior median is the regression of the
    # truth on the prediction, 14.5 + s_t^2 / (s_t^2 + s_e^2) (x - 14.5) (a KDE keeps a Gaussian's conditional
    # mean); 0.02 dex covers the sampling error of 3000 test maps
    slope = 0.25**2 / (0.25**2 + 0.08**2)
    np.testing.assert_allclose(cat["LOG10_M500_P50"], 14.5 + slope * (sky["log10_M_cnn"] - 14.5), atol=0.02)
    np.testing.assert_allclose(cat["M_CNN"], 10 ** cat["LOG10_M500_P50"])
    np.testing.assert_allclose(cat["M_CNN_ERR_UP"], 10 ** cat["LOG10_M500_P84"] - cat["M_CNN"])
    np.testing.assert_allclose(cat["Y500_CNN"], y500_from_m500(cat["M_CNN"].to_numpy(), sky["redshift"].to_numpy(), cosmo))
    write_catalogue(cat, tmp_path / "cat.csv", tmp_path / "cat.fits")
    table = Table.read(tmp_path / "cat.fits")
    assert table["MSZ"].unit == u.Msun and table["M_CNN_ERR_LOW"].unit == u.Msun
    assert table["Y500_CNN"].unit == u.arcmin**2 and table["GLON"].unit == u.deg
    np.testing.assert_allclose(table["M_CNN"].value, cat["M_CNN"], rtol=1e-12)
    assert list(pd.read_csv(tmp_path / "cat.csv")["NAME"]) == ["A", "B", "C"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.csv", "cat.fits"]  # no temporary left


def test_catalogue_recalibrated_intervals_of_too_narrow_posteriors(tmp_path):
    """Held-out PITs Phi(2 Z) say the posteriors are two times too narrow: each recalibrated percentile q is
    the posterior's quantile of level Phi(2 Phi^-1(q)) (to the sampling error of the 40,000 PITs), so the
    68% interval of these near-Gaussian posteriors is twice as wide (3% allowed: the KDE posterior of 3000
    pairs is Gaussian to ~1% within 2 sigma; not in its far tails, where the 95% interval's levels
    Phi(-/+ 3.92) lie); in Msun in the FITS."""
    tests = gaussian_tests(3000, 1, 5)
    sky = pd.DataFrame({"name": ["A", "B"], "glon": [10.0, 20.0], "glat": [40.0, -50.0], "redshift": [0.1, 0.2],
                        "zbin": [1, 1], "log10_MSZ": [14.4, 14.6], "log10_M_cnn": [14.3, 14.7], "golden": [True, False]})
    recal = PITRecalibration.fit(stats.norm.cdf(2.0 * np.random.default_rng(6).standard_normal(40_000)))
    cat = build_catalogue(sky, tests, make_cosmology(None), recalibration=recal)
    posterior = KDEPosterior(tests["log10_M_cnn"], tests["log10_M_true"])
    plain = posterior.quantiles(sky["log10_M_cnn"], q=list(CALIBRATED.values()))
    cal = np.log10(cat[list(CALIBRATED)].to_numpy())
    assert np.all(np.diff(cal, axis=1) > 0)
    q = np.array(list(CALIBRATED.values()))
    k_phi = 2.0 * stats.norm.ppf(q)
    se = np.sqrt(q * (1 - q) / 40_000) * 2.0 * stats.norm.pdf(k_phi) / stats.norm.pdf(stats.norm.ppf(q))
    for i, x in enumerate(sky["log10_M_cnn"]):
        assert np.all(np.abs(posterior.cdf_at(np.full(q.size, x), cal[i]) - stats.norm.cdf(k_phi)) < 4 * se)
    np.testing.assert_allclose(cal[:, 3] - cal[:, 1], 2.0 * (plain[:, 3] - plain[:, 1]), rtol=0.03)
    write_catalogue(cat, tmp_path / "cat.csv", tmp_path / "cat.fits")
    table = Table.read(tmp_path / "cat.fits")
    assert all(table[name].unit == u.Msun for name in CALIBRATED)
    assert "M500_CAL_P16" not in build_catalogue(sky, tests, make_cosmology(None))  # no recalibration: no columns


def test_posterior_calibration_uses_each_bins_posterior():
    """Bin 1's predictions err by 0.03 dex, bin 2's by 0.2 dex: each bin's own KDE (the catalogue's posterior)
    covers like a calibrated one, 2 Phi(sqrt(1 + f^2) Phi^-1((1 + L) / 2)) - 1 = 0.690 and 0.954 for f = 0.2
    (a KDE of both bins pooled would cover far more in bin 1 and far less in bin 2); the recalibrated
    coverage, folds by cluster (2 maps each), stays nominal within 3 binomial errors (of the N maps and of
    the 4/5 that fit each recalibration)."""
    rng = np.random.default_rng(7)
    n = 2000
    truth = rng.normal(14.5, 0.25, 2 * n)
    err = np.r_[np.full(n, 0.03), np.full(n, 0.2)]
    tests = pd.DataFrame({"map": np.arange(2 * n), "zbin": np.repeat([1, 2], n), "log10_M_true": truth,
                          "log10_M_cnn": truth + err * rng.standard_normal(2 * n)})
    groups = np.arange(2 * n) // 2
    table, pits = posterior_calibration(tests, groups, n_folds=5, seed=3)
    assert table["zbin"].tolist() == ["z1", "z2", "all"] and table["n"].tolist() == [n, n, 2 * n]
    np.testing.assert_array_equal(pits["pit"], crossfit_bin_pit(tests, groups, n_folds=5, seed=3))
    for _, row in table.iterrows():
        for level, key in ((0.68, "68"), (0.95, "95")):
            kde = 2 * stats.norm.cdf(np.sqrt(1.04) * stats.norm.ppf(0.5 + level / 2)) - 1
            assert abs(row[f"coverage_{key}"] - kde) < 3 * row[f"stderr_{key}"], (row["zbin"], key)
            se = np.sqrt(level * (1 - level) * (1 / row["n"] + 1 / (0.8 * row["n"])))
            assert abs(row[f"recal_coverage_{key}"] - level) < 3 * se, (row["zbin"], key)
    assert interval_coverage(pits["pit_recalibrated"])["coverage_68"] == table.iloc[-1]["recal_coverage_68"]
    # one fold by hand: bin 2's held-out maps under the KDE of bin 2's other folds only
    held = group_folds(groups, 5, seed=3) == 0
    train = tests[~held & (tests["zbin"] == 2)]
    rows = held & (tests["zbin"] == 2).to_numpy()
    manual = KDEPosterior(train["log10_M_cnn"], train["log10_M_true"]).cdf_at(
        tests.loc[rows, "log10_M_cnn"].to_numpy(), tests.loc[rows, "log10_M_true"].to_numpy())
    np.testing.assert_allclose(pits.loc[rows, "pit"], manual, rtol=0, atol=1e-14)


def test_catalogue_refuses_too_few_test_maps():
    sky = pd.DataFrame({"name": ["A"], "glon": [1.0], "glat": [50.0], "redshift": [0.1], "zbin": [1],
                        "log10_MSZ": [14.5], "log10_M_cnn": [14.5], "golden": [True]})
    with pytest.raises(ValueError, match="fewer than the 20"):
        build_catalogue(sky, gaussian_tests(8, 1, 3), make_cosmology(None))


def test_posterior_calibration_of_a_tiny_test_set():
    """Three clusters of 8 maps (a ci run's test set): 3 folds instead of 5, each fitted on the 16 maps of the
    other two clusters pooled (fewer than min_test_maps = 20), every PIT in [0, 1]."""
    rng = np.random.default_rng(8)
    truth = np.repeat([14.0, 14.4, 14.3], 8)
    tests = pd.DataFrame({"map": np.arange(24), "zbin": np.repeat([1, 2, 3], 8), "log10_M_true": truth,
                          "log10_M_cnn": truth + rng.normal(0.0, 0.1, 24)})
    groups = np.repeat(["a", "b", "c"], 8)
    table, pits = posterior_calibration(tests, groups, n_folds=5, seed=1, min_test_maps=20)
    assert table["n"].tolist() == [8, 8, 8, 24]
    assert pits["pit"].between(0, 1).all() and pits["pit_recalibrated"].between(0, 1).all()
    held = group_folds(groups, 3, seed=1) == 0
    pooled = KDEPosterior(tests.loc[~held, "log10_M_cnn"], tests.loc[~held, "log10_M_true"])
    np.testing.assert_allclose(pits.loc[held, "pit"], pooled.cdf_at(tests.loc[held, "log10_M_cnn"].to_numpy(),
                               tests.loc[held, "log10_M_true"].to_numpy()), rtol=0, atol=1e-14)  # fmt: skip
