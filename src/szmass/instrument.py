"""The instrument: a Gaussian beam applied at high resolution, then flux-conserving regridding.

Conventions. A y-map is a surface brightness (dimensionless Compton y per pixel, the mean of y over the
pixel); its integral over the sky is Y = sum(y) * pixel area. ``map[j, i]`` is row j (the y axis) and
column i (the x axis); an ``npix`` grid of pixel size ``d`` is centred on the cluster, pixel ``i`` covering
[(i - npix/2) d, (i + 1 - npix/2) d). Input and output grids share that centre, so the 96 x 1.7' = 163.2'
output field (default) sees the whole 1920 x 5" = 160' input with its outermost output pixels partly
covered (the sky beyond the input field is taken to be zero, i.e. the input is zero-padded).

Method. Both steps are linear and separable, so the whole instrument is one small matrix per axis::

    out = A_y @ img @ A_x.T,    A = M @ B,

with B (n_pad x n_in) the beam on the input grid zero-padded to cover the output field, and M
(n_out x n_pad) the exact pixel-area overlap of the output pixels with the padded input pixels divided by
the output pixel width (so each output pixel is the mean of the smoothed y over its area). B's entries are
the Gaussian integrated over the target pixel, Phi((|k| + 1/2) d / sigma) - Phi((|k| - 1/2) d / sigma) for
a lag of k pixels: a pixel's flux is distributed exactly (the columns of B sum to one when the padded
field holds the whole beam), any sigma works, including sigma << d. This gives the same answer as a
zero-padded ``scipy.ndimage.gaussian_filter`` followed by area-overlap regridding (to the difference
between sampling and pixel-integrating the Gaussian, ~ d^2 / (24 sigma^2) ~ 2e-5 for the defaults), at
a cost of two (96 x 1920) matrix products per map instead of a 2000^2 convolution; A is cached.
Total flux, sum(out) * A_out = sum(in) * A_in, is conserved to rounding when the beam-smoothed signal
lies inside the output field.

Coarse input grids (``observe(..., pixel_window=True)``). A map of pixel averages on a grid of pixel d is the
sky convolved with the pixel's box (variance d^2 / 12 per axis) and sampled at the pixel centres.
:func:`window_response_matrix` spreads each pixel's flux from its centre with a Gaussian of
sigma_eff^2 = sigma^2 - d^2 / 12 and integrates it exactly over the output pixels (no padding, any grid
alignment), which removes the window's leading term: box * G_eff = G up to the box's fourth cumulant,
-d^4 / 120, which leaves about d^4 / (480 sigma^4) of a point source's peak (1.6e-5 at FWHM / 8, the largest
pixel accepted; tests/test_instrument.py). What it cannot remove is the aliasing of structure smaller than
d: flux is taken at the pixel centre, so a source much smaller than a pixel is displaced by up to d / 2. The
fast map route (:mod:`szmass.moments`) uses it only for particles larger than several such pixels.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr
from threadpoolctl import threadpool_limits

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
"""FWHM / sigma of a Gaussian."""

MAX_WINDOW_PIXEL = 1.0 / 8.0
"""Largest pixel, in units of the beam FWHM, whose window :func:`window_response_matrix` may compensate."""


@dataclass(frozen=True)
class Instrument:
    """A Gaussian beam of ``fwhm_arcmin`` [arcmin] and the output grid: ``npix_out`` pixels of ``pixel_arcmin_out``
    [arcmin] per side, centred on the cluster."""

    fwhm_arcmin: float = 10.0
    npix_out: int = 96
    pixel_arcmin_out: float = 1.7


def pixel_edges(npix: int, pixel: float) -> np.ndarray:
    """Edges (npix + 1,) of a grid of ``npix`` pixels of size ``pixel`` centred on 0 (same unit as ``pixel``)."""
    return (np.arange(npix + 1) - 0.5 * npix) * pixel


def overlap_matrix(npix_in: int, pixel_in: float, npix_out: int, pixel_out: float) -> np.ndarray:
    """Area-overlap regridding matrix (npix_out, npix_in) of two centred 1D grids.

    Entry [k, p] is the length of output pixel k covered by input pixel p divided by the output pixel width,
    so ``M @ v`` is the mean of the piecewise-constant ``v`` over each output pixel.
    """
    e_in = pixel_edges(npix_in, pixel_in)
    e_out = pixel_edges(npix_out, pixel_out)
    lo = np.maximum(e_out[:-1, None], e_in[None, :-1])
    hi = np.minimum(e_out[1:, None], e_in[None, 1:])
    return np.clip(hi - lo, 0.0, None) / pixel_out


def beam_matrix(npix: int, pixel: float, fwhm: float, pad: int) -> np.ndarray:
    """Gaussian beam (npix + 2 pad, npix) on a 1D grid, zero-padded by ``pad`` pixels each side.

    Entry [q, p] is the fraction of input pixel p's flux (a point at its centre) that the beam of FWHM
    ``fwhm`` puts into pixel q of the padded grid (pixel q - pad of the input grid); ``fwhm = 0`` is no beam.
    """
    lag = np.abs(np.arange(npix + 2 * pad)[:, None] - pad - np.arange(npix)[None, :])
    if fwhm == 0.0:
        return (lag == 0).astype(float)
    s = pixel / (fwhm / FWHM_PER_SIGMA)
    # the lower tail of both ends: no cancellation between two numbers close to 1
    return ndtr((0.5 - lag) * s) - ndtr((-0.5 - lag) * s)


@functools.lru_cache(maxsize=8)
def response_matrix(npix_in: int, pixel_in: float, fwhm: float, npix_out: int, pixel_out: float) -> np.ndarray:
    """Beam-then-regrid matrix A (npix_out, npix_in) of one axis: ``out = A_y @ img @ A_x.T``; read-only, cached.

    The input grid is zero-padded just enough to cover the output field, so no flux that lands in the output
    field is lost at the input's edges.
    """
    pad = max(0, math.ceil(0.5 * (npix_out * pixel_out / pixel_in - npix_in)))
    a = overlap_matrix(npix_in + 2 * pad, pixel_in, npix_out, pixel_out) @ beam_matrix(npix_in, pixel_in, fwhm, pad)
    a.setflags(write=False)
    return a


def gaussian_mass(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Phi(hi) - Phi(lo) of the standard normal, from the tail nearer to both (no cancellation near 1)."""
    upper = lo > 0.0
    return np.where(upper, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo))


def window_sigma(fwhm: float, pixel: float) -> float:
    """Width of the beam applied to pixels of side ``pixel``: sqrt(sigma^2 - pixel^2 / 12) (same unit).

    Raises ValueError when ``pixel`` exceeds ``MAX_WINDOW_PIXEL`` of the FWHM (the compensation's residual
    would exceed ~2e-5 of a point source's peak; module docstring).
    """
    if not fwhm > 0.0:
        raise ValueError(f"fwhm_arcmin must be > 0 arcmin to compensate the pixel window, got {fwhm!r}")
    if pixel > MAX_WINDOW_PIXEL * fwhm:
        raise ValueError(
            f"pixel_arcmin_in = {pixel:.4g} arcmin exceeds FWHM / {1 / MAX_WINDOW_PIXEL:g} = "
            f"{MAX_WINDOW_PIXEL * fwhm:.4g} arcmin: the pixel window of such an intermediate grid cannot be "
            f"compensated in the beam to 2e-5; use smaller intermediate pixels"
        )
    return math.sqrt((fwhm / FWHM_PER_SIGMA) ** 2 - pixel**2 / 12.0)


@functools.lru_cache(maxsize=8)
def window_response_matrix(npix_in: int, pixel_in: float, fwhm: float, npix_out: int, pixel_out: float) -> np.ndarray:
    """Beam-and-regrid matrix (npix_out, npix_in) of one axis for a coarse input grid; read-only, cached.

    Entry [k, p] is (pixel_in / pixel_out) times the mass that the Gaussian of width :func:`window_sigma`
    centred on input pixel p puts into output pixel k: each input pixel's flux, taken at its centre, is
    spread by the window-compensated beam and averaged exactly over the output pixels (no padding, any
    alignment of the grids).
    """
    sigma = window_sigma(fwhm, pixel_in)
    centres = 0.5 * (pixel_edges(npix_in, pixel_in)[:-1] + pixel_edges(npix_in, pixel_in)[1:])
    edges = pixel_edges(npix_out, pixel_out)
    a = gaussian_mass((edges[:-1, None] - centres[None, :]) / sigma, (edges[1:, None] - centres[None, :]) / sigma)
    a *= pixel_in / pixel_out
    a.setflags(write=False)
    return a


def serial_blas() -> threadpool_limits:
    """Context in which the BLAS products run on one thread. The maps' products are small, and they sit between
    numba's parallel passes: OpenBLAS's idle workers spin after each multi-threaded call and take the cores from
    the pass that follows (27 lines of sight of the fast route ran in 10.2 s instead of 5.8 s on 2 cores)."""
    return threadpool_limits(limits=1, user_api="blas")


def observe(
    ymap_hires: np.ndarray,
    pixel_arcmin_in: float,
    *,
    fwhm_arcmin: float = 10.0,
    npix_out: int = 96,
    pixel_arcmin_out: float = 1.7,
    pixel_window: bool = False,
) -> np.ndarray:
    """The map (npix_out, npix_out) float64 an instrument of beam FWHM ``fwhm_arcmin`` [arcmin] sees.

    ``ymap_hires`` (ny, nx) has pixels of ``pixel_arcmin_in`` [arcmin]; the output has ``npix_out`` pixels of
    ``pixel_arcmin_out`` [arcmin] on the same centre, each the mean of the beam-smoothed y over its area
    (module docstring). ``pixel_window``: the input is a coarse intermediate grid (pixels of at most
    ``MAX_WINDOW_PIXEL`` FWHM) whose pixel window the beam compensates (:func:`window_response_matrix`).
    """
    img = np.asarray(ymap_hires, dtype=float)
    if img.ndim != 2 or 0 in img.shape:
        raise ValueError(f"ymap_hires: expected a non-empty 2D map, got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError(f"ymap_hires: {np.count_nonzero(~np.isfinite(img))} non-finite pixel(s)")
    for name, value in (("pixel_arcmin_in", pixel_arcmin_in), ("pixel_arcmin_out", pixel_arcmin_out)):
        if not value > 0.0:
            raise ValueError(f"{name} must be > 0 arcmin, got {value!r}")
    if not fwhm_arcmin >= 0.0:
        raise ValueError(f"fwhm_arcmin must be >= 0 arcmin, got {fwhm_arcmin!r}")
    if int(npix_out) != npix_out or npix_out < 1:
        raise ValueError(f"npix_out must be a positive integer, got {npix_out!r}")
    args = (float(pixel_arcmin_in), float(fwhm_arcmin), int(npix_out), float(pixel_arcmin_out))
    response = window_response_matrix if pixel_window else response_matrix
    a_y = response(img.shape[0], *args)
    a_x = a_y if img.shape[1] == img.shape[0] else response(img.shape[1], *args)
    with serial_blas():
        return a_y @ img @ a_x.T
