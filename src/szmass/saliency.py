"""Saliency maps of the mass CNN and their radial profile in units of R500 (docs/architecture.md, stage 8).

The saliency of pixel p of a raw y-map is |dM_CNN / dy_p| [Msun per unit Compton y]: how much
the predicted mass M500 changes per unit change of that pixel. The saved models
(``results/models/{dataset}/z{bin}/best.keras``, standardisation included) output
log10 M500 [Msun], so dM/dy_p = M ln(10) d(log10 M)/dy_p. Gradients are taken with
``tf.GradientTape`` in inference mode (``training=False``: dropout off).

Each map's saliency is then divided by its own maximum, so the maps read as "relative
importance" on [0, 1] and can be stacked across clusters of very different masses. (The factor
M ln 10 is common to all pixels of a map and so drops out of the normalised map; it matters only
with ``normalise=False``.) A map whose gradient is zero everywhere stays zero.

The radial profile (`radial_profile`) averages the normalised saliency of each map in annuli of
r / R500 around the map centre, then summarises the maps per annulus by the median and the
16th-84th percentiles.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from szmass.annuli import DEFAULT_R_EDGES, annulus_sums, percentile_summary


def _check_maps(maps: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(maps, dtype=float)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected an array (n >= 1, py, px), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(arr.reshape(arr.shape[0], -1)), axis=1))[0])
        raise ValueError(f"{name}: map {bad} has non-finite pixels")
    return arr


def saliency_maps(
    model: keras.Model, maps: ArrayLike, *, batch_size: int = 64, normalise: bool = True
) -> NDArray[np.float64]:
    """|dM_CNN / dy_pixel| of each raw y-map, (n, py, px).

    ``model``: a Keras model on raw y-maps (py, px, 1) [Compton y] returning log10 M500 [Msun]
    (a saved ``best.keras``, which plain Keras loads). ``maps``: (n, py, px)
    raw Compton-y maps. Batches of ``batch_size`` maps, inference mode. With ``normalise`` (the
    default) each map is divided by its own maximum (dimensionless, in [0, 1]; an all-zero map
    stays zero); otherwise the result is in Msun per unit Compton y.
    """
    import tensorflow as tf

    if keras.config.backend() != "tensorflow":
        raise ValueError(f"saliency_maps needs the TensorFlow backend of Keras, not {keras.config.backend()!r}")
    arr = _check_maps(maps, "saliency_maps: maps")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n, py, px = arr.shape
    expected_in = tuple(model.input_shape[1:])
    if expected_in not in ((py, px, 1), (py, px)) or tuple(model.output_shape[1:]) != (1,):
        raise ValueError(
            f"saliency_maps: model maps {expected_in} -> {tuple(model.output_shape[1:])}; "
            f"expected ({py}, {px}, 1) -> (1,) for maps of shape ({py}, {px})"
        )
    shape_in = (-1, *expected_in)
    inputs = getattr(model, "inputs", None)  # a functional/sequential model's input dtype; else float32
    in_dtype = str(inputs[0].dtype) if inputs else "float32"

    def batch_gradient(x: Any) -> tuple[Any, Any]:  # eager: one call per batch, the layers dominate the cost
        with tf.GradientTape() as tape:
            tape.watch(x)
            log10_m = model(x, training=False)
            # maps are independent in inference mode, so the gradient of the sum is each map's own gradient
            total = tf.reduce_sum(log10_m)
        return log10_m, tape.gradient(total, x)

    out = np.empty((n, py, px), dtype=float)
    for start in range(0, n, batch_size):
        x = tf.convert_to_tensor(arr[start : start + batch_size].reshape(shape_in), dtype=in_dtype)
        log10_m, grad = batch_gradient(x)
        log10_m = np.asarray(log10_m, dtype=float).reshape(-1)
        grad = np.asarray(grad, dtype=float).reshape(-1, py, px)
        # dM/dy = M ln10 dlog10M/dy  [Msun per unit y]
        out[start : start + batch_size] = np.abs(grad) * (np.log(10.0) * 10.0**log10_m)[:, None, None]
    if not np.all(np.isfinite(out)):
        raise ValueError("saliency_maps: non-finite gradients (is the model's output log10 M500 [Msun]?)")
    if normalise:
        peak = out.reshape(n, -1).max(axis=1)
        scale = np.divide(1.0, peak, out=np.zeros_like(peak), where=peak > 0)
        out *= scale[:, None, None]
    return out


def sample_rows(table: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``table`` drawn without replacement by ``numpy.random.default_rng(seed)``,
    in their original order, with a fresh index; the whole table when it is no longer."""
    if len(table) <= max_rows:
        return table
    picked = np.sort(np.random.default_rng(seed).choice(len(table), max_rows, replace=False))
    return table.iloc[picked].reset_index(drop=True)


def saliency_by_bin(models: Sequence[keras.Model], maps: ArrayLike, zbins: ArrayLike, *,
                    normalise: bool = True) -> NDArray[np.float64]:
    """:func:`saliency_maps` of each map with the model of its redshift bin, ``models[zbin - 1]`` (``zbins``
    1-based, one per map); maps of a bin without a model stay zero."""
    arr = np.asarray(maps)
    z = np.asarray(zbins)
    out = np.zeros(arr.shape, dtype=float)
    for zbin, model in enumerate(models, start=1):
        rows = z == zbin
        if rows.any():
            out[rows] = saliency_maps(model, arr[rows], normalise=normalise)
    return out


def radial_profile(
    saliency: ArrayLike,
    r500_pixels: ArrayLike,
    *,
    r_edges: ArrayLike = DEFAULT_R_EDGES,
    require_inside: bool = True,
) -> pd.DataFrame:
    """Median and 16th-84th percentiles over maps of the mean saliency in annuli of r / R500.

    ``saliency``: (n, py, px), e.g. the normalised output of `saliency_maps`. ``r500_pixels``: R500
    of each map in pixels (n,) (a scalar applies to all). Pixel (j, i) sits at distance
    sqrt((i - c_x)^2 + (j - c_y)^2) pixels from the map centre c = npix / 2 - 0.5 (0-based indices:
    between the central four pixels for an even npix); it belongs to annulus k when
    r_edges[k] <= r / R500 < r_edges[k + 1]. A map's annulus value is the mean over its pixels; it is
    NaN (and left out of the statistics) when the annulus holds no pixel centre or, with
    ``require_inside``, when it is not wholly inside the map (r_hi R500 > min(py, px) / 2 pixels),
    since a partial annulus samples only the map's corners.

    Columns :data:`szmass.annuli.SUMMARY_COLUMNS` (percentiles of the per-map means).
    """
    rings = annulus_sums(_check_maps(saliency, "radial_profile: saliency"), r500_pixels, r_edges, "radial_profile")
    means = np.full(rings.sums.shape, np.nan)
    np.divide(rings.sums, rings.counts, out=means, where=rings.counts > 0)
    if require_inside:
        means[rings.partial] = np.nan
    return percentile_summary(means, rings.edges, "radial_profile")
