"""Planck-like noise of a Compton-y map: a seeded full-sky HEALPix realisation.

Model. The noise map is ``n(p) = sigma(p) * g(p)``: ``g`` is a unit-variance Gaussian field with
angular power spectrum shape ``C_l`` (the spectrum of the map's PIXEL VALUES, as ``anafast``
measures it on a noise map), ``sigma`` a standard-deviation map [y]. A slowly varying ``sigma``
leaves the local correlation structure unchanged.

Default model (:func:`default_noise_model`), calibrated on the real MILCA cutout of
PSZ2 G359.07-32.12 (docs/physics.md: std 1.58e-6 beyond 25 pixels, correlation 0.90, 0.76, 0.60, 0.45,
0.25, 0.16, 0.05 at lags 1, 2, 3, 4, 6, 8, 12 pixels of 1.7 arcmin):

* spectrum ``C_l = b_l(fwhm_small)^2 + r * b_l(fwhm_large)^2`` (Gaussian beam transfer functions):
  detector noise smoothed to the map's resolution plus a broader correlated residual (CIB and
  foregrounds). Its three parameters are fitted (:func:`calibrate_spectrum`) so that the
  EXPECTED statistics of a cutout, as :func:`measure_noise_stats` measures them, match the
  targets. The expectation (:func:`expected_cutout_stats`) is computed exactly as the data are
  made: the correlation function from the spectrum, evaluated at the distances between the
  HEALPix pixel centres that ``gnomview``'s nearest-pixel lookup assigns to the cutout's pixel
  pairs (so the pixel window of Nside 2048, the real map's, is included), minus the mean over
  the measured region. The statistics of cutouts therefore depend on the realisation's Nside:
  at Nside < 2048 the HEALPix pixels are larger than the 1.7 arcmin cutout pixels and
  neighbouring cutout pixels often share a HEALPix pixel, raising the short-lag correlation;
  :func:`expected_cutout_stats` predicts it for any Nside.
* ``sigma`` follows Planck's scanning: the hit count grows as ``1 / cos(beta)`` with the ecliptic
  latitude ``beta`` and saturates near the ecliptic poles (the scan circles' 85 deg opening
  angle), so ``sigma ~ sqrt(cos(beta) + cos(85 deg))`` (0.28 times the equatorial value at the
  poles). It is normalised so that a cutout at the calibration cluster's position has the
  measured std (the pixel std is larger than a cutout's, whose region mean is removed).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import healpy as hp
import numpy as np
from numpy.polynomial import legendre
from scipy.optimize import least_squares

from szmass.constants import ARCMIN_PER_RAD
from szmass.healpix import cutout_pixels, read_healpix_map
from szmass.logs import progress

__all__ = [
    "MILCA_CORR",
    "MILCA_CORR_LAGS",
    "MILCA_STD",
    "NoiseModel",
    "NoiseSpectrum",
    "calibrate_spectrum",
    "default_noise_model",
    "ecliptic_std_map",
    "expected_cutout_stats",
    "measure_noise_stats",
    "milca_spectrum",
    "noise_model_from_files",
    "realise",
]

#: Std [y] of the real MILCA cutout beyond 25 pixels from its centre (docs/physics.md).
MILCA_STD = 1.58e-6
#: Lags [pixels of 1.7 arcmin] and correlation coefficients of the real cutout's noise (docs/physics.md).
MILCA_CORR_LAGS = (1, 2, 3, 4, 6, 8, 12)
MILCA_CORR = (0.90, 0.76, 0.60, 0.45, 0.25, 0.16, 0.05)
#: Galactic position [deg] of the calibration cutout (PSZ2 G359.07-32.12), and the map it came from.
MILCA_GLON, MILCA_GLAT = 359.07, -32.12
MILCA_NSIDE = 2048
#: Cutout geometry and measured region of the calibration.
CUTOUT_NPIX, CUTOUT_RESO_ARCMIN, CUTOUT_R_MIN_PIX = 96, 1.7, 25
#: cos(beta) floor of the hit-count model: Planck's scan circles open 85 deg from the spin axis.
ECLIPTIC_COS_FLOOR = float(np.cos(np.radians(85.0)))
#: Fraction of the field's variance a default model may leave above its lmax.
LMAX_VARIANCE_TOLERANCE = 1e-3


def _unit_variance(cl: np.ndarray) -> np.ndarray:
    """``cl`` rescaled so that the pixel variance sum_l (2l+1)/(4 pi) C_l is 1."""
    ell = np.arange(cl.size)
    variance = np.sum((2 * ell + 1) * cl) / (4 * np.pi)
    if not variance > 0:
        raise ValueError("the noise spectrum has no power (sum of (2l+1) C_l is not positive)")
    return cl / variance


@dataclass(frozen=True)
class NoiseSpectrum:
    """Parametric spectrum shape ``C_l = b_l(fwhm_small)^2 + large_to_small * b_l(fwhm_large)^2``.

    FWHMs in arcmin; ``b_l`` Gaussian beam transfer functions; monopole and dipole set to zero.
    """

    fwhm_small_arcmin: float
    fwhm_large_arcmin: float
    large_to_small: float

    def cl(self, lmax: int) -> np.ndarray:
        """C_l for l = 0..lmax, normalised to unit pixel variance (dimensionless)."""
        small = hp.gauss_beam(self.fwhm_small_arcmin / ARCMIN_PER_RAD, lmax=lmax) ** 2
        large = hp.gauss_beam(self.fwhm_large_arcmin / ARCMIN_PER_RAD, lmax=lmax) ** 2
        cl = small + self.large_to_small * large
        cl[:2] = 0.0
        return _unit_variance(cl)

    def lmax_for(self, tolerance: float = LMAX_VARIANCE_TOLERANCE) -> int:
        """Smallest lmax leaving less than ``tolerance`` of the variance at higher multipoles."""
        if not 1e-12 <= tolerance < 1:
            raise ValueError(f"tolerance must be a variance fraction in [1e-12, 1), got {tolerance!r}")
        sigma = self.fwhm_small_arcmin / ARCMIN_PER_RAD / np.sqrt(8 * np.log(2))
        cl = self.cl(int(6.0 / sigma))  # b_l^2 < exp(-36) beyond: the tail is negligible
        ell = np.arange(cl.size)
        above = 1.0 - np.cumsum((2 * ell + 1) * cl) / (4 * np.pi)
        return int(np.argmax(above < tolerance))


@dataclass(frozen=True, eq=False)
class NoiseModel:
    """A HEALPix noise model: spectrum shape ``cl`` (l = 0..lmax; only its shape matters,
    :func:`realise` rescales it to unit pixel variance) and ``std_map`` (RING, ``nside``), the
    standard deviation [y] of each pixel of a realisation."""

    cl: np.ndarray
    std_map: np.ndarray
    nside: int

    def __post_init__(self) -> None:
        if not hp.isnsideok(self.nside):
            raise ValueError(f"NoiseModel: nside must be a power of 2, got {self.nside!r}")
        if self.cl.ndim != 1 or self.cl.size < 3 or not np.all(np.isfinite(self.cl)) or np.any(self.cl < 0):
            raise ValueError("NoiseModel: cl must be a 1-d array of finite, non-negative values, l = 0..lmax >= 2")
        if self.lmax > 3 * self.nside - 1:
            raise ValueError(f"NoiseModel: lmax = {self.lmax} exceeds 3 * nside - 1 = {3 * self.nside - 1}")
        if self.std_map.shape != (hp.nside2npix(self.nside),):
            raise ValueError(
                f"NoiseModel: std_map must be a RING map of nside {self.nside} "
                f"({hp.nside2npix(self.nside)} pixels), got shape {self.std_map.shape}"
            )
        if not (np.all(np.isfinite(self.std_map)) and np.all(self.std_map >= 0)):
            raise ValueError("NoiseModel: std_map must be finite and non-negative everywhere")

    @property
    def lmax(self) -> int:
        """Largest multipole of the realisation."""
        return self.cl.size - 1


def realise(model: NoiseModel, seed: int | np.random.SeedSequence) -> np.ndarray:
    """A full-sky noise map (RING, float64, [y]) that depends only on ``model`` and ``seed``.

    The a_lm are drawn with ``numpy.random.default_rng(seed)`` in healpy's layout (m-major,
    ``healpy.Alm.getlm``): complex Gaussian of variance C_l for m > 0, real for m = 0.
    """
    if seed is None:
        raise ValueError("realise needs an explicit seed")
    rng = np.random.default_rng(seed)
    cl = _unit_variance(np.asarray(model.cl, dtype=np.float64))
    ell, m = hp.Alm.getlm(model.lmax)
    re = rng.standard_normal(ell.size)
    im = rng.standard_normal(ell.size)
    real_m = m == 0
    im[real_m] = 0.0
    amplitude = np.sqrt(cl[ell] * np.where(real_m, 1.0, 0.5))
    alm = amplitude * (re + 1j * im)
    field = hp.alm2map(alm, model.nside, lmax=model.lmax, pixwin=False)
    return field * model.std_map


def ecliptic_std_map(nside: int, std_ref: float, glon_ref: float, glat_ref: float) -> np.ndarray:
    """Std map (RING) ``std_ref * sqrt((cos beta + c) / (cos beta_ref + c))``, c = cos 85 deg.

    ``beta`` is the ecliptic latitude (healpy's galactic-to-ecliptic rotation) of each pixel,
    ``beta_ref`` that of (glon_ref, glat_ref) [deg]; ``std_ref`` [y] is the std there.
    """
    if not (np.isfinite(std_ref) and std_ref > 0):
        raise ValueError(f"std_ref must be a positive std, got {std_ref!r}")
    ecliptic_pole = hp.Rotator(coord=["G", "E"]).mat[2]  # z axis of ecliptic coordinates, in galactic

    def shape(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """sqrt(cos(beta) + c) at colatitude ``theta``, longitude ``phi`` [rad]."""
        sin_theta = np.sin(theta)
        sin_beta = ecliptic_pole[0] * sin_theta * np.cos(phi)
        sin_beta += ecliptic_pole[1] * sin_theta * np.sin(phi)
        sin_beta += ecliptic_pole[2] * np.cos(theta)
        return np.sqrt(np.sqrt(1.0 - np.clip(sin_beta, -1.0, 1.0) ** 2) + ECLIPTIC_COS_FLOOR)

    ref = shape(np.radians(90.0 - glat_ref), np.radians(glon_ref))
    npix = hp.nside2npix(nside)
    out = np.empty(npix)
    step = 2**22
    for start in progress(range(0, npix, step), desc=f"noise std map, blocks of {step} pixels"):
        out[start : start + step] = shape(*hp.pix2ang(nside, np.arange(start, min(start + step, npix))))
    return out * (std_ref / ref)


def _region(shape: tuple[int, int], r_min_pix: float) -> np.ndarray:
    """Pixels farther than ``r_min_pix`` from the image centre ((n - 1) / 2 on each axis)."""
    rows, cols = np.indices(shape)
    r = np.hypot(rows - 0.5 * (shape[0] - 1), cols - 0.5 * (shape[1] - 1))
    return r > r_min_pix


def _lag_pairs(region: np.ndarray, lag: int) -> list[tuple[tuple[slice, slice], tuple[slice, slice], np.ndarray]]:
    """Index pairs at ``lag`` pixels along rows and along columns, both ends in ``region``."""
    within_rows = ((slice(None), slice(None, -lag)), (slice(None), slice(lag, None)))
    within_columns = ((slice(None, -lag), slice(None)), (slice(lag, None), slice(None)))
    return [(a, b, region[a] & region[b]) for a, b in (within_rows, within_columns)]


def _check_lags(lags: Sequence[int], shape: tuple[int, ...]) -> np.ndarray:
    out = np.asarray(lags)
    if out.ndim != 1 or out.size == 0 or not np.issubdtype(out.dtype, np.integer) or np.any(out < 1):
        raise ValueError(f"lags must be a non-empty sequence of positive integers, got {lags!r}")
    if np.any(out >= min(shape)):
        raise ValueError(f"lags {lags} must be smaller than the image size {shape}")
    return out


def measure_noise_stats(
    image: np.ndarray, *, r_min_pix: float = 25, lags: Sequence[int] = MILCA_CORR_LAGS
) -> dict[str, float | np.ndarray | int]:
    """Noise statistics of a cutout, away from a central source.

    Region: pixels farther than ``r_min_pix`` from the centre; its mean is removed. Returns
    ``std`` (of the region, in the image's units), ``corr`` (for each lag in pixels, the mean
    product of the pairs at that lag along rows and columns with both ends in the region,
    divided by the region's variance), ``lags`` and ``n_pixels`` (pixels in the region).
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-d image, got shape {image.shape}")
    lag_array = _check_lags(lags, image.shape)
    region = _region(image.shape, r_min_pix)
    if region.sum() < 2:
        raise ValueError(f"fewer than 2 pixels lie beyond r_min_pix = {r_min_pix} in a {image.shape} image")
    if not np.all(np.isfinite(image[region])):
        raise ValueError("the image has NaN or infinite pixels in the measured region")
    v = np.where(region, image - image[region].mean(), 0.0)
    variance = np.mean(v[region] ** 2)
    corr = []
    for lag in lag_array:
        products = [(v[a] * v[b])[both] for a, b, both in _lag_pairs(region, int(lag))]
        corr.append(np.concatenate(products).mean() / variance)
    return {"std": float(np.sqrt(variance)), "corr": np.array(corr), "lags": lag_array, "n_pixels": int(region.sum())}


class _CutoutStatsPredictor:
    """Expected :func:`measure_noise_stats` of cutouts of a noise field, for any spectrum.

    Holds the geometry (HEALPix centre distances of the cutout's pixel pairs at each lag, and the
    histogram of nominal pixel separations of the region) and the Legendre polynomials on a grid
    of angles, so that each spectrum costs one matrix-vector product.
    """

    _FINE_STEP, _COARSE_STEP = 0.1, 0.5  # arcmin, below and above the largest lag

    def __init__(
        self,
        nside: int,
        glon: float,
        glat: float,
        *,
        npix: int,
        reso_arcmin: float,
        r_min_pix: float,
        lags: Sequence[int],
    ) -> None:
        self.lmax = 3 * nside - 1
        lag_array = _check_lags(lags, (npix, npix))
        region = _region((npix, npix), r_min_pix)
        vec = np.array(hp.pix2vec(nside, cutout_pixels(nside, glon, glat, npix=npix, reso_arcmin=reso_arcmin)[0]))
        self.lag_distances = []  # arcmin, per lag, between the HEALPix centres of each pixel pair
        for lag in lag_array:
            chords = [
                np.linalg.norm(vec[(slice(None), *a)] - vec[(slice(None), *b)], axis=0)[both]
                for a, b, both in _lag_pairs(region, int(lag))
            ]
            self.lag_distances.append(2 * np.arcsin(0.5 * np.concatenate(chords)) * ARCMIN_PER_RAD)
        # pair separations of the region (nominal, flat sky) weighted by their counts, from the
        # autocorrelation of the region mask: for the variance of the region's mean
        counts = np.fft.irfft2(
            np.abs(np.fft.rfft2(region.astype(float), s=(2 * npix, 2 * npix))) ** 2, s=(2 * npix, 2 * npix)
        )
        shift = np.fft.fftfreq(2 * npix, 1.0 / (2 * npix))
        separation = np.hypot(shift[:, None], shift[None, :]) * reso_arcmin
        keep = counts > 0.5
        self.separations, self.separation_counts = separation[keep], np.rint(counts[keep])
        fine_top = max(d.max() for d in self.lag_distances) + self._FINE_STEP
        self.theta = np.concatenate(
            [
                np.arange(0.0, fine_top, self._FINE_STEP),
                np.arange(fine_top, self.separations.max() + self._COARSE_STEP, self._COARSE_STEP),
            ]
        )
        self.legendre = legendre.legvander(np.cos(self.theta / ARCMIN_PER_RAD), self.lmax)

    def __call__(self, cl: np.ndarray) -> tuple[float, np.ndarray]:
        """(cutout std / pixel std, correlation at each lag) for spectrum ``cl`` (l = 0..lmax)."""
        weights = np.zeros(self.lmax + 1)
        n = min(cl.size, self.lmax + 1)
        weights[:n] = (2 * np.arange(n) + 1) / (4 * np.pi) * cl[:n]
        xi = self.legendre @ weights
        xi0 = xi[0]
        xi_mean = np.average(np.interp(self.separations, self.theta, xi), weights=self.separation_counts)
        corr = np.array([np.interp(d, self.theta, xi).mean() for d in self.lag_distances])
        return float(np.sqrt(1.0 - xi_mean / xi0)), (corr - xi_mean) / (xi0 - xi_mean)


def expected_cutout_stats(
    cl: np.ndarray,
    nside: int,
    glon: float = MILCA_GLON,
    glat: float = MILCA_GLAT,
    *,
    npix: int = CUTOUT_NPIX,
    reso_arcmin: float = CUTOUT_RESO_ARCMIN,
    r_min_pix: float = CUTOUT_R_MIN_PIX,
    lags: Sequence[int] = MILCA_CORR_LAGS,
) -> dict[str, float | np.ndarray]:
    """Expected :func:`measure_noise_stats` of cutouts at (glon, glat) [deg] of a realisation at
    ``nside`` of spectrum ``cl`` (multipoles above 3 nside - 1 are dropped, as a realisation would).

    Returns ``std_ratio`` (the cutout's std over the pixel std: the region's mean is removed),
    ``corr`` and ``lags``. Second-order statistics of the Gaussian field; the removal of the
    mean is treated to first order (pairs' covariance minus the region's mean covariance).
    """
    predictor = _CutoutStatsPredictor(
        nside, glon, glat, npix=npix, reso_arcmin=reso_arcmin, r_min_pix=r_min_pix, lags=lags
    )
    ratio, corr = predictor(np.asarray(cl, dtype=np.float64))
    return {"std_ratio": ratio, "corr": corr, "lags": np.asarray(lags)}


def calibrate_spectrum(
    lags: Sequence[int] = MILCA_CORR_LAGS,
    corr: Sequence[float] = MILCA_CORR,
    *,
    nside: int = MILCA_NSIDE,
    glon: float = MILCA_GLON,
    glat: float = MILCA_GLAT,
) -> NoiseSpectrum:
    """Fit the :class:`NoiseSpectrum` whose expected cutout correlations match ``corr`` at ``lags``.

    Least squares on the absolute differences (a cutout's estimates scatter by a similar
    absolute amount at every lag), with FWHMs bounded to 2-12 arcmin (small) and 12-120 arcmin
    (large); the geometry is that of a 96 x 96, 1.7 arcmin cutout of an Nside ``nside`` map.
    """
    target = np.asarray(corr, dtype=np.float64)
    if target.shape != (len(lags),):
        raise ValueError(f"corr must give one value per lag, got {target.shape} for {len(lags)} lags")
    predictor = _CutoutStatsPredictor(
        nside, glon, glat, npix=CUTOUT_NPIX, reso_arcmin=CUTOUT_RESO_ARCMIN, r_min_pix=CUTOUT_R_MIN_PIX, lags=lags
    )

    def residuals(q: np.ndarray) -> np.ndarray:
        return predictor(NoiseSpectrum(*np.exp(q)).cl(predictor.lmax))[1] - target

    fit = least_squares(
        residuals,
        np.log([7.0, 20.0, 1.0]),
        bounds=(np.log([2.0, 12.0, 1e-3]), np.log([12.0, 120.0, 1e3])),
        x_scale=1.0,
    )
    if not fit.success:
        raise RuntimeError(f"noise spectrum calibration failed: {fit.message}")
    return NoiseSpectrum(*(float(v) for v in np.exp(fit.x)))


@functools.cache
def milca_spectrum() -> NoiseSpectrum:
    """The spectrum calibrated on the real MILCA cutout (docs/physics.md), fitted once per process."""
    return calibrate_spectrum()


def default_noise_model(nside: int, *, lmax: int | None = None) -> NoiseModel:
    """The MILCA-calibrated noise model (module docstring) at ``nside``.

    ``lmax`` defaults to the smaller of 3 nside - 1 and the multipole above which the spectrum
    holds less than 0.1 % of the variance (about 3100); the std map sets the pixel std whatever
    the truncation.
    """
    spectrum = milca_spectrum()
    if lmax is None:
        lmax = min(3 * nside - 1, spectrum.lmax_for())
    stats = expected_cutout_stats(spectrum.cl(3 * MILCA_NSIDE - 1), MILCA_NSIDE)
    std_map = ecliptic_std_map(nside, MILCA_STD / float(stats["std_ratio"]), MILCA_GLON, MILCA_GLAT)
    return NoiseModel(cl=spectrum.cl(lmax), std_map=std_map, nside=nside)


def _read_cl(path: Path) -> np.ndarray:
    """C_l (l = 0..lmax) from a HEALPix FITS power spectrum or a text file (one column C_l from
    l = 0, or columns l, C_l with contiguous l; missing l below the first are zero)."""
    if path.name.lower().endswith((".fits", ".fit", ".fits.gz")):
        cl = np.asarray(hp.read_cl(path), dtype=np.float64)
        cl = cl[0] if cl.ndim == 2 else cl
    else:
        table = np.loadtxt(path, ndmin=2)
        if table.shape[1] == 1:
            cl = table[:, 0]
        else:
            ell = table[:, 0]
            if not np.array_equal(ell, np.arange(ell[0], ell[0] + ell.size)) or ell[0] < 0:
                raise ValueError(f"{path}: column 1 (l) must be contiguous non-negative integers")
            cl = np.concatenate([np.zeros(int(ell[0])), table[:, 1]])
    if cl.ndim != 1 or cl.size < 3 or not np.all(np.isfinite(cl)) or np.any(cl < 0):
        raise ValueError(f"{path}: C_l must be finite and non-negative for l = 0..lmax >= 2")
    return cl


def noise_model_from_files(
    std_map_path: str | os.PathLike[str], cl_path: str | os.PathLike[str], nside: int
) -> NoiseModel:
    """A :class:`NoiseModel` from a Planck std map (HEALPix FITS) and a noise spectrum file.

    The spectrum (FITS as written by ``healpy.write_cl``, or text; see ``_read_cl``) gives the
    shape, truncated at 3 nside - 1; the std map [y] gives the level and is regridded to ``nside``
    with ``healpy.ud_grade`` when needed (a smooth field: values are kept, not rescaled).
    """
    std_map = read_healpix_map(std_map_path)
    if np.isnan(std_map).any():
        raise ValueError(
            f"{std_map_path}: {int(np.isnan(std_map).sum())} pixels of the std map are UNSEEN or NaN; "
            "a noise realisation needs the std everywhere"
        )
    if np.any(std_map < 0):
        raise ValueError(f"{std_map_path}: the std map has negative values")
    if hp.get_nside(std_map) != nside:
        std_map = hp.ud_grade(std_map, nside)
    cl = _read_cl(Path(cl_path))[: 3 * nside]
    return NoiseModel(cl=cl, std_map=std_map, nside=nside)
