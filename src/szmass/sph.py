"""Deterministic, parallel SPH projection of particles onto a square pixel map (numba).

:func:`project` deposits each particle's weight with the line-of-sight integrated
kernel (see :mod:`szmass.kernels`) *integrated over each pixel*: the weight given to
the pixel [x0, x1) x [y0, y1) is the integral of the projected kernel over that square,
``D(a1, b1) - D(a0, b1) - D(a1, b0) + D(a0, b0)`` with D the kernel's quadrant integral,
a = (x_edge - x) / H and b = (y_edge - y) / H clamped to [-1, 1]. D is used in its
separable form ``sum_m c_m S_m(a) S_m(b)`` (:func:`szmass.kernels.separable_quadrant`).
Consequences:

* the weights of all pixels a particle overlaps, inside the map or not, telescope to
  ``4 D(1, 1) = 1``: every particle deposits exactly its weight (to rounding, ~1e-15);
* a particle partly outside the map loses exactly the integral of its projected kernel
  over the outside part (a particle centred on an edge loses half);
* particles much smaller than a pixel put their whole weight into their pixel, or split
  it by exact overlap over at most four neighbours: no aliasing spikes or holes;
* large particles spread over every pixel they touch, with pixel averages (not
  pixel-centre samples) of the projected kernel.

Accuracy: pixel values equal the exact pixel integrals of the projected kernel to ~1e-6
(Wendland C4) and ~1e-5 (cubic spline) of the particle's peak pixel value, for supports
of one to hundreds of pixels; the truncation to 8 separable terms leaves pixels where
the kernel vanishes with values of at most ~1e-9 (Wendland C4) and ~1e-7 (cubic spline)
of the particle's weight per pixel area, of either sign (tests/test_sph.py checks these
bounds against scipy).

Speed: a particle costs one linear interpolation of the 8 factors per pixel edge (two
cache lines of the factor table, which is aligned so that a row fills one line) and 8
multiply-adds per pixel, vectorised along pixel rows padded to whole blocks of 4 pixels.
For supports of ~8 pixels (4 million particles on 1920^2 pixels, one thread, AVX-512) the
edges take ~35% of the time, the pixels ~37%, the column differences ~5% and the passes
before the deposit (input checks, tile keys, sort, gather, pixel boxes, tile lists) ~8%.
benchmarks/projection.py compares it with swiftsimio's flux-conserving ("renormalised") backend.

Parallelism and determinism: the map is cut into ``TILE`` x ``TILE`` pixel tiles.
Particles are sorted (stably, a counting sort) by the tile holding the lower-left
corner of their footprint, so that each tile reads nearly contiguous memory, and listed
under every tile their footprint overlaps, in that sorted order; both passes count and
write over fixed chunks of the particles in parallel. Tiles are dealt to
``numba.get_num_threads()`` groups of about equal estimated cost; a ``numba.prange`` over the
groups lets each tile add its particles' contributions, in list order, to its own
pixels. No two threads write the same pixel and every pixel's floating-point sum runs
in an order fixed by the input alone, so the map is identical bit for bit whatever the
number of threads. Arithmetic is float64; of the fast-math flags only LLVM's ``contract`` is on, which
fuses a multiply and an add where the CPU has FMA (more accurate, not reordered): the bits can differ between
CPUs with and without FMA, never between thread counts.

Memory: besides the (npix, npix) float64 map, about 70 bytes per particle at the peak
(sorted float64 copies of the inputs, pixel boxes, the sort order and the tile lists),
e.g. ~0.3 GB for 4 million particles.
"""

from __future__ import annotations

import functools
from typing import Final

import numba
import numpy as np
from numba import njit, prange

from szmass.kernels import KERNEL_NAMES, N_FINE, RANK, separable_quadrant

TILE: Final[int] = 128
"""Side of the square pixel tiles processed in parallel (pixels)."""

_LANES: Final[int] = 4
"""Row updates are padded to whole blocks of this many pixels (4 float64: one AVX2 vector)."""

_CACHE_LINE: Final[int] = 64
"""Bytes per CPU cache line: the factor table is aligned to it (one table row = one line)."""

_SINGLE: Final[int] = 4
"""Column of the pixel box array flagging a support that lies inside one pixel."""


@njit(cache=True, inline="always")
def _footprint(pos: float, h: float, pixel_size: float, half: float) -> tuple[int, int]:
    """Indices (unclipped, saturated at +-4e18) of the first and last pixel the support touches."""
    limit = 4.0e18
    lo = np.floor((pos - h) / pixel_size + half)
    hi = np.floor((pos + h) / pixel_size + half)
    return int(min(max(lo, -limit), limit)), int(min(max(hi, -limit), limit))


@njit(cache=True, parallel=True)
def _first_tiles(x: np.ndarray, y: np.ndarray, hsml: np.ndarray, npix: int, pixel_size: float) -> np.ndarray:
    """Per particle, the tile of the lower-left pixel of its in-map box; -1 off the map."""
    half = npix / 2.0
    n_tiles_side = (npix + TILE - 1) // TILE
    tile = np.empty(x.size, dtype=np.int32)
    for p in prange(x.size):
        i0, i1 = _footprint(x[p], hsml[p], pixel_size, half)
        j0, j1 = _footprint(y[p], hsml[p], pixel_size, half)
        if i1 < 0 or j1 < 0 or i0 >= npix or j0 >= npix:
            tile[p] = -1
        else:
            tile[p] = (max(j0, 0) // TILE) * n_tiles_side + max(i0, 0) // TILE
    return tile


_CHUNKS: Final[int] = 64
"""Fixed chunks of the particles in the parallel counting passes (the output does not depend on the threads)."""


@njit(cache=True)
def chunk_offsets(count: np.ndarray) -> tuple[np.ndarray, int]:
    """(offsets, total) of a counting sort done over fixed chunks: ``count[c, b]`` items of chunk c go to bucket b,
    and ``offsets[c, b]`` is where they start, bucket-major then chunk, so that each bucket keeps the input order
    whatever the number of threads that fill it."""
    offsets = np.empty(count.shape, dtype=np.int64)
    total = 0
    for b in range(count.shape[1]):
        for c in range(count.shape[0]):
            offsets[c, b] = total
            total += count[c, b]
    return offsets, total


@njit(cache=True, parallel=True)
def _sort_by_tile(tile: np.ndarray, n_tiles: int) -> np.ndarray:
    """Indices of the particles with ``tile >= 0``, stably sorted by tile: a counting sort over ``_CHUNKS``
    fixed chunks, counted and then written in parallel."""
    n = tile.size
    size = (n + _CHUNKS - 1) // _CHUNKS
    count = np.zeros((_CHUNKS, n_tiles), dtype=np.int64)
    for c in prange(_CHUNKS):
        for p in range(c * size, min(n, (c + 1) * size)):
            if tile[p] >= 0:
                count[c, tile[p]] += 1
    fill, total = chunk_offsets(count)
    order = np.empty(total, dtype=np.int64)
    for c in prange(_CHUNKS):
        nxt = fill[c]
        for p in range(c * size, min(n, (c + 1) * size)):
            t = tile[p]
            if t >= 0:
                order[nxt[t]] = p
                nxt[t] += 1
    return order


@njit(cache=True, parallel=True)
def _gather(
    order: np.ndarray, x: np.ndarray, y: np.ndarray, hsml: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Copies of the particle arrays in ``order``."""
    n = order.size
    xs = np.empty(n)
    ys = np.empty(n)
    hs = np.empty(n)
    ws = np.empty(n)
    for q in prange(n):
        p = order[q]
        xs[q] = x[p]
        ys[q] = y[p]
        hs[q] = hsml[p]
        ws[q] = weight[p]
    return xs, ys, hs, ws


@njit(cache=True, parallel=True)
def _pixel_boxes(x: np.ndarray, y: np.ndarray, hsml: np.ndarray, npix: int, pixel_size: float) -> np.ndarray:
    """Per particle (i0, i1, j0, j1, single): in-map pixel box (inclusive), i0 = -1 off the map.

    ``single`` is 1 when the whole support lies inside one pixel.
    """
    half = npix / 2.0
    box = np.empty((x.size, 5), dtype=np.int32)
    for p in prange(x.size):
        i0, i1 = _footprint(x[p], hsml[p], pixel_size, half)
        j0, j1 = _footprint(y[p], hsml[p], pixel_size, half)
        if i1 < 0 or j1 < 0 or i0 >= npix or j0 >= npix:
            box[p, :] = -1
        else:
            box[p, 0] = max(i0, 0)
            box[p, 1] = min(i1, npix - 1)
            box[p, 2] = max(j0, 0)
            box[p, 3] = min(j1, npix - 1)
            box[p, _SINGLE] = 1 if (i0 == i1 and j0 == j1) else 0
    return box


@njit(cache=True, parallel=True)
def _tile_lists(box: np.ndarray, n_tiles_side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Particles overlapping each tile, in the order of ``box``, as CSR (``start``, ``members``): counted and
    written in parallel over ``_CHUNKS`` fixed chunks (the lists do not depend on the threads).

    Also returns each tile's cost estimate, used only to balance the threads' work: per
    particle 40 + 12 per pixel edge + 1 per pixel (an edge costs about a dozen pixels).
    """
    n = box.shape[0]
    n_tiles = n_tiles_side * n_tiles_side
    size = (n + _CHUNKS - 1) // _CHUNKS
    count = np.zeros((_CHUNKS, n_tiles), dtype=np.int64)
    chunk_cost = np.zeros((_CHUNKS, n_tiles))
    for c in prange(_CHUNKS):
        for p in range(c * size, min(n, (c + 1) * size)):
            for ty in range(box[p, 2] // TILE, box[p, 3] // TILE + 1):
                for tx in range(box[p, 0] // TILE, box[p, 1] // TILE + 1):
                    t = ty * n_tiles_side + tx
                    count[c, t] += 1
                    nx = min(box[p, 1], tx * TILE + TILE - 1) - max(box[p, 0], tx * TILE) + 1
                    ny = min(box[p, 3], ty * TILE + TILE - 1) - max(box[p, 2], ty * TILE) + 1
                    chunk_cost[c, t] += 40.0 + 12.0 * (nx + ny) + nx * ny
    fill, total = chunk_offsets(count)
    start = np.empty(n_tiles + 1, dtype=np.int64)
    start[:n_tiles] = fill[0]
    start[n_tiles] = total
    members = np.empty(total, dtype=np.int64)
    for c in prange(_CHUNKS):
        nxt = fill[c]
        for p in range(c * size, min(n, (c + 1) * size)):
            for ty in range(box[p, 2] // TILE, box[p, 3] // TILE + 1):
                for tx in range(box[p, 0] // TILE, box[p, 1] // TILE + 1):
                    t = ty * n_tiles_side + tx
                    members[nxt[t]] = p
                    nxt[t] += 1
    return start, members, chunk_cost.sum(axis=0)


@njit(cache=True)
def _deal_tiles(cost: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Tiles dealt into ``n_groups`` groups of similar total cost (greedy, heaviest first).

    Returns CSR (``group_start``, ``group_tiles``). Only the speed depends on this.
    """
    by_cost = np.argsort(-cost, kind="mergesort")
    load = np.zeros(n_groups)
    group = np.empty(cost.size, dtype=np.int64)
    for t in by_cost:
        g = np.argmin(load)
        group[t] = g
        load[g] += cost[t]
    group_start = np.zeros(n_groups + 1, dtype=np.int64)
    for t in range(cost.size):
        group_start[group[t] + 1] += 1
    group_start = np.cumsum(group_start)
    fill = group_start[:-1].copy()
    group_tiles = np.empty(cost.size, dtype=np.int64)
    for t in by_cost:
        group_tiles[fill[group[t]]] = t
        fill[group[t]] += 1
    return group_start, group_tiles


@njit(cache=True, inline="always", fastmath={"contract"})
def _edge_basis(
    first: int,
    n: int,
    pos: float,
    inv_h: float,
    pixel_size: float,
    half: float,
    factors: np.ndarray,
    basis: np.ndarray,
) -> None:
    """``basis[k, m] = S_m(a_k)`` for the n + 1 pixel edges from ``first``.

    a_k = ((first + k - half) * pixel_size - pos) * inv_h, clamped to [-1, 1] (S_m is
    odd); S_m is interpolated linearly in ``factors``. The rank is read from ``factors``
    at run time on purpose: LLVM vectorises a loop of unknown trip count, whereas it
    leaves a fully unrolled one scalar (numba disables the SLP vectoriser).
    """
    rank = factors.shape[1]
    for k in range(n + 1):
        a = ((first + k - half) * pixel_size - pos) * inv_h
        sign = np.copysign(1.0, a)
        t = min(abs(a), 1.0) * N_FINE
        cell = min(int(t), N_FINE - 1)
        f = t - cell
        lo = factors[cell]
        hi = factors[cell + 1]
        b = basis[k]
        for m in range(rank):
            b[m] = sign * (lo[m] + f * (hi[m] - lo[m]))


@njit(cache=True, fastmath={"contract"})
def _deposit_tile(
    tile: int,
    n_tiles_side: int,
    start: np.ndarray,
    members: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    hsml: np.ndarray,
    weight: np.ndarray,
    box: np.ndarray,
    factors: np.ndarray,
    coeff: np.ndarray,
    pixel_size: float,
    image: np.ndarray,
) -> None:
    """Project the tile's particles, in list order, and write the tile's pixels of ``image``.

    The pixel [a0, a1] x [b0, b1] (units of H, relative to the particle) receives
    ``weight / area * sum_m coeff_m (S_m(a1) - S_m(a0)) (S_m(b1) - S_m(b0))``. Sums run
    in a tile-local buffer whose rows are padded so that every row update covers whole
    blocks of ``_LANES`` pixels (the padding adds exact zeros).
    """
    npix = image.shape[0]
    half = npix / 2.0
    inv_area = 1.0 / (pixel_size * pixel_size)
    tx0 = (tile % n_tiles_side) * TILE
    ty0 = (tile // n_tiles_side) * TILE
    tx1 = min(tx0 + TILE, npix) - 1
    ty1 = min(ty0 + TILE, npix) - 1
    local = np.zeros((TILE, TILE + _LANES))
    basis = np.empty((TILE + 1, RANK))  # S_m at the pixel edges
    col = np.zeros((RANK, TILE + _LANES))  # weighted differences of S_m across pixel columns
    weights = np.empty(RANK)
    for e in range(start[tile], start[tile + 1]):
        p = members[e]
        scale = weight[p] * inv_area
        if box[p, _SINGLE]:  # the whole support lies in one pixel, inside this tile
            local[box[p, 2] - ty0, box[p, 0] - tx0] += scale
            continue
        i0 = max(box[p, 0], tx0)
        j0 = max(box[p, 2], ty0)
        nx = min(box[p, 1], tx1) - i0 + 1
        ny = min(box[p, 3], ty1) - j0 + 1
        n_padded = (nx + _LANES - 1) // _LANES * _LANES
        inv_h = min(1.0 / hsml[p], 1e300)  # finite even for denormal hsml
        _edge_basis(i0, nx, x[p], inv_h, pixel_size, half, factors, basis)
        for m in range(RANK):
            weights[m] = coeff[m] * scale
        for k in range(nx):  # along the basis rows (contiguous); the stores go down col's columns
            lo = basis[k]
            hi = basis[k + 1]
            for m in range(RANK):
                col[m, k] = (hi[m] - lo[m]) * weights[m]
        for m in range(RANK):
            out = col[m]
            for k in range(nx, n_padded):
                out[k] = 0.0
        _edge_basis(j0, ny, y[p], inv_h, pixel_size, half, factors, basis)
        # 1D views keep the pixel loop vectorised (2D indexing with an offset does not).
        c_0, c_1, c_2, c_3 = col[0], col[1], col[2], col[3]
        c_4, c_5, c_6, c_7 = col[4], col[5], col[6], col[7]
        for r in range(ny):
            lo = basis[r]
            hi = basis[r + 1]
            b0, b1, b2, b3 = hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2], hi[3] - lo[3]
            b4, b5, b6, b7 = hi[4] - lo[4], hi[5] - lo[5], hi[6] - lo[6], hi[7] - lo[7]
            out = local[j0 - ty0 + r, i0 - tx0 : i0 - tx0 + n_padded]
            for k in range(n_padded):
                # one chain of multiply-adds per pixel (fused where the CPU has FMA: 8 fused operations)
                out[k] = (out[k] + c_0[k] * b0 + c_1[k] * b1 + c_2[k] * b2 + c_3[k] * b3 + c_4[k] * b4
                          + c_5[k] * b5 + c_6[k] * b6 + c_7[k] * b7)
    for r in range(ty1 - ty0 + 1):
        for c in range(tx1 - tx0 + 1):
            image[ty0 + r, tx0 + c] = local[r, c]


@njit(cache=True, parallel=True)
def _project_tiles(
    x: np.ndarray,
    y: np.ndarray,
    hsml: np.ndarray,
    weight: np.ndarray,
    npix: int,
    pixel_size: float,
    factors: np.ndarray,
    coeff: np.ndarray,
    n_groups: int,
) -> np.ndarray:
    """Tiled projection; see the module docstring for the scheme."""
    image = np.empty((npix, npix))  # every tile writes all its pixels
    n_tiles_side = (npix + TILE - 1) // TILE
    order = _sort_by_tile(_first_tiles(x, y, hsml, npix, pixel_size), n_tiles_side * n_tiles_side)
    xs, ys, hs, ws = _gather(order, x, y, hsml, weight)
    box = _pixel_boxes(xs, ys, hs, npix, pixel_size)
    start, members, cost = _tile_lists(box, n_tiles_side)
    group_start, group_tiles = _deal_tiles(cost, n_groups)
    for g in prange(n_groups):
        for k in range(group_start[g], group_start[g + 1]):
            tile = group_tiles[k]
            _deposit_tile(tile, n_tiles_side, start, members, xs, ys, hs, ws, box, factors, coeff, pixel_size, image)
    return image


@functools.cache
def _aligned_factors(kernel: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`szmass.kernels.separable_quadrant` with the factor table copied to cache-line-aligned memory.

    Each table row (``RANK`` float64 = 64 bytes) then fills one cache line, so that the
    interpolation at a pixel edge reads two lines instead of three (numpy aligns large
    arrays to 16 bytes only). The values are the same; read-only.
    """
    factors, coeff = separable_quadrant(kernel)
    buffer = np.empty(factors.nbytes + _CACHE_LINE, dtype=np.uint8)
    offset = -buffer.ctypes.data % _CACHE_LINE
    aligned = buffer[offset : offset + factors.nbytes].view(np.float64).reshape(factors.shape)
    aligned[...] = factors
    aligned.setflags(write=False)
    return aligned, coeff


def _as_particle_array(name: str, values: object) -> np.ndarray:
    """Contiguous 1D float64 copy/view of a particle field, with a clear error otherwise."""
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1D array of particle values, got shape {array.shape}")
    return array


@njit(cache=True, parallel=True)
def _n_invalid(x: np.ndarray, y: np.ndarray, hsml: np.ndarray, weight: np.ndarray) -> int:
    """Number of particles with a non-finite field or a negative ``hsml`` (one parallel pass)."""
    bad = 0
    for p in prange(x.size):
        ok = np.isfinite(x[p]) & np.isfinite(y[p]) & np.isfinite(hsml[p]) & np.isfinite(weight[p]) & (hsml[p] >= 0)
        bad += 0 if ok else 1
    return bad


def _invalid_values(fields: dict[str, np.ndarray]) -> str:
    """What is wrong with the particle fields: NaN or infinite values, negative ``hsml``."""
    for name, array in fields.items():
        n_nan = int(np.count_nonzero(np.isnan(array)))
        if n_nan:
            return f"{name} has {n_nan} NaN values"
        n_inf = int(np.count_nonzero(np.isinf(array)))
        if n_inf:
            return f"{name} has {n_inf} infinite values"
    n_negative = int(np.count_nonzero(fields["hsml"] < 0))
    return f"hsml has {n_negative} negative values; expected support radii >= 0"


def project(
    x: np.ndarray,
    y: np.ndarray,
    hsml: np.ndarray,
    weight: np.ndarray,
    *,
    npix: int,
    pixel_size: float,
    kernel: str = "wendland_c4",
) -> np.ndarray:
    """Project SPH particles onto an (npix, npix) map centred on (0, 0).

    Parameters
    ----------
    x, y
        Particle positions in the map plane [length unit L].
    hsml
        Kernel support radius H of each particle [L] (GADGET's hsml), >= 0; H = 0 is a
        point mass.
    weight
        Quantity carried by each particle (any finite value; e.g. T_e N_e).
    npix
        Pixels per side.
    pixel_size
        Pixel side [L].
    kernel
        One of :data:`szmass.kernels.KERNEL_NAMES` (``"wendland_c4"``, GADGET-X's, or
        ``"cubic_spline"``).

    Returns
    -------
    numpy.ndarray
        float64 (npix, npix), weight per unit area [weight / L**2]: the sum over particles
        of ``weight`` times the projected kernel integrated over each pixel, divided by
        the pixel area. ``map[j, i]`` covers x in [(i - npix/2), (i + 1 - npix/2)) *
        pixel_size and y likewise with j, so ``map.sum() * pixel_size**2`` is the weight
        inside the map. Identical bit for bit for any number of numba threads.
    """
    if kernel not in KERNEL_NAMES:
        raise ValueError(f"unknown SPH kernel {kernel!r}; expected one of {KERNEL_NAMES}")
    if isinstance(npix, bool) or not isinstance(npix, (int, np.integer)) or npix <= 0:
        raise ValueError(f"npix must be a positive integer, got {npix!r}")
    if not np.isfinite(pixel_size) or pixel_size <= 0:
        raise ValueError(f"pixel_size must be a positive finite length, got {pixel_size!r}")
    fields = {
        name: _as_particle_array(name, values)
        for name, values in (("x", x), ("y", y), ("hsml", hsml), ("weight", weight))
    }
    lengths = {name: array.size for name, array in fields.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"particle arrays have mismatched lengths: {lengths}")
    if _n_invalid(fields["x"], fields["y"], fields["hsml"], fields["weight"]):
        raise ValueError(_invalid_values(fields))
    if npix > np.iinfo(np.int32).max // 2:
        raise ValueError(f"npix = {npix} is too large for int32 pixel indices")
    return _project_tiles(
        fields["x"],
        fields["y"],
        fields["hsml"],
        fields["weight"],
        int(npix),
        float(pixel_size),
        *_aligned_factors(kernel),
        numba.get_num_threads(),
    )


__all__ = ["TILE", "chunk_offsets", "project"]
