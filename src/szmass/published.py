"""The published DeepPlanck networks (de Andres et al. 2022): weights, standardisation, redshift bins.

Source: the data release github.com/The300th/DeepPlanck (``DeepPlanck.py``, ``BaseModel.PredictMass``
and ``weights/bestmodel-{1..4}.h5``; see FACTS.md). The files are Keras 2 (TF 2.7) HDF5 weights of a
subclassed model whose weighted layers are, in order, the three convolutions and four dense layers of
`szmass.model.build_cnn`; Keras's legacy HDF5 loader assigns them by that order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import ArrayLike, NDArray  # noqa: E402

from szmass.model import build_cnn, with_standardisation  # noqa: E402

REDSHIFT_EDGES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4, 1.0)
"""The paper's redshift bins (0, 0.1], (0.1, 0.2], (0.2, 0.4], (0.4, 1]; bin i uses bestmodel-i.h5."""

INPUT_MEAN: tuple[float, ...] = (
    1.8827347385422218e-06,
    2.2296471704066543e-07,
    8.347489023971544e-08,
    3.14216726766519e-08,
)
"""Per-bin mean of the training y-maps (Compton y), DeepPlanck.py ``PredictMass`` ``mu``."""

INPUT_STD: tuple[float, ...] = (
    7.136290778515806e-06,
    2.036420289662876e-06,
    1.4639878011606421e-06,
    1.300205829438648e-06,
)
"""Per-bin standard deviation of the training y-maps (Compton y), DeepPlanck.py ``PredictMass`` ``sigma``."""

H_PUBLISHED = 0.678
"""h used by the release to turn its output log10(M500 / h^-1 Msun) into log10(M500 / Msun).

THE THREE HUNDRED cosmology has h = 0.6777 (`szmass.cosmology`), but the release hard-codes
h = 0.678 in ``PredictMass``; we keep that value so that the published networks reproduce the
released masses (the two differ by 1.9e-4 dex). Models trained by this pipeline output log10
M500 [Msun] directly and never use this constant.
"""

WEIGHT_FILE = "bestmodel-{bin}.h5"


def check_edges(edges: Sequence[float]) -> tuple[float, ...]:
    """``edges`` as a tuple of floats; ValueError unless they are >= 2 finite, strictly increasing values."""
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or not np.all(np.diff(e) > 0):
        raise ValueError(f"redshift bin edges must be >= 2 finite, strictly increasing values, got {edges!r}")
    return tuple(float(v) for v in e)


def redshift_bins(z: ArrayLike, edges: Sequence[float] = REDSHIFT_EDGES) -> NDArray[np.int64]:
    """1-based bin index of each redshift: bin i is (edges[i-1], edges[i]].

    Raises ValueError naming the first offending index for a redshift outside (edges[0], edges[-1]]
    or not finite, and for edges that are not strictly increasing.
    """
    e = np.asarray(check_edges(edges))
    zz = np.asarray(z, dtype=float)
    bins = np.searchsorted(e, zz, side="left")
    bad = ~np.isfinite(zz) | (bins < 1) | (bins >= e.size)
    if np.any(bad):
        first = np.unravel_index(int(np.argmax(bad)), zz.shape)
        where = f" at index {first if zz.ndim > 1 else first[0]}" if zz.ndim else ""
        raise ValueError(f"redshift {float(zz[first])!r}{where} is outside the bins ({e[0]:g}, {e[-1]:g}]")
    return bins.astype(np.int64)


def redshift_bin(z: float, edges: Sequence[float] = REDSHIFT_EDGES) -> int:
    """1-based bin index of one redshift: bin i is (edges[i-1], edges[i]]; ValueError outside (edges[0], edges[-1]]."""
    return int(redshift_bins(float(z), edges))


def load_published_cnn(path: str | os.PathLike[str]) -> keras.Model:
    """`build_cnn` with the weights of one ``bestmodel-{bin}.h5``: standardised map -> log10 M500 [h^-1 Msun]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"published DeepPlanck weights not found: {path}")
    with h5py.File(path, "r") as f:
        if "layer_names" not in f.attrs:
            raise ValueError(f"{path}: no 'layer_names' attribute; expected Keras HDF5 weights (bestmodel-*.h5)")
    cnn = build_cnn()
    try:
        cnn.load_weights(path)
    except ValueError as exc:
        raise ValueError(f"{path}: weights do not fit the DeepPlanck CNN (szmass.model.build_cnn): {exc}") from exc
    return cnn


def load_published(weights_dir: str | os.PathLike[str]) -> dict[int, keras.Model]:
    """The four published networks, bin index 1..4 -> model taking RAW y-maps (n, 96, 96, 1), giving log10 M500 [Msun].

    Each model standardises with the bin's `INPUT_MEAN` and `INPUT_STD` and subtracts log10(`H_PUBLISHED`).
    """
    weights_dir = Path(weights_dir)
    return {
        b: with_standardisation(
            load_published_cnn(weights_dir / WEIGHT_FILE.format(bin=b)),
            INPUT_MEAN[b - 1],
            INPUT_STD[b - 1],
            output_offset=-float(np.log10(H_PUBLISHED)),
            name=f"deepplanck_bin{b}",
        )
        for b in range(1, len(REDSHIFT_EDGES))
    }
