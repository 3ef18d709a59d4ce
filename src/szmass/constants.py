"""Physical constants used across the pipeline (CGS unless stated), from astropy.

docs/physics.md: sigma_T = 6.6524587e-25 cm^2, m_e c^2 = 510.999 keV, hydrogen mass
fraction X = 0.76, adiabatic index 5/3 (GADGET conventions).
"""

import numpy as np
from astropy import constants as const
from astropy import units as u

SIGMA_T_CM2: float = const.sigma_T.to_value(u.cm**2)
"""Thomson cross-section [cm^2]."""
ME_C2_ERG: float = (const.m_e * const.c**2).to_value(u.erg)
"""Electron rest energy [erg]."""
ME_C2_KEV: float = (const.m_e * const.c**2).to_value(u.keV)
"""Electron rest energy [keV]."""
M_P_G: float = const.m_p.to_value(u.g)
"""Proton mass [g]."""
K_B_ERG_K: float = const.k_B.to_value(u.erg / u.K)
"""Boltzmann constant [erg/K]."""
K_B_KEV_K: float = const.k_B.to_value(u.keV / u.K)
"""Boltzmann constant [keV/K]."""
MSUN_G: float = const.M_sun.to_value(u.g)
"""Solar mass [g]."""
KPC_CM: float = u.kpc.to(u.cm)
"""One kiloparsec [cm]."""
MPC_CM: float = u.Mpc.to(u.cm)
"""One megaparsec [cm]."""
ARCMIN_PER_RAD: float = u.rad.to(u.arcmin)
"""Arcminutes per radian."""

X_H: float = 0.76
"""Hydrogen mass fraction (GADGET convention)."""
GAMMA_ADIABATIC: float = 5.0 / 3.0
"""Adiabatic index of a monatomic ideal gas."""
NE_FULLY_IONISED: float = 1.0 + 2.0 * (1.0 - X_H) / (4.0 * X_H)
"""Electron abundance per hydrogen atom of a fully ionised H + He gas (~1.158)."""


def mean_molecular_weight(ne: "float | np.ndarray", x_h: float = X_H) -> "float | np.ndarray":
    """Mean molecular weight mu = 4 / (1 + 3 X + 4 X n_e) for electron abundance ``ne`` per H."""
    return 4.0 / (1.0 + 3.0 * x_h + 4.0 * x_h * ne)
