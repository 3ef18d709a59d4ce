"""Data of the supplementary figures (szmass.supplementary) and their drawing (szmass.supp_plots)."""

from __future__ import annotations

import io

import keras
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats

from szmass.architecture import PAPER_ARCHITECTURE, Architecture
from szmass.saliency import saliency_by_bin
from szmass.sbi import KDEPosterior
from szmass.supp_plots import (
    architecture_diagram,
    bias_distributions,
    example_grid,
    kde_figure,
    log_ratio_distributions,
    mass_redshift_marginals,
    radial_distribution_figure,
    run_error_distributions,
    saliency_examples,
)
from szmass.supplementary import (
    bias_samples,
    centroid_offset,
    distribution_summary,
    has_saliency,
    kde_density,
    layer_table,
    nearest_clusters,
    peak_radius,
    pick_example_maps,
    pick_saliency_examples,
    psz2_log10_m500,
    radial_distribution,
    run_errors,
    unit_sum,
    worst_run,
)


def render(fig: Figure) -> None:
    fig.savefig(io.BytesIO(), format="png", dpi=30)


def gids(fig: Figure) -> set[str]:
    return {a.get_gid() for ax in fig.axes for a in ax.get_children() if a.get_gid()} | {
        p.get_gid() for ax in fig.axes for p in ax.patches if p.get_gid()}


# -- Supplementary Figures 1 and 2 ------------------------------------------------------------------


def test_psz2_masses_are_divided_by_one_minus_b():
    np.testing.assert_allclose(10 ** psz2_log10_m500([14.0, 15.0], 0.8), [1e14 / 0.8, 1e15 / 0.8], rtol=1e-12)
    with pytest.raises(ValueError, match=r"hydrostatic_bias \(1 - b\) must lie in \(0, 1\], got 1.2"):
        psz2_log10_m500([14.0], 1.2)


def test_example_maps_are_two_massive_low_z_halos_and_one_near_1e15_at_z_half():
    table = pd.DataFrame({
        "redshift": [0.05, 0.05, 0.08, 0.03, 0.5, 0.45, 0.52, 0.05],  # d, e and f near z = 0.5
        "log10_M": [14.9, 14.9, 14.7, 14.2, 14.5, 15.02, 15.3, 14.8],
        "halo": ["a", "a", "b", "c", "d", "e", "f", "g"],  # rows 0 and 1: two projections of one halo
    })
    # a (14.9), then g (14.8; the second projection of a is skipped); d sits at the redshift nearest 0.5
    assert pick_example_maps(table) == [0, 7, 4]
    # at z = 0.45 (the nearest to 0.4), e is the only one
    assert pick_example_maps(table, target_z=0.4) == [0, 7, 5]
    with pytest.raises(ValueError, match=r"pick_example_maps: 1 distinct halo\(s\) at z < 0.04, need 2"):
        pick_example_maps(table, low_z=0.04)


def test_nearest_clusters_in_mass_and_redshift():
    idx = nearest_clusters([0.05, 0.5], [14.5, 15.0], [0.06, 0.3, 0.52], [14.4, 15.0, 14.95])
    np.testing.assert_array_equal(idx, [0, 2])


def test_figures_1_and_2_draw_their_samples():
    rng = np.random.default_rng(1)
    samples = {"mocks": pd.DataFrame({"redshift": rng.uniform(0, 1, 50), "log10_M": rng.normal(14.5, 0.2, 50)}),
               "PSZ2": pd.DataFrame({"redshift": rng.uniform(0, 0.6, 30), "log10_M": rng.normal(14.7, 0.2, 30)})}
    fig = mass_redshift_marginals(samples, edges=(0.0, 0.1, 1.0))
    render(fig)
    assert {"sample:mocks", "zhist:PSZ2", "mhist:mocks"} <= gids(fig)
    rows = [{"clean": rng.random((8, 8)), "planck": rng.random((8, 8)), "sky": rng.random((8, 8))} for _ in range(3)]
    fig = example_grid(rows, [{"clean": "c"}] * 3)
    render(fig)
    assert len(fig.axes) == 9 + 9  # nine panels, nine colour bars
    with pytest.raises(ValueError, match=r"example_grid: every row needs the columns \['clean', 'planck', 'sky'\]"):
        example_grid([rows[0], {"clean": rows[0]["clean"]}], [{}, {}])


# -- Supplementary Figure 3 -------------------------------------------------------------------------


def test_layer_table_of_the_paper_network():
    layers = layer_table(PAPER_ARCHITECTURE)
    assert layers["parameters"].sum() == PAPER_ARCHITECTURE.n_parameters() == 58_437
    shapes = dict(zip(layers["layer"], layers["output_shape"], strict=True))
    assert shapes["conv1"] == (94, 94, 16) and shapes["pool1"] == (47, 47, 16)
    assert shapes["pool3"] == (10, 10, 64) and shapes["dense3"] == (20,) and shapes["log10_mass"] == (1,)
    fig = architecture_diagram(layers, title=PAPER_ARCHITECTURE.name)
    render(fig)
    assert "58,437" in fig.axes[0].get_title()


@pytest.mark.parametrize("pooling", ["global_average", "flatten", "weighted"])
def test_layer_table_matches_the_keras_model(pooling: str):
    from szmass.model import build_cnn

    arch = Architecture(conv_layers=4, dense_layers=1, kernel_size=2, filters=8, dropout=0.2, pooling=pooling)
    model = build_cnn(architecture=arch)
    layers = layer_table(arch).iloc[1:]  # the input is no Keras layer of a Sequential model
    assert list(layers["layer"]) == [layer.name for layer in model.layers]
    for row, layer in zip(layers.itertuples(), model.layers, strict=True):
        assert row.output_shape == tuple(layer.output.shape[1:]), row.layer
        assert row.parameters == layer.count_params(), row.layer


# -- Supplementary Figure 5 ------------------------------------------------------------------------


def test_worst_run_is_the_furthest_from_passing():
    selection = pd.DataFrame({"max_abs_mean": [0.02, 0.09, 0.09, 0.04], "sum_std": [0.5, 0.3, 0.4, 0.9]})
    assert worst_run(selection) == 2  # ties in max |mean| broken by the larger sum of std


def test_run_errors_flag_selected_and_worst(tmp_path):
    dirs = []
    for run, offset in enumerate([0.0, 0.1, -0.02]):
        d = tmp_path / f"seed{run}"
        d.mkdir()
        true = np.linspace(14.0, 15.0, 6)
        pd.DataFrame({"map": np.arange(6), "split": ["val"] * 4 + ["test"] * 2, "redshift": 0.15, "log10_M_true": true,
                      "log10_M_cnn": true + offset}).to_csv(d / "predictions.csv", index=False)
        dirs.append(str(d))
    selection = pd.DataFrame({"run_dir": dirs, "max_abs_mean": [0.0, 0.2, 0.05], "sum_std": [0.0, 0.0, 0.0],
                              "selected": [True, False, False]})
    errors = run_errors({1: selection})
    assert len(errors) == 12  # four validation maps of three runs
    assert set(errors.loc[errors["worst"], "run"]) == {1} and set(errors.loc[errors["selected"], "run"]) == {0}
    np.testing.assert_allclose(errors.loc[errors["run"] == 1, "b_t"], 1 - 10**-0.1, rtol=1e-12)
    fig = run_error_distributions(errors)
    render(fig)
    assert {"run:1:0", "selected:1", "worst:1"} <= gids(fig)


# -- Supplementary Figures 6, 7 and 8 --------------------------------------------------------------


def test_bias_samples_per_bin_and_above_the_mass_cut():
    table = pd.DataFrame({"zbin": [1, 1, 1, 2], "log10_M_cnn": [14.5, 14.8, 15.0, 14.9],
                          "log10_M_true": [14.5, 14.7, np.nan, 14.9]})
    samples = bias_samples(table, "log10_M_true", m_cut=5e14)
    np.testing.assert_allclose(samples[(1, "all")], [0.0, 1 - 10**-0.1], atol=1e-15)
    np.testing.assert_allclose(samples[(1, "M_CNN > 5e+14")], [1 - 10**-0.1])  # 10**14.8 > 5e14 > 10**14.5
    assert samples[(2, "M_CNN > 5e+14")].size == 1
    fig = bias_distributions({"clean": samples}, {"clean": "$b_t$"})
    render(fig)
    assert "clean:1:all" in gids(fig)
    with pytest.raises(ValueError, match=r"bias_samples: column\(s\) \['log10_MSZ'\] missing"):
        bias_samples(table, "log10_MSZ")


def test_kde_density_is_scipys_kde_and_integrates_to_one():
    rng = np.random.default_rng(3)
    t = rng.normal(14.5, 0.3, 300)
    p = t + rng.normal(0.0, 0.1, 300)
    post = KDEPosterior(p, t)
    x = np.linspace(12.5, 16.5, 401)
    y = np.linspace(12.5, 16.5, 391)
    density = kde_density(post, x, y)
    assert density.shape == (391, 401)
    np.testing.assert_allclose(density[200, 150], post.kde([[x[150]], [y[200]]])[0], rtol=1e-12)
    total = np.trapezoid(np.trapezoid(density, x, axis=1), y)
    assert total == pytest.approx(1.0, abs=1e-4)
    fig = kde_figure(x, y, density, pd.DataFrame({"log10_M_cnn": p, "log10_M_true": t}), x0=14.5,
                     slice_grid=post.grid, slice_pdf=post.pdf(14.5)[0])
    render(fig)
    assert {"density", "slice", "posterior"} <= gids(fig)


def test_log_ratio_panels_give_scipys_skewness_and_kurtosis():
    rng = np.random.default_rng(5)
    r = rng.gamma(2.0, 0.05, 400) - 0.1  # a skewed sample of log10 M_CNN / M_true
    table = pd.DataFrame({"zbin": 1, "log10_M_true": 14.5, "log10_M_cnn": 14.5 + r})
    fig = log_ratio_distributions({"planck": table})
    text = next(a for a in fig.axes[0].texts if a.get_gid() == "moments:planck:1").get_text()
    lines = dict(line.split(" ", 1) for line in text.splitlines())
    assert float(lines["skew"]) == pytest.approx(stats.skew(r, bias=False), abs=0.005)
    assert float(lines["kurt"]) == pytest.approx(stats.kurtosis(r, fisher=True, bias=False), abs=0.005)
    assert stats.skew(r, bias=False) > 1.0  # the sample is skewed: the check is not 0 = 0


# -- Supplementary Figures 9 and 10 ----------------------------------------------------------------


def test_centroid_offset_of_a_shifted_blob():
    j, i = np.indices((64, 64)) - 31.5
    blob = np.exp(-((i - 3.0) ** 2 + j**2) / (2 * 1.0**2))[None]
    assert centroid_offset(blob, 10.0)[0] == pytest.approx(0.3, rel=1e-6)
    centred = np.exp(-(i**2 + j**2) / 2.0)[None]
    assert centroid_offset(centred, 10.0)[0] == pytest.approx(0.0, abs=1e-12)
    # negative noise pixels carry no weight: a negative dip 8 pixels away hardly moves the centroid (with
    # signed weights it would move to 1.1 R500)
    dipped = blob - 0.5 * np.exp(-((i + 5.0) ** 2 + j**2) / 2.0)[None]
    assert centroid_offset(dipped, 10.0)[0] == pytest.approx(0.3, abs=1e-3)


def test_saliency_examples_pick_good_bad_and_a_merger():
    true = np.full(10, 14.5)
    resid = np.array([0.01, -0.30, 0.02, 0.25, -0.005, 0.003, 0.40, -0.20, 0.10, 0.0])
    offset = np.array([0.0, 0.1, 0.9, 0.2, 0.0, 0.0, 0.3, 0.1, 0.5, 0.0])
    picks = pick_saliency_examples(true + resid, true, offset)
    assert picks["good"] == [9, 5, 4, 0]
    assert picks["merger"] == [2]  # the most disturbed map outside the good ones
    assert picks["bad"] == [6, 1, 3]
    with pytest.raises(ValueError, match="pick_saliency_examples: 10 distinct maps or groups cannot give 8 good"):
        pick_saliency_examples(true + resid, true, offset, n_good=8)
    # maps 9 and 5, 6 and 8 are projections of one cluster each: one example per cluster
    groups = np.array(["x", "b", "c", "d", "e", "a", "f", "g", "f", "a"])
    picks = pick_saliency_examples(true + resid, true, offset, groups=groups)
    assert picks == {"good": [9, 4, 0, 2], "merger": [8], "bad": [1, 3, 7]}


def test_unit_sum_maps_sum_to_one():
    rng = np.random.default_rng(7)
    maps = rng.random((5, 24, 24)) * 10.0 ** rng.uniform(-8, 8, 5)[:, None, None]
    np.testing.assert_allclose(unit_sum(maps).sum(axis=(1, 2)), 1.0, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="unit_sum: map 1 is zero everywhere"):
        unit_sum(np.stack([maps[0], np.zeros((24, 24))]))


def test_a_flat_network_has_no_saliency_and_is_flagged():
    """A network whose output does not depend on the map (zero weights: one that never learnt) gives zero saliency,
    which has_saliency flags (unit_sum would refuse it); a network that reads the map does not."""
    maps = np.random.default_rng(3).random((4, 12, 12)).astype(np.float32)
    flat = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(), keras.layers.Dense(1, kernel_initializer="zeros")])
    reads = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(), keras.layers.Dense(1, kernel_initializer="ones")])
    zbins = np.array([1, 1, 2, 2])
    assert has_saliency(saliency_by_bin([flat, reads], maps, zbins)).tolist() == [False, False, True, True]


def test_radial_distribution_of_a_ring_peaks_at_its_radius():
    n = 96
    j, i = np.indices((n, n)) - (n / 2 - 0.5)
    r500 = 20.0
    ring = np.exp(-((np.hypot(i, j) / r500 - 0.9) ** 2) / (2 * 0.03**2))
    values = radial_distribution(unit_sum(ring[None]), r500)
    summary = distribution_summary(values)
    assert peak_radius(summary) == (pytest.approx(0.8), pytest.approx(1.0))
    # a density per unit r / R500: times the widths it sums to the whole map, the ring being inside 2.4 R500
    widths = np.diff(summary[["r_lo", "r_hi"]].to_numpy(), axis=1).ravel()
    inside = np.isfinite(values[0])
    assert (values[0, inside] * widths[inside]).sum() == pytest.approx(1.0, abs=1e-9)
    assert not inside[-1]  # 3 R500 = 60 pixels reaches beyond the 48-pixel half-width
    # R500 of 2 pixels: no pixel centre within 0.2 R500 = 0.4 pixels of the centre (the nearest four are at 0.71)
    small = radial_distribution(unit_sum(ring[None]), 2.0)[0]
    assert np.isnan(small[0]) and np.isfinite(small[1])


def test_uniform_saliency_grows_with_radius():
    values = radial_distribution(unit_sum(np.ones((1, 96, 96))), 20.0)
    finite = values[0][np.isfinite(values[0])]
    assert np.all(np.diff(finite) > 0)  # annulus areas grow as r: a flat map is no peak at small r


def test_saliency_figures_draw_examples_and_profiles():
    rng = np.random.default_rng(9)
    maps = rng.random((8, 16, 16))
    fig = saliency_examples(maps, unit_sum(maps), [f"map {k}" for k in range(8)], np.full(8, 4.0))
    render(fig)
    assert {f"r500:{k}" for k in range(8)} <= gids(fig)
    summary = distribution_summary(radial_distribution(unit_sum(maps), 4.0))
    fig = radial_distribution_figure({"test maps": summary})
    render(fig)
    assert {"paper", "median:test maps", "band:test maps"} <= gids(fig)


# -- Supplementary Figure 11 and Table 3 -----------------------------------------------------------


def test_cross_model_mass_cut_in_table_and_figure():
    from szmass.studies import cross_model_table
    from szmass.supp_plots import cross_model_figure

    b = np.array([0.1, -0.2, 0.05, 0.3])
    true = np.array([14.5, 14.8, 14.9, 14.6])
    table = pd.DataFrame({"train_model": "gadget_x", "test_model": "gizmo_simba", "log10_M_true": true,
                          "log10_M_cnn": true - np.log10(1 - b)})
    row = cross_model_table({("gadget_x", "gizmo_simba"): table}, min_log10_m500=14.7).iloc[0]
    assert row["n"] == 2 and row["mean"] == pytest.approx(b[1:3].mean(), abs=1e-12)
    fig = cross_model_figure(table, min_log10_m500=14.7)
    render(fig)
    assert "N = 2" in fig.axes[0].get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match=r"cross_model_figure: no test maps \(above log10 M500 = 15.0\)"):
        cross_model_figure(table, min_log10_m500=15.0)


def test_histograms_of_values_beyond_the_clip_range():
    far = {(1, "all"): np.array([-3.0, -2.5, -4.0]), (1, "M_CNN > 5e+14"): np.array([])}
    fig = bias_distributions({"sky": far}, {"sky": "$b_P$"})  # all clipped to -1: one narrow bin range
    render(fig)
    assert "sky:1:all" in gids(fig)


def test_train_size_figure_draws_runs_and_medians():
    from szmass.supp_plots import train_size_figure

    table = pd.DataFrame({"fraction": [0.5, 0.5, 1.0, 1.0], "n_train": [40, 44, 80, 80],
                          "n_train_clusters": [10, 11, 20, 20], "std": [0.2, 0.3, 0.1, 0.2]})  # fmt: skip
    fig = train_size_figure(table)
    render(fig)
    ax = fig.axes[0]
    median = next(line for line in ax.lines if line.get_gid() == "median")
    np.testing.assert_allclose(median.get_xdata(), [10.5, 20])  # against clusters, not maps
    np.testing.assert_allclose(median.get_ydata(), [0.25, 0.15])
    runs = next(c for c in ax.collections if c.get_gid() == "runs")
    np.testing.assert_allclose(runs.get_offsets()[:, 0], [10, 11, 20, 20])
    assert ax.get_xlabel() == "training clusters" and "4.0 training maps per cluster" in ax.get_title()
    with pytest.raises(ValueError, match=r"missing \['n_train_clusters'\]"):
        train_size_figure(table.drop(columns="n_train_clusters"))


def test_centroid_offset_is_nan_without_positive_y_inside_r500_and_never_the_merger():
    """A noise-only map, or an R500 smaller than the distance of the nearest pixel centre (0.71 px), has no
    y-weighted centroid: NaN, and the merger pick goes to the disturbed map with a defined offset."""
    rng = np.random.default_rng(3)
    maps = np.zeros((3, 16, 16))
    maps[0] = -np.abs(rng.normal(size=(16, 16)))  # no positive y anywhere
    maps[1, 8, 11] = 1.0  # a blob 3.5 px right of the centre (7.5, 7.5), inside R500 = 5 px
    maps[2, 7:9, 7:9] = 1.0  # centred
    off = centroid_offset(maps, [5.0, 5.0, 0.5])
    assert np.isnan(off[0]) and np.isnan(off[2])
    assert off[1] == pytest.approx(np.hypot(3.5, 0.5) / 5.0, rel=1e-12)
    picks = pick_saliency_examples([14.0, 14.5, 15.0], [14.3, 14.0, 15.01], off, n_good=1, n_bad=2)
    assert picks["good"] == [2] and picks["merger"] == [1] and picks["bad"] == [0]
