"""The Y500-M500 scaling relation (de Andres et al. 2022, Eq. 4; Planck 2013 results XX, Eq. 7).

    E(z)^(-2/3) D_A(z)^2 Y500 / (1e-4 Mpc^2) = 10**logB h70**(-2 + alpha) (M500 / 6e14 Msun)**alpha

with Y500 the SPHERICAL integrated Compton parameter inside R500 as a solid angle (so D_A^2 Y500 is an
area), E(z) = H(z) / H0, D_A the angular diameter distance and h70 = H0 / (70 km/s/Mpc), all from the
given astropy cosmology. Planck: alpha = 1.79, logB = -0.19; THE THREE HUNDRED: alpha = 1.63 with a
similar normalisation. M500 is the mass the relation was calibrated with (for Planck, the hydrostatic
mass of its X-ray calibration sample, i.e. PSZ2's M_SZ; no extra (1 - b) factor is applied here).
Y500 values here are in arcmin^2; the cylinder Y500 of our maps is larger than the sphere's by
YCYL_OVER_YSPH = 1.2 (``cylinder=True``).

The paper's Figure 3 experiment (:data:`FIGURE3_LINES`, :func:`ym_line_masses`) applies the relation to the
simulated clusters' OWN Y500 inside the true R500 (the map store's Y500_cyl and Y500_sph) and compares the
resulting M_SZ with the CNN's masses of the same maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.cosmology import FLRW
from numpy.typing import ArrayLike, NDArray

ALPHA_PLANCK = 1.79
"""Slope of the Planck 2013 XX Y-M relation."""
ALPHA_THE300 = 1.63
"""Slope of THE THREE HUNDRED's Y-M relation (de Andres et al. 2022)."""
LOG_B = -0.19
"""log10 of the Planck 2013 XX normalisation Y* (Y in units of 1e-4 Mpc^2)."""
M_PIVOT = 6e14
"""Pivot mass of the relation [Msun]."""
YCYL_OVER_YSPH = 1.2
"""Ratio of the cylinder to the spherical Y500 (Planck 2013 XX)."""
Y_UNIT_MPC2 = 1e-4
"""Unit of D_A^2 Y500 in the relation [Mpc^2]."""
H0_REFERENCE = 70.0
"""H0 [km/s/Mpc] of h70 = H0 / 70."""

_SR_TO_ARCMIN2 = float(u.sr.to(u.arcmin**2))


def _check_positive(name: str, values: ArrayLike) -> NDArray[np.float64]:
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v) & (v > 0)):
        bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)).ravel())
        raise ValueError(f"{name} must be finite and > 0; {bad.size} value(s) are not, first {v.ravel()[bad[0]]!r}")
    return v


def _check_slope(alpha: float, name: str = "alpha") -> float:
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"{name} must be a finite slope > 0, got {alpha!r}")
    return float(alpha)


def y_scale_arcmin2(z: ArrayLike, cosmo: FLRW) -> NDArray[np.float64]:
    """E(z)^(2/3) (1e-4 Mpc^2) / D_A(z)^2 as a solid angle [arcmin^2]: Y500 = this times
    10**logB h70**(alpha - 2) (M500 / 6e14 Msun)**alpha. ``z`` > 0."""
    zz = _check_positive("redshift", z)
    d_a_mpc = cosmo.angular_diameter_distance(zz).to_value(u.Mpc)
    return np.asarray(cosmo.efunc(zz) ** (2.0 / 3.0) * Y_UNIT_MPC2 / d_a_mpc**2 * _SR_TO_ARCMIN2)


def _normalisation(cosmo: FLRW, alpha: float, log_b: float) -> float:
    h70 = cosmo.H0.to_value(u.km / u.s / u.Mpc) / H0_REFERENCE
    return 10.0**log_b * h70 ** (alpha - 2.0)


def y500_from_m500(
    m500: ArrayLike,
    z: ArrayLike,
    cosmo: FLRW,
    *,
    alpha: float = ALPHA_PLANCK,
    log_b: float = LOG_B,
    cylinder: bool = False,
) -> NDArray[np.float64]:
    """Y500 [arcmin^2] of M500 [Msun] at redshift z (> 0) from Eq. 4 (module docs); spherical Y500, or
    the cylinder value (x YCYL_OVER_YSPH) with ``cylinder=True``. ``m500`` and ``z`` broadcast."""
    m = _check_positive("m500", m500)
    a = _check_slope(alpha)
    y = _normalisation(cosmo, a, log_b) * (m / M_PIVOT) ** a * y_scale_arcmin2(z, cosmo)
    return y * YCYL_OVER_YSPH if cylinder else y


def m500_from_y500(
    y500_arcmin2: ArrayLike,
    z: ArrayLike,
    cosmo: FLRW,
    *,
    alpha: float = ALPHA_PLANCK,
    log_b: float = LOG_B,
    cylinder: bool = False,
) -> NDArray[np.float64]:
    """M500 [Msun] of Y500 [arcmin^2] at redshift z (> 0): the inverse of :func:`y500_from_m500`
    (``cylinder=True`` when the Y500 given is the cylinder value)."""
    y = _check_positive("y500", y500_arcmin2)
    a = _check_slope(alpha)
    y_sph = y / YCYL_OVER_YSPH if cylinder else y
    return M_PIVOT * (y_sph / (_normalisation(cosmo, a, log_b) * y_scale_arcmin2(z, cosmo))) ** (1.0 / a)


@dataclass(frozen=True)
class YMLine:
    """One line of the paper's Figure 3 experiment: M_SZ of simulated clusters by Eq. 4 of slope ``alpha``
    from each map's own Y500 (``y_column`` of the map store, [arcmin^2]) times ``y_factor``."""

    label: str
    alpha: float
    y_column: str
    y_factor: float = 1.0


FIGURE3_LINES = (
    YMLine("alpha 1.63 on Y500_cyl (THE THREE HUNDRED)", ALPHA_THE300, "Y500_cyl"),
    YMLine("alpha 1.79 on 1.2 Y500_sph (Planck)", ALPHA_PLANCK, "Y500_sph", YCYL_OVER_YSPH),
)
"""The paper's two lines: THE THREE HUNDRED's fit (slope 1.63) applied to the cylinder Y500 inside the true
R500, and Planck's relation (slope 1.79) applied to the spherical Y500 converted to a cylinder value with
the factor 1.2, both with the Planck normalisation ``LOG_B`` (the same for both, as in the paper)."""


def ym_line_masses(
    y500_arcmin2: ArrayLike, z: ArrayLike, cosmo: FLRW, line: YMLine, *, log_b: float = LOG_B
) -> NDArray[np.float64]:
    """M_SZ [Msun] of clusters of Y500 ``y500_arcmin2`` (the line's ``y_column``, [arcmin^2]) at redshift z:
    :func:`m500_from_y500` of ``line.y_factor * Y500`` with slope ``line.alpha`` and normalisation ``log_b``."""
    if not (np.isfinite(line.y_factor) and line.y_factor > 0):
        raise ValueError(f"Y-M line {line.label!r}: y_factor must be finite and > 0, got {line.y_factor!r}")
    y = _check_positive(f"{line.y_column} of Y-M line {line.label!r}", y500_arcmin2)
    return m500_from_y500(line.y_factor * y, z, cosmo, alpha=line.alpha, log_b=log_b)
