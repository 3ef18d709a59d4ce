"""SPH smoothing kernels, their line-of-sight projections, and the pixel-integration table.

All kernels are written in the dimensionless radius q = r / H, where H is the kernel's
*support radius* (the kernel vanishes for q >= 1; GADGET's ``hsml``). With ``w(q)`` the
3D kernel normalised so that the integral of ``w`` over the unit ball is 1, a particle's
density kernel is ``W(r; H) = w(r / H) / H**3`` [1 / length**3].

Kernels (names accepted by :func:`szmass.sph.project`):

``"cubic_spline"``
    The M4 cubic B-spline in GADGET's convention (Monaghan & Lattanzio 1985; Springel
    2005), support radius H: ``w = 8/pi * (1 - 6 q^2 + 6 q^3)`` for q < 1/2 and
    ``8/pi * 2 (1 - q)^3`` for 1/2 <= q < 1.
``"wendland_c4"``
    The Wendland C4 kernel used by GADGET-X (Dehnen & Aly 2012, Table 1), support radius
    H: ``w = 495 / (32 pi) * (1 - q)^6 * (1 + 6 q + 35/3 q^2)``.

The projected (line-of-sight integrated) kernel ``F(R / H) / H**2`` [1 / length**2] is
``F(q) = 2 * integral_0^sqrt(1 - q^2) w(sqrt(q^2 + s^2)) ds``, computed once with
:func:`scipy.integrate.quad_vec` on ``N_PROJECTED`` radii and interpolated with a cubic spline.

Pixel integrals use the *quadrant integral*
``D(a, b) = integral_0^a integral_0^b F(sqrt(u^2 + v^2)) dv du`` for (a, b) in [0, 1]^2,
extended to [-1, 1]^2 as an odd function of each argument (it is constant beyond 1).
The integral of F over any rectangle [a0, a1] x [b0, b1] (in units of H) is
``D(a1, b1) - D(a0, b1) - D(a1, b0) + D(a0, b0)``: terms that depend on one argument only
cancel in this difference. :func:`quadrant_table` tabulates D on an
``(N_TABLE + 1)**2`` grid; :func:`separable_quadrant` writes it as a short sum of
products, ``D(a, b) = sum_m c_m S_m(a) S_m(b)``, m < ``RANK`` = 8: the leading terms of
the eigen-decomposition of the symmetric table, each S_m a cubic spline through its
N_TABLE + 1 values, tabulated on the finer grid of ``N_FINE`` intervals that the
projection interpolates linearly. The integral over a pixel is then a rank-8 sum of
products of 1D differences, which is what makes the projection fast. The weights are
normalised so that ``4 D(1, 1) = 1``, the integral of F over the plane: every particle
deposits exactly its weight. Pixel integrals of the projected kernel are reproduced to
~1e-6 (Wendland C4) and ~1e-5 (cubic spline, whose eigenvalues decay more slowly) of
the kernel's peak pixel value, for kernels of 1 to 300 pixels; where F vanishes the
truncated sum leaves at most ~1e-9 (Wendland C4) and ~1e-7 (cubic spline) of the total,
of either sign (tests/test_sph.py).
"""

from __future__ import annotations

import functools
from typing import Final

import numpy as np
from numpy.polynomial.legendre import leggauss
from scipy.integrate import quad_vec
from scipy.interpolate import CubicSpline

KERNEL_NAMES: Final[tuple[str, ...]] = ("cubic_spline", "wendland_c4")
"""Kernels accepted by :func:`projected_kernel`, :func:`quadrant_table` and ``sph.project``."""

N_PROJECTED: Final[int] = 2049
"""Radii q = k / (N_PROJECTED - 1) at which F(q) is integrated with scipy."""

N_TABLE: Final[int] = 512
"""Cells per axis of the quadrant table D on [0, 1]^2 (cell width 1 / N_TABLE in units of H)."""

RANK: Final[int] = 8
"""Terms of the separable form of D (the projection's pixel loop is unrolled for exactly 8)."""

N_FINE: Final[int] = 4096
"""Intervals of the grid on [0, 1] on which the separable factors S_m are tabulated."""

_GAUSS_NODES: Final[int] = 3
"""Gauss-Legendre nodes per axis used to average F over one table cell."""

_CUBIC_BREAK: Final[float] = 0.5
"""q at which the cubic spline changes polynomial piece."""


def _check_name(kernel: str) -> None:
    if kernel not in KERNEL_NAMES:
        raise ValueError(f"unknown SPH kernel {kernel!r}; expected one of {KERNEL_NAMES}")


def kernel_3d(kernel: str, q: np.ndarray | float) -> np.ndarray:
    """Dimensionless 3D kernel w(q), q = r / H; W(r; H) = w(r / H) / H**3 [1 / length**3]."""
    _check_name(kernel)
    q = np.abs(np.asarray(q, dtype=np.float64))
    inside = q < 1.0
    one_minus = np.where(inside, 1.0 - q, 0.0)
    if kernel == "cubic_spline":
        inner = 1.0 - 6.0 * q**2 + 6.0 * q**3
        outer = 2.0 * one_minus**3
        return 8.0 / np.pi * np.where(q < _CUBIC_BREAK, inner, outer)
    return 495.0 / (32.0 * np.pi) * one_minus**6 * (1.0 + 6.0 * q + 35.0 / 3.0 * q**2)


@functools.cache
def _projected_spline(kernel: str) -> CubicSpline:
    """Cubic spline through F(q) on N_PROJECTED radii in [0, 1].

    F(q) = 2 * integral_0^1 w(sqrt(q^2 + (t c)^2)) c dt with c = sqrt(1 - q^2), for all
    radii at once by adaptive vector quadrature (scipy.integrate.quad_vec), to ~1e-12.
    """
    _check_name(kernel)
    q = np.linspace(0.0, 1.0, N_PROJECTED)
    chord = np.sqrt(1.0 - q * q)
    values, _ = quad_vec(
        lambda t: 2.0 * chord * kernel_3d(kernel, np.hypot(q, t * chord)),
        0.0,
        1.0,
        epsabs=1e-13,
        epsrel=1e-12,
        norm="max",
        limit=2000,
    )
    return CubicSpline(q, values)


def projected_kernel(kernel: str, q: np.ndarray | float) -> np.ndarray:
    """Projected kernel F(q), q = R / H, in units of 1 / H**2; zero for q >= 1.

    Interpolated from the scipy quadrature table; its integral over the plane is 1 to
    the quadrature accuracy (~1e-10).
    """
    q = np.abs(np.asarray(q, dtype=np.float64))
    return np.where(q < 1.0, _projected_spline(kernel)(np.minimum(q, 1.0)), 0.0)


@functools.cache
def quadrant_table(kernel: str) -> np.ndarray:
    """Quadrant integral D(a, b) of F on a (N_TABLE + 1)**2 grid over [0, 1]^2, 4 D(1, 1) = 1.

    ``table[i, j] = D(i / N_TABLE, j / N_TABLE)``; symmetric; row and column 0 are zero.
    Cell averages of F use a tensor Gauss-Legendre rule with ``_GAUSS_NODES`` points per
    axis (F is smooth within cells away from the q = 1 circle, where it vanishes like
    (1 - q)^3.5 or faster). The array is read-only and cached per kernel.
    """
    spline = _projected_spline(kernel)
    nodes, weights = leggauss(_GAUSS_NODES)
    width = 1.0 / N_TABLE
    lower = np.arange(N_TABLE) * width
    u = (lower[:, None] + 0.5 * width * (nodes[None, :] + 1.0)).ravel()  # (N_TABLE * G,)
    wu = np.tile(0.5 * width * weights, N_TABLE)
    cells = np.zeros((N_TABLE, N_TABLE))
    for i in range(N_TABLE):  # one row of cells at a time keeps the temporaries small
        ui = u[i * _GAUSS_NODES : (i + 1) * _GAUSS_NODES]
        q = np.hypot(ui[:, None], u[None, :])
        f = np.where(q < 1.0, spline(np.minimum(q, 1.0)), 0.0)
        row = (wu[i * _GAUSS_NODES : (i + 1) * _GAUSS_NODES, None] * f * wu[None, :]).sum(axis=0)
        cells[i] = row.reshape(N_TABLE, _GAUSS_NODES).sum(axis=1)
    table = np.zeros((N_TABLE + 1, N_TABLE + 1))
    table[1:, 1:] = np.cumsum(np.cumsum(cells, axis=0), axis=1)
    table = 0.5 * (table + table.T)
    table /= 4.0 * table[-1, -1]
    table.setflags(write=False)
    return table


@functools.cache
def _separable_splines(kernel: str) -> tuple[CubicSpline, np.ndarray]:
    """Cubic splines through the leading RANK scaled eigenvectors of the quadrant table, and the weights c_m."""
    table = quadrant_table(kernel)
    eigenvalues, vectors = np.linalg.eigh(table)
    order = np.argsort(-np.abs(eigenvalues), kind="stable")[:RANK]
    eigenvalues, vectors = eigenvalues[order], vectors[:, order]
    nodes = vectors * np.sqrt(np.abs(eigenvalues))
    nodes[0] = 0.0
    zero = np.zeros(RANK)
    spline = CubicSpline(np.linspace(0.0, 1.0, N_TABLE + 1), nodes, axis=0, bc_type=((2, zero), (1, zero)))
    factors = spline(np.linspace(0.0, 1.0, N_FINE + 1))
    at_one = factors[-2] + 1.0 * (factors[-1] - factors[-2])
    weights = np.sign(eigenvalues)
    weights = weights / (4.0 * np.sum(weights * at_one**2))
    weights.setflags(write=False)
    return spline, weights


@functools.cache
def separable_quadrant(kernel: str) -> tuple[np.ndarray, np.ndarray]:
    """Separable form ``D(a, b) = sum_m c_m S_m(a) S_m(b)`` of the quadrant integral, a, b in [0, 1].

    Returns ``(factors, c)``: ``factors`` (N_FINE + 1, RANK) holds S_m(j / N_FINE), to be
    interpolated linearly; ``c`` (RANK,) the signed weights, scaled so that
    ``4 sum_m c_m S_m(1)**2 = 1`` with S_m(1) evaluated as the projection does (the last
    interval at fraction 1). S_m(0) = 0 (D is odd); the splines through the
    eigenvectors have S_m'' = 0 at a = 0 and S_m' = 0 at a = 1 (D is constant beyond
    the support). Both arrays are read-only.
    """
    spline, weights = _separable_splines(kernel)
    factors = spline(np.linspace(0.0, 1.0, N_FINE + 1))
    factors[0] = 0.0
    factors = np.ascontiguousarray(factors)
    factors.setflags(write=False)
    return factors, weights


@functools.cache
def separable_marginal(kernel: str) -> np.ndarray:
    """Derivatives S_m'(j / N_FINE) (N_FINE + 1, RANK) of the factors of :func:`separable_quadrant`; read-only.

    With them, ``sum_m c_m S_m(a) S_m'(b)`` = dD/db = the integral of F(sqrt(u^2 + b^2)) over u in [0, a]:
    the projected kernel integrated along a line (used by :mod:`szmass.aperture`). S_m' is even.
    """
    spline, _ = _separable_splines(kernel)
    slopes = np.ascontiguousarray(spline.derivative()(np.linspace(0.0, 1.0, N_FINE + 1)))
    slopes.setflags(write=False)
    return slopes
