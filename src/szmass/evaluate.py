"""Bias statistics of CNN masses: the paper's Supplementary Tables 1 and 2, the binned curves of Figures 1-3 and the
Figure 3 experiment (Y-M masses of simulated clusters against their CNN masses).

Relative bias (de Andres et al. 2022): b = (M_CNN - M_ref) / M_CNN, with M_ref the true mass (b_t, mocks
and a synthetic sky) or the Planck mass M_SZ (b_P, the real sky). Summaries are the median, the 16th and
84th percentiles (numpy's default linear interpolation) and the standard error of the mean,
std(b, ddof=1) / sqrt(N). The log residual r = log10 M_CNN - log10 M_ref [dex] is summarised by its mean,
std (ddof = 1), skewness and excess kurtosis (bias-corrected sample estimators, see
:func:`log_residual_moments`).

The tables' 68% intervals of the median b and of the mean and std of r are bootstraps over CLUSTERS
(:func:`cluster_bootstrap`): a cluster has several correlated maps (lines of sight, snapshots), so maps are
resampled together with their cluster, not one by one.

Tables take one row per map or cluster with log10 masses [Msun] and a redshift-bin column (1-based
integers as :func:`szmass.zbins.redshift_bins` gives; rows are labelled "z1", "z2", ..., plus "all").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import xarray as xr
from astropy.cosmology import FLRW
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from szmass.cosmology import r500_pixels
from szmass.scaling import ALPHA_THE300, FIGURE3_LINES, YMLine, ym_line_masses

HIGH_MASS = 5e14
"""Default upper mass selection of Supplementary Table 2: M_CNN > 5e14 Msun."""
LOW_MASS = 3e14
"""Default lower mass selection of Supplementary Table 2: M_CNN < 3e14 Msun."""
BIAS_COLUMNS = ("zbin", "mass_range", "median", "median_lo", "median_hi", "p16", "p84", "stderr", "n", "n_clusters")
MOMENT_COLUMNS = ("zbin", "mean", "mean_lo", "mean_hi", "std", "std_lo", "std_hi", "skewness", "kurtosis", "n",
                  "n_clusters")  # fmt: skip
N_BOOT = 1000
"""Default number of cluster-bootstrap resamples of the tables' 68% intervals."""
BOOTSTRAP_STATISTICS: dict[str, Callable[..., ArrayLike]] = {
    "mean": np.nanmean, "median": np.nanmedian, "std": partial(np.nanstd, ddof=1)}  # fmt: skip
"""NaN-ignoring row reductions ``f(x, axis=1)`` that :func:`cluster_bootstrap` accepts by name."""


def _pair(log10_m_a: ArrayLike, log10_m_b: ArrayLike, names: tuple[str, str]) -> tuple[NDArray, NDArray]:
    a = np.asarray(log10_m_a, dtype=float)
    b = np.asarray(log10_m_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}")
    bad = ~(np.isfinite(a) & np.isfinite(b))
    if np.any(bad):
        raise ValueError(f"{names[0]} / {names[1]}: {int(bad.sum())} non-finite log10 mass(es), "
                         f"first at index {int(np.flatnonzero(bad.ravel())[0])}")
    return a, b


def relative_bias(log10_m_cnn: ArrayLike, log10_m_ref: ArrayLike) -> NDArray[np.float64]:
    """b = (M_CNN - M_ref) / M_CNN = 1 - 10**(log10 M_ref - log10 M_CNN) (dimensionless) from log10 masses
    [Msun] of equal shape; computed with expm1 so that small biases keep full precision."""
    cnn, ref = _pair(log10_m_cnn, log10_m_ref, ("log10_m_cnn", "log10_m_ref"))
    return -np.expm1((ref - cnn) * np.log(10.0))


def bias_summary(b: ArrayLike) -> dict[str, float | int]:
    """Median, 16th / 84th percentiles (linear interpolation) and standard error of the mean
    std(b, ddof=1) / sqrt(N) of the values ``b``, with their number ``n``.

    An empty input gives NaN statistics and n = 0; a single value has NaN stderr. NaN values are an error
    (drop them explicitly beforehand)."""
    v = np.asarray(b, dtype=float).ravel()
    if np.any(np.isnan(v)):
        raise ValueError(f"bias_summary: {int(np.isnan(v).sum())} NaN value(s) among {v.size}")
    n = int(v.size)
    if n == 0:
        return {"median": np.nan, "p16": np.nan, "p84": np.nan, "stderr": np.nan, "n": 0}
    p16, median, p84 = np.percentile(v, [16.0, 50.0, 84.0])
    stderr = float(np.std(v, ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    return {"median": float(median), "p16": float(p16), "p84": float(p84), "stderr": stderr, "n": n}


_BOOT_BLOCK = 4_000_000
"""Resampled rows :func:`cluster_bootstrap` holds at once (about 32 MB of float64 per block)."""


def _resampled(ordered: NDArray[np.float64], starts: NDArray, sizes: NDArray, draws: NDArray) -> NDArray[np.float64]:
    """The resamples ``draws`` (resamples, drawn clusters) as rows of a NaN-padded array: the values of the
    drawn clusters (cluster c: ordered[starts[c]:starts[c] + sizes[c]]) in draw order, built without a loop."""
    length = sizes[draws].ravel()  # rows each drawn cluster contributes
    total = length.reshape(draws.shape).sum(axis=1)  # rows of each resample
    offset = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)  # row within its cluster
    source = np.repeat(starts[draws].ravel(), length) + offset
    column = np.arange(total.sum()) - np.repeat(np.cumsum(total) - total, total)
    padded = np.full((draws.shape[0], int(total.max())), np.nan)
    padded[np.repeat(np.arange(draws.shape[0]), total), column] = ordered[source]
    return padded


def cluster_bootstrap(
    values: ArrayLike,
    clusters: ArrayLike | None,
    statistic: str | Callable[..., ArrayLike],
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    percentiles: tuple[float, float] = (16.0, 84.0),
) -> tuple[float, float]:
    """The 16th and 84th percentiles (``percentiles``) of ``statistic`` over ``n_boot`` bootstrap resamples
    of the CLUSTERS of ``values`` (one value per row, finite; same units as the statistic).

    ``clusters`` labels each row (any hashable values; None: each row its own cluster, the ordinary
    bootstrap). A resample draws as many clusters as there are, uniformly with replacement from
    ``numpy.random.default_rng(seed)``, and takes all the rows of each drawn cluster. ``statistic`` is
    "mean", "median", "std" (ddof = 1) or a callable ``f(x, axis=1)`` reducing each row of a
    (resamples, rows) array padded with NaN, ignoring the NaNs (e.g. ``np.nanmedian``). Resamples whose
    statistic is NaN (the std of one value) are left out of the percentiles. Fewer than 2 clusters give
    (NaN, NaN)."""
    v = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(v)):
        raise ValueError(f"cluster_bootstrap: {int((~np.isfinite(v)).sum())} non-finite value(s) among {v.size}")
    labels = np.arange(v.size) if clusters is None else np.asarray(clusters).ravel()
    if labels.shape != v.shape:
        raise ValueError(f"cluster_bootstrap: {labels.size} cluster labels for {v.size} values")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"cluster_bootstrap: n_boot must be a positive integer, got {n_boot!r}")
    reduce = BOOTSTRAP_STATISTICS[statistic] if isinstance(statistic, str) else statistic
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    k = sizes.size
    if k < 2:
        return float("nan"), float("nan")
    ordered = v[np.argsort(inverse.ravel(), kind="stable")]  # cluster c: ordered[starts[c]:starts[c] + sizes[c]]
    starts = np.cumsum(sizes) - sizes
    draws = np.random.default_rng(seed).integers(0, k, size=(int(n_boot), k))
    blocks = np.array_split(draws, max(1, int(n_boot) * v.size // _BOOT_BLOCK))  # bounded memory, same draws
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # std of a single value: NaN, left out below
        stat = np.concatenate([np.asarray(reduce(_resampled(ordered, starts, sizes, d), axis=1), dtype=float)
                               for d in blocks])  # fmt: skip
        if not np.any(np.isfinite(stat)):
            return float("nan"), float("nan")
        lo, hi = np.nanpercentile(stat, percentiles)
    return float(lo), float(hi)


def log_residual_moments(log10_m_cnn: ArrayLike, log10_m_true: ArrayLike) -> dict[str, float | int]:
    """Moments of r = log10 M_CNN - log10 M_true [dex]: ``mean``; ``std`` (ddof = 1); ``skewness``
    (``scipy.stats.skew(r, bias=False)``, the adjusted Fisher-Pearson G1, NaN for n < 3); ``kurtosis``
    (``scipy.stats.kurtosis(r, fisher=True, bias=False)``, the bias-corrected EXCESS kurtosis G2, 0 for a
    Gaussian, NaN for n < 4); and ``n``. Empty input gives NaNs and n = 0."""
    cnn, true = _pair(log10_m_cnn, log10_m_true, ("log10_m_cnn", "log10_m_true"))
    r = (cnn - true).ravel()
    n = int(r.size)
    nan = float("nan")
    return {
        "mean": float(r.mean()) if n else nan,
        "std": float(r.std(ddof=1)) if n > 1 else nan,
        "skewness": float(stats.skew(r, bias=False)) if n > 2 else nan,
        "kurtosis": float(stats.kurtosis(r, fisher=True, bias=False)) if n > 3 else nan,
        "n": n,
    }


def _check_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: column(s) {missing} missing; the table has {list(table.columns)}")


def _bin_label(value: object) -> str:
    """"z3" for a bin index 3 (int, float or numeric string); other labels unchanged."""
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return f"z{int(f)}" if f.is_integer() else str(value)


def _redshift_groups(table: pd.DataFrame, zbin: str | None) -> Iterator[tuple[str, pd.DataFrame]]:
    """(label, rows) for each redshift bin in ascending order, then ("all", table)."""
    if zbin is not None:
        if table[zbin].isna().any():
            raise ValueError(f"column {zbin!r}: {int(table[zbin].isna().sum())} missing redshift bin(s)")
        for value, part in table.groupby(zbin, sort=True):
            yield _bin_label(value), part
    yield "all", table


def _mass_label(mass: float) -> str:
    return f"{mass:g}".replace("e+", "e")


def _cluster_labels(table: pd.DataFrame, clusters: str | None) -> NDArray:
    """The cluster label of every row: column ``clusters`` (no missing value), or the row position (None)."""
    if clusters is None:
        return np.arange(len(table))
    if table[clusters].isna().any():
        raise ValueError(f"column {clusters!r}: {int(table[clusters].isna().sum())} missing cluster label(s)")
    return table[clusters].to_numpy()


def bias_table(
    table: pd.DataFrame,
    *,
    ref: str,
    cnn: str = "log10_M_cnn",
    zbin: str | None = "zbin",
    high_mass: float = HIGH_MASS,
    low_mass: float = LOW_MASS,
    clusters: str | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """Supplementary Table 2: :func:`bias_summary` of b = (M_CNN - M_ref) / M_CNN (dimensionless) for every
    redshift bin (values of column ``zbin`` as "z1", "z2", ..., then "all"; ``zbin=None`` gives "all" only)
    times the mass selections "all", "M_CNN>{high_mass}" and "M_CNN<{low_mass}" (strict cuts on
    10**table[cnn] in Msun, labels such as "M_CNN>5e14"). ``ref`` and ``cnn`` name log10 mass columns [Msun].

    median_lo, median_hi: the 68% interval of the median b, :func:`cluster_bootstrap` of the selection's
    clusters (column ``clusters`` labels each row's cluster; None: each row its own cluster) with ``n_boot``
    resamples from ``seed``; n_clusters: the distinct clusters of the selection.

    Columns: zbin, mass_range, median, median_lo, median_hi, p16, p84, stderr, n, n_clusters; an empty
    selection has NaNs and n = n_clusters = 0, a selection of one cluster NaN intervals.
    """
    if not high_mass > 0 or not low_mass > 0:
        raise ValueError(f"mass cuts must be > 0 Msun, got high_mass={high_mass!r}, low_mass={low_mass!r}")
    _check_columns(table, [cnn, ref] + [c for c in (zbin, clusters) if c is not None], "bias_table")
    work = pd.DataFrame({"b": relative_bias(table[cnn].to_numpy(float), table[ref].to_numpy(float)),
                         "m_cnn": 10.0 ** table[cnn].to_numpy(float), "cluster": _cluster_labels(table, clusters)})
    if zbin is not None:
        work["zbin"] = table[zbin].to_numpy()
    rows = []
    for label, part in _redshift_groups(work, None if zbin is None else "zbin"):
        b, m, c = part["b"].to_numpy(), part["m_cnn"].to_numpy(), part["cluster"].to_numpy()
        cuts = (("all", np.ones(b.size, dtype=bool)), (f"M_CNN>{_mass_label(high_mass)}", m > high_mass),
                (f"M_CNN<{_mass_label(low_mass)}", m < low_mass))
        for name, keep in cuts:
            lo, hi = cluster_bootstrap(b[keep], c[keep], "median", n_boot=n_boot, seed=seed)
            rows.append({"zbin": label, "mass_range": name, "median_lo": lo, "median_hi": hi,
                         "n_clusters": len(pd.unique(c[keep]))} | bias_summary(b[keep]))  # fmt: skip
    return pd.DataFrame(rows, columns=list(BIAS_COLUMNS))


def moments_table(
    table: pd.DataFrame,
    *,
    ref: str,
    cnn: str = "log10_M_cnn",
    zbin: str | None = "zbin",
    clusters: str | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """Supplementary Table 1: :func:`log_residual_moments` of r = log10 M_CNN - log10 M_ref [dex] per redshift
    bin ("z1", "z2", ...) and for "all" rows. mean_lo, mean_hi and std_lo, std_hi [dex]: 68% intervals of the
    mean and std of r, :func:`cluster_bootstrap` of the clusters as in :func:`bias_table` (``clusters``,
    ``n_boot``, ``seed``); n_clusters: the distinct clusters. Columns: zbin, mean, mean_lo, mean_hi, std,
    std_lo, std_hi, skewness, kurtosis, n, n_clusters."""
    _check_columns(table, [cnn, ref] + [c for c in (zbin, clusters) if c is not None], "moments_table")
    work = table.assign(_cluster=_cluster_labels(table, clusters))
    rows = []
    for label, part in _redshift_groups(work, zbin):
        cnn_m, ref_m, c = part[cnn].to_numpy(float), part[ref].to_numpy(float), part["_cluster"].to_numpy()
        moments = log_residual_moments(cnn_m, ref_m)  # checks the masses first
        (mean_lo, mean_hi), (std_lo, std_hi) = (cluster_bootstrap(cnn_m - ref_m, c, s, n_boot=n_boot, seed=seed)
                                                for s in ("mean", "std"))  # fmt: skip
        rows.append({"zbin": label, "mean_lo": mean_lo, "mean_hi": mean_hi, "std_lo": std_lo, "std_hi": std_hi,
                     "n_clusters": len(pd.unique(c))} | moments)  # fmt: skip
    return pd.DataFrame(rows, columns=list(MOMENT_COLUMNS))


def equal_count_bins(x: ArrayLike, y: ArrayLike, n_bins: int) -> pd.DataFrame:
    """Median, 16th and 84th percentiles of ``y`` in ``n_bins`` equal-count bins of ``x`` (lowest x first).

    The binning is the one of the model selection (:func:`szmass.select.relative_error_bins`): points
    sorted by x (stable sort) and cut into consecutive groups whose sizes differ by at most one
    (``numpy.array_split``). Columns: x_median (median of x in the bin), median, p16, p84, n.
    """
    xx = np.asarray(x, dtype=float)
    yy = np.asarray(y, dtype=float)
    if xx.shape != yy.shape or xx.ndim != 1:
        raise ValueError(f"need two 1-D arrays of equal length, got shapes {xx.shape} and {yy.shape}")
    if not (np.all(np.isfinite(xx)) and np.all(np.isfinite(yy))):
        raise ValueError("equal_count_bins: x and y must be finite")
    if int(n_bins) != n_bins or n_bins < 1 or xx.size < n_bins:
        raise ValueError(f"{xx.size} points cannot fill {n_bins!r} equal-count bins (need n_bins >= 1 points)")
    order = np.argsort(xx, kind="stable")
    rows = []
    for idx in np.array_split(order, int(n_bins)):
        p16, median, p84 = np.percentile(yy[idx], [16.0, 50.0, 84.0])
        rows.append({"x_median": float(np.median(xx[idx])), "median": float(median), "p16": float(p16),
                     "p84": float(p84), "n": int(idx.size)})
    return pd.DataFrame(rows, columns=["x_median", "median", "p16", "p84", "n"])


YM_MAP_COLUMNS = ("map", "redshift", "Y500_cyl", "Y500_sph")
YM_EXPERIMENT_COLUMNS = ("line", "alpha", "map", "zbin", "redshift", "log10_M_cnn", "log10_M_sz", "b")
PAPER_FIGURE3 = {"median": 0.04, "plus": 0.05, "minus": 0.05}
"""The paper's median and 16th/84th offsets of (M_CNN - M_SZ) / M_CNN for the slope-1.63 line of Figure 3."""


def ym_map_table(ds: xr.Dataset) -> pd.DataFrame:
    """The per-map coordinates of a map store that :func:`ym_experiment` needs: map (index in the store),
    redshift, Y500_cyl and Y500_sph [arcmin^2] (no map pixels are read)."""
    missing = [c for c in YM_MAP_COLUMNS[1:] if c not in ds.variables]
    if missing:
        raise ValueError(f"map store: coordinate(s) {missing} missing; the Figure 3 experiment needs {list(YM_MAP_COLUMNS[1:])}")
    return pd.DataFrame({"map": np.arange(ds.sizes["map"], dtype=np.int64)}
                        | {c: np.asarray(ds[c].values, dtype=float) for c in YM_MAP_COLUMNS[1:]})  # fmt: skip


def ym_experiment(
    tests: pd.DataFrame, maps: pd.DataFrame, cosmo: FLRW, lines: Sequence[YMLine] = FIGURE3_LINES
) -> pd.DataFrame:
    """The paper's Figure 3 experiment on simulated maps: for each map of ``tests`` (columns map, zbin,
    log10_M_cnn [log10 Msun]; e.g. the selected models' test predictions) and each Y-M ``line``, M_SZ from
    the map's own Y500 inside the true R500 (``maps``: one row per map-store index ``map`` with redshift,
    Y500_cyl and Y500_sph [arcmin^2]) by :func:`szmass.scaling.ym_line_masses`, and
    b = (M_CNN - M_SZ) / M_CNN. Long format, one row per map and line: line, alpha, map, zbin, redshift,
    log10_M_cnn, log10_M_sz, b."""
    _check_columns(tests, ["map", "zbin", "log10_M_cnn"], "ym_experiment: test predictions")
    _check_columns(maps, list(YM_MAP_COLUMNS), "ym_experiment: map table")
    store = maps.set_index("map")
    missing = np.setdiff1d(tests["map"].to_numpy(), store.index.to_numpy())
    if missing.size:
        raise ValueError(f"ym_experiment: {missing.size} test map(s) not in the map table, first {int(missing[0])}")
    rows = store.loc[tests["map"].to_numpy()]
    z = rows["redshift"].to_numpy(float)
    parts = []
    for line in lines:
        log_sz = np.log10(ym_line_masses(rows[line.y_column].to_numpy(float), z, cosmo, line))
        cnn = tests["log10_M_cnn"].to_numpy(float)
        values = (line.label, line.alpha, tests["map"].to_numpy(), tests["zbin"].to_numpy(), z, cnn, log_sz,
                  relative_bias(cnn, log_sz))
        parts.append(pd.DataFrame(dict(zip(YM_EXPERIMENT_COLUMNS, values, strict=True))))
    return pd.concat(parts, ignore_index=True)


def ym_experiment_summary(experiment: pd.DataFrame, sky: pd.DataFrame, *, n_bins: int) -> pd.DataFrame:
    """One row per line of :func:`ym_experiment`: the median and 16th/84th percentiles of b over all its
    maps (n), the paper's values for the THE THREE HUNDRED line (slope 1.63) (paper_median, paper_plus, paper_minus; NaN for
    other lines), and how the line follows the sky's b_P = (M_CNN - M_SZ) / M_CNN (``sky``: log10_M_cnn,
    log10_MSZ): in ``n_bins`` equal-count bins of M_CNN of the sky, the line's binned median (``n_bins``
    equal-count bins of its own maps, interpolated in log10 M_CNN, held constant beyond its first and last
    bin) against the sky's median: sky_rms_difference (root mean square of sky median - line median) and
    sky_bins_covered (how many of the sky's 16th-84th intervals hold the line's median), sky_bins."""
    _check_columns(experiment, ["line", "alpha", "log10_M_cnn", "b"], "ym_experiment_summary: experiment")
    _check_columns(sky, ["log10_M_cnn", "log10_MSZ"], "ym_experiment_summary: sky")
    sky_cnn = sky["log10_M_cnn"].to_numpy(float)
    sky_stats = equal_count_bins(sky_cnn, relative_bias(sky_cnn, sky["log10_MSZ"].to_numpy(float)),
                                 min(n_bins, sky_cnn.size))  # fmt: skip
    rows = []
    for label, part in experiment.groupby("line", sort=False):
        line_stats = equal_count_bins(part["log10_M_cnn"].to_numpy(float), part["b"].to_numpy(float),
                                      min(n_bins, len(part)))  # fmt: skip
        at_sky = np.interp(sky_stats["x_median"], line_stats["x_median"], line_stats["median"])
        covered = (sky_stats["p16"] <= at_sky) & (at_sky <= sky_stats["p84"])
        paper = PAPER_FIGURE3 if float(part["alpha"].iloc[0]) == ALPHA_THE300 else {}
        summary = bias_summary(part["b"].to_numpy(float))
        rows.append({"line": label} | {k: summary[k] for k in ("median", "p16", "p84", "n")}
                    | {f"paper_{k}": paper.get(k, np.nan) for k in ("median", "plus", "minus")}
                    | {"sky_rms_difference": float(np.sqrt(np.mean((sky_stats["median"] - at_sky) ** 2))),
                       "sky_bins_covered": int(covered.sum()), "sky_bins": len(sky_stats)})  # fmt: skip
    return pd.DataFrame(rows)


MIN_R500_PIXELS = 5.0
"""The paper compares Y500 measured on the Planck-mock maps with the high-resolution value for R500 > 5 pixels."""


def aperture_y(maps: ArrayLike, radius_pixels: ArrayLike, pixel_arcmin: float) -> NDArray[np.float64]:
    """Integrated Compton y [arcmin^2] of each map (n, py, px) inside a circle of ``radius_pixels`` (n,) about the
    map centre (pixel ((px - 1) / 2, (py - 1) / 2)): the sum of the pixels whose centres lie inside, times the
    pixel solid angle ``pixel_arcmin``^2."""
    y = np.asarray(maps, dtype=float)
    r = np.asarray(radius_pixels, dtype=float)
    if y.ndim != 3 or r.shape != (y.shape[0],):
        raise ValueError(f"aperture_y: need maps (n, py, px) and n radii, got shapes {y.shape} and {r.shape}")
    j, i = np.indices(y.shape[1:], dtype=float)
    dist = np.hypot(i - (y.shape[2] - 1) / 2, j - (y.shape[1] - 1) / 2)
    return np.einsum("nij,nij->n", y, dist[None] <= r[:, None, None]) * float(pixel_arcmin) ** 2


def ym_map_check(
    tests: pd.DataFrame,
    ds: xr.Dataset,
    cosmo: FLRW,
    *,
    pixel_arcmin: float,
    min_r500_pixels: float = MIN_R500_PIXELS,
    line: YMLine = FIGURE3_LINES[0],
) -> pd.DataFrame:
    """The Figure 3 experiment of ``line`` on the test maps whose R500 spans more than ``min_r500_pixels``
    pixels, twice: with the map store's high-resolution cylinder Y500 (``line.y_column``) and with the Y500
    measured on the maps of ``ds`` themselves (:func:`aperture_y` inside R500; for the Planck mocks, beam-smoothed
    and noisy). Rows as :func:`ym_experiment`, the two labelled "<label>, R500 > N px: high-resolution Y500" and
    "<label>, R500 > N px: Y500 on the maps"; no rows when no test map is that large."""

    table = ym_map_table(ds).assign(R500=np.asarray(ds["R500"].values, dtype=float))
    rows = table.set_index("map").loc[tests["map"].to_numpy()]
    r_pix = r500_pixels(rows["R500"].to_numpy(), rows["redshift"].to_numpy(), cosmo, pixel_arcmin)
    keep = r_pix > min_r500_pixels
    if not keep.any():
        return pd.DataFrame(columns=list(YM_EXPERIMENT_COLUMNS))
    sub = tests[keep].reset_index(drop=True)
    measured = aperture_y(ds["y"].isel(map=sub["map"].to_numpy()).values, r_pix[keep], pixel_arcmin)
    on_maps = table.set_index("map").loc[sub["map"].to_numpy()].reset_index()
    on_maps[line.y_column] = measured
    tag = f"{line.label}, R500 > {min_r500_pixels:g} px"
    return pd.concat([ym_experiment(sub, table, cosmo, [replace(line, label=f"{tag}: high-resolution Y500")]),
                      ym_experiment(sub, on_maps, cosmo, [replace(line, label=f"{tag}: Y500 on the maps")])],
                     ignore_index=True)  # fmt: skip
