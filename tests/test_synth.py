"""Tests of the synthetic THE THREE HUNDRED generator (szmass.synth): profiles, particles, files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.spatial.transform import Rotation

from szmass.constants import K_B_ERG_K, K_B_KEV_K, KPC_CM, M_P_G, ME_C2_ERG, MPC_CM, MSUN_G, NE_FULLY_IONISED, SIGMA_T_CM2, X_H
from szmass.cosmology import make_cosmology, rho_crit_msun_kpc3
from szmass.synth import SynthConfig, build_region_snapshot, generate_region_snapshot, population_for
from szmass.synth.calibration import scatter_budget, ym_fit, ym_sample
from szmass.synth.gasmodels import GAS_MODELS, draw_halo_gas, gas_model, mean_halo_gas
from szmass.synth.halos import Halo, RegionPopulation, evolve
from szmass.synth.particles import halo_components, mean_matter_density, sample_component, sph_smoothing
from szmass.synth.profiles import (
    ARNAUD2010,
    GNFWParams,
    electron_pressure_kev_cm3,
    gnfw_pressure,
    gnfw_volume_integral,
    nfw_mu,
    p500_kev_cm3,
    y_sph_mpc2,
)

COSMO = make_cosmology()
SMALL = {
    "gas_particle_mass": 2.0e10,
    "dm_particle_mass": 1.0e11,
    "halos_per_region": 2,
    "region_radius": 7000.0,
    "n_neighbours": 32,
}
"""A coarse region that generates in about a second."""
SEED = 4242


def _electrons_kt_erg(ne, mass_msun, temperature_k):
    """N_e k T [erg] of gas particles (electron abundance per H, mass [Msun], T [K])."""
    return ne * X_H * mass_msun * MSUN_G / M_P_G * K_B_ERG_K * temperature_k


# --- profiles -------------------------------------------------------------------------------------


def test_p500_and_y_sph_match_arnaud_2010():
    """At h = 0.7, Y_sph(R500) of a 3e14 Msun cluster is 2.925e-5 I(1) E(z)^(2/3) Mpc^2, I(1) = 0.6145 (Arnaud eq. 25)."""
    cosmo70 = make_cosmology({"H0": 70.0})
    for z in (0.05, 0.5):
        ez = cosmo70.efunc(z)
        assert p500_kev_cm3(3e14, z, cosmo70) == pytest.approx(1.65e-3 * ez ** (8 / 3), rel=1e-12)
        y = y_sph_mpc2(3e14, z, ARNAUD2010, cosmo70)
        assert y / ez ** (2 / 3) == pytest.approx(2.925e-5 * 0.6145, rel=2e-3)  # I(1) is quoted to 4 digits


def test_y_sph_of_nfw_shaped_pressure_is_analytic():
    """GNFW with (gamma, alpha, beta) = (1, 1, 3) is NFW: its volume integral is 4 pi mu(c x) / c^3."""
    params = GNFWParams(P0=1.0, c500=2.5, gamma=1.0, alpha=1.0, beta=3.0)
    for x_max in (1.0, 3.0):
        y = y_sph_mpc2(5e14, 0.3, params, COSMO, r_max_r500=x_max)
        r500_cm = float(np.cbrt(3 * 5e14 / (4 * np.pi * 500 * rho_crit_msun_kpc3(COSMO, 0.3)))) * KPC_CM
        pnorm = p500_kev_cm3(5e14, 0.3, COSMO) * (COSMO.H0.value / 70) ** -1.5
        expected = 6.6524587e-25 / 510.999 * pnorm * r500_cm**3 * 4 * np.pi * nfw_mu(2.5 * x_max) / 2.5**3 / MPC_CM**2
        assert y == pytest.approx(expected, rel=1e-4)  # constants to 6 digits


def test_gnfw_shape_limits():
    """Inner and outer power laws: P ∝ x^-gamma for c500 x << 1 and x^-beta for c500 x >> 1."""
    p = ARNAUD2010
    x = np.array([1e-6, 2e-6, 1e5, 2e5])
    f = gnfw_pressure(x, *p)
    assert np.log(f[1] / f[0]) / np.log(2) == pytest.approx(-p.gamma, abs=1e-3)
    assert np.log(f[3] / f[2]) / np.log(2) == pytest.approx(-p.beta, abs=1e-3)


def test_gas_model_scatter_is_seeded_and_sized():
    model = gas_model("gadget_x")
    a = [draw_halo_gas(model, 0.157, np.random.default_rng(s)) for s in range(400)]
    b = [draw_halo_gas(model, 0.157, np.random.default_rng(s)) for s in range(400)]
    assert a == b
    # Y500 (the pressure's volume integral inside R500) scatters by log_y500 about the mean profile's ...
    ly = np.log10([gnfw_volume_integral(g.pressure) / gnfw_volume_integral(model.pressure) for g in a])
    assert np.std(ly) == pytest.approx(model.scatter.log_y500, rel=0.15)  # 400 draws: ~4% error on a std
    assert np.mean(ly) == pytest.approx(0.0, abs=0.005)
    # ... while the shape varies freely, P0 compensating it (P0 rises with c500, the degeneracy of fitted profiles)
    lc = np.log10([g.pressure.c500 for g in a])
    assert np.std(lc) == pytest.approx(model.scatter.log_c500, rel=0.15)
    assert np.corrcoef(lc, np.log10([g.pressure.P0 for g in a]))[0, 1] > 0.5
    with pytest.raises(ValueError, match="unknown gas model 'nope'.*gadget_music.*gadget_x.*gizmo_simba"):
        gas_model("nope")


# --- particles of one spherical halo ---------------------------------------------------------------


def _single_halo_state(m500_h: float, z: float, gas_name: str = "gadget_x"):
    """A spherical host without sub-halos, model M500 = m500_h [h^-1 Msun] at z, the model's mean gas."""
    h = COSMO.h
    halo = Halo(
        index=1, role="main", host=0, m500_z0=m500_h / h * np.exp(1.5 * z), mass_ratio=1.0, accretion_rate=1.5,
        conc_factor=1.0, offset=np.zeros(3), velocity=np.zeros(3), axes=np.ones(3), rotation=np.eye(3),
        gas=mean_halo_gas(GAS_MODELS[gas_name], float(COSMO.Ob0 / COSMO.Om0)),
    )
    pop = RegionPopulation(1, np.full(3, 5e5), 15000.0, 1e6, gas_name, (halo,))
    (state,) = evolve(pop, z, COSMO, r_max_r500=5.0)
    return state


@pytest.fixture(scope="module")
def spherical_halo():
    """~1.2e5 gas and 1.9e5 dark-matter particles of a 5e14 h^-1 Msun halo at z = 0.2."""
    z = 0.2
    state = _single_halo_state(5e14, z)
    rho_bg = mean_matter_density(z, COSMO)
    gas_c, dm_c = halo_components(state, [], z, COSMO, rho_bg)
    rng = np.random.default_rng(7)
    m_gas, m_dm = gas_c.total_mass / 1.2e5, dm_c.total_mass / 2.0e5
    return state, z, rho_bg, sample_component(gas_c, m_gas, rng), m_gas, sample_component(dm_c, m_dm, rng), m_dm


def test_particle_pressure_profile_matches_gnfw(spherical_halo):
    """Thermal energy per spherical shell / shell volume = the GNFW's shell average within 6% (0.1 - 3 R500)."""
    state, z, _, gas, m_gas, _, _ = spherical_halo
    r = np.linalg.norm(gas.pos, axis=1) / state.r500
    ekt_kev = _electrons_kt_erg(NE_FULLY_IONISED, m_gas, gas.temperature) * K_B_KEV_K / K_B_ERG_K
    edges = np.geomspace(0.1, 3.0, 9)
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (r >= lo) & (r < hi)
        assert sel.sum() > 1000
        vol_cm3 = 4 / 3 * np.pi * (hi**3 - lo**3) * (state.r500 * KPC_CM) ** 3
        measured = ekt_kev[sel].sum() / vol_cm3
        integral, _ = quad(lambda x: 4 * np.pi * x * x * electron_pressure_kev_cm3(x, state.m500, z, state.halo.gas.pressure, COSMO),
                           lo, hi)
        expected = integral / (4 / 3 * np.pi * (hi**3 - lo**3))
        assert measured == pytest.approx(expected, rel=0.06), (lo, hi)


def test_particle_y500_matches_analytic(spherical_halo):
    """sigma_T / (m_e c^2) sum N_e k T inside R500 equals y_sph_mpc2 within 2% (1e5 particles: ~0.5% noise)."""
    state, z, _, gas, m_gas, _, _ = spherical_halo
    inside = np.linalg.norm(gas.pos, axis=1) < state.r500
    y = SIGMA_T_CM2 / ME_C2_ERG * _electrons_kt_erg(NE_FULLY_IONISED, m_gas, gas.temperature[inside]).sum() / MPC_CM**2
    assert y == pytest.approx(y_sph_mpc2(state.m500, z, state.halo.gas.pressure, COSMO), rel=0.02)


def test_particle_mass_inside_r500_is_m500(spherical_halo):
    """Gas + dark matter + mean background inside R500 = M500 within 1.5% (Poisson: 0.3%), and f_gas as drawn."""
    state, _, rho_bg, gas, m_gas, dm, m_dm = spherical_halo
    n_gas = np.count_nonzero(np.linalg.norm(gas.pos, axis=1) < state.r500)
    n_dm = np.count_nonzero(np.linalg.norm(dm.pos, axis=1) < state.r500)
    total = n_gas * m_gas + n_dm * m_dm + rho_bg * 4 / 3 * np.pi * state.r500**3
    assert total == pytest.approx(state.m500, rel=0.015)
    assert n_gas * m_gas / state.m500 == pytest.approx(state.halo.gas.fgas, rel=0.015)


def test_spherical_overdensity_of_particles_recovers_model_m500(spherical_halo):
    """SO M500 of the sampled gas + dark matter equals the model M500 within 3% (~1e5 particles inside R500)."""
    state, z, _, gas, m_gas, dm, m_dm = spherical_halo
    pos = np.concatenate([gas.pos, dm.pos])
    mass = np.concatenate([np.full(len(gas.pos), m_gas), np.full(len(dm.pos), m_dm)])
    m500 = _so_m500(pos, mass, np.zeros(3), 500 * rho_crit_msun_kpc3(COSMO, z))
    assert m500 == pytest.approx(state.m500, rel=0.03)


def test_triaxial_halo_mass_within_ellipsoidal_r500():
    """A triaxial halo holds M500 inside ellipsoidal radius R500 (volume-preserving axes); its long axis is as drawn."""
    z = 0.4
    state = _single_halo_state(3e14, z)
    axes = np.array([1.5, 1.0, 1.0 / 1.5])
    rotation = Rotation.from_euler("zyx", [0.3, -0.7, 1.1]).as_matrix()
    halo = replace(state.halo, axes=axes, rotation=rotation)
    state = replace(state, halo=halo)
    rho_bg = mean_matter_density(z, COSMO)
    rng = np.random.default_rng(11)
    inside = 0.0
    all_pos = []
    for comp in halo_components(state, [], z, COSMO, rho_bg):
        m = comp.total_mass / 6e4
        p = sample_component(comp, m, rng)
        local = (p.pos - state.centre) @ rotation / axes  # principal frame, then undo the stretch
        inside += m * np.count_nonzero(np.linalg.norm(local, axis=1) < state.r500)
        all_pos.append(p.pos[np.linalg.norm(p.pos, axis=1) < state.r500])
    assert inside + rho_bg * 4 / 3 * np.pi * state.r500**3 == pytest.approx(state.m500, rel=0.015)
    pts = np.concatenate(all_pos)
    eigval, eigvec = np.linalg.eigh(pts.T @ pts)
    assert abs(eigvec[:, -1] @ rotation[:, 0]) > 0.99  # the largest second moment lies along the major axis


def _so_m500(pos, mass, centre, threshold):
    """SO mass: the outermost radius where the mean enclosed density is ``threshold`` (log-linear in density)."""
    r = np.linalg.norm(pos - centre, axis=1)
    order = np.argsort(r)
    r, m = r[order], np.cumsum(mass[order])
    dens = m / (4 / 3 * np.pi * r**3)
    i = np.nonzero(dens >= threshold)[0][-1]
    f = np.log(dens[i] / threshold) / np.log(dens[i] / dens[i + 1])
    r500 = r[i] * (r[i + 1] / r[i]) ** f
    return 4 / 3 * np.pi * r500**3 * threshold


def test_sph_smoothing_uniform_cube():
    """hsml encloses n_neighbours particles; densities match a brute-force Wendland C4 sum and the mean density.

    Without the self-contribution, the estimate is unbiased for Poisson particles: E = (N - 1) m / V_h ~ rho.
    """
    rng = np.random.default_rng(3)
    n, k = 40000, 48
    pos = rng.random((n, 3)) * 100.0
    mass = np.full(n, 2.5)
    hsml, rho = sph_smoothing(pos, mass, n_neighbours=k, chunk=7000)
    for i in rng.choice(n, 20, replace=False):
        d = np.linalg.norm(pos - pos[i], axis=1)
        assert np.count_nonzero(d <= hsml[i]) == k
        q = d[(d < hsml[i]) & (d > 0)] / hsml[i]  # neighbours without the particle itself
        w = 495 / (32 * np.pi) * (1 - q) ** 6 * (1 + 6 * q + 35 / 3 * q**2) / hsml[i] ** 3
        assert rho[i] == pytest.approx(np.sum(2.5 * w), rel=1e-10)
    interior = np.all((pos > 15) & (pos < 85), axis=1)
    assert np.median(rho[interior]) == pytest.approx(n * 2.5 / 100.0**3, rel=0.05)
    with pytest.raises(ValueError, match="at least n_neighbours"):
        sph_smoothing(pos[:10], mass[:10], n_neighbours=k)


# --- whole regions -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_region():
    """One coarse region with a 6e14 h^-1 Msun main halo at two snapshots (z = 0.2 and 0.6)."""
    cfg = SynthConfig.from_mapping(SMALL)
    pop = population_for(cfg, COSMO, region=3, seed=SEED, main_m500=6e14)
    snaps = {z: build_region_snapshot(cfg, COSMO, pop, snapshot=s, redshift=z, seed=SEED) for s, z in ((120, 0.2), (100, 0.6))}
    return cfg, pop, snaps


@pytest.mark.parametrize("delta", [500, 200])
def test_catalogue_so_masses_consistent_with_delta_rho_crit(small_region, delta: int):
    _, _, snaps = small_region
    h = COSMO.h
    for z, snap in snaps.items():
        df = snap.halos
        hosts = df[df["hostHalo"] == -1]
        r_kpc = hosts[f"R{delta}c"].to_numpy() / h / (1 + z)
        m_expected = 4 / 3 * np.pi * delta * rho_crit_msun_kpc3(COSMO, z) * r_kpc**3
        np.testing.assert_allclose(hosts[f"M{delta}c"].to_numpy() / h, m_expected, rtol=1e-9)


def test_catalogue_masses_ordered_by_overdensity(small_region):
    """Mvir >= M200c >= M500c (Delta_vir < 200 < 500), strictly for hosts; likewise the radii. Equal only for
    tidally truncated sub-halos, whose density never falls to 200 rho_crit (their whole bound mass)."""
    _, _, snaps = small_region
    for snap in snaps.values():
        df = snap.halos
        hosts = df[df["hostHalo"] == -1]
        assert np.all(df["Mvir"] >= df["M200c"]) and np.all(df["M200c"] >= df["M500c"])
        assert np.all(df["Rvir"] >= df["R200c"]) and np.all(df["R200c"] >= df["R500c"])
        assert np.all(hosts["M200c"] > hosts["M500c"]) and np.all(hosts["R200c"] > hosts["R500c"])
        # an NFW host of c500 ~ 2-4: M200 / M500 ~ 1.3-1.6
        assert np.all((hosts["M200c"] / hosts["M500c"] > 1.15) & (hosts["M200c"] / hosts["M500c"] < 2.0))


def test_substructure_listed_with_its_host(small_region):
    """Sub-halos name their host (hostHalo); hosts count them (numSubStruct); IDs are region * 1e6 + index."""
    _, pop, snaps = small_region
    by_id = {pop.halo_id(hh.index): hh for hh in pop.halos}
    for snap in snaps.values():
        df = snap.halos.set_index("ID")
        assert set(df.index) <= set(by_id) and np.all(df["npart"] >= 20)
        assert {pop.halo_id(hh.index) for hh in pop.halos if hh.role in ("main", "field")} <= set(df.index)
        assert any(by_id[i].role == "sub" for i in df.index)
        for i, row in df.iterrows():
            hh = by_id[i]
            if hh.role == "sub":
                host_id = pop.halo_id(hh.host)
                assert row["hostHalo"] == host_id
                assert 0 < row["Mvir"] < 0.2 * df.loc[host_id, "Mvir"]
            elif hh.role in ("main", "field"):
                assert row["hostHalo"] == -1
                assert row["numSubStruct"] == np.count_nonzero(df["hostHalo"] == i)


def test_halo_identity_stable_and_masses_grow(small_region):
    """The same halo has the same ID at both snapshots; model and measured masses grow towards low z."""
    _, pop, snaps = small_region
    early, late = snaps[0.6], snaps[0.2]
    for s_early, s_late in zip(early.states, late.states):
        assert s_early.halo is s_late.halo and s_late.m500 > s_early.m500
    both = early.halos.merge(late.halos, on="ID", suffixes=("_early", "_late"))
    hosts = both[both["hostHalo_late"] == -1]
    assert len(hosts) >= 2
    assert np.all(hosts["M500c_late"] > 1.2 * hosts["M500c_early"])
    # a host keeps its comoving position
    main = late.halos.set_index("ID").loc[pop.halo_id(1)]
    np.testing.assert_allclose(main[["Xc", "Yc", "Zc"]].to_numpy(float), pop.centre, atol=1e-6)


@pytest.mark.parametrize("fmt", ["gadget2", "hdf5"])
def test_files_round_trip_and_m500_from_read_particles(tmp_path: Path, fmt: str):
    """Written files read back; M500 recomputed from the read particles equals the catalogue within 1%."""
    from szmass.sims import read_ahf_halos, read_snapshot

    cfg = SynthConfig.from_mapping(SMALL)
    z = 0.3
    snap_path = tmp_path / ("snap_090" + (".hdf5" if fmt == "hdf5" else ""))
    df = generate_region_snapshot(cfg, COSMO, region=2, snapshot=90, redshift=z, seed=SEED, snapshot_path=snap_path,
                                  ahf_path=tmp_path / "snap_090.AHF_halos", fmt=fmt)
    ahf = read_ahf_halos(tmp_path / "snap_090.AHF_halos")
    np.testing.assert_allclose(ahf[df.columns].to_numpy(float), df.to_numpy(float), rtol=1e-12)
    snap = read_snapshot(snap_path, dark_matter=True)
    assert snap.redshift == pytest.approx(z)
    a, h = 1 / (1 + z), COSMO.h
    pos = np.concatenate([snap.pos, snap.dm_pos])
    mass = np.concatenate([snap.mass, snap.dm_mass])
    threshold = 500 * rho_crit_msun_kpc3(COSMO, z)
    for _, row in ahf[ahf["hostHalo"] == -1].iterrows():
        centre = row[["Xc", "Yc", "Zc"]].to_numpy(float) * a / h
        m500 = _so_m500(pos, mass, centre, threshold)
        assert m500 == pytest.approx(row["M500c"] / h, rel=0.01)
    # the files hold what the generator made: temperatures (through u), smoothing lengths, particle counts
    mem = build_region_snapshot(cfg, COSMO, population_for(cfg, COSMO, region=2, seed=SEED), snapshot=90, redshift=z, seed=SEED)
    mu = 4 / (1 + 3 * X_H + 4 * X_H * mem.gas["NE"].astype(float))
    t_expected = 2 / 3 * mem.gas["U"].astype(float) * 1e10 * mu * M_P_G / K_B_ERG_K
    order = np.argsort(snap.ids)
    np.testing.assert_allclose(snap.temperature[order], t_expected, rtol=1e-5)
    np.testing.assert_allclose(snap.hsml[order], mem.gas["HSML"] * a / h, rtol=1e-6)
    assert len(snap.dm_pos) == len(mem.dm["POS"])
    main = ahf.iloc[0]
    r = np.linalg.norm(snap.pos - main[["Xc", "Yc", "Zc"]].to_numpy(float) * a / h, axis=1)
    assert 1e7 < np.median(snap.temperature[r < main["R500c"] * a / h]) < 1e8  # keV-hot intracluster gas
    assert np.median(snap.temperature[r > 5 * main["Rvir"] * a / h]) == pytest.approx(1e5, rel=1e-5)  # the IGM


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path):
    cfg = SynthConfig.from_mapping({**SMALL, "region_radius": 5000.0, "halos_per_region": 1})

    def run(seed: int, name: str) -> tuple[bytes, bytes]:
        snap, ahf = tmp_path / f"{name}.snap", tmp_path / f"{name}.AHF_halos"
        generate_region_snapshot(cfg, COSMO, region=1, snapshot=5, redshift=0.4, seed=seed, snapshot_path=snap, ahf_path=ahf)
        return snap.read_bytes(), ahf.read_bytes()

    first, again, other = run(11, "a"), run(11, "b"), run(12, "c")
    assert first == again
    assert first[0] != other[0] and first[1] != other[1]


def test_mergers_and_contamination_follow_the_config():
    """merger_fraction = 1: every host has a companion (ratio 0.1-0.5 at 0.5-2 R500); contaminated halos have fMhires < 1."""
    cfg = SynthConfig.from_mapping({**SMALL, "merger_fraction": 1.0, "contaminated_fraction": 1.0, "halos_per_region": 3,
                                    "region_radius": 12000.0})
    pop = population_for(cfg, COSMO, region=1, seed=SEED)
    z = 0.5
    snap = build_region_snapshot(cfg, COSMO, pop, snapshot=1, redshift=z, seed=SEED)
    states = {s.halo.index: s for s in snap.states}
    hosts = [s for s in snap.states if s.halo.role in ("main", "field")]
    companions = [s for s in snap.states if s.halo.role == "companion"]
    assert {c.halo.host for c in companions} == {s.halo.index for s in hosts}
    for c in companions:
        host = states[c.halo.host]
        assert 0.1 <= c.m500 / host.m500 <= 0.5
        assert 0.5 <= np.linalg.norm(c.centre - host.centre) / host.r500 <= 2.0
    df = snap.halos.set_index("ID")
    for s in hosts:
        f = df.loc[pop.halo_id(s.halo.index), "fMhires"]
        assert (f < 1.0) if s.halo.role == "field" else (f == 1.0)


def test_gas_models_change_the_gas():
    """The same region with another gas model keeps its halos but not its gas pressure normalisation."""
    cfg = SynthConfig.from_mapping(SMALL)
    pops = {name: population_for(replace(cfg, gas_model=name), COSMO, region=1, seed=SEED) for name in GAS_MODELS}
    masses = {name: [hh.m500_z0 for hh in p.halos] for name, p in pops.items()}
    assert masses["gadget_x"] == masses["gizmo_simba"] == masses["gadget_music"]
    y500 = {name: gnfw_volume_integral(p.halos[0].gas.pressure) / gnfw_volume_integral(GAS_MODELS[name].pressure)
            for name, p in pops.items()}
    assert y500["gadget_x"] == pytest.approx(y500["gizmo_simba"])  # same scatter draw, different means
    assert pops["gizmo_simba"].halos[0].gas.pressure.c500 != pops["gadget_x"].halos[0].gas.pressure.c500
    y = {name: y_sph_mpc2(5e14, 0.1, m.pressure, COSMO) for name, m in GAS_MODELS.items()}
    assert y["gadget_music"] > 1.1 * y["gadget_x"]  # non-radiative: more thermal energy inside R500


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("z", [0.0, -0.2, 1.5, float("nan")])
def test_bad_redshift_is_rejected(tmp_path: Path, z: float):
    with pytest.raises(ValueError, match="redshift must be in \\(0, 1\\]"):
        generate_region_snapshot(SynthConfig.from_mapping(SMALL), COSMO, region=1, snapshot=1, redshift=z, seed=1,
                                 snapshot_path=tmp_path / "s", ahf_path=tmp_path / "a")
    assert not any(tmp_path.iterdir())


def test_bad_format_is_rejected_before_generating(tmp_path: Path):
    with pytest.raises(ValueError, match="fmt must be one of"):
        generate_region_snapshot(SynthConfig.from_mapping(SMALL), COSMO, region=1, snapshot=1, redshift=0.5, seed=1,
                                 snapshot_path=tmp_path / "s", ahf_path=tmp_path / "a", fmt="gadget3")


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="unknown key.*'gas_mass'"):
        SynthConfig.from_mapping({"gas_mass": 1e9})
    with pytest.raises(ValueError, match="unknown gas model 'gadget_y'"):
        SynthConfig.from_mapping({"gas_model": "gadget_y"})
    with pytest.raises(ValueError, match="merger_fraction must be in \\[0, 1\\]"):
        SynthConfig.from_mapping({"merger_fraction": 1.5})
    with pytest.raises(ValueError, match="halos_per_region = 2.5 is not a valid int"):
        SynthConfig.from_mapping({"halos_per_region": 2.5})
    with pytest.raises(ValueError, match="m500_max"):
        SynthConfig.from_mapping({"m500_min": 1e15, "m500_max": 1e14})
    assert SynthConfig.from_mapping({}) == SynthConfig()


def test_main_halo_from_the_high_mass_tail():
    """main_m500_min puts every region's main halo above it (THE THREE HUNDRED's selection); 0 leaves the
    draw as it was, and the field halos keep the mass-function range."""
    cfg = SynthConfig(halos_per_region=4, m500_min=1e14, m500_max=2e15, region_radius=15000.0)
    tail = replace(cfg, main_m500_min=5e14)
    h = COSMO.h
    mains, fields = [], []
    for seed in range(12):
        pop = population_for(tail, COSMO, region=1, seed=seed)
        hosts = [hh for hh in pop.halos if hh.role in ("main", "field")]
        mains.append(hosts[0].m500_z0 * h)
        fields += [hh.m500_z0 * h for hh in hosts[1:]]
        assert hosts[0].m500_z0 == max(hh.m500_z0 for hh in hosts)
    assert min(mains) >= 5e14 * (1 - 1e-9) and max(mains) <= 2e15
    assert min(fields) >= 1e14 * (1 - 1e-9) and np.median(fields) < 5e14  # the steep mass function: mostly light
    plain = [population_for(cfg, COSMO, region=1, seed=s).halos[0].m500_z0 * h for s in range(12)]
    assert np.median(plain) < np.median(mains)
    with pytest.raises(ValueError, match="main_m500_min"):
        SynthConfig.from_mapping({"main_m500_min": 5e15})


# --- the Y500-M500 relation of generated clusters against THE THREE HUNDRED's -----------------------------


def test_ym_scatter_matches_the_three_hundred():
    """THE THREE HUNDRED's Y500_sph-M500 power law gives masses within about 7% of the true M500 (16th-84th
    half-width; de Andres et al. 2022, Supplementary D) with a slope of 1.63. 80 generated clusters at z = 0.3
    (the workflow's generator: triaxial, sub-halos, 20% mergers; 5e3 gas particles inside R500, whose Y500
    noise of ~2% adds ~0.3% in quadrature to the mass scatter): the benchmark's 100 clusters per redshift
    give 5.5-6.2% and this sample 4.3%; the bound 3.5-8% allows the sampling error of a 16-84 half-width
    from 80 clusters (~0.7%) around the 5-7% target, and fails the uncalibrated generator (13.3% on this
    same sample). The slope within 1.63 +- 0.1 (its fit error here ~0.03)."""
    sample = ym_sample(SynthConfig(), COSMO, redshift=0.3, n=80, seed=4242, n_gas_r500=5000)
    fit = ym_fit(sample.m500, sample.y500)
    assert 0.035 < fit.half_width_68 < 0.08
    assert fit.slope == pytest.approx(1.63, abs=0.1)
    assert np.median(fit.mass_ratio) == pytest.approx(1.0, abs=0.02)
    budget = scatter_budget(sample, fit)
    assert budget["profile"] == pytest.approx(GAS_MODELS["gadget_x"].scatter.log_y500, rel=0.4)
    assert budget["shape"] > budget["profile"]  # a varied shape, compensated by P0: morphology is kept
