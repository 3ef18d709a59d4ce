"""The paper's figures (de Andres et al. 2022; docs/architecture.md, stage 8) as ``matplotlib.figure.Figure`` objects.

No pyplot state: every function builds and returns a new Figure, and `save_figure` writes it as a PNG
atomically. Inputs are pandas tables with masses as log10 M500 [Msun]:

* predictions tables (Figure 1): ``redshift``, ``zbin`` (1-based redshift bin), ``log10_M_true``,
  ``log10_M_cnn``; the caller picks the maps (e.g. the test split);
* sky tables (Figures 2-3): ``name``, ``redshift``, ``zbin``, ``log10_MSZ``, ``log10_M_cnn``, ``golden``
  (bool), and for a synthetic sky ``log10_M_true``;
* the Figure 3 experiment (:func:`szmass.evaluate.ym_experiment`): ``line``, ``log10_M_cnn``, ``b``.

Relative errors are b = (M_CNN - M_ref) / M_CNN (:func:`szmass.evaluate.relative_bias`); the binned
curves are the median and the 16th-84th percentiles of b in equal-count bins
(:func:`szmass.evaluate.equal_count_bins`, the binning of the model selection). Artists built from the
data carry a ``gid`` (``"median"``, ``"band"``, ``"zbin3"``, ...) so that tests and notebooks can find
them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from numpy.typing import ArrayLike, NDArray

from szmass.atomic import atomic_path
from szmass.evaluate import equal_count_bins, relative_bias

PIXEL_ARCMIN = 1.7
"""Pixel size of the 96 x 96 maps [arcmin]."""
PREDICTION_COLUMNS = ("zbin", "log10_M_true", "log10_M_cnn")
SKY_COLUMNS = ("zbin", "log10_MSZ", "log10_M_cnn", "golden")
M_CNN_LABEL = r"$M_{\rm CNN}$ [$M_\odot$]"
B_T_LABEL = r"$b_t = (M_{\rm CNN} - M_{\rm true}) / M_{\rm CNN}$"
B_P_LABEL = r"$b_P = (M_{\rm CNN} - M_{\rm SZ}) / M_{\rm CNN}$"
OFFSET_X_LABEL = "x offset [arcmin]"
OFFSET_Y_LABEL = "y offset [arcmin]"


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> None:
    """Write ``fig`` to ``path`` as a PNG of ``dpi`` dots per inch, atomically (no partial file on failure)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def _check_table(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """ValueError naming ``what`` unless ``table`` has ``columns``, with finite numeric values."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: column(s) {missing} missing; the table has {list(table.columns)}")
    for c in columns:
        if c == "golden":
            continue
        values = pd.to_numeric(table[c], errors="coerce").to_numpy(float)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{what}: column {c!r} has {int((~np.isfinite(values)).sum())} non-finite value(s)")
    if "zbin" in columns:
        z = table["zbin"].to_numpy(float)
        if np.any((z != np.round(z)) | (z < 1)):
            raise ValueError(f"{what}: column 'zbin' must hold redshift-bin indices 1, 2, ...")


def _golden(table: pd.DataFrame, what: str) -> NDArray[np.bool_]:
    """The ``golden`` column as booleans: bool, 0/1 or the strings "True"/"False" (any case) are accepted."""
    col = table["golden"]
    if col.dtype == bool:
        return col.to_numpy()
    text = col.astype(str).str.strip().str.lower()
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    bad = ~text.isin(list(mapping))
    if bad.any():
        raise ValueError(f"{what}: column 'golden' must be boolean, got {col[bad].iloc[0]!r}")
    return text.map(mapping).to_numpy(bool)


def _zbin_styles(
    tables: Sequence[pd.DataFrame], edges: Sequence[float] | None
) -> tuple[dict[int, tuple[float, ...]], dict[int, str]]:
    """A colour (viridis, low z dark) and a legend label per redshift bin found in ``tables``: the bin's
    range from ``edges`` if given, else the range of the ``redshift`` column in the bin, if any."""
    n = max((int(t["zbin"].max()) for t in tables if len(t)), default=1)
    if edges is not None:
        n = max(n, len(edges) - 1)
    colours = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, n))
    parts = [pd.DataFrame({"zbin": t["zbin"].to_numpy().astype(np.int64), "z": t["redshift"].to_numpy(float)})
             for t in tables if "redshift" in t.columns and len(t)]  # fmt: skip
    ranges = pd.concat(parts).groupby("zbin")["z"].agg(["min", "max"]) if parts else None
    labels = {}
    for k in range(1, n + 1):
        if edges is not None and k < len(edges):
            labels[k] = f"${edges[k - 1]:g} < z \\leq {edges[k]:g}$"
        elif ranges is not None and k in ranges.index:
            labels[k] = f"bin {k}: ${ranges.at[k, 'min']:.2f} \\leq z \\leq {ranges.at[k, 'max']:.2f}$"
        else:
            labels[k] = f"redshift bin {k}"
    return {k: tuple(colours[k - 1]) for k in range(1, n + 1)}, labels


def _bias_panel(
    ax: Axes,
    m_x: NDArray[np.float64],
    b: NDArray[np.float64],
    zbin: NDArray[np.int64],
    *,
    n_bins: int,
    n_points: int | None,
    rng: np.random.Generator,
    colours: Mapping[int, tuple[float, ...]],
    zlabels: Mapping[int, str],
    ylim: tuple[float, float],
) -> None:
    """Points per redshift bin (at most ``n_points`` each, drawn with ``rng``), the median of b and its
    16th-84th band in equal-count bins of ``m_x`` [Msun], and lines at 0 and +-0.2."""
    for k in np.unique(zbin):
        idx = np.flatnonzero(zbin == k)
        if n_points is not None and idx.size > n_points:
            idx = np.sort(rng.choice(idx, size=n_points, replace=False))
        ax.scatter(m_x[idx], b[idx], s=6, color=colours[int(k)], alpha=0.5, lw=0, zorder=1,
                   label=f"{zlabels[int(k)]} ({idx.size} shown)", gid=f"zbin{int(k)}")  # fmt: skip
    if m_x.size:
        stats = equal_count_bins(m_x, b, min(n_bins, m_x.size))
        ax.fill_between(stats["x_median"], stats["p16"], stats["p84"], color="0.2", alpha=0.25, lw=0, zorder=2,
                        label="16th-84th percentiles", gid="band")  # fmt: skip
        ax.plot(stats["x_median"], stats["median"], "o-", color="k", ms=3, zorder=3, label="median", gid="median")
    else:
        ax.text(0.5, 0.5, "no clusters", transform=ax.transAxes, ha="center", va="center")
    ax.axhline(0.0, color="0.3", lw=0.8, zorder=0)
    for y in (-0.2, 0.2):
        ax.axhline(y, color="0.3", lw=0.8, ls="--", zorder=0, label=r"$\pm 20\%$" if y > 0 else None)
    ax.set_xscale("log")
    ax.set_ylim(*ylim)


def _bias_figure(
    panels: Sequence[tuple[str, pd.DataFrame]],
    ref: str,
    ylabel: str,
    *,
    n_bins: int,
    n_points: int | None,
    seed: int,
    edges: Sequence[float] | None,
    ylim: tuple[float, float],
) -> Figure:
    """One :func:`_bias_panel` per (title, table): (M_CNN - M_ref) / M_CNN against M_CNN [Msun], with
    M_ref from column ``ref`` [log10 Msun], side by side with a shared y axis labelled ``ylabel``; points
    drawn with one ``numpy.random.default_rng(seed)``, panels in order."""
    colours, zlabels = _zbin_styles([t for _, t in panels], edges)
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(4.8 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (title, t) in zip(axes, panels, strict=True):
        cnn = t["log10_M_cnn"].to_numpy(float)
        b = relative_bias(cnn, t[ref].to_numpy(float))
        _bias_panel(ax, 10.0**cnn, b, t["zbin"].to_numpy().astype(np.int64), n_bins=n_bins, n_points=n_points,
                    rng=rng, colours=colours, zlabels=zlabels, ylim=ylim)  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel(M_CNN_LABEL)
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize="x-small", loc="lower right")
    return fig


def figure1(
    tables: Mapping[str, pd.DataFrame],
    *,
    n_bins: int = 10,
    n_points: int = 200,
    seed: int = 0,
    edges: Sequence[float] | None = None,
    ylim: tuple[float, float] = (-1.0, 1.0),
) -> Figure:
    """Figure 1: b_t = (M_CNN - M_true) / M_CNN against M_CNN [Msun], one panel per data set (``tables``:
    e.g. "clean", "planck" -> predictions table). Median and 16th-84th band in ``n_bins`` equal-count bins
    of M_CNN (all redshifts; fewer bins if a table has fewer maps), and ``n_points`` maps per redshift bin
    drawn at random (``numpy.random.default_rng(seed)``, panels in order, bins ascending) as points coloured
    by bin (``edges``: redshift-bin edges for the legend). Points outside ``ylim`` are clipped."""
    if not tables:
        raise ValueError("figure1: no prediction tables given")
    for name, t in tables.items():
        _check_table(t, PREDICTION_COLUMNS, f"figure1: table {name!r}")
    panels = [(f"{name} ({len(t)} maps)", t) for name, t in tables.items()]
    return _bias_figure(panels, "log10_M_true", B_T_LABEL, n_bins=n_bins, n_points=n_points, seed=seed, edges=edges,
                        ylim=ylim)  # fmt: skip


def figure2(
    sky: pd.DataFrame,
    *,
    n_bins: int = 10,
    seed: int = 0,
    n_points: int | None = None,
    edges: Sequence[float] | None = None,
    ylim: tuple[float, float] = (-1.0, 1.0),
) -> Figure:
    """Figure 2: b_P = (M_CNN - M_SZ) / M_CNN of the sky's clusters against M_CNN [Msun], as the paper plots
    it, two panels: all clusters and the Golden sample. Median and 16th-84th band in ``n_bins`` equal-count
    bins of M_CNN in each panel (the paper: 10 bins, 109 of its 1094 clusters per bin; the count per bin
    scales with the sample); every cluster as a point coloured by redshift bin (or ``n_points`` per bin
    drawn with ``seed``). Binning in M_CNN, not M_SZ, keeps the trend free of the regression dilution that
    binning in the noisier mass would bring."""
    _check_table(sky, SKY_COLUMNS, "figure2: sky table")
    golden = _golden(sky, "figure2: sky table")
    panels = [(f"{title} ({len(part)} clusters)", part) for title, part in (("all clusters", sky),
                                                                            ("Golden sample", sky[golden]))]  # fmt: skip
    return _bias_figure(panels, "log10_MSZ", B_P_LABEL, n_bins=n_bins, n_points=n_points, seed=seed, edges=edges,
                        ylim=ylim)  # fmt: skip


def figure3(
    experiment: pd.DataFrame,
    sky: pd.DataFrame,
    *,
    n_bins: int = 10,
    ylim: tuple[float, float] = (-1.0, 1.0),
) -> Figure:
    """Figure 3, the paper's experiment: for each Y-M line of ``experiment``
    (:func:`szmass.evaluate.ym_experiment`: columns line, log10_M_cnn, b), the median (gid "line:<label>")
    and 16th-84th band (gid "band:<label>") of b = (M_CNN - M_SZ) / M_CNN of the simulated maps in
    ``n_bins`` equal-count bins of M_CNN [Msun]; over them the sky's b_P medians with 16th-84th error bars in
    ``n_bins`` equal-count bins of M_CNN (gid "sky"; ``sky``: log10_M_cnn, log10_MSZ)."""
    for c in ("line", "log10_M_cnn", "b"):
        if c not in experiment.columns:
            raise ValueError(f"figure3: experiment table: column {c!r} missing; the table has {list(experiment.columns)}")
    _check_table(sky, ("log10_MSZ", "log10_M_cnn"), "figure3: sky table")
    if len(sky) == 0 or len(experiment) == 0:
        raise ValueError(f"figure3: need simulated maps and sky clusters, got {len(experiment)} and {len(sky)} rows")
    fig = Figure(figsize=(5.6, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for (label, part), colour in zip(experiment.groupby("line", sort=False), ("tab:blue", "tab:red", "tab:green") * 4,
                                     strict=False):  # fmt: skip
        stats = equal_count_bins(10.0 ** part["log10_M_cnn"].to_numpy(float), part["b"].to_numpy(float),
                                 min(n_bins, len(part)))  # fmt: skip
        ax.fill_between(stats["x_median"], stats["p16"], stats["p84"], color=colour, alpha=0.2, lw=0,
                        gid=f"band:{label}")  # fmt: skip
        ax.plot(stats["x_median"], stats["median"], "-", color=colour, lw=1.5, label=f"{label} ({len(part)} maps)",
                gid=f"line:{label}")  # fmt: skip
    cnn = sky["log10_M_cnn"].to_numpy(float)
    b = relative_bias(cnn, sky["log10_MSZ"].to_numpy(float))
    stats = equal_count_bins(10.0**cnn, b, min(n_bins, cnn.size))
    med = stats["median"].to_numpy()
    yerr = np.vstack([med - stats["p16"].to_numpy(), stats["p84"].to_numpy() - med])
    ax.errorbar(stats["x_median"], med, yerr=yerr, fmt="o", color="k", capsize=3,
                label=f"sky $b_P$ ({len(sky)} clusters)", gid="sky")  # fmt: skip
    ax.axhline(0.0, color="0.3", lw=0.8, zorder=0)
    ax.set_xscale("log")
    ax.set_ylim(*ylim)
    ax.set_xlabel(M_CNN_LABEL)
    ax.set_ylabel(r"$(M_{\rm CNN} - M_{\rm SZ}) / M_{\rm CNN}$")
    ax.legend(fontsize="x-small")
    return fig


def _map_panel(ax: Axes, image: NDArray, pixel_arcmin: float, *, label: str, **imshow) -> None:
    """``image`` (py, px) with the map centre at (0, 0), axes in arcmin, its own colour bar labelled ``label``."""
    py, px = image.shape
    extent = (-px / 2 * pixel_arcmin, px / 2 * pixel_arcmin, -py / 2 * pixel_arcmin, py / 2 * pixel_arcmin)
    im = ax.imshow(image, origin="lower", extent=extent, interpolation="nearest", **imshow)
    ax.figure.colorbar(im, ax=ax, label=label, shrink=0.85)
    ax.set_xlabel(OFFSET_X_LABEL)
    ax.set_ylabel(OFFSET_Y_LABEL)


def _coverage_line(key: str, value: float) -> str:
    m = re.fullmatch(r"coverage_(\d+)", key)
    if m:
        return f"{m.group(1)}% interval: coverage {value:.3f}"
    return f"{key}: {value:.3f}"


def pit_histogram(pit: ArrayLike, coverage: Mapping[str, float] | None = None, *, n_bins: int = 10) -> Figure:
    """Histogram of probability-integral-transform values (in [0, 1]) in ``n_bins`` equal bins (bars: gid "pit"),
    with the uniform expectation N / n_bins (gid "expected") and its +-1 sigma binomial band
    sqrt(N p (1 - p)), p = 1 / n_bins (gid "band"); ``coverage`` (e.g. coverage_68, coverage_95 ->
    fraction of truths inside the central interval) written in the panel (gid "coverage")."""
    u = np.asarray(pit, dtype=float).ravel()
    if u.size == 0 or not np.all(np.isfinite(u)) or np.any((u < 0) | (u > 1)):
        raise ValueError("pit_histogram: need >= 1 finite PIT value(s) in [0, 1]")
    if n_bins < 1:
        raise ValueError(f"pit_histogram: n_bins must be >= 1, got {n_bins}")
    counts, bin_edges = np.histogram(u, bins=n_bins, range=(0.0, 1.0))
    p = 1.0 / n_bins
    expected, sigma = u.size * p, np.sqrt(u.size * p * (1.0 - p))
    fig = Figure(figsize=(5.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar(bin_edges[:-1], counts, width=np.diff(bin_edges), align="edge", color="tab:blue", alpha=0.7,
                  edgecolor="k", lw=0.5, label=f"test maps ({u.size})")  # fmt: skip
    for patch in bars.patches:
        patch.set_gid("pit")
    ax.fill_between([0.0, 1.0], expected - sigma, expected + sigma, color="0.5", alpha=0.3, lw=0,
                    label=r"uniform $\pm 1\sigma$ (binomial)", gid="band")  # fmt: skip
    ax.axhline(expected, color="k", ls="--", lw=1.0, label="uniform", gid="expected")
    if coverage:
        text = "\n".join(_coverage_line(k, float(v)) for k, v in coverage.items())
        ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", ha="left", fontsize="small", gid="coverage")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, max(counts.max(), expected + sigma) * 1.5)
    ax.set_xlabel("PIT of the true mass under the posterior")
    ax.set_ylabel("number of maps per bin")
    ax.legend(fontsize="small", loc="upper right")
    return fig


def saliency_figure(
    maps: ArrayLike,
    saliency: ArrayLike,
    titles: Sequence[str] | None = None,
    *,
    pixel_arcmin: float = PIXEL_ARCMIN,
    r500_pixels: ArrayLike | None = None,
) -> Figure:
    """One row per example: the Compton-y map (left) and its saliency (right, normalised |dM/dy| of
    :func:`szmass.saliency.saliency_maps`), each with a colour bar; axes in arcmin. ``maps`` and
    ``saliency``: (k, py, px); ``titles``: one per example; with ``r500_pixels`` (k,), a circle at R500."""
    y = np.asarray(maps, dtype=float)
    s = np.asarray(saliency, dtype=float)
    if y.ndim != 3 or y.shape != s.shape or y.shape[0] == 0:
        raise ValueError(f"saliency_figure: need maps and saliency of equal shape (k >= 1, py, px), got {y.shape}, "
                         f"{s.shape}")  # fmt: skip
    k = y.shape[0]
    titles = list(titles) if titles is not None else [f"example {i + 1}" for i in range(k)]
    if len(titles) != k:
        raise ValueError(f"saliency_figure: {len(titles)} titles for {k} examples")
    radii = None if r500_pixels is None else np.broadcast_to(np.asarray(r500_pixels, dtype=float), (k,))
    fig = Figure(figsize=(9.0, 3.8 * k), layout="constrained")
    axes = fig.subplots(k, 2, squeeze=False)
    for i in range(k):
        _map_panel(axes[i, 0], y[i], pixel_arcmin, label="Compton y", cmap="magma")
        _map_panel(axes[i, 1], s[i], pixel_arcmin, label=r"saliency $|\partial M / \partial y|$ / max",
                   cmap="inferno", vmin=0.0)  # fmt: skip
        axes[i, 0].set_title(titles[i], fontsize="small")
        axes[i, 1].set_title("saliency", fontsize="small")
        if radii is not None:
            for ax in axes[i]:
                ax.add_patch(Circle((0.0, 0.0), radii[i] * pixel_arcmin, fill=False, color="c", ls="--",
                                    label=r"$R_{500}$"))  # fmt: skip
            axes[i, 1].legend(fontsize="x-small", loc="upper right")
    return fig


def saliency_profile(profile: pd.DataFrame) -> Figure:
    """Radial profile of normalised saliency (:func:`szmass.saliency.radial_profile`): the median over maps
    (gid "median") and the 16th-84th band (gid "band") against r / R500; annuli without maps are skipped."""
    missing = [c for c in ("r_mid", "median", "p16", "p84") if c not in profile.columns]
    if missing:
        raise ValueError(f"saliency_profile: column(s) {missing} missing; the table has {list(profile.columns)}")
    rows = profile.dropna(subset=["median", "p16", "p84"])
    if len(rows) == 0:
        raise ValueError("saliency_profile: no annulus has any map")
    fig = Figure(figsize=(5.2, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.fill_between(rows["r_mid"], rows["p16"], rows["p84"], color="tab:red", alpha=0.25, lw=0,
                    label="16th-84th percentiles", gid="band")  # fmt: skip
    ax.plot(rows["r_mid"], rows["median"], "o-", color="tab:red", ms=3, label="median over maps", gid="median")
    ax.axvline(1.0, color="0.4", ls=":", lw=1.0, label=r"$R_{500}$")
    ax.set_xlim(left=0.0)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel(r"$r / R_{500}$")
    ax.set_ylabel(r"mean normalised saliency $|\partial M / \partial y|$ / max")
    ax.legend(fontsize="small")
    return fig


def validation_boxplot(losses: Mapping[str, ArrayLike]) -> Figure:
    """Hyperparameter scan: a box per configuration (``losses``: label -> best validation loss of each
    seeded run, MSE of log10 M [dex^2]) with the runs as points (gid "runs:label"); the median lines carry
    gid "median:label"."""
    if not losses:
        raise ValueError("validation_boxplot: no configurations given")
    labels = list(losses)
    values = [np.asarray(losses[k], dtype=float).ravel() for k in labels]
    for label, v in zip(labels, values, strict=True):
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise ValueError(f"validation_boxplot: configuration {label!r} needs >= 1 finite loss value(s)")
    fig = Figure(figsize=(max(4.5, 1.1 * len(labels) + 2.0), 4.0), layout="constrained")
    ax = fig.add_subplot()
    box = ax.boxplot(values, tick_labels=labels, widths=0.5, showfliers=False, medianprops={"color": "tab:red"})
    for line, label in zip(box["medians"], labels, strict=True):
        line.set_gid(f"median:{label}")
    box["medians"][0].set_label("median")
    for i, (label, v) in enumerate(zip(labels, values, strict=True), start=1):
        ax.scatter(np.full(v.size, i), v, s=10, color="k", alpha=0.6, zorder=3, gid=f"runs:{label}",
                   label="seeded runs" if i == 1 else None)  # fmt: skip
    ax.set_ylabel(r"best validation loss, MSE of $\log_{10} M$ [dex$^2$]")
    ax.set_xlabel("configuration")
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(fontsize="small")
    return fig


def posterior_examples(
    grid: ArrayLike, pdfs: ArrayLike, titles: Sequence[str], markers: Sequence[Mapping[str, float]] | None = None
) -> Figure:
    """Posteriors p(log10 M500 | M_CNN) of a few clusters, one panel each: the density ``pdfs[i]`` [per dex] on
    ``grid`` [log10 Msun] (gid "posterior"), and per panel vertical lines at ``markers[i]`` (label -> log10 M
    [Msun], e.g. M_CNN, M_SZ, the truth; gid "marker:<label>")."""
    x = np.asarray(grid, dtype=float)
    p = np.atleast_2d(np.asarray(pdfs, dtype=float))
    if x.ndim != 1 or p.shape[1:] != x.shape or len(titles) != len(p) or (markers is not None and len(markers) != len(p)):
        raise ValueError(f"posterior_examples: need pdfs (n, {x.size}) for the grid and n titles (and markers), got "
                         f"pdfs {p.shape}, {len(titles)} titles")  # fmt: skip
    ncol = min(3, len(p))
    nrow = -(-len(p) // ncol)
    fig = Figure(figsize=(3.6 * ncol, 2.8 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    styles = ("--", ":", "-.")
    for i, ax in enumerate(axes):
        if i >= len(p):
            ax.set_visible(False)
            continue
        ax.plot(x, p[i], color="k", lw=1.2, label="posterior", gid="posterior")
        for k, (label, value) in enumerate((markers[i] if markers else {}).items()):
            if np.isfinite(value):
                ax.axvline(value, ls=styles[k % len(styles)], color=f"C{k}", label=label, gid=f"marker:{label}")
        ax.set_title(titles[i], fontsize="small")
        ax.set_xlabel(r"$\log_{10} M_{500}\ [M_\odot]$")
        ax.set_ylabel("density [dex$^{-1}$]")
    axes[0].legend(fontsize="x-small")
    return fig


def _bin_panels(n: int, width: float = 3.6, height: float = 3.2) -> tuple[Figure, list[Axes]]:
    """A Figure with ``n`` panels in rows of at most four."""
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def learning_curves(
    histories: Mapping[str, Mapping[str, pd.DataFrame]], selected: Mapping[str, str] | None = None, mass: str = "M500"
) -> Figure:
    """Training and validation loss (MSE of log10 of the networks' target ``mass``, e.g. M500 or M200 [dex^2])
    against epoch of every run, one panel per redshift bin (``histories``: bin label -> run label -> its
    ``history.csv`` table with epoch, loss, val_loss). Each run's training loss is a thin solid line (gid
    "loss:<bin>:<run>"), its validation loss a dashed one ("val_loss:<bin>:<run>"); the run ``selected[bin]`` is
    drawn in black on top."""
    if not histories:
        raise ValueError("learning_curves: no histories given")
    selected = dict(selected or {})
    fig, axes = _bin_panels(len(histories))
    for ax, (zlabel, runs) in zip(axes, histories.items(), strict=True):
        for k, (run, h) in enumerate(runs.items()):
            _check_table(h, ("epoch", "loss", "val_loss"), f"learning_curves: {zlabel} {run}")
            chosen = run == selected.get(zlabel)
            colour = "k" if chosen else f"C{k % 10}"
            style: dict[str, Any] = {"lw": 1.4 if chosen else 0.7, "alpha": 1.0 if chosen else 0.6, "zorder": 3 if chosen else 2}
            ax.plot(h["epoch"], h["loss"], "-", color=colour, gid=f"loss:{zlabel}:{run}", **style,
                    label="training (selected)" if chosen else None)  # fmt: skip
            ax.plot(h["epoch"], h["val_loss"], "--", color=colour, gid=f"val_loss:{zlabel}:{run}", **style,
                    label="validation (selected)" if chosen else None)  # fmt: skip
        ax.set_yscale("log")
        ax.set_title(f"{zlabel} ({len(runs)} runs)", fontsize="small")
        ax.set_xlabel("epoch")
        ax.set_ylabel(rf"MSE of $\log_{{10}} M_{{{mass[1:]}}}$ [dex$^2$]")
        if zlabel in selected:
            ax.legend(fontsize="x-small")
    return fig


def predicted_vs_true(tests: pd.DataFrame, *, edges: Sequence[float] | None = None) -> Figure:
    """log10 M_CNN against log10 M_true [Msun] of test maps (``tests``: zbin, log10_M_true, log10_M_cnn), one panel
    per redshift bin (gid "points:<bin>"), with the identity line and the mean and standard deviation (ddof 1) of
    log10 M_CNN - log10 M_true [dex] in the title. ``edges``: redshift-bin edges for the titles."""
    _check_table(tests, PREDICTION_COLUMNS, "predicted_vs_true: test table")
    if len(tests) == 0:
        raise ValueError("predicted_vs_true: the test table is empty")
    bins = sorted(int(b) for b in tests["zbin"].unique())
    colours, zlabels = _zbin_styles([tests], edges)
    lo = float(min(tests["log10_M_true"].min(), tests["log10_M_cnn"].min())) - 0.05
    hi = float(max(tests["log10_M_true"].max(), tests["log10_M_cnn"].max())) + 0.05
    fig, axes = _bin_panels(len(bins), width=3.4, height=3.4)
    for ax, b in zip(axes, bins, strict=True):
        part = tests[tests["zbin"] == b]
        r = part["log10_M_cnn"].to_numpy(float) - part["log10_M_true"].to_numpy(float)
        ax.scatter(part["log10_M_true"], part["log10_M_cnn"], s=5, lw=0, alpha=0.6, color=colours[b], gid=f"points:{b}")
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, zorder=0)
        std = f"{r.std(ddof=1):.3f}" if r.size > 1 else "n/a"
        ax.set_title(f"{zlabels[b]}: {len(part)} maps\nmean {r.mean():+.3f}, std {std} dex", fontsize="small")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel(r"$\log_{10}(M_{\rm true} / M_\odot)$")
        ax.set_ylabel(r"$\log_{10}(M_{\rm CNN} / M_\odot)$")
    return fig
