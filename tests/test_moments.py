"""Tests of szmass.moments: the fast map route's observed maps straight from the particles' moments."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from szmass.instrument import FWHM_PER_SIGMA, gaussian_mass, observe, pixel_edges
from szmass.kernels import projected_kernel
from szmass.moments import EXACT_PIXELS, EXACT_RESOLVED, LARGE_KERNEL, exact_pitch, kernel_cumulants, observe_particles, square_grid
from szmass.sph import project

FWHM, FIELD, NPIX_OUT, PIXEL_OUT = 10.0, 40.0, 24, 1.7  # arcmin: a small field keeps the references cheap
SIGMA = FWHM / FWHM_PER_SIGMA
KW = dict(field=FIELD, fwhm=FWHM, npix_out=NPIX_OUT, pixel_out=PIXEL_OUT)


def one(x: float, y: float, h: float, kernel: str = "wendland_c4") -> np.ndarray:
    """The observed map of one particle of unit weight."""
    return observe_particles(np.array([x]), np.array([y]), np.array([h]), np.array([1.0]), kernel=kernel, **KW)


def exact(x: float, y: float, h: float, kernel: str = "wendland_c4", npix: int = 800) -> np.ndarray:
    """The same by the exact pixel-integrated projection on a fine grid (FIELD / 800 = 3"), observed."""
    pitch = FIELD / npix
    grid = project(np.array([x]), np.array([y]), np.array([h]), np.array([1.0]), npix=npix, pixel_size=pitch,
                   kernel=kernel)
    return observe(grid, pitch, fwhm_arcmin=FWHM, npix_out=NPIX_OUT, pixel_arcmin_out=PIXEL_OUT, pixel_window=True)


@pytest.mark.parametrize("kernel", ["wendland_c4", "cubic_spline"])
def test_kernel_cumulants_match_the_projected_kernel(kernel: str) -> None:
    """s^2 = <x^2> and kappa4 = <x^4> - 3 s^4 of the projected kernel F, integrated in the plane
    (<x^2> = <R^2> / 2, <x^4> = 3 <R^4> / 8 for an isotropic 2D density), against the 3D radial moments."""
    def radial(n: int) -> float:
        return quad(lambda q: 2.0 * np.pi * q ** (n + 1) * float(projected_kernel(kernel, q)), 0.0, 1.0, limit=200)[0]

    s, kappa4 = kernel_cumulants(kernel)
    assert radial(0) == pytest.approx(1.0, abs=1e-8)
    assert s**2 == pytest.approx(radial(2) / 2.0, rel=1e-7)
    assert kappa4 == pytest.approx(3.0 * radial(4) / 8.0 - 3.0 * (radial(2) / 2.0) ** 2, rel=1e-5)
    assert kappa4 < 0.0  # compact kernels are flatter than a Gaussian


def test_point_sources_match_the_closed_form() -> None:
    """A point (H = 0) anywhere in a moment pixel, corners included: the beam integrated over the output pixels
    (a product of Gaussian masses), to the fifth-order residual (d / 2 sigma)^6 ~ 3e-6 of the peak."""
    _, pitch = square_grid(FIELD, FWHM)
    rng = np.random.default_rng(3)
    edges = pixel_edges(NPIX_OUT, PIXEL_OUT)
    spots = [(0.0, 0.0), (0.5 * pitch - 1e-9, 0.5 * pitch - 1e-9), (-0.5 * pitch, 0.5 * pitch - 1e-9)]
    spots += [tuple(rng.uniform(-8.0, 8.0, 2)) for _ in range(12)]
    for x0, y0 in spots:
        gx = gaussian_mass((edges[:-1] - x0) / SIGMA, (edges[1:] - x0) / SIGMA) / PIXEL_OUT
        gy = gaussian_mass((edges[:-1] - y0) / SIGMA, (edges[1:] - y0) / SIGMA) / PIXEL_OUT
        expected = np.outer(gy, gx)
        assert np.abs(one(x0, y0, 0.0) - expected).max() < 2e-6 * expected.max()


@pytest.mark.parametrize(("kernel", "bound"), [("wendland_c4", 1e-5), ("cubic_spline", 2.5e-5)])
@pytest.mark.parametrize("h", [0.3, 1.5, 3.0, 4.5, 5.5, 8.0])
def test_resolved_kernels_match_the_exact_projection(kernel: str, bound: float, h: float) -> None:
    """Kernels from well below to well above a moment pixel (1'), through every class of kernel variance and
    past the largest expanded one (``LARGE_KERNEL``, projected exactly): the exact route's map to ``bound`` of
    the peak (measured: 7e-6 and 1.5e-5; the cubic spline's higher cumulants are larger)."""
    rng = np.random.default_rng(int(10 * h))
    for x0, y0 in rng.uniform(-6.0, 6.0, (3, 2)):
        expected = exact(x0, y0, h, kernel)
        assert np.abs(one(x0, y0, h, kernel) - expected).max() < bound * expected.max()


def test_both_paths_are_exercised() -> None:
    """The cases above reach both the moment expansion and the exact projection: s crosses LARGE_KERNEL sigma."""
    s_per_h = kernel_cumulants("wendland_c4")[0]
    assert s_per_h * 5.5 < LARGE_KERNEL * SIGMA < s_per_h * 8.0


@pytest.mark.parametrize(("h", "x0", "y0"), [(5.0, 17.5, -2.0), (4.0, 19.0, 3.0), (4.0, 19.0, 19.5), (1.0, 19.7, -5.0),
                                          (0.6, 19.9, 0.0)])
def test_the_field_edge_cuts_the_sky_as_the_hires_route_does(h: float, x0: float, y0: float) -> None:
    """A particle whose support crosses the field's edge (or a corner) keeps only its part inside the field, as
    the high-resolution map does (that sky is not observed), unlike the same particle moved inwards. Projected
    exactly on pixels of d = FWHM / 14, / 20 or / 40 and observed with the pixel window compensated, a sky cut where it
    does not vanish leaves the boundary term (d^2 / 12) f(edge) dG/dn: 2e-3 to 3e-2 of the particle's own peak
    uncorrected; corrected, < 1e-4 (measured 7e-6 to 3e-5, mostly the 3" reference's own boundary term)."""
    got, expected = one(x0, y0, h), exact(x0, y0, h)
    assert np.abs(got - expected).max() < 1e-4 * expected.max()
    assert got.sum() < 0.8 * one(x0 - h, min(y0, 19.0 - h), h).sum()


def test_flux_is_conserved() -> None:
    """Many particles of every size well inside a field wide enough to hold the beam: the observed flux,
    sum(map) * pixel^2, equals the total weight to rounding (the higher moments carry no net flux)."""
    rng = np.random.default_rng(5)
    n = 20000
    x, y = rng.normal(0.0, 2.0, (2, n))
    h, w = rng.uniform(0.0, 9.0, n), rng.uniform(0.5, 1.5, n)
    kw = KW | {"field": 120.0, "npix_out": 72}
    flux = observe_particles(x, y, h, w, **kw).sum() * PIXEL_OUT**2
    assert flux == pytest.approx(w.sum(), rel=1e-10)


def test_the_order_of_the_particles_does_not_matter() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.normal(0.0, 5.0, (2, 500))
    h, w = rng.uniform(0.0, 3.0, 500), rng.uniform(0.5, 1.5, 500)
    perm = rng.permutation(500)
    a = observe_particles(x, y, h, w, **KW)
    b = observe_particles(x[perm], y[perm], h[perm], w[perm], **KW)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-13 * a.max())


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"x": np.array([0.0, np.nan])}, r"^x: 1 non-finite value\(s\); expected finite positions, support radii "
                                         r"and weights$"),
        ({"hsml": np.array([1.0, -1.0])}, r"^hsml has 1 negative value\(s\); expected support radii >= 0$"),
        ({"weight": np.ones(3)}, r"^particle arrays have mismatched lengths: \{'x': 2, 'y': 2, 'hsml': 2, 'weight': 3\}$"),
        ({"kernel": "gaussian"}, r"^unknown SPH kernel 'gaussian'"),
        ({"fwhm": 0.0}, r"^need a positive field and beam FWHM, got field = 40\.0, fwhm = 0\.0$"),
        ({"pixel_out": -1.0}, r"^pixel_out and scale must be positive, got -1\.0 and 1\.0$"),
    ],
)
def test_bad_input_is_refused(change: dict, match: str) -> None:
    args = {"x": np.zeros(2), "y": np.zeros(2), "hsml": np.ones(2), "weight": np.ones(2)} | KW | change
    with pytest.raises(ValueError, match=match):
        observe_particles(**args)


def test_exact_pitch_puts_each_particle_on_the_coarsest_grid_that_resolves_it() -> None:
    """Inside the field: the first grid (FWHM / 10) whatever the size; across the edge: the coarsest of the others
    on which the support radius spans EXACT_RESOLVED pixels, the finest for the smallest supports."""
    fwhm, half = 10.0, 20.0
    inner = [EXACT_RESOLVED * p * fwhm for p in EXACT_PIXELS[1:-1]]  # 4.3', 3.0' for a 10' beam
    h = np.array([8.0, inner[0], inner[0] - 1e-9, inner[1], inner[1] - 1e-9, 0.5, 0.0])
    x = half - 0.5 * h  # every support straddles x = +half (the point lies on it)
    got = exact_pitch(x, np.zeros(h.size), h, half_width=half, fwhm=fwhm)
    np.testing.assert_array_equal(got, [1, 1, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(exact_pitch(np.zeros(3), np.zeros(3), np.array([9.0, 3.0, 0.0]), half_width=half,
                                              fwhm=fwhm), [0, 0, 0])


def test_the_deposit_classes_follow_their_definition() -> None:
    """The deposit's branch-free tag (squared distances, no square root) against the definitions with the
    distance r = hypot(x, y): the circle of radius A crosses a support of radius h > 0 when r - h < A < r + h
    (a point when r = A), the support lies inside it when r + h <= A; the row is the grid row of y, npix for a
    kernel above h_large or a support that reaches the field's edge, npix + 1 outside the prism. Random
    particles (none within 1e-9 of a boundary) and the limiting cases: a point on the circle, a support larger
    than the circle around its centre, a support touching the circle, no aperture (A = -inf)."""
    from szmass.moments import _tag

    npix, pitch, h_large = 16, 1.0, 3.0
    half = 0.5 * npix * pitch

    def expected(member: bool, x: float, y: float, h: float, aperture: float) -> int:
        if not member:
            return 2 * (npix + 1)
        r = float(np.hypot(x, y))
        crossing = (r == aperture) if h <= 0.0 else (r + h > aperture and r - h < aperture)
        inside = not crossing and r < aperture
        row = min(int(np.floor(y / pitch + 0.5 * npix)), npix - 1)
        if h > h_large or max(abs(x), abs(y)) + h >= half:
            row = npix
        return 2 * (row + (npix + 2) * crossing) + inside

    rng = np.random.default_rng(7)
    draws = rng.uniform([-9, -9, 0, 0.5], [9, 9, 4, 6], (4000, 4))  # x, y, h, A
    cases = [(bool(m), *v) for m, v in zip(rng.random(4000) < 0.9, draws)]
    cases = [c for c in cases if min(abs(np.hypot(c[1], c[2]) - c[4] + s * c[3]) for s in (-1, 0, 1)) > 1e-9]
    cases += [(True, 3.0, 4.0, 0.0, 5.0), (True, 0.0, 0.0, 6.0, 2.0), (True, 0.5, 0.0, 2.0, 2.0),
              (True, 1.0, 0.0, 1.0, 2.0), (True, 1.0, 1.0, 0.5, -np.inf), (False, 1.0, 1.0, 0.5, 2.0)]
    got = [_tag(m, x, y, h, npix, pitch, h_large, a) for m, x, y, h, a in cases]
    assert got == [expected(m, x, y, h, a) for m, x, y, h, a in cases]
    codes = np.array(got)
    assert {0, 1} <= set(codes % 2) and np.any(codes // 2 >= npix + 2)  # every class is reached
