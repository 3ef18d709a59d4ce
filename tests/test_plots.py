"""The paper's figures (szmass.plots): artists built from the data, and atomic PNG output."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from szmass.plots import (
    figure1,
    figure2,
    figure3,
    learning_curves,
    pit_histogram,
    predicted_vs_true,
    saliency_figure,
    saliency_profile,
    save_figure,
    validation_boxplot,
)

EDGES = (0.0, 0.1, 0.2, 0.4, 1.0)


def render(fig: Figure) -> None:
    """Draw the figure (mathtext in labels and legends is only parsed when drawn)."""
    fig.savefig(io.BytesIO(), format="png", dpi=40)


def by_gid(ax, gid: str) -> list:
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert found, f"no artist with gid {gid!r}"
    return found


def predictions(seed: int, per_bin: dict[int, int], scatter: float = 0.05) -> pd.DataFrame:
    """A predictions table: maps in redshift bins with log10 M_true in [14, 15.2] and M_CNN scattered about it."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, n in per_bin.items():
        true = rng.uniform(14.0, 15.2, n)
        rows.append(pd.DataFrame({"redshift": rng.uniform(EDGES[k - 1] + 1e-3, EDGES[k], n), "zbin": k,
                                  "log10_M_true": true, "log10_M_cnn": true + rng.normal(0.0, scatter, n)}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def binned(m_x: np.ndarray, b: np.ndarray, n_bins: int) -> tuple[np.ndarray, ...]:
    """Independent equal-count binning: sort by mass, cut into n_bins groups whose sizes differ by <= 1."""
    order = np.argsort(m_x, kind="stable")
    sizes = np.full(n_bins, m_x.size // n_bins) + (np.arange(n_bins) < m_x.size % n_bins)
    groups = np.split(order, np.cumsum(sizes)[:-1])
    x = np.array([np.median(m_x[g]) for g in groups])
    q = np.array([np.percentile(b[g], [50, 16, 84]) for g in groups])
    return x, q[:, 0], q[:, 1], q[:, 2]


def check_band(ax, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, gid: str = "band") -> None:
    verts = by_gid(ax, gid)[0].get_paths()[0].vertices
    for xi, a, b in zip(x, lo, hi, strict=True):
        at = np.isclose(verts[:, 0], xi, rtol=1e-12, atol=0)
        assert np.any(np.isclose(verts[at, 1], a, rtol=0, atol=1e-12)), (xi, a)
        assert np.any(np.isclose(verts[at, 1], b, rtol=0, atol=1e-12)), (xi, b)


def test_figure1_binned_curves_and_points() -> None:
    tables = {"clean": predictions(1, {1: 40, 2: 260, 3: 90}), "planck": predictions(2, {2: 150, 4: 30}, 0.08)}
    fig = figure1(tables, n_bins=7, n_points=100, seed=5, edges=EDGES)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax, t in zip(fig.axes, tables.values(), strict=True):
        m_cnn = 10.0 ** t["log10_M_cnn"].to_numpy()
        b = (m_cnn - 10.0 ** t["log10_M_true"].to_numpy()) / m_cnn
        x, med, p16, p84 = binned(m_cnn, b, 7)
        line = by_gid(ax, "median")[0]
        assert np.allclose(line.get_xdata(), x, rtol=1e-12) and np.allclose(line.get_ydata(), med, rtol=0, atol=1e-12)
        check_band(ax, x, p16, p84)
        data = set(zip(np.round(m_cnn / 1e14, 9), np.round(b, 12), strict=True))
        for k, n in t["zbin"].value_counts().items():
            offsets = by_gid(ax, f"zbin{k}")[0].get_offsets()
            assert len(offsets) == min(100, n)  # n_points per redshift bin, all maps if fewer
            assert len(np.unique(offsets, axis=0)) == len(offsets)  # drawn without replacement
            assert set(zip(np.round(offsets[:, 0] / 1e14, 9), np.round(offsets[:, 1], 12), strict=True)) <= data
        levels = sorted(ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_gid() is None)
        assert np.allclose(levels, [-0.2, 0.0, 0.2])
        assert ax.get_xscale() == "log" and "M_\\odot" in ax.get_xlabel()
    assert fig.axes[0].get_legend() is not None and "b_t" in fig.axes[0].get_ylabel()
    render(fig)
    # the random subset is fixed by the seed
    again = figure1(tables, n_bins=7, n_points=100, seed=5, edges=EDGES)
    other = figure1(tables, n_bins=7, n_points=100, seed=6, edges=EDGES)
    pts = lambda f: by_gid(f.axes[0], "zbin2")[0].get_offsets()
    assert np.array_equal(pts(fig), pts(again)) and not np.array_equal(pts(fig), pts(other))


def sky_table(n: int = 70, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    msz = rng.uniform(14.2, 15.0, n)
    return pd.DataFrame({"name": [f"PSZ2 G{i:03d}" for i in range(n)], "redshift": rng.uniform(0.02, 0.6, n),
                         "zbin": rng.integers(1, 5, n), "log10_MSZ": msz,
                         "log10_M_cnn": msz + 0.05 + rng.normal(0, 0.08, n), "golden": rng.random(n) < 0.4})  # fmt: skip


def test_figure2_all_and_golden() -> None:
    sky = sky_table()
    fig = figure2(sky, n_bins=5)
    assert len(fig.axes) == 2
    for ax, part in zip(fig.axes, (sky, sky[sky["golden"]]), strict=True):
        msz = 10.0 ** part["log10_MSZ"].to_numpy()
        m_cnn = 10.0 ** part["log10_M_cnn"].to_numpy()
        x, med, p16, p84 = binned(m_cnn, (m_cnn - msz) / m_cnn, 5)  # binned in M_CNN, as the paper
        line = by_gid(ax, "median")[0]
        assert np.allclose(line.get_xdata(), x, rtol=1e-12) and np.allclose(line.get_ydata(), med, atol=1e-12)
        check_band(ax, x, p16, p84)
        shown = sum(len(by_gid(ax, f"zbin{k}")[0].get_offsets()) for k in part["zbin"].unique())
        assert shown == len(part)  # every cluster by default
        assert "M_{\\rm CNN}" in ax.get_xlabel()
    assert "b_P" in fig.axes[0].get_ylabel()
    render(fig)
    with pytest.raises(ValueError, match=r"figure2: sky table: column\(s\) \['golden'\] missing"):
        figure2(sky.drop(columns="golden"))
    # a flag read back as text must not turn "False" into True
    as_text = figure2(sky.assign(golden=sky["golden"].map({True: "True", False: "False"})), n_bins=5)
    assert np.array_equal(
        by_gid(as_text.axes[1], "median")[0].get_ydata(), by_gid(fig.axes[1], "median")[0].get_ydata()
    )
    with pytest.raises(ValueError, match="column 'golden' must be boolean"):
        figure2(sky.assign(golden="maybe"))


def test_figure3_lines_and_sky_medians() -> None:
    sky = sky_table(60, seed=8)
    rng = np.random.default_rng(3)
    cnn = rng.uniform(14.0, 15.2, 90)
    experiment = pd.concat([pd.DataFrame({"line": label, "log10_M_cnn": cnn, "b": rng.normal(shift, 0.05, 90)})
                            for label, shift in (("slope 1.63", 0.04), ("slope 1.79", 0.12))])  # fmt: skip
    fig = figure3(experiment, sky, n_bins=6)
    (ax,) = fig.axes
    msz = 10.0 ** sky["log10_MSZ"].to_numpy()
    m_cnn = 10.0 ** sky["log10_M_cnn"].to_numpy()
    x, med, p16, p84 = binned(m_cnn, (m_cnn - msz) / m_cnn, 6)
    container = next(c for c in ax.containers if c.lines[0].get_gid() == "sky")
    assert np.allclose(container.lines[0].get_xdata(), x, rtol=1e-12)
    assert np.allclose(container.lines[0].get_ydata(), med, atol=1e-12)
    segments = np.array(container.lines[2][0].get_segments())  # one vertical bar per bin: (x, p16) -> (x, p84)
    assert np.allclose(segments[:, 0, 1], p16, atol=1e-12) and np.allclose(segments[:, 1, 1], p84, atol=1e-12)
    for label, part in experiment.groupby("line"):
        lx, lmed, l16, l84 = binned(10.0 ** part["log10_M_cnn"].to_numpy(), part["b"].to_numpy(), 6)
        line = by_gid(ax, f"line:{label}")[0]
        assert np.allclose(line.get_xdata(), lx, rtol=1e-12) and np.allclose(line.get_ydata(), lmed, atol=1e-12)
        check_band(ax, lx, l16, l84, gid=f"band:{label}")
    assert ax.get_legend() is not None and ax.get_xscale() == "log" and "M_{\\rm CNN}" in ax.get_xlabel()
    render(fig)
    with pytest.raises(ValueError, match="figure3: experiment table: column 'b' missing"):
        figure3(experiment.drop(columns="b"), sky)


def test_saliency_figure() -> None:
    rng = np.random.default_rng(9)
    y = rng.normal(0, 1e-6, (2, 32, 32))
    s = rng.uniform(0, 1, (2, 32, 32))
    fig = saliency_figure(y, s, ["a", "b"], r500_pixels=[5.0, 8.0])
    assert len(fig.axes) == 8  # two rows of (map, saliency), each with a colour bar
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in panels] == ["a", "saliency", "b", "saliency"]
    for ax, want in zip(panels, [y[0], s[0], y[1], s[1]], strict=True):
        assert np.array_equal(ax.get_images()[0].get_array(), want)
    assert np.isclose(panels[2].patches[0].get_radius(), 8.0 * 1.7)  # R500 circle [arcmin]
    render(fig)
    with pytest.raises(ValueError, match="1 titles for 2 examples"):
        saliency_figure(y, s, ["a"])


def test_pit_histogram_counts_band_and_coverage() -> None:
    pit = np.random.default_rng(11).uniform(0, 1, 500)
    fig = pit_histogram(pit, {"coverage_68": 0.674, "coverage_95": 0.948}, n_bins=10)
    (ax,) = fig.axes
    heights = [p.get_height() for p in by_gid(ax, "pit")]
    assert np.array_equal(heights, np.histogram(pit, bins=10, range=(0, 1))[0])
    assert by_gid(ax, "expected")[0].get_ydata()[0] == 50.0
    sigma = np.sqrt(500 * 0.1 * 0.9)  # binomial, p = 1/10
    ys = by_gid(ax, "band")[0].get_paths()[0].vertices[:, 1]
    assert np.isclose(ys.min(), 50 - sigma) and np.isclose(ys.max(), 50 + sigma)
    text = by_gid(ax, "coverage")[0].get_text()
    assert "68% interval: coverage 0.674" in text and "95% interval: coverage 0.948" in text
    render(fig)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        pit_histogram([0.5, 1.2])


def test_saliency_profile_line_and_band() -> None:
    prof = pd.DataFrame({"r_lo": [0.0, 0.2, 0.4, 0.6], "r_hi": [0.2, 0.4, 0.6, 0.8], "r_mid": [0.1, 0.3, 0.5, 0.7],
                         "median": [0.8, 0.5, 0.3, np.nan], "p16": [0.6, 0.4, 0.2, np.nan],
                         "p84": [0.9, 0.7, 0.4, np.nan], "n": [10, 10, 9, 0]})  # fmt: skip
    fig = saliency_profile(prof)
    (ax,) = fig.axes
    line = by_gid(ax, "median")[0]
    assert np.allclose(line.get_xdata(), [0.1, 0.3, 0.5]) and np.allclose(line.get_ydata(), [0.8, 0.5, 0.3])
    check_band(ax, np.array([0.1, 0.3, 0.5]), np.array([0.6, 0.4, 0.2]), np.array([0.9, 0.7, 0.4]))
    assert "R_{500}" in ax.get_xlabel()
    render(fig)


def test_validation_boxplot_medians() -> None:
    losses = {"lr 1e-4": np.array([0.010, 0.012, 0.011, 0.015]), "lr 1e-3": np.array([0.02, 0.018, 0.03])}
    fig = validation_boxplot(losses)
    (ax,) = fig.axes
    for label, v in losses.items():
        assert np.allclose(by_gid(ax, f"median:{label}")[0].get_ydata(), np.median(v))
        assert np.allclose(by_gid(ax, f"runs:{label}")[0].get_offsets()[:, 1], v)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(losses)
    assert "dex" in ax.get_ylabel()
    render(fig)


def test_save_figure_atomic_png(tmp_path: Path) -> None:
    fig = Figure(figsize=(4.0, 3.0))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    path = tmp_path / "figures" / "f.png"
    save_figure(fig, path, dpi=50)
    image = matplotlib.image.imread(path)
    assert image.shape == (150, 200, 4)  # 3 x 4 inches at 50 dpi, RGBA
    assert [p.name for p in path.parent.iterdir()] == ["f.png"]  # no temporary file left
    # a figure that fails to draw (bad mathtext) leaves neither a file nor a temporary behind
    ax.set_title(r"$\frac{$")
    bad = tmp_path / "bad" / "g.png"
    with pytest.raises(ValueError):
        save_figure(fig, bad)
    assert not bad.exists() and list(bad.parent.iterdir()) == []


def test_posterior_examples_draw_each_density_and_marker():
    from szmass.plots import posterior_examples

    grid = np.linspace(13.5, 15.5, 201)
    pdfs = np.stack([np.exp(-0.5 * ((grid - m) / 0.1) ** 2) / (0.1 * np.sqrt(2 * np.pi)) for m in (14.2, 14.6, 15.0, 14.4)])
    markers = [{"M_CNN": m, "M_SZ": m - 0.1, "truth": np.nan} for m in (14.2, 14.6, 15.0, 14.4)]
    fig = posterior_examples(grid, pdfs, ["a", "b", "c", "d"], markers)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4
    for ax, pdf, mark in zip(visible, pdfs, markers):
        (line,) = [ln for ln in ax.lines if ln.get_gid() == "posterior"]
        np.testing.assert_allclose(line.get_ydata(), pdf)
        assert np.trapezoid(line.get_ydata(), line.get_xdata()) == pytest.approx(1.0, abs=1e-6)
        drawn = {ln.get_gid(): ln.get_xdata()[0] for ln in ax.lines if ln.get_gid().startswith("marker:")}
        assert drawn == {"marker:M_CNN": mark["M_CNN"], "marker:M_SZ": mark["M_SZ"]}  # a NaN truth is not drawn
    with pytest.raises(ValueError, match="posterior_examples"):
        posterior_examples(grid, pdfs[:, :10], ["a", "b", "c", "d"])


def test_learning_curves_every_run_per_bin() -> None:
    epochs = np.arange(1, 6)
    histories = {f"z{b}": {f"seed{s}": pd.DataFrame({"epoch": epochs, "loss": 1.0 / (epochs + s + b),
                                                      "val_loss": 1.2 / (epochs + s + b)}) for s in range(3)}
                 for b in (1, 2)}  # fmt: skip
    fig = learning_curves(histories, {"z1": "seed2"})
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    for ax, (zlabel, runs) in zip(fig.axes, histories.items(), strict=False):
        for run, h in runs.items():
            for col in ("loss", "val_loss"):
                line = by_gid(ax, f"{col}:{zlabel}:{run}")[0]
                assert np.array_equal(line.get_xdata(), h["epoch"]) and np.array_equal(line.get_ydata(), h[col])
        assert ax.get_yscale() == "log"
    assert by_gid(fig.axes[0], "loss:z1:seed2")[0].get_color() == "k"  # the selected run stands out
    assert "M_{500}" in fig.axes[0].get_ylabel()
    render(fig)
    assert "M_{200}" in learning_curves(histories, mass="M200").axes[1].get_ylabel()  # an M200 run's networks
    with pytest.raises(ValueError, match=r"learning_curves: z1 seed0: column\(s\) \['val_loss'\] missing"):
        learning_curves({"z1": {"seed0": histories["z1"]["seed0"].drop(columns="val_loss")}})


def test_predicted_vs_true_panel_per_bin() -> None:
    tests = predictions(3, {1: 30, 3: 50})
    fig = predicted_vs_true(tests, edges=EDGES)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    for ax, b in zip(axes, (1, 3), strict=True):
        part = tests[tests["zbin"] == b]
        offsets = by_gid(ax, f"points:{b}")[0].get_offsets()
        assert np.allclose(offsets, part[["log10_M_true", "log10_M_cnn"]].to_numpy(), rtol=0, atol=1e-12)
        r = part["log10_M_cnn"] - part["log10_M_true"]
        assert f"std {r.std(ddof=1):.3f}" in ax.get_title() and f"{len(part)} maps" in ax.get_title()
    render(fig)
