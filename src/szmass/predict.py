"""CNN masses of y-map cutouts: read cutouts, load per-redshift-bin models, predict log10 M500 [Msun].

Model directories (`load_models`) come in two layouts:

* the published DeepPlanck release: ``bestmodel-1.h5 ... bestmodel-4.h5`` (`szmass.published`);
* a run of this pipeline, e.g. ``results/models/{dataset}``: ``z1/best.keras ... zN/best.keras``,
  full models (standardisation included) that output log10 M500 [Msun], plus optionally
  ``redshift_bins.json`` = ``{"edges": [z0, ..., zN]}`` (`write_bin_edges`); without it the
  paper's four bins are assumed. With ``posterior.json`` (the test set's prediction-truth pairs,
  `szmass.sbi.write_posterior_pairs`) each prediction also gets its posterior's 16th/50th/84th percentiles.

Cutouts (`read_fits_cutout`, `read_zarr_cutouts`): a FITS image of 96 x 96 pixels with the
redshift in the header keyword ``Z``, or a zarr store of an xarray Dataset with variable ``y``
(entry, py, px) and coordinate ``redshift`` along the entry dimension.

Plausibility (`range_warnings`): a network answers for any input, so every prediction is checked
against what its model was trained on. Each model standardises its input with the pixel mean mu and
standard deviation sigma of its training maps (Compton y, kept in the model's layer ``standardise``;
the published networks' are `szmass.published.INPUT_MEAN`/`INPUT_STD`). A map is flagged when its own
pixel standard deviation lies outside [`MAP_STD_RANGE`] x sigma (an all-zero or constant map has 0;
a map in units of 1e-6 y has 1e6 times the training level), or its mean lies more than
`MAP_MEAN_RANGE` sigma from mu; a prediction when it lies outside `PLAUSIBLE_LOG10_M500`. Training
maps span 0.26-1.34 sigma in per-map standard deviation and |mean - mu| < 0.22 sigma (the demo's 288
clean maps at four redshifts, each with its own mu and sigma); the real Planck cutout of PSZ2
G359.07-32.12 has 0.24-1.3 sigma under the four published networks: the bounds lie two orders of
magnitude beyond.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray

import szmass.model
from szmass.fitsio import open_fits
from szmass.model import input_moments  # noqa: F401  (re-exported)
from szmass.published import REDSHIFT_EDGES, WEIGHT_FILE, check_edges, load_published, redshift_bins
from szmass.rundir import BIN_EDGES_FILE, read_bin_edges, read_target_mass, write_bin_edges  # noqa: F401  (re-exported)
from szmass.sbi import POSTERIOR_FILE, PosteriorPairs, read_posterior_pairs

RUN_MODEL_FILE = "z{bin}/best.keras"
REDSHIFT_KEYWORD = "Z"

MAP_STD_RANGE = (1e-3, 1e2)
"""Allowed per-map pixel standard deviation, in units of the model's training pixel std (module docs)."""
MAP_MEAN_RANGE = 1e2
"""Allowed |per-map pixel mean - training pixel mean|, in units of the training pixel std (module docs)."""
PLAUSIBLE_LOG10_M500 = (13.0, 16.0)
"""Plausible predictions, log10 M500 [Msun]: a dex below the training selection (M500 > 1e14 h^-1 Msun, the
paper's; 5e13 in the smallest configurations) and above the most massive known clusters (~3e15 Msun)."""


@dataclass(frozen=True)
class MassModels:
    """Networks per redshift bin (1-based index -> model on raw y-maps giving log10 M500 [Msun]) and the bin edges."""

    models: dict[int, keras.Model]
    edges: tuple[float, ...]
    files: tuple[Path, ...] = ()
    """The files the models were read from (weights, models, bin edges)."""
    posterior: PosteriorPairs | None = None
    """A run's test pairs for posterior percentiles (its ``posterior.json``); None for the published weights."""
    target_mass: str = "M500"
    """The mass the networks return (:data:`szmass.rundir.TARGET_MASSES`; a run's ``redshift_bins.json``)."""


@dataclass(frozen=True)
class Cutouts:
    """Cutouts to predict: y-maps (n, py, px) [Compton y], redshifts (n,), one label (file or entry name) each."""

    images: NDArray[np.floating]
    redshifts: NDArray[np.float64]
    labels: list[str]



def load_run_model(path: Path) -> keras.Model:
    """A saved full model (raw y-map -> log10 M500 [Msun]), checked for the (96, 96, 1) -> (1,) signature
    and for its input standardisation."""
    try:
        model = keras.saving.load_model(path, compile=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: cannot load as a Keras model: {exc}") from exc
    shape_in, shape_out = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    if shape_in != szmass.model.MAP_SHAPE or shape_out != (1,):
        raise ValueError(f"{path}: model maps {shape_in} -> {shape_out}; expected {szmass.model.MAP_SHAPE} -> (1,)")
    try:
        input_moments(model)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return model


def load_models(weights_dir: str | os.PathLike[str]) -> MassModels:
    """Load the published ``bestmodel-{1..4}.h5`` or a run's ``z{bin}/best.keras`` models from ``weights_dir``."""
    weights_dir = Path(weights_dir)
    if (weights_dir / WEIGHT_FILE.format(bin=1)).is_file():
        files = tuple(weights_dir / WEIGHT_FILE.format(bin=b) for b in range(1, len(REDSHIFT_EDGES)))
        return MassModels(load_published(weights_dir), REDSHIFT_EDGES, files)
    if (weights_dir / RUN_MODEL_FILE.format(bin=1)).is_file():
        edges = read_bin_edges(weights_dir)
        paths = {b: weights_dir / RUN_MODEL_FILE.format(bin=b) for b in range(1, len(edges))}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{weights_dir}: {len(edges) - 1} redshift bins but no model file {missing}")
        edges_file = weights_dir / BIN_EDGES_FILE
        posterior_file = weights_dir / POSTERIOR_FILE
        posterior = read_posterior_pairs(posterior_file) if posterior_file.is_file() else None
        files = (*paths.values(), *(f for f in (edges_file, posterior_file) if f.is_file()))
        return MassModels({b: load_run_model(p) for b, p in paths.items()}, edges, files, posterior,
                          read_target_mass(weights_dir))
    raise FileNotFoundError(
        f"{weights_dir}: no models found; expected {WEIGHT_FILE.format(bin='{1..4}')} (published DeepPlanck) "
        f"or {RUN_MODEL_FILE.format(bin='{bin}')} (a run of this pipeline)"
    )


def predict_masses(
    images: ArrayLike,
    redshifts: ArrayLike,
    models: Mapping[int, keras.Model],
    *,
    edges: Sequence[float] = REDSHIFT_EDGES,
    labels: Sequence[str] | None = None,
    batch_size: int = 256,
) -> NDArray[np.float64]:
    """log10 M500 [Msun] of each raw y-map (n, 96, 96) [Compton y] at its redshift (n,).

    Each map goes to the model of its redshift bin (1-based, bin i = (edges[i-1], edges[i]]),
    in batches of ``batch_size``. Errors name the offending entry by ``labels[i]`` (e.g. its
    file) or by its index.
    """
    edges = check_edges(edges)
    maps = np.asarray(images)
    z = np.asarray(redshifts, dtype=float)

    def name(i: int) -> str:
        return labels[i] if labels is not None else f"image {i}"

    expected = szmass.model.MAP_SHAPE[:2]
    if maps.ndim != 3 or maps.shape[1:] != expected:
        raise ValueError(f"images: expected shape (n, {expected[0]}, {expected[1]}), got {maps.shape}")
    n = maps.shape[0]
    if z.shape != (n,):
        raise ValueError(f"redshifts: expected shape ({n},) to match the images, got {z.shape}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels: expected {n} labels to match the images, got {len(labels)}")
    bad_pixels = ~np.isfinite(maps).reshape(n, -1)
    if bad_pixels.any():
        i = int(np.argmax(bad_pixels.any(axis=1)))
        raise ValueError(f"{name(i)}: y-map has {int(bad_pixels[i].sum())} non-finite (NaN/inf) pixels; expected none")
    outside = ~(np.isfinite(z) & (z > edges[0]) & (z <= edges[-1]))
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"{name(i)}: redshift {float(z[i])!r} outside the model bins ({edges[0]:g}, {edges[-1]:g}]")

    bins = redshift_bins(z, edges)
    for b in np.unique(bins):
        if int(b) not in models:
            i = int(np.argmax(bins == b))
            raise ValueError(
                f"{name(i)}: no model for redshift bin {b} ({edges[b - 1]:g}, {edges[b]:g}]; "
                f"models given for bins {sorted(models)}"
            )
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")

    out = np.empty(n, dtype=np.float64)
    for b in np.unique(bins):
        rows = np.flatnonzero(bins == b)
        model = models[int(b)]
        # one batch shape per model (the last batch zero-padded), so the graph is traced once
        size = min(batch_size, rows.size)
        batch = np.zeros((size, *maps.shape[1:], 1), dtype=np.float32)
        for start in range(0, rows.size, size):
            chunk = rows[start : start + size]
            batch[: chunk.size, ..., 0] = maps[chunk]
            batch[chunk.size :] = 0.0
            pred = np.asarray(model.predict_on_batch(batch), dtype=np.float64)
            out[chunk] = pred[: chunk.size, 0]
    return out


def _fits_image(path: Path) -> tuple[NDArray[np.float64] | None, object, list[str]]:
    """The first image HDU's data holding any (None when none does), its redshift keyword (that HDU's, else
    the primary header's), and the kinds of the file's HDUs."""
    with open_fits(path) as hdul:
        kinds = [type(h).__name__ + ("" if h.is_image and h.data is not None else " (no image data)") for h in hdul]
        for hdu in hdul:
            if hdu.is_image and hdu.data is not None:
                header_z = hdu.header.get(REDSHIFT_KEYWORD, hdul[0].header.get(REDSHIFT_KEYWORD))
                return np.asarray(hdu.data, dtype=np.float64), header_z, kinds
    return None, None, kinds


def read_fits_cutout(path: str | os.PathLike[str], *, redshift: float | None = None) -> Cutouts:
    """One FITS cutout: the first HDU holding an image [Compton y]; redshift from header ``Z`` unless given."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected a FITS cutout")
    image, header_z, kinds = _fits_image(path)
    if image is None:
        raise ValueError(f"{path}: no image HDU (found {', '.join(kinds)}); expected a 96 x 96 y-map image, "
                         "not a table")
    expected = szmass.model.MAP_SHAPE[:2]
    if image.shape != expected:
        raise ValueError(f"{path}: image shape {image.shape}; expected {expected}")
    if redshift is None:
        if header_z is None:
            raise ValueError(f"{path}: header keyword {REDSHIFT_KEYWORD!r} (redshift) missing; give --redshift")
        if isinstance(header_z, bool) or not isinstance(header_z, (int, float)):
            raise ValueError(f"{path}: header keyword {REDSHIFT_KEYWORD!r} = {header_z!r}; expected a number")
        redshift = float(header_z)
    return Cutouts(image[np.newaxis], np.array([redshift], dtype=np.float64), [str(path)])


def read_zarr_cutouts(path: str | os.PathLike[str]) -> Cutouts:
    """All maps of a zarr store: variable ``y`` (entry, py, px), coordinate ``redshift``; labels from ``name`` or index."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"zarr store not found: {path}")
    with xr.open_zarr(path) as ds:
        if "y" not in ds:
            raise ValueError(f"{path}: no variable 'y'; expected y-maps (entry, py, px)")
        y = ds["y"]
        if y.ndim != 3:
            raise ValueError(f"{path}: variable 'y' has dims {y.dims}; expected (entry, py, px)")
        entry = y.dims[0]
        if "redshift" not in ds.coords or ds["redshift"].dims != (entry,):
            raise ValueError(f"{path}: no coordinate 'redshift' along {entry!r}; expected one redshift per map")
        redshift = ds["redshift"].values.astype(np.float64)
        if "name" in ds.coords and ds["name"].dims == (entry,):
            labels = [str(v) for v in ds["name"].values]
        else:
            labels = [f"{path}[{i}]" for i in range(y.shape[0])]
        images = y.values
    return Cutouts(images, redshift, labels)


def is_zarr_store(path: str | os.PathLike[str]) -> bool:
    """True for a zarr store (a directory, or a ``.zarr`` path); other paths are read as FITS."""
    p = Path(path)
    return p.is_dir() or p.suffix == ".zarr"


def read_cutouts(paths: Sequence[str | os.PathLike[str]], redshifts: Sequence[float] | None = None) -> Cutouts:
    """FITS cutouts and zarr stores in order; ``redshifts`` (one value, or one per path) override FITS headers.

    Overrides apply to FITS files only: a zarr store carries its own ``redshift`` coordinate.
    """
    if redshifts is not None:
        stores = [str(p) for p in paths if is_zarr_store(p)]
        if stores:
            raise ValueError(f"redshift overrides apply to FITS cutouts only; zarr stores {stores} carry their own")
        if len(redshifts) not in (1, len(paths)):
            raise ValueError(f"got {len(redshifts)} redshifts for {len(paths)} files; expected 1 or {len(paths)}")
    parts = []
    for k, p in enumerate(paths):
        if is_zarr_store(p):
            parts.append(read_zarr_cutouts(p))
        else:
            z = None if redshifts is None else redshifts[k if len(redshifts) > 1 else 0]
            parts.append(read_fits_cutout(p, redshift=z))
    if not parts:
        raise ValueError("no cutouts given")
    return Cutouts(
        np.concatenate([c.images for c in parts]),
        np.concatenate([c.redshifts for c in parts]),
        [label for c in parts for label in c.labels],
    )


def range_warnings(
    images: ArrayLike, redshifts: ArrayLike, log10_m500: ArrayLike, models: MassModels
) -> list[str]:
    """Per map: '' when the map's level and its prediction lie in range (module docs), else the reasons.

    ``images`` (n, py, px) [Compton y] at ``redshifts`` (n,), within the models' bins, predicted
    ``log10_m500`` (n,) [Msun]; each map is compared with the training moments of its bin's model.
    """
    maps = np.asarray(images, dtype=np.float64)
    log_m = np.asarray(log10_m500, dtype=np.float64)
    bins = redshift_bins(np.asarray(redshifts, dtype=float), models.edges)
    moments = {int(b): input_moments(models.models[int(b)]) for b in np.unique(bins)}
    std, mean = maps.std(axis=(1, 2)), maps.mean(axis=(1, 2))
    lo, hi = MAP_STD_RANGE
    m_lo, m_hi = PLAUSIBLE_LOG10_M500
    out = []
    for i, b in enumerate(bins):
        mu, sigma = moments[int(b)]
        reasons = []
        if not lo * sigma <= std[i] <= hi * sigma:
            reasons.append(f"y-map std {std[i]:.3g} outside [{lo:g}, {hi:g}] x the training std {sigma:.3g} of bin {b}")
        if abs(mean[i] - mu) > MAP_MEAN_RANGE * sigma:
            reasons.append(f"y-map mean {mean[i]:.3g} more than {MAP_MEAN_RANGE:g} training std ({sigma:.3g}) "
                           f"from the training mean {mu:.3g} of bin {b}")
        if not m_lo <= log_m[i] <= m_hi:
            reasons.append(f"log10_{models.target_mass} {log_m[i]:.6g} outside the plausible [{m_lo:g}, {m_hi:g}]")
        out.append("; ".join(reasons))
    return out


def predict_checked(
    images: ArrayLike, redshifts: ArrayLike, models: MassModels, *, labels: Sequence[str] | None = None
) -> tuple[NDArray[np.float64], list[str]]:
    """`predict_masses` with the models' bins, and the `range_warnings` of each map."""
    log_m = predict_masses(images, redshifts, models.models, edges=models.edges, labels=labels)
    return log_m, range_warnings(images, redshifts, log_m, models)


def predict_table(cutouts: Cutouts, models: MassModels) -> pd.DataFrame:
    """One row per cutout: ``file`` (label), ``redshift``, ``log10_M500`` [Msun], ``warning`` ('' or why the map
    or its prediction is out of range, `range_warnings`); for a run's models with a ``posterior.json``, also the
    posterior's ``log10_M500_p16``, ``log10_M500_p50`` and ``log10_M500_p84`` [Msun] (`PosteriorPairs.percentiles`).
    For the models of an M200 run (``models.target_mass``) the mass columns are ``log10_M200...``."""
    log_m, warnings = predict_checked(cutouts.images, cutouts.redshifts, models, labels=cutouts.labels)
    mass = f"log10_{models.target_mass}"
    table = pd.DataFrame({"file": cutouts.labels, "redshift": cutouts.redshifts, mass: log_m, "warning": warnings})
    if models.posterior is not None:
        q = models.posterior.percentiles(redshift_bins(cutouts.redshifts, models.edges), log_m)
        for k, name in enumerate((f"{mass}_p16", f"{mass}_p50", f"{mass}_p84")):
            table.insert(3 + k, name, q[:, k])
    return table
