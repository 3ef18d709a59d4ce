"""The Y500-M500 relation, Eq. 4 of de Andres et al. 2022 (szmass.scaling)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM
from scipy.integrate import quad

from szmass.cosmology import make_cosmology
from szmass.scaling import (
    ALPHA_PLANCK,
    ALPHA_THE300,
    LOG_B,
    M_PIVOT,
    YCYL_OVER_YSPH,
    m500_from_y500,
    FIGURE3_LINES,
    YMLine,
    y500_from_m500,
    ym_line_masses,
)

H0, OM0 = 67.77, 0.307115
C_KMS = 299792.458
ARCMIN2_PER_SR = (180.0 * 60.0 / np.pi) ** 2


def hand_y500_arcmin2(m500: float, z: float, alpha: float = ALPHA_PLANCK, log_b: float = LOG_B) -> float:
    """Eq. 4 written out independently of astropy: flat LCDM without radiation, D_A by quadrature."""
    e_z = np.sqrt(OM0 * (1.0 + z) ** 3 + 1.0 - OM0)
    d_c = C_KMS / H0 * quad(lambda zz: 1.0 / np.sqrt(OM0 * (1.0 + zz) ** 3 + 1.0 - OM0), 0.0, z, epsabs=0,
                            epsrel=1e-13)[0]  # Mpc
    d_a = d_c / (1.0 + z)
    h70 = H0 / 70.0
    rhs = 10.0**log_b * h70 ** (-2.0 + alpha) * (m500 / 6e14) ** alpha  # = E^(-2/3) D_A^2 Y / 1e-4 Mpc^2
    y_sr = rhs * 1e-4 * e_z ** (2.0 / 3.0) / d_a**2
    return y_sr * ARCMIN2_PER_SR


@pytest.fixture
def cosmo() -> FlatLambdaCDM:
    return FlatLambdaCDM(H0=H0, Om0=OM0)


@pytest.mark.parametrize(("m500", "z", "alpha"), [(6e14, 0.1, ALPHA_PLANCK), (3e14, 0.5, ALPHA_PLANCK),
                                                  (1.2e15, 0.03, ALPHA_THE300), (2e14, 0.9, ALPHA_THE300)])
def test_eq4_against_hand_evaluation(cosmo: FlatLambdaCDM, m500: float, z: float, alpha: float) -> None:
    y = y500_from_m500(m500, z, cosmo, alpha=alpha)
    assert float(y) == pytest.approx(hand_y500_arcmin2(m500, z, alpha), rel=1e-9)
    # the spherical Y of a 6e14 Msun cluster at z = 0.1 is a few 1e-3 arcmin^2 (Planck PSZ2's typical values)
    if m500 == 6e14:
        assert 1e-3 < float(y) < 1e-2


def test_normalisation_without_h70(cosmo: FlatLambdaCDM) -> None:
    """For H0 = 70 (h70 = 1) the pivot mass gives exactly 10^logB (1e-4 Mpc^2) E^(2/3) / D_A^2."""
    c70 = FlatLambdaCDM(H0=70.0, Om0=OM0)
    z = 0.2
    d_a = c70.angular_diameter_distance(z).value
    expected = 10.0**LOG_B * 1e-4 * c70.efunc(z) ** (2.0 / 3.0) / d_a**2 * ARCMIN2_PER_SR
    assert float(y500_from_m500(M_PIVOT, z, c70)) == pytest.approx(expected, rel=1e-12)
    # h70 enters as h70^(alpha - 2) besides the distances' own H0 scaling D_A ~ 1/H0
    h70 = H0 / 70.0
    ratio = y500_from_m500(M_PIVOT, z, cosmo) / y500_from_m500(M_PIVOT, z, c70)
    assert float(ratio) == pytest.approx(h70 ** (ALPHA_PLANCK - 2.0) * h70**2, rel=1e-12)


def test_round_trip_and_broadcasting() -> None:
    cosmo = make_cosmology()
    m = np.geomspace(1e14, 2e15, 7)[:, None]
    z = np.array([0.02, 0.15, 0.4, 1.0])[None, :]
    for alpha in (ALPHA_PLANCK, ALPHA_THE300):
        for cylinder in (False, True):
            y = y500_from_m500(m, z, cosmo, alpha=alpha, cylinder=cylinder)
            assert y.shape == (7, 4)
            back = m500_from_y500(y, z, cosmo, alpha=alpha, cylinder=cylinder)
            assert np.allclose(back / m, 1.0, rtol=0, atol=1e-12)
            again = y500_from_m500(back, z, cosmo, alpha=alpha, cylinder=cylinder)
            assert np.allclose(again / y, 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [ALPHA_PLANCK, ALPHA_THE300, 5.0 / 3.0])
def test_slope(cosmo: FlatLambdaCDM, alpha: float) -> None:
    m = np.geomspace(1e14, 3e15, 9)
    eps = 1e-4
    up = y500_from_m500(m * np.exp(eps), 0.3, cosmo, alpha=alpha)
    down = y500_from_m500(m * np.exp(-eps), 0.3, cosmo, alpha=alpha)
    assert np.allclose(np.log(up / down) / (2.0 * eps), alpha, rtol=1e-8, atol=0)


def test_redshift_scaling(cosmo: FlatLambdaCDM) -> None:
    """At fixed mass Y500 scales as E(z)^(2/3) / D_A(z)^2."""
    z = np.array([0.05, 0.3, 0.8])
    y = y500_from_m500(5e14, z, cosmo)
    shape = cosmo.efunc(z) ** (2.0 / 3.0) / cosmo.angular_diameter_distance(z).value ** 2
    assert np.allclose(y / y[0], shape / shape[0], rtol=1e-12, atol=0)


def test_cylinder_factor(cosmo: FlatLambdaCDM) -> None:
    y_sph = y500_from_m500(7e14, 0.25, cosmo)
    y_cyl = y500_from_m500(7e14, 0.25, cosmo, cylinder=True)
    assert float(y_cyl / y_sph) == pytest.approx(YCYL_OVER_YSPH, rel=1e-14)
    # a cylinder Y read as a spherical one overestimates the mass by 1.2^(1/alpha)
    assert float(m500_from_y500(y_cyl, 0.25, cosmo, cylinder=True)) == pytest.approx(7e14, rel=1e-12)
    assert float(m500_from_y500(y_cyl, 0.25, cosmo)) == pytest.approx(7e14 * 1.2 ** (1 / ALPHA_PLANCK), rel=1e-12)


def test_ym_line_masses_applies_factor_and_slope(cosmo: FlatLambdaCDM) -> None:
    """A Figure 3 line inverts Eq. 4 for y_factor x Y500: 1.2 Y_sph with the Planck slope gives the mass
    whose Eq. 4 cylinder Y500 is that 1.2 Y_sph."""
    planck = FIGURE3_LINES[1]
    assert (planck.alpha, planck.y_column, planck.y_factor) == (ALPHA_PLANCK, "Y500_sph", YCYL_OVER_YSPH)
    y_sph = y500_from_m500(np.array([3e14, 8e14]), 0.3, cosmo)
    m = ym_line_masses(y_sph, 0.3, cosmo, planck)
    np.testing.assert_allclose(y500_from_m500(m, 0.3, cosmo), YCYL_OVER_YSPH * y_sph, rtol=1e-12)
    the300 = FIGURE3_LINES[0]
    assert (the300.alpha, the300.y_column, the300.y_factor) == (ALPHA_THE300, "Y500_cyl", 1.0)
    np.testing.assert_allclose(ym_line_masses(y_sph, 0.3, cosmo, the300),
                               m500_from_y500(y_sph, 0.3, cosmo, alpha=ALPHA_THE300), rtol=1e-14)  # fmt: skip
    with pytest.raises(ValueError, match="Y500_cyl of Y-M line"):
        ym_line_masses([1e-3, 0.0], 0.3, cosmo, the300)
    with pytest.raises(ValueError, match="y_factor must be finite and > 0"):
        ym_line_masses([1e-3], 0.3, cosmo, YMLine("bad", 1.7, "Y500_cyl", -1.0))


def test_bad_input(cosmo: FlatLambdaCDM) -> None:
    with pytest.raises(ValueError, match="m500"):
        y500_from_m500([5e14, -1.0], 0.1, cosmo)
    with pytest.raises(ValueError, match="redshift"):
        y500_from_m500(5e14, 0.0, cosmo)
    with pytest.raises(ValueError, match="y500"):
        m500_from_y500(np.nan, 0.1, cosmo)
    with pytest.raises(ValueError, match="alpha"):
        y500_from_m500(5e14, 0.1, cosmo, alpha=0.0)
