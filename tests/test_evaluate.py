"""Bias statistics (szmass.evaluate): Supplementary Tables 1 and 2 and the equal-count curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from astropy.cosmology import FlatLambdaCDM

from szmass.evaluate import (
    PAPER_FIGURE3,
    aperture_y,
    bias_summary,
    bias_table,
    cluster_bootstrap,
    equal_count_bins,
    log_residual_moments,
    moments_table,
    relative_bias,
    ym_experiment,
    ym_experiment_summary,
    ym_map_check,
)
from szmass.scaling import FIGURE3_LINES


def log_masses(m_cnn: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log10 M_CNN, log10 M_ref) such that (M_CNN - M_ref) / M_CNN = b."""
    m_cnn = np.asarray(m_cnn, dtype=float)
    return np.log10(m_cnn), np.log10(m_cnn * (1.0 - np.asarray(b, dtype=float)))


def test_relative_bias_of_known_masses() -> None:
    # M_CNN = 1e15: M_ref = 8e14 -> b = 0.2; 1.1e15 -> -0.1; equal -> 0; M_CNN = 4e14, M_ref = 5e14 -> -0.25
    b = relative_bias(np.log10([1e15, 1e15, 1e15, 4e14]), np.log10([8e14, 1.1e15, 1e15, 5e14]))
    assert np.allclose(b, [0.2, -0.1, 0.0, -0.25], rtol=0, atol=1e-14)
    # pandas Series in, ndarray out
    out = relative_bias(pd.Series([15.0]), pd.Series([15.0 - np.log10(2.0)]))
    assert isinstance(out, np.ndarray) and out[0] == pytest.approx(0.5, abs=1e-14)


def test_relative_bias_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same shape"):
        relative_bias([14.0, 14.1], [14.0])
    with pytest.raises(ValueError, match="non-finite"):
        relative_bias([14.0, np.nan], [14.0, 14.1])


def test_bias_summary_hand_computed() -> None:
    b = np.array([0.1, -0.2, 0.3, 0.0, 0.05])
    cnn, ref = log_masses(np.full(5, 6e14), b)
    s = bias_summary(relative_bias(cnn, ref))
    # sorted: -0.2, 0, 0.05, 0.1, 0.3; linear interpolation at positions 0.16 * 4 = 0.64 and 0.84 * 4 = 3.36
    assert s["n"] == 5
    assert s["median"] == pytest.approx(0.05, abs=1e-13)
    assert s["p16"] == pytest.approx(-0.2 + 0.64 * 0.2, abs=1e-13)
    assert s["p84"] == pytest.approx(0.1 + 0.36 * 0.2, abs=1e-13)
    # mean 0.05; squared deviations sum to 0.13; stderr = sqrt(0.13 / 4) / sqrt(5)
    assert s["stderr"] == pytest.approx(np.sqrt(0.13 / 4.0 / 5.0), rel=1e-12)


def test_bias_summary_edge_cases() -> None:
    empty = bias_summary(np.array([]))
    assert empty["n"] == 0 and all(np.isnan(empty[k]) for k in ("median", "p16", "p84", "stderr"))
    one = bias_summary([0.3])
    assert one["n"] == 1 and one["median"] == one["p16"] == one["p84"] == 0.3 and np.isnan(one["stderr"])
    with pytest.raises(ValueError, match="NaN"):
        bias_summary([0.1, np.nan])


def make_table() -> pd.DataFrame:
    """Two redshift bins; masses on both sides of the 3e14 and 5e14 Msun cuts, known biases."""
    m = np.array([2e14, 2.5e14, 4e14, 6e14, 7e14, 1.5e14, 2.9e14, 3.5e14, 4.5e14])
    b = np.array([0.10, 0.20, -0.05, 0.30, 0.50, -0.10, 0.00, 0.40, 0.05])
    zbin = np.array([1, 1, 1, 1, 1, 2, 2, 2, 2])
    cnn, ref = log_masses(m, b)
    table = pd.DataFrame({"zbin": zbin, "log10_M_cnn": cnn, "log10_M_true": ref, "b": b})
    return table.sample(frac=1.0, random_state=3).set_axis(np.arange(100, 109))  # order and index must not matter


def test_bias_table_rows_and_mass_cuts() -> None:
    table = make_table()
    out = bias_table(table, ref="log10_M_true")
    assert list(out.columns) == ["zbin", "mass_range", "median", "median_lo", "median_hi", "p16", "p84", "stderr", "n",
                                 "n_clusters"]  # fmt: skip
    assert (out["n_clusters"] == out["n"]).all()  # no labels: each row its own cluster
    assert list(out["zbin"]) == ["z1"] * 3 + ["z2"] * 3 + ["all"] * 3
    assert list(out["mass_range"]) == ["all", "M_CNN>5e14", "M_CNN<3e14"] * 3
    cell = out.set_index(["zbin", "mass_range"])
    assert list(out["n"]) == [5, 2, 2, 4, 0, 2, 9, 2, 4]
    # z1, M > 5e14: b = 0.3, 0.5 -> median 0.4, p16 = 0.3 + 0.16 * 0.2, p84 = 0.3 + 0.84 * 0.2
    row = cell.loc[("z1", "M_CNN>5e14")]
    assert row["median"] == pytest.approx(0.4, abs=1e-13)
    assert row["p16"] == pytest.approx(0.332, abs=1e-13) and row["p84"] == pytest.approx(0.468, abs=1e-13)
    assert row["stderr"] == pytest.approx(np.std([0.3, 0.5], ddof=1) / np.sqrt(2), rel=1e-12)
    # z2 has no cluster above 5e14 Msun: NaN statistics, n = 0
    assert np.isnan(cell.loc[("z2", "M_CNN>5e14"), "median"])
    # all bins, M < 3e14: b = 0.1, 0.2, -0.1, 0.0 -> median 0.05
    assert cell.loc[("all", "M_CNN<3e14"), "median"] == pytest.approx(0.05, abs=1e-13)
    assert cell.loc[("all", "all"), "median"] == pytest.approx(np.median(table["b"]), abs=1e-13)


def test_bias_table_options_and_errors() -> None:
    table = make_table()
    only_all = bias_table(table, ref="log10_M_true", zbin=None, high_mass=4.2e14, low_mass=2.2e14)
    assert list(only_all["zbin"]) == ["all"] * 3
    assert list(only_all["mass_range"]) == ["all", "M_CNN>4.2e14", "M_CNN<2.2e14"]
    assert list(only_all["n"]) == [9, 3, 2]
    with pytest.raises(ValueError, match=r"\['log10_MSZ'\]"):
        bias_table(table, ref="log10_MSZ")
    with pytest.raises(ValueError, match=r"\['redshift_bin'\]"):
        bias_table(table, ref="log10_M_true", zbin="redshift_bin")
    table.loc[table.index[0], "zbin"] = np.nan
    with pytest.raises(ValueError, match="zbin"):
        bias_table(table, ref="log10_M_true")


def test_log_residual_moments_gaussian_sample() -> None:
    n, sigma, offset = 200_000, 0.07, -0.01
    rng = np.random.default_rng(11)
    true = rng.uniform(14.0, 15.2, n)
    cnn = true + offset + sigma * rng.standard_normal(n)
    m = log_residual_moments(cnn, true)
    assert m["n"] == n
    # within 4 standard errors of the Gaussian values: sigma / sqrt(n), sigma / sqrt(2n), sqrt(6/n), sqrt(24/n)
    assert abs(m["mean"] - offset) < 4 * sigma / np.sqrt(n)
    assert abs(m["std"] - sigma) < 4 * sigma / np.sqrt(2 * n)
    assert abs(m["skewness"]) < 4 * np.sqrt(6.0 / n)
    assert abs(m["kurtosis"]) < 4 * np.sqrt(24.0 / n)


def test_log_residual_moments_skewed_sample_bias_corrected() -> None:
    rng = np.random.default_rng(5)
    r = rng.lognormal(0.0, 0.6, 40) * 0.05  # strongly right-skewed residuals [dex]
    true = np.full(r.size, 14.5)
    m = log_residual_moments(true + r, true)
    n = r.size
    d = r - r.mean()
    m2, m3, m4 = (np.mean(d**k) for k in (2, 3, 4))
    g1_hand = np.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5  # adjusted Fisher-Pearson G1
    g2_hand = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * (m4 / m2**2 - 3.0) + 6.0)  # bias-corrected excess G2
    assert m["skewness"] == pytest.approx(g1_hand, rel=1e-10)
    assert m["kurtosis"] == pytest.approx(g2_hand, rel=1e-10)
    assert m["skewness"] == pytest.approx(stats.skew(r, bias=False), rel=1e-12)
    assert m["kurtosis"] == pytest.approx(stats.kurtosis(r, fisher=True, bias=False), rel=1e-12)
    assert m["std"] == pytest.approx(np.sqrt(np.sum(d**2) / (n - 1)), rel=1e-12)
    assert m["skewness"] > 1.0  # the sample is visibly skewed, so the comparison is not trivial


def test_log_residual_moments_small_samples() -> None:
    three = log_residual_moments([14.1, 14.2, 14.6], [14.0, 14.0, 14.0])
    assert three["n"] == 3 and three["mean"] == pytest.approx(0.3, abs=1e-12)
    assert np.isfinite(three["skewness"]) and np.isnan(three["kurtosis"])
    empty = log_residual_moments([], [])
    assert empty["n"] == 0 and np.isnan(empty["mean"]) and np.isnan(empty["std"])


def test_moments_table_per_bin() -> None:
    rng = np.random.default_rng(2)
    true = rng.uniform(14.0, 15.0, 60)
    table = pd.DataFrame({"zbin": np.repeat([1, 2, 4], 20), "log10_M_true": true,
                          "log10_M_cnn": true + rng.normal(0.0, [[0.03], [0.06], [0.1]], (3, 20)).ravel()})
    out = moments_table(table, ref="log10_M_true")
    assert list(out.columns) == ["zbin", "mean", "mean_lo", "mean_hi", "std", "std_lo", "std_hi", "skewness",
                                 "kurtosis", "n", "n_clusters"]  # fmt: skip
    assert list(out["zbin"]) == ["z1", "z2", "z4", "all"]
    for label, part in [("z1", table[:20]), ("z2", table[20:40]), ("z4", table[40:]), ("all", table)]:
        row = out.set_index("zbin").loc[label]
        expected = log_residual_moments(part["log10_M_cnn"], part["log10_M_true"])
        assert row["n"] == expected["n"]
        assert np.allclose([row[k] for k in ("mean", "std", "skewness", "kurtosis")],
                           [expected[k] for k in ("mean", "std", "skewness", "kurtosis")], rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="log10_MSZ"):
        moments_table(table, ref="log10_MSZ")


def half_width(interval: tuple[float, float]) -> float:
    return (interval[1] - interval[0]) / 2.0


def test_cluster_bootstrap_known_answer_one_row_per_cluster() -> None:
    # N standard-normal values, one per cluster: the ordinary bootstrap, 68% half-widths ~ 1/sqrt(N) (mean) and
    # sqrt(pi/2)/sqrt(N) = 1.2533/sqrt(N) (median). The bootstrap half-width of a median scatters by ~20% from
    # sample to sample (0.83-1.74 / sqrt(N) over seeds 0-5), so the widths are averaged over 20 samples.
    n = 400
    samples = [np.random.default_rng(seed).standard_normal(n) for seed in range(20)]
    for statistic, expected in (("mean", 1.0), ("median", 1.2533)):
        labels = np.arange(n)[::-1]
        widths = [half_width(cluster_bootstrap(x, labels, statistic, seed=i)) for i, x in enumerate(samples)]
        assert np.mean(widths) == pytest.approx(expected / np.sqrt(n), rel=0.15)
    x = samples[0]
    assert cluster_bootstrap(x, None, "median") == cluster_bootstrap(x, np.arange(n), "median")  # None: one row each
    lo, hi = cluster_bootstrap(x, None, np.nanmean)  # a callable statistic
    assert lo < x.mean() < hi


def test_cluster_bootstrap_resamples_clusters_not_rows() -> None:
    # 60 clusters of 5 identical maps each: with labels the interval of the 60 values alone, without labels one
    # ~sqrt(5) narrower (the 300 rows taken as independent)
    values = np.random.default_rng(4).normal(0.02, 0.1, 60)
    rows, labels = np.repeat(values, 5), np.repeat([f"c{i}" for i in range(60)], 5)
    order = np.random.default_rng(5).permutation(rows.size)  # row order must not matter
    rows, labels = rows[order], labels[order]
    for statistic in ("mean", "median"):
        alone = half_width(cluster_bootstrap(values, None, statistic))
        assert half_width(cluster_bootstrap(rows, labels, statistic)) == pytest.approx(alone, rel=0.15)
        naive = half_width(cluster_bootstrap(rows, None, statistic))
        assert naive < alone / 1.8
    ratio = half_width(cluster_bootstrap(values, None, "mean")) / half_width(cluster_bootstrap(rows, None, "mean"))
    assert 1.8 < ratio < 2.7


def test_cluster_bootstrap_seed_speed_and_edges() -> None:
    import time

    rng = np.random.default_rng(8)
    x, labels = rng.normal(size=400), rng.integers(0, 80, 400)
    start = time.perf_counter()
    first = cluster_bootstrap(x, labels, "median", seed=3)
    assert time.perf_counter() - start < 0.5  # 1000 resamples of 400 rows
    assert cluster_bootstrap(x, labels, "median", seed=3) == first
    assert cluster_bootstrap(x, labels, "median", seed=4) != first
    assert all(np.isnan(cluster_bootstrap(np.array([]), np.array([]), "mean")))
    assert all(np.isnan(cluster_bootstrap([0.1, 0.3], ["a", "a"], "mean")))  # one cluster
    lo, hi = cluster_bootstrap([0.1, 0.3, 0.2], None, "std", n_boot=200)  # std of one value left out
    assert np.isfinite(lo) and np.isfinite(hi) and 0.0 <= lo <= hi
    with pytest.raises(ValueError, match="non-finite"):
        cluster_bootstrap([0.1, np.nan], None, "mean")
    with pytest.raises(ValueError, match="2 cluster labels for 3 values"):
        cluster_bootstrap([0.1, 0.2, 0.3], ["a", "b"], "mean")


def test_tables_bootstrap_intervals_over_clusters() -> None:
    # 45 clusters of 4 lines of sight in two redshift bins, b around +0.02
    rng = np.random.default_rng(21)
    n_cl, n_los = 45, 4
    b_cluster = rng.normal(0.02, 0.1, n_cl)
    b = np.repeat(b_cluster, n_los) + rng.normal(0.0, 0.02, n_cl * n_los)
    m = np.repeat(10 ** rng.uniform(14.5, 14.65, n_cl), n_los)  # 3.2e14-4.5e14 Msun: the mass cuts are empty
    cnn, ref = log_masses(m, b)
    table = pd.DataFrame({"zbin": np.repeat(1 + np.arange(n_cl) % 2, n_los), "log10_M_cnn": cnn,
                          "log10_M_true": ref, "halo": np.repeat([f"h{i}" for i in range(n_cl)], n_los)})
    out = bias_table(table, ref="log10_M_true", clusters="halo").set_index(["zbin", "mass_range"])
    row = out.loc[("all", "all")]
    assert row["n"] == 180 and row["n_clusters"] == 45
    assert row["median_lo"] < row["median"] < row["median_hi"]
    # the interval of the cluster medians' bootstrap, not of 180 independent maps (2x narrower)
    expected = 1.2533 * 0.1 / np.sqrt(n_cl)
    assert half_width((row["median_lo"], row["median_hi"])) == pytest.approx(expected, rel=0.35)
    naive = bias_table(table, ref="log10_M_true").set_index(["zbin", "mass_range"]).loc[("all", "all")]
    assert naive["n_clusters"] == 180 and naive["median_hi"] - naive["median_lo"] < row["median_hi"] - row["median_lo"]
    # empty selection: NaN interval, no cluster
    empty = out.loc[("all", "M_CNN>5e14")]
    assert empty["n"] == 0 and empty["n_clusters"] == 0
    assert np.isnan(empty["median_lo"]) and np.isnan(empty["median_hi"])
    same = bias_table(table, ref="log10_M_true", clusters="halo").set_index(["zbin", "mass_range"])
    pd.testing.assert_frame_equal(same, out)  # same seed, same table
    moments = moments_table(table, ref="log10_M_true", clusters="halo", seed=1).set_index("zbin")
    assert moments.loc["all", "n_clusters"] == 45 and moments.loc["z1", "n_clusters"] == 23
    for k in ("mean", "std"):
        assert moments.loc["all", f"{k}_lo"] < moments.loc["all", k] < moments.loc["all", f"{k}_hi"]
    naive_mean = moments_table(table, ref="log10_M_true", seed=1).set_index("zbin").loc["all", ["mean_lo", "mean_hi"]]
    assert np.ptp(naive_mean) < 0.7 * np.ptp(moments.loc["all", ["mean_lo", "mean_hi"]])  # 4 correlated maps each
    one = moments_table(table[table["halo"] == "h0"], ref="log10_M_true", clusters="halo").set_index("zbin")
    assert one.loc["all", "n_clusters"] == 1 and one.loc["all", ["mean_lo", "mean_hi", "std_lo", "std_hi"]].isna().all()
    with pytest.raises(ValueError, match=r"\['cluster'\] missing"):
        bias_table(table, ref="log10_M_true", clusters="cluster")
    with pytest.raises(ValueError, match="missing cluster label"):
        moments_table(table.assign(halo=table["halo"].where(table.index > 0)), ref="log10_M_true", clusters="halo")


def test_equal_count_bins() -> None:
    # 23 points in 4 bins: sizes 6, 6, 6, 5 (the model selection's binning); y = 10 x, shuffled
    x = np.arange(23, dtype=float)
    perm = np.random.default_rng(0).permutation(23)
    out = equal_count_bins(x[perm], 10.0 * x[perm], 4)
    assert list(out.columns) == ["x_median", "median", "p16", "p84", "n"]
    assert list(out["n"]) == [6, 6, 6, 5]
    assert np.allclose(out["x_median"], [2.5, 8.5, 14.5, 20.0])
    assert np.allclose(out["median"], 10.0 * out["x_median"])
    # first bin y = 0, 10, ..., 50: p16 at position 0.8 -> 8, p84 at position 4.2 -> 42
    assert out.loc[0, "p16"] == pytest.approx(8.0) and out.loc[0, "p84"] == pytest.approx(42.0)
    with pytest.raises(ValueError, match="cannot fill"):
        equal_count_bins(x[:3], x[:3], 4)
    with pytest.raises(ValueError, match="finite"):
        equal_count_bins([1.0, np.nan], [1.0, 2.0], 1)


def hand_m500(y_arcmin2: float, z: float, alpha: float, cosmo: FlatLambdaCDM) -> float:
    """Eq. 4 solved for M500 [Msun] by hand: (M / 6e14)^alpha = E(z)^(-2/3) D_A^2 Y / (1e-4 Mpc^2) / (10^-0.19 h70^(alpha - 2))."""
    y_sr = y_arcmin2 * (np.pi / 180.0 / 60.0) ** 2
    d_a = cosmo.angular_diameter_distance(z).value  # Mpc
    lhs = cosmo.efunc(z) ** (-2.0 / 3.0) * d_a**2 * y_sr / 1e-4
    return 6e14 * (lhs / (10.0**-0.19 * (cosmo.H0.value / 70.0) ** (alpha - 2.0))) ** (1.0 / alpha)


def test_ym_experiment_against_hand_computation() -> None:
    """Figure 3's experiment on three maps: M_SZ of slope 1.63 from Y500_cyl and of slope 1.79 from 1.2 Y500_sph."""
    cosmo = FlatLambdaCDM(H0=67.77, Om0=0.307115)
    maps = pd.DataFrame({"map": [7, 3, 11, 5], "redshift": [0.05, 0.3, 0.8, 0.2],
                         "Y500_cyl": [2.0e-2, 1.5e-3, 4.0e-4, 9e-3], "Y500_sph": [1.6e-2, 1.3e-3, 3.1e-4, 7e-3]})
    tests = pd.DataFrame({"map": [3, 7, 11], "zbin": [3, 1, 4], "log10_M_cnn": [14.6, 14.9, 14.8]})
    exp = ym_experiment(tests, maps, cosmo)
    assert list(exp["line"].unique()) == [line.label for line in FIGURE3_LINES]
    rows = maps.set_index("map").loc[[3, 7, 11]]
    for alpha, y in ((1.63, rows["Y500_cyl"].to_numpy()), (1.79, 1.2 * rows["Y500_sph"].to_numpy())):
        part = exp[exp["alpha"] == alpha]
        m_sz = np.array([hand_m500(yi, zi, alpha, cosmo) for yi, zi in zip(y, rows["redshift"], strict=True)])
        np.testing.assert_allclose(10.0 ** part["log10_M_sz"].to_numpy(), m_sz, rtol=1e-10)
        m_cnn = 10.0 ** tests["log10_M_cnn"].to_numpy()
        np.testing.assert_allclose(part["b"].to_numpy(), (m_cnn - m_sz) / m_cnn, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(part["map"].to_numpy(), [3, 7, 11])
        np.testing.assert_array_equal(part["zbin"].to_numpy(), [3, 1, 4])
    with pytest.raises(ValueError, match="1 test map.* not in the map table, first 4"):
        ym_experiment(tests.assign(map=[3, 7, 4]), maps, cosmo)
    with pytest.raises(ValueError, match=r"map table: column\(s\) \['Y500_sph'\] missing"):
        ym_experiment(tests, maps.drop(columns="Y500_sph"), cosmo)


def test_ym_experiment_summary_paper_values_and_sky_agreement() -> None:
    rng = np.random.default_rng(4)
    cnn = rng.uniform(14.2, 15.2, 400)
    trend = 0.1 * (cnn - 14.2)  # b rises with M_CNN
    exp = pd.concat([pd.DataFrame({"line": "a", "alpha": 1.63, "log10_M_cnn": cnn, "b": 0.04 + rng.normal(0, 0.05, 400)}),
                     pd.DataFrame({"line": "b", "alpha": 1.79, "log10_M_cnn": cnn, "b": trend})])  # fmt: skip
    sky_cnn = rng.uniform(14.2, 15.2, 300)
    b_sky = 0.1 * (sky_cnn - 14.2) + rng.normal(0, 0.02, 300)
    sky = pd.DataFrame({"log10_M_cnn": sky_cnn, "log10_MSZ": sky_cnn + np.log10(1.0 - b_sky)})
    summary = ym_experiment_summary(exp, sky, n_bins=5).set_index("line")
    a, b = summary.loc["a"], summary.loc["b"]
    assert a["n"] == 400 and a["median"] == pytest.approx(np.median(exp.loc[exp["line"] == "a", "b"]), abs=1e-12)
    assert (a["paper_median"], a["paper_plus"], a["paper_minus"]) == tuple(PAPER_FIGURE3[k] for k in ("median", "plus", "minus"))
    assert np.isnan(b["paper_median"])
    # the trend line follows the sky: every sky bar holds it, its rms offset is far below the flat line's
    assert b["sky_bins"] == 5 and b["sky_bins_covered"] == 5 and b["sky_rms_difference"] < 0.01
    assert a["sky_rms_difference"] > 0.02


def test_aperture_y_sums_pixels_inside_the_radius() -> None:
    maps = np.ones((2, 8, 8))
    maps[1] *= 2.0
    # centre (3.5, 3.5): radius 0.8 holds the 4 central pixels (distance 0.707), radius 1.6 also the 8 at 1.58
    np.testing.assert_allclose(aperture_y(maps, [0.8, 1.6], 1.7), [4 * 1.7**2, 2 * 12 * 1.7**2], rtol=1e-14)
    with pytest.raises(ValueError, match="n radii"):
        aperture_y(maps, [1.0], 1.7)


def test_ym_map_check_uses_large_clusters_and_the_maps_own_y() -> None:
    """Maps whose aperture sum inside R500 equals their stored Y500_cyl give the same masses both ways; maps of
    R500 <= 5 pixels are left out."""
    import xarray as xr

    cosmo = FlatLambdaCDM(H0=67.77, Om0=0.307115)
    z = np.array([0.05, 0.05, 0.3])
    r500_kpc = np.array([1200.0, 1000.0, 900.0])
    d_a = cosmo.angular_diameter_distance(z).to_value("kpc")
    r_pix = r500_kpc / d_a * (180 * 60 / np.pi) / 1.7  # ~ 22, 18 and 4 pixels
    assert r_pix[0] > 5 and r_pix[1] > 5 and r_pix[2] < 5
    maps = np.full((3, 96, 96), 1e-6)
    y_cyl = aperture_y(maps, r_pix, 1.7)
    ds = xr.Dataset({"y": (("map", "py", "px"), maps)},
                    coords={"redshift": ("map", z), "R500": ("map", r500_kpc), "Y500_cyl": ("map", y_cyl),
                            "Y500_sph": ("map", y_cyl / 1.2)})  # fmt: skip
    tests = pd.DataFrame({"map": [0, 1, 2], "zbin": [1, 1, 3], "log10_M_cnn": [14.8, 14.6, 14.5]})
    check = ym_map_check(tests, ds, cosmo, pixel_arcmin=1.7)
    assert check["line"].nunique() == 2 and set(check["map"]) == {0, 1}
    high, on_maps = (part for _, part in check.groupby("line", sort=False))
    np.testing.assert_allclose(high["b"].to_numpy(), on_maps["b"].to_numpy(), rtol=0, atol=1e-12)
    ds["y"] = ds["y"] * 2.0  # twice the signal on the maps: larger masses from the maps, b lower
    doubled = ym_map_check(tests, ds, cosmo, pixel_arcmin=1.7)
    high2, on_maps2 = (part for _, part in doubled.groupby("line", sort=False))
    np.testing.assert_allclose(10 ** (on_maps2["log10_M_sz"].to_numpy() - high2["log10_M_sz"].to_numpy()),
                               2 ** (1 / 1.63), rtol=1e-10)  # fmt: skip
    assert ym_map_check(tests.iloc[[2]], ds, cosmo, pixel_arcmin=1.7).empty  # no cluster large enough
