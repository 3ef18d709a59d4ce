"""Compton-y maps of one halo along the 27 lines of sight (:mod:`szmass.rotations`), and its Y500.

Physics. y = sigma_T / (m_e c^2) * integral of n_e k_B T_e dl. Each gas particle carries the weight

    W_i = sigma_T k_B T_i / (m_e c^2) * N_e,i,   N_e,i = ne_i X_H m_i / m_p     [kpc^2, sigma_T in kpc^2],

and ``szmass.sph.project`` spreads it with the line-of-sight integrated SPH kernel; projected in physical
kpc, the map (sum of W per kpc^2 of the sky plane) is y itself. The pixels are ``pixel_arcsec`` wide on the
sky, i.e. D_A * pixel [rad] physical kpc at the snapshot's redshift (flat sky), so the integrated
Y = sum(y) * pixel solid angle = sum(W) / D_A^2.

Geometry. Positions are taken relative to the halo centre (the AHF density peak) as minimum images in the
periodic box, then rotated with the line of sight's matrix (third row = line of sight). The gas projected
is the prism seen by the map: particles whose kernel overlaps the npix x npix field in the sky plane and
whose centre lies within +- ``depth_r500`` R500 of the centre along the line of sight (default 5 R500, the
radius out to which Planck integrates the GNFW pressure profile (Y_5R500): it holds essentially all the
cluster's own signal, while structures farther along the line of sight would be separate objects on the
real sky).
``depth_r500=None`` projects every particle read from the snapshot (e.g. the sphere the reader selected).

Y500. ``Y500_cyl`` [arcmin^2] is the y-weight inside the aperture of radius R500 about the centre (the cylinder
of radius R500 through the projected depth): each particle of the prism counts with the exact share of its
projected kernel inside the aperture (:mod:`szmass.aperture`), so Y500_cyl does not depend on any map's
pixels; an aperture reaching outside the field is an error. ``Y500_sph`` [arcmin^2] is sum(W) / D_A^2 over
the particles whose centres lie inside the 3D sphere of radius R500 (independent of the line of sight).
:func:`y500_cyl_arcmin2` measures the same aperture on a map (pixels weighted by their area inside it).

Routes. Route ``hires`` makes the 1920^2 high-resolution map (:meth:`HaloGas.line_of_sight`) and hands it to
``observe``; the fast route (:meth:`HaloGas.observed`) makes the observed map of the same field straight from
the particles' moments (:mod:`szmass.moments`), with no high-resolution map. Both give the same 96 x 96 maps
to ~1e-5 of their peak (benchmarks/ymap_equivalence.py, docs/benchmarks.md). The gas of a halo is kept in
Morton order (:func:`morton_order`), which keeps the fast route's deposit in cache.

Memory. One high-resolution map (1920^2 float64, 29 MB) exists at a time: :meth:`HaloGas.line_of_sight`
makes one map and its Y500_cyl; a caller observes it before the next one (:mod:`szmass.projection`, and
:func:`project_halo`, which hands each to an ``observe`` callable and keeps only its small result unless
``keep_hires`` asks for the high-resolution maps too).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from astropy.cosmology import FLRW
from numba import njit, prange

from szmass.aperture import aperture_sum
from szmass.constants import ARCMIN_PER_RAD, K_B_ERG_K, KPC_CM, M_P_G, ME_C2_ERG, MSUN_G, SIGMA_T_CM2, X_H
from szmass.cosmology import angular_diameter_distance_kpc
from szmass.instrument import Instrument
from szmass.logs import progress
from szmass.moments import observe_prism, prism_member, rotation_rows
from szmass.rotations import N_PROJECTIONS, rotation_matrix
from szmass.sph import project

Y_WEIGHT_KPC2: float = SIGMA_T_CM2 / KPC_CM**2 * K_B_ERG_K / ME_C2_ERG * X_H * MSUN_G / M_P_G
"""sigma_T [kpc^2] k_B / (m_e c^2) X_H Msun / m_p: the y-weight per (K * Msun * electron abundance)."""

ARCMIN_PER_ARCSEC = 1.0 / 60.0
"""Arcminutes per arcsecond."""

_MORTON_CELL_R500 = 1.0 / 8.0
"""Side of the cells by which the gas of a halo is ordered in memory, in R500 (:func:`morton_order`): the
deposit runs as fast as with cells of R500 / 64, and the keys need fewer bits."""

_SELECT_CHUNKS = 256
"""Fixed chunks of the parallel rotate-and-select pass (:func:`_select_prism`)."""

Observer = Callable[[np.ndarray, float], np.ndarray]
"""Maps (high-resolution y-map, its pixel size [arcmin]) to an observed map, e.g. ``instrument.observe``."""


class GasSnapshot(Protocol):
    """What :func:`project_halo` needs of a snapshot (``szmass.sims.read_snapshot`` returns one).

    ``pos`` (N, 3) physical kpc, ``mass`` Msun, ``temperature`` K, ``ne`` electron abundance per H, ``hsml``
    physical kpc (kernel support radius), ``box_size`` comoving kpc/h (None or 0: not periodic).
    """

    # Read-only properties, so that frozen dataclasses (szmass.sims.Snapshot) satisfy the protocol.
    @property
    def path(self) -> object: ...
    @property
    def redshift(self) -> float: ...
    @property
    def scale_factor(self) -> float: ...
    @property
    def h(self) -> float: ...
    @property
    def box_size(self) -> float | None: ...
    @property
    def pos(self) -> np.ndarray: ...
    @property
    def mass(self) -> np.ndarray: ...
    @property
    def temperature(self) -> np.ndarray: ...
    @property
    def ne(self) -> np.ndarray: ...
    @property
    def hsml(self) -> np.ndarray: ...


def y_weight_kpc2(mass_msun: np.ndarray, temperature_k: np.ndarray, ne: np.ndarray) -> np.ndarray:
    """Per-particle y-weight sigma_T k_B T N_e / (m_e c^2) [kpc^2], N_e = ne X_H m / m_p (float64)."""
    return Y_WEIGHT_KPC2 * np.asarray(mass_msun, float) * np.asarray(temperature_k, float) * np.asarray(ne, float)


def pixel_kpc(d_a_kpc: float, pixel_arcsec: float) -> float:
    """Physical size [kpc] of a pixel of ``pixel_arcsec`` [arcsec] at angular diameter distance ``d_a_kpc``."""
    return d_a_kpc * pixel_arcsec * ARCMIN_PER_ARCSEC / ARCMIN_PER_RAD


def selection_radius_kpc(
    r500_kpc: float | np.ndarray,
    redshift: float,
    cosmo: FLRW,
    *,
    npix: int = 1920,
    pixel_arcsec: float = 5.0,
    depth_r500: float = 5.0,
) -> float | np.ndarray:
    """Radius [physical kpc] of the sphere about a halo that holds the projected prism for any line of sight.

    The prism is the field (npix * pixel wide) times +- ``depth_r500`` R500; read this sphere from the
    snapshot (``read_snapshot(path, centre, radius)``) to have every particle a projection uses (up to
    particles centred just outside the field's corners whose kernels reach in).
    """
    half_width = 0.5 * npix * pixel_kpc(angular_diameter_distance_kpc(cosmo, redshift), pixel_arcsec)
    return np.sqrt(2.0 * half_width**2 + (depth_r500 * np.asarray(r500_kpc, float)) ** 2)


def disc_fraction(npix: int, radius_pix: float, oversample: int = 32) -> tuple[slice, np.ndarray]:
    """Fraction of each pixel of a centred npix x npix grid inside the disc of radius ``radius_pix`` [pixels].

    Returns (s, frac): the fractions ``frac`` of the pixels ``[s, s]`` (the square holding the disc, clipped to
    the grid); pixels crossed by the circle are sampled on an ``oversample`` x ``oversample`` sub-grid
    (the disc's area is then exact to ~1e-5 for radii of >~ 10 pixels).
    """
    lo = max(0, int(np.floor(0.5 * npix - radius_pix)) - 1)
    s = slice(lo, npix - lo)
    c = np.arange(lo, npix - lo) - 0.5 * (npix - 1)
    r = np.hypot(c[:, None], c[None, :])
    frac = (r < radius_pix).astype(float)
    jj, ii = np.nonzero(np.abs(r - radius_pix) < np.sqrt(0.5))
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    xs = c[ii][:, None, None] + sub[None, None, :]
    ys = c[jj][:, None, None] + sub[None, :, None]
    frac[jj, ii] = np.mean(xs**2 + ys**2 < radius_pix**2, axis=(1, 2))
    return s, frac


def y500_cyl_arcmin2(ymap: np.ndarray, pixel_arcmin: float, r500_arcmin: float) -> float:
    """Y inside the aperture of radius R500 [arcmin^2]: y summed with each pixel's area fraction inside R500.

    ``ymap`` is square, centred on the halo, with pixels of ``pixel_arcmin`` [arcmin] (:func:`disc_fraction`).
    """
    s, frac = disc_fraction(ymap.shape[0], r500_arcmin / pixel_arcmin)
    return float(np.sum(ymap[s, s] * frac) * pixel_arcmin**2)


_MORTON_BITS = 16
"""Bits per axis of the Morton key (:func:`morton_order`)."""


@njit(cache=True, parallel=True)
def _morton_keys(pos: np.ndarray, cell: float) -> np.ndarray:
    """Morton keys (N,) uint64 of the cubic cells of side ``cell`` about the origin that hold the points ``pos``
    (N, 3) (at most 2^15 cells from the origin per axis; beyond, the last). Each axis's cell index c is offset
    by 2^k, with k the fewest bits the points need: the order of the keys does not depend on k, and small
    keys sort in fewer passes."""
    n = pos.shape[0]
    reach = 0.0
    for p in range(n):
        for axis in range(3):
            reach = max(reach, abs(math.floor(pos[p, axis] / cell)))
    bits = 1
    while bits < _MORTON_BITS and (1 << (bits - 1)) < reach + 1:
        bits += 1
    half = 1 << (bits - 1)
    keys = np.zeros(n, dtype=np.uint64)
    for p in prange(n):
        key = np.uint64(0)
        for axis in range(3):
            c = min(max(math.floor(pos[p, axis] / cell) + half, 0), 2 * half - 1)
            for b in range(bits):
                key |= np.uint64((c >> b) & 1) << np.uint64(3 * b + axis)
        keys[p] = key
    return keys


@njit(cache=True, parallel=True)
def _minimum_image(pos: np.ndarray, centre: np.ndarray, box: float) -> np.ndarray:
    """Offsets (N, 3) of the points ``pos`` (N, 3) from ``centre`` (3,), wrapped to the nearest periodic image in a
    box of side ``box`` (0: not periodic); same unit."""
    out = np.empty_like(pos)
    for p in prange(pos.shape[0]):
        for axis in range(3):
            d = pos[p, axis] - centre[axis]
            out[p, axis] = d - box * np.rint(d / box) if box > 0.0 else d
    return out


@njit(cache=True, parallel=True)
def _permuted(order: np.ndarray, offset: np.ndarray, hsml: np.ndarray,
              weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``offset`` (N, 3), ``hsml`` and ``weight`` (N,) taken in ``order`` (N,), in one parallel pass."""
    off, h, w = np.empty_like(offset), np.empty_like(hsml), np.empty_like(weight)
    for k in prange(order.size):
        p = order[k]
        off[k, 0], off[k, 1], off[k, 2] = offset[p, 0], offset[p, 1], offset[p, 2]
        h[k], w[k] = hsml[p], weight[p]
    return off, h, w


_RADIX_BITS = 12
"""Bits of the key sorted per pass of :func:`_stable_argsort`."""


@njit(cache=True)
def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """Indices (N,) int64 that sort ``keys`` (N,) uint64 stably: least-significant-digit radix sort, ``_RADIX_BITS``
    a pass, as many passes as the largest key needs (a few times faster than numpy's stable sort of uint64)."""
    n = keys.size
    order, spare = np.arange(n), np.empty(n, dtype=np.int64)
    current, other = keys.copy(), np.empty(n, dtype=np.uint64)
    mask = np.uint64((1 << _RADIX_BITS) - 1)
    top = np.uint64(0)
    for p in range(n):
        top = max(top, keys[p])
    shift = np.uint64(0)
    while top >> shift:
        start = np.zeros((1 << _RADIX_BITS) + 1, dtype=np.int64)
        for p in range(n):
            start[((current[p] >> shift) & mask) + 1] += 1
        for d in range(1 << _RADIX_BITS):
            start[d + 1] += start[d]
        for p in range(n):
            d = (current[p] >> shift) & mask
            other[start[d]], spare[start[d]] = current[p], order[p]
            start[d] += 1
        current, other, order, spare = other, current, spare, order
        shift += np.uint64(_RADIX_BITS)
        if shift >= 64:
            break
    return order


def morton_order(offset: np.ndarray, cell: float) -> np.ndarray:
    """Indices (N,) that sort the points ``offset`` (N, 3) along a Morton (Z-order) curve of cubic cells of side
    ``cell`` about the origin (stable). Neighbours in space become neighbours in memory for any projection,
    which keeps the deposits of :mod:`szmass.moments` in cache; points of one cell keep their order, and the
    order of a subset does not depend on the other points."""
    return _stable_argsort(_morton_keys(np.ascontiguousarray(offset, dtype=np.float64), float(cell)))


@dataclass(frozen=True)
class HaloGas:
    """The gas of one snapshot around one halo, ready to be projected.

    ``offset_kpc`` (N, 3) physical kpc from the halo centre (minimum image), ``hsml_kpc`` (N,) support radii,
    ``weight_kpc2`` (N,) y-weights (:func:`y_weight_kpc2`), ``d_a_kpc`` the angular diameter distance, ``label``
    names the halo in messages.
    """

    offset_kpc: np.ndarray
    hsml_kpc: np.ndarray
    weight_kpc2: np.ndarray
    r500_kpc: float
    d_a_kpc: float
    label: str

    @classmethod
    def from_snapshot(
        cls, snapshot: GasSnapshot, centre_kpc: np.ndarray, r500_kpc: float, *, cosmo: FLRW, label: str | None = None
    ) -> HaloGas:
        """Centre the gas of ``snapshot`` on ``centre_kpc`` [physical kpc] (periodic box: minimum image)."""
        centre = np.asarray(centre_kpc, dtype=float)
        name = label or f"halo at {np.array2string(centre, precision=1)} kpc"
        if centre.shape != (3,) or not np.all(np.isfinite(centre)):
            raise ValueError(f"{name}: centre must be 3 finite coordinates [kpc], got {centre_kpc!r}")
        if not (np.isfinite(r500_kpc) and r500_kpc > 0):
            raise ValueError(f"{name}: R500 must be a positive length [kpc], got {r500_kpc!r}")
        if not snapshot.redshift > 0:
            raise ValueError(
                f"snapshot {snapshot.path}: redshift {snapshot.redshift} <= 0; a y-map needs the halo at z > 0 "
                f"to place it on the sky ({name})"
            )
        box = snapshot.box_size * snapshot.scale_factor / snapshot.h if snapshot.box_size else 0.0
        offset = _minimum_image(np.ascontiguousarray(snapshot.pos, dtype=np.float64), centre, float(box))
        offset, hsml, weight = _permuted(morton_order(offset, _MORTON_CELL_R500 * float(r500_kpc)), offset,
                                         np.ascontiguousarray(snapshot.hsml, dtype=np.float64),
                                         y_weight_kpc2(snapshot.mass, snapshot.temperature, snapshot.ne))
        return cls(
            offset_kpc=offset,
            hsml_kpc=hsml,
            weight_kpc2=weight,
            r500_kpc=float(r500_kpc),
            d_a_kpc=float(angular_diameter_distance_kpc(cosmo, snapshot.redshift)),
            label=name,
        )

    @property
    def r500_arcmin(self) -> float:
        """R500 on the sky [arcmin]."""
        return self.r500_kpc / self.d_a_kpc * ARCMIN_PER_RAD

    def _depth_kpc(self, depth_r500: float | None) -> float:
        """Half-depth of the prism [kpc]: ``depth_r500`` R500, or infinite (None: every particle read)."""
        return math.inf if depth_r500 is None else depth_r500 * self.r500_kpc

    def _arcmin2(self, weight_kpc2: float) -> float:
        """A y-weight [kpc^2] as an integrated Compton Y on the sky [arcmin^2]."""
        return weight_kpc2 / self.d_a_kpc**2 * ARCMIN_PER_RAD**2

    def y500_sph_arcmin2(self) -> float:
        """Y of the particles inside the sphere of radius R500 [arcmin^2]."""
        inside = np.einsum("ij,ij->i", self.offset_kpc, self.offset_kpc) < self.r500_kpc**2
        return self._arcmin2(float(self.weight_kpc2[inside].sum()))

    def prism(
        self, projection: int, *, half_width_kpc: float, depth_r500: float | None = 5.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The gas a map of line of sight ``projection`` (0..26) sees: (x, y, hsml, weight) (n,) each.

        ``x``, ``y`` [physical kpc] in the image plane; the particles whose centre lies within +- ``depth_r500``
        R500 along the line of sight (None: all) and whose kernel overlaps the square field of half-width
        ``half_width_kpc``, in the order read. Rotation and selection run in one parallel pass
        (:func:`_select_prism`). Raises ValueError naming the halo when no particle lies in the prism.
        """
        x, y, index = _select_prism(self.offset_kpc, self.hsml_kpc, rotation_matrix(projection),
                                    self._depth_kpc(depth_r500), half_width_kpc)
        if index.size == 0:
            raise self._empty_prism(projection, 2.0 * half_width_kpc, depth_r500)
        return x, y, self.hsml_kpc[index], self.weight_kpc2[index]

    def _empty_prism(self, projection: int, field_kpc: float, depth_r500: float | None) -> ValueError:
        """The error for a prism without gas."""
        return ValueError(
            f"{self.label}: no gas particle in the field ({field_kpc:.0f} kpc wide) within "
            f"+-{self._depth_kpc(depth_r500):.0f} kpc along "
            f"line of sight {projection} ({self.offset_kpc.shape[0]} particles read)"
        )

    def ymap(
        self,
        projection: int,
        *,
        npix: int = 1920,
        pixel_arcsec: float = 5.0,
        kernel: str = "wendland_c4",
        depth_r500: float | None = 5.0,
    ) -> np.ndarray:
        """y-map (npix, npix) float64 along line of sight ``projection`` (0..26), pixels of ``pixel_arcsec``.

        Raises ValueError naming the halo when no particle lies in the projected prism.
        """
        pix = pixel_kpc(self.d_a_kpc, pixel_arcsec)
        x, y, hsml, weight = self.prism(projection, half_width_kpc=0.5 * npix * pix, depth_r500=depth_r500)
        return project(x, y, hsml, weight, npix=npix, pixel_size=pix, kernel=kernel)

    def check_field(self, *, npix: int, pixel_arcsec: float) -> None:
        """Raise ValueError naming the halo when its R500 aperture reaches outside the ``npix`` x ``pixel_arcsec``
        field (Y500_cyl would miss gas)."""
        half_arcmin = 0.5 * npix * pixel_arcsec * ARCMIN_PER_ARCSEC
        if self.r500_arcmin > half_arcmin:
            raise ValueError(
                f"{self.label}: the R500 aperture (radius {self.r500_arcmin:.1f} arcmin) reaches outside the "
                f"{npix} x {pixel_arcsec:g} arcsec field (half-width {half_arcmin:.1f} arcmin): "
                f"Y500_cyl would miss gas; use a wider field (ymaps.hires_npix x ymaps.pixel_arcsec)"
            )

    def line_of_sight(
        self, projection: int, *, npix: int, pixel_arcsec: float, kernel: str, depth_r500: float | None
    ) -> tuple[np.ndarray, float]:
        """The y-map (npix, npix) float64 along line of sight ``projection`` (0..26) and its Y500_cyl [arcmin^2].

        Both from one :meth:`prism`; Y500_cyl from the particles, not the map (:meth:`y500_cyl_arcmin2`).
        """
        pix = pixel_kpc(self.d_a_kpc, pixel_arcsec)
        x, y, hsml, weight = self.prism(projection, half_width_kpc=0.5 * npix * pix, depth_r500=depth_r500)
        y500_cyl = self.y500_cyl_arcmin2(x, y, hsml, weight, kernel=kernel)
        return project(x, y, hsml, weight, npix=npix, pixel_size=pix, kernel=kernel), y500_cyl

    def observed(
        self, projection: int, *, npix: int, pixel_arcsec: float, kernel: str, depth_r500: float | None,
        instrument: Instrument,
    ) -> tuple[np.ndarray, float]:
        """The fast route: the map (npix_out, npix_out) float64 that ``instrument`` sees of the sky inside the ``npix``
        x ``pixel_arcsec`` field along line of sight ``projection`` (0..26), and its Y500_cyl [arcmin^2].

        The map comes straight from the particles (:func:`szmass.moments.observe_prism`), equal to
        :meth:`line_of_sight` observed by :func:`szmass.instrument.observe` to ~1e-5 of its peak, with no map
        on the ``npix`` grid; Y500_cyl as in :meth:`line_of_sight`.
        """
        kpc_per_arcmin = self.d_a_kpc / ARCMIN_PER_RAD
        seen = observe_prism(
            self.offset_kpc, self.hsml_kpc, self.weight_kpc2, rotation_matrix(projection),
            depth=self._depth_kpc(depth_r500), aperture=self.r500_kpc,
            field=npix * pixel_arcsec * ARCMIN_PER_ARCSEC, fwhm=instrument.fwhm_arcmin, npix_out=instrument.npix_out,
            pixel_out=instrument.pixel_arcmin_out, scale=kpc_per_arcmin, kernel=kernel,
        )
        if seen.n_particles == 0:
            raise self._empty_prism(projection, npix * pixel_kpc(self.d_a_kpc, pixel_arcsec), depth_r500)
        return seen.map, self._arcmin2(seen.aperture_weight)

    def y500_cyl_arcmin2(self, x: np.ndarray, y: np.ndarray, hsml: np.ndarray, weight: np.ndarray, *,
                         kernel: str = "wendland_c4") -> float:
        """Y inside the aperture of radius R500 [arcmin^2] of the particles (x, y, hsml, weight) of :meth:`prism`.

        Each particle counts with the exact share of its projected kernel inside the aperture
        (:func:`szmass.aperture.aperture_sum`): no map, no pixels.
        """
        return self._arcmin2(aperture_sum(x, y, hsml, weight, self.r500_kpc, kernel=kernel))


@njit(cache=True, parallel=True)
def _select_prism(
    offset: np.ndarray, hsml: np.ndarray, rot: np.ndarray, depth: float, half_width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate and select in one pass: (x, y, index) of the prism's particles, in input order.

    The particles are cut into ``_SELECT_CHUNKS`` fixed chunks, counted, then written at their chunk's
    offset: the output does not depend on the number of threads.
    """
    n = offset.shape[0]
    size = (n + _SELECT_CHUNKS - 1) // _SELECT_CHUNKS
    rows = rotation_rows(rot)
    counts = np.zeros(_SELECT_CHUNKS + 1, dtype=np.int64)
    for c in prange(_SELECT_CHUNKS):
        k = 0
        for p in range(c * size, min(n, (c + 1) * size)):
            if prism_member(offset, hsml, rows, depth, half_width, p)[0]:
                k += 1
        counts[c + 1] = k
    start = np.cumsum(counts)
    xs = np.empty(start[-1])
    ys = np.empty(start[-1])
    index = np.empty(start[-1], dtype=np.int64)
    for c in prange(_SELECT_CHUNKS):
        k = start[c]
        for p in range(c * size, min(n, (c + 1) * size)):
            member, x, y = prism_member(offset, hsml, rows, depth, half_width, p)
            if member:
                xs[k] = x
                ys[k] = y
                index[k] = p
                k += 1
    return xs, ys, index


@dataclass(frozen=True)
class HaloMaps:
    """The projections of one halo.

    ``projections`` (n,) line-of-sight indices; ``y500_cyl`` (n,) [arcmin^2] per projection; ``y500_sph``
    [arcmin^2]; ``d_a_kpc`` angular diameter distance [kpc]; ``pixel_arcmin`` of the projected maps;
    ``maps`` (n, ...) what ``observe`` returned per projection (None without ``observe``); ``hires``
    (n, npix, npix) float64 the projected y-maps themselves (None unless ``keep_hires``).
    """

    projections: np.ndarray
    y500_cyl: np.ndarray
    y500_sph: float
    d_a_kpc: float
    pixel_arcmin: float
    maps: np.ndarray | None
    hires: np.ndarray | None


def project_halo(
    snapshot: GasSnapshot,
    centre_kpc: np.ndarray,
    r500_kpc: float,
    *,
    cosmo: FLRW,
    npix: int = 1920,
    pixel_arcsec: float = 5.0,
    kernel: str = "wendland_c4",
    depth_r500: float | None = 5.0,
    projections: Iterable[int] = range(N_PROJECTIONS),
    observe: Observer | None = None,
    instrument: Instrument | None = None,
    keep_hires: bool = False,
    label: str | None = None,
) -> HaloMaps:
    """Project the halo at ``centre_kpc`` [physical kpc] with R500 ``r500_kpc`` [physical kpc] along each line of sight.

    Route ``hires``: each map of ``npix`` pixels of ``pixel_arcsec`` (the 1920^2 high-resolution grid) is passed
    to ``observe`` (with its pixel size in arcmin) before the next one is made. Fast route (``instrument``
    given, ``observe`` and ``keep_hires`` not): the maps ``instrument`` sees of the same field, made from the
    particles (:meth:`HaloGas.observed`). Y500_cyl comes from the particles, not a map (module docstring).
    ``label`` names the halo in errors and log lines. Raises ValueError when the R500 aperture reaches outside
    the field.
    """
    gas = HaloGas.from_snapshot(snapshot, centre_kpc, r500_kpc, cosmo=cosmo, label=label)
    gas.check_field(npix=npix, pixel_arcsec=pixel_arcsec)
    indices = np.array(list(projections), dtype=np.int64)
    if indices.size == 0:
        raise ValueError(f"{gas.label}: no line of sight requested (projections is empty)")
    if instrument is not None and (observe is not None or keep_hires):
        raise ValueError(f"{gas.label}: the fast route (instrument) makes no high-resolution map to observe or keep")
    pixel_arcmin = pixel_arcsec * ARCMIN_PER_ARCSEC
    y500_cyl = np.empty(indices.size)
    maps: list[np.ndarray] = []
    hires = np.empty((indices.size, npix, npix)) if keep_hires else None
    for n, k in enumerate(progress(indices, desc=f"{gas.label}: lines of sight")):
        if instrument is not None:
            observed, y500_cyl[n] = gas.observed(int(k), npix=npix, pixel_arcsec=pixel_arcsec, kernel=kernel,
                                                 depth_r500=depth_r500, instrument=instrument)
            maps.append(observed)
            continue
        ymap, y500_cyl[n] = gas.line_of_sight(int(k), npix=npix, pixel_arcsec=pixel_arcsec, kernel=kernel,
                                              depth_r500=depth_r500)
        if observe is not None:
            maps.append(observe(ymap, pixel_arcmin))
        if hires is not None:
            hires[n] = ymap
    return HaloMaps(
        projections=indices,
        y500_cyl=y500_cyl,
        y500_sph=gas.y500_sph_arcmin2(),
        d_a_kpc=gas.d_a_kpc,
        pixel_arcmin=pixel_arcmin,
        maps=np.stack(maps) if maps else None,
        hires=hires,
    )
