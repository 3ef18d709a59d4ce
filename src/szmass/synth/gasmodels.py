"""Named gas models of the synthetic generator: stand-ins for THE THREE HUNDRED's hydrodynamical codes.

Each model fixes the mean electron-pressure profile (GNFW), the mean gas-density shape, the gas
fraction inside R500 and how much gas sub-halos keep ("clumping"). Per cluster, the parameters
scatter around the means (:func:`draw_halo_gas`): the pressure's shape (c500, inner and outer slopes)
freely, its normalisation P0 so that the thermal energy inside R500 (Y500) scatters log-normally by
``ProfileScatter.log_y500`` about the mean profile's. Varied shapes with a tight Y500, as in
hydrodynamical clusters, where the thermal energy inside R500 is set by the potential (P0 and c500 of
fitted profiles are strongly degenerate: P0 rises with c500; Arnaud et al. 2010). The resulting Y500-M500 scatter is
measured by ``benchmarks/generator_scatter.py`` (:mod:`szmass.synth.calibration`).

``"gadget_x"``
    GADGET-X (full physics with AGN feedback). Pressure: the Arnaud et al. (2010) universal
    profile. Density: a mildly cuspy core (a = 0.6, scattered so that cool and non-cool cores
    both occur), f_gas(<R500) = 0.85 Omega_b / Omega_m. Sub-halos keep half of the host's gas
    fraction.
``"gadget_music"``
    GADGET-MUSIC (non-radiative-like: no cooling or feedback). Higher, more concentrated central
    pressure (P0 = 13.0, c500 = 1.4, gamma = 0.40; Y500 about 15% above GADGET-X), a cuspier
    density (a = 0.8, small core) and a nearly cosmic gas fraction (0.92 Omega_b / Omega_m).
    Sub-halos keep little gas (ram-pressure stripping without cooling to bind it): clumping 0.25.
``"gizmo_simba"``
    GIZMO-SIMBA (strong AGN jets). Pressure: the Planck 2013 Intermediate V fit; a flat, wide
    density core (a = 0.2, xc = 0.25) and a depleted gas fraction (0.75 Omega_b / Omega_m).
    Sub-halos keep all of the host's gas fraction: the most clumping.

These are parametric stand-ins chosen to differ as the codes do qualitatively (de Andres et al.
2022, Cui et al. 2022); they are not fits to the simulations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from szmass.synth.profiles import ARNAUD2010, PLANCK2013, GasDensityShape, GNFWParams, gnfw_volume_integral


@dataclass(frozen=True)
class ProfileScatter:
    """Per-cluster scatter of the gas profiles: log-normal [dex] for scales, normal [absolute] for slopes.

    ``log_y500`` is the scatter of the pressure's volume integral inside R500 (Y500 at fixed M500; P0
    follows from it and the drawn shape), ``log_c500`` the pressure concentration, ``gamma``/``beta``
    the inner/outer pressure slopes, ``log_xc`` and ``a`` the density core and cusp, ``log_fgas`` the
    gas fraction (which leaves Y500 unchanged: the temperature is P_e / n_e).

    ``log_y500`` = 0.030 dex is calibrated (``benchmarks/generator_scatter.py``) so that, with the
    structure of the generated halos (triaxial shapes, sub-halos, 20% mergers) measured in spheres,
    masses from a Y500-M500 power law scatter by about 6% (16th-84th half-width) as THE THREE
    HUNDRED's do (de Andres et al. 2022, Supplementary D).
    """

    log_y500: float = 0.030
    log_c500: float = 0.03
    gamma: float = 0.05
    beta: float = 0.15
    log_xc: float = 0.15
    a: float = 0.25
    log_fgas: float = 0.04


@dataclass(frozen=True)
class GasModel:
    """Mean gas profiles of a model: GNFW pressure, density shape, f_gas in Omega_b / Omega_m, sub-halo clumping."""

    name: str
    pressure: GNFWParams
    density: GasDensityShape
    fgas_cosmic: float
    clumping: float
    scatter: ProfileScatter = ProfileScatter()


GAS_MODELS: dict[str, GasModel] = {
    "gadget_x": GasModel(
        "gadget_x", ARNAUD2010, GasDensityShape(xc=0.15, a=0.6, b=2.0 / 3.0, xs=1.2, eps=1.5), fgas_cosmic=0.85, clumping=0.5
    ),
    "gadget_music": GasModel(
        "gadget_music",
        GNFWParams(P0=13.0, c500=1.4, gamma=0.40, alpha=1.0510, beta=5.4905),
        GasDensityShape(xc=0.10, a=0.8, b=2.0 / 3.0, xs=1.2, eps=1.5),
        fgas_cosmic=0.92,
        clumping=0.25,
    ),
    "gizmo_simba": GasModel(
        "gizmo_simba", PLANCK2013, GasDensityShape(xc=0.25, a=0.2, b=2.0 / 3.0, xs=1.2, eps=1.5), fgas_cosmic=0.75, clumping=1.0
    ),
}
"""The named gas models, by name."""


def gas_model(name: str) -> GasModel:
    """The gas model called ``name``; ValueError listing the known names otherwise."""
    try:
        return GAS_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown gas model {name!r}; expected one of {sorted(GAS_MODELS)}") from None


@dataclass(frozen=True)
class HaloGas:
    """One cluster's gas: its GNFW pressure parameters, density shape and f_gas(<R500) [fraction of M500]."""

    pressure: GNFWParams
    density: GasDensityShape
    fgas: float


_A_RANGE = (0.0, 1.2)
"""Allowed density cusp a: from a flat core to a steep cool core (the central mass stays finite)."""
_GAMMA_RANGE = (0.0, 0.8)
"""Allowed inner pressure slope."""


def mean_halo_gas(model: GasModel, omega_b_over_m: float) -> HaloGas:
    """The model's mean gas profiles for a cosmic baryon fraction ``omega_b_over_m`` (no scatter)."""
    return HaloGas(model.pressure, model.density, model.fgas_cosmic * omega_b_over_m)


def draw_halo_gas(model: GasModel, omega_b_over_m: float, rng: np.random.Generator) -> HaloGas:
    """One cluster's gas profiles: the model's means scattered by ``model.scatter`` (a fixed number of draws).

    The pressure's shape is drawn first; P0 then scales it so that its volume integral inside R500
    (:func:`~szmass.synth.profiles.gnfw_volume_integral`) is the mean profile's times 10^(log_y500 g).
    """
    s = model.scatter
    g = rng.standard_normal(7)
    p, d = model.pressure, model.density
    shape = GNFWParams(
        P0=1.0,
        c500=p.c500 * 10.0 ** (s.log_c500 * g[1]),
        gamma=float(np.clip(p.gamma + s.gamma * g[2], *_GAMMA_RANGE)),
        alpha=p.alpha,
        beta=max(p.beta + s.beta * g[3], 3.0),  # beta > 3 keeps the thermal energy finite
    )
    y500 = gnfw_volume_integral(p) * 10.0 ** (s.log_y500 * g[0])
    pressure = shape._replace(P0=y500 / gnfw_volume_integral(shape))
    density = GasDensityShape(
        xc=d.xc * 10.0 ** (s.log_xc * g[4]),
        a=float(np.clip(d.a + s.a * g[5], *_A_RANGE)),
        b=d.b,
        xs=d.xs,
        eps=d.eps,
    )
    fgas = model.fgas_cosmic * omega_b_over_m * 10.0 ** (s.log_fgas * g[6])
    return HaloGas(pressure, density, float(min(fgas, omega_b_over_m)))
