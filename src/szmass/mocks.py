"""Planck mocks: the clean maps plus Planck-like noise, and the signal-to-noise mass cut per redshift bin.

Mocks (docs/architecture.md, stage 4). Each clean map gets the gnomonic cutout (:func:`szmass.healpix.cutouts`) of a
full-sky noise map at a position drawn at random, with replacement, from the PSZ2 catalogue positions
(one seeded draw for the whole store, so the result does not depend on the processing block size). The
store keeps every coordinate of the clean store and adds the noise position ``noise_glon``,
``noise_glat`` [deg], so each mock's noise can be cut out again.

Signal-to-noise. Planck detects clusters with a matched multi-filter that scans cluster sizes and
suppresses the large-scale noise; PSZ2 keeps S/N >= 4.5. Its stand-in here is a compensated aperture
(CAP) matched to each cluster's size:

* statistic: CAP(theta) = mean y over the disc r <= theta minus mean y over the equal-area annulus
  theta < r <= sqrt(2) theta (r from the map centre). The annulus removes the local background, i.e.
  the noise's large scales, as the matched filter does;
* aperture: theta = sqrt((aperture_r500 * theta500)^2 + FWHM^2 / 2), theta500 = R500 / D_A(z), capped at
  half the field / sqrt(2) so that the annulus fits in the map. With aperture_r500 = 0.5 this is close to
  the aperture of greatest S/N: for beam-smoothed toy clusters in the default noise model
  (:func:`szmass.noise.default_noise_model`) the median S/N is flat to within 5 % for aperture_r500 in
  0.5-0.75 and a beam term of 5'-7', and is 20-35 % lower for an aperture of R500 (plus the beam), more for
  larger ones, as the noise's large scales enter;
* S/N of a mock map = its CAP (the noisy mock, as an observer measures it) divided by the standard
  deviation of the same CAP over noise-only cutouts at the mocks' distinct noise positions.

Mass cut. In each redshift bin the maps are sorted by M500 and split into ``n_mass_bins`` groups of
equal count; the cut is the mass at which the groups' median S/N crosses the threshold for the last
time going up in mass (linear interpolation of the median S/N in log10 M500 between the two groups'
median masses): above it, more than half of the mock maps would be detected, i.e. the 50 % completeness
mass of a S/N >= 4.5 selection.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from astropy.cosmology import FLRW

from szmass import healpix
from szmass.atomic import atomic_path
from szmass.constants import ARCMIN_PER_RAD
from szmass.cosmology import angular_diameter_distance_kpc, make_cosmology
from szmass.logs import progress
from szmass.planck import centre_distance_arcmin
from szmass.zbins import REDSHIFT_EDGES, check_edges

PSZ2_SNR_THRESHOLD = 4.5
"""Signal-to-noise threshold of the PSZ2 catalogue."""

BLOCK_MAPS = 2048
"""Maps handled at once (bounds the memory of noise cutouts and cumulative sums: ~150 MiB at 96 x 96)."""

MIN_NOISE_POSITIONS = 20
"""Fewest distinct noise positions from which a CAP noise level is measured."""

NOISE_COORDS = {"noise_glon": "deg", "noise_glat": "deg"}
"""Coordinates the mocks add to the clean store's: the noise cutout's position [deg]."""


def noise_positions(psz2: pd.DataFrame, n: int, *, seed: int | np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions (glon, glat) [deg] drawn uniformly with replacement from the catalogue's GLON, GLAT."""
    missing = [c for c in ("GLON", "GLAT") if c not in psz2.columns]
    if missing:
        raise ValueError(f"PSZ2 table: column(s) {missing} missing; expected GLON, GLAT [deg]")
    if len(psz2) == 0:
        raise ValueError("PSZ2 table: no rows to draw noise positions from")
    idx = np.random.default_rng(seed).integers(0, len(psz2), size=n)
    return psz2["GLON"].to_numpy(np.float64)[idx], psz2["GLAT"].to_numpy(np.float64)[idx]


def _blocks(n: int, block: int) -> list[slice]:
    """Consecutive slices of at most ``block`` of range(n); one empty slice when n = 0."""
    return [slice(start, min(n, start + block)) for start in range(0, n, block)] or [slice(0, 0)]


def _noise_cutouts(noise_map: np.ndarray, glon: np.ndarray, glat: np.ndarray, npix: int, reso_arcmin: float) -> np.ndarray:
    """Noise cutouts (n, npix, npix) float64; raises when one touches an UNSEEN/NaN pixel of the noise map."""
    cut = healpix.cutouts(noise_map, glon, glat, npix=npix, reso_arcmin=reso_arcmin)
    bad = ~np.all(np.isfinite(cut), axis=(1, 2))
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"noise map: UNSEEN or NaN pixels in the cutout at (glon, glat) = ({glon[k]}, {glat[k]}) deg")
    return cut


def _mock_block(clean: xr.Dataset, noise_map: np.ndarray, glon: np.ndarray, glat: np.ndarray, reso_arcmin: float) -> xr.Dataset:
    """One block of mocks: ``clean`` (a block of the clean store) plus noise cutouts at (glon, glat)."""
    block = clean.compute()
    y = block["y"].values
    noisy = (y + _noise_cutouts(noise_map, glon, glat, y.shape[-1], reso_arcmin)).astype(np.float32)
    coords = {k: ("map", v, {"units": u}) for (k, u), v in zip(NOISE_COORDS.items(), (glon, glat))}
    return block.assign(y=(block["y"].dims, noisy, block["y"].attrs)).assign_coords(coords)


def _check_clean(clean: xr.Dataset) -> None:
    """Raise unless ``clean`` holds square maps ``y`` (map, py, px)."""
    if "y" not in clean or clean["y"].ndim != 3 or clean["y"].dims[0] != "map" or clean["y"].shape[1] != clean["y"].shape[2]:
        raise ValueError("clean map store: expected a variable y (map, py, px) of square maps")


def planck_mocks(
    clean: xr.Dataset,
    noise_map: np.ndarray,
    psz2: pd.DataFrame,
    *,
    seed: int,
    reso_arcmin: float = 1.7,
    block: int = BLOCK_MAPS,
) -> xr.Dataset:
    """The Planck mock store in memory: ``clean`` with y += a noise cutout at a random PSZ2 position.

    ``clean`` is a clean map store (:func:`szmass.mapstore.open_maps`, maps of ``reso_arcmin`` [arcmin]
    pixels), ``noise_map`` a full-sky RING HEALPix noise map (Compton y), ``psz2`` a table with GLON, GLAT
    [deg]. The result has float32 ``y``, the clean store's coordinates and attributes, and ``noise_glon``,
    ``noise_glat`` [deg]; ``attrs["noise_seed"]`` records ``seed``.
    """
    _check_clean(clean)
    n = clean.sizes["map"]
    glon, glat = noise_positions(psz2, n, seed=seed)
    parts = [_mock_block(clean.isel(map=s), noise_map, glon[s], glat[s], reso_arcmin) for s in _blocks(n, block)]
    ds = xr.concat(parts, dim="map") if len(parts) > 1 else parts[0]
    ds.attrs = {**clean.attrs, "noise_seed": int(seed)}
    return ds


def write_planck_mocks(
    clean: xr.Dataset,
    noise_map: np.ndarray,
    psz2: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    seed: int,
    reso_arcmin: float = 1.7,
    block: int = BLOCK_MAPS,
) -> None:
    """Write :func:`planck_mocks`'s store to the zarr ``path`` block by block (memory: one block), atomically.

    The content equals :func:`planck_mocks` with the same arguments; ``y`` keeps the clean store's chunks
    (one halo's maps per chunk in a gathered store) when it has them.
    """
    _check_clean(clean)
    n = clean.sizes["map"]
    glon, glat = noise_positions(psz2, n, seed=seed)
    chunks = clean["y"].encoding.get("chunks") or (min(max(n, 1), 64), *clean["y"].shape[1:])
    with atomic_path(path, directory=True) as tmp:
        blocks = progress(_blocks(n, block), desc=f"Planck mocks, blocks of {block} maps")
        for k, s in enumerate(blocks):
            part = _mock_block(clean.isel(map=s), noise_map, glon[s], glat[s], reso_arcmin)
            part.attrs = {**clean.attrs, "noise_seed": int(seed)}
            if k == 0:
                part.to_zarr(tmp, mode="w", consolidated=False, encoding={"y": {"chunks": tuple(chunks)}})
            else:
                part.to_zarr(tmp, append_dim="map", consolidated=False)
        zarr.consolidate_metadata(tmp)


def _sorted_radii(npix: int, reso_arcmin: float) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices of a cutout sorted by distance from the centre, and those distances [arcmin]."""
    r = centre_distance_arcmin(npix, reso_arcmin).ravel()
    order = np.argsort(r, kind="stable")
    return order, r[order]


def _cap_counts(theta_arcmin: np.ndarray, r_sorted: np.ndarray, reso_arcmin: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts of the disc r <= theta and of the disc r <= sqrt(2) theta; checks that the CAP fits."""
    theta = np.asarray(theta_arcmin, dtype=np.float64)
    half_field = 0.5 * reso_arcmin * np.sqrt(r_sorted.size)
    if not np.all(np.isfinite(theta)) or np.any(theta <= 0) or np.any(np.sqrt(2.0) * theta > half_field * (1.0 + 1e-12)):
        raise ValueError(f"CAP aperture must lie in (0, {half_field / np.sqrt(2.0):.4g}] arcmin for this field, got "
                         f"[{theta.min():.4g}, {theta.max():.4g}]")
    n_in = np.searchsorted(r_sorted, theta, side="right")
    n_out = np.searchsorted(r_sorted, np.sqrt(2.0) * theta, side="right")
    if np.any(n_in < 1) or np.any(n_out <= n_in):
        raise ValueError(f"CAP aperture of {theta.min():.4g} arcmin holds no pixel of {reso_arcmin} arcmin in its disc or annulus")
    return n_in, n_out


def _cumulative(images: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Cumulative sums (n, P + 1) of the images' pixels in order of distance, with a leading 0."""
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)[:, order]
    return np.concatenate([np.zeros((len(images), 1)), np.cumsum(flat, axis=1)], axis=1)


def _cap(s_in: np.ndarray, s_out: np.ndarray, n_in: np.ndarray, n_out: np.ndarray) -> np.ndarray:
    """CAP from the sums over the inner disc and the outer disc and their pixel counts."""
    return s_in / n_in - (s_out - s_in) / (n_out - n_in)


def compensated_aperture(images: np.ndarray, theta_arcmin: float | np.ndarray, *, reso_arcmin: float = 1.7) -> np.ndarray:
    """CAP statistic (n,) of images (n, npix, npix) with aperture radius ``theta_arcmin`` [arcmin] (scalar or (n,)).

    CAP = mean over r <= theta minus mean over theta < r <= sqrt(2) theta, r the distance of a pixel
    centre from the image centre; same unit as the images.
    """
    img = np.asarray(images)
    if img.ndim != 3 or img.shape[1] != img.shape[2]:
        raise ValueError(f"compensated_aperture: expected images (n, npix, npix), got shape {img.shape}")
    order, r_sorted = _sorted_radii(img.shape[1], reso_arcmin)
    n_in, n_out = _cap_counts(np.broadcast_to(theta_arcmin, img.shape[:1]), r_sorted, reso_arcmin)
    cum = _cumulative(img, order)
    s_in = np.take_along_axis(cum, n_in[:, None], axis=1)[:, 0]
    s_out = np.take_along_axis(cum, n_out[:, None], axis=1)[:, 0]
    return _cap(s_in, s_out, n_in, n_out)


def cap_noise_std(noise_cutouts: np.ndarray, theta_arcmin: float | np.ndarray, *, reso_arcmin: float = 1.7) -> np.ndarray:
    """Standard deviation (ddof=1) over noise cutouts (m, npix, npix) of the CAP at each aperture ``theta_arcmin``.

    Returns an array shaped like ``theta_arcmin`` (same unit as the cutouts); apertures that select the
    same pixels share one value.
    """
    noise = np.asarray(noise_cutouts)
    if noise.ndim != 3 or noise.shape[1] != noise.shape[2] or noise.shape[0] < 2:
        raise ValueError(f"cap_noise_std: expected >= 2 noise cutouts (m, npix, npix), got shape {noise.shape}")
    theta = np.asarray(theta_arcmin, dtype=np.float64)
    order, r_sorted = _sorted_radii(noise.shape[1], reso_arcmin)
    n_in, n_out = _cap_counts(theta.ravel(), r_sorted, reso_arcmin)
    pairs, inverse = np.unique(np.stack([n_in, n_out], axis=1), axis=0, return_inverse=True)
    cum = _cumulative(noise, order)
    caps = _cap(cum[:, pairs[:, 0]], cum[:, pairs[:, 1]], pairs[:, 0], pairs[:, 1])
    return caps.std(axis=0, ddof=1)[inverse.ravel()].reshape(theta.shape)


def aperture_arcmin(
    r500_kpc: np.ndarray, redshift: np.ndarray, *, cosmo: FLRW, fwhm_arcmin: float, aperture_r500: float, max_arcmin: float
) -> np.ndarray:
    """CAP aperture [arcmin]: sqrt((aperture_r500 * R500 / D_A(z))^2 + FWHM^2 / 2), at most ``max_arcmin``.

    R500 [physical kpc], FWHM [arcmin]; D_A from ``cosmo``.
    """
    theta500 = np.asarray(r500_kpc, dtype=np.float64) / angular_diameter_distance_kpc(cosmo, redshift) * ARCMIN_PER_RAD
    return np.minimum(np.hypot(aperture_r500 * theta500, fwhm_arcmin / np.sqrt(2.0)), max_arcmin)


def mock_snr(
    ds_planck: xr.Dataset,
    noise_map: np.ndarray,
    *,
    cosmo: FLRW | None = None,
    reso_arcmin: float = 1.7,
    fwhm_arcmin: float = 10.0,
    aperture_r500: float = 0.5,
    block: int = BLOCK_MAPS,
    noise_positions: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """S/N (n_map,) of each Planck mock map: its CAP over the CAP's noise std (module docstring).

    The noise std is measured on noise-only cutouts of ``noise_map`` at ``noise_positions`` (glon, glat)
    [deg], e.g. every PSZ2 cluster, or by default at the distinct (``noise_glon``, ``noise_glat``) of
    ``ds_planck`` (at least :data:`MIN_NOISE_POSITIONS` either way); the aperture uses each map's
    R500 [kpc] and redshift with ``cosmo`` (default: THE THREE HUNDRED's).
    """
    missing = [k for k in ("y", "R500", "redshift", *NOISE_COORDS) if k not in ds_planck.variables]
    if missing:
        raise ValueError(f"Planck mock store: field(s) {missing} missing")
    cosmo = cosmo or make_cosmology()
    npix = ds_planck["y"].shape[-1]
    theta = aperture_arcmin(
        ds_planck["R500"].values, ds_planck["redshift"].values, cosmo=cosmo, fwhm_arcmin=fwhm_arcmin,
        aperture_r500=aperture_r500, max_arcmin=0.5 * npix * reso_arcmin / np.sqrt(2.0),
    )
    glon, glat = noise_positions or (ds_planck["noise_glon"].values, ds_planck["noise_glat"].values)
    positions = np.unique(np.stack([np.asarray(glon, float), np.asarray(glat, float)], axis=1), axis=0)
    if len(positions) < MIN_NOISE_POSITIONS:
        raise ValueError(f"Planck mocks: {len(positions)} distinct noise positions, fewer than "
                         f"{MIN_NOISE_POSITIONS} to measure the noise of the aperture statistic")
    noise = _noise_cutouts(noise_map, positions[:, 0], positions[:, 1], npix, reso_arcmin)
    sigma = cap_noise_std(noise, theta, reso_arcmin=reso_arcmin)
    signal = np.concatenate([
        compensated_aperture(ds_planck["y"][s].values, theta[s], reso_arcmin=reso_arcmin)
        for s in progress(_blocks(ds_planck.sizes["map"], block), desc=f"mock S/N, blocks of {block} maps")
    ])
    return signal / sigma


def mass_cut(m500: np.ndarray, snr: np.ndarray, *, threshold: float = PSZ2_SNR_THRESHOLD, n_mass_bins: int = 10) -> float:
    """M500 [Msun] above which the median S/N exceeds ``threshold`` (module docstring: equal-count mass groups).

    Returns the lowest mass present when every group's median passes, +inf when the most massive group's
    fails, NaN for no maps.
    """
    m = np.asarray(m500, dtype=np.float64)
    s = np.asarray(snr, dtype=np.float64)
    if m.shape != s.shape or m.ndim != 1:
        raise ValueError(f"mass_cut: m500 and snr must be 1D arrays of one length, got {m.shape} and {s.shape}")
    if m.size == 0:
        return float("nan")
    if np.any(~(m > 0)) or not np.all(np.isfinite(s)):
        raise ValueError("mass_cut: M500 must be > 0 Msun and S/N finite")
    order = np.argsort(m, kind="stable")
    groups = np.array_split(order, min(n_mass_bins, m.size))
    logm = np.array([np.median(np.log10(m[g])) for g in groups])
    med = np.array([np.median(s[g]) for g in groups])
    below = np.flatnonzero(med < threshold)
    if below.size == 0:
        return float(m.min())
    k = int(below[-1])
    if k == len(groups) - 1:
        return float("inf")
    frac = (threshold - med[k]) / (med[k + 1] - med[k])
    return float(10.0 ** (logm[k] + frac * (logm[k + 1] - logm[k])))


def mass_cuts(
    ds_planck: xr.Dataset,
    noise_map: np.ndarray,
    *,
    z_edges: Sequence[float] = REDSHIFT_EDGES,
    threshold: float = PSZ2_SNR_THRESHOLD,
    n_mass_bins: int = 10,
    cosmo: FLRW | None = None,
    reso_arcmin: float = 1.7,
    fwhm_arcmin: float = 10.0,
    aperture_r500: float = 0.5,
    noise_positions: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The mass cut per redshift bin (lo, hi] of the Planck mocks: one row per bin (noise as in :func:`mock_snr`).

    Columns: bin (1-based), z_lo, z_hi, n_maps, M500_cut [Msun] (:func:`mass_cut`; NaN for an empty bin),
    n_maps_kept (maps with M500 >= M500_cut), snr_threshold, median_snr (of the bin's maps).
    """
    edges = np.asarray(check_edges(z_edges))
    snr = mock_snr(ds_planck, noise_map, cosmo=cosmo, reso_arcmin=reso_arcmin, fwhm_arcmin=fwhm_arcmin,
                   aperture_r500=aperture_r500, noise_positions=noise_positions)
    z = ds_planck["redshift"].values
    m500 = ds_planck["M500"].values
    rows = []
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]), start=1):
        sel = (z > lo) & (z <= hi)
        cut = mass_cut(m500[sel], snr[sel], threshold=threshold, n_mass_bins=n_mass_bins)
        rows.append({
            "bin": b, "z_lo": float(lo), "z_hi": float(hi), "n_maps": int(sel.sum()), "M500_cut": cut,
            "n_maps_kept": int(np.count_nonzero(m500[sel] >= cut)), "snr_threshold": float(threshold),
            "median_snr": float(np.median(snr[sel])) if sel.any() else float("nan"),
        })
    return pd.DataFrame(rows)


def passes_mass_cut(redshift: np.ndarray, m500: np.ndarray, cuts: pd.DataFrame) -> np.ndarray:
    """Bool (n,): whether each map (redshift, M500 [Msun]) lies in a bin of ``cuts`` with M500 >= that bin's cut."""
    z = np.asarray(redshift, dtype=np.float64)
    m = np.asarray(m500, dtype=np.float64)
    keep = np.zeros(z.shape, dtype=bool)
    for row in cuts.itertuples():
        sel = (z > row.z_lo) & (z <= row.z_hi)
        keep[sel] = m[sel] >= row.M500_cut
    return keep
