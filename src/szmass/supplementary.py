"""Data of the paper's supplementary figures (de Andres et al. 2022, Supplementary Figures 1-10).

Each function prepares what one figure draws, numerically and without plotting
(:mod:`szmass.supp_plots` draws it). Masses are log10 M500 [Msun] unless said otherwise; radii are in
map pixels or in units of R500.

* Supp. Fig. 1: PSZ2 masses corrected for the hydrostatic bias, M500 = M_SZ / (1 - b) (:func:`psz2_log10_m500`).
* Supp. Fig. 2: the example clusters, two at low redshift and one of about 1e15 Msun at z of about 0.5
  (:func:`pick_example_maps`), and the sky cluster standing in for each (:func:`nearest_clusters`).
* Supp. Fig. 3: the network's layers with their output shapes and parameters (:func:`layer_table`).
* Supp. Fig. 5 (right): the errors of every run, the selected run and the worst run (:func:`run_errors`,
  :func:`worst_run`).
* Supp. Fig. 6: b_t or b_P per redshift bin, all masses and above a mass cut in M_CNN (:func:`bias_samples`).
* Supp. Fig. 7: the KDE density of the test set's (M_CNN, M_true) pairs on a grid (:func:`kde_density`).
* Supp. Fig. 9: good, bad and disturbed examples for the saliency maps (:func:`centroid_offset`,
  :func:`pick_saliency_examples`).
* Supp. Fig. 10: saliency maps normalised to unit sum (:func:`unit_sum`), their radial distribution in
  r / R500 (:func:`radial_distribution`, :func:`distribution_summary`) and where it peaks (:func:`peak_radius`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from szmass.annuli import DEFAULT_R_EDGES, annulus_sums, percentile_summary
from szmass.architecture import OUTPUT_LAYER, Architecture
from szmass.evaluate import relative_bias
from szmass.rundir import read_predictions
from szmass.sbi import KDEPosterior

LAYER_COLUMNS = ("layer", "kind", "output_shape", "parameters")
RUN_ERROR_COLUMNS = ("run", "run_dir", "zbin", "b_t", "selected", "worst")


# -- Supplementary Figures 1 and 2 ------------------------------------------------------------------


def psz2_log10_m500(log10_msz: ArrayLike, hydrostatic_bias: float) -> NDArray[np.float64]:
    """log10 M500 [Msun] of PSZ2 clusters from their log10 M_SZ [Msun]: M500 = M_SZ / (1 - b), where
    ``hydrostatic_bias`` is (1 - b) (0.8 in the paper)."""
    if not 0.0 < hydrostatic_bias <= 1.0:
        raise ValueError(f"hydrostatic_bias (1 - b) must lie in (0, 1], got {hydrostatic_bias!r}")
    return np.asarray(log10_msz, dtype=float) - np.log10(hydrostatic_bias)


def pick_example_maps(
    table: pd.DataFrame,
    *,
    low_z: float = 0.1,
    n_low: int = 2,
    target_log10_m: float = 15.0,
    target_z: float = 0.5,
) -> list[int]:
    """Positions (0-based rows of ``table``: columns ``redshift``, ``log10_M``, ``halo``, a halo identity) of
    the maps of Supplementary Figure 2: the ``n_low`` most massive distinct halos with redshift < ``low_z``,
    then, among the other halos at the redshift nearest to ``target_z`` (a snapshot's), the map nearest in
    log10 M to ``target_log10_m``. Ties go to the first row. ValueError when fewer than ``n_low`` halos lie
    below ``low_z`` or no other halo remains."""
    missing = [c for c in ("redshift", "log10_M", "halo") if c not in table.columns]
    if missing:
        raise ValueError(f"pick_example_maps: column(s) {missing} missing; the table has {list(table.columns)}")
    z = table["redshift"].to_numpy(float)
    log_m = table["log10_M"].to_numpy(float)
    halo = table["halo"].to_numpy()
    order = np.argsort(-log_m, kind="stable")
    picks: list[int] = []
    for i in order[z[order] < low_z]:
        if len(picks) == n_low:
            break
        if halo[i] not in halo[picks]:
            picks.append(int(i))
    if len(picks) < n_low:
        raise ValueError(f"pick_example_maps: {len(picks)} distinct halo(s) at z < {low_z}, need {n_low}")
    others = np.flatnonzero(~np.isin(halo, halo[picks]))
    if others.size == 0:
        raise ValueError("pick_example_maps: no halo left for the high-mass example")
    dz = np.abs(z[others] - target_z)
    others = others[dz == dz.min()]
    picks.append(int(others[np.argmin(np.abs(log_m[others] - target_log10_m))]))
    return picks


def nearest_clusters(
    redshift: ArrayLike,
    log10_m: ArrayLike,
    candidates_z: ArrayLike,
    candidates_log10_m: ArrayLike,
    *,
    scale_log10_m: float = 0.1,
    scale_z: float = 0.1,
) -> NDArray[np.int64]:
    """For each (``redshift``, ``log10_m``), the index of the nearest candidate in the distance
    hypot(dlog10M / ``scale_log10_m``, dz / ``scale_z``) (ties: the first candidate)."""
    z, m = np.atleast_1d(np.asarray(redshift, float)), np.atleast_1d(np.asarray(log10_m, float))
    cz, cm = np.asarray(candidates_z, float), np.asarray(candidates_log10_m, float)
    if cz.size == 0 or cz.shape != cm.shape:
        raise ValueError(f"nearest_clusters: need >= 1 candidate with equal-length redshifts and masses, got "
                         f"{cz.shape} and {cm.shape}")  # fmt: skip
    d = np.hypot((m[:, None] - cm[None, :]) / scale_log10_m, (z[:, None] - cz[None, :]) / scale_z)
    return np.argmin(d, axis=1).astype(np.int64)


MAP_FIELDS = ("sim", "region", "snapshot", "halo_id", "redshift", "M500")


def map_catalogue(ds: xr.Dataset) -> pd.DataFrame:
    """One row per map of a map store: its coordinates sim, region, snapshot, halo_id, redshift, M500 [Msun],
    then log10_M (of M500) and halo, the identity "sim/region/snapshot/halo_id" of one halo at one snapshot."""
    missing = [f for f in MAP_FIELDS if f not in ds.variables]
    if missing:
        raise ValueError(f"map store: coordinate(s) {missing} missing; expected {list(MAP_FIELDS)}")
    table = ds[list(MAP_FIELDS)].reset_coords().to_dataframe().reset_index(drop=True)[list(MAP_FIELDS)]
    table["log10_M"] = np.log10(table["M500"].to_numpy(float))
    table["halo"] = table[["sim", "region", "snapshot", "halo_id"]].astype(str).agg("/".join, axis=1)
    return table


def psz2_sample(sky: xr.Dataset, hydrostatic_bias: float) -> pd.DataFrame:
    """The sky's PSZ2 clusters with a mass: columns cluster (index along the cutout store's ``cluster``
    dimension), redshift and log10_M = log10 M_SZ / (1 - b) [Msun] (:func:`psz2_log10_m500`); clusters without
    M_SZ (``MSZ`` <= 0) are left out."""
    missing = [f for f in ("MSZ", "redshift") if f not in sky.variables]
    if missing:
        raise ValueError(f"sky cutouts: coordinate(s) {missing} missing; expected MSZ [Msun] and redshift")
    msz = np.asarray(sky["MSZ"].values, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_m = psz2_log10_m500(np.log10(np.where(msz > 0, msz, np.nan)), hydrostatic_bias)
    table = pd.DataFrame({"cluster": np.arange(msz.size), "redshift": np.asarray(sky["redshift"].values, float),
                          "log10_M": log_m})  # fmt: skip
    return table.dropna().reset_index(drop=True)


def example_pairs(
    maps: pd.DataFrame, psz2: pd.DataFrame, *, target_log10_m: float = 15.0, target_z: float = 0.5
) -> list[tuple[int, int]]:
    """The examples of Supplementary Figure 2 as (map position in ``maps``, :func:`map_catalogue`; sky cluster,
    column cluster of ``psz2``, :func:`psz2_sample`): the maps of :func:`pick_example_maps` (two massive halos
    at z < 0.1, one of about ``target_log10_m`` at about ``target_z``), each with the PSZ2 cluster nearest
    (:func:`nearest_clusters`) in redshift and log10 M to the low-redshift maps and to the target."""
    picks = pick_example_maps(maps, target_log10_m=target_log10_m, target_z=target_z)
    targets_z = [*maps["redshift"].to_numpy()[picks[:-1]], target_z]
    targets_m = [*maps["log10_M"].to_numpy()[picks[:-1]], target_log10_m]
    nearest = psz2["cluster"].to_numpy()[nearest_clusters(targets_z, targets_m, psz2["redshift"], psz2["log10_M"])]
    return [(int(k), int(i)) for k, i in zip(picks, nearest, strict=True)]


# -- Supplementary Figure 3 -------------------------------------------------------------------------


def layer_table(arch: Architecture, side: int = 96, channels: int = 1) -> pd.DataFrame:
    """The layers of ``arch`` (:mod:`szmass.architecture`) on ``side`` x ``side`` x ``channels`` maps, in order:
    columns layer (name), kind, output_shape (a tuple, batch axis left out) and parameters (kernels and
    biases). The parameters sum to ``arch.n_parameters(channels, side)``."""
    arch.feature_side(side)  # ValueError if the maps shrink to nothing
    rows: list[dict[str, object]] = [{"layer": "input", "kind": "input", "output_shape": (side, side, channels),
                                      "parameters": 0}]  # fmt: skip
    s, c_in = int(side), int(channels)
    for i, (name, c_out) in enumerate(zip(arch.conv_names, arch.conv_filters, strict=True), start=1):
        s -= arch.kernel_size - 1
        rows.append({"layer": name, "kind": f"conv {arch.kernel_size}x{arch.kernel_size}, ReLU",
                     "output_shape": (s, s, c_out), "parameters": arch.kernel_size**2 * c_in * c_out + c_out})
        s //= 2
        rows.append({"layer": f"pool{i}", "kind": "max-pool 2x2", "output_shape": (s, s, c_out), "parameters": 0})
        c_in = c_out
    c_in = arch.pooled_features(side)
    if arch.pooling == "weighted":
        rows += [{"layer": "weighted", "kind": f"weighted sum {s}x{s} (depthwise)", "output_shape": (1, 1, c_in),
                  "parameters": arch.pooling_parameters(side)},
                 {"layer": "weighted_features", "kind": "flatten", "output_shape": (c_in,), "parameters": 0}]  # fmt: skip
    else:
        kind = "flatten" if arch.pooling == "flatten" else "global average pool"
        rows.append({"layer": arch.pooling, "kind": kind, "output_shape": (c_in,), "parameters": 0})
    hidden = arch.dense_names[:-1]
    for i, (name, units) in enumerate(zip(hidden, arch.dense_units, strict=True)):
        if i < arch.dense_layers:
            rows.append({"layer": arch.dropout_names[i], "kind": f"dropout {arch.dropout:g}",
                         "output_shape": (c_in,), "parameters": 0})  # fmt: skip
        rows.append({"layer": name, "kind": "dense, ReLU", "output_shape": (units,),
                     "parameters": c_in * units + units})  # fmt: skip
        c_in = units
    rows.append({"layer": OUTPUT_LAYER, "kind": "dense, linear", "output_shape": (1,), "parameters": c_in + 1})
    return pd.DataFrame(rows, columns=list(LAYER_COLUMNS))


# -- Supplementary Figure 5 (right) ------------------------------------------------------------------


def worst_run(selection: pd.DataFrame) -> int:
    """Row of a selection table (:func:`szmass.select.select_model`) of the worst run: the largest
    max |mean| of the binned relative error (the furthest from passing the rule), ties broken by the
    larger sum of std, then by the first row."""
    missing = [c for c in ("max_abs_mean", "sum_std") if c not in selection.columns]
    if missing:
        raise ValueError(f"selection table: column(s) {missing} missing (see szmass.select.select_model)")
    keys = selection[["max_abs_mean", "sum_std"]].to_numpy(float)
    order = np.lexsort((-keys[:, 1], -keys[:, 0]))
    return int(order[0])


def run_errors(selections: Mapping[int, pd.DataFrame], split: str = "val") -> pd.DataFrame:
    """b_t = (M_CNN - M_true) / M_CNN of every run of every redshift bin on its ``split`` maps ("val":
    those the selection judged): columns run (row in its bin's selection table), run_dir, zbin, b_t,
    selected and worst (:func:`worst_run`) flags. ``selections``: bin number -> selection table."""
    parts = []
    for zbin, selection in sorted(selections.items()):
        worst = worst_run(selection)
        for run, row in selection.reset_index(drop=True).iterrows():
            table = read_predictions(row["run_dir"])
            maps = table[table["split"] == split]
            if maps.empty:
                raise ValueError(f"{row['run_dir']}: predictions.csv has no {split!r} maps")
            b = relative_bias(maps["log10_M_cnn"], maps["log10_M_true"])
            parts.append(pd.DataFrame({"run": run, "run_dir": str(row["run_dir"]), "zbin": int(zbin), "b_t": b,
                                       "selected": bool(row["selected"]), "worst": run == worst}))  # fmt: skip
    if not parts:
        raise ValueError("run_errors: no selection tables given")
    return pd.concat(parts, ignore_index=True)[list(RUN_ERROR_COLUMNS)]


# -- Supplementary Figure 6 ------------------------------------------------------------------------


def bias_samples(
    table: pd.DataFrame, ref: str, *, m_cut: float = 5e14, cnn: str = "log10_M_cnn", zbin: str = "zbin"
) -> dict[tuple[int, str], NDArray[np.float64]]:
    """b = (M_CNN - M_ref) / M_CNN of ``table``'s rows per redshift bin (``zbin`` column), for all masses
    (key (bin, "all")) and for M_CNN > ``m_cut`` [Msun] (key (bin, "M_CNN > <cut>")); rows whose
    ``ref`` is NaN are left out. ``ref``: e.g. ``log10_M_true`` (b_t) or ``log10_MSZ`` (b_P)."""
    missing = [c for c in (ref, cnn, zbin) if c not in table.columns]
    if missing:
        raise ValueError(f"bias_samples: column(s) {missing} missing; the table has {list(table.columns)}")
    rows = table.dropna(subset=[ref])
    b = relative_bias(rows[cnn].to_numpy(float), rows[ref].to_numpy(float))
    high = rows[cnn].to_numpy(float) > np.log10(m_cut)
    bins = rows[zbin].to_numpy().astype(np.int64)
    out: dict[tuple[int, str], NDArray[np.float64]] = {}
    for k in np.unique(bins):
        out[(int(k), "all")] = b[bins == k]
        out[(int(k), f"M_CNN > {m_cut:.0e}")] = b[(bins == k) & high]
    return out


# -- Supplementary Figure 7 ------------------------------------------------------------------------


def kde_density(posterior: KDEPosterior, log10_m_cnn: ArrayLike, log10_m_true: ArrayLike) -> NDArray[np.float64]:
    """The joint KDE density [1 / dex^2] of ``posterior`` (:class:`szmass.sbi.KDEPosterior`) on the grid
    ``log10_m_cnn`` x ``log10_m_true`` [log10 Msun]: shape (len(log10_m_true), len(log10_m_cnn)), rows
    along M_true (the layout of ``imshow`` / ``pcolormesh`` with M_CNN on the x axis)."""
    x = np.asarray(log10_m_cnn, dtype=float)
    t = np.asarray(log10_m_true, dtype=float)
    if x.ndim != 1 or t.ndim != 1:
        raise ValueError(f"kde_density: need 1-D grids, got shapes {x.shape} and {t.shape}")
    xx, tt = np.meshgrid(x, t)
    return posterior.kde(np.vstack([xx.ravel(), tt.ravel()])).reshape(tt.shape)


# -- Supplementary Figure 9 ------------------------------------------------------------------------


def centroid_offset(maps: ArrayLike, r500_pixels: ArrayLike) -> NDArray[np.float64]:
    """Distance between each map's y-weighted centroid within R500 of the map centre and that centre, in
    units of R500: large for a merger or a bright neighbour. The weights are the positive part of y, so that
    the noise of a Planck mock cannot make them sum to zero. NaN for a map without positive y within R500
    (e.g. R500 below 0.71 pixel, where no pixel centre lies inside): its offset is undefined, and
    :func:`pick_saliency_examples` ranks it least disturbed. ``maps``: (n, py, px) Compton y;
    ``r500_pixels``: (n,) or a scalar. The centre is at npix / 2 - 0.5 (0-based pixel indices)."""
    y = np.asarray(maps, dtype=float)
    if y.ndim != 3:
        raise ValueError(f"centroid_offset: expected maps (n, py, px), got shape {y.shape}")
    r500 = np.broadcast_to(np.asarray(r500_pixels, dtype=float), (y.shape[0],))
    jj, ii = np.indices(y.shape[1:], dtype=float)
    jj -= y.shape[1] / 2 - 0.5
    ii -= y.shape[2] / 2 - 0.5
    w = np.where(np.hypot(jj, ii)[None] <= r500[:, None, None], np.clip(y, 0.0, None), 0.0)
    total = w.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.hypot((w * ii).sum(axis=(1, 2)), (w * jj).sum(axis=(1, 2))) / total / r500
    return np.where(total > 0, offset, np.nan)


def _distinct(order: NDArray[np.int64], groups: NDArray, taken: list[int], n: int) -> list[int]:
    """The first ``n`` indices of ``order`` whose group is not among those of ``taken`` nor of each other."""
    used = {groups[i] for i in taken}
    out: list[int] = []
    for i in order:
        if len(out) == n:
            break
        if groups[i] not in used:
            out.append(int(i))
            used.add(groups[i])
    return out


def pick_saliency_examples(
    log10_m_cnn: ArrayLike,
    log10_m_true: ArrayLike,
    offset: ArrayLike,
    *,
    groups: ArrayLike | None = None,
    n_good: int = 4,
    n_bad: int = 4,
) -> dict[str, list[int]]:
    """The maps of Supplementary Figure 9: "good", the ``n_good`` least |log10 M_CNN / M_true|; "merger", the
    most disturbed of the other maps (largest ``offset``, :func:`centroid_offset`); "bad", the largest
    |log10 M_CNN / M_true| among the rest, ``n_bad`` - 1 of them, so that there are n_good + n_bad examples
    in all (the merger among them, as in the paper). With ``groups`` (e.g. a cluster identity per map), no
    two examples share a group (other projections of a cluster are skipped). Indices in order of the
    criterion (ties: the first map)."""
    r = np.abs(np.asarray(log10_m_cnn, dtype=float) - np.asarray(log10_m_true, dtype=float))
    off = np.asarray(offset, dtype=float)
    g = np.arange(r.size) if groups is None else np.asarray(groups)
    if r.shape != off.shape or r.ndim != 1 or g.shape != r.shape:
        raise ValueError(f"pick_saliency_examples: need 1-D masses, offsets and groups of equal length, got "
                         f"{r.shape}, {off.shape}, {g.shape}")  # fmt: skip
    if n_good < 1 or n_bad < 1 or np.unique(g).size < n_good + n_bad:
        raise ValueError(f"pick_saliency_examples: {np.unique(g).size} distinct maps or groups cannot give {n_good} "
                         f"good and {n_bad} bad examples")  # fmt: skip
    good = _distinct(np.argsort(r, kind="stable"), g, [], n_good)
    merger = _distinct(np.argsort(-np.nan_to_num(off, nan=-np.inf), kind="stable"), g, good, 1)  # NaN: undefined
    bad = _distinct(np.argsort(-r, kind="stable"), g, good + merger, n_bad - 1)
    return {"good": good, "bad": bad, "merger": merger}


# -- Supplementary Figure 10 -----------------------------------------------------------------------


def has_saliency(saliency: ArrayLike) -> NDArray[np.bool_]:
    """Per map of ``saliency`` (n, py, px), >= 0: True unless it is zero everywhere, as around a map where its
    network is flat (a network that did not learn, whose ReLUs are all off, has a zero gradient)."""
    return np.asarray(saliency, dtype=float).sum(axis=(1, 2)) > 0


def unit_sum(saliency: ArrayLike) -> NDArray[np.float64]:
    """Each map of ``saliency`` (n, py, px), >= 0, divided by its sum, so that every map sums to one; an
    all-zero map is a ValueError (it has no distribution)."""
    s = np.asarray(saliency, dtype=float)
    if s.ndim != 3 or not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"unit_sum: expected finite, non-negative maps (n, py, px), got shape {s.shape}")
    total = s.sum(axis=(1, 2))
    if np.any(total <= 0):
        raise ValueError(f"unit_sum: map {int(np.flatnonzero(total <= 0)[0])} is zero everywhere")
    return s / total[:, None, None]


def radial_distribution(
    saliency: ArrayLike, r500_pixels: ArrayLike, *, r_edges: ArrayLike = DEFAULT_R_EDGES
) -> NDArray[np.float64]:
    """The radial distribution of each map's saliency in r / R500, (n, annuli): the saliency summed over the
    pixels whose centre falls in annulus [r_lo, r_hi) of r / R500, divided by the annulus width, i.e. a
    density per unit r / R500 (for unit-sum maps, :func:`unit_sum`, the fraction of the map's saliency per
    unit r / R500). Distances are from the map centre npix / 2 - 0.5; an annulus holding no pixel centre (for
    a small R500) or not wholly inside the map (r_hi R500 > min(py, px) / 2 pixels) is NaN for that map."""
    rings = annulus_sums(saliency, r500_pixels, r_edges, "radial_distribution")
    out = rings.sums / np.diff(rings.edges)[None, :]
    out[(rings.counts == 0) | rings.partial] = np.nan
    return out


def distribution_summary(values: ArrayLike, r_edges: ArrayLike = DEFAULT_R_EDGES) -> pd.DataFrame:
    """Median and 16th-84th percentiles over maps of :func:`radial_distribution`'s values (n, annuli), NaNs
    left out: columns r_lo, r_hi, r_mid (r / R500), median, p16, p84, n (maps used per annulus)."""
    return percentile_summary(values, r_edges, "distribution_summary")


def peak_radius(summary: pd.DataFrame) -> tuple[float, float]:
    """(r_lo, r_hi) [R500] of the annulus where the median of a :func:`distribution_summary` peaks."""
    rows = summary.dropna(subset=["median"])
    if rows.empty:
        raise ValueError("peak_radius: no annulus has any map")
    k = rows["median"].idxmax()
    return float(rows.at[k, "r_lo"]), float(rows.at[k, "r_hi"])

