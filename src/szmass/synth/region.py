"""One synthetic region at one snapshot: particles in GADGET units and the AHF halo catalogue, written to files.

Randomness: the population is drawn from ``SeedSequence(seed, spawn_key=(0,))`` (see
:func:`szmass.synth.halos.draw_population`); the particles of snapshot ``snapshot`` from
``SeedSequence(seed, spawn_key=(1, snapshot))``, spawned into one child stream per mass component. The
same (config, seed, snapshot, redshift) gives byte-identical files.

Particles are kept inside the region sphere (the high-resolution region of a THE THREE HUNDRED
zoom); positions are rounded to float32 (as GADGET stores them) before smoothing lengths, densities
and the catalogue are computed, so the files are self-consistent.

The AHF catalogue is *measured* on the particles, as AHF does: spherical overdensity about the halo
centre, the outermost radius where the mean enclosed density is 500 or 200 rho_crit(z) (M500c, R500c,
M200c, R200c) or Delta_vir rho_crit(z) (Bryan & Norman 1998, colossus; Mvir, Rvir), interpolated log-linearly in
density between particle radii. Hosts use all particles; sub-halos (and companions whose centre lies
inside the host's Rvir) only their own particles (an idealised unbinding), and when their density
never falls to the threshold (tidally truncated sub-halos) the whole bound mass and its outermost
particle's radius are reported. fMhires is the fraction of the halo's NFW mass inside Rvir that lies
inside the region sphere (1 for halos wholly inside). Halos with fewer than 20 particles inside Rvir
are not listed (AHF's default); the others keep their ID at every snapshot. Other columns: npart,
n_gas and M_gas inside Rvir; VXc.. the mass-weighted mean velocity and sigV the 3D velocity dispersion
inside Rvir [km/s]; Vmax, Rmax the peak of sqrt(G M(<r) / r); com_offset the centre of mass's offset;
r2 the model NFW scale radius; cNFW = Rvir / r2; b, c the axis ratios and Ea*, Eb*, Ec* the unit
major, intermediate and minor axes of the model shape.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from astropy.cosmology import FlatLambdaCDM
from colossus.halo import mass_so

from szmass.constants import GAMMA_ADIABATIC, K_B_ERG_K, M_P_G, NE_FULLY_IONISED, mean_molecular_weight
from szmass.cosmology import rho_crit_msun_kpc3
from szmass.halos import overdensity_radius
from szmass.settings import known_keys
from szmass.synth.gasmodels import gas_model
from szmass.synth.halos import (
    G_KPC_KMS2_MSUN,
    HaloState,
    RegionPopulation,
    draw_population,
    evolve,
    use_colossus_cosmology,
)
from szmass.synth.particles import (
    Component,
    ParticleSample,
    background_components,
    halo_components,
    mean_matter_density,
    sample_component,
    sph_smoothing,
    subhalo_components,
)
from szmass.synth.profiles import mass_fraction_inside_sphere, nfw_mu

log = logging.getLogger(__name__)

SNAPSHOT_FORMATS = ("hdf5", "gadget1", "gadget2")
"""Formats :func:`generate_region_snapshot` writes (through ``szmass.sims.write_snapshot``)."""
MIN_PARTICLES_VMAX = 10
"""Vmax is searched outside the innermost this many particles (shot noise at the centre)."""
AHF_MIN_PARTICLES = 20
"""Halos with fewer particles inside Rvir are not listed (AHF's default minimum)."""


@dataclass(frozen=True)
class SynthConfig:
    """Configuration of the synthetic generator (masses [h^-1 Msun], lengths [comoving kpc/h]).

    ``main_m500_min`` > 0 draws each region's main halo from the mass function above it (THE THREE
    HUNDRED's regions are centred on clusters of M_vir > 8e14 h^-1 Msun, M500 of about 5e14); 0 draws it
    like the others, between ``m500_min`` and ``m500_max``.
    """

    gas_model: str = "gadget_x"
    gas_particle_mass: float = 2.36e8
    dm_particle_mass: float = 12.7e8
    m500_min: float = 1.0e14
    m500_max: float = 2.0e15
    main_m500_min: float = 0.0
    halos_per_region: int = 3
    region_radius: float = 15000.0
    r_max_r500: float = 5.0
    n_neighbours: int = 64
    merger_fraction: float = 0.2
    substructure_fraction: float = 0.05
    contaminated_fraction: float = 0.1
    box_size: float = 1.0e6

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> "SynthConfig":
        """Build from a config mapping; unknown keys or invalid values raise ValueError naming the key."""
        d = known_keys(d, cls, "synthetic config")
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            kind = type(getattr(cls, key))
            try:
                if kind is int and float(value) != int(value):
                    raise ValueError
                kwargs[key] = kind(value) if kind is not int else int(value)
            except (TypeError, ValueError):
                raise ValueError(f"synthetic config: {key} = {value!r} is not a valid {kind.__name__}") from None
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ValueError naming the first out-of-range field."""
        gas_model(self.gas_model)
        positive = ("gas_particle_mass", "dm_particle_mass", "m500_min", "region_radius", "box_size", "r_max_r500")
        for key in positive:
            if not getattr(self, key) > 0:
                raise ValueError(f"synthetic config: {key} must be > 0, got {getattr(self, key)!r}")
        if not self.m500_max > self.m500_min:
            raise ValueError(f"synthetic config: m500_max ({self.m500_max!r}) must exceed m500_min ({self.m500_min!r})")
        if not (self.main_m500_min == 0.0 or self.m500_min <= self.main_m500_min < self.m500_max):
            raise ValueError(f"synthetic config: main_m500_min ({self.main_m500_min!r}) must be 0 (off) or in "
                             f"[m500_min, m500_max) = [{self.m500_min!r}, {self.m500_max!r})")
        if self.halos_per_region < 1:
            raise ValueError(f"synthetic config: halos_per_region must be >= 1, got {self.halos_per_region!r}")
        if self.n_neighbours < 2:
            raise ValueError(f"synthetic config: n_neighbours must be >= 2, got {self.n_neighbours!r}")
        if self.r_max_r500 < 1.0:
            raise ValueError(f"synthetic config: r_max_r500 must be >= 1 (R500 lies inside the halo), got {self.r_max_r500!r}")
        for key in ("merger_fraction", "contaminated_fraction"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"synthetic config: {key} must be in [0, 1], got {getattr(self, key)!r}")
        if not 0.0 <= self.substructure_fraction < 0.5:
            raise ValueError(f"synthetic config: substructure_fraction must be in [0, 0.5), got {self.substructure_fraction!r}")
        if not self.box_size > 2.0 * self.region_radius:
            raise ValueError(f"synthetic config: box_size {self.box_size!r} must exceed 2 x region_radius {self.region_radius!r}")


def check_redshift(redshift: float) -> float:
    """The snapshot redshift as a float; ValueError unless 0 < z <= 1."""
    z = float(redshift)
    if not 0.0 < z <= 1.0:
        raise ValueError(f"synthetic snapshot: redshift must be in (0, 1], got {redshift!r}")
    return z


def population_for(cfg: SynthConfig, cosmo: FlatLambdaCDM, *, region: int, seed: int, main_m500: float | None = None) -> RegionPopulation:
    """The region's halo population for ``cfg`` (see :func:`szmass.synth.halos.draw_population`)."""
    return draw_population(
        cosmo, region=region, seed=seed, gas_model_name=cfg.gas_model, m500_min=cfg.m500_min, m500_max=cfg.m500_max,
        main_m500_min=cfg.main_m500_min, halos_per_region=cfg.halos_per_region, merger_fraction=cfg.merger_fraction,
        substructure_fraction=cfg.substructure_fraction, contaminated_fraction=cfg.contaminated_fraction,
        region_radius=cfg.region_radius, box_size=cfg.box_size, main_m500=main_m500,
    )


def region_components(states: tuple[HaloState, ...], region_radius_kpc: float, z: float, cosmo: FlatLambdaCDM) -> list[Component]:
    """All mass components of a region at redshift ``z``: background, then each halo's gas and dark matter."""
    rho_bg = mean_matter_density(z, cosmo)
    subs: dict[int, list[tuple[HaloState, list[Component]]]] = {}
    for s in states:
        if s.halo.role == "sub":
            subs.setdefault(s.halo.host, []).append((s, subhalo_components(s, z, cosmo)))
    comps = background_components(region_radius_kpc, z, cosmo)
    for s in states:
        if s.halo.role != "sub":
            comps += halo_components(s, subs.get(s.halo.index, []), z, cosmo, rho_bg)
            comps += [c for sub, cs in subs.get(s.halo.index, []) for c in cs]
    return comps


def sample_region(
    comps: list[Component], *, gas_mass: float, dm_mass: float, region_radius_kpc: float, seed: int, snapshot: int
) -> tuple[ParticleSample, ParticleSample]:
    """Gas and dark-matter particles [physical kpc from the region centre] of all components, inside the region sphere.

    Masses in Msun. Component k draws from child k of ``SeedSequence(seed, spawn_key=(1, snapshot))``.
    """
    streams = np.random.SeedSequence(seed, spawn_key=(1, int(snapshot))).spawn(len(comps))
    gas: list[ParticleSample] = []
    dm: list[ParticleSample] = []
    for comp, ss in zip(comps, streams):
        p = sample_component(comp, gas_mass if comp.kind == "gas" else dm_mass, np.random.default_rng(ss))
        keep = np.einsum("ij,ij->i", p.pos, p.pos) <= region_radius_kpc**2
        p = ParticleSample(p.pos[keep], p.vel[keep], None if p.temperature is None else p.temperature[keep], p.owner[keep])
        (gas if comp.kind == "gas" else dm).append(p)

    def join(parts: list[ParticleSample]) -> ParticleSample:
        t = [p.temperature for p in parts]
        return ParticleSample(
            np.concatenate([p.pos for p in parts]),
            np.concatenate([p.vel for p in parts]),
            None if t[0] is None else np.concatenate(cast(list[np.ndarray], t)),
            np.concatenate([p.owner for p in parts]),
        )

    return join(gas), join(dm)


def internal_energy_kms2(temperature_k: np.ndarray, ne: float = NE_FULLY_IONISED) -> np.ndarray:
    """GADGET internal energy per unit mass u [(km/s)^2] of gas at T [K]: u = k T / ((gamma - 1) mu m_p)."""
    mu = mean_molecular_weight(ne)
    return K_B_ERG_K * np.asarray(temperature_k) / ((GAMMA_ADIABATIC - 1.0) * mu * M_P_G) / 1.0e10


@dataclass(frozen=True, eq=False)
class RegionSnapshot:
    """A generated snapshot: GADGET-unit particle dicts (``gas``, ``dm``), the AHF table and the model states."""

    redshift: float
    gas: dict[str, np.ndarray]
    dm: dict[str, np.ndarray]
    halos: pd.DataFrame
    states: tuple[HaloState, ...]
    population: RegionPopulation


def sample_snapshot(
    cfg: SynthConfig, cosmo: FlatLambdaCDM, population: RegionPopulation, *, snapshot: int, redshift: float, seed: int
) -> tuple[tuple[HaloState, ...], ParticleSample, ParticleSample]:
    """The model states and the gas and dark-matter particles of ``population`` at ``redshift`` (no smoothing).

    Positions in physical kpc from the region centre, masses ``cfg``'s particle masses (h^-1 Msun in the config).
    """
    h = float(cosmo.h)
    region_kpc = population.radius / (h * (1.0 + redshift))
    states = evolve(population, redshift, cosmo, cfg.r_max_r500)
    comps = region_components(states, region_kpc, redshift, cosmo)
    gas, dm = sample_region(
        comps, gas_mass=cfg.gas_particle_mass / h, dm_mass=cfg.dm_particle_mass / h,
        region_radius_kpc=region_kpc, seed=seed, snapshot=snapshot,
    )
    return states, gas, dm


def build_region_snapshot(
    cfg: SynthConfig, cosmo: FlatLambdaCDM, population: RegionPopulation, *, snapshot: int, redshift: float, seed: int
) -> RegionSnapshot:
    """Generate one snapshot of ``population`` in memory (GADGET units, AHF catalogue); nothing is written."""
    z = check_redshift(redshift)
    h = float(cosmo.h)
    to_box = h * (1.0 + z)  # physical kpc -> comoving kpc/h
    states, gas, dm = sample_snapshot(cfg, cosmo, population, snapshot=snapshot, redshift=z, seed=seed)
    log.info("region %d, z = %.3f: %d gas and %d dark-matter particles from %d halos; smoothing",
             population.region, z, len(gas.pos), len(dm.pos), len(states))
    gas_pos = (population.centre + gas.pos * to_box).astype(np.float32)
    dm_pos = (population.centre + dm.pos * to_box).astype(np.float32)
    n_gas, n_dm = len(gas_pos), len(dm_pos)
    gas_mass = np.full(n_gas, cfg.gas_particle_mass / 1.0e10, dtype=np.float32)
    hsml, rho = sph_smoothing(gas_pos.astype(np.float64), gas_mass.astype(np.float64), cfg.n_neighbours)
    id_type = np.uint32 if n_gas + n_dm < 2**32 else np.uint64
    vel_factor = np.sqrt(1.0 + z)  # GADGET velocities are v_peculiar / sqrt(a)
    assert gas.temperature is not None  # gas samples carry temperatures
    gas_dict = {
        "POS": gas_pos,
        "VEL": (gas.vel * vel_factor).astype(np.float32),
        "ID": np.arange(1, n_gas + 1, dtype=id_type),
        "MASS": gas_mass,
        "U": internal_energy_kms2(gas.temperature).astype(np.float32),
        "RHO": rho.astype(np.float32),
        "NE": np.full(n_gas, NE_FULLY_IONISED, dtype=np.float32),
        "NH": np.zeros(n_gas, dtype=np.float32),  # collisionally ionised: neutral fraction ~ 0 at T >= 1e5 K
        "HSML": hsml.astype(np.float32),
    }
    dm_dict = {
        "POS": dm_pos,
        "VEL": (dm.vel * vel_factor).astype(np.float32),
        "ID": np.arange(n_gas + 1, n_gas + n_dm + 1, dtype=id_type),
        "MASS": np.full(n_dm, cfg.dm_particle_mass / 1.0e10, dtype=np.float32),
    }
    log.info("region %d, z = %.3f: measuring the halo catalogue", population.region, z)
    catalogue = measure_catalogue(
        population, states, z, cosmo,
        pos=(np.concatenate([gas_pos, dm_pos]).astype(np.float64) - population.centre) / to_box,
        mass=np.concatenate([np.full(n_gas, cfg.gas_particle_mass), np.full(n_dm, cfg.dm_particle_mass)]) / h,
        vel=np.concatenate([gas.vel, dm.vel]),
        owner=np.concatenate([gas.owner, dm.owner]),
        n_gas=n_gas,
    )
    return RegionSnapshot(z, gas_dict, dm_dict, catalogue, states, population)


@dataclass(frozen=True)
class _Measured:
    m500: float
    r500: float
    m200: float
    r200: float
    mvir: float
    rvir: float
    npart: int
    n_gas: int
    m_gas: float
    velocity: np.ndarray
    sigma_v: float
    com_offset: float
    vmax: float
    rmax: float


def _measure(dpos: np.ndarray, mass: np.ndarray, vel: np.ndarray, is_gas: np.ndarray, rho_c: float, delta_vir: float,
             bound: bool) -> _Measured | None:
    """Spherical-overdensity properties of particles at ``dpos`` [kpc] from a centre; None if the sphere is too small.

    Overdensities 500, 200 and ``delta_vir`` times ``rho_c`` [Msun/kpc^3]. ``bound``: the particles are the
    halo's own, so a density that never falls to a threshold means the whole set (truncated sub-halo)
    rather than a sphere to enlarge.
    """
    empty = _Measured(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0.0, np.zeros(3), 0.0, 0.0, 0.0, 0.0)
    if len(dpos) == 0:
        return empty if bound else None
    r = np.sqrt(np.einsum("ij,ij->i", dpos, dpos))
    order = np.argsort(r, kind="stable")
    r, m_enc = r[order], np.cumsum(mass[order])
    ok = r > 0
    r, m_enc = r[ok], m_enc[ok]
    idx = order[ok]
    radii = [overdensity_radius(r, m_enc, delta * rho_c) for delta in (500.0, 200.0, delta_vir)]
    if any(x is None for x in radii) and not bound:
        return None
    so = []  # (M, R) per overdensity; a bound set whose density never falls to one: all of it
    for delta, radius in zip((500.0, 200.0, delta_vir), radii, strict=True):
        radius = r[-1] if radius is None else radius
        so.append((m_enc[-1] if radius >= r[-1] else 4.0 / 3.0 * np.pi * radius**3 * (delta * rho_c), radius))
    (m500, r500), (m200, r200), (mvir, rvir) = so
    n_in = int(np.searchsorted(r, rvir, side="right"))
    inside = idx[:n_in]
    if n_in == 0:
        return empty
    w = mass[inside]
    v_mean = np.average(vel[inside], axis=0, weights=w)
    sigma_v = float(np.sqrt(np.average(np.sum((vel[inside] - v_mean) ** 2, axis=1), weights=w)))
    com = np.average(dpos[inside], axis=0, weights=w)
    vc = np.sqrt(G_KPC_KMS2_MSUN * m_enc[:n_in] / r[:n_in])
    k = MIN_PARTICLES_VMAX + int(np.argmax(vc[MIN_PARTICLES_VMAX:])) if n_in > MIN_PARTICLES_VMAX else int(np.argmax(vc))
    return _Measured(
        float(m500), float(r500), float(m200), float(r200), float(mvir), float(rvir), n_in,
        int(np.count_nonzero(is_gas[inside])), float(np.sum(w[is_gas[inside]])), v_mean, sigma_v, float(np.linalg.norm(com)), float(vc[k]), float(r[k]),
    )


def measure_catalogue(
    population: RegionPopulation, states: tuple[HaloState, ...], z: float, cosmo: FlatLambdaCDM, *,
    pos: np.ndarray, mass: np.ndarray, vel: np.ndarray, owner: np.ndarray, n_gas: int,
) -> pd.DataFrame:
    """The AHF table of the region (AHF units: h^-1 Msun, comoving kpc/h, km/s) measured on the particles.

    Halos with fewer than :data:`AHF_MIN_PARTICLES` particles inside Rvir are left out.

    ``pos`` [physical kpc from the region centre], ``mass`` [Msun], ``vel`` [km/s], ``owner`` (halo index, 0 =
    background) of all particles, gas first (``n_gas`` of them).
    """
    use_colossus_cosmology(cosmo)
    h = float(cosmo.h)
    to_box = h * (1.0 + z)
    rho_c = rho_crit_msun_kpc3(cosmo, z)
    delta_vir = float(mass_so.deltaVir(z))
    is_gas = np.arange(len(pos)) < n_gas
    region_kpc = population.radius / to_box
    by_owner = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[by_owner], np.arange(len(states) + 2))
    measured: dict[int, _Measured] = {}
    host_of: dict[int, int] = {}
    for s in states:  # hosts precede their companions and sub-halos
        hh = s.halo
        inner = hh.role == "sub" or (
            hh.role == "companion" and np.linalg.norm(s.centre - states[hh.host - 1].centre) < measured[hh.host].rvir
        )
        host_of[hh.index] = hh.host if inner else 0
        if inner:
            sel = by_owner[bounds[hh.index]:bounds[hh.index + 1]]
            res = _measure(pos[sel] - s.centre, mass[sel], vel[sel], is_gas[sel], rho_c, delta_vir, bound=True)
        else:
            radius = 3.0 * s.rvir
            while True:
                sel = _within(pos, s.centre, radius)
                res = _measure(pos[sel] - s.centre, mass[sel], vel[sel], is_gas[sel], rho_c, delta_vir, bound=False)
                if res is not None or radius > 2.0 * region_kpc:
                    break
                radius *= 2.0
        if res is None:
            raise RuntimeError(f"halo {hh.index}: mean density above Delta_vir rho_crit across the whole region")
        measured[hh.index] = res
    listed = {i for i, res in measured.items() if res.npart >= AHF_MIN_PARTICLES}
    rows = []
    for s in states:
        hh, res = s.halo, measured[s.halo.index]
        if hh.index not in listed:
            continue
        nfw_r = np.geomspace(1e-3 * s.r_s, max(res.rvir, 2e-3 * s.r_s), 512)
        fmhires = mass_fraction_inside_sphere(nfw_r, nfw_mu(nfw_r / s.r_s), float(np.linalg.norm(s.centre)), region_kpc)
        centre_box = population.centre + s.centre * to_box
        rows.append({
            "ID": population.halo_id(hh.index),
            "hostHalo": population.halo_id(host_of[hh.index]) if host_of[hh.index] in listed else -1,
            "numSubStruct": sum(1 for i, v in host_of.items() if v == hh.index and i in listed),
            "Mvir": res.mvir * h, "npart": res.npart,
            "Xc": centre_box[0], "Yc": centre_box[1], "Zc": centre_box[2],
            "VXc": res.velocity[0], "VYc": res.velocity[1], "VZc": res.velocity[2],
            "Rvir": res.rvir * to_box, "Rmax": res.rmax * to_box, "r2": s.r_s * to_box,
            "com_offset": res.com_offset * to_box, "Vmax": res.vmax, "sigV": res.sigma_v,
            "b": hh.axes[1] / hh.axes[0], "c": hh.axes[2] / hh.axes[0],
            **{f"E{ax}{comp}": hh.rotation[k, j] for j, ax in enumerate("abc") for k, comp in enumerate("xyz")},
            "fMhires": round(fmhires, 6), "cNFW": res.rvir / s.r_s,
            "n_gas": res.n_gas, "M_gas": res.m_gas * h,
            "M500c": res.m500 * h, "R500c": res.r500 * to_box, "M200c": res.m200 * h, "R200c": res.r200 * to_box,
        })
    return pd.DataFrame(rows)


def _within(pos: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Indices of positions within ``radius`` of ``centre`` (a bounding-box cut first, then the sphere)."""
    box = np.all(np.abs(pos - centre) <= radius, axis=1)
    idx = np.nonzero(box)[0]
    d = pos[idx] - centre
    return idx[np.einsum("ij,ij->i", d, d) <= radius**2]


def generate_region_snapshot(
    cfg: SynthConfig,
    cosmo: FlatLambdaCDM,
    *,
    region: int,
    snapshot: int,
    redshift: float,
    seed: int,
    snapshot_path: str | os.PathLike[str],
    ahf_path: str | os.PathLike[str],
    fmt: Literal["hdf5", "gadget1", "gadget2"] = "gadget2",
) -> pd.DataFrame:
    """Generate region ``region`` at snapshot ``snapshot`` (0 < redshift <= 1); write the snapshot and the AHF file.

    Returns the AHF table (AHF units). Files are written through :mod:`szmass.sims`.
    """
    from szmass.sims import GadgetHeader, write_ahf_halos, write_snapshot

    check_redshift(redshift)
    if fmt not in SNAPSHOT_FORMATS:
        raise ValueError(f"synthetic snapshot: fmt must be one of {SNAPSHOT_FORMATS}, got {fmt!r}")
    population = population_for(cfg, cosmo, region=region, seed=seed)
    snap = build_region_snapshot(cfg, cosmo, population, snapshot=snapshot, redshift=redshift, seed=seed)
    header = GadgetHeader(
        redshift=snap.redshift, box_size=cfg.box_size, h=float(cosmo.h), omega_m=float(cosmo.Om0),
        omega_lambda=float(cosmo.Ode0), flag_cooling=1,
    )
    write_snapshot(snapshot_path, header, snap.gas, snap.dm, fmt=fmt)
    write_ahf_halos(ahf_path, snap.halos)
    return snap.halos
