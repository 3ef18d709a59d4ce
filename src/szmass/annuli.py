"""Maps binned in annuli of r / R500 about their centre, and the median and 16th-84th percentiles over maps
of a per-annulus statistic: the shared core of the saliency profiles (:mod:`szmass.saliency`, the paper's
Figure 5) and the supplement's saliency distributions (:mod:`szmass.supplementary`). No TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

DEFAULT_R_EDGES: NDArray[np.float64] = np.linspace(0.0, 3.0, 16)
"""Annulus edges [R500]: 15 annuli of width 0.2 R500 out to 3 R500."""
SUMMARY_COLUMNS = ("r_lo", "r_hi", "r_mid", "median", "p16", "p84", "n")
"""Columns of :func:`percentile_summary`: annulus edges and centre [R500], percentiles, maps used."""


@dataclass(frozen=True)
class AnnulusSums:
    """Per map and annulus (n, annuli): ``sums`` of the pixel values, ``counts`` of pixel centres, and
    ``partial``, True where the annulus is not wholly inside the map (r_hi R500 > min(py, px) / 2 pixels,
    with a relative slack of 1e-9 so that an annulus ending on the edge up to round-off counts)."""

    edges: NDArray[np.float64]
    sums: NDArray[np.float64]
    counts: NDArray[np.int64]
    partial: NDArray[np.bool_]


def annulus_sums(maps: ArrayLike, r500_pixels: ArrayLike, r_edges: ArrayLike, name: str) -> AnnulusSums:
    """Sums of ``maps`` (n, py, px) over annuli [r_lo, r_hi) of r / R500. Pixel (j, i) lies at
    sqrt((i - c_x)^2 + (j - c_y)^2) pixels from the map centre c = npix / 2 - 0.5 (between the central
    four pixels for an even npix). ``r500_pixels``: R500 [pixels], a scalar or one per map. ValueError,
    prefixed with ``name``, for maps that are not 3D, a bad R500 or bad edges."""
    s = np.asarray(maps, dtype=float)
    if s.ndim != 3:
        raise ValueError(f"{name}: expected maps (n, py, px), got shape {s.shape}")
    n, py, px = s.shape
    try:
        r500 = np.broadcast_to(np.asarray(r500_pixels, dtype=float), (n,))
    except ValueError as exc:
        raise ValueError(f"{name}: r500_pixels must be a scalar or one value per map ({n}): {exc}") from exc
    if not np.all(np.isfinite(r500) & (r500 > 0)):
        raise ValueError(f"{name}: r500_pixels must be finite and > 0")
    edges = np.asarray(r_edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) > 0):
        raise ValueError(f"{name}: r_edges must be >= 2 finite, increasing values, got {r_edges!r}")
    if edges[0] < 0:
        raise ValueError(f"{name}: r_edges must be >= 0, got {edges[0]}")
    n_ann = edges.size - 1
    j, i = np.indices((py, px), dtype=float)
    dist = np.hypot(i - (px / 2 - 0.5), j - (py / 2 - 0.5)).ravel()  # [pixels]
    ann = np.searchsorted(edges, dist[None, :] / r500[:, None], side="right") - 1
    inside = (ann >= 0) & (ann < n_ann)
    flat = (np.arange(n)[:, None] * n_ann + ann)[inside]
    sums = np.asarray(np.bincount(flat, weights=s.reshape(n, -1)[inside], minlength=n * n_ann), dtype=float)
    counts = np.bincount(flat, minlength=n * n_ann).reshape(n, n_ann)
    partial = edges[1:][None, :] * r500[:, None] > min(py, px) / 2 * (1.0 + 1e-9)
    return AnnulusSums(edges, sums.reshape(n, n_ann), counts, partial)


def percentile_summary(values: ArrayLike, r_edges: ArrayLike, name: str) -> pd.DataFrame:
    """Median and 16th-84th percentiles over maps of per-annulus ``values`` (n, annuli), NaNs left out:
    columns :data:`SUMMARY_COLUMNS`."""
    v = np.asarray(values, dtype=float)
    edges = np.asarray(r_edges, dtype=float)
    if v.ndim != 2 or v.shape[1] != edges.size - 1:
        raise ValueError(f"{name}: need values (n, {edges.size - 1}) for the edges, got {v.shape}")
    used = np.isfinite(v)
    stats = np.full((3, v.shape[1]), np.nan)
    for k in np.flatnonzero(used.any(axis=0)):
        stats[:, k] = np.percentile(v[used[:, k], k], [50.0, 16.0, 84.0])
    return pd.DataFrame({"r_lo": edges[:-1], "r_hi": edges[1:], "r_mid": 0.5 * (edges[:-1] + edges[1:]),
                         "median": stats[0], "p16": stats[1], "p84": stats[2], "n": used.sum(axis=0).astype(np.int64)},
                        columns=list(SUMMARY_COLUMNS))  # fmt: skip
