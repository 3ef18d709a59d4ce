"""Gas and dark-matter particles of synthetic halos: mass components, sampling, SPH smoothing.

A :class:`Component` is one mass distribution (a halo's gas or dark matter, a sub-halo's, or the
region's uniform background) given as its enclosed mass M(<r) on a log grid of the (ellipsoidal)
radius. Particles of equal mass are drawn from it by inverse-CDF sampling in radius, isotropic
directions, then stretched by volume-preserving semi-axis factors (a b c = 1, so the mass inside
ellipsoidal radius r equals the spherical M(<r)) and rotated.

Halo gas: density of the halo's :class:`~szmass.synth.gasmodels.HaloGas` shape normalised so that
M_gas(<R500) = f_gas M500 (less the gas of its sub-halos inside R500); per particle
T = P_e(r) / (n_e(r) k_B), n_e = rho_gas X n_e,abund / m_p, with P_e the halo's GNFW and rho_gas its
smooth density at the particle's ellipsoidal radius r. Since particles sample rho_gas, the thermal
energy sum_i N_e,i k T_i in any shell is a Monte Carlo estimate of the GNFW's integral of P_e dV.

Halo dark matter: NFW with the halo's c500, normalised so that gas + dark matter + sub-halos + the
background inside R500 add up to M500.

Background: the region sphere filled uniformly at the cosmic mean densities of baryons and dark
matter at the snapshot, the gas at ``T_IGM_K`` (warm intergalactic medium).

Velocities [km/s, peculiar]: bulk plus isotropic Gaussian; dark matter sigma_1D = V500 / sqrt(3)
(close to the Evrard et al. 2008 sigma_DM-M relation), gas ``GAS_TURBULENCE`` times that.

Smoothing (:func:`sph_smoothing`): hsml = the distance to the ``n_neighbours``-th nearest gas particle
(self included, GADGET's convention), the kernel's support radius; density
rho_i = sum_{j != i} m_j W(r_ij, hsml_i) with the Wendland C4 kernel (Dehnen & Aly 2012, as in GADGET-X),
W(r, H) = 495 / (32 pi H^3) (1 - q)^6 (1 + 6 q + 35/3 q^2), q = r / H < 1 (``szmass.kernels``).
The self-contribution m_i W(0, hsml_i) is left out: it compensates the particle-free hole around each
particle of a relaxed (glass-like) simulation, but these particles are drawn independently (Poisson),
where it would bias the density high by W(0) V_h / N (about 30% for N = 64); without it the estimate
is unbiased for Poisson-sampled particles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from astropy.cosmology import FlatLambdaCDM
from scipy.spatial import cKDTree

from szmass.constants import K_B_KEV_K, KPC_CM, M_P_G, MSUN_G, NE_FULLY_IONISED, X_H
from szmass.cosmology import rho_crit_msun_kpc3
from szmass.kernels import kernel_3d
from szmass.synth.halos import HaloState
from szmass.synth.profiles import (
    electron_pressure_kev_cm3,
    enclosed_mass,
    gas_density_shape,
    mass_fraction_inside_sphere,
    nfw_mu,
)

T_IGM_K = 1.0e5
"""Temperature of the background intergalactic gas [K]."""
BACKGROUND_SIGMA_KMS = 300.0
"""1D velocity dispersion of the background [km/s] (large-scale flows)."""
GAS_TURBULENCE = 0.2
"""Gas velocity dispersion as a fraction of the dark matter's."""
X_MIN = 1.0e-4
"""Innermost grid radius in units of R500 (the mass inside it is a power-law extrapolation)."""
N_GRID = 1025
"""Grid points per segment of the radial tables (inside and outside R500)."""


@dataclass(frozen=True, eq=False)
class Component:
    """A mass distribution: M(<r) [Msun] on radii ``radius`` [physical kpc, ellipsoidal], shape and kinematics.

    ``centre`` [physical kpc], ``axes`` the semi-axis factors (product 1), ``rotation`` (3, 3) from the
    principal frame to the region frame, ``velocity`` [km/s] bulk and ``sigma_v`` [km/s] 1D dispersion,
    ``log_temperature`` ln(T [K]) on the grid for gas (None for dark matter), ``owner`` the halo index
    (0 for the background).
    """

    kind: Literal["gas", "dm"]
    owner: int
    radius: np.ndarray
    mass_enclosed: np.ndarray
    centre: np.ndarray
    axes: np.ndarray
    rotation: np.ndarray
    velocity: np.ndarray
    sigma_v: float
    log_temperature: np.ndarray | None = None

    @property
    def total_mass(self) -> float:
        """Mass of the component [Msun]."""
        return float(self.mass_enclosed[-1])


@dataclass(frozen=True, eq=False)
class ParticleSample:
    """Sampled particles: positions [physical kpc], velocities [km/s], temperatures [K] (gas) and owner halo index."""

    pos: np.ndarray
    vel: np.ndarray
    temperature: np.ndarray | None
    owner: np.ndarray


def radial_grid_r500(x_max: float) -> np.ndarray:
    """Radii in units of R500 from X_MIN to ``x_max``, log-spaced, with x = 1 a node when x_max > 1."""
    if x_max <= 1.0:
        return np.geomspace(X_MIN, x_max, N_GRID)
    return np.concatenate([np.geomspace(X_MIN, 1.0, N_GRID), np.geomspace(1.0, x_max, N_GRID)[1:]])


def gas_temperature_k(x: np.ndarray, rho_gas_msun_kpc3: np.ndarray, state: HaloState, z: float, cosmo: FlatLambdaCDM):
    """T = P_e / (n_e k_B) [K] from the halo's GNFW at x = r / R500 and its gas density [Msun / kpc^3]."""
    n_e = rho_gas_msun_kpc3 * (MSUN_G / KPC_CM**3) * X_H * NE_FULLY_IONISED / M_P_G
    p_e = electron_pressure_kev_cm3(x, state.m500, z, state.halo.gas.pressure, cosmo)
    return p_e / n_e / K_B_KEV_K


def _gas_table(state: HaloState, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gas density shape and its enclosed mass (in units of R500^3 times the shape) on grid ``x``."""
    shape = gas_density_shape(x, *state.halo.gas.density)
    return shape, enclosed_mass(x, shape, state.halo.gas.density.a)


def subhalo_components(sub: HaloState, z: float, cosmo: FlatLambdaCDM) -> list[Component]:
    """Gas and dark matter of a spherical sub-halo truncated at its tidal radius, total mass = its M500 [Msun]."""
    x = radial_grid_r500(sub.truncation / sub.r500)
    r = x * sub.r500
    fgas = sub.halo.gas.fgas
    shape, m_shape = _gas_table(sub, x)
    gas_norm = fgas * sub.m500 / m_shape[-1]
    m_dm = (1.0 - fgas) * sub.m500 * nfw_mu(r / sub.r_s) / nfw_mu(sub.truncation / sub.r_s)
    temperature = gas_temperature_k(x, gas_norm * shape / sub.r500**3, sub, z, cosmo)
    sigma = sub.v500 / np.sqrt(3.0)
    common: dict[str, Any] = dict(owner=sub.halo.index, radius=r, centre=sub.centre, axes=np.ones(3), rotation=np.eye(3), velocity=sub.velocity)
    return [
        Component("gas", mass_enclosed=gas_norm * m_shape, sigma_v=GAS_TURBULENCE * sigma, log_temperature=np.log(temperature), **common),
        Component("dm", mass_enclosed=m_dm, sigma_v=sigma, **common),
    ]


def halo_components(
    state: HaloState,
    subs: list[tuple[HaloState, list[Component]]],
    z: float,
    cosmo: FlatLambdaCDM,
    background_density: float,
) -> list[Component]:
    """Gas and dark matter of a (triaxial) host or companion truncated at ``state.truncation``.

    ``subs`` are its sub-halos with their components; their mass inside R500 and the background's
    (``background_density`` [Msun / kpc^3]) are taken from the smooth gas (sub gas) and dark matter
    so that the total inside R500 is M500.
    """
    x = radial_grid_r500(state.truncation / state.r500)
    r = x * state.r500
    i500 = int(np.searchsorted(x, 1.0))
    sub_gas = sub_dm = 0.0
    for sub, comps in subs:
        d = float(np.linalg.norm(sub.centre - state.centre))
        for c in comps:
            inside = c.total_mass * mass_fraction_inside_sphere(c.radius, c.mass_enclosed, d, state.r500)
            sub_gas, sub_dm = (sub_gas + inside, sub_dm) if c.kind == "gas" else (sub_gas, sub_dm + inside)
    fgas = state.halo.gas.fgas
    gas_500 = fgas * state.m500 - sub_gas
    dm_500 = (1.0 - fgas) * state.m500 - sub_dm - background_density * 4.0 / 3.0 * np.pi * state.r500**3
    if gas_500 <= 0 or dm_500 <= 0:
        raise ValueError(f"halo {state.halo.index}: sub-halos and background exceed M500 = {state.m500:.3e} Msun")
    shape, m_shape = _gas_table(state, x)
    gas_norm = gas_500 / m_shape[i500]
    m_dm = dm_500 * nfw_mu(r / state.r_s) / nfw_mu(state.c500)
    temperature = gas_temperature_k(x, gas_norm * shape / state.r500**3, state, z, cosmo)
    sigma = state.v500 / np.sqrt(3.0)
    halo = state.halo
    common: dict[str, Any] = dict(owner=halo.index, radius=r, centre=state.centre, axes=halo.axes, rotation=halo.rotation, velocity=state.velocity)
    return [
        Component("gas", mass_enclosed=gas_norm * m_shape, sigma_v=GAS_TURBULENCE * sigma, log_temperature=np.log(temperature), **common),
        Component("dm", mass_enclosed=m_dm, sigma_v=sigma, **common),
    ]


def background_components(region_radius_kpc: float, z: float, cosmo: FlatLambdaCDM) -> list[Component]:
    """Uniform gas (at T_IGM_K) and dark matter filling the region sphere at the cosmic mean densities of z."""
    r = np.geomspace(1.0e-3 * region_radius_kpc, region_radius_kpc, N_GRID)
    vol = 4.0 / 3.0 * np.pi * r**3
    rho_m = mean_matter_density(z, cosmo)
    fb = float(cosmo.Ob0 / cosmo.Om0)
    common: dict[str, Any] = dict(owner=0, radius=r, centre=np.zeros(3), axes=np.ones(3), rotation=np.eye(3), velocity=np.zeros(3))
    return [
        Component("gas", mass_enclosed=fb * rho_m * vol, sigma_v=GAS_TURBULENCE * BACKGROUND_SIGMA_KMS,
                  log_temperature=np.full(r.size, np.log(T_IGM_K)), **common),
        Component("dm", mass_enclosed=(1.0 - fb) * rho_m * vol, sigma_v=BACKGROUND_SIGMA_KMS, **common),
    ]


def mean_matter_density(z: float, cosmo: FlatLambdaCDM) -> float:
    """Cosmic mean matter density [Msun / physical kpc^3] at redshift ``z``."""
    return float(cosmo.Om0 * rho_crit_msun_kpc3(cosmo, 0.0) * (1.0 + z) ** 3)


def sample_component(comp: Component, particle_mass: float, rng: np.random.Generator) -> ParticleSample:
    """Equal-mass particles [``particle_mass`` Msun] drawn from ``comp``; their number is M / m rounded at random.

    Radii by inverse CDF (linear in M(<r) against ln r between grid nodes), isotropic directions,
    stretched by ``comp.axes`` and rotated by ``comp.rotation``.
    """
    n = int(np.floor(comp.total_mass / particle_mass + rng.random()))
    ln_r = np.interp(rng.random(n) * comp.total_mass, comp.mass_enclosed, np.log(comp.radius))
    r = np.exp(ln_r)
    direction = rng.standard_normal((n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    pos = comp.centre + (direction * (r[:, None] * comp.axes)) @ comp.rotation.T
    vel = comp.velocity + comp.sigma_v * rng.standard_normal((n, 3))
    temperature = None
    if comp.log_temperature is not None:
        temperature = np.exp(np.interp(ln_r, np.log(comp.radius), comp.log_temperature))
    return ParticleSample(pos, vel, temperature, np.full(n, comp.owner, dtype=np.int32))


def sph_smoothing(pos: np.ndarray, mass: np.ndarray, n_neighbours: int = 64, chunk: int = 1 << 17) -> tuple[np.ndarray, np.ndarray]:
    """SPH support radius hsml and density rho (Wendland C4, no self-contribution) of particles at ``pos``.

    Units follow the input: hsml in the length unit of ``pos``, rho in mass / length^3. Neighbours by
    :class:`scipy.spatial.cKDTree` (all cores), ``chunk`` particles at a time to bound memory, queried in
    the tree's leaf order (spatially coherent: several times faster than the input order).
    """
    n = len(pos)
    if n < n_neighbours:
        raise ValueError(f"SPH smoothing needs at least n_neighbours = {n_neighbours} gas particles, got {n}")
    tree = cKDTree(pos)
    hsml = np.empty(n)
    rho = np.empty(n)
    for start in range(0, n, chunk):
        rows = tree.indices[start : start + chunk]
        dist, idx = tree.query(pos[rows], k=n_neighbours, workers=-1)
        h = dist[:, -1]
        w = kernel_3d("wendland_c4", dist[:, 1:] / h[:, None])  # column 0 is the particle itself
        hsml[rows] = h
        rho[rows] = np.sum(mass[idx[:, 1:]] * w, axis=1) / h**3
    return hsml, rho
