"""The paper's supplementary figures (de Andres et al. 2022) as ``matplotlib.figure.Figure`` objects.

The data come from :mod:`szmass.supplementary`; the figures are saved with :func:`szmass.plots.save_figure`.
As in :mod:`szmass.plots`, there is no pyplot state, and artists built from the data carry a ``gid``
(named in each function's docs) so that tests can find them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch
from numpy.typing import ArrayLike, NDArray

from szmass.evaluate import log_residual_moments, relative_bias
from szmass.plots import B_T_LABEL, PIXEL_ARCMIN, _map_panel

LOG_M_LABEL = r"$\log_{10}(M_{500} / M_\odot)$"
LOG_RATIO_LABEL = r"$\log_{10}(M_{\rm CNN} / M_{\rm true})$"
PAPER_SALIENCY_PEAK = (0.4, 1.2)
"""Where the paper finds the largest contribution of the saliency maps [R500] (its Supplementary Figure 10)."""


def example_label(log10_m_true: float, log10_m_cnn: float, redshift: float) -> str:
    """Title of an example map: log10 M_true, log10 M_CNN [Msun] and the redshift."""
    return rf"$\log M_{{\rm true}}$ = {log10_m_true:.2f}, $\log M_{{\rm CNN}}$ = {log10_m_cnn:.2f}, z = {redshift:.2f}"


def mass_redshift_marginals(samples: Mapping[str, pd.DataFrame], *, edges: Sequence[float], bins: int = 20) -> Figure:
    """Supplementary Figure 1: log10 M500 [Msun] against redshift per sample (label -> table with ``redshift``,
    ``log10_M``; points gid "sample:<label>"), the redshift-bin ``edges`` as vertical lines, and the marginal
    histograms (density) of redshift above and of mass on the right (gids "zhist:<label>", "mhist:<label>")."""
    if not samples:
        raise ValueError("mass_redshift_marginals: no samples given")
    for label, t in samples.items():
        missing = [c for c in ("redshift", "log10_M") if c not in t.columns]
        if missing or len(t) == 0:
            raise ValueError(f"mass_redshift_marginals: sample {label!r} needs rows with columns redshift, log10_M")
    fig = Figure(figsize=(6.4, 5.6), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4))
    ax = fig.add_subplot(grid[1, 0])
    top = fig.add_subplot(grid[0, 0], sharex=ax)
    right = fig.add_subplot(grid[1, 1], sharey=ax)
    z_all = np.concatenate([t["redshift"].to_numpy(float) for t in samples.values()])
    m_all = np.concatenate([t["log10_M"].to_numpy(float) for t in samples.values()])
    z_bins = np.linspace(min(0.0, z_all.min()), z_all.max(), bins + 1)
    m_bins = np.linspace(m_all.min(), m_all.max(), bins + 1)
    for k, (label, t) in enumerate(samples.items()):
        colour = f"C{k}"
        ax.scatter(t["redshift"], t["log10_M"], s=6, alpha=0.5, lw=0, color=colour, label=f"{label} ({len(t)})",
                   gid=f"sample:{label}")  # fmt: skip
        top.hist(t["redshift"], bins=z_bins.tolist(), density=True, histtype="step", color=colour, gid=f"zhist:{label}")
        right.hist(t["log10_M"], bins=m_bins.tolist(), density=True, histtype="step", orientation="horizontal",
                   color=colour,
                   gid=f"mhist:{label}")  # fmt: skip
    for i, z in enumerate(edges):
        ax.axvline(float(z), color="0.4", ls=":", lw=1.0, label="redshift-bin edges" if i == 0 else None)
    ax.set_xlabel("redshift $z$")
    ax.set_ylabel(LOG_M_LABEL)
    ax.legend(fontsize="x-small", loc="lower right")
    top.set_ylabel("density")
    right.set_xlabel("density")
    top.tick_params(labelbottom=False)
    right.tick_params(labelleft=False)
    return fig


def example_grid(
    rows: Sequence[Mapping[str, ArrayLike]], titles: Sequence[Mapping[str, str]], *, pixel_arcmin: float = PIXEL_ARCMIN
) -> Figure:
    """Supplementary Figure 2: one row per example cluster, one column per data set (``rows[i]``: column
    key -> (py, px) Compton-y map, the same keys in every row), each panel with its own colour bar and
    the title ``titles[i][key]``; axes are offsets from the map centre [arcmin]."""
    if not rows or len(rows) != len(titles):
        raise ValueError(f"example_grid: need >= 1 row and one title mapping per row, got {len(rows)} and "
                         f"{len(titles)}")  # fmt: skip
    keys = list(rows[0])
    if any(list(r) != keys for r in rows):
        raise ValueError(f"example_grid: every row needs the columns {keys}")
    fig = Figure(figsize=(4.4 * len(keys), 3.8 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(keys), squeeze=False)
    for i, row in enumerate(rows):
        for j, key in enumerate(keys):
            image = np.asarray(row[key], dtype=float)
            if image.ndim != 2:
                raise ValueError(f"example_grid: row {i}, column {key!r}: expected a 2-D map, got shape {image.shape}")
            _map_panel(axes[i, j], image, pixel_arcmin, label="Compton y", cmap="magma")
            axes[i, j].set_title(titles[i].get(key, key), fontsize="small")
    return fig


def architecture_diagram(layers: pd.DataFrame, title: str = "") -> Figure:
    """Supplementary Figure 3: the network as a chain of boxes, one per layer of ``layers``
    (:func:`szmass.supplementary.layer_table`), each naming the layer, its kind, output shape and parameters
    (boxes gid "layer:<name>"); the title gives ``title`` and the total of parameters."""
    missing = [c for c in ("layer", "kind", "output_shape", "parameters") if c not in layers.columns]
    if missing or len(layers) == 0:
        raise ValueError(f"architecture_diagram: need a layer table with columns layer, kind, output_shape, "
                         f"parameters; missing {missing}")  # fmt: skip
    n = len(layers)
    fig = Figure(figsize=(1.05 * n + 0.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    colours = {"input": "0.85", "conv": "tab:blue", "max-pool": "tab:cyan", "global": "tab:purple",
               "dropout": "0.7", "dense": "tab:orange"}  # fmt: skip
    widest = np.log1p(max(float(shape[0]) for shape in layers["output_shape"]))
    for i, row in enumerate(layers.itertuples(index=False)):
        shape = tuple(row.output_shape)
        height = 0.35 + 0.6 * np.log1p(shape[0]) / widest  # box height grows with the layer's first dimension
        colour = next((c for k, c in colours.items() if str(row.kind).startswith(k)), "0.5")
        ax.add_patch(FancyBboxPatch((i + 0.1, 0.5 - height / 2), 0.8, height, boxstyle="round,pad=0.02",
                                    facecolor=colour, alpha=0.55, edgecolor="k", gid=f"layer:{row.layer}"))  # fmt: skip
        text = f"{row.layer}\n{row.kind}\n{' x '.join(str(s) for s in shape)}\n{row.parameters:,} par."
        ax.text(i + 0.5, 0.5, text, ha="center", va="center", fontsize=6.5, rotation=90)
        if i:
            ax.annotate("", xy=(i + 0.1, 0.5), xytext=(i - 0.1, 0.5), arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_xlim(0, n)
    ax.set_ylim(-0.05, 1.05)
    ax.set_axis_off()
    total = f"{int(layers['parameters'].sum()):,} trainable parameters"
    ax.set_title(f"{title}: {total}" if title else total)
    return fig


def _histogram_bins(
    values: Sequence[NDArray[np.float64]], n_bins: int, clip: tuple[float, float]
) -> NDArray[np.float64]:
    """``n_bins`` + 1 equal bin edges over the range of ``values`` clipped to ``clip`` (+-0.05 around a single
    value)."""
    clipped = np.clip(np.concatenate([v for v in values if v.size] or [np.zeros(1)]), *clip)
    lo, hi = float(clipped.min()), float(clipped.max())
    if not hi > lo:
        lo, hi = lo - 0.05, hi + 0.05
    return np.linspace(lo, hi, n_bins + 1)


def run_error_distributions(
    errors: pd.DataFrame, *, n_bins: int = 25, clip: tuple[float, float] = (-1.0, 1.0)
) -> Figure:
    """Supplementary Figure 5 (right panel): the distribution of b_t = (M_CNN - M_true) / M_CNN of every run
    (grey, gid "run:<zbin>:<run>"), the selected run (green, "selected:<zbin>") and the worst run (red,
    "worst:<zbin>"), one panel per redshift bin; ``errors`` from :func:`szmass.supplementary.run_errors`."""
    missing = [c for c in ("run", "zbin", "b_t", "selected", "worst") if c not in errors.columns]
    if missing or errors.empty:
        raise ValueError(f"run_error_distributions: need run errors (run, zbin, b_t, selected, worst); missing "
                         f"{missing}")  # fmt: skip
    zbins = sorted(errors["zbin"].unique())
    fig = Figure(figsize=(3.6 * len(zbins), 3.4), layout="constrained")
    axes = fig.subplots(1, len(zbins), squeeze=False, sharey=True)[0]
    for ax, zbin in zip(axes, zbins, strict=True):
        part = errors[errors["zbin"] == zbin]
        runs = [g["b_t"].to_numpy(float) for _, g in part.groupby("run")]
        edges = _histogram_bins(runs, n_bins, clip)
        for k, (run, g) in enumerate(part.groupby("run")):
            b = np.clip(g["b_t"].to_numpy(float), edges[0], edges[-1])
            ax.hist(b, bins=edges, density=True, histtype="step", color="0.6", lw=0.7, gid=f"run:{zbin}:{run}",
                    label=f"all runs ({len(runs)})" if k == 0 else None)  # fmt: skip
        for flag, colour, name in (("selected", "tab:green", "selected run"), ("worst", "tab:red", "worst run")):
            b = np.clip(part.loc[part[flag].astype(bool), "b_t"].to_numpy(float), edges[0], edges[-1])
            ax.hist(b, bins=edges, density=True, histtype="step", color=colour, lw=1.8, gid=f"{flag}:{zbin}",
                    label=name)  # fmt: skip
        ax.axvline(0.0, color="k", lw=0.6)
        ax.set_title(f"redshift bin {zbin}", fontsize="small")
        ax.set_xlabel(B_T_LABEL)
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize="x-small")
    return fig


def bias_distributions(
    samples: Mapping[str, Mapping[tuple[int, str], NDArray[np.float64]]],
    labels: Mapping[str, str],
    *,
    zlabels: Mapping[int, str] | None = None,
    n_bins: int = 40,
    clip: tuple[float, float] = (-1.0, 1.0),
) -> Figure:
    """Supplementary Figure 6: one row per data set (``samples``: name -> :func:`szmass.supplementary.bias_samples`),
    one column per redshift bin, the distribution (density) of b for all masses and above the mass cut
    (gid "<name>:<bin>:<subset>") in ``n_bins`` equal bins over ``clip`` (values beyond it counted in the end
    bins), with the number and median in the legend; ``labels``: name -> x-axis label (b_t or b_P)."""
    if not samples:
        raise ValueError("bias_distributions: no data sets given")
    zbins = sorted({k for s in samples.values() for k, _ in s})
    fig = Figure(figsize=(3.2 * len(zbins), 2.6 * len(samples)), layout="constrained")
    axes = fig.subplots(len(samples), len(zbins), squeeze=False, sharex=True)
    for i, (name, sample) in enumerate(samples.items()):
        for j, zbin in enumerate(zbins):
            ax = axes[i, j]
            parts = {subset: b for (k, subset), b in sample.items() if k == zbin}
            edges = np.linspace(*clip, n_bins + 1)
            for (subset, b), style in zip(parts.items(), ("-", "--"), strict=False):
                if b.size == 0:
                    ax.plot([], [], ls=style, color="0.5", label=f"{subset}: N = 0")
                    continue
                ax.hist(np.clip(b, *clip), bins=edges, density=True, histtype="step", ls=style, lw=1.3,
                        gid=f"{name}:{zbin}:{subset}",
                        label=f"{subset}: N = {b.size}, median {np.median(b):+.2f}")  # fmt: skip
            ax.axvline(0.0, color="k", lw=0.6)
            ax.set_title(f"{name}, {(zlabels or {}).get(zbin, f'bin {zbin}')}", fontsize="small")
            ax.set_xlabel(labels.get(name, "b"), fontsize="small")
            ax.legend(fontsize="xx-small")
    for ax in axes[:, 0]:
        ax.set_ylabel("density")
    return fig


def kde_figure(
    log10_m_cnn: NDArray[np.float64],
    log10_m_true: NDArray[np.float64],
    density: NDArray[np.float64],
    points: pd.DataFrame,
    *,
    x0: float,
    slice_grid: NDArray[np.float64],
    slice_pdf: NDArray[np.float64],
) -> Figure:
    """Supplementary Figure 7: left, the KDE density of the test set (``density`` on ``log10_m_true`` x
    ``log10_m_cnn``, gid "density") with the test pairs (``points``: log10_M_cnn, log10_M_true; gid "points")
    and the slice at log10 M_CNN = ``x0`` (gid "slice"); right, the posterior p(log10 M_true | x0) (gid
    "posterior")."""
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    mesh = left.pcolormesh(log10_m_cnn, log10_m_true, density, shading="auto", cmap="Blues", gid="density")
    fig.colorbar(mesh, ax=left, label=r"KDE density [dex$^{-2}$]")
    left.scatter(points["log10_M_cnn"], points["log10_M_true"], s=3, color="k", alpha=0.4, lw=0,
                 label=f"test maps ({len(points)})", gid="points")  # fmt: skip
    left.axvline(x0, color="tab:red", ls="--", label=rf"slice at $\log M_{{\rm CNN}}$ = {x0:.2f}", gid="slice")
    lo, hi = log10_m_cnn.min(), log10_m_cnn.max()
    left.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls=":")
    left.set_xlabel(r"$\log_{10} M_{\rm CNN}\ [M_\odot]$")
    left.set_ylabel(r"$\log_{10} M_{\rm true}\ [M_\odot]$")
    left.legend(fontsize="x-small", loc="upper left")
    right.plot(slice_grid, slice_pdf, color="tab:red", gid="posterior")
    right.axvline(x0, color="0.3", ls=":", label=r"$\log M_{\rm CNN}$")
    right.set_xlabel(r"$\log_{10} M_{\rm true}\ [M_\odot]$")
    right.set_ylabel(r"$p(\log M_{\rm true} \mid \log M_{\rm CNN})$ [dex$^{-1}$]")
    right.legend(fontsize="x-small")
    return fig


def log_ratio_distributions(
    tables: Mapping[str, pd.DataFrame], *, zlabels: Mapping[int, str] | None = None, n_bins: int = 20
) -> Figure:
    """Supplementary Figure 8: the distributions of log10(M_CNN / M_true) per data set (rows; ``tables``: name ->
    predictions with zbin, log10_M_cnn, log10_M_true) and redshift bin (columns), each panel with its mean,
    std, skewness and excess kurtosis (:func:`szmass.evaluate.log_residual_moments`; text gid
    "moments:<name>:<bin>", histogram gid "hist:<name>:<bin>")."""
    if not tables:
        raise ValueError("log_ratio_distributions: no tables given")
    zbins = sorted({int(k) for t in tables.values() for k in t["zbin"].unique()})
    fig = Figure(figsize=(3.2 * len(zbins), 2.6 * len(tables)), layout="constrained")
    axes = fig.subplots(len(tables), len(zbins), squeeze=False, sharex=True)
    for i, (name, table) in enumerate(tables.items()):
        for j, zbin in enumerate(zbins):
            ax = axes[i, j]
            part = table[table["zbin"] == zbin]
            r = (part["log10_M_cnn"] - part["log10_M_true"]).to_numpy(float)
            if r.size:
                ax.hist(r, bins=n_bins, density=True, color=f"C{i}", alpha=0.6, gid=f"hist:{name}:{zbin}")
            m = log_residual_moments(part["log10_M_cnn"].to_numpy(float), part["log10_M_true"].to_numpy(float))
            ax.text(0.03, 0.97, f"N = {m['n']}\nmean {m['mean']:+.3f}\nstd {m['std']:.3f}\nskew {m['skewness']:+.2f}\n"
                    f"kurt {m['kurtosis']:+.2f}", transform=ax.transAxes, va="top", fontsize="x-small",
                    gid=f"moments:{name}:{zbin}")  # fmt: skip
            ax.axvline(0.0, color="k", lw=0.6)
            ax.set_title(f"{name}, {(zlabels or {}).get(zbin, f'bin {zbin}')}", fontsize="small")
            ax.set_xlabel(LOG_RATIO_LABEL, fontsize="small")
    for ax in axes[:, 0]:
        ax.set_ylabel("density")
    return fig


def radial_distribution_figure(
    summaries: Mapping[str, pd.DataFrame], *, paper_range: tuple[float, float] = PAPER_SALIENCY_PEAK
) -> Figure:
    """Supplementary Figure 10 (right): the median radial distribution of unit-sum saliency maps per sample
    (``summaries``: label -> :func:`szmass.supplementary.distribution_summary`; line gid "median:<label>",
    16th-84th band gid "band:<label>") against r / R500, with the paper's peak range shaded (gid "paper")."""
    if not summaries:
        raise ValueError("radial_distribution_figure: no samples given")
    fig = Figure(figsize=(5.6, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.axvspan(*paper_range, color="0.85", label=f"paper's peak, {paper_range[0]:g}-{paper_range[1]:g} $R_{{500}}$",
               gid="paper")  # fmt: skip
    for k, (label, s) in enumerate(summaries.items()):
        rows = s.dropna(subset=["median"])
        ax.fill_between(rows["r_mid"], rows["p16"], rows["p84"], color=f"C{k}", alpha=0.2, lw=0, gid=f"band:{label}")
        ax.plot(rows["r_mid"], rows["median"], "o-", ms=3, color=f"C{k}", gid=f"median:{label}",
                label=f"{label} ({int(rows['n'].max()) if len(rows) else 0} maps)")  # fmt: skip
    ax.set_xlim(left=0.0)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel(r"$r / R_{500}$")
    ax.set_ylabel(r"saliency fraction per unit $r / R_{500}$")
    ax.legend(fontsize="x-small")
    return fig


def saliency_examples(
    maps: ArrayLike,
    saliency: ArrayLike,
    titles: Sequence[str],
    r500_pixels: ArrayLike,
    *,
    pixel_arcmin: float = PIXEL_ARCMIN,
    ncols: int = 4,
) -> Figure:
    """Supplementary Figure 9: pairs of panels, the Compton-y map and its unit-sum saliency, ``ncols`` pairs
    a row, each titled ``titles[i]`` and with a circle at R500 (``r500_pixels``, gid "r500:<i>")."""
    y, s = np.asarray(maps, dtype=float), np.asarray(saliency, dtype=float)
    r500 = np.broadcast_to(np.asarray(r500_pixels, dtype=float), (y.shape[0],))
    if y.ndim != 3 or y.shape != s.shape or len(titles) != y.shape[0]:
        raise ValueError(f"saliency_examples: need maps and saliency (k, py, px) and k titles, got {y.shape}, "
                         f"{s.shape}, {len(titles)}")  # fmt: skip
    k = y.shape[0]
    nrows = -(-k // ncols)
    fig = Figure(figsize=(8.0 * min(k, ncols), 3.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, 2 * min(k, ncols), squeeze=False)
    for i in range(nrows * min(k, ncols)):
        pair = axes[i // ncols, 2 * (i % ncols) : 2 * (i % ncols) + 2]
        if i >= k:
            for ax in pair:
                ax.set_visible(False)
            continue
        _map_panel(pair[0], y[i], pixel_arcmin, label="Compton y", cmap="magma")
        _map_panel(pair[1], s[i], pixel_arcmin, label="saliency (unit sum)", cmap="inferno", vmin=0.0)
        pair[0].set_title(titles[i], fontsize="x-small")
        pair[1].set_title("saliency", fontsize="x-small")
        for ax in pair:
            ax.add_patch(Circle((0.0, 0.0), r500[i] * pixel_arcmin, fill=False, color="c", ls="--", gid=f"r500:{i}"))
    return fig



def cross_model_figure(tests: pd.DataFrame, *, min_log10_m500: float | None = None, n_bins: int = 20) -> Figure:
    """Cross-model test (the paper's Supplementary Figure 11): one panel per training gas model, the
    distribution of b_t = (M_CNN - M_true) / M_CNN on the test maps of each gas model (gid
    "<train>:<test>"), with its mean and standard error in the legend. ``tests``: columns train_model,
    test_model, log10_M_true, log10_M_cnn; with ``min_log10_m500``, maps below that log10 M_true are left out."""
    missing = [c for c in ("train_model", "test_model", "log10_M_true", "log10_M_cnn") if c not in tests.columns]
    if missing:
        raise ValueError(f"cross_model_figure: column(s) {missing} missing; the table has {list(tests.columns)}")
    if min_log10_m500 is not None:
        tests = tests[tests["log10_M_true"] >= min_log10_m500]
    trains = sorted(tests["train_model"].unique())
    if not trains:
        raise ValueError(f"cross_model_figure: no test maps (above log10 M500 = {min_log10_m500})")
    fig = Figure(figsize=(4.0 * len(trains), 3.4), layout="constrained")
    axes = fig.subplots(1, len(trains), squeeze=False, sharey=True)[0]
    b_all = relative_bias(tests["log10_M_cnn"].to_numpy(float), tests["log10_M_true"].to_numpy(float))
    edges = _histogram_bins([b_all], n_bins, (-1.0, 1.0))
    for ax, train in zip(axes, trains, strict=True):
        for k, (test, part) in enumerate(tests[tests["train_model"] == train].groupby("test_model", sort=True)):
            b = relative_bias(part["log10_M_cnn"].to_numpy(float), part["log10_M_true"].to_numpy(float))
            err = b.std(ddof=1) / np.sqrt(b.size) if b.size > 1 else np.nan
            ax.hist(np.clip(b, edges[0], edges[-1]), bins=edges, density=True, histtype="step", lw=1.4,
                    color=f"C{k}", ls="-" if test == train else "--", gid=f"{train}:{test}",
                    label=f"tested on {test}: {b.mean():+.3f} $\\pm$ {err:.3f} (N = {b.size})")  # fmt: skip
        ax.axvline(0.0, color="k", lw=0.6)
        ax.set_title(f"trained on {train}", fontsize="small")
        ax.set_xlabel(B_T_LABEL)
        ax.legend(fontsize="xx-small")
    axes[0].set_ylabel("density")
    return fig


def train_size_figure(table: pd.DataFrame) -> Figure:
    """The training-set-size curve: the scatter of log10 M_CNN / M_true on the test maps [dex] of every run
    against its number of training clusters (points, gid "runs"), and the median over seeds per fraction
    (line, gid "median"), titled with the training maps per cluster over all runs; ``table`` from
    :func:`szmass.studies.train_size_table`."""
    missing = [c for c in ("fraction", "n_train", "n_train_clusters", "std") if c not in table.columns]
    if missing or table.empty:
        raise ValueError("train_size_figure: need a table with columns fraction, n_train, n_train_clusters, std; "
                         f"missing {missing}")  # fmt: skip
    fig = Figure(figsize=(5.2, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(table["n_train_clusters"], table["std"], s=14, color="k", alpha=0.6, label="seeded runs", gid="runs")
    median = table.groupby("fraction", sort=True)[["n_train_clusters", "std"]].median()
    ax.plot(median["n_train_clusters"], median["std"], "o-", color="tab:red", label="median over seeds",
            gid="median")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("training clusters")
    ax.set_ylabel(r"std of $\log_{10}(M_{\rm CNN} / M_{\rm true})$ [dex]")
    per_cluster = table["n_train"].sum() / table["n_train_clusters"].sum()
    ax.set_title(f"scatter on the test maps ({per_cluster:.1f} training maps per cluster)", fontsize="small")
    ax.legend(fontsize="small")
    return fig
