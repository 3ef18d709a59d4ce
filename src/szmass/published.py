"""The published DeepPlanck networks (de Andres et al. 2022): weights, standardisation, redshift bins.

Source: the data release github.com/The300th/DeepPlanck (``DeepPlanck.py``, ``BaseModel.PredictMass``
and ``weights/bestmodel-{1..4}.h5``; docs/physics.md). The files are Keras 2 (TF 2.7) HDF5 weights of a
subclassed model whose weighted layers are, in order, the three convolutions and four dense layers of
`szmass.model.build_cnn`; Keras's legacy HDF5 loader assigns them by that order.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from szmass.model import build_cnn, with_standardisation  # noqa: E402
from szmass.zbins import REDSHIFT_EDGES, check_edges, redshift_bin, redshift_bins  # noqa: E402,F401  (re-exported)

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


def load_published_cnn(path: str | os.PathLike[str]) -> keras.Model:
    """`build_cnn` with the weights of one ``bestmodel-{bin}.h5``: standardised map -> log10 M500 [h^-1 Msun]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"published DeepPlanck weights not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            has_layer_names = "layer_names" in f.attrs
    except OSError as exc:
        raise ValueError(f"{path}: not an HDF5 file ({exc}); expected Keras HDF5 weights (bestmodel-*.h5)") from exc
    if not has_layer_names:
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
