"""The 27 lines of sight along which every halo is projected.

A projection along -n is the mirror image of the projection along n, so distinct lines of sight are
directions on a hemisphere. We use the equal-area golden-angle (Fibonacci) lattice on the upper
hemisphere::

    cos(theta_k) = 1 - (k + 1/2) / 27,   phi_k = k * pi * (3 - sqrt(5)),   k = 0 .. 26,

which covers the hemisphere almost uniformly (each direction represents the same solid angle, 2 pi / 27
sr); the smallest angle between two of the 27 lines (counting n and -n as one line) is 14.6 degrees.

Projection ``k`` uses the rotation matrix R_k whose third row is the line of sight n_k: image coordinates
of a position r (relative to the halo centre) are (x', y', z') = R_k r, with z' along the line of sight.
R_k is the smallest rotation that takes n_k onto the z axis (scipy ``Rotation.align_vectors``), so the
image axes vary smoothly with n_k and projection 0 (n_0 close to the pole) is close to the simulation's
own (x, y) projection.
"""

from __future__ import annotations

import operator

import numpy as np
from scipy.spatial.transform import Rotation

N_PROJECTIONS = 27
"""Number of lines of sight per halo."""


def directions(n: int = N_PROJECTIONS) -> np.ndarray:
    """Unit vectors (n, 3) of the golden-angle lattice of ``n`` lines of sight on the upper hemisphere (z > 0)."""
    if n < 1:
        raise ValueError(f"number of lines of sight must be >= 1, got {n}")
    k = np.arange(n)
    cos_theta = 1.0 - (k + 0.5) / n
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    phi = k * np.pi * (3.0 - np.sqrt(5.0))
    return np.stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta], axis=1)


def _rotation_to_z(n: np.ndarray) -> np.ndarray:
    """The smallest rotation matrix R with R @ n = z (so R's third row is n)."""
    rot, _ = Rotation.align_vectors(np.array([[0.0, 0.0, 1.0]]), n[None, :])
    return rot.as_matrix()


ROTATIONS: np.ndarray = np.stack([_rotation_to_z(n) for n in directions()])
"""Rotation matrices (27, 3, 3) of the lines of sight; ``ROTATIONS[k][2]`` is the line of sight n_k."""
ROTATIONS.setflags(write=False)


def rotation_matrix(projection: int) -> np.ndarray:
    """Rotation matrix (3, 3) of line of sight ``projection`` in 0..26 (third row = the line of sight)."""
    try:
        k = operator.index(projection)
    except TypeError:
        k = -1
    if not 0 <= k < N_PROJECTIONS:
        raise ValueError(f"projection index must be an integer in 0..{N_PROJECTIONS - 1}, got {projection!r}")
    return ROTATIONS[k]
