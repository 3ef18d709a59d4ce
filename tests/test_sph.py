"""Tests of the SPH kernels (szmass.kernels) and the numba projection (szmass.sph.project).

Reference values are computed here independently with scipy: the 3D kernels are written
out again from their published definitions, integrated along the line of sight with
``scipy.integrate.quad`` and over pixels with ``scipy.integrate.dblquad``.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import pytest
from scipy.integrate import dblquad, quad
from scipy.interpolate import CubicSpline
from scipy.spatial import cKDTree

from szmass import kernels
from szmass.sph import TILE, _aligned_factors, project

KERNELS = ("cubic_spline", "wendland_c4")

# Largest error of a pixel value against the exact pixel integral, as a fraction of the
# map's peak (documented in szmass.kernels: ~1e-6 for Wendland C4, ~1e-5 for the cubic spline).
PIXEL_TOLERANCE = {"wendland_c4": 3e-6, "cubic_spline": 3e-5}
# Largest |value| a particle may leave in a pixel where its kernel vanishes (rank-8
# truncation of the separable form), as a fraction of its weight / pixel area.
RIPPLE = {"wendland_c4": 3e-9, "cubic_spline": 3e-7}


def reference_kernel_3d(kernel: str, q: float) -> float:
    """w(q) with support 1 and unit volume integral, from Monaghan & Lattanzio 1985 / Dehnen & Aly 2012."""
    if q >= 1.0:
        return 0.0
    if kernel == "cubic_spline":
        return 8.0 / np.pi * (1.0 - 6.0 * q**2 + 6.0 * q**3 if q < 0.5 else 2.0 * (1.0 - q) ** 3)
    return 495.0 / (32.0 * np.pi) * (1.0 - q) ** 6 * (1.0 + 6.0 * q + 35.0 / 3.0 * q**2)


def reference_projected(kernel: str, q: float) -> float:
    """F(q) = integral of w along a line of sight at impact parameter q (units of H)."""
    if q >= 1.0:
        return 0.0
    chord = np.sqrt(1.0 - q * q)
    value, _ = quad(
        lambda z: reference_kernel_3d(kernel, np.hypot(q, z)), -chord, chord, epsabs=1e-14, limit=200
    )
    return value


@functools.cache
def reference_projected_spline(kernel: str) -> CubicSpline:
    """Cubic spline through F on 801 radii (for 2D integrals; accurate to ~1e-11)."""
    q = np.linspace(0.0, 1.0, 801)
    return CubicSpline(q, [reference_projected(kernel, qi) for qi in q])


def reference_pixel_integral(
    kernel: str, x0: float, y0: float, h: float, xa: float, xb: float, ya: float, yb: float
) -> float:
    """Integral of the projected kernel of a particle (x0, y0, H = h) over [xa, xb] x [ya, yb]."""
    spline = reference_projected_spline(kernel)

    def integrand(v: float, u: float) -> float:
        q = np.hypot(u - x0, v - y0) / h
        return float(spline(q)) / h**2 if q < 1.0 else 0.0

    value, _ = dblquad(integrand, xa, xb, ya, yb, epsabs=1e-12, epsrel=1e-9)
    return value


# ----------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_3d_matches_definition_and_is_normalised(kernel: str) -> None:
    q = np.linspace(0.0, 1.2, 61)
    expected = [reference_kernel_3d(kernel, qi) for qi in q]
    np.testing.assert_allclose(kernels.kernel_3d(kernel, q), expected, rtol=1e-14, atol=1e-14)
    shell = lambda r: 4.0 * np.pi * r * r * float(kernels.kernel_3d(kernel, r))  # noqa: E731
    volume, _ = quad(shell, 0.0, 1.0, points=[0.5])
    assert volume == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_projected_kernel_matches_line_of_sight_quadrature(kernel: str) -> None:
    q = np.array([0.0, 0.05, 0.3, 0.5, 0.71, 0.9, 0.99, 1.0, 1.5])
    expected = np.array([reference_projected(kernel, qi) for qi in q])
    np.testing.assert_allclose(kernels.projected_kernel(kernel, q), expected, rtol=1e-8, atol=1e-12)
    ring = lambda r: 2.0 * np.pi * r * float(kernels.projected_kernel(kernel, r))  # noqa: E731
    area, _ = quad(ring, 0.0, 1.0, limit=200)
    assert area == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("kernel", KERNELS)
def test_quadrant_table_is_the_quadrant_integral(kernel: str) -> None:
    table = kernels.quadrant_table(kernel)
    n = kernels.N_TABLE
    assert table[n, n] == pytest.approx(0.25, abs=1e-15)
    np.testing.assert_array_equal(table, table.T)
    assert np.all(table[0] == 0.0)
    i, j = n // 4, (3 * n) // 5  # D(0.25, 0.6) against a direct 2D integral
    expected = reference_pixel_integral(kernel, 0.0, 0.0, 1.0, 0.0, i / n, 0.0, j / n)
    assert table[i, j] == pytest.approx(expected, abs=1e-9)
    assert np.all(np.diff(table, axis=0) >= -1e-15) and np.all(np.diff(table, axis=1) >= -1e-15)


@pytest.mark.parametrize("kernel", KERNELS)
def test_separable_form_reproduces_the_table(kernel: str) -> None:
    factors, weights = kernels.separable_quadrant(kernel)
    assert factors.shape == (kernels.N_FINE + 1, kernels.RANK)
    step = kernels.N_FINE // kernels.N_TABLE
    nodes = factors[::step]
    approx = (nodes * weights) @ nodes.T
    tolerance = {"wendland_c4": 1e-8, "cubic_spline": 1e-7}[kernel]
    np.testing.assert_allclose(approx, kernels.quadrant_table(kernel), atol=tolerance)
    at_one = factors[-2] + (factors[-1] - factors[-2])
    assert 4.0 * np.sum(weights * at_one**2) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("kernel", KERNELS)
def test_projection_factor_table_is_cache_line_aligned_with_the_same_values(kernel: str) -> None:
    factors, weights = kernels.separable_quadrant(kernel)
    aligned, aligned_weights = _aligned_factors(kernel)
    assert aligned.ctypes.data % 64 == 0 and aligned.shape[1] * aligned.itemsize == 64  # a row per line
    np.testing.assert_array_equal(aligned, factors)
    np.testing.assert_array_equal(aligned_weights, weights)
    assert not aligned.flags.writeable


def test_unknown_kernel_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown SPH kernel 'gaussian'"):
        kernels.projected_kernel("gaussian", 0.1)


# ----------------------------------------------------------------------------- single particles


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("h_pixels", [1.7, 6.3, 41.0])
def test_single_particle_pixels_are_pixel_integrals(kernel: str, h_pixels: float) -> None:
    pixel = 0.5
    npix = 2 * int(h_pixels) + 8
    x0, y0, h = 0.37 * pixel, -0.21 * pixel, h_pixels * pixel
    image = project([x0], [y0], [h], [3.0], npix=npix, pixel_size=pixel, kernel=kernel)
    peak = image.max()
    centre = npix // 2
    offsets = [(0, 0), (int(0.3 * h_pixels), -int(0.2 * h_pixels)), (int(0.6 * h_pixels), 1)]
    offsets.append((int(h_pixels) - 1, 0))
    for di, dj in offsets:
        i, j = centre + di, centre + dj
        xa, ya = (i - npix / 2) * pixel, (j - npix / 2) * pixel
        integral = reference_pixel_integral(kernel, x0, y0, h, xa, xa + pixel, ya, ya + pixel)
        expected = 3.0 * integral / pixel**2
        assert abs(image[j, i] - expected) <= PIXEL_TOLERANCE[kernel] * peak, (di, dj)


@pytest.mark.parametrize("kernel", KERNELS)
def test_large_particle_samples_the_projected_kernel_at_pixel_centres(kernel: str) -> None:
    """H = 60 pixels: pixel averages equal centre values to the midpoint-rule error.

    That error is (pixel^2 / 24) |laplacian F| / H^4 at most, i.e. ~3e-4 of the peak.
    """
    npix, h = 128, 60.0
    image = project([0.0], [0.0], [h], [1.0], npix=npix, pixel_size=1.0, kernel=kernel)
    spline = reference_projected_spline(kernel)
    centres = np.arange(npix) - npix / 2 + 0.5
    radius = np.hypot(*np.meshgrid(centres, centres, indexing="xy")) / h
    expected = spline(np.minimum(radius, 1.0)) * (radius < 1.0) / h**2
    q = np.linspace(1e-3, 1.0, 2000)
    laplacian = np.abs(spline(q, 2) + spline(q, 1) / q).max()
    tolerance = 1.0 / 24.0 * laplacian / h**4 + PIXEL_TOLERANCE[kernel] * expected.max()
    assert np.abs(image - expected).max() <= tolerance


@pytest.mark.parametrize("kernel", KERNELS)
def test_tiny_particles_go_whole_into_their_pixel(kernel: str) -> None:
    rng = np.random.default_rng(5)
    npix, pixel = 16, 2.0
    x = rng.uniform(-15.0, 15.0, 50)
    y = rng.uniform(-15.0, 15.0, 50)
    h = np.full(50, 1e-4)
    h[::2] = 0.0  # point masses
    w = rng.uniform(1.0, 2.0, 50)
    image = project(x, y, h, w, npix=npix, pixel_size=pixel, kernel=kernel)
    i = np.floor(x / pixel + npix / 2).astype(int)
    j = np.floor(y / pixel + npix / 2).astype(int)
    expected = np.zeros((npix, npix))
    np.add.at(expected, (j, i), w / pixel**2)
    np.testing.assert_allclose(image, expected, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_tiny_particle_on_a_pixel_corner_splits_in_four(kernel: str) -> None:
    image = project([1.0], [-2.0], [0.01], [4.0], npix=8, pixel_size=1.0, kernel=kernel)
    assert np.count_nonzero(image) == 4
    np.testing.assert_allclose(image[1:3, 4:6], 1.0, rtol=1e-13)


@pytest.mark.parametrize("h_pixels", [0.4, 0.9, 1.4, 1.9])
def test_small_particle_on_a_tile_corner_gives_its_pixel_integrals(h_pixels: float) -> None:
    """Footprints of 2 to 5 pixels a side, split over the four tiles meeting at the map centre."""
    npix, pixel = 2 * TILE, 1.0
    x0, y0, h = 0.23 * h_pixels, -0.37 * h_pixels, h_pixels * pixel
    image = project([x0], [y0], [h], [2.0], npix=npix, pixel_size=pixel)
    assert image.sum() * pixel**2 == pytest.approx(2.0, rel=1e-12)
    j, i = np.nonzero(image)
    assert i.max() - i.min() + 1 == np.floor(x0 + h) - np.floor(x0 - h) + 1  # the whole footprint
    assert i.min() < TILE <= i.max() and j.min() < TILE <= j.max()  # the footprint straddles the tiles
    for jj in range(j.min(), j.max() + 1):
        for ii in range(i.min(), i.max() + 1):
            xa, ya = (ii - npix / 2) * pixel, (jj - npix / 2) * pixel
            integral = reference_pixel_integral("wendland_c4", x0, y0, h, xa, xa + pixel, ya, ya + pixel)
            assert abs(image[jj, ii] - 2.0 * integral / pixel**2) <= PIXEL_TOLERANCE["wendland_c4"] * image.max()


@pytest.mark.parametrize("kernel", KERNELS)
def test_particles_straddling_tile_edges_match_the_same_particles_inside_one_tile(kernel: str) -> None:
    """Small supports (0.2-3 pixels) around the corner of four tiles, and shifted by TILE / 2 pixels
    into the middle of one tile: the same pixel values (to rounding) and the whole weight."""
    rng = np.random.default_rng(13)
    npix, pixel, n = 2 * TILE, 1.0, 400
    x = rng.uniform(-4.0, 4.0, n)
    y = rng.uniform(-4.0, 4.0, n)
    h = rng.uniform(0.2, 3.0, n)
    w = rng.uniform(0.5, 1.5, n)
    straddling = project(x, y, h, w, npix=npix, pixel_size=pixel, kernel=kernel)
    shift = TILE // 2
    inside = project(x - shift, y - shift, h, w, npix=npix, pixel_size=pixel, kernel=kernel)
    assert straddling.sum() * pixel**2 == pytest.approx(w.sum(), rel=1e-12)
    assert inside.sum() * pixel**2 == pytest.approx(w.sum(), rel=1e-12)
    window = slice(TILE - 8, TILE + 8)
    moved = slice(TILE - 8 - shift, TILE + 8 - shift)
    assert np.count_nonzero(straddling) == np.count_nonzero(straddling[window, window])
    np.testing.assert_allclose(
        straddling[window, window], inside[moved, moved], rtol=0.0, atol=1e-13 * straddling.max()
    )


# ----------------------------------------------------------------------------- conservation


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("h_range", [(0.0, 0.05), (0.3, 3.0), (20.0, 120.0)])
def test_weight_is_conserved_inside_the_map(kernel: str, h_range: tuple[float, float]) -> None:
    """All supports inside the map: map.sum() * pixel**2 == weight.sum(), across several tiles."""
    rng = np.random.default_rng(11)
    npix, pixel = 2 * TILE + 44, 0.25
    n = 3000
    h = rng.uniform(*h_range, n) * pixel
    half_width = npix / 2 * pixel - h - 1e-9
    x = rng.uniform(-1.0, 1.0, n) * half_width
    y = rng.uniform(-1.0, 1.0, n) * half_width
    w = rng.uniform(0.1, 1.0, n)
    image = project(x, y, h, w, npix=npix, pixel_size=pixel, kernel=kernel)
    assert image.sum() * pixel**2 == pytest.approx(w.sum(), rel=1e-12)
    assert image.min() >= -RIPPLE[kernel] * w.max() / pixel**2


@pytest.mark.parametrize("kernel", KERNELS)
def test_particle_on_the_edge_loses_exactly_the_outside_part(kernel: str) -> None:
    npix, pixel, h = 64, 1.0, 10.0
    edge = npix / 2 * pixel
    on_edge = project([edge], [0.3], [h], [1.0], npix=npix, pixel_size=pixel, kernel=kernel)
    assert on_edge.sum() == pytest.approx(0.5, abs=1e-13)
    on_corner = project([-edge], [-edge], [h], [1.0], npix=npix, pixel_size=pixel, kernel=kernel)
    assert on_corner.sum() == pytest.approx(0.25, abs=1e-13)
    # Centre 0.3 H outside the right edge: the map keeps the part of the kernel at u < -0.3 H.
    outside = project([edge + 0.3 * h], [1.7], [h], [1.0], npix=npix, pixel_size=pixel, kernel=kernel)
    def marginal(u: float) -> float:
        return quad(lambda v: reference_projected(kernel, np.hypot(u, v)), -1.0, 1.0, epsabs=1e-13)[0]

    kept, _ = quad(marginal, -1.0, -0.3, epsabs=1e-12)
    assert outside.sum() == pytest.approx(kept, abs=1e-7)


def test_particles_off_the_map_and_empty_input_give_zero_maps() -> None:
    far = project([100.0, -1e30], [0.0, 5.0], [3.0, 1.0], [1.0, 1.0], npix=8, pixel_size=1.0)
    assert not far.any()
    empty = project(np.array([]), np.array([]), np.array([]), np.array([]), npix=8, pixel_size=1.0)
    assert empty.shape == (8, 8) and empty.dtype == np.float64 and not empty.any()


# ----------------------------------------------------------------------------- symmetry and determinism


def random_particles(n: int, npix: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, npix / 5, n)
    y = rng.normal(0.0, npix / 5, n)
    h = rng.lognormal(np.log(4.0), 1.0, n)
    w = rng.uniform(0.5, 1.5, n)
    return x, y, h, w


def test_maps_are_bit_identical_for_one_and_two_threads() -> None:
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread on this machine (NUMBA_NUM_THREADS < 2)")
    npix = 3 * TILE + 10
    x, y, h, w = random_particles(20000, npix, seed=3)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = project(x, y, h, w, npix=npix, pixel_size=1.0)
        numba.set_num_threads(2)
        two = project(x, y, h, w, npix=npix, pixel_size=1.0)
    finally:
        numba.set_num_threads(previous)
    assert one.tobytes() == two.tobytes()


@pytest.mark.parametrize("kernel", KERNELS)
def test_rotating_the_particles_rotates_the_map(kernel: str) -> None:
    npix = TILE + 56
    x, y, h, w = random_particles(5000, npix, seed=4)
    image = project(x, y, h, w, npix=npix, pixel_size=1.0, kernel=kernel)
    rotated = project(-y, x, h, w, npix=npix, pixel_size=1.0, kernel=kernel)  # +90 degrees
    np.testing.assert_allclose(rotated, np.rot90(image, k=-1), rtol=0.0, atol=1e-12 * image.max())
    mirrored = project(-x, y, h, w, npix=npix, pixel_size=1.0, kernel=kernel)
    np.testing.assert_allclose(mirrored, image[:, ::-1], rtol=0.0, atol=1e-12 * image.max())


# ----------------------------------------------------------------------------- analytic profile


def test_projected_beta_model_matches_its_analytic_surface_density() -> None:
    """rho ~ (1 + r^2 / rc^2)^(-3/2) cut at r_max; Sigma(R) = 2 rho0 rc^3 L / (A^2 sqrt(A^2 + L^2)).

    A^2 = rc^2 + R^2, L = sqrt(r_max^2 - R^2). 300k particles, H from the 48th neighbour.
    """
    rc, r_max, n, total = 1.0, 8.0, 300_000, 1.0
    rng = np.random.default_rng(2022)
    s = np.linspace(0.0, r_max / rc, 20001)
    enclosed = np.arcsinh(s) - s / np.sqrt(1.0 + s * s)  # M(<r) / (4 pi rho0 rc^3)
    radius = rc * np.interp(rng.uniform(0.0, enclosed[-1], n), enclosed, s)
    direction = rng.normal(size=(n, 3))
    pos = radius[:, None] * direction / np.linalg.norm(direction, axis=1)[:, None]
    hsml = cKDTree(pos).query(pos, k=[49], workers=-1)[0][:, 0]
    npix, pixel = 200, 0.1
    assert np.all(np.abs(pos[:, :2]).max(axis=1) + hsml < npix / 2 * pixel)  # all inside the map
    image = project(pos[:, 0], pos[:, 1], hsml, np.full(n, total / n), npix=npix, pixel_size=pixel)
    assert image.sum() * pixel**2 == pytest.approx(total, rel=1e-12)

    rho0 = total / (4.0 * np.pi * rc**3 * enclosed[-1])
    centres = (np.arange(npix) - npix / 2 + 0.5) * pixel
    r_pix = np.hypot(*np.meshgrid(centres, centres))
    edges = np.linspace(0.5, 4.0, 15) * rc  # outside the innermost pixels, inside 0.5 r_max
    annuli = [(r_pix >= a) & (r_pix < b) for a, b in zip(edges[:-1], edges[1:])]
    measured = np.array([image[annulus].mean() for annulus in annuli])

    def sigma(r: np.ndarray) -> np.ndarray:
        a2 = rc * rc + r * r
        length = np.sqrt(r_max**2 - r * r)
        return 2.0 * rho0 * rc**3 * length / (a2 * np.sqrt(a2 + length**2))

    expected = np.array([sigma(r_pix[annulus]).mean() for annulus in annuli])
    np.testing.assert_allclose(measured, expected, rtol=0.02)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"hsml": [1.0, np.nan, np.nan]}, "hsml has 2 NaN values"),
        ({"hsml": [1.0, -1.0, 2.0]}, "hsml has 1 negative values"),
        ({"x": [np.nan, 0.0, 0.0]}, "x has 1 NaN values"),
        ({"y": [0.0, np.inf, 0.0]}, "y has 1 infinite values"),
        ({"weight": [np.nan, 1.0, 1.0]}, "weight has 1 NaN values"),
        ({"hsml": [1.0, np.inf, 1.0]}, "hsml has 1 infinite values"),
        ({"weight": [1.0, 1.0]}, "mismatched lengths"),
        ({"x": [[0.0, 0.0, 0.0]]}, "x must be a 1D array"),
        ({"npix": 0}, "npix must be a positive integer"),
        ({"npix": 12.5}, "npix must be a positive integer"),
        ({"pixel_size": 0.0}, "pixel_size must be a positive finite length"),
        ({"pixel_size": np.nan}, "pixel_size must be a positive finite length"),
        ({"kernel": "gaussian"}, "unknown SPH kernel 'gaussian'"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(arguments: dict, message: str) -> None:
    call = {"x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 2.0], "hsml": [1.0, 1.0, 1.0], "weight": [1.0, 1.0, 1.0]}
    call |= {"npix": 8, "pixel_size": 1.0, "kernel": "wendland_c4"}
    call |= arguments
    with pytest.raises(ValueError, match=message):
        project(call.pop("x"), call.pop("y"), call.pop("hsml"), call.pop("weight"), **call)
