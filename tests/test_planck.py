"""PSZ2 catalogue, masks, the Golden selection and the filling of masked pixels (szmass.planck)."""


import healpy as hp
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from szmass import healpix
from szmass.planck import (
    PSZ2_COLUMNS,
    centre_distance_arcmin,
    fill_masked,
    golden_flags,
    read_mask,
    read_psz2,
    unit_noise_field,
)

from reference_data import PSZ2_FILE  # noqa: E402
needs_psz2 = pytest.mark.skipif(not PSZ2_FILE.is_file(), reason=f"reference PSZ2 catalogue not found at {PSZ2_FILE}")


@needs_psz2
def test_psz2_rows_units_and_redshift_selection():
    everything = read_psz2(PSZ2_FILE, require_redshift=False)
    with_z = read_psz2(PSZ2_FILE)
    assert len(everything) == 1653
    assert len(with_z) == 1094
    assert list(with_z.columns) == PSZ2_COLUMNS
    assert np.all(with_z["REDSHIFT"] > 0)
    raw = fits.getdata(PSZ2_FILE, 1)
    has_z = raw["REDSHIFT"] > 0
    # the file holds MSZ in 1e14 Msun and Y5R500 in 1e-3 arcmin^2
    np.testing.assert_allclose(with_z["MSZ"], raw["MSZ"][has_z].astype(float) * 1e14, rtol=1e-12)
    np.testing.assert_allclose(with_z["MSZ_ERR_UP"], raw["MSZ_ERR_UP"][has_z].astype(float) * 1e14, rtol=1e-12)
    np.testing.assert_allclose(with_z["Y5R500"], raw["Y5R500"][has_z].astype(float) * 1e-3, rtol=1e-12)
    assert 1e13 < with_z["MSZ"].min() and with_z["MSZ"].max() < 3e15  # cluster masses in Msun
    row = with_z.set_index("NAME").loc["PSZ2 G359.07-32.12"]  # the DeepPlanck example cluster (docs/physics.md)
    assert row["REDSHIFT"] == pytest.approx(0.1496, abs=1e-4)
    assert row["MSZ"] == pytest.approx(4.72e14, rel=1e-3)


def write_catalogue(path, drop=(), msz_unit="10^14 Msol"):
    t = Table(
        {
            "NAME": ["PSZ2 A", "PSZ2 B", "PSZ2 C"],
            "GLON": [10.0, 200.0, 300.0],
            "GLAT": [45.0, -30.0, 60.0],
            "REDSHIFT": np.array([0.2, -1.0, 0.5], dtype=np.float32),
            "MSZ": np.array([5.0, 0.0, 3.0], dtype=np.float32),
            "MSZ_ERR_UP": np.array([0.5, 0.0, 0.3], dtype=np.float32),
            "MSZ_ERR_LOW": np.array([0.4, 0.0, 0.2], dtype=np.float32),
            "SNR": [6.0, 4.6, 5.0],
            "Y5R500": [2.0, 1.0, 1.5],
        }
    )
    t.remove_columns(list(drop))
    hdu = fits.table_to_hdu(t)
    for i, name in enumerate(hdu.columns.names, start=1):
        unit = {"GLON": "degrees", "GLAT": "degrees", "Y5R500": "10^-3 arcmin^2"}.get(name)
        unit = msz_unit if name.startswith("MSZ") else unit
        if unit:
            hdu.header[f"TUNIT{i}"] = unit
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def test_psz2_missing_column_is_named(tmp_path):
    path = write_catalogue(tmp_path / "cat.fits", drop=["SNR"])
    with pytest.raises(ValueError, match=r"cat\.fits.*\['SNR'\]"):
        read_psz2(path)


def test_psz2_units_follow_the_header_and_sentinel_rows_drop(tmp_path):
    df = read_psz2(write_catalogue(tmp_path / "a.fits"))
    assert list(df["NAME"]) == ["PSZ2 A", "PSZ2 C"]  # REDSHIFT = -1 dropped
    np.testing.assert_allclose(df["MSZ"], [5e14, 3e14], rtol=1e-6)
    np.testing.assert_allclose(df["Y5R500"], [2e-3, 1.5e-3], rtol=1e-12)
    df = read_psz2(write_catalogue(tmp_path / "b.fits", msz_unit="solMass"), require_redshift=False)
    assert len(df) == 3
    np.testing.assert_allclose(df["MSZ"], [5.0, 0.0, 3.0])
    with pytest.raises(ValueError, match="MSZ.*convertible to solMass"):
        read_psz2(write_catalogue(tmp_path / "c.fits", msz_unit="arcmin"))


def test_masks_combine_by_product_whatever_their_ordering(tmp_path):
    nside = 16
    rng = np.random.default_rng(0)
    a = (rng.uniform(size=hp.nside2npix(nside)) > 0.2).astype(np.float32)
    b = (rng.uniform(size=hp.nside2npix(nside)) > 0.3).astype(np.float32)
    hp.write_map(tmp_path / "a.fits", a, nest=False, dtype=np.float32)
    hp.write_map(tmp_path / "b.fits", hp.reorder(b, r2n=True), nest=True, dtype=np.float32)
    m = read_mask([tmp_path / "a.fits", tmp_path / "b.fits"])
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m, a * b)
    hp.write_map(tmp_path / "two.fits", [a, b], column_names=["GAL020", "GAL040"], dtype=np.float32)
    np.testing.assert_array_equal(read_mask(tmp_path / "two.fits", field="GAL040"), b)
    # degrading: a pixel stays valid only when all four of its sub-pixels are valid
    coarse = read_mask(tmp_path / "a.fits", nside=nside // 2)
    children = hp.reorder(a, r2n=True).reshape(-1, 4)
    np.testing.assert_array_equal(hp.reorder(coarse, r2n=True), children.min(axis=1))


def test_mask_values_outside_unit_interval_are_rejected(tmp_path):
    bad = np.full(hp.nside2npix(4), 2.0)
    hp.write_map(tmp_path / "bad.fits", bad, dtype=np.float64)
    with pytest.raises(ValueError, match=r"bad\.fits.*\[0, 1\]"):
        read_mask(tmp_path / "bad.fits")


def test_golden_flags_at_known_pixel_distances():
    npix, reso = 96, 1.7
    r = centre_distance_arcmin(npix, reso)
    assert r.min() == pytest.approx(np.hypot(0.5, 0.5) * reso, rel=1e-6)  # the centre lies between 4 pixels
    inside = np.argwhere((r > 9.0) & (r <= 10.0))[0]
    outside = np.argwhere((r > 10.0) & (r < 11.0))[0]
    masks = np.ones((3, npix, npix))
    masks[1][tuple(inside)] = 0.0
    masks[2][tuple(outside)] = 0.0
    np.testing.assert_array_equal(golden_flags(masks, radius_arcmin=10.0, reso_arcmin=reso), [True, False, True])


def test_golden_flags_on_a_healpix_mask_with_discs_at_known_distances():
    nside = 2048  # 1.7' pixels, as the Planck maps
    positions = [(30.0, 40.0), (120.0, -50.0), (250.0, 20.0), (300.0, -70.0)]
    offsets_arcmin = [5.0, 15.0, 5.0, 15.0]
    mask = np.ones(hp.nside2npix(nside), dtype=np.float32)
    for (lon, lat), d in zip(positions, offsets_arcmin):
        vec = hp.ang2vec(lon, lat + d / 60.0, lonlat=True)  # a 3' disc d arcmin north of the cluster
        mask[hp.query_disc(nside, vec, np.radians(3.0 / 60.0))] = 0.0
    lon, lat = np.array(positions).T
    cut = healpix.cutouts(mask, lon, lat)
    assert np.all(cut.min(axis=(1, 2)) == 0.0)  # every disc is in its cutout
    np.testing.assert_array_equal(golden_flags(cut), [False, True, False, True])


def test_unit_noise_field_variance_and_correlation():
    rng = np.random.default_rng(1)
    fwhm = 8.0 / 1.7
    g = unit_noise_field((512, 512), fwhm_pixels=fwhm, rng=rng)
    assert g.var() == pytest.approx(1.0, abs=0.03)
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    for lag in (1, 2, 4):  # Gaussian-smoothed white noise: correlation exp(-lag^2 / (4 sigma^2))
        corr = np.mean(g[:, lag:] * g[:, :-lag]) / g.var()
        assert corr == pytest.approx(np.exp(-(lag**2) / (4 * sigma**2)), abs=0.02)


def left_band_mask(npix=96):
    """Mask of the columns < 44 of the cutout, which reach within 6 arcmin of the centre."""
    m = np.ones((npix, npix))
    m[:, :44] = 0.0
    return m


def test_fill_masked_keeps_unmasked_and_inner_pixels_and_matches_the_local_noise():
    rng = np.random.default_rng(2)
    cutout = 3e-6 + 1.5e-6 * unit_noise_field((96, 96), fwhm_pixels=8.0 / 1.7, rng=rng)
    mask = left_band_mask()
    r = centre_distance_arcmin(96, 1.7)
    filled_region = (mask == 0) & (r > 10.0)
    kept = ~filled_region
    assert np.any((mask == 0) & (r <= 10.0))  # some masked pixels lie inside the Golden radius
    reference = cutout[(mask == 1) & (r > 10.0)]
    variances = []
    for seed in range(10):
        out = fill_masked(cutout, mask, seed=seed)
        np.testing.assert_array_equal(out[kept], cutout[kept])
        assert not np.array_equal(out[filled_region], cutout[filled_region])
        variances.append(np.mean((out[filled_region] - reference.mean()) ** 2))
    assert np.sqrt(np.mean(variances)) == pytest.approx(reference.std(), rel=0.10)
    np.testing.assert_array_equal(fill_masked(cutout, mask, seed=7), fill_masked(cutout, mask, seed=7))
    white = fill_masked(cutout, mask, seed=3, correlation_fwhm_arcmin=0.0)[filled_region]
    assert white.std() == pytest.approx(reference.std(), rel=0.10)
    assert white.mean() == pytest.approx(reference.mean(), abs=0.1 * reference.std())


def test_fill_masked_uses_a_given_noise_std_and_fills_nan():
    cutout = np.zeros((96, 96))
    cutout[5, 5] = np.nan
    mask = np.zeros((96, 96))  # everything masked: no reference pixel
    with pytest.raises(ValueError, match="pass noise_std"):
        fill_masked(cutout, mask, seed=0)
    out = fill_masked(cutout, mask, seed=0, noise_std=2.0, correlation_fwhm_arcmin=0.0)
    assert np.all(np.isfinite(out))
    outer = centre_distance_arcmin(96, 1.7) > 10.0
    assert out[outer].std() == pytest.approx(2.0, rel=0.05)
    np.testing.assert_array_equal(out[~outer], 0.0)
