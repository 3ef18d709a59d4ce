"""Tests of szmass.aperture: exact shares of projected SPH kernels inside a disc (Y500_cyl without a map)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy.integrate import dblquad

from szmass import aperture
from szmass.aperture import aperture_fractions, aperture_sum
from szmass.kernels import KERNEL_NAMES, projected_kernel, separable_marginal, separable_quadrant


def disc_share_dblquad(rho: float, kappa: float, kernel: str) -> float:
    """Share of a unit-support projected kernel at distance rho from the centre of a disc of radius kappa.

    A 2D scipy quadrature in polar coordinates about the particle: radius u in [0, 1], and for each u the
    polar angle phi (from the direction away from the disc's centre) over the arc inside the disc.
    """

    def phi_lo(u: float) -> float:
        # |(u cos phi + rho, u sin phi)| < kappa  <=>  cos phi < (kappa^2 - rho^2 - u^2) / (2 u rho)
        if u == 0.0 or rho == 0.0:
            return 0.0 if u < kappa else np.pi
        c = (kappa**2 - rho**2 - u**2) / (2.0 * u * rho)
        return float(np.arccos(np.clip(c, -1.0, 1.0)))

    value, _ = dblquad(
        lambda phi, u: 2.0 * u * float(projected_kernel(kernel, u)), 0.0, 1.0, phi_lo, lambda u: np.pi,
        epsabs=1e-9, epsrel=1e-9,
    )
    return value


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize(
    ("rho", "kappa"),
    [(10.0, 10.3), (10.0, 9.5), (30.0, 30.0), (2.0, 1.5), (0.5, 1.2), (0.3, 0.5), (0.9, 0.2), (0.0, 0.5)],
)
def test_straddling_particle_matches_a_2d_quadrature(kernel: str, rho: float, kappa: float) -> None:
    """A particle the circle crosses: its share inside the disc to 1e-6 of its weight, for R / H from 0.2 to 30."""
    share = aperture_fractions(np.array([rho]), np.array([0.0]), np.array([1.0]), kappa, kernel=kernel)[0]
    assert share == pytest.approx(disc_share_dblquad(rho, kappa, kernel), abs=1e-6)


@pytest.mark.parametrize(("kernel", "bound"), [("wendland_c4", 2e-7), ("cubic_spline", 5e-7)])
def test_tabulated_shares_match_the_quadrature(kernel: str, bound: float) -> None:
    """The bicubic table against the chord quadrature it interpolates, at 4000 random crossings with R / H from
    0.2 (the table's end) to 50, the particle anywhere across the circle (and over the centre of a small disc)."""
    factors, coeff = separable_quadrant(kernel)
    slopes, table = separable_marginal(kernel), aperture._table(kernel)
    rng = np.random.default_rng(8)
    for k in range(4000):
        kappa = 1.0 / rng.uniform(0.0, aperture.V_MAX) if k % 2 else rng.uniform(0.2, 50.0)
        u = rng.uniform(-min(1.0, kappa), 1.0)
        direct = aperture._crossed_fraction(abs(u + kappa), kappa, factors, slopes, coeff, aperture._NODES,
                                            aperture._WEIGHTS)
        assert abs(aperture._tabulated(table, u, 1.0 / kappa, aperture.V_MAX) - direct) < bound


def test_share_is_invariant_under_rotation_and_scaling() -> None:
    angles = np.linspace(0.0, 2.0 * np.pi, 7)
    x, y = 10.2 * np.cos(angles), 10.2 * np.sin(angles)
    shares = aperture_fractions(x, y, np.full(7, 0.5), 10.0)
    np.testing.assert_allclose(shares, shares[0], rtol=0, atol=1e-14)
    scaled = aperture_fractions(3.0 * x, 3.0 * y, np.full(7, 1.5), 30.0)
    np.testing.assert_allclose(scaled, shares, rtol=0, atol=1e-14)


def test_wholly_inside_and_outside_are_exact() -> None:
    x = np.array([0.0, 5.0, 8.99, 11.01, 20.0, 9.0, 11.0])
    h = np.array([1.0, 2.0, 1.0, 1.0, 5.0, 0.0, 0.0])
    np.testing.assert_array_equal(aperture_fractions(x, np.zeros(7), h, 10.0), [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    # a point on the circle counts half
    assert aperture_fractions(np.array([10.0]), np.zeros(1), np.zeros(1), 10.0)[0] == 0.5


@pytest.mark.parametrize("radius", [20.0, 20.37])
def test_uniform_disc_of_particles_gives_its_analytic_y(radius: float) -> None:
    """A square lattice (spacing 1, weight 1, H = 3) filling a disc wider than the aperture: Y = pi R^2.

    The lattice's summed kernels are uniform to ~1e-6 (the SPH ripple at H = 3 spacings), so the
    aperture's integral equals the surface density times its area to that level.
    """
    g = np.arange(-30, 31, dtype=float)
    x, y = (c.ravel() + 0.3 * s for c, s in zip(np.meshgrid(g, g), (1.0, 0.4)))
    keep = np.hypot(x, y) < radius + 7.0
    total = aperture_sum(x[keep], y[keep], np.full(keep.sum(), 3.0), np.ones(keep.sum()), radius)
    assert total == pytest.approx(np.pi * radius**2, rel=1e-5)
    # the pixel-free sum is not the count of centres inside (that is off by ~1e-3 for this lattice)
    assert abs(total - np.count_nonzero(np.hypot(x, y) < radius)) > 1e-4 * total


def test_sum_is_identical_for_one_and_two_threads() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.0, 50.0, (2, 200_000))
    h, w = rng.uniform(0.1, 20.0, 200_000), rng.uniform(0.5, 2.0, 200_000)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = aperture_sum(x, y, h, w, 40.0)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = aperture_sum(x, y, h, w, 40.0)
    finally:
        numba.set_num_threads(before)
    assert one == two


@pytest.mark.parametrize(
    ("radius", "x", "hsml", "kernel", "match"),
    [
        (0.0, [1.0], [1.0], "wendland_c4", r"aperture radius must be a positive finite length, got 0.0"),
        (np.nan, [1.0], [1.0], "wendland_c4", r"aperture radius must be a positive finite length, got nan"),
        (1.0, [1.0], [-1.0], "wendland_c4", r"hsml has negative values"),
        (1.0, [1.0, 2.0], [1.0], "wendland_c4", r"x, y, hsml must be 1D arrays of one length"),
        (1.0, [1.0], [1.0], "gaussian", r"unknown SPH kernel 'gaussian'"),
    ],
)
def test_bad_input_is_rejected(radius: float, x: list, hsml: list, kernel: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        aperture_fractions(np.asarray(x), np.zeros(len(x)), np.asarray(hsml), radius, kernel=kernel)
