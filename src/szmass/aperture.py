"""Exact aperture integrals of SPH particles: the share of each particle's projected kernel inside a disc.

Y500_cyl is the y-weight of the gas inside the cylinder of radius R500 about the halo centre. Each particle
contributes its weight times the integral of its projected kernel (:mod:`szmass.kernels`) over the disc of
radius R500, so Y500_cyl needs no map and does not depend on any pixel size:

* a particle whose support (radius H) lies wholly inside the disc contributes its whole weight, one wholly
  outside nothing: both exactly;
* a particle the circle crosses (|r - R| < H, r its projected distance from the centre) contributes

      f = 2 * integral_0^Y [Q(s(y) - rho, y) - Q(-s(y) - rho, y)] dy,   s(y) = sqrt(kappa^2 - y^2),

  in units of H (rho = r / H, kappa = R / H, Y = min(1, kappa)): the disc cut into chords parallel to the
  line joining the particle to the centre, Q(a, y) the integral of the projected kernel F along such a
  chord from its centre to a. Q is the derivative dD/dy of the kernel's quadrant integral D, whose
  separable form ``sum_m c_m S_m(a) S_m(y)`` sph.project uses (:func:`szmass.kernels.separable_marginal`),
  so Q = ``sum_m c_m S_m(a) S_m'(y)`` and the whole-plane integral is the same 4 D(1, 1) = 1 the
  projection deposits. The chord integral is smooth in y apart from the square-root end point
  s(kappa) = 0 when the disc is smaller than the kernel (kappa < 1), removed by y = kappa sin(t);
  ``N_NODES`` Gauss-Legendre nodes then give f to ~5e-8 (Wendland C4) and ~4e-7 (cubic spline, the rank-8
  separable form's own accuracy) of the weight against a 2D scipy integral of F over the disc, for R / H
  from 0.2 to 30 (tests/test_aperture.py checks 1e-6).

Point particles (H = 0) count wholly inside (r < R), outside (r > R) or half (r = R).
Fractions are computed in parallel (numba) and summed in a fixed order: the result does not depend on the
number of threads.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numba import njit, prange
from numpy.polynomial.legendre import leggauss

from szmass.kernels import KERNEL_NAMES, N_FINE, separable_marginal, separable_quadrant

N_NODES: Final[int] = 24
"""Gauss-Legendre nodes of the chord integral of a particle the aperture's circle crosses."""

_NODES, _WEIGHTS = leggauss(N_NODES)


@njit(cache=True, inline="always")
def _interp(table: np.ndarray, a: float, m: int) -> float:
    """Linear interpolation of column ``m`` of a factor table at |a| <= 1 (a clamped to [0, 1])."""
    t = min(abs(a), 1.0) * N_FINE
    cell = min(int(t), N_FINE - 1)
    f = t - cell
    return table[cell, m] + f * (table[cell + 1, m] - table[cell, m])


@njit(cache=True)
def _crossed_fraction(
    rho: float, kappa: float, factors: np.ndarray, slopes: np.ndarray, coeff: np.ndarray, nodes: np.ndarray,
    weights: np.ndarray,
) -> float:
    """Share of a unit-support kernel at distance ``rho`` from the centre of a disc of radius ``kappa``."""
    rank = coeff.size
    small = kappa < 1.0
    span = 0.5 * np.pi if small else 1.0  # t in [0, pi/2] (y = kappa sin t) or y in [0, 1]
    total = 0.0
    for k in range(nodes.size):
        t = 0.5 * span * (nodes[k] + 1.0)
        if small:
            y = kappa * np.sin(t)
            jac = kappa * np.cos(t)
        else:
            y = t
            jac = 1.0
        s = np.sqrt(max(kappa * kappa - y * y, 0.0))
        hi = s - rho
        lo = -s - rho
        sign_hi = np.copysign(1.0, hi)  # S_m is odd
        sign_lo = np.copysign(1.0, lo)
        row = 0.0
        for m in range(rank):
            chord = sign_hi * _interp(factors, hi, m) - sign_lo * _interp(factors, lo, m)
            row += coeff[m] * chord * _interp(slopes, y, m)
        total += weights[k] * jac * row
    return 2.0 * 0.5 * span * total


@njit(cache=True, parallel=True)
def _fractions(
    x: np.ndarray, y: np.ndarray, hsml: np.ndarray, radius: float, factors: np.ndarray, slopes: np.ndarray,
    coeff: np.ndarray, nodes: np.ndarray, weights: np.ndarray,
) -> np.ndarray:
    out = np.empty(x.size)
    for p in prange(x.size):
        r = np.hypot(x[p], y[p])
        h = hsml[p]
        if h <= 0.0:  # a point
            out[p] = 1.0 if r < radius else (0.0 if r > radius else 0.5)
        elif r + h <= radius:
            out[p] = 1.0
        elif r - h >= radius:
            out[p] = 0.0
        else:
            out[p] = _crossed_fraction(r / h, radius / h, factors, slopes, coeff, nodes, weights)
    return out


def aperture_fractions(
    x: np.ndarray, y: np.ndarray, hsml: np.ndarray, radius: float, *, kernel: str = "wendland_c4"
) -> np.ndarray:
    """Share (N,) of each particle's projected kernel inside the disc of ``radius`` about (0, 0).

    ``x``, ``y`` projected positions, ``hsml`` kernel support radii H >= 0 and ``radius`` in one length unit.
    """
    if kernel not in KERNEL_NAMES:
        raise ValueError(f"unknown SPH kernel {kernel!r}; expected one of {KERNEL_NAMES}")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"aperture radius must be a positive finite length, got {radius!r}")
    xs, ys, hs = (np.ascontiguousarray(a, dtype=np.float64) for a in (x, y, hsml))
    if not xs.ndim == 1 or not xs.shape == ys.shape == hs.shape:
        raise ValueError(f"x, y, hsml must be 1D arrays of one length, got shapes {[xs.shape, ys.shape, hs.shape]}")
    if np.any(hs < 0):
        raise ValueError("hsml has negative values; expected support radii >= 0")
    factors, coeff = separable_quadrant(kernel)
    return _fractions(xs, ys, hs, float(radius), factors, separable_marginal(kernel), coeff, _NODES, _WEIGHTS)


def aperture_sum(
    x: np.ndarray, y: np.ndarray, hsml: np.ndarray, weight: np.ndarray, radius: float, *, kernel: str = "wendland_c4"
) -> float:
    """Sum of ``weight`` times :func:`aperture_fractions`: the particles' weight inside the disc (same for any thread count)."""
    frac = aperture_fractions(x, y, hsml, radius, kernel=kernel)
    return float(np.sum(np.asarray(weight, dtype=np.float64) * frac))


__all__ = ["N_NODES", "aperture_fractions", "aperture_sum"]
