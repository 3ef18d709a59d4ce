"""The fast map route: each particle's beamed kernel from its moments on a grid matched to the beam.

What the networks see is the sky convolved with the beam (Gaussian, sigma = FWHM / 2.3548) and averaged
over 1.7' pixels. A particle of weight w at x_p, whose projected kernel K has per-axis variance s^2 and
fourth cumulant kappa4 (:func:`kernel_cumulants`), adds w (K * G_sigma)(X - x_p) to that smoothed sky. In
Fourier space its contribution is w exp(-i k.x_p) K^(k) G^_sigma(k), with

    K^(k) G^_sigma(k) = exp(-(sigma^2 + s^2) k^2 / 2 + kappa4 |k|^4 / 24 + O(k^6))

(K is isotropic, so its cumulant expansion depends on |k| only). Gather the particles by their kernel
variance into classes of width ``CLASS_WIDTH`` sigma^2 (reference variance v, the class centre), and by
position into the pixels of a grid of pitch d = ``MOMENT_PIXEL`` FWHM (pixel centre c). Then

    w exp(-i k.x_p) K^ G^ = w exp(-i k.c) G^_(sigma^2 + v)(k) * exp(-i k.delta - e k^2 / 2 + kappa4 |k|^4 / 24 + ...),

delta = x_p - c (|delta_x|, |delta_y| <= d / 2), e = s^2 - v (|e| <= CLASS_WIDTH sigma^2 / 2). The last factor
is the characteristic function of a (pseudo-)distribution with mean delta, variance e and fourth cumulant
kappa4 (odd cumulants vanish); expanded to fifth order in k it is its moments m_ab (a + b <= ``ORDER`` = 5),
and each term becomes a derivative of the class's Gaussian:

    smoothed sky(X) = sum over classes, pixels, a + b <= 5 of (-1)^(a+b) / (a! b!) M_ab d^a_x d^b_y G_(sigma^2 + v)(X - c),

M_ab the weighted sums of the m_ab of the pixel's particles (21 grids per class). Averaging over an output
pixel is separable, so each class costs 21 products of two small matrices per axis (the 1D Gaussian's
derivatives integrated exactly over the output pixels): the deposit is O(1) per particle, whatever its
size, instead of O(its area in pixels).

Error. The first terms left out are of sixth order in k: delta^6, delta^4 e, delta^2 e^2, e^3, delta^2
kappa4, kappa4 e, kappa6 and kappa4^2. Against the peak of the particle's own beamed contribution they are at
most about (d / 2 sigma)^6 ~ 3e-6 for a point particle and the default d = FWHM / 10, and the kernel terms
stay below ~5e-6 because the classes are narrow and only particles with s <= ``LARGE_KERNEL`` sigma (H up to
about 5.6' for the 10' beam and the Wendland C4 kernel) are expanded. tests/test_moments.py checks point
sources against the closed form (2e-6 of the peak; measured 9e-7) and resolved kernels of both kernel
shapes against the exact pixel-integrated projection on a fine grid (1e-5; measured < 4e-6).

Exactly projected instead (:func:`szmass.sph.project`, observed with the pixel window compensated,
:func:`szmass.instrument.window_response_matrix`): particles with s > ``LARGE_KERNEL`` sigma, where the
cumulant series converges slowly, and particles whose support crosses the edge of the field, whose flux
outside the field the 1920^2 route drops (the field is that of the high-resolution maps); in a cluster a
few per cent of the particles, mostly large ones in the outskirts. The large ones inside the field go on a grid
of FWHM / 10, where the compensated window leaves ~(d / sigma)^4 / 3000 < 1e-5 of their own peak; those the
edge crosses on the coarsest of FWHM / 14, / 20 and / 40 on which their support radius spans at least
``EXACT_RESOLVED`` pixels (``EXACT_PIXELS``). Where the field cuts
a sky that does not vanish, taking each pixel's flux at its centre leaves the midpoint rule's boundary term,
(d^2 / 12) f(edge) dG/dn along each edge (2e-3 to 3e-2 of such a particle's own peak); it is computed from
the sky's profile along the edges (:func:`_edge_profiles`) and removed, which leaves < 1e-4 (measured 1e-5
to 3e-5, tests/test_moments.py).

Cost. Accumulating 21 moments is ~20 ns per particle when neighbouring particles are neighbours in memory
(:func:`szmass.ymap.morton_order`), four times more in random order. The particles are bucketed by grid row
and each row accumulated by one thread in the particles' order; the products run in a fixed order: the
maps are the same bit for bit for any number of numba threads.
"""

from __future__ import annotations

import functools
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

import numpy as np
from numba import get_num_threads, njit, prange
from numpy.polynomial.hermite_e import hermeval
from scipy.integrate import quad

from szmass.aperture import aperture_fractions, factor_at
from szmass.instrument import FWHM_PER_SIGMA, gaussian_mass, pixel_edges, serial_blas, window_response_matrix
from szmass.kernels import KERNEL_NAMES, N_FINE, kernel_3d, separable_marginal, separable_quadrant
from szmass.sph import chunk_offsets, project

MOMENT_PIXEL: Final[float] = 1.0 / 10.0
"""Pitch of the moment grid, in units of the beam FWHM (module docstring: the error is ~(d / 2 sigma)^6)."""

EXACT_PIXELS: Final[tuple[float, ...]] = (1.0 / 10.0, 1.0 / 14.0, 1.0 / 20.0, 1.0 / 40.0)
"""Pitches of the grids of the particles projected exactly, in units of the beam FWHM: the first for those inside
the field, the others, coarsest first, for those the field's edge crosses (:func:`exact_pitch`)."""

EXACT_RESOLVED: Final[float] = 6.0
"""Support radius, in pixels, from which the edge correction leaves < ~2e-5 of a particle's own peak."""

LARGE_KERNEL: Final[float] = 0.3
"""Particles with projected-kernel standard deviation s above this many beam sigmas are projected exactly."""

CLASS_WIDTH: Final[float] = 0.02
"""Width of a class of kernel variance s^2, in units of the beam's sigma^2."""

_N_CLASSES: Final[int] = math.ceil(LARGE_KERNEL**2 / CLASS_WIDTH - 1e-9)
"""Classes of kernel variance: s^2 from 0 to LARGE_KERNEL^2 sigma^2 in steps of CLASS_WIDTH sigma^2."""

ORDER: Final[int] = 5
"""Highest order a + b of the moments m_ab = E[x^a y^b] kept (:func:`_deposit` is unrolled for it)."""

POWERS: Final[tuple[tuple[int, int], ...]] = tuple((a, n - a) for n in range(ORDER + 1) for a in range(n, -1, -1))
"""The (a, b) of the moments kept (21 of them), in the order of the moment grids' last axis."""


@functools.cache
def kernel_cumulants(kernel: str) -> tuple[float, float]:
    """(s / H, kappa4 / H^4) of the projected ``kernel`` of support radius H: its per-axis standard deviation
    and fourth cumulant along one axis, from the 3D kernel's radial moments (<x^2> = <r^2> / 3, <x^4> = <r^4> / 5)."""
    if kernel not in KERNEL_NAMES:
        raise ValueError(f"unknown SPH kernel {kernel!r}; expected one of {KERNEL_NAMES}")

    def radial(n: int) -> float:
        return quad(lambda q: 4.0 * np.pi * q ** (2 + n) * float(kernel_3d(kernel, q)), 0.0, 1.0, epsabs=1e-14,
                    limit=200)[0]

    var = radial(2) / 3.0
    return math.sqrt(var), radial(4) / 5.0 - 3.0 * var * var


def square_grid(field: float, fwhm: float, pixel: float = MOMENT_PIXEL) -> tuple[int, float]:
    """(pixels per side, pitch) of the grid that tiles a square ``field`` (same length unit as ``fwhm``) exactly
    with pixels of at most ``pixel`` FWHM (by default the moment grid's)."""
    if not (field > 0.0 and fwhm > 0.0):
        raise ValueError(f"need a positive field and beam FWHM, got field = {field!r}, fwhm = {fwhm!r}")
    npix = math.ceil(field / (pixel * fwhm) - 1e-9)
    return npix, field / npix


_ORDER = ORDER  # a global numba freezes at compile time
_I22, _I32, _I23 = (POWERS.index(ab) for ab in ((2, 2), (3, 2), (2, 3)))


@njit(cache=True, inline="always")
def _moments_1d(m: np.ndarray, d: float, e: float, c4: float) -> None:
    """E[t^n], n <= 5, of a (pseudo-)distribution symmetric about its mean ``d``, of variance ``e`` and fourth
    moment about the mean ``c4``, into ``m``."""
    d2 = d * d
    m[0] = 1.0
    m[1] = d
    m[2] = d2 + e
    m[3] = d * (d2 + 3.0 * e)
    m[4] = d2 * (d2 + 6.0 * e) + c4
    m[5] = d * (d2 * (d2 + 10.0 * e) + 5.0 * c4)


_ROW_CHUNKS: Final[int] = 256
"""Fixed chunks of the particles in the parallel passes of :func:`_deposit` (the result does not depend on the
number of threads)."""


Rows = tuple[float, float, float, float, float, float, float, float, float]
"""A rotation matrix's entries, row by row (held in registers by the numba loops)."""


@njit(cache=True, inline="always")
def rotation_rows(rot: np.ndarray) -> Rows:
    """The entries of the (3, 3) rotation ``rot``, row by row."""
    return rot[0, 0], rot[0, 1], rot[0, 2], rot[1, 0], rot[1, 1], rot[1, 2], rot[2, 0], rot[2, 1], rot[2, 2]


@njit(cache=True, inline="always")
def _rotated(offset: np.ndarray, rows: Rows, p: int) -> tuple[float, float, float]:
    """(x, y, distance along the line of sight) of particle ``p``: the rotation ``rows`` applied to its offset."""
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = rows
    ox, oy, oz = offset[p, 0], offset[p, 1], offset[p, 2]
    return r00 * ox + r01 * oy + r02 * oz, r10 * ox + r11 * oy + r12 * oz, r20 * ox + r21 * oy + r22 * oz


@njit(cache=True, inline="always")
def prism_member(offset: np.ndarray, hsml: np.ndarray, rows: Rows, depth: float, half_width: float,
                 p: int) -> tuple[bool, float, float]:
    """Whether particle ``p`` is in the prism a map sees (centre within +- ``depth`` along the line of sight, the
    third row of the rotation ``rows``, see :func:`rotation_rows`; support overlapping the square field of
    half-width ``half_width``), and its image-plane (x, y). Branch-free."""
    x, y, along = _rotated(offset, rows, p)
    return _in_prism(x, y, along, hsml[p], depth, half_width), x, y


@njit(cache=True, inline="always")
def _in_prism(x: float, y: float, along: float, h: float, depth: float, half_width: float) -> bool:
    """:func:`prism_member`'s test for a particle at (x, y, along) of support radius ``h``."""
    reach = half_width + h
    return (abs(along) <= depth) & (abs(x) < reach) & (abs(y) < reach)


@njit(cache=True, inline="always")
def _tag(member: bool, x: float, y: float, h: float, npix: int, pitch: float, h_large: float,
         aperture: float) -> int:
    """2 (row + (npix + 2) crossing) + inside for a particle at (x, y) of support radius ``h``: row its grid
    row, npix if projected exactly (a support radius above ``h_large`` or a support the field's edge crosses),
    npix + 1 outside the prism; crossing 1 if the aperture's circle crosses its support, inside 1 if the
    support lies wholly inside the circle. Branch-free (vectorised), squared distances (no square root)."""
    r2 = x * x + y * y
    low, high = aperture - h, aperture + h  # r - h < aperture < r + h
    crossing = member & (((h > 0.0) & (high > 0.0) & (r2 < high * high) & ((low < 0.0) | (r2 > low * low)))
                         | ((h <= 0.0) & (r2 == aperture * aperture)))
    inside = member & (not crossing) & (aperture > 0.0) & (r2 < aperture * aperture)
    exact = (h > h_large) | (max(abs(x), abs(y)) + h >= 0.5 * npix * pitch)
    row = min(int(math.floor(y / pitch + 0.5 * npix)), npix - 1)
    row = (npix if exact else row) if member else npix + 1
    return 2 * (row + (npix + 2) * crossing) + inside


@njit(cache=True, parallel=True, fastmath={"contract"})  # multiply-adds fused: -6 %, not reordered
def _deposit(
    offset: np.ndarray, hsml: np.ndarray, weight: np.ndarray, rot: np.ndarray, depth: float, npix: int,
    pitch: float, h_large: float, s_per_h: float, kappa4_per_h4: float, class_width: float, aperture: float,
    moments: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """One pass over the gas of a halo for one line of sight (rotation ``rot``): write the moments (about their
    pixel's centre, in pixel units) of the prism's particles to ``moments`` (class, row, column, moment), each
    row zeroed by the thread that fills it.

    Returns (indices of the prism particles left to the exact projection, indices of those the circle of
    radius ``aperture`` crosses, weight of those wholly inside it, number of prism particles); indices in
    input order. The particles are bucketed by grid row (a stable counting sort over fixed chunks), each row
    accumulated by one thread in input order, and the chunks' aperture sums added in chunk order: the same
    sums for any number of threads.
    """
    n = offset.shape[0]
    half = 0.5 * npix * pitch
    size = (n + _ROW_CHUNKS - 1) // _ROW_CHUNKS
    tags = np.empty(n, dtype=np.int32)
    counts = np.zeros((_ROW_CHUNKS, npix + 2), dtype=np.int64)  # rows, exact, outside
    crossed = np.zeros(_ROW_CHUNKS + 1, dtype=np.int64)
    inside = np.zeros(_ROW_CHUNKS)
    rows = rotation_rows(rot)
    for c in prange(_ROW_CHUNKS):
        lo, hi = c * size, min(n, (c + 1) * size)
        for p in range(lo, hi):  # no reduction, the rotation in registers: this loop vectorises
            x, y, along = _rotated(offset, rows, p)
            h = hsml[p]
            tags[p] = _tag(_in_prism(x, y, along, h, depth, half), x, y, h, npix, pitch, h_large, aperture)
        in_chunk = 0.0
        n_crossed = 0
        for p in range(lo, hi):
            code = tags[p] >> 1
            counts[c, code % (npix + 2)] += 1
            n_crossed += code >= npix + 2
            if tags[p] & 1:
                in_chunk += weight[p]
        inside[c] = in_chunk
        crossed[c + 1] = n_crossed
    start, total = chunk_offsets(counts[:, : npix + 1])  # each row's particles keep their input order
    cross_start = np.cumsum(crossed)
    order = np.empty(total, dtype=np.int64)
    cross = np.empty(cross_start[-1], dtype=np.int64)
    for c in prange(_ROW_CHUNKS):
        nxt = start[c].copy()
        k = cross_start[c]
        for p in range(c * size, min(n, (c + 1) * size)):
            code = tags[p] >> 1
            row = code % (npix + 2)
            if row <= npix:
                order[nxt[row]] = p
                nxt[row] += 1
            if code >= npix + 2:
                cross[k] = p
                k += 1
    n_classes = moments.shape[0]
    for r in prange(npix):
        moments[:, r] = 0.0
        mx = np.empty(_ORDER + 1)
        my = np.empty(_ORDER + 1)
        for o in range(start[0, r], start[0, r + 1]):
            p = order[o]
            x, y, _ = _rotated(offset, rows, p)
            x = x / pitch + 0.5 * npix
            y = y / pitch + 0.5 * npix
            i = min(int(math.floor(x)), npix - 1)
            h = hsml[p] / pitch
            s2 = (s_per_h * h) ** 2
            k = min(int(s2 / class_width), n_classes - 1)
            e = s2 - (k + 0.5) * class_width
            kappa4 = kappa4_per_h4 * h**4
            dx = x - i - 0.5
            dy = y - r - 0.5
            _moments_1d(mx, dx, e, kappa4 + 3.0 * e * e)
            _moments_1d(my, dy, e, kappa4 + 3.0 * e * e)
            # w m_ab = (w mx[a]) my[b], unrolled in the order of POWERS (ORDER = 5)
            cell = moments[k, r, i]
            w0 = weight[p]
            w1, w2, w3, w4, w5 = w0 * mx[1], w0 * mx[2], w0 * mx[3], w0 * mx[4], w0 * mx[5]
            y1, y2, y3, y4, y5 = my[1], my[2], my[3], my[4], my[5]
            cell[0] += w0
            cell[1] += w1
            cell[2] += w0 * y1
            cell[3] += w2
            cell[4] += w1 * y1
            cell[5] += w0 * y2
            cell[6] += w3
            cell[7] += w2 * y1
            cell[8] += w1 * y2
            cell[9] += w0 * y3
            cell[10] += w4
            cell[11] += w3 * y1
            cell[12] += w2 * y2
            cell[13] += w1 * y3
            cell[14] += w0 * y4
            cell[15] += w5
            cell[16] += w4 * y1
            cell[17] += w3 * y2
            cell[18] += w2 * y3
            cell[19] += w1 * y4
            cell[20] += w0 * y5
            # the kernel is isotropic: E[x^2 y^2] - E[x^2] E[y^2] = kappa_xxyy = kappa4 / 3, which enters the
            # moments m_ab with a, b >= 2 as binomial(a, 2) binomial(b, 2) dx^(a-2) dy^(b-2) kappa_xxyy
            c22 = w0 * kappa4 / 3.0
            cell[_I22] += c22
            cell[_I32] += 3.0 * dx * c22
            cell[_I23] += 3.0 * dy * c22
    total_inside = 0.0
    for c in range(_ROW_CHUNKS):
        total_inside += inside[c]
    return order[start[0, npix]:].copy(), cross, total_inside, total


def derivative_responses(npix_in: int, sigma: float, npix_out: int, pixel_out: float) -> np.ndarray:
    """(ORDER + 1, npix_out, npix_in): entry [a, o, i] is the a-th derivative of the 1D Gaussian of ``sigma``
    centred on input pixel i (unit pitch, grid centred on 0), averaged over output pixel o (``pixel_out``)."""
    centres = np.arange(npix_in) + 0.5 - 0.5 * npix_in
    edges = pixel_edges(npix_out, pixel_out)
    lo = (edges[:-1, None] - centres[None, :]) / sigma
    hi = (edges[1:, None] - centres[None, :]) / sigma
    out = np.empty((ORDER + 1, npix_out, npix_in))
    out[0] = gaussian_mass(lo, hi)
    phi_lo, phi_hi = (np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi) for t in (lo, hi))
    for a in range(1, ORDER + 1):
        # the integral of g^(a) is g^(a-1) at the ends; g^(n)(X) = (-1)^n He_n(X / sigma) phi(X / sigma) / sigma^(n+1)
        he = np.eye(a)[a - 1]
        scale = (-1.0) ** (a - 1) / sigma**a
        out[a] = scale * (hermeval(hi, he) * phi_hi - hermeval(lo, he) * phi_lo)
    return out / pixel_out


@njit(cache=True, parallel=True)
def _image_plane(offset: np.ndarray, rot: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image-plane (x, y) of the particles ``index``, with the arithmetic of :func:`prism_member` (same bits)."""
    x = np.empty(index.size)
    y = np.empty(index.size)
    rows = rotation_rows(rot)
    for k in prange(index.size):
        x[k], y[k], _ = _rotated(offset, rows, index[k])
    return x, y


@njit(cache=True, parallel=True)
def _edge_profiles(x: np.ndarray, y: np.ndarray, hsml: np.ndarray, weight: np.ndarray, npix: int, pitch: float,
                   factors: np.ndarray, slopes: np.ndarray, coeff: np.ndarray) -> np.ndarray:
    """(4, npix): the particles' sky on the field's edges x = +half, x = -half, y = +half, y = -half, integrated
    over each grid pixel's span along the edge [weight / L]: the projected kernel along a line at distance u
    from the centre is sum_m c_m S_m'(u) S_m(t) (:func:`szmass.kernels.separable_marginal`)."""
    half = 0.5 * npix * pitch
    rank = coeff.size
    profiles = np.zeros((4, npix))
    for e in prange(4):  # one edge per thread, particles in order: the same sums for any number of threads
        scaled = np.empty(rank)  # c_m S_m'(u)
        basis = np.empty((npix + 1, rank))  # S_m at the pixel edges along the field's edge
        for p in range(x.size):
            h = hsml[p]
            if h <= 0.0:
                continue
            normal, along = (x[p], y[p]) if e < 2 else (y[p], x[p])
            u = ((half if e % 2 == 0 else -half) - normal) / h
            if abs(u) >= 1.0:
                continue
            j0 = max(int(math.floor((along - h) / pitch + 0.5 * npix)), 0)
            j1 = min(int(math.floor((along + h) / pitch + 0.5 * npix)), npix - 1)
            for m in range(rank):  # S_m' is even, S_m odd
                scaled[m] = coeff[m] * factor_at(slopes, u, m)
            for k in range(j1 - j0 + 2):  # each edge's cell found once, its rank factors in one vector
                t = ((j0 + k - 0.5 * npix) * pitch - along) / h
                sign = np.copysign(1.0, t)
                fine = min(abs(t), 1.0) * N_FINE
                cell = min(int(fine), N_FINE - 1)
                f = fine - cell
                lo, hi, row = factors[cell], factors[cell + 1], basis[k]
                for m in range(rank):
                    row[m] = sign * (lo[m] + f * (hi[m] - lo[m]))
            for k in range(j1 - j0 + 1):
                lo, hi = basis[k], basis[k + 1]
                value = 0.0
                for m in range(rank):
                    value += scaled[m] * (hi[m] - lo[m])
                profiles[e, j0 + k] += weight[p] * value / h
    return profiles


def _edge_correction(profiles: np.ndarray, response: np.ndarray, pitch: float, field: float, fwhm: float,
                     npix_out: int, pixel_out: float) -> np.ndarray:
    """The leading error, (npix_out, npix_out), of observing with the pixel window compensated a sky cut at the
    field's edges: (d^2 / 12) f(edge) dG/dn along each edge (the midpoint rule's boundary term), from the edge
    ``profiles`` of :func:`_edge_profiles` (pixels of ``pitch``) and the grid's window ``response``."""
    sigma = fwhm / FWHM_PER_SIGMA
    edges = pixel_edges(npix_out, pixel_out)
    out = np.zeros((npix_out, npix_out))
    for e, (b, sign) in enumerate(((0.5 * field, 1.0), (-0.5 * field, -1.0), (0.5 * field, 1.0), (-0.5 * field, -1.0))):
        density = np.exp(-0.5 * ((edges - b) / sigma) ** 2) / (math.sqrt(2.0 * math.pi) * sigma)
        normal = sign * pitch**2 / 12.0 * np.diff(density) / pixel_out  # mean dG/dn over each output pixel
        along = response @ profiles[e]
        out += np.outer(along, normal) if e < 2 else np.outer(normal, along)
    return out


def exact_pitch(x: np.ndarray, y: np.ndarray, hsml: np.ndarray, *, half_width: float, fwhm: float) -> np.ndarray:
    """Index into ``EXACT_PIXELS`` (n,) of the grid each exactly projected particle goes on: 0 for a support
    wholly inside the field of half-width ``half_width``, else the coarsest pitch on which the support radius
    ``hsml`` spans at least ``EXACT_RESOLVED`` pixels (the finest for smaller ones). Same length unit for all."""
    edge = np.maximum(np.abs(x), np.abs(y)) + hsml >= half_width
    resolved = hsml[:, None] >= EXACT_RESOLVED * fwhm * np.asarray(EXACT_PIXELS[1:-1])
    coarsest = np.where(resolved.any(axis=1), np.argmax(resolved, axis=1), resolved.shape[1]) + 1
    return np.where(edge, coarsest, 0)


def _observe_exactly(x: np.ndarray, y: np.ndarray, hsml: np.ndarray, weight: np.ndarray, *, field: float,
                     fwhm: float, pixel: float, npix_out: int, pixel_out: float, scale: float,
                     kernel: str, edge: bool) -> np.ndarray:
    """The observed map of particles projected exactly (:func:`szmass.sph.project`) on a grid of ``pixel`` FWHM
    covering the field, observed with the pixel window compensated, and, if the field's ``edge`` crosses them,
    the boundary term of the field's edges removed (:func:`_edge_correction`). Lengths as in
    :func:`observe_prism`."""
    npix, pitch = square_grid(field, fwhm, pixel)
    grid = project(x, y, hsml, weight, npix=npix, pixel_size=pitch * scale, kernel=kernel)
    response = window_response_matrix(npix, pitch, fwhm, npix_out, pixel_out)
    rows, cols = _occupied(grid != 0.0)
    out = response[:, rows] @ grid[rows, cols] @ response[:, cols].T
    if edge:
        factors, coeff = separable_quadrant(kernel)
        profiles = _edge_profiles(x, y, hsml, weight, npix, pitch * scale, factors, separable_marginal(kernel), coeff)
        out -= _edge_correction(profiles / (pitch * scale), response, pitch, field, fwhm, npix_out, pixel_out)
    return out


_WORKSPACE = threading.local()


def _moment_grids(shape: tuple[int, ...]) -> np.ndarray:
    """Moment grids of ``shape`` (uninitialised: :func:`_deposit` zeroes them), the same buffer for every call of
    a thread while the shape stays: a fresh 21.5 MB array per line of sight cost the kernel's zeroing and page
    faults, ~25 ms (a quarter of the deposit)."""
    grids = getattr(_WORKSPACE, "grids", None)
    if grids is None or grids.shape != shape:
        grids = _WORKSPACE.grids = np.empty(shape)
    return grids


@dataclass(frozen=True)
class Observation:
    """One line of sight by :func:`observe_prism`: ``map`` (npix_out, npix_out) float64 the beam-smoothed
    weight per unit area [weight / L^2] averaged over each output pixel; ``aperture_weight`` the prism's
    weight inside the aperture (each particle's exact share, :mod:`szmass.aperture`); ``n_particles`` in the
    prism."""

    map: np.ndarray
    aperture_weight: float
    n_particles: int


@functools.lru_cache(maxsize=4)
def _class_responses(field: float, fwhm: float, npix_out: int, pixel_out: float) -> tuple[np.ndarray, ...]:
    """Per class of kernel variance, :func:`derivative_responses` of its Gaussian on the moment grid (pixel
    units), the a-th times (-1)^a / a! (the expansion's coefficients, module docstring); read-only, cached (the
    same for every halo of a run)."""
    npix, pitch = square_grid(field, fwhm)
    sigma = fwhm / FWHM_PER_SIGMA / pitch
    coeff = np.array([(-1.0) ** a / math.factorial(a) for a in range(ORDER + 1)])
    out = []
    for k in range(_N_CLASSES):
        r = coeff[:, None, None] * derivative_responses(
            npix, math.sqrt(sigma**2 + (k + 0.5) * CLASS_WIDTH * sigma**2), npix_out, pixel_out / pitch)
        r.setflags(write=False)
        out.append(r)
    return tuple(out)


def _occupied(nonzero: np.ndarray) -> tuple[slice, slice]:
    """(rows, columns): the smallest ranges holding every True pixel of ``nonzero`` (empty when none)."""
    rows, cols = np.flatnonzero(nonzero.any(axis=1)), np.flatnonzero(nonzero.any(axis=0))
    if rows.size == 0:
        return slice(0, 0), slice(0, 0)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _class_map(terms: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """The observed map (npix_out, npix_out) [weight] of one class's ``moments`` (row, column, moment) through its
    derivative responses ``terms`` (:func:`_class_responses`): sum over a, b of T_b M_ab T_a^T."""
    rows, cols = _occupied(np.any(moments != 0.0, axis=-1))
    grids = np.ascontiguousarray(np.moveaxis(moments[rows, cols], -1, 0))  # one copy, then BLAS reads them as they are
    out = np.zeros((terms.shape[1], terms.shape[1]))
    for a in range(ORDER + 1):  # sum over b first: one product by the x response per order a
        along_y = sum(terms[b][:, rows] @ grids[POWERS.index((a, b))] for b in range(ORDER + 1 - a))
        out += along_y @ terms[a][:, cols].T
    return out


def observe_prism(
    offset: np.ndarray,
    hsml: np.ndarray,
    weight: np.ndarray,
    rotation: np.ndarray,
    *,
    depth: float,
    aperture: float,
    field: float,
    fwhm: float,
    npix_out: int,
    pixel_out: float,
    scale: float = 1.0,
    kernel: str = "wendland_c4",
) -> Observation:
    """What a Gaussian beam of FWHM ``fwhm`` sees of the gas ``offset`` (N, 3) [L] from the halo centre, along the
    line of sight ``rotation`` (3, 3; third row the line of sight), and the weight inside the aperture.

    The prism is that of the high-resolution maps: particles within +- ``depth`` [L] along the line of sight
    whose support (``hsml`` [L], finite, >= 0) overlaps the square ``field``; the sky outside the field is not
    observed. ``weight`` [e.g. L^2 for y], ``aperture`` radius [L]; ``field``, ``fwhm`` and the output pixel
    ``pixel_out`` in sky units (e.g. arcmin) of ``scale`` L each. One fused pass (rotate, select, classify,
    accumulate the moments) with no per-particle copies; the map equals the projection on a fine grid observed
    by :func:`szmass.instrument.observe` to ~1e-5 of its peak (module docstring).
    """
    if kernel not in KERNEL_NAMES:
        raise ValueError(f"unknown SPH kernel {kernel!r}; expected one of {KERNEL_NAMES}")
    if not (pixel_out > 0.0 and scale > 0.0):
        raise ValueError(f"pixel_out and scale must be positive, got {pixel_out!r} and {scale!r}")
    with serial_blas():  # numba's passes and the small products alternate
        npix, pitch = square_grid(field, fwhm)
        sigma = fwhm / FWHM_PER_SIGMA / pitch  # pixel units
        s_per_h, kappa4_per_h4 = kernel_cumulants(kernel)
        rot = np.ascontiguousarray(rotation, dtype=np.float64)
        moments = _moment_grids((_N_CLASSES, npix, npix, len(POWERS)))
        exact, cross, inside, n_particles = _deposit(
            offset, hsml, weight, rot, float(depth), npix, pitch * scale, LARGE_KERNEL * sigma * pitch * scale / s_per_h,
            s_per_h, kappa4_per_h4, CLASS_WIDTH * sigma**2, float(aperture), moments,
        )
        responses = _class_responses(float(field), float(fwhm), int(npix_out), float(pixel_out))
        out = np.zeros((npix_out, npix_out))
        with ThreadPoolExecutor(max_workers=get_num_threads()) as pool:  # BLAS releases the GIL
            for class_map in pool.map(_class_map, responses, moments):  # summed in class order
                out += class_map
        out /= (pitch * scale) ** 2
        if exact.size:
            x, y = _image_plane(offset, rot, exact)
            h, w = hsml[exact], weight[exact]
            grid = exact_pitch(x, y, h, half_width=0.5 * npix * pitch * scale, fwhm=fwhm * scale)
            for g, pixel in enumerate(EXACT_PIXELS):
                group = grid == g
                if group.any():
                    out += _observe_exactly(x[group], y[group], h[group], w[group], field=float(field),
                                            fwhm=float(fwhm), pixel=pixel, npix_out=int(npix_out),
                                            pixel_out=float(pixel_out), scale=scale, kernel=kernel, edge=g > 0)
        if cross.size:
            x, y = _image_plane(offset, rot, cross)
            inside += float(np.sum(weight[cross] * aperture_fractions(x, y, hsml[cross], aperture, kernel=kernel)))
        return Observation(map=out, aperture_weight=inside, n_particles=n_particles)


def observe_particles(
    x: np.ndarray,
    y: np.ndarray,
    hsml: np.ndarray,
    weight: np.ndarray,
    *,
    field: float,
    fwhm: float,
    npix_out: int,
    pixel_out: float,
    kernel: str = "wendland_c4",
) -> np.ndarray:
    """The map (npix_out, npix_out) float64 of the particles at (``x``, ``y``) [L] in the image plane (field centred
    on 0) seen by a Gaussian beam of FWHM ``fwhm``: :func:`observe_prism` with no rotation, depth or aperture.

    ``hsml`` support radii H [L], ``weight`` [L^2 for y]; ``field`` [L] the side of the square field whose sky
    is kept (the 1920^2 route's), ``fwhm`` and ``pixel_out`` [L]. Equal to :func:`szmass.sph.project` on a fine
    grid followed by :func:`szmass.instrument.observe` to ~1e-5 of the peak (module docstring).
    """
    arrays = {name: np.ascontiguousarray(a, dtype=np.float64).ravel()
              for name, a in (("x", x), ("y", y), ("hsml", hsml), ("weight", weight))}
    lengths = {name: a.size for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"particle arrays have mismatched lengths: {lengths}")
    for name, a in arrays.items():
        bad = int(np.count_nonzero(~np.isfinite(a)))
        if bad:
            raise ValueError(f"{name}: {bad} non-finite value(s); expected finite positions, support radii and weights")
    if np.any(arrays["hsml"] < 0.0):
        raise ValueError(f"hsml has {int(np.count_nonzero(arrays['hsml'] < 0.0))} negative value(s); expected support "
                         f"radii >= 0")
    offset = np.column_stack([arrays["x"], arrays["y"], np.zeros_like(arrays["x"])])
    return observe_prism(offset, arrays["hsml"], arrays["weight"], np.eye(3), depth=math.inf, aperture=-math.inf,
                         field=field, fwhm=fwhm, npix_out=npix_out, pixel_out=pixel_out, kernel=kernel).map
