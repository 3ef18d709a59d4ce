"""The halo population of one synthetic region, drawn once and evolved deterministically across snapshots.

A region (THE THREE HUNDRED: a sphere of 15 h^-1 Mpc inside a 1 h^-1 Gpc box) holds:

* ``halos_per_region`` host halos whose z = 0 masses M500 are drawn from the Tinker et al. (2008)
  mass function (colossus, M500c definition) between ``m500_min`` and ``m500_max``; the most
  massive is the *main* halo at the region centre, the others (*field* halos) are placed at
  random inside the region with non-overlapping virial spheres (at z = 0). A field halo is
  *contaminated* with probability ``contaminated_fraction``, or when no room is left for it inside:
  it is placed with its centre inside, but its virial sphere across, the region boundary (AHF
  fMhires < 1).
* for a fraction ``merger_fraction`` of hosts, a *companion* of mass ratio U(0.1, 0.5) at a
  separation U(0.5, 2.0) R500 of the host, falling in at 0.5 to 1 V500 of the host: an ongoing
  merger. It is a full halo of its own (shape, gas, scatter).
* for every host, 1 + Poisson(2) *sub-halos* holding a fraction U(0.5, 1.5) x
  ``substructure_fraction`` of the host's M500 (split by a flat Dirichlet draw), at U(0.25, 1.0)
  R500 from the host centre, spherical and tidally truncated (see :func:`evolve`). Their gas has the
  host's profile shapes, a gas fraction and pressure scaled by the gas model's ``clumping`` (so its
  temperature is that of an ordinary halo of its mass).

Mass accretion history (Wechsler et al. 2002): M500(z) = M500(0) exp(-alpha z), alpha = 2 a_c,
formation epoch a_c = 4.1 / c_vir(z = 0); so more concentrated (earlier-forming) halos grow more
slowly. Sub-halos and companions keep their mass ratio to the host, and their position and
velocity in units of the host's R500 and V500 = sqrt(G M500 / R500). Hosts keep their comoving
position and peculiar velocity. So every halo keeps its identity (AHF ID) at every snapshot.

Shapes: minor-to-major axis ratio s ~ N(0.60, 0.10) clipped to [0.35, 0.95], intermediate-to-major
q ~ U(s, 1), uniformly random orientation: close to cluster-mass halos in N-body simulations
(Jing & Suto 2002; Bonamigo et al. 2015). Concentrations: the Diemer & Joyce (2019) c500c(M, z)
relation (colossus) times a per-halo log-normal factor of 0.16 dex (truncated at 2 sigma), fixed across snapshots.

Units: masses in Msun, physical kpc and km/s unless a name says otherwise; positions in the box in
comoving kpc/h (GADGET). AHF IDs: ``region * HALO_ID_STRIDE + index`` (index 1 = main halo).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
from astropy.cosmology import FlatLambdaCDM
from colossus.cosmology import cosmology as colossus_cosmo
from colossus.halo import concentration as colossus_conc
from colossus.halo import mass_so
from colossus.lss import mass_function
from scipy.optimize import brentq
from scipy.spatial.transform import Rotation

from szmass.cosmology import r500_from_m500, rho_crit_msun_kpc3
from szmass.synth.gasmodels import HaloGas, draw_halo_gas, gas_model

SIGMA8 = 0.8228
"""Power-spectrum normalisation of MDPL2 / THE THREE HUNDRED (Cui et al. 2018; docs/physics.md)."""
NS = 0.96
"""Primordial spectral index of MDPL2 / THE THREE HUNDRED (Cui et al. 2018; docs/physics.md)."""
TCMB0_TRANSFER = 2.7255
"""CMB temperature [K] used only by the Eisenstein & Hu transfer function (the expansion has no radiation)."""
G_KPC_KMS2_MSUN = 4.300917270e-6
"""Newton's constant [kpc (km/s)^2 / Msun]."""

HALO_ID_STRIDE = 1_000_000
"""AHF ID = region * HALO_ID_STRIDE + halo index; the same halo has the same ID at every snapshot."""
WECHSLER_C1 = 4.1
"""c_vir = WECHSLER_C1 a / a_c (Wechsler et al. 2002)."""
ACCRETION_RATE_RANGE = (0.4, 3.0)
"""Clip of alpha in M(z) = M0 exp(-alpha z), guarding the extremes of the concentration scatter."""
CONC_SCATTER_DEX = 0.16
"""Log-normal scatter of concentration at fixed mass (Diemer & Joyce 2019), truncated at 2 sigma."""
HOST_VELOCITY_KMS = 300.0
"""1D dispersion of host peculiar velocities [km/s]."""
HOST_SEPARATION_RVIR = 1.0
"""Host centres are at least this times the sum of their z = 0 virial radii apart (no overlapping virial spheres)."""
INSIDE_MARGIN_RVIR = 1.2
"""Uncontaminated hosts lie at least this many virial radii (z = 0) inside the region boundary."""
MAX_PLACEMENT_TRIES = 2000


@functools.cache
def _colossus(h0: float, om0: float, ob0: float):
    """Set (once per parameter set) and return colossus's cosmology for the given flat LCDM parameters."""
    return colossus_cosmo.setCosmology(
        f"szmass_{h0}_{om0}_{ob0}",
        params=dict(
            flat=True, H0=h0, Om0=om0, Ode0=1.0 - om0, Ob0=ob0, Tcmb0=TCMB0_TRANSFER, relspecies=False, sigma8=SIGMA8, ns=NS
        ),
        persistence="",
    )


def use_colossus_cosmology(cosmo: FlatLambdaCDM):
    """Make colossus's global cosmology match ``cosmo`` (H0, Om0, Ob0; sigma8 and n_s of MDPL2); return it.

    Built with ``setCosmology`` rather than ``fromAstropy``: the astropy cosmology has Tcmb0 = 0, with
    which the Eisenstein & Hu transfer function is undefined, so the transfer function uses
    :data:`TCMB0_TRANSFER` while the expansion history, like astropy's, has no radiation.
    """
    c = _colossus(float(cosmo.H0.value), float(cosmo.Om0), float(cosmo.Ob0))
    colossus_cosmo.setCurrent(c)
    return c


def sample_m500_z0(m_min_h: float, m_max_h: float, n: int, cosmo: FlatLambdaCDM, rng: np.random.Generator) -> np.ndarray:
    """``n`` z = 0 masses M500 [h^-1 Msun] from the Tinker et al. (2008) M500c mass function between the limits.

    Inverse-CDF sampling of dn/dlnM tabulated on 512 log-spaced masses.
    """
    if not 0 < m_min_h < m_max_h:
        raise ValueError(f"mass function limits need 0 < m500_min < m500_max, got {m_min_h!r}, {m_max_h!r}")
    use_colossus_cosmology(cosmo)
    ln_m = np.linspace(np.log(m_min_h), np.log(m_max_h), 512)
    dndlnm = mass_function.massFunction(np.exp(ln_m), 0.0, mdef="500c", model="tinker08", q_out="dndlnM")
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dndlnm[1:] + dndlnm[:-1]) * np.diff(ln_m))])
    return np.exp(np.interp(rng.random(n) * cdf[-1], cdf, ln_m))


def concentration_500c(m500_msun: np.ndarray, z: float, cosmo: FlatLambdaCDM) -> np.ndarray:
    """Median c500c of the Diemer & Joyce (2019) relation (colossus) for M500 [Msun] at redshift ``z``."""
    use_colossus_cosmology(cosmo)
    m_h = np.atleast_1d(np.asarray(m500_msun, dtype=np.float64)) * cosmo.h
    return np.asarray(colossus_conc.concentration(m_h, "500c", z, model="diemer19"), dtype=np.float64)


def nfw_virial_radius_kpc(m500: float, r500: float, c500: float, z: float, cosmo: FlatLambdaCDM) -> float:
    """Virial radius [physical kpc] of an NFW halo (M500 [Msun], R500 [kpc], c500), Bryan & Norman Delta_vir (colossus)."""
    use_colossus_cosmology(cosmo)
    target = mass_so.deltaVir(z) * rho_crit_msun_kpc3(cosmo, z)
    mu = lambda y: np.log1p(y) - y / (1.0 + y)  # noqa: E731
    mean_density = lambda r: m500 * mu(c500 * r / r500) / mu(c500) / (4.0 / 3.0 * np.pi * r**3)  # noqa: E731
    return float(brentq(lambda r: np.log(mean_density(r) / target), 0.3 * r500, 20.0 * r500, xtol=1e-6 * r500))


@dataclass(frozen=True, eq=False)
class Halo:
    """One halo's identity and intrinsic properties, drawn once per region.

    ``role`` is "main", "field", "companion" or "sub"; ``host`` the index of its host (0 for hosts).
    Hosts: ``m500_z0`` [Msun] and ``accretion_rate`` alpha set M500(z); ``offset`` is the comoving
    position from the region centre [kpc/h]; ``velocity`` the peculiar velocity [km/s].
    Companions and sub-halos: ``mass_ratio`` to the host; ``offset`` and ``velocity`` are relative to
    the host in units of its R500 and V500 at each snapshot.
    """

    index: int
    role: str
    host: int
    m500_z0: float
    mass_ratio: float
    accretion_rate: float
    conc_factor: float
    offset: np.ndarray
    velocity: np.ndarray
    axes: np.ndarray
    rotation: np.ndarray
    gas: HaloGas
    contaminated: bool = False


@dataclass(frozen=True, eq=False)
class RegionPopulation:
    """The halos of one region: the region centre in the box [ckpc/h], its radius [ckpc/h] and gas model."""

    region: int
    centre: np.ndarray
    radius: float
    box_size: float
    gas_model: str
    halos: tuple[Halo, ...]

    def halo_id(self, index: int) -> int:
        """The AHF ID of halo ``index`` (stable across snapshots)."""
        return self.region * HALO_ID_STRIDE + index


def draw_shape(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Volume-preserving semi-axis factors (a, b, c), a b c = 1, and a random rotation matrix."""
    s = float(np.clip(rng.normal(0.60, 0.10), 0.35, 0.95))
    q = float(rng.uniform(s, 1.0))
    a = (q * s) ** (-1.0 / 3.0)
    rotation = Rotation.random(rng=rng).as_matrix()
    return np.array([a, q * a, s * a]), rotation


def _conc_factor(rng: np.random.Generator, n: int | None = None) -> np.ndarray | float:
    """Log-normal concentration scatter factor(s), CONC_SCATTER_DEX wide, truncated at 2 sigma."""
    return 10.0 ** (CONC_SCATTER_DEX * np.clip(rng.standard_normal(n), -2.0, 2.0))


def _unit_vector(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def draw_population(
    cosmo: FlatLambdaCDM,
    *,
    region: int,
    seed: int,
    gas_model_name: str,
    m500_min: float,
    m500_max: float,
    halos_per_region: int,
    merger_fraction: float,
    substructure_fraction: float,
    contaminated_fraction: float,
    region_radius: float,
    box_size: float,
    main_m500: float | None = None,
    main_m500_min: float = 0.0,
) -> RegionPopulation:
    """Draw the halo population of a region from ``seed`` (masses and lengths in h^-1 units as in the config).

    The random stream is ``SeedSequence(seed, spawn_key=(0,))``; particles use other spawn keys.
    ``main_m500`` [h^-1 Msun] overrides the main halo's drawn z = 0 mass (benchmarks); ``main_m500_min`` > 0
    draws the main halo from the mass function above it (the others stay between the limits).
    """
    model = gas_model(gas_model_name)
    if halos_per_region < 1:
        raise ValueError(f"halos_per_region must be >= 1, got {halos_per_region!r}")
    if not box_size > 2.0 * region_radius > 0:
        raise ValueError(f"box_size ({box_size!r} ckpc/h) must exceed the region diameter (2 x {region_radius!r} ckpc/h)")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    h = cosmo.h
    fb = float(cosmo.Ob0 / cosmo.Om0)
    centre = rng.uniform(region_radius, box_size - region_radius, size=3)
    if main_m500_min > 0:
        drawn = [sample_m500_z0(main_m500_min, m500_max, 1, cosmo, rng),
                 sample_m500_z0(m500_min, m500_max, halos_per_region - 1, cosmo, rng)]
        masses = np.sort(np.concatenate(drawn))[::-1]
    else:
        masses = np.sort(sample_m500_z0(m500_min, m500_max, halos_per_region, cosmo, rng))[::-1]
    if main_m500 is not None:
        masses[0] = main_m500
    m_hosts = masses / h
    conc_factor = np.asarray(_conc_factor(rng, halos_per_region))
    c500 = concentration_500c(m_hosts, 0.0, cosmo) * conc_factor
    r500 = r500_from_m500(cosmo, m_hosts, 0.0)
    rvir = np.array([nfw_virial_radius_kpc(m, r, c, 0.0, cosmo) for m, r, c in zip(m_hosts, r500, c500)])
    alpha = np.clip(2.0 * WECHSLER_C1 / (c500 * rvir / r500), *ACCRETION_RATE_RANGE)
    rvir_h = rvir * h  # comoving kpc/h at z = 0
    if rvir_h[0] > region_radius:
        raise ValueError(f"region_radius {region_radius!r} ckpc/h is smaller than the main halo's virial radius ({rvir_h[0]:.0f})")

    halos: list[Halo] = []
    placed: list[tuple[np.ndarray, float]] = []
    for i in range(halos_per_region):
        contaminated = i > 0 and bool(rng.random() < contaminated_fraction)
        offset = np.zeros(3)
        if i > 0:
            offset, contaminated = _place_field_halo(rng, rvir_h[i], contaminated, region_radius, placed)
        placed.append((offset, rvir_h[i]))
        axes, rotation = draw_shape(rng)
        halos.append(
            Halo(
                index=0, role="main" if i == 0 else "field", host=0, m500_z0=float(m_hosts[i]), mass_ratio=1.0,
                accretion_rate=float(alpha[i]), conc_factor=float(conc_factor[i]), offset=offset,
                velocity=rng.normal(0.0, HOST_VELOCITY_KMS, 3), axes=axes, rotation=rotation,
                gas=draw_halo_gas(model, fb, rng), contaminated=contaminated,
            )
        )
    hosts = [replace(hh, index=k + 1) for k, hh in enumerate(halos)]
    extra: list[Halo] = []
    for host in hosts:
        if rng.random() < merger_fraction:
            direction = _unit_vector(rng)
            axes, rotation = draw_shape(rng)
            extra.append(
                Halo(
                    index=0, role="companion", host=host.index, m500_z0=0.0, mass_ratio=float(rng.uniform(0.1, 0.5)),
                    accretion_rate=host.accretion_rate, conc_factor=float(_conc_factor(rng)),
                    offset=direction * rng.uniform(0.5, 2.0), velocity=-direction * rng.uniform(0.5, 1.0),
                    axes=axes, rotation=rotation, gas=draw_halo_gas(model, fb, rng),
                )
            )
        n_sub = 1 + int(rng.poisson(2.0))
        fractions = substructure_fraction * rng.uniform(0.5, 1.5) * rng.dirichlet(np.ones(n_sub))
        for f in fractions[fractions > 0]:
            extra.append(
                Halo(
                    index=0, role="sub", host=host.index, m500_z0=0.0, mass_ratio=float(f),
                    accretion_rate=host.accretion_rate, conc_factor=float(_conc_factor(rng)),
                    offset=_unit_vector(rng) * rng.uniform(0.25, 1.0), velocity=rng.normal(0.0, 1.0 / np.sqrt(3.0), 3),
                    axes=np.ones(3), rotation=np.eye(3),
                    gas=HaloGas(
                        host.gas.pressure._replace(P0=host.gas.pressure.P0 * model.clumping), host.gas.density,
                        host.gas.fgas * model.clumping,
                    ),
                )
            )
    everything = hosts + [replace(e, index=len(hosts) + k + 1) for k, e in enumerate(extra)]
    return RegionPopulation(region, centre, float(region_radius), float(box_size), model.name, tuple(everything))


def _place_field_halo(
    rng: np.random.Generator, rvir: float, contaminated: bool, region_radius: float, placed: list[tuple[np.ndarray, float]]
) -> tuple[np.ndarray, bool]:
    """A comoving offset [kpc/h] from the region centre for a field halo of z = 0 virial radius ``rvir`` [ckpc/h].

    Uncontaminated halos go inside the region (INSIDE_MARGIN_RVIR from its boundary); contaminated ones,
    and those for which no room is left inside, across the boundary. Returns the offset and whether
    the halo is contaminated.
    """
    d_max = region_radius - INSIDE_MARGIN_RVIR * rvir
    for edge in (contaminated, True):
        for _ in range(MAX_PLACEMENT_TRIES if edge or d_max > 0 else 0):
            if edge:
                d = rng.uniform(region_radius - 0.7 * rvir, region_radius - 0.1 * rvir)
            else:
                d = d_max * rng.random() ** (1.0 / 3.0)
            offset = d * _unit_vector(rng)
            if all(np.linalg.norm(offset - o) >= HOST_SEPARATION_RVIR * (rvir + r) for o, r in placed):
                return offset, edge
    raise ValueError(
        f"could not place a field halo (Rvir {rvir:.0f} ckpc/h) in a region of radius {region_radius!r} ckpc/h "
        f"after {MAX_PLACEMENT_TRIES} tries; lower halos_per_region or raise region_radius"
    )


@dataclass(frozen=True, eq=False)
class HaloState:
    """A halo at one snapshot: model M500 [Msun], R500, NFW scale radius, virial and truncation radii [physical kpc],
    centre [physical kpc from the region centre] and bulk velocity [km/s]."""

    halo: Halo
    m500: float
    r500: float
    c500: float
    rvir: float
    truncation: float
    centre: np.ndarray
    velocity: np.ndarray

    @property
    def r_s(self) -> float:
        """NFW scale radius [physical kpc]."""
        return self.r500 / self.c500

    @property
    def v500(self) -> float:
        """Circular velocity at R500, sqrt(G M500 / R500) [km/s]."""
        return float(np.sqrt(G_KPC_KMS2_MSUN * self.m500 / self.r500))


def evolve(population: RegionPopulation, z: float, cosmo: FlatLambdaCDM, r_max_r500: float) -> tuple[HaloState, ...]:
    """The population at redshift ``z``: model masses, radii, positions; halos in the population's order.

    Hosts and companions are truncated at ``r_max_r500`` R500. A sub-halo at distance d from its host is
    truncated at its Jacobi radius d (m / 3 M_host(<d))^(1/3) (host NFW), at most its own R500.
    """
    h = cosmo.h
    halos = population.halos
    by_index = {hh.index: hh for hh in halos}
    m500 = np.empty(len(halos))
    for k, hh in enumerate(halos):
        host = by_index.get(hh.host, hh)
        m500[k] = host.m500_z0 * np.exp(-host.accretion_rate * z) * hh.mass_ratio
    c500 = concentration_500c(m500, z, cosmo) * np.array([hh.conc_factor for hh in halos])
    r500 = r500_from_m500(cosmo, m500, z)
    states: dict[int, HaloState] = {}
    for k, hh in enumerate(halos):
        if hh.role in ("main", "field"):
            centre = hh.offset / h / (1.0 + z)
            velocity = hh.velocity
        else:
            parent = states[hh.host]
            centre = parent.centre + hh.offset * parent.r500
            velocity = parent.velocity + hh.velocity * parent.v500
        if hh.role == "sub":
            parent = states[hh.host]
            d = float(np.linalg.norm(hh.offset)) * parent.r500
            mu = lambda y: np.log1p(y) - y / (1.0 + y)  # noqa: E731
            m_host_d = parent.m500 * mu(d / parent.r_s) / mu(parent.c500)
            truncation = min(d * np.cbrt(m500[k] / (3.0 * m_host_d)), r500[k])
            rvir = truncation
        else:
            truncation = r_max_r500 * r500[k]
            rvir = nfw_virial_radius_kpc(m500[k], r500[k], c500[k], z, cosmo)
        states[hh.index] = HaloState(hh, float(m500[k]), float(r500[k]), float(c500[k]), rvir, float(truncation), centre, velocity)
    return tuple(states[hh.index] for hh in halos)
