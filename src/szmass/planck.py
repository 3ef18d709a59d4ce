"""The sky: the PSZ2 catalogue, the Planck masks, the Golden sample, and the sky's cutout store.

PSZ2 (Planck Collaboration 2016, XXVII): the union catalogue ``HFI_PCCS_SZ-union_R2.08.fits``, 1653
detections of which 1094 have a redshift (the paper's real sample). Masks are HEALPix maps with
1 = valid and 0 = masked (the Planck galactic-plane and point-source masks); several are combined by
their product.

Golden sample (de Andres et al. 2022): a cluster whose cutout has no masked pixel within 10 arcmin of
its centre. Masked pixels farther out are replaced by noise-like values (:func:`fill_masked`).
:func:`sky_cutouts` makes the cutout store (``results/sky/cutouts.zarr``) of any full-sky y-map and mask,
the real Planck sky or the synthetic one (:mod:`szmass.synthsky`).

Cutout geometry: the cutouts are healpy gnomonic projections (``szmass.healpix.cutout``), ``npix``
pixels of ``reso_arcmin`` on a side, whose centre lies at pixel coordinate (npix - 1) / 2 on both axes
(healpy's ``GnomonicProj``); a pixel at offset rho (radians, in the tangent plane) from the centre is
at angular distance arctan(rho) from the cluster.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import healpy as hp
import numpy as np
import pandas as pd
import xarray as xr
from astropy import units as u
from astropy.io import fits
from scipy import ndimage

from szmass import healpix
from szmass.fitsio import open_fits
from szmass.logs import progress
from szmass.mapstore import STRING
from szmass.constants import ARCMIN_PER_RAD

PSZ2_UNITS: dict[str, tuple[u.UnitBase, u.UnitBase]] = {
    "GLON": (u.deg, u.deg),
    "GLAT": (u.deg, u.deg),
    "REDSHIFT": (u.dimensionless_unscaled, u.dimensionless_unscaled),
    "MSZ": (u.Unit("1e14 Msun"), u.Msun),
    "MSZ_ERR_UP": (u.Unit("1e14 Msun"), u.Msun),
    "MSZ_ERR_LOW": (u.Unit("1e14 Msun"), u.Msun),
    "SNR": (u.dimensionless_unscaled, u.dimensionless_unscaled),
    "Y5R500": (u.Unit("1e-3 arcmin2"), u.arcmin**2),
}
"""Numeric PSZ2 columns read: (unit of the PSZ2 release, used when the file states none; unit returned)."""

PSZ2_COLUMNS = ["NAME", *PSZ2_UNITS]
"""Columns of :func:`read_psz2`'s table: MSZ and its errors [Msun], GLON/GLAT [deg], Y5R500 [arcmin^2]."""

FITS_UNIT_ALIASES = {"Msol": u.Msun, "degrees": u.deg, "None": u.dimensionless_unscaled}
"""Unit spellings of the PSZ2 FITS headers that astropy does not know by themselves."""

MASKED_BELOW = 0.5
"""A mask (cutout) pixel whose value is below this is masked (masks hold 1 = valid, 0 = masked)."""


def _column_unit(header: fits.Header, index: int, name: str, default: u.UnitBase, path: str) -> u.UnitBase:
    """Unit of FITS table column ``index`` (1-based) from its TUNIT card, or ``default`` when it has none."""
    text = str(header.get(f"TUNIT{index}", "")).strip()
    if not text:
        return default
    try:
        with u.add_enabled_aliases(FITS_UNIT_ALIASES):
            return u.Unit(text, parse_strict="raise")
    except ValueError as err:
        raise ValueError(f"{path}: column {name} has unit {text!r} that astropy cannot parse") from err


def read_psz2(path: str | os.PathLike[str], *, require_redshift: bool = True) -> pd.DataFrame:
    """The PSZ2 union catalogue as a DataFrame with :data:`PSZ2_COLUMNS`.

    Units: GLON, GLAT [deg]; MSZ, MSZ_ERR_UP, MSZ_ERR_LOW [Msun] (the file holds 1e14 Msun; the
    conversion follows each column's TUNIT); Y5R500 [arcmin^2] (the file: 1e-3 arcmin^2); REDSHIFT and
    SNR dimensionless. With ``require_redshift`` the rows without a redshift (REDSHIFT <= 0, the release
    writes -1) are dropped. NAME is stripped of padding; the index runs 0..n-1.
    """
    path = os.fspath(path)
    with open_fits(path) as hdul:
        table = next((h for h in hdul if isinstance(h, fits.BinTableHDU)), None)
        if table is None:
            raise ValueError(f"{path}: no binary table HDU; expected the PSZ2 union catalogue")
        names = [c.name.upper() for c in table.columns]
        missing = [c for c in PSZ2_COLUMNS if c not in names]
        if missing:
            raise ValueError(f"{path}: PSZ2 catalogue lacks column(s) {missing}; expected {PSZ2_COLUMNS}")
        data = table.data
        out: dict[str, np.ndarray] = {"NAME": np.char.strip(np.asarray(data["NAME"]).astype(str))}
        for name, (default, target) in PSZ2_UNITS.items():
            unit = _column_unit(table.header, names.index(name) + 1, name, default, path)
            try:
                factor = unit.to(target)
            except u.UnitConversionError as err:
                raise ValueError(f"{path}: column {name} has unit {unit}; expected one convertible to {target}") from err
            out[name] = np.asarray(data[name], dtype=np.float64) * factor
    df = pd.DataFrame(out)
    for name in ("GLON", "GLAT"):
        if not np.all(np.isfinite(df[name])):
            raise ValueError(f"{path}: column {name} has non-finite values")
    if np.any(np.abs(df["GLAT"]) > 90.0):
        raise ValueError(f"{path}: column GLAT has values outside [-90, 90] deg")
    if require_redshift:
        df = df[df["REDSHIFT"] > 0.0].reset_index(drop=True)
    return df


def read_mask(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    nside: int | None = None,
    field: int | str = 0,
) -> np.ndarray:
    """The product of one or more HEALPix masks (1 = valid, 0 = masked) as a float32 RING map of 0s and 1s.

    Each file's column ``field`` (index or name, e.g. ``"GAL060"`` of the Planck galactic masks) is read
    with :func:`szmass.healpix.read_healpix_map` (ordering from its header; UNSEEN pixels count as masked) and regraded to ``nside`` with ``healpy.ud_grade`` when given (else all
    files must share one nside). A pixel of a degraded mask is valid only if all its sub-pixels were (a
    conservative mask for the Golden selection). Raises when a mask holds values outside [0, 1].
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise ValueError("read_mask: no mask file given")
    total: np.ndarray | None = None
    for p in items:
        m = np.nan_to_num(healpix.read_healpix_map(p, field=field), nan=0.0)
        if m.min() < 0.0 or m.max() > 1.0:
            raise ValueError(f"{os.fspath(p)}: mask values must lie in [0, 1] (1 = valid, 0 = masked), "
                             f"found [{m.min()}, {m.max()}]")
        if nside is not None and hp.npix2nside(m.size) != nside:
            m = hp.ud_grade(m, nside, order_in="RING", order_out="RING")
        if total is not None and m.size != total.size:
            raise ValueError(f"{os.fspath(p)}: {m.size} pixels, unlike the first mask's {total.size}; pass nside")
        valid = m >= 1.0 - 1e-6
        total = valid if total is None else total & valid
    assert total is not None  # items is not empty
    return total.astype(np.float32)


def centre_distance_arcmin(npix: int, reso_arcmin: float) -> np.ndarray:
    """Angular distance [arcmin] of each pixel (npix, npix) of a gnomonic cutout from its centre."""
    offset = (np.arange(npix) - 0.5 * (npix - 1)) * (reso_arcmin / ARCMIN_PER_RAD)
    rho = np.hypot(offset[None, :], offset[:, None])
    return np.arctan(rho) * ARCMIN_PER_RAD


def golden_flags(
    mask_cutouts: np.ndarray, *, radius_arcmin: float = 10.0, reso_arcmin: float = 1.7
) -> np.ndarray:
    """Golden-sample flags (n,) bool: no masked pixel (mask < 0.5) within ``radius_arcmin`` of the centre.

    ``mask_cutouts`` (n, npix, npix) or (npix, npix) are gnomonic cutouts of a mask map at ``reso_arcmin``
    [arcmin] per pixel; pixel centres at a distance <= ``radius_arcmin`` [arcmin] count.
    """
    m = np.asarray(mask_cutouts, dtype=np.float64)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1] != m.shape[2]:
        raise ValueError(f"mask_cutouts: expected (n, npix, npix) square cutouts, got shape {m.shape}")
    inner = centre_distance_arcmin(m.shape[1], reso_arcmin) <= radius_arcmin
    masked = ~(m >= MASKED_BELOW)  # NaN counts as masked
    return ~np.any(masked[:, inner], axis=1)


def unit_noise_field(shape: tuple[int, int], *, fwhm_pixels: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field of zero mean and unit variance per pixel: white noise smoothed by a Gaussian.

    Periodic smoothing (``mode='wrap'``) with a Gaussian of FWHM ``fwhm_pixels`` [pixels]; the variance is
    normalised exactly by the kernel's sum of squares (its response to a unit impulse). ``fwhm_pixels=0``
    gives white noise.
    """
    white = rng.standard_normal(shape)
    if fwhm_pixels == 0.0:
        return white
    sigma = fwhm_pixels / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    impulse = np.zeros(shape)
    impulse[0, 0] = 1.0
    norm = np.sqrt(np.sum(ndimage.gaussian_filter(impulse, sigma, mode="wrap") ** 2))
    return ndimage.gaussian_filter(white, sigma, mode="wrap") / norm


def reference_pixels(
    cutout: np.ndarray, mask_cutout: np.ndarray, *, reso_arcmin: float = 1.7, inner_radius_arcmin: float = 10.0
) -> np.ndarray:
    """Bool (npix, npix): the pixels that measure a cutout's local noise -- unmasked, finite and farther
    than ``inner_radius_arcmin`` [arcmin] from the centre (away from the cluster's signal)."""
    img = np.asarray(cutout)
    m = np.asarray(mask_cutout)
    if img.ndim != 2 or img.shape != m.shape or img.shape[0] != img.shape[1]:
        raise ValueError(f"cutout {img.shape} and mask_cutout {m.shape} must be equal square 2D shapes")
    outer = centre_distance_arcmin(img.shape[0], reso_arcmin) > inner_radius_arcmin
    return (m >= MASKED_BELOW) & np.isfinite(img) & outer


def fill_masked(
    cutout: np.ndarray,
    mask_cutout: np.ndarray,
    *,
    seed: int | np.random.Generator | np.random.SeedSequence,
    reso_arcmin: float = 1.7,
    inner_radius_arcmin: float = 10.0,
    noise_std: float | None = None,
    correlation_fwhm_arcmin: float = 8.0,
    min_reference_pixels: int = 100,
) -> np.ndarray:
    """A copy of ``cutout`` (npix, npix) whose masked pixels beyond the Golden radius hold noise-like values.

    Filled: the pixels with ``mask_cutout`` < 0.5 farther than ``inner_radius_arcmin`` [arcmin] from the
    centre, and non-finite pixels anywhere. Masked pixels within the radius keep their values (the
    cluster is then not Golden, :func:`golden_flags`); all other pixels are returned unchanged.

    The filled values are ``offset + std * g``: ``g`` a unit-variance Gaussian random field
    (:func:`unit_noise_field`) correlated by a Gaussian of FWHM ``correlation_fwhm_arcmin`` [arcmin] --
    the default 8' matches the correlation of the Planck MILCA noise at lags of 1-4 pixels of 1.7'
    (0.90, 0.76, 0.60, 0.45 measured; 0.94, 0.78, 0.57, 0.37 for this field); ``offset`` and ``std`` are
    the mean and standard deviation of the :func:`reference_pixels`. A given ``noise_std`` (e.g. from a
    noise standard-deviation map) replaces the measured std, and is required when fewer than
    ``min_reference_pixels`` reference pixels exist (the offset is then their mean, or 0 without any).
    ``seed`` makes the fill reproducible.
    """
    img = np.asarray(cutout)
    reference = reference_pixels(img, mask_cutout, reso_arcmin=reso_arcmin, inner_radius_arcmin=inner_radius_arcmin)
    outer = centre_distance_arcmin(img.shape[0], reso_arcmin) > inner_radius_arcmin
    fill = (outer & ~(np.asarray(mask_cutout) >= MASKED_BELOW)) | ~np.isfinite(img)
    out = img.copy()
    if not fill.any():
        return out
    n_ref = int(np.count_nonzero(reference))
    if noise_std is None and n_ref < min_reference_pixels:
        raise ValueError(
            f"fill_masked: {n_ref} unmasked pixels beyond {inner_radius_arcmin} arcmin, fewer than "
            f"{min_reference_pixels} to measure the local noise; pass noise_std"
        )
    ref = img[reference].astype(np.float64)
    offset = float(ref.mean()) if n_ref else 0.0
    std = float(ref.std()) if noise_std is None else float(noise_std)
    field = unit_noise_field(img.shape, fwhm_pixels=correlation_fwhm_arcmin / reso_arcmin, rng=np.random.default_rng(seed))
    out[fill] = offset + std * field[fill]
    return out


def sky_cutouts(
    sky_map: np.ndarray,
    mask_map: np.ndarray,
    psz2: pd.DataFrame,
    *,
    seed: int,
    truth: pd.DataFrame | None = None,
    npix: int,
    reso_arcmin: float,
    golden_radius_arcmin: float,
    min_reference_pixels: int = 100,
) -> xr.Dataset:
    """The sky's cutout store: a filled ``npix`` x ``npix`` cutout of ``sky_map`` at each PSZ2 cluster.

    ``sky_map`` and ``mask_map`` are full-sky RING maps, real or synthetic (:mod:`szmass.synthsky`) (Compton y; 1 = valid, 0 = masked; NaN/UNSEEN
    counts as masked). Per cluster: the gnomonic cutouts of both (:func:`szmass.healpix.cutouts`), the
    Golden flag (:func:`golden_flags` within ``golden_radius_arcmin``), and the masked pixels
    beyond that radius filled by :func:`fill_masked` with the cutout's local noise; a cutout
    with fewer than ``min_reference_pixels`` unmasked pixels there (deep in a masked region) uses the median
    local noise std of the others. Seeds per cluster derive from ``seed``.

    Returns a Dataset with ``y`` (cluster, py, px) float32 and coordinates name, glon, glat [deg],
    redshift, MSZ [Msun], golden (bool), n_masked (masked or non-finite pixels of the cutout) and M500
    [Msun], the injected truth from ``truth`` matched by NAME (NaN without truth, as for the real sky).
    """
    missing = [c for c in ("NAME", "GLON", "GLAT", "REDSHIFT", "MSZ") if c not in psz2.columns]
    if missing:
        raise ValueError(f"PSZ2 table: column(s) {missing} missing")
    glon = psz2["GLON"].to_numpy(np.float64)
    glat = psz2["GLAT"].to_numpy(np.float64)
    y = healpix.cutouts(sky_map, glon, glat, npix=npix, reso_arcmin=reso_arcmin)
    m = healpix.cutouts(mask_map, glon, glat, npix=npix, reso_arcmin=reso_arcmin)
    m = np.where(np.isfinite(y) & (m >= MASKED_BELOW), 1.0, 0.0)
    golden = golden_flags(m, radius_arcmin=golden_radius_arcmin, reso_arcmin=reso_arcmin)
    refs = [reference_pixels(c, mc, reso_arcmin=reso_arcmin, inner_radius_arcmin=golden_radius_arcmin) for c, mc in zip(y, m)]
    n_ref = np.array([r.sum() for r in refs])
    local_std = np.array([c[r].std() if k >= min_reference_pixels else np.nan for c, r, k in zip(y, refs, n_ref)])
    if np.all(np.isnan(local_std)) and len(y):
        raise ValueError(f"sky_cutouts: no cutout has {min_reference_pixels} unmasked pixels beyond "
                         f"{golden_radius_arcmin} arcmin to measure the noise")
    fallback = float(np.nanmedian(local_std)) if len(y) else np.nan
    seeds = np.random.SeedSequence(seed).spawn(len(y))
    filled = np.stack([
        fill_masked(c, mc, seed=s, reso_arcmin=reso_arcmin, inner_radius_arcmin=golden_radius_arcmin,
                    noise_std=fallback if np.isnan(sd) else sd, min_reference_pixels=min_reference_pixels)
        for c, mc, s, sd in progress(zip(y, m, seeds, local_std), total=len(y), desc="sky cutouts, gaps filled")
    ]) if len(y) else y
    m500 = np.full(len(psz2), np.nan)
    if truth is not None:
        by_name = truth.set_index("NAME")["M500"]
        m500 = psz2["NAME"].map(by_name).to_numpy(np.float64)
    coords = {
        "name": ("cluster", psz2["NAME"].astype(str).to_numpy().astype(STRING)),
        "glon": ("cluster", glon, {"units": "deg"}),
        "glat": ("cluster", glat, {"units": "deg"}),
        "redshift": ("cluster", psz2["REDSHIFT"].to_numpy(np.float64)),
        "MSZ": ("cluster", psz2["MSZ"].to_numpy(np.float64), {"units": "Msun"}),
        "golden": ("cluster", golden),
        "n_masked": ("cluster", np.count_nonzero(m < MASKED_BELOW, axis=(1, 2)).astype(np.int64)),
        "M500": ("cluster", m500, {"units": "Msun"}),
    }
    attrs = {"reso_arcmin": float(reso_arcmin), "golden_radius_arcmin": float(golden_radius_arcmin),
             "fill_seed": int(seed), "synthetic": truth is not None}
    return xr.Dataset({"y": (("cluster", "py", "px"), filled.astype(np.float32))}, coords=coords, attrs=attrs)
