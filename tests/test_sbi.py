"""KDE posteriors of cluster masses and their calibration (szmass.sbi).

The toy is a bivariate Gaussian population of (log10 M_CNN, log10 M_true). The KDE of a Gaussian sample
with bandwidth factor f tends to the Gaussian of covariance (1 + f^2) Sigma, so the sliced posterior
keeps the analytic conditional mean mu_t + rho s_t / s_p (x - mu_p) and has the conditional std
sqrt(1 + f^2) s_t sqrt(1 - rho^2); a central interval of nominal level L then covers
2 Phi(sqrt(1 + f^2) Phi^-1((1 + L) / 2)) - 1 of the truths, and the PIT of a truth is distributed as
Phi(Z / sqrt(1 + f^2)) with Z standard normal.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import stats

from szmass.sbi import (
    KDEPosterior,
    PITRecalibration,
    crossfit_pit,
    crossfit_recalibrated_pit,
    group_folds,
    interval_coverage,
)

MU_P, MU_T, S_P, S_T, RHO = 14.45, 14.5, 0.25, 0.2, 0.9


def toy(n: int, seed: int, rho: float = RHO) -> tuple[np.ndarray, np.ndarray]:
    """n (prediction, truth) pairs [log10 Msun] from the bivariate Gaussian of the module docs."""
    z1, z2 = np.random.default_rng(seed).standard_normal((2, n))
    return MU_P + S_P * z1, MU_T + S_T * (rho * z1 + np.sqrt(1.0 - rho**2) * z2)


def predicted_coverage(level: float, f: float) -> float:
    return float(2.0 * stats.norm.cdf(np.sqrt(1.0 + f**2) * stats.norm.ppf(0.5 + level / 2.0)) - 1.0)


@pytest.mark.parametrize("f", [0.2, 0.5])
def test_gaussian_posterior_matches_analytic_conditional(f: float) -> None:
    pred, truth = toy(20_000, seed=1)
    post = KDEPosterior(pred, truth, bw_factor=f)
    x = MU_P + S_P * np.array([-1.0, 0.0, 1.0])
    q16, q50, q84 = post.quantiles(x).T
    cond_std = S_T * np.sqrt(1.0 - RHO**2)
    z84 = stats.norm.ppf(0.84)
    # sampling noise: the posterior at x averages over the pairs near x, Kish effective number N_eff;
    # over 30 seeds (N = 20,000, f = 0.2 and 0.5) the median scattered by 1.0-1.36 cond_std / sqrt(N_eff)
    # and the half-width by 0.65-1.0 cond_std / sqrt(N_eff): standard errors 1.4 and 1.0 of those, 4 allowed
    w = np.exp(-0.5 * (x[:, None] - pred[None, :]) ** 2 / (f**2 * pred.var()))
    n_eff = w.sum(axis=1) ** 2 / (w**2).sum(axis=1)
    se_median, se_width = 1.4 * cond_std / np.sqrt(n_eff), cond_std / np.sqrt(n_eff)
    assert np.all(np.abs(q50 - (MU_T + RHO * S_T / S_P * (x - MU_P))) < 4 * se_median)
    half_width = 0.5 * (q84 - q16)
    inflated = z84 * np.sqrt(1.0 + f**2) * cond_std
    assert np.all(np.abs(half_width - inflated) < 4 * se_width)
    if f == 0.5:  # the 12% inflation of f = 0.5 is resolved: the uninflated width is excluded
        assert np.all(half_width - z84 * cond_std > 4 * se_width)


def test_pdf_is_the_sliced_scipy_kde() -> None:
    pred, truth = toy(2_000, seed=2)
    post = KDEPosterior(pred, truth)
    x = np.array([14.0, 14.45, 14.9])
    dens = post.pdf(x)
    assert dens.shape == (3, 2000) and post.grid.size == 2000
    assert np.allclose(np.trapezoid(dens, post.grid, axis=1), 1.0, rtol=0, atol=1e-12)
    for k, xk in enumerate(x):
        ref = post.kde(np.vstack([np.full(post.grid.size, xk), post.grid]))
        ref /= np.trapezoid(ref, post.grid)
        assert np.max(np.abs(dens[k] - ref)) < 2e-3 * ref.max()  # module docs: the deposit errs by ~1e-3 at most
    # a coarse user grid (10 points per posterior width would not resolve it) is served from a fine one
    coarse = np.linspace(13.5, 15.5, 60)
    post_c = KDEPosterior(pred, truth, grid=coarse)
    ref = post_c.kde(np.vstack([np.full(coarse.size, 14.45), coarse]))
    ref /= np.trapezoid(ref, coarse)
    assert np.max(np.abs(post_c.pdf(14.45)[0] - ref)) < 5e-3 * ref.max()


def test_default_grid_and_quantile_consistency(caplog: pytest.LogCaptureFixture) -> None:
    pred, truth = toy(3_000, seed=3)
    post = KDEPosterior(pred, truth)
    pad = 5.0 * np.sqrt(post.kde.covariance[1, 1])
    assert post.grid[0] == pytest.approx(truth.min() - pad) and post.grid[-1] == pytest.approx(truth.max() + pad)
    # quantiles invert the exact CDF, also for an observation whose posterior lies beyond the grid
    x = np.array([14.1, 14.45, 14.8, MU_P + 8 * S_P])
    q = (0.025, 0.16, 0.5, 0.84, 0.975)
    with caplog.at_level(logging.WARNING, logger="szmass.sbi"):
        quant = post.quantiles(x, q=q)
    assert "kernel widths from every training prediction" in caplog.text
    assert np.all(np.diff(quant, axis=1) > 0)
    assert np.allclose(post.cdf_at(np.repeat(x, len(q)), quant.ravel()), np.tile(q, x.size), rtol=0, atol=1e-10)
    assert quant[-1, 2] > truth.max()  # extrapolated along the nearest pairs, not clipped to the grid
    # the PIT is the posterior's CDF: a truth at the median maps to 0.5, far tails to 0 and 1
    assert np.allclose(post.cdf_at(x[:3], quant[:3, 2]), 0.5, atol=1e-10)
    assert np.allclose(post.cdf_at([14.45, 14.45], [12.0, 17.0]), [0.0, 1.0], atol=1e-12)


def test_crossfit_coverage_and_pit_of_a_calibrated_toy() -> None:
    f = 0.2
    pred, truth = toy(20_000, seed=4)
    pit = crossfit_pit(pred, truth, np.arange(pred.size), n_folds=2, seed=7, bw_factor=f)
    cov = interval_coverage(pit)
    assert set(cov) == {"coverage_68", "stderr_68", "coverage_95", "stderr_95"}
    for level, key in ((0.68, "68"), (0.95, "95")):
        c, se = cov[f"coverage_{key}"], cov[f"stderr_{key}"]
        assert se == pytest.approx(np.sqrt(c * (1 - c) / pit.size))
        # (1 + f^2) inflation predicts 0.6895 and 0.9544 for f = 0.2
        assert abs(c - predicted_coverage(level, f)) < 3 * se
    # PIT uniform to the KS test's eye, and consistent with the predicted Phi(Z / sqrt(1 + f^2)) law
    assert stats.kstest(pit, "uniform").pvalue > 1e-3
    k = np.sqrt(1.0 + f**2)
    assert stats.kstest(pit, lambda u: stats.norm.cdf(k * stats.norm.ppf(u))).pvalue > 1e-3


def test_crossfit_coverage_resolves_wide_kernel() -> None:
    """f = 0.5 inflates the posterior by 12%: the 68% interval covers 0.734, far from 0.68."""
    pred, truth = toy(10_000, seed=5)
    pit = crossfit_pit(pred, truth, np.arange(pred.size), n_folds=2, seed=8, bw_factor=0.5)
    cov = interval_coverage(pit, levels=(0.68,))
    assert abs(cov["coverage_68"] - predicted_coverage(0.68, 0.5)) < 3 * cov["stderr_68"]
    assert cov["coverage_68"] - 0.68 > 5 * cov["stderr_68"]


def test_recalibration_levels_of_a_too_narrow_gaussian() -> None:
    """A posterior too narrow by k = 2 has PIT = Phi(2 Z): the recalibrated level of q is Phi(2 Phi^-1(q))
    (class docs), here to the sampling error of 40,000 PITs (quantile std sqrt(q (1 - q) / n) / density)."""
    k, n = 2.0, 40_000
    pit = stats.norm.cdf(k * np.random.default_rng(11).standard_normal(n))
    recal = PITRecalibration.fit(pit)
    q = np.array([0.025, 0.16, 0.5, 0.84, 0.975])
    expected = stats.norm.cdf(k * stats.norm.ppf(q))
    density = stats.norm.pdf(stats.norm.ppf(q)) / (k * stats.norm.pdf(k * stats.norm.ppf(q)))  # of the PIT at its q
    se = np.sqrt(q * (1 - q) / n) / density
    assert np.all(np.abs(recal.levels(q) - expected) < 4 * se)
    # R^-1 and R are inverses; the recalibrated PITs are uniform
    np.testing.assert_allclose(recal.transform(recal.levels(q)), q, rtol=0, atol=1e-12)
    assert stats.kstest(recal.transform(pit), "uniform").pvalue > 0.99  # its own PITs: uniform by construction
    # a PIT of 0 (a truth beyond every kernel) never asks the posterior for an infinite quantile
    assert PITRecalibration.fit([0.0, 0.0, 0.5, 1.0, 1.0]).levels([0.01, 0.99]).tolist() == [1e-6, 1.0 - 1e-6]
    with pytest.raises(ValueError, match=r"needs >= 2 finite PIT values in \[0, 1\], got 3 \(1 invalid\)"):
        PITRecalibration.fit([0.1, 0.2, 1.5])
    with pytest.raises(ValueError, match=r"quantile levels must be in \(0, 1\)"):
        recal.levels([0.0])


def test_crossfit_recalibration_restores_coverage_of_too_narrow_posteriors() -> None:
    """Posteriors fitted on pairs with 0.05 dex prediction errors (population A) applied to pairs with
    0.15 dex errors (B, the held-out clusters): the KDE of A is the Gaussian of covariance (1 + f^2) Sigma_A,
    so the posterior has mean mu + beta (x - mu), beta = s_t^2 / (s_t^2 + s_A^2), and width
    w = sqrt(1 + f^2) s_t s_A / sqrt(s_t^2 + s_A^2), while B's truths scatter about that mean by
    sd^2 = (1 - beta)^2 s_t^2 + beta^2 s_B^2: a central interval of level L covers 2 Phi(w / sd Phi^-1((1 + L)
    / 2)) - 1 (0.27 for 68%, 0.50 for 95%). Recalibrated by cluster folds on B's PITs, the coverage is the
    nominal one within 3 standard errors (binomial of the N maps plus the recalibration map's own, fitted on
    4/5 of them)."""
    f, s_t, s_a, s_b = 0.2, 0.2, 0.05, 0.15
    rng = np.random.default_rng(12)
    t_a = rng.normal(14.5, s_t, 20_000)
    posterior = KDEPosterior(t_a + rng.normal(0.0, s_a, t_a.size), t_a, bw_factor=f)
    n_clusters, n_proj = 2_000, 2
    t_b = np.repeat(rng.normal(14.5, s_t, n_clusters), n_proj)
    groups = np.repeat(np.arange(n_clusters), n_proj)
    pit = posterior.cdf_at(t_b + rng.normal(0.0, s_b, t_b.size), t_b)
    beta = s_t**2 / (s_t**2 + s_a**2)
    width = np.sqrt(1 + f**2) * s_t * s_a / np.sqrt(s_t**2 + s_a**2)
    sd = np.sqrt((1 - beta) ** 2 * s_t**2 + beta**2 * s_b**2)
    before = interval_coverage(pit)
    after = interval_coverage(crossfit_recalibrated_pit(pit, groups, n_folds=5, seed=13))
    for level, key in ((0.68, "68"), (0.95, "95")):
        predicted = 2 * stats.norm.cdf(width / sd * stats.norm.ppf(0.5 + level / 2)) - 1
        assert abs(before[f"coverage_{key}"] - predicted) < 3 * before[f"stderr_{key}"]
        assert level - before[f"coverage_{key}"] > 0.4
        se = np.sqrt(level * (1 - level) * (1 / pit.size + 1 / (0.8 * pit.size)))
        assert abs(after[f"coverage_{key}"] - level) < 3 * se


def test_crossfit_recalibration_holds_out_each_fold() -> None:
    pit = stats.norm.cdf(2.0 * np.random.default_rng(14).standard_normal(300))
    groups = np.repeat(np.arange(100), 3)
    out = crossfit_recalibrated_pit(pit, groups, n_folds=4, seed=2)
    folds = group_folds(groups, 4, seed=2)
    for k in range(4):
        held = folds == k
        np.testing.assert_allclose(out[held], PITRecalibration.fit(pit[~held]).transform(pit[held]), rtol=0, atol=0)
        assert not np.allclose(out[held], PITRecalibration.fit(pit).transform(pit[held]))  # itself excluded
    with pytest.raises(ValueError, match="equal length"):
        crossfit_recalibrated_pit(pit, groups[:-1], n_folds=4, seed=2)


def test_group_folds_keep_clusters_together() -> None:
    groups = np.repeat([f"synth/{i}" for i in range(37)], 27)  # 37 clusters x 27 projections
    folds = group_folds(groups, 3, seed=1)
    for g in np.unique(groups):
        assert np.unique(folds[groups == g]).size == 1
    per_fold = np.bincount(folds) // 27
    assert sorted(per_fold.tolist()) == [12, 12, 13]
    assert np.array_equal(folds, group_folds(groups, 3, seed=1))
    assert not np.array_equal(folds, group_folds(groups, 3, seed=2))


def test_crossfit_uses_the_other_folds_only() -> None:
    pred, truth = toy(600, seed=6)
    groups = np.repeat(np.arange(200), 3)  # 3 maps per cluster
    pit = crossfit_pit(pred, truth, groups, n_folds=3, seed=3)
    folds = group_folds(groups, 3, seed=3)
    for k in range(3):
        held = folds == k
        manual = KDEPosterior(pred[~held], truth[~held]).cdf_at(pred[held], truth[held])
        assert np.allclose(pit[held], manual, rtol=0, atol=1e-14)
    # a posterior fitted on ALL maps (the held-out ones included) would differ
    leaky = KDEPosterior(pred, truth).cdf_at(pred, truth)
    assert np.max(np.abs(leaky - pit)) > 1e-3


def test_interval_coverage_counts() -> None:
    pit = np.array([0.5, 0.16, 0.84, 0.159, 0.9, 0.02, 0.975, 0.5])
    cov = interval_coverage(pit)
    assert cov["coverage_68"] == pytest.approx(4 / 8)  # 0.5, 0.16, 0.84 (edges inside), 0.5
    assert cov["coverage_95"] == pytest.approx(7 / 8)  # all but 0.02
    assert cov["stderr_68"] == pytest.approx(np.sqrt(0.25 / 8))
    empty = interval_coverage(np.array([]))
    assert np.isnan(empty["coverage_68"]) and np.isnan(empty["stderr_95"])


def test_bad_input() -> None:
    pred, truth = toy(100, seed=9)
    with pytest.raises(ValueError, match="non-finite"):
        KDEPosterior(np.where(np.arange(100) == 5, np.nan, pred), truth)
    with pytest.raises(ValueError, match="equal length"):
        KDEPosterior(pred, truth[:-1])
    with pytest.raises(ValueError, match="at least 10"):
        KDEPosterior(pred[:9], truth[:9])
    with pytest.raises(ValueError, match="bw_factor"):
        KDEPosterior(pred, truth, bw_factor=0.0)
    with pytest.raises(ValueError, match="singular|collinear"):
        KDEPosterior(pred, 2.0 * pred + 1.0)
    with pytest.raises(ValueError, match="grid"):
        KDEPosterior(pred, truth, grid=[14.0, 13.0])
    post = KDEPosterior(pred, truth)
    with pytest.raises(ValueError, match="quantile levels"):
        post.quantiles([14.4], q=(0.5, 1.0))
    with pytest.raises(ValueError, match="non-finite"):
        post.pdf([np.inf])
    with pytest.raises(ValueError, match="shape"):
        post.cdf_at([14.4, 14.5], [14.4])
    with pytest.raises(ValueError, match="groups"):
        crossfit_pit(pred, truth, np.arange(99), seed=0)
    with pytest.raises(ValueError, match="folds"):
        crossfit_pit(pred, truth, np.arange(100), n_folds=1, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interval_coverage([0.5, 1.2])


def test_posterior_pairs_round_trip_and_percentiles_per_bin(tmp_path) -> None:
    """posterior.json keeps the pairs and settings; percentiles slice each bin's own KDE, and pool every bin's
    pairs for a bin with fewer than min_test_maps."""
    import pandas as pd

    from szmass.sbi import POSTERIOR_FILE, read_posterior_pairs, write_posterior_pairs

    p1, t1 = toy(300, seed=21)
    p2, t2 = toy(200, seed=22, rho=0.7)
    p3, t3 = toy(12, seed=23)
    tests = pd.DataFrame({"zbin": [1] * 300 + [2] * 200 + [3] * 12, "log10_M_cnn": np.r_[p1, p2, p3],
                          "log10_M_true": np.r_[t1, t2, t3]})  # fmt: skip
    write_posterior_pairs(tmp_path / POSTERIOR_FILE, tests, bw_factor=0.3, min_test_maps=20)
    pairs = read_posterior_pairs(tmp_path / POSTERIOR_FILE)
    assert (pairs.bw_factor, pairs.min_test_maps) == (0.3, 20)
    pd.testing.assert_frame_equal(pairs.pairs, tests, check_dtype=False)
    x = np.array([14.3, 14.6, 14.5, 14.4])
    zb = np.array([1, 2, 3, 1])
    q = pairs.percentiles(zb, x)
    own = {1: KDEPosterior(p1, t1, bw_factor=0.3), 2: KDEPosterior(p2, t2, bw_factor=0.3),
           3: KDEPosterior(tests["log10_M_cnn"], tests["log10_M_true"], bw_factor=0.3)}  # bin 3: pooled
    for i in range(x.size):
        np.testing.assert_allclose(q[i], own[zb[i]].quantiles([x[i]])[0], rtol=0, atol=1e-10)
    assert np.all(np.diff(q, axis=1) > 0)
    (tmp_path / "bad.json").write_text('{"bw_factor": 0.2, "zbin": [1]}')
    with pytest.raises(ValueError, match="bad.json: expected fields bw_factor, min_test_maps"):
        read_posterior_pairs(tmp_path / "bad.json")
    with pytest.raises(ValueError, match=r"column\(s\) \['log10_M_true'\] missing"):
        write_posterior_pairs(tmp_path / "x.json", tests.drop(columns="log10_M_true"), min_test_maps=20)


def test_predict_returns_posterior_percentiles_of_a_run(tmp_path) -> None:
    """`szmass predict` with a run's models and its posterior.json: the posterior's 16th/50th/84th percentiles
    of each map's prediction, from its bin's test pairs."""
    import pandas as pd
    import xarray as xr

    from szmass.cli import main
    from szmass.model import build_cnn, with_standardisation
    from szmass.predict import write_bin_edges
    from szmass.sbi import POSTERIOR_FILE, write_posterior_pairs

    models = tmp_path / "models"
    for b in (1, 2):
        (models / f"z{b}").mkdir(parents=True)
        with_standardisation(build_cnn(seed=b), 1e-6, 2e-6, output_offset=14.5).save(models / f"z{b}" / "best.keras")
    write_bin_edges(models, (0.0, 0.5, 1.0))
    p1, t1 = toy(150, seed=31)
    p2, t2 = toy(150, seed=32, rho=0.6)
    tests = pd.DataFrame({"zbin": [1] * 150 + [2] * 150, "log10_M_cnn": np.r_[p1, p2], "log10_M_true": np.r_[t1, t2]})
    write_posterior_pairs(models / POSTERIOR_FILE, tests, bw_factor=0.2, min_test_maps=20)
    maps = (1e-6 + 2e-6 * np.random.default_rng(5).standard_normal((3, 96, 96))).astype(np.float32)
    store = tmp_path / "maps.zarr"
    xr.Dataset({"y": (("map", "py", "px"), maps)}, coords={"redshift": ("map", [0.2, 0.7, 0.9])}).to_zarr(store)
    out = tmp_path / "masses.csv"
    assert main(["predict", str(store), "--weights", str(models), "--output", str(out), "--allow-out-of-range"]) == 0
    table = pd.read_csv(out)
    for i, (b, (p, t)) in enumerate(((1, (p1, t1)), (2, (p2, t2)), (2, (p2, t2)))):
        expected = KDEPosterior(p, t, bw_factor=0.2).quantiles([table.loc[i, "log10_M500"]])[0]
        got = table.loc[i, ["log10_M500_p16", "log10_M500_p50", "log10_M500_p84"]].to_numpy(float)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_pit_stays_in_the_unit_interval_far_from_the_truths():
    """A truth far above (below) every posterior gives PIT 1 (0) to rounding, never outside [0, 1]
    (the mixture's weights sum to 1 + 7e-16 for some observations)."""
    rng = np.random.default_rng(1)
    t = rng.normal(14.5, 0.2, 200)
    p = t + rng.normal(0.0, 0.05, 200)
    post = KDEPosterior(p, t)
    high, low = post.cdf_at(p, t + 5.0), post.cdf_at(p, t - 5.0)
    assert high.max() <= 1.0 and np.allclose(high, 1.0, rtol=0, atol=1e-12)
    assert low.min() >= 0.0 and np.allclose(low, 0.0, rtol=0, atol=1e-12)
    interval_coverage(post.cdf_at(p, t + 5.0))  # accepted: no value outside [0, 1]
