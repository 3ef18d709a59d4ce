"""Radial profiles of synthetic clusters and their integrals.

Units: radii in physical kpc (or in units of R500 where named ``x``), masses in Msun, pressure in
keV cm^-3, Y in Mpc^2. Every profile here is spherical; triaxial halos use the same profiles as
functions of a volume-preserving ellipsoidal radius (see :mod:`szmass.synth.particles`).

Electron pressure: generalised NFW (Nagai et al. 2007; Arnaud et al. 2010; docs/physics.md)::

    P_e(r) = P500 * P0 h70^(-3/2) / ((c500 x)^gamma (1 + (c500 x)^alpha)^((beta - gamma) / alpha)),  x = r / R500,
    P500   = 1.65e-3 E(z)^(8/3) (M500 / 3e14 h70^-1 Msun)^(2/3) h70^2 keV cm^-3.

The h70^(-3/2) scaling of P0 quoted by Arnaud et al. is applied to every parameter set (the
Planck 2013 fit was made at h = 0.7, where it is 1). The mass-dependent correction alpha_P of
Arnaud et al. is not used: the profile is self-similar.

Gas density: the simplified Vikhlinin et al. (2006) form (without its second beta component)::

    rho_gas(x) ∝ (x / xc)^(-a) (1 + (x / xc)^2)^(a / 2 - 3 b / 2) (1 + (x / xs)^3)^(-eps / 3),

a cored (a = 0) or mildly cuspy beta model that steepens by ``eps`` beyond ``xs``; its logarithmic
slope at R500 is about -2.5 to -3, as observed.

Dark matter: NFW (Navarro, Frenk & White 1997), M(<r) ∝ mu(r / r_s), mu(y) = ln(1 + y) - y / (1 + y).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from astropy.cosmology import FlatLambdaCDM
from scipy.integrate import cumulative_simpson, quad

from szmass.constants import KPC_CM, ME_C2_KEV, MPC_CM, SIGMA_T_CM2
from szmass.cosmology import r500_from_m500


class GNFWParams(NamedTuple):
    """Generalised NFW pressure parameters (P0 [h70^-3/2 units], c500, gamma, alpha, beta)."""

    P0: float
    c500: float
    gamma: float
    alpha: float
    beta: float


ARNAUD2010 = GNFWParams(8.403, 1.177, 0.3081, 1.0510, 5.4905)
"""The "universal" pressure profile of Arnaud et al. (2010)."""
PLANCK2013 = GNFWParams(6.41, 1.81, 0.31, 1.33, 4.13)
"""The Planck Intermediate Results V (2013) fit to 62 clusters."""


class GasDensityShape(NamedTuple):
    """Shape of the gas density (simplified Vikhlinin 2006): core ``xc`` and break ``xs`` in R500, slopes a, b, eps."""

    xc: float
    a: float
    b: float
    xs: float
    eps: float


def gnfw_pressure(x, P0: float, c500: float, gamma: float, alpha: float, beta: float) -> np.ndarray:
    """Dimensionless GNFW pressure P / P500 at x = r / R500 (without the h70 factor of P0)."""
    cx = c500 * np.asarray(x, dtype=np.float64)
    return P0 / (cx**gamma * (1.0 + cx**alpha) ** ((beta - gamma) / alpha))


def _h70(cosmo: FlatLambdaCDM) -> float:
    return float(cosmo.H0.value) / 70.0


def p500_kev_cm3(m500_msun, z: float, cosmo: FlatLambdaCDM):
    """Characteristic pressure P500 [keV cm^-3] of a halo of M500 [Msun] at redshift ``z`` (Arnaud et al. 2010)."""
    h70 = _h70(cosmo)
    ez = float(cosmo.efunc(z))
    return 1.65e-3 * ez ** (8.0 / 3.0) * (np.asarray(m500_msun, dtype=np.float64) * h70 / 3.0e14) ** (2.0 / 3.0) * h70**2


def electron_pressure_kev_cm3(x, m500_msun: float, z: float, params: GNFWParams, cosmo: FlatLambdaCDM) -> np.ndarray:
    """Electron pressure P_e [keV cm^-3] at x = r / R500: P500 h70^(-3/2) times the GNFW shape."""
    return p500_kev_cm3(m500_msun, z, cosmo) * _h70(cosmo) ** -1.5 * gnfw_pressure(x, *params)


def gnfw_volume_integral(params: GNFWParams, x_max: float = 1.0) -> float:
    """The integral of x^2 P(x) / P500 from 0 to ``x_max`` (x = r / R500) of a GNFW profile
    (:func:`scipy.integrate.quad`, relative accuracy 1e-10); Y_sph is proportional to it."""
    value, _ = quad(lambda x: x * x * float(gnfw_pressure(x, *params)), 0.0, x_max, epsrel=1e-10, limit=200)
    return float(value)


def y_sph_mpc2(m500_msun: float, z: float, params: GNFWParams, cosmo: FlatLambdaCDM, r_max_r500: float = 1.0) -> float:
    """Spherical Y [Mpc^2] inside ``r_max_r500`` R500: sigma_T / (m_e c^2) times the integral of P_e dV.

    The radial integral of x^2 P(x) is :func:`gnfw_volume_integral`.
    """
    if not r_max_r500 > 0:
        raise ValueError(f"y_sph_mpc2: r_max_r500 must be > 0, got {r_max_r500!r}")
    shape = gnfw_volume_integral(params, r_max_r500)
    r500_cm = float(r500_from_m500(cosmo, m500_msun, z)) * KPC_CM
    p_norm = float(p500_kev_cm3(m500_msun, z, cosmo)) * _h70(cosmo) ** -1.5
    return SIGMA_T_CM2 / ME_C2_KEV * p_norm * 4.0 * np.pi * r500_cm**3 * shape / MPC_CM**2


def gas_density_shape(x, xc: float, a: float, b: float, xs: float, eps: float) -> np.ndarray:
    """Dimensionless gas density at x = r / R500 (simplified Vikhlinin 2006 form, equal to 1 at x = xc when xs >> xc)."""
    x = np.asarray(x, dtype=np.float64)
    u = x / xc
    return u ** (-a) * (1.0 + u * u) ** (0.5 * a - 1.5 * b) * (1.0 + (x / xs) ** 3) ** (-eps / 3.0)


def nfw_mu(y) -> np.ndarray:
    """NFW enclosed-mass shape mu(y) = ln(1 + y) - y / (1 + y), y = r / r_s."""
    y = np.asarray(y, dtype=np.float64)
    return np.log1p(y) - y / (1.0 + y)


def enclosed_mass(r: np.ndarray, density: np.ndarray, inner_slope: float) -> np.ndarray:
    """Cumulative mass M(<r) of a spherical density sampled on the log grid ``r`` (units: density * r^3).

    Simpson's rule in ln r on 4 pi r^3 rho, plus the mass inside r[0] for a power law rho ∝ r^(-inner_slope)
    there (inner_slope < 3).
    """
    if not inner_slope < 3:
        raise ValueError(f"enclosed_mass: inner slope must be < 3 for a finite central mass, got {inner_slope!r}")
    integrand = 4.0 * np.pi * r**3 * density
    core = 4.0 * np.pi * r[0] ** 3 * density[0] / (3.0 - inner_slope)
    return core + cumulative_simpson(integrand, x=np.log(r), initial=0.0)


def shell_fraction_inside_sphere(s, d: float, radius: float) -> np.ndarray:
    """Fraction of the area of a spherical shell of radius ``s`` centred at distance ``d`` inside a sphere ``radius``.

    The spherical-cap formula: 1 where the shell lies wholly inside, 0 wholly outside, else
    (radius^2 - (d - s)^2) / (4 d s). Any one length unit.
    """
    s = np.asarray(s, dtype=np.float64)
    if d <= 0:
        return np.where(s <= radius, 1.0, 0.0)
    partial = (radius**2 - (d - s) ** 2) / (4.0 * d * np.maximum(s, 1e-300))
    inside = s <= radius - d
    outside = (s >= radius + d) | (s <= d - radius)
    return np.where(inside, 1.0, np.where(outside, 0.0, np.clip(partial, 0.0, 1.0)))


def mass_fraction_inside_sphere(r: np.ndarray, m_enc: np.ndarray, d: float, radius: float) -> float:
    """Fraction of a spherical mass distribution (M(<r) on grid ``r``) lying inside a sphere ``radius`` at distance ``d``.

    Each grid shell's mass is weighted with :func:`shell_fraction_inside_sphere` at its mid radius.
    """
    dm = np.diff(m_enc, prepend=0.0)
    mid = np.concatenate([[0.5 * r[0]], np.sqrt(r[1:] * r[:-1])])
    return float(np.sum(dm * shell_fraction_inside_sphere(mid, d, radius)) / m_enc[-1])
