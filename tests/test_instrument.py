"""Tests of szmass.instrument: Gaussian beam at high resolution, flux-conserving regridding."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.special import ndtr

from szmass.instrument import (
    FWHM_PER_SIGMA,
    beam_matrix,
    observe,
    overlap_matrix,
    pixel_edges,
    response_matrix,
    serial_blas,
    window_response_matrix,
)


def second_moment(img: np.ndarray, pixel: float) -> tuple[float, float, float, float]:
    """Centroid (x, y) and variances (x, y) of an image on a centred grid [pixel units of ``pixel``]."""
    c = (np.arange(img.shape[0]) - 0.5 * (img.shape[0] - 1)) * pixel
    total = img.sum()
    px, py = img.sum(axis=0) / total, img.sum(axis=1) / total
    mx, my = px @ c, py @ c
    return mx, my, px @ (c - mx) ** 2, py @ (c - my) ** 2


def test_pixel_edges_centred() -> None:
    e = pixel_edges(4, 0.5)
    np.testing.assert_allclose(e, [-1.0, -0.5, 0.0, 0.5, 1.0])


def test_overlap_matrix_exact_areas() -> None:
    # 3 input pixels of 1 into 2 output pixels of 1.5 on the same centre: edges -1.5..1.5 vs -1.5, 0, 1.5
    m = overlap_matrix(3, 1.0, 2, 1.5)
    np.testing.assert_allclose(m, [[1 / 1.5, 0.5 / 1.5, 0.0], [0.0, 0.5 / 1.5, 1 / 1.5]])
    # identical grids: identity
    np.testing.assert_allclose(overlap_matrix(5, 0.3, 5, 0.3), np.eye(5), rtol=0, atol=1e-15)
    # an input grid inside the output grid: each input pixel's length is fully distributed
    m = overlap_matrix(1920, 5 / 60, 96, 1.7)
    np.testing.assert_allclose(m.sum(axis=0) * 1.7, 5 / 60, rtol=1e-12)


def test_beam_matrix_columns_conserve_and_zero_beam_is_identity() -> None:
    b = beam_matrix(50, 1.0, 3.0, pad=30)
    np.testing.assert_allclose(b.sum(axis=0), 1.0, rtol=1e-13)
    np.testing.assert_array_equal(beam_matrix(6, 1.0, 0.0, pad=2), np.eye(10, 6, k=-2))


def test_beam_point_source_fwhm() -> None:
    """The beam applied to a point source at high resolution is a Gaussian of the requested FWHM (<1%)."""
    d, fwhm, n, pad = 5.0 / 60.0, 10.0, 400, 0
    img = np.zeros((n, n))
    img[n // 2, n // 2] = 1.0
    b = beam_matrix(n, d, fwhm, pad)
    out = b @ img @ b.T
    mx, my, vx, vy = second_moment(out, d)
    sigma = fwhm / FWHM_PER_SIGMA
    # the pixel-integrated Gaussian has variance sigma^2 + d^2/12 (Sheppard): subtract it
    assert np.sqrt(vx - d**2 / 12) == pytest.approx(sigma, rel=1e-3)
    assert np.sqrt(vy - d**2 / 12) == pytest.approx(sigma, rel=1e-3)
    # FWHM read off the profile through the peak, by linear interpolation of the half-maximum crossing
    row = out[n // 2]
    c = np.arange(n) * d
    right = row[n // 2 :]
    k = np.nonzero(right < 0.5 * row.max())[0][0]
    x_half = np.interp(0.5 * row.max(), [right[k], right[k - 1]], [c[k], c[k - 1]])
    assert 2 * x_half == pytest.approx(fwhm, rel=0.01)


def test_observe_point_source_width_and_position() -> None:
    """After regridding the beam keeps its width: variance sigma^2 + box-average term, centroid in place."""
    n, d = 1920, 5.0 / 60.0
    img = np.zeros((n, n))
    j, i = 900, 1000  # pixel centre at x = (i - 959.5) d, y = (j - 959.5) d
    img[j, i] = 1.0
    out = observe(img, d)
    mx, my, vx, vy = second_moment(out, 1.7)
    assert mx == pytest.approx((i - 959.5) * d, abs=1e-3)
    assert my == pytest.approx((j - 959.5) * d, abs=1e-3)
    sigma2 = (10.0 / FWHM_PER_SIGMA) ** 2 + d**2 / 12 + 1.7**2 / 12
    assert np.sqrt(vx) == pytest.approx(np.sqrt(sigma2), rel=0.01)
    assert np.sqrt(vy) == pytest.approx(np.sqrt(sigma2), rel=0.01)


def test_observe_conserves_flux_and_centring() -> None:
    rng = np.random.default_rng(20221)
    n, d = 1920, 5.0 / 60.0
    img = np.zeros((n, n))
    img[480:1440, 480:1440] = rng.random((960, 960))  # signal > 9 sigma inside the output field's edges
    out = observe(img, d)
    assert out.shape == (96, 96)
    assert out.sum() * 1.7**2 == pytest.approx(img.sum() * d**2, rel=1e-6)
    # both grids share the centre: mirroring the input mirrors the output
    np.testing.assert_allclose(observe(img[::-1, ::-1], d), out[::-1, ::-1], rtol=1e-10, atol=1e-12 * out.max())
    np.testing.assert_allclose(observe(img.T, d), out.T, rtol=1e-10, atol=1e-12 * out.max())


def test_observe_flux_conserved_for_signal_at_input_edge_when_beam_is_small() -> None:
    """The output field (163.2') covers the whole input (160'): without a wide beam nothing is lost."""
    rng = np.random.default_rng(7)
    n, d = 1920, 5.0 / 60.0
    img = rng.random((n, n))
    out = observe(img, d, fwhm_arcmin=0.0)
    assert out.sum() * 1.7**2 == pytest.approx(img.sum() * d**2, rel=1e-12)
    # the outermost output pixels [-81.6', -79.9') reach 1.6' beyond the input's edge at -80': 0.1' covered
    ones = observe(np.ones((n, n)), d, fwhm_arcmin=0.0)
    assert ones[48, 0] == pytest.approx((1.7 - (81.6 - 80.0)) / 1.7, rel=1e-9)
    assert ones[48, 48] == pytest.approx(1.0, rel=1e-12)


def test_observe_matches_scipy_gaussian_filter() -> None:
    """Independent check: zero-padded scipy.ndimage.gaussian_filter followed by area-overlap regridding."""
    rng = np.random.default_rng(3)
    n, d, n_out, w, fwhm = 240, 0.5, 30, 4.2, 10.0
    img = np.zeros((n, n))
    img[60:180, 60:180] = rng.random((120, 120))
    pad = int(np.ceil(0.5 * (n_out * w / d - n)))
    smoothed = ndimage.gaussian_filter(np.pad(img, pad), fwhm / FWHM_PER_SIGMA / d, mode="constant", truncate=10.0)
    m = overlap_matrix(n + 2 * pad, d, n_out, w)
    reference = m @ smoothed @ m.T
    out = observe(img, d, fwhm_arcmin=fwhm, npix_out=n_out, pixel_arcmin_out=w)
    # sampled vs pixel-integrated Gaussian (sigma = 8.5 pixels): differences ~ d^2 / (24 sigma^2) ~ 6e-4
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-3 * reference.max())


def test_response_matrix_cached_and_read_only() -> None:
    a = response_matrix(64, 1.0, 2.0, 8, 9.0)
    assert a is response_matrix(64, 1.0, 2.0, 8, 9.0)
    with pytest.raises(ValueError):
        a[0, 0] = 1.0


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((np.zeros(10), 1.0), {}, "2D"),
        ((np.full((4, 4), np.nan), 1.0), {}, "non-finite"),
        ((np.zeros((4, 4)), 0.0), {}, "pixel_arcmin_in"),
        ((np.zeros((4, 4)), 1.0), {"pixel_arcmin_out": -1.0}, "pixel_arcmin_out"),
        ((np.zeros((4, 4)), 1.0), {"fwhm_arcmin": -2.0}, "fwhm_arcmin"),
        ((np.zeros((4, 4)), 1.0), {"npix_out": 0}, "npix_out"),
    ],
)
def test_observe_bad_input(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        observe(*args, **kwargs)


# ---------------------------------------------------------------- coarse input grids (pixel window)


def gaussian_pixel_means(npix: int, pixel: float, centre: float, width: float) -> np.ndarray:
    """Means over the pixels of a centred 1D grid of a unit-flux Gaussian (exact, from its CDF)."""
    e = pixel_edges(npix, pixel)
    return (ndtr((e[1:] - centre) / width) - ndtr((e[:-1] - centre) / width)) / pixel


@pytest.mark.parametrize(("pixel", "bound"), [(10.0 / 40.0, 5e-8), (10.0 / 20.0, 1e-6), (10.0 / 8.0, 3e-5)])
def test_pixel_window_compensated_beam_is_exact_for_resolved_sources(pixel: float, bound: float) -> None:
    """A Gaussian source of width 1' (resolved by the input pixels) averaged exactly over pixels of FWHM/40 to
    FWHM/8, observed: the analytic beam-smoothed source averaged over the 1.7' pixels, to the d^4 / sigma^4
    residual of the window compensation (bound relative to the peak)."""
    sigma, width = 10.0 / FWHM_PER_SIGMA, 1.0
    npix = int(round(160.0 / pixel))
    total = np.hypot(sigma, width)
    for x0, y0 in [(0.0, 0.0), (0.37, -0.81)]:
        img = np.outer(gaussian_pixel_means(npix, pixel, y0, width), gaussian_pixel_means(npix, pixel, x0, width))
        expected = np.outer(gaussian_pixel_means(96, 1.7, y0, total), gaussian_pixel_means(96, 1.7, x0, total))
        got = observe(img, pixel, pixel_window=True)
        assert np.abs(got - expected).max() < bound * expected.max()
    # without the compensation the pixel window widens the beam: a larger error at FWHM/8
    if pixel == 10.0 / 8.0:
        plain = observe(img, pixel)
        assert np.abs(plain - expected).max() > 10 * bound * expected.max()


def test_window_response_conserves_flux_and_is_cached() -> None:
    a = window_response_matrix(640, 0.25, 10.0, 96, 1.7)
    assert a is window_response_matrix(640, 0.25, 10.0, 96, 1.7) and not a.flags.writeable
    # a pixel near the centre: all its flux lands in the 163.2' output field
    np.testing.assert_allclose(a[:, 320].sum() * 1.7 / 0.25, 1.0, rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    ("pixel", "fwhm", "match"),
    [
        (1.3, 10.0, r"pixel_arcmin_in = 1\.3 arcmin exceeds FWHM / 8 = 1\.25 arcmin: the pixel window of such an "
                    r"intermediate grid cannot be compensated"),
        (0.1, 0.0, r"fwhm_arcmin must be > 0 arcmin to compensate the pixel window, got 0\.0"),
    ],
)
def test_pixel_window_bad_input(pixel: float, fwhm: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        observe(np.ones((16, 16)), pixel, fwhm_arcmin=fwhm, pixel_window=True)


def test_serial_blas_runs_the_products_on_one_thread_and_restores_the_pool() -> None:
    """Inside serial_blas every BLAS library reports one thread; after it, the previous counts again."""
    from threadpoolctl import threadpool_info

    before = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    assert before, "numpy should load a BLAS library"
    with serial_blas():
        inside = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
        a = np.arange(36.0).reshape(6, 6)
        np.testing.assert_array_equal(a @ np.eye(6), a)
    assert set(inside.values()) == {1}
    assert {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"} == before
