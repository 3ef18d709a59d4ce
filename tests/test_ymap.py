"""Tests of szmass.rotations (the 27 lines of sight) and szmass.ymap (y-maps, Y500)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numba
import numpy as np
import pytest
from astropy import constants as const
from astropy import units as u
from scipy.spatial.transform import Rotation

from szmass.cosmology import make_cosmology
from szmass.instrument import Instrument, observe
from szmass.rotations import N_PROJECTIONS, ROTATIONS, directions, rotation_matrix
from szmass.synth.particles import sph_smoothing
from szmass.ymap import (
    HaloGas, disc_fraction, morton_order, pixel_kpc, project_halo, selection_radius_kpc, y500_cyl_arcmin2, y_weight_kpc2,
)

COSMO = make_cosmology()
H = 0.6777


@dataclass(frozen=True)
class Snap:
    """A minimal stand-in for ``szmass.sims.Snapshot`` (physical kpc, Msun, K)."""

    pos: np.ndarray
    mass: np.ndarray
    temperature: np.ndarray
    ne: np.ndarray
    hsml: np.ndarray
    redshift: float = 0.3
    box_size: float | None = None
    path: str = "test-snapshot"

    @property
    def scale_factor(self) -> float:
        return 1.0 / (1.0 + self.redshift)

    h: float = H


def cluster(n: int, *, r_core: float, r_max: float, seed: int, centre=(0.0, 0.0, 0.0), hsml=None, z: float = 0.3) -> Snap:
    """Particles of a beta model (beta = 2/3: rho ~ 1/(1 + (r/rc)^2)) out to ``r_max`` [kpc], T ~ 5 keV with scatter."""
    rng = np.random.default_rng(seed)
    # inverse CDF of M(<r) ~ r/rc - atan(r/rc) on a fine grid
    grid = np.linspace(0.0, r_max, 20001)
    cdf = grid / r_core - np.arctan(grid / r_core)
    r = np.interp(rng.random(n) * cdf[-1], cdf, grid)
    v = rng.normal(size=(n, 3))
    pos = np.asarray(centre) + v / np.linalg.norm(v, axis=1)[:, None] * r[:, None]
    h = np.clip(0.3 * r, 20.0, None) if hsml is None else np.full(n, float(hsml))
    return Snap(
        pos=pos, mass=np.full(n, 2.0e9), temperature=rng.uniform(4.0e7, 8.0e7, n), ne=rng.uniform(1.1, 1.16, n),
        hsml=h, redshift=z,
    )


# ---------------------------------------------------------------- lines of sight


def test_rotations_orthonormal_proper_and_aligned() -> None:
    assert ROTATIONS.shape == (N_PROJECTIONS, 3, 3) == (27, 3, 3)
    for k, rot in enumerate(ROTATIONS):
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-14)
        assert np.linalg.det(rot) == pytest.approx(1.0, abs=1e-14)
        np.testing.assert_allclose(rot[2], directions()[k], atol=1e-14)
        np.testing.assert_allclose(rot @ rot[2], [0.0, 0.0, 1.0], atol=1e-14)
        np.testing.assert_array_equal(rotation_matrix(k), rot)


def test_lines_of_sight_distinct_on_a_hemisphere() -> None:
    n = directions()
    assert np.all(n[:, 2] > 0)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-15)
    cos = np.abs(n @ n.T)  # n and -n are the same line of sight
    np.fill_diagonal(cos, 0.0)
    assert np.degrees(np.arccos(cos.max())) > 14.0
    # equal-area lattice: the mean of cos(theta) over the hemisphere is 1/2
    assert n[:, 2].mean() == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("bad", [-1, 27, 2.5, "3"])
def test_rotation_matrix_bad_index(bad: object) -> None:
    with pytest.raises(ValueError, match="projection index"):
        rotation_matrix(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- weights and conservation


def test_y_weight_matches_astropy_units() -> None:
    m, t, ne = 1.7e8, 3.2e7, 1.158
    n_e = ne * 0.76 * m * u.Msun / const.m_p
    expected = (const.sigma_T * const.k_B * t * u.K / (const.m_e * const.c**2) * n_e).to_value(u.kpc**2)
    assert y_weight_kpc2(np.array([m]), np.array([t]), np.array([ne]))[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("hsml", [0.05, 3.0, 400.0])  # pixels are 4.5 kpc: tiny, small and huge kernels
def test_map_conserves_the_weight(hsml: float) -> None:
    snap = cluster(4000, r_core=50.0, r_max=300.0, seed=1, hsml=hsml)
    gas = HaloGas.from_snapshot(snap, np.zeros(3), 500.0, cosmo=COSMO)
    pix = pixel_kpc(gas.d_a_kpc, 1.0)
    assert 256 * pix > 300.0 + hsml  # every kernel inside the map
    ymap = gas.ymap(5, npix=512, pixel_arcsec=1.0, depth_r500=None)
    d_a = COSMO.angular_diameter_distance(snap.redshift).to_value(u.kpc)
    pixel_sr = ((1.0 * u.arcsec) ** 2).to_value(u.sr)
    expected = y_weight_kpc2(snap.mass, snap.temperature, snap.ne).sum()
    assert ymap.sum() * pixel_sr * d_a**2 == pytest.approx(expected, rel=1e-6)


def test_total_y_equal_for_all_27_projections_and_observed_maps_conserve_it() -> None:
    snap = cluster(3000, r_core=60.0, r_max=400.0, seed=2)
    hm = project_halo(snap, np.zeros(3), 500.0, cosmo=COSMO, npix=256, pixel_arcsec=5.0, depth_r500=None,
                      observe=observe, keep_hires=True)
    assert hm.hires is not None and hm.maps is not None
    assert hm.hires.shape == (27, 256, 256) and hm.maps.shape == (27, 96, 96)
    y_total = hm.hires.sum(axis=(1, 2)) * hm.pixel_arcmin**2
    expected = y_weight_kpc2(snap.mass, snap.temperature, snap.ne).sum() / hm.d_a_kpc**2 * (u.rad.to(u.arcmin)) ** 2
    np.testing.assert_allclose(y_total, expected, rtol=1e-6)
    np.testing.assert_allclose(hm.maps.sum(axis=(1, 2)) * 1.7**2, expected, rtol=1e-6)
    # distinct lines of sight of a random particle set give different maps
    assert not np.allclose(hm.hires[0], hm.hires[1])


def test_rotation_about_the_line_of_sight_rotates_the_map() -> None:
    k = 11
    centre = np.array([1000.0, -2000.0, 500.0])
    snap = cluster(2000, r_core=40.0, r_max=250.0, seed=3, centre=centre)
    quarter = Rotation.from_rotvec(0.5 * np.pi * directions()[k])  # +90 degrees about the line of sight
    turned = replace(snap, pos=centre + quarter.apply(snap.pos - centre))
    a = HaloGas.from_snapshot(snap, centre, 300.0, cosmo=COSMO).ymap(k, npix=128, pixel_arcsec=4.0)
    b = HaloGas.from_snapshot(turned, centre, 300.0, cosmo=COSMO).ymap(k, npix=128, pixel_arcsec=4.0)
    # image point (x, y) -> (-y, x): new[j, i] = old[n - 1 - i, j]
    np.testing.assert_allclose(b, np.rot90(a, k=-1), rtol=1e-9, atol=1e-12 * a.max())
    assert not np.allclose(b, a, rtol=1e-3)


def test_periodic_box_minimum_image() -> None:
    """A cluster straddling the box corner projects like the same cluster away from the boundary."""
    box_ckpc_h = 1.0e5
    snap = cluster(2000, r_core=40.0, r_max=250.0, seed=4, centre=(0.0, 0.0, 0.0))
    box = box_ckpc_h * snap.scale_factor / H
    wrapped = replace(snap, pos=np.mod(snap.pos, box), box_size=box_ckpc_h)
    a = HaloGas.from_snapshot(snap, np.zeros(3), 300.0, cosmo=COSMO).ymap(7, npix=128, pixel_arcsec=4.0)
    b = HaloGas.from_snapshot(wrapped, np.full(3, box), 300.0, cosmo=COSMO).ymap(7, npix=128, pixel_arcsec=4.0)
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12 * a.max())


# ---------------------------------------------------------------- Y500


def test_y500_sph_is_the_particle_sum_inside_r500() -> None:
    snap = cluster(3000, r_core=80.0, r_max=1500.0, seed=5)
    r500 = 600.0
    hm = project_halo(snap, np.zeros(3), r500, cosmo=COSMO, npix=128, pixel_arcsec=20.0, projections=[0, 13])
    inside = np.linalg.norm(snap.pos, axis=1) < r500
    n_e = snap.ne[inside] * 0.76 * snap.mass[inside] * u.Msun / const.m_p
    energy = np.sum(n_e * const.k_B * snap.temperature[inside] * u.K)
    d_a = COSMO.angular_diameter_distance(snap.redshift)
    expected = (const.sigma_T / (const.m_e * const.c**2) * energy / d_a**2 * u.rad**2).to_value(u.arcmin**2)
    assert hm.y500_sph == pytest.approx(expected, rel=1e-10)


def test_y500_cyl_exceeds_y500_sph_and_matches_particle_cylinder() -> None:
    """An extended cluster: the cylinder adds the outskirts along the line of sight."""
    snap = cluster(20000, r_core=100.0, r_max=3000.0, seed=6)
    r500 = 600.0
    hm = project_halo(snap, np.zeros(3), r500, cosmo=COSMO, npix=256, pixel_arcsec=10.0, projections=range(0, 27, 9))
    assert np.all(hm.y500_cyl > 1.1 * hm.y500_sph)
    # independent estimate from the particles: projected radius < R500, |depth| < 5 R500 (kernels blur the edge)
    w = y_weight_kpc2(snap.mass, snap.temperature, snap.ne)
    for n, k in enumerate(hm.projections):
        rot = rotation_matrix(int(k))
        x, y, z = (snap.pos @ rot.T).T
        in_cyl = (np.hypot(x, y) < r500) & (np.abs(z) < 5 * r500)
        expected = w[in_cyl].sum() / hm.d_a_kpc**2 * u.rad.to(u.arcmin) ** 2
        assert hm.y500_cyl[n] == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize(("radius", "rtol"), [(4.3, 1e-3), (12.1, 1e-4), (20.0, 1e-4), (101.7, 1e-4)])
def test_disc_fraction_area(radius: float, rtol: float) -> None:
    s, frac = disc_fraction(256, radius)
    assert frac.sum() == pytest.approx(np.pi * radius**2, rel=rtol)
    assert np.all((frac >= 0) & (frac <= 1))
    # a uniform map of y = 1 gives the aperture's area
    assert y500_cyl_arcmin2(np.ones((256, 256)), 0.5, 0.5 * radius) == pytest.approx(np.pi * (0.5 * radius) ** 2, rel=rtol)
    assert frac.shape == (s.stop - s.start,) * 2


def test_selection_radius_holds_the_prism() -> None:
    r500 = np.array([500.0, 1000.0])
    radius = selection_radius_kpc(r500, 0.1, COSMO, npix=1920, pixel_arcsec=5.0, depth_r500=5.0)
    half = 0.5 * 1920 * pixel_kpc(COSMO.angular_diameter_distance(0.1).to_value(u.kpc), 5.0)
    np.testing.assert_allclose(radius, np.sqrt(2 * half**2 + (5 * r500) ** 2), rtol=1e-12)


# ---------------------------------------------------------------- errors and options


def test_redshift_zero_is_a_clear_error() -> None:
    snap = replace(cluster(100, r_core=40.0, r_max=200.0, seed=7), redshift=0.0)
    with pytest.raises(ValueError, match=r"test-snapshot.*redshift 0.0 <= 0"):
        project_halo(snap, np.zeros(3), 300.0, cosmo=COSMO, npix=64)


def test_empty_field_names_the_halo() -> None:
    snap = cluster(100, r_core=40.0, r_max=200.0, seed=8, centre=(5.0e4, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"halo 42: no gas particle in the field \(1470 kpc wide\)"):
        project_halo(snap, np.zeros(3), 300.0, cosmo=COSMO, npix=64, pixel_arcsec=5.0, label="the300 halo 42")


def test_depth_cut_excludes_gas_along_the_line_of_sight() -> None:
    near = cluster(500, r_core=30.0, r_max=150.0, seed=9)
    k = 4
    # a second clump 20 R500 behind the halo along line of sight k projects onto the same pixels
    far = cluster(500, r_core=30.0, r_max=150.0, seed=10, centre=20 * 300.0 * directions()[k])
    both = Snap(*(np.concatenate([getattr(near, f), getattr(far, f)]) for f in ("pos", "mass", "temperature", "ne", "hsml")))
    a = HaloGas.from_snapshot(near, np.zeros(3), 300.0, cosmo=COSMO).ymap(k, npix=64, pixel_arcsec=10.0)
    b = HaloGas.from_snapshot(both, np.zeros(3), 300.0, cosmo=COSMO).ymap(k, npix=64, pixel_arcsec=10.0)
    c = HaloGas.from_snapshot(both, np.zeros(3), 300.0, cosmo=COSMO).ymap(k, npix=64, pixel_arcsec=10.0, depth_r500=None)
    np.testing.assert_array_equal(a, b)
    assert c.sum() > 1.9 * a.sum()


def test_hires_maps_only_on_request() -> None:
    snap = cluster(300, r_core=30.0, r_max=150.0, seed=11)
    hm = project_halo(snap, np.zeros(3), 300.0, cosmo=COSMO, npix=64, pixel_arcsec=10.0, projections=[2, 5])
    assert hm.hires is None and hm.maps is None
    np.testing.assert_array_equal(hm.projections, [2, 5])
    assert hm.y500_cyl.shape == (2,)
    with pytest.raises(ValueError, match="no line of sight"):
        project_halo(snap, np.zeros(3), 300.0, cosmo=COSMO, npix=64, projections=[])


# ---------------------------------------------------------------- the fast route


def fast_and_hires(snap: Snap, r500: float, projections: list[int], npix: int = 1920, pixel_arcsec: float = 5.0):
    """The same halo by both routes: (fast HaloMaps, hires HaloMaps), 96 x 96 maps observed with the 10' beam."""
    common = dict(cosmo=COSMO, projections=projections, npix=npix, pixel_arcsec=pixel_arcsec)
    fast = project_halo(snap, np.zeros(3), r500, instrument=Instrument(), **common)
    hires = project_halo(snap, np.zeros(3), r500, observe=lambda m, p: observe(m, p, pixel_window=True), **common)
    return fast, hires


@pytest.mark.parametrize(("z", "r500", "seed"), [(0.1, 1400.0, 21), (0.5, 900.0, 22), (1.0, 500.0, 23)])
def test_fast_route_equals_the_1920_route(z: float, r500: float, seed: int) -> None:
    """Small clusters from z = 0.1 to 1: the 96 x 96 maps agree to 1e-4 of their peak, Y500_cyl exactly.

    Support radii from the 64 nearest neighbours, as in a simulation (sub-pixel particles are then dense
    enough that their sum is smooth on the intermediate pixels).
    """
    snap = cluster(3000, r_core=0.1 * r500, r_max=3.0 * r500, seed=seed, z=z)
    snap = replace(snap, hsml=sph_smoothing(snap.pos, snap.mass, 64)[0])
    fast, hires = fast_and_hires(snap, r500, [0, 13])
    for f, h in zip(fast.maps, hires.maps):
        assert np.abs(f - h).max() < 1e-4 * np.abs(h).max()
    # the same aperture integral of the same particles, summed in another order
    np.testing.assert_allclose(fast.y500_cyl, hires.y500_cyl, rtol=1e-13, atol=0)
    assert fast.y500_sph == hires.y500_sph


def test_fast_route_maps_are_bit_identical_for_one_and_two_threads() -> None:
    snap = cluster(20000, r_core=60.0, r_max=2000.0, seed=24)
    before = numba.get_num_threads()
    runs = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            runs.append(project_halo(snap, np.zeros(3), 700.0, cosmo=COSMO, projections=[3, 17],
                                     instrument=Instrument()))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(runs[0].maps, runs[1].maps)
    np.testing.assert_array_equal(runs[0].y500_cyl, runs[1].y500_cyl)


def test_prism_is_the_rotated_selection() -> None:
    """The fused rotate-and-select pass keeps exactly the particles (in order) of the vectorised definition."""
    snap = cluster(5000, r_core=50.0, r_max=3000.0, seed=25)
    gas = HaloGas.from_snapshot(snap, np.zeros(3), 300.0, cosmo=COSMO)
    x, y, hsml, weight = gas.prism(6, half_width_kpc=800.0, depth_r500=2.0)
    rot = rotation_matrix(6)
    px, py, pz = (gas.offset_kpc @ rot.T).T
    reach = 800.0 + gas.hsml_kpc
    keep = (np.abs(pz) <= 600.0) & (np.abs(px) < reach) & (np.abs(py) < reach)
    assert 0 < keep.sum() < 5000
    np.testing.assert_allclose(x, px[keep], rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, py[keep], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(hsml, gas.hsml_kpc[keep])
    np.testing.assert_array_equal(weight, gas.weight_kpc2[keep])


def test_aperture_outside_the_field_is_a_clear_error() -> None:
    snap = cluster(300, r_core=30.0, r_max=150.0, seed=26, z=0.05)
    with pytest.raises(ValueError, match=r"halo 7: the R500 aperture \(radius 5\.0 arcmin\) reaches outside the "
                                         r"64 x 5 arcsec field \(half-width 2\.7 arcmin\)"):
        project_halo(snap, np.zeros(3), 300.0, cosmo=COSMO, npix=64, pixel_arcsec=5.0, label="halo 7")


def _morton_key(cell_index: tuple[int, int, int], half: int = 1 << 20) -> int:
    """The Morton key of a cell, bit by bit (x the lowest bit of each triple), offset by a large power of two."""
    key = 0
    for b in range(22):
        for axis, c in enumerate(cell_index):
            key |= (((c + half) >> b) & 1) << (3 * b + axis)
    return key


def test_morton_order_is_the_stable_z_order_of_the_cells() -> None:
    """The radix sort of morton_order against a plain stable sort of keys built bit by bit (ties included: many
    points per cell keep their order), and the order of a subset does not depend on the other points (the
    depth cut's maps are the same bits with and without the far gas)."""
    rng = np.random.default_rng(8)
    pos = np.concatenate([rng.normal(0.0, 3.0, (3000, 3)), rng.uniform(-400.0, 400.0, (500, 3))])
    keys = [_morton_key(tuple(int(v) for v in np.floor(p / 2.0))) for p in pos]
    expected = sorted(range(len(pos)), key=keys.__getitem__)
    np.testing.assert_array_equal(morton_order(pos, 2.0), expected)
    near = pos[:3000]
    np.testing.assert_array_equal(morton_order(near, 2.0), [k for k in expected if k < 3000])
