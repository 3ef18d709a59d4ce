"""Halo selection and spherical-overdensity masses."""

import numpy as np
import pandas as pd
import pytest

from szmass.cosmology import make_cosmology, rho_crit_msun_kpc3
from szmass.halos import HALO_COLUMNS, HaloSelection, select_halos, so_from_particles
from szmass.settings import MissingKeyError
from workflow_utils import validated_config

COSMO = make_cosmology()
DEFAULTS = validated_config(halo_selection={})["halo_selection"]
"""The schema's default halo selection."""
SELECTION = HaloSelection.from_mapping(DEFAULTS)


def isothermal_sphere(n: int, amplitude: float, r_max: float, rng: np.random.Generator):
    """Equal-mass particles of rho = A / r^2 (M(<r) = 4 pi A r) at quantile radii, random directions."""
    m_tot = 4 * np.pi * amplitude * r_max
    r = (np.arange(n) + 0.5) / n * r_max
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1)[:, None]
    return r[:, None] * v, np.full(n, m_tot / n)


def test_m500_and_m200_of_isothermal_sphere_match_analytic():
    z = 0.3
    rc = rho_crit_msun_kpc3(COSMO, z)
    amplitude = 3.0e9  # Msun / kpc
    # mean density 3A/r^2 = Delta rho_c, so R_Delta = sqrt(3A / (Delta rho_c)) and M_Delta = 4 pi A R_Delta
    r500_true, r200_true = (np.sqrt(3 * amplitude / (delta * rc)) for delta in (500, 200))
    centre = np.array([1000.0, -500.0, 20.0])
    pos, mass = isothermal_sphere(200_000, amplitude, 3 * r500_true, np.random.default_rng(1))
    (m500, r500), (m200, r200) = so_from_particles(pos + centre, mass, centre, z, COSMO, (500, 200))
    assert r500 == pytest.approx(r500_true, rel=1e-3)
    assert m500 == pytest.approx(4 * np.pi * amplitude * r500_true, rel=3e-3)
    assert r200 == pytest.approx(r200_true, rel=1e-3)
    assert m200 == pytest.approx(4 * np.pi * amplitude * r200_true, rel=3e-3)
    assert m200 / m500 == pytest.approx(np.sqrt(500 / 200), rel=3e-3)  # M ~ R ~ Delta^-1/2 for rho ~ r^-2


def test_m500_needs_a_large_enough_sphere():
    pos, mass = isothermal_sphere(1000, 3.0e9, 10.0, np.random.default_rng(2))  # all far above 500 rho_c
    with pytest.raises(ValueError, match="M500 from particles: still above 500 rho_crit.*larger sphere"):
        so_from_particles(pos, mass, np.zeros(3), 0.1, COSMO)


def test_m200_needs_a_larger_sphere_than_m500():
    z = 0.1
    amplitude = 3.0e9
    r500 = np.sqrt(3 * amplitude / (500 * rho_crit_msun_kpc3(COSMO, z)))
    pos, mass = isothermal_sphere(20_000, amplitude, 1.3 * r500, np.random.default_rng(4))  # R200 = 1.58 R500
    assert so_from_particles(pos, mass, np.zeros(3), z, COSMO)[0][1] == pytest.approx(r500, rel=3e-3)
    with pytest.raises(ValueError, match="M200 from particles: still above 200 rho_crit"):
        so_from_particles(pos, mass, np.zeros(3), z, COSMO, (500, 200))


def ahf_table(**overrides):
    df = pd.DataFrame(
        {
            "ID": [1, 2, 3, 4],
            "hostHalo": [-1, 1, -1, -1],
            "Mvir": [2e15, 3e14, 5e14, 5e13],
            "Xc": [5e5, 5.01e5, 5.05e5, 4.9e5],
            "Yc": [5e5] * 4,
            "Zc": [5e5] * 4,
            "Rvir": [2000.0, 900.0, 1100.0, 500.0],
            "fMhires": [1.0, 1.0, 0.5, 1.0],
            "M500c": [1.2e15, 0.9e14, 3e14, 3e13],
            "R500c": [1300.0, 400.0, 700.0, 300.0],
            "M200c": [1.7e15, 1.3e14, 4.2e14, 4.5e13],
            "R200c": [1900.0, 600.0, 1000.0, 450.0],
        }
    )
    return df.assign(**overrides)


def run_selection(df, redshift=0.2, h=0.6777):
    return select_halos(
        df, ahf_path="x.AHF_halos", sim="s", region=3, snapshot=120, redshift=redshift, h=h,
        model="gadget_x", selection=SELECTION, cosmo=COSMO,
    )


def test_selection_cuts_mass_contamination_and_converts_units():
    h, z = 0.6777, 0.2
    out = run_selection(ahf_table(), z, h)
    assert list(out.columns) == HALO_COLUMNS
    # halo 2 is below 1e14 h^-1 Msun in M500, halo 3 contaminated, halo 4 too light
    assert out["halo_id"].tolist() == [1]
    row = out.iloc[0]
    assert row["M500"] == pytest.approx(1.2e15 / h)
    assert row["R500"] == pytest.approx(1300.0 / (1 + z) / h)
    assert row["M200"] == pytest.approx(1.7e15 / h)
    assert row["R200"] == pytest.approx(1900.0 / (1 + z) / h)
    assert row["centre_x"] == pytest.approx(5e5 / (1 + z) / h)
    assert (row["sim"], row["region"], row["snapshot"], row["model"]) == ("s", 3, 120, "gadget_x")


def test_selection_of_main_halos_only_leaves_out_sub_halos():
    # halo 2 is a sub-halo of halo 1 (hostHalo 1), heavy enough and uncontaminated: kept unless main halos only
    sub = ahf_table(M500c=[1.2e15, 2e14, 3e14, 3e13])
    assert run_selection(sub)["halo_id"].tolist() == [1, 2]
    main_only = HaloSelection.from_mapping(DEFAULTS | {"main_halos_only": True})
    out = select_halos(sub, ahf_path="x.AHF_halos", sim="s", region=3, snapshot=120, redshift=0.2, h=0.6777,
                       model="gadget_x", selection=main_only, cosmo=COSMO)
    assert out["halo_id"].tolist() == [1]


def test_selection_outside_redshift_range_is_empty():
    assert run_selection(ahf_table(), redshift=1.5).empty


def test_selection_missing_columns_names_the_file():
    with pytest.raises(ValueError, match=r"x\.AHF_halos.*fMhires"):
        run_selection(ahf_table().drop(columns=["fMhires"]))


def test_selection_without_m500_columns_needs_particles():
    with pytest.raises(ValueError, match="M500c"):
        run_selection(ahf_table().drop(columns=["M500c", "R500c"]))
    with pytest.raises(ValueError, match=r"^file x\.AHF_halos: no M200c/R200c columns and no snapshot"):
        run_selection(ahf_table().drop(columns=["R200c"]))


def sis_selection(drop: list[str]):
    """Selection of one halo whose AHF row lacks the columns ``drop``, its matter a singular isothermal
    sphere; returns the selected row, the true R500 and R200 [kpc] and how often the particles were read."""
    z, h = 0.2, 0.6777
    rc = rho_crit_msun_kpc3(COSMO, z)
    amplitude = 5.0e10  # M500 ~ 8e14 Msun, above the cut
    r500_true, r200_true = (np.sqrt(3 * amplitude / (delta * rc)) for delta in (500, 200))
    df = ahf_table().drop(columns=drop).iloc[[0]]
    df = df.assign(Rvir=[1.3 * r200_true * (1 + z) * h])  # comoving kpc/h, Delta_vir < 200
    centre = df[["Xc", "Yc", "Zc"]].to_numpy()[0] / (1 + z) / h
    pos, mass = isothermal_sphere(100_000, amplitude, 2 * r200_true, np.random.default_rng(3))
    reads = []

    def particles(centres, radii):
        assert np.allclose(centres[0], centre) and radii[0] >= r200_true
        reads.append(radii[0])
        return pos + centre, mass

    out = select_halos(
        df, ahf_path="x", sim="s", region=1, snapshot=1, redshift=z, h=h, model="m",
        selection=SELECTION, cosmo=COSMO, particles=particles,
    )
    assert list(out.columns) == HALO_COLUMNS and len(out) == 1
    return out.iloc[0], r500_true, r200_true, len(reads)


def test_selection_computes_m500_and_m200_from_particles_when_absent():
    row, r500_true, r200_true, reads = sis_selection(["M500c", "R500c", "M200c", "R200c"])
    assert reads == 1  # one read for both overdensities
    assert row["R500"] == pytest.approx(r500_true, rel=2e-3)
    assert row["R200"] == pytest.approx(r200_true, rel=2e-3)
    assert row["M200"] > row["M500"]


def test_selection_takes_m500_from_ahf_and_computes_only_m200():
    row, _, r200_true, reads = sis_selection(["M200c", "R200c"])
    assert reads == 1
    assert row["M500"] == pytest.approx(1.2e15 / 0.6777)  # the catalogue's, not the sphere's
    assert row["R200"] == pytest.approx(r200_true, rel=2e-3)


def test_selection_config_rejects_unknown_key():
    with pytest.raises(ValueError, match="m500min"):
        HaloSelection.from_mapping(DEFAULTS | {"m500min": 1e14})


def test_selection_from_a_validated_config_and_a_missing_key():
    assert HaloSelection.from_mapping(DEFAULTS) == HaloSelection(m500_min=1e14, fmhires_min=0.98, z_min=0.0, z_max=1.0,
                                                                 main_halos_only=False)
    with pytest.raises(MissingKeyError, match=r"^halo_selection: missing key\(s\) halo_selection.z_max;"):
        HaloSelection.from_mapping({k: v for k, v in DEFAULTS.items() if k != "z_max"})
