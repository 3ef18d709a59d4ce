"""Redshift bins: the paper's four, (0, 0.1], (0.1, 0.2], (0.2, 0.4], (0.4, 1], and any other edges.

Kept free of heavy imports (no TensorFlow) so that every stage can bin by redshift.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

REDSHIFT_EDGES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4, 1.0)
"""The paper's redshift bins (0, 0.1], (0.1, 0.2], (0.2, 0.4], (0.4, 1]; bin i uses bestmodel-i.h5."""


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
