"""Gnomonic cutouts of full-sky HEALPix maps, painting flat images onto them, and their FITS I/O.

Geometry (identical to ``healpy.gnomview``, read from healpy's ``projector.GnomonicProj`` and
``rotator.Rotator``): a cutout of ``npix`` x ``npix`` pixels of ``reso`` arcmin has, for array
element ``[i, j]``, projection-plane coordinates ``x = (j - c) * dx``, ``y = (i - c) * dx``
(``c = (npix - 1) / 2``, ``dx = reso`` in radians), i.e. row 0 is the SOUTH edge (matplotlib
``origin="lower"``, FITS row 1) and longitude DEcreases with the column (east to the left,
healpy's default "astro" flip). The plane point maps to the unit vector
``(1, -x, y) / sqrt(1 + x^2 + y^2)`` of the local frame, rotated to the sky by the transpose of
healpy's ZYX Euler matrix for ``rot=(glon, glat, 0)``; each pixel takes the value of the HEALPix
pixel containing that direction (nearest-pixel lookup, no interpolation). Maps are in RING order.

All angles are in degrees unless the name says otherwise; ``reso_arcmin`` is the pixel side in
arcmin.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import healpy as hp
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy.ndimage import map_coordinates

from szmass.atomic import atomic_path
from szmass.constants import ARCMIN_PER_RAD
from szmass.fitsio import open_fits

__all__ = [
    "cutout",
    "cutout_pixels",
    "cutout_wcs",
    "cutouts",
    "paint",
    "read_healpix_map",
    "rotation_matrices",
    "write_cutout_fits",
]

log = logging.getLogger(__name__)

#: Upper bound on the number of cutout pixels handled in one ``healpy.vec2pix`` call
#: (three float64 components each: 2**21 pixels use 48 MiB).
_CHUNK_PIXELS = 2**21


def _as_positions(glon: Any, glat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated 1-d float64 arrays of galactic longitude and latitude [deg]."""
    lon = np.atleast_1d(np.asarray(glon, dtype=np.float64))
    lat = np.atleast_1d(np.asarray(glat, dtype=np.float64))
    if lon.ndim != 1 or lon.shape != lat.shape:
        raise ValueError(
            f"glon and glat must be scalars or 1-d arrays of one length, got shapes {lon.shape} and {lat.shape}"
        )
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        raise ValueError("glon and glat must be finite (degrees)")
    if np.any(np.abs(lat) > 90.0):
        raise ValueError(f"glat must lie in [-90, 90] degrees, got {lat[np.abs(lat) > 90.0][:5]}")
    return lon, lat


def _nside_of(hpmap: np.ndarray) -> int:
    """Nside of a full-sky HEALPix map, with a clear error for anything else."""
    if hpmap.ndim != 1 or not hp.isnpixok(hpmap.size):
        raise ValueError(f"expected a full-sky HEALPix map (1-d, 12 * nside**2 pixels), got shape {hpmap.shape}")
    return int(hp.npix2nside(hpmap.size))


def rotation_matrices(glon: Any, glat: Any) -> np.ndarray:
    """Rotation matrices (n, 3, 3) from the gnomonic local frame to galactic unit vectors.

    Local frame: x towards (glon, glat), y towards increasing longitude, z towards the north
    along the meridian. This is the transpose of ``healpy.Rotator(rot=(glon, glat),
    eulertype="ZYX").mat``, built with the same floating-point operations so that cutouts
    match ``gnomview`` bit for bit. Angles in degrees.
    """
    lon, lat = _as_positions(glon, glat)
    deg = np.pi / 180.0
    c1, s1 = np.cos(lon * deg), np.sin(lon * deg)
    a2 = -(lat * deg)  # healpy's ZYX convention rotates by -lat about the intermediate y axis
    c2, s2 = np.cos(a2), np.sin(a2)
    zero = np.zeros_like(c1)
    # healpy's matrix M = m3.T @ m2.T @ m1.T with m3 = identity (psi = 0); we return M.T.
    m = np.stack(
        [
            np.stack([c2 * c1, c2 * s1, -s2], axis=-1),
            np.stack([-s1, c1, zero], axis=-1),
            np.stack([s2 * c1, s2 * s1, c2], axis=-1),
        ],
        axis=-2,
    )
    return np.ascontiguousarray(np.swapaxes(m, -1, -2))


def _plane_xy(ny: int, nx: int, reso_arcmin: float) -> tuple[np.ndarray, np.ndarray]:
    """Projection-plane coordinates [rad] of the pixel centres, as ``GnomonicProj.ij2xy``."""
    dx = reso_arcmin / 60.0 * (np.pi / 180.0)
    xc, yc = 0.5 * (nx - 1), 0.5 * (ny - 1)
    x = (np.outer(np.ones(ny), np.arange(nx)) - xc) * dx
    y = (np.outer(np.arange(ny), np.ones(nx)) - yc) * dx
    return x, y


def _local_vectors(npix: int, reso_arcmin: float) -> np.ndarray:
    """Unit vectors (3, npix * npix) of the cutout's pixel centres in the local frame."""
    x, y = _plane_xy(npix, npix, reso_arcmin)
    rm1 = 1.0 / np.sqrt(1.0 + x**2 + y**2)
    return np.array([rm1, -rm1 * x, rm1 * y]).reshape(3, -1)


def _check_grid(npix: int, reso_arcmin: float) -> None:
    if int(npix) != npix or npix < 1:
        raise ValueError(f"npix must be a positive integer, got {npix!r}")
    if not (np.isfinite(reso_arcmin) and reso_arcmin > 0):
        raise ValueError(f"reso_arcmin must be a positive number of arcmin, got {reso_arcmin!r}")
    if (npix - 1) * reso_arcmin / 60.0 >= 179.0:
        raise ValueError(f"a gnomonic cutout must span less than 180 deg, got {npix} x {reso_arcmin} arcmin")


def cutout_pixels(nside: int, glon: Any, glat: Any, *, npix: int = 96, reso_arcmin: float = 1.7) -> np.ndarray:
    """RING indices (n, npix, npix) of the HEALPix pixels that ``gnomview`` shows in each cutout.

    ``glon``, ``glat`` [deg] are scalars or 1-d arrays; one ``healpy.vec2pix`` call per chunk of
    at most ``_CHUNK_PIXELS`` cutout pixels bounds the memory.
    """
    _check_grid(npix, reso_arcmin)
    if not hp.isnsideok(nside):
        raise ValueError(f"nside must be a power of 2, got {nside!r}")
    rot = rotation_matrices(glon, glat)
    local = _local_vectors(npix, reso_arcmin)
    out = np.empty((rot.shape[0], npix * npix), dtype=np.int64)
    per_chunk = max(1, _CHUNK_PIXELS // local.shape[1])
    for start in range(0, rot.shape[0], per_chunk):
        vec = np.matmul(rot[start : start + per_chunk], local)  # (k, 3, npix * npix)
        out[start : start + per_chunk] = hp.vec2pix(nside, vec[:, 0], vec[:, 1], vec[:, 2])
    return out.reshape(-1, npix, npix)


def cutouts(hpmap: np.ndarray, glon: Any, glat: Any, *, npix: int = 96, reso_arcmin: float = 1.7) -> np.ndarray:
    """Gnomonic cutouts (n, npix, npix), float64, of a RING HEALPix map at (glon, glat) [deg].

    Equal pixel for pixel to ``healpy.gnomview(hpmap, rot=(glon, glat), xsize=npix,
    reso=reso_arcmin, return_projected_map=True, no_plot=True)`` (whose masked UNSEEN pixels come
    back here as the map's values; a masked array's mask is ignored). Row 0 is the southern edge,
    longitude decreases with the column.
    """
    hpmap = np.asarray(hpmap)
    pix = cutout_pixels(_nside_of(hpmap), glon, glat, npix=npix, reso_arcmin=reso_arcmin)
    return hpmap[pix].astype(np.float64, copy=False)


def cutout(hpmap: np.ndarray, glon: float, glat: float, *, npix: int = 96, reso_arcmin: float = 1.7) -> np.ndarray:
    """One gnomonic cutout (npix, npix) at (glon, glat) [deg]; see :func:`cutouts`."""
    if np.ndim(glon) != 0 or np.ndim(glat) != 0:
        raise ValueError("cutout takes one position (scalars glon, glat); use cutouts for arrays")
    return cutouts(hpmap, glon, glat, npix=npix, reso_arcmin=reso_arcmin)[0]


def cutout_wcs(glon: float, glat: float, npix: int = 96, reso_arcmin: float = 1.7) -> WCS:
    """Celestial WCS (GLON-TAN, GLAT-TAN) of a cutout made by :func:`cutout` [deg, arcmin].

    CDELT1 < 0 (longitude decreases with the column), CDELT2 > 0, reference pixel at the image
    centre; the default LONPOLE = 180 deg puts north up, as in ``gnomview``.
    """
    _check_grid(npix, reso_arcmin)
    lon, lat = _as_positions(glon, glat)
    if lon.size != 1:
        raise ValueError("cutout_wcs takes one position")
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = [float(lon[0]) % 360.0, float(lat[0])]
    w.wcs.crpix = [0.5 * (npix + 1), 0.5 * (npix + 1)]
    w.wcs.cdelt = [-reso_arcmin / 60.0, reso_arcmin / 60.0]
    w.wcs.set()
    return w


def write_cutout_fits(
    path: str | os.PathLike[str],
    image: np.ndarray,
    glon: float,
    glat: float,
    *,
    reso_arcmin: float,
    header_cards: Mapping[str, Any],
) -> None:
    """Write a square cutout as a FITS primary image with its :func:`cutout_wcs`, atomically.

    ``header_cards`` maps keyword to value or ``(value, comment)``; e.g. ``{"Z": 0.15}`` (the
    redshift that ``szmass predict`` reads). Row 0 of ``image`` becomes FITS row 1 (south).
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.shape[0] != image.shape[1]:
        raise ValueError(f"{path}: expected a square 2-d cutout image, got shape {image.shape}")
    header = cutout_wcs(glon, glat, image.shape[0], reso_arcmin).to_header()
    for key, value in header_cards.items():
        header[key] = value
    with atomic_path(path) as tmp:
        fits.PrimaryHDU(data=image, header=header).writeto(tmp)


def paint(hpmap: np.ndarray, glon: float, glat: float, image: np.ndarray, *, reso_arcmin: float) -> None:
    """Add a flat image onto a RING HEALPix map around (glon, glat) [deg], in place.

    ``image`` (ny, nx) lies on the gnomonic grid of :func:`cutout` (row 0 south, longitude
    decreasing with column, ``reso_arcmin`` per pixel). Every HEALPix pixel whose centre falls in
    the image's footprint (its pixels' full extent) gets the image's bilinear interpolation at
    that centre added. Values are intensities (e.g. y), so integrals over solid angle carry over.
    """
    if not isinstance(hpmap, np.ndarray):
        raise TypeError(f"paint adds in place: hpmap must be a numpy array, got {type(hpmap).__name__}")
    hpmap_nside = _nside_of(hpmap)
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-d image to paint, got shape {image.shape}")
    _check_grid(max(image.shape), reso_arcmin)
    ny, nx = image.shape
    dx = reso_arcmin / ARCMIN_PER_RAD
    rot = rotation_matrices(glon, glat)[0]
    half_diag = 0.5 * np.hypot(nx, ny) * dx
    pix = hp.query_disc(hpmap_nside, rot[:, 0], np.arctan(half_diag), inclusive=False)
    local = rot.T @ np.array(hp.pix2vec(hpmap_nside, pix))  # (3, m): sky -> local frame
    front = local[0] > 0
    pix, local = pix[front], local[:, front]
    col = -local[1] / local[0] / dx + 0.5 * (nx - 1)
    row = local[2] / local[0] / dx + 0.5 * (ny - 1)
    inside = (col >= -0.5) & (col <= nx - 0.5) & (row >= -0.5) & (row <= ny - 0.5)
    values = map_coordinates(image, [row[inside], col[inside]], order=1, mode="nearest")
    hpmap[pix[inside]] += values


def write_healpix_map(path: str | os.PathLike[str], hpmap: np.ndarray, *, dtype: type = np.float32) -> None:
    """Write a full-sky RING map as a HEALPix FITS file (galactic coordinates), atomically.

    NaN pixels are written as ``healpy.UNSEEN`` (and read back as NaN by :func:`read_healpix_map`).
    """
    with atomic_path(path) as tmp:
        hp.write_map(str(tmp), np.asarray(hpmap), nest=False, coord="G", dtype=dtype, overwrite=True)


def read_healpix_map(
    path: str | os.PathLike[str],
    *,
    field: int | str = 0,
    nside: int | None = None,
    nest: bool | None = None,
) -> np.ndarray:
    """Read one column of a full-sky HEALPix FITS map as a float64 RING array.

    The ordering comes from the header's ORDERING (NESTED maps are reordered with
    ``healpy.reorder``); ``nest`` is the ordering to assume when the header has none, and an error
    if it contradicts the header. ``nside``, if given, is checked. UNSEEN (``healpy.UNSEEN``) and
    non-finite pixels are returned as NaN and their number is logged; callers that need values
    there must raise or fill themselves.
    """
    with open_fits(path, memmap=False) as hdul:
        if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            raise ValueError(f"{path}: expected a HEALPix binary table in HDU 1")
        table = hdul[1]
        header = table.header
        schm = str(header.get("INDXSCHM", "IMPLICIT")).strip().upper()
        if schm != "IMPLICIT":
            raise ValueError(f"{path}: INDXSCHM is {schm!r}; only full-sky IMPLICIT maps are supported")
        names = table.columns.names
        if isinstance(field, str) and field not in names:
            raise ValueError(f"{path}: no column {field!r}; columns are {names}")
        if isinstance(field, int) and not 0 <= field < len(names):
            raise ValueError(f"{path}: field {field} out of range; the table has {len(names)} columns {names}")
        data = np.array(table.data.field(field), dtype=np.float64).ravel()
    ordering = str(header.get("ORDERING", "")).strip().upper()
    if ordering == "":
        if nest is None:
            raise ValueError(f"{path}: header has no ORDERING keyword; pass nest=True or nest=False")
        ordering = "NESTED" if nest else "RING"
    elif ordering not in ("RING", "NESTED", "NEST"):
        raise ValueError(f"{path}: ORDERING is {ordering!r}, expected 'RING' or 'NESTED'")
    is_nested = ordering != "RING"
    if nest is not None and nest != is_nested:
        raise ValueError(f"{path}: header ORDERING is {ordering!r} but nest={nest} was requested")
    if not hp.isnpixok(data.size):
        raise ValueError(f"{path}: column {field!r} has {data.size} values, not a full-sky HEALPix map")
    file_nside = int(hp.npix2nside(data.size))
    if "NSIDE" in header and int(header["NSIDE"]) != file_nside:
        raise ValueError(f"{path}: header NSIDE = {header['NSIDE']} but the data hold Nside {file_nside}")
    if nside is not None and file_nside != nside:
        raise ValueError(f"{path}: NSIDE is {file_nside}, expected {nside}")
    bad = ~np.isfinite(data) | hp.mask_bad(data)
    if bad.any():
        data[bad] = np.nan
        log.info("%s: %d of %d pixels are UNSEEN or NaN (returned as NaN)", path, bad.sum(), data.size)
    if is_nested:
        data = hp.reorder(data, n2r=True)
    return data
