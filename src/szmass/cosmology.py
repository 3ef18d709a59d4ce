"""The configured cosmology (astropy ``FlatLambdaCDM``) and derived quantities.

Default: THE THREE HUNDRED / MultiDark MDPL2 (Planck 2015): h = 0.6777,
Omega_m = 0.307115, Omega_b = 0.048206 (Cui et al. 2018; docs/physics.md). Every conversion between
h^-1 units and physical units goes through the object returned here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM

THE300 = {"H0": 67.77, "Om0": 0.307115, "Ob0": 0.048206}


def make_cosmology(params: Mapping[str, Any] | None = None) -> FlatLambdaCDM:
    """Build a flat LCDM cosmology from a config mapping with keys ``H0`` [km/s/Mpc], ``Om0``, ``Ob0``.

    Missing keys take THE THREE HUNDRED's values; ``Tcmb0`` is 0 (no radiation), as in the simulations.
    """
    p = {**THE300, **dict(params or {})}
    unknown = set(p) - set(THE300)
    if unknown:
        raise ValueError(f"cosmology: unknown key(s) {sorted(unknown)}; expected {sorted(THE300)}")
    return FlatLambdaCDM(H0=float(p["H0"]), Om0=float(p["Om0"]), Ob0=float(p["Ob0"]))


@overload
def rho_crit_msun_kpc3(cosmo: FlatLambdaCDM, z: float) -> float: ...
@overload
def rho_crit_msun_kpc3(cosmo: FlatLambdaCDM, z: np.ndarray) -> np.ndarray: ...
def rho_crit_msun_kpc3(cosmo: FlatLambdaCDM, z: float | np.ndarray) -> float | np.ndarray:
    """Critical density at redshift ``z`` [Msun / physical kpc^3]."""
    return cosmo.critical_density(z).to_value(u.Msun / u.kpc**3)


def r500_from_m500(cosmo: FlatLambdaCDM, m500_msun: float | np.ndarray, z: float | np.ndarray):
    """R500 [physical kpc] of a halo of M500 [Msun] at redshift ``z`` (500 times the critical density)."""
    return np.cbrt(3.0 * np.asarray(m500_msun) / (4.0 * np.pi * 500.0 * rho_crit_msun_kpc3(cosmo, z)))


def m500_from_r500(cosmo: FlatLambdaCDM, r500_kpc: float | np.ndarray, z: float | np.ndarray):
    """M500 [Msun] enclosed by R500 [physical kpc] at redshift ``z``."""
    return 4.0 / 3.0 * np.pi * 500.0 * rho_crit_msun_kpc3(cosmo, z) * np.asarray(r500_kpc) ** 3


def angular_diameter_distance_kpc(cosmo: FlatLambdaCDM, z: float | np.ndarray):
    """Angular diameter distance [physical kpc]; raises for z <= 0 where the sky projection is undefined."""
    zz = np.asarray(z, dtype=float)
    if np.any(~(zz > 0)):
        raise ValueError(f"redshift must be > 0 to place a cluster on the sky, got {z!r}")
    return cosmo.angular_diameter_distance(zz).to_value(u.kpc)


def r500_pixels(r500_kpc: ArrayLike, z: ArrayLike, cosmo: FlatLambdaCDM, pixel_arcmin: float) -> NDArray[np.float64]:
    """R500 in map pixels: R500 [physical kpc] / D_A(z) [physical kpc] is the angle [rad], divided by
    the pixel size ``pixel_arcmin`` [arcmin]. ``cosmo``: an astropy cosmology (`szmass.cosmology.make_cosmology`).
    Returns an array broadcast over ``r500_kpc`` and ``z``."""
    r = np.asarray(r500_kpc, dtype=float)
    if not np.all(np.isfinite(r) & (r > 0)):
        raise ValueError(f"r500_pixels: R500 [kpc] must be finite and > 0, got {r500_kpc!r}")
    if not (np.isfinite(pixel_arcmin) and pixel_arcmin > 0):
        raise ValueError(f"r500_pixels: pixel_arcmin must be finite and > 0, got {pixel_arcmin!r}")
    theta = (r / angular_diameter_distance_kpc(cosmo, np.asarray(z, dtype=float))) * u.rad
    return np.asarray(theta.to_value(u.arcmin) / float(pixel_arcmin), dtype=float)
