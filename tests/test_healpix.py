"""Tests of szmass.healpix: gnomonic cutouts (against healpy.gnomview), painting, WCS, FITS I/O."""

from __future__ import annotations

from pathlib import Path

import healpy as hp
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from healpy.projector import GnomonicProj

from szmass import healpix
from szmass.healpix import cutout, cutout_pixels, cutout_wcs, cutouts, paint, read_healpix_map, write_cutout_fits


def gnomview(hpmap: np.ndarray, glon: float, glat: float, npix: int, reso: float) -> np.ndarray:
    """The reference: healpy's own gnomonic projection (returns a masked array)."""
    img = hp.gnomview(hpmap, rot=(glon, glat), xsize=npix, reso=reso, return_projected_map=True, no_plot=True)
    return np.ma.getdata(img)


def gaussian_blob_map(nside: int, glon: float, glat: float, sigma_arcmin: float) -> np.ndarray:
    """A RING map holding exp(-theta^2 / 2 sigma^2) around (glon, glat), zero beyond 6 sigma."""
    hpmap = np.zeros(hp.nside2npix(nside))
    centre = hp.ang2vec(glon, glat, lonlat=True)
    pix = hp.query_disc(nside, centre, np.radians(6 * sigma_arcmin / 60))
    theta = np.arccos(np.clip(np.array(hp.pix2vec(nside, pix)).T @ centre, -1, 1))
    hpmap[pix] = np.exp(-0.5 * (np.degrees(theta) * 60 / sigma_arcmin) ** 2)
    return hpmap


@pytest.fixture(scope="module")
def random_map() -> np.ndarray:
    return np.random.default_rng(7).standard_normal(hp.nside2npix(256))


def test_blob_cutout_is_centred_has_the_width_and_equals_gnomview() -> None:
    glon, glat, sigma, reso, npix = 30.0, 20.0, 10.0, 1.7, 96
    hpmap = gaussian_blob_map(1024, glon, glat, sigma)
    img = cutout(hpmap, glon, glat, npix=npix, reso_arcmin=reso)
    assert img.shape == (npix, npix) and img.dtype == np.float64
    assert np.array_equal(img, gnomview(hpmap, glon, glat, npix, reso))
    centroid = _centroid(img)
    np.testing.assert_allclose(centroid, (npix - 1) / 2, atol=0.5)
    # second moment: sigma^2 plus the nearest-pixel jitter (< 1 % of sigma^2 here)
    cols = np.arange(npix)[None, :]
    var = ((cols - centroid[1]) ** 2 * img).sum() / img.sum()
    np.testing.assert_allclose(np.sqrt(var) * reso, sigma, rtol=0.02)


@pytest.mark.parametrize(
    ("glon", "glat"),
    [
        (0.0, 0.0),
        (359.95, 10.0),
        (0.05, -10.0),
        (45.0, 89.5),
        (200.0, -89.5),
        (0.0, 90.0),
        (10.0, -90.0),
        (123.4, -32.1),
    ],
)
def test_cutouts_equal_gnomview_everywhere(random_map: np.ndarray, glon: float, glat: float) -> None:
    npix, reso = 40, 13.0  # 13' pixels over 7 arcmin HEALPix pixels: every kind of lookup occurs
    assert np.array_equal(
        cutout(random_map, glon, glat, npix=npix, reso_arcmin=reso), gnomview(random_map, glon, glat, npix, reso)
    )


def test_vectorised_cutouts_equal_single_ones_and_gnomview(random_map: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    glon = rng.uniform(0, 360, 12)
    glat = np.degrees(np.arcsin(rng.uniform(-1, 1, 12)))
    many = cutouts(random_map, glon, glat, npix=32, reso_arcmin=5.0)
    assert many.shape == (12, 32, 32)
    for k in range(12):
        assert np.array_equal(many[k], gnomview(random_map, glon[k], glat[k], 32, 5.0))


def _centroid(img: np.ndarray) -> np.ndarray:
    rows, cols = np.indices(img.shape)
    return np.array([(rows * img).sum(), (cols * img).sum()]) / img.sum()


def test_orientation_east_left_north_up() -> None:
    nside, reso, npix = 1024, 1.7, 96
    east = cutout(gaussian_blob_map(nside, 100.5, 0.0, 5.0), 100.0, 0.0, npix=npix, reso_arcmin=reso)
    north = cutout(gaussian_blob_map(nside, 100.0, 0.5, 5.0), 100.0, 0.0, npix=npix, reso_arcmin=reso)
    centre, offset = (npix - 1) / 2, 30.0 / reso  # 0.5 deg in pixels
    np.testing.assert_allclose(_centroid(east), [centre, centre - offset], atol=0.5)
    np.testing.assert_allclose(_centroid(north), [centre + offset, centre], atol=0.5)


def test_cutout_pixels_are_what_cutouts_read(random_map: np.ndarray) -> None:
    pix = cutout_pixels(256, [10.0, 20.0], [5.0, -5.0], npix=16, reso_arcmin=10.0)
    np.testing.assert_array_equal(
        random_map[pix], cutouts(random_map, [10.0, 20.0], [5.0, -5.0], npix=16, reso_arcmin=10.0)
    )


def test_bad_inputs_raise(random_map: np.ndarray) -> None:
    with pytest.raises(ValueError, match="glat"):
        cutout(random_map, 0.0, 91.0)
    with pytest.raises(ValueError, match="HEALPix"):
        cutout(random_map[:-1], 0.0, 0.0)
    with pytest.raises(ValueError, match="npix"):
        cutouts(random_map, [0.0], [0.0], npix=0)


def _gaussian_image(npix: int, sigma_pix: float, row0: float = 0.0, col0: float = 0.0) -> np.ndarray:
    rows, cols = np.indices((npix, npix)) - (npix - 1) / 2
    return np.exp(-0.5 * ((rows - row0) ** 2 + (cols - col0) ** 2) / sigma_pix**2)


def _plane_position_of_pixels(pix: np.ndarray, nside: int, glon: float, glat: float, reso: float, npix: int):
    """(row, col) offsets [image pixels] from the centre of the HEALPix centres ``pix``."""
    proj = GnomonicProj(rot=(glon, glat), xsize=npix, reso=reso)
    x, y = proj.vec2xy(*hp.pix2vec(nside, pix))
    dx = np.radians(reso / 60)
    return y / dx, x / dx


def test_paint_then_cutout_recovers_the_image() -> None:
    # HEALPix pixels (3.4') much smaller than image pixels (10'): the cutout reads the
    # interpolated image at HEALPix centres at most max_pixrad from its own pixel centres, so
    # |error| <= max|grad I| * max_pixrad + (max|I_xx| + max|I_yy|) * h^2 / 8 (bilinear), h = 1 px.
    nside, glon, glat, npix, reso, sigma = 1024, 250.0, -40.0, 48, 10.0, 4.0
    image = _gaussian_image(npix, sigma)
    hpmap = np.zeros(hp.nside2npix(nside))
    paint(hpmap, glon, glat, image, reso_arcmin=reso)
    back = cutout(hpmap, glon, glat, npix=npix, reso_arcmin=reso)
    max_pixrad = np.degrees(hp.max_pixrad(nside)) * 60 / reso  # in image pixels
    tolerance = np.exp(-0.5) / sigma * max_pixrad + 2 / sigma**2 / 8
    assert np.abs(back - image).max() <= tolerance
    # conservation: the map integrates the image (surface density times solid angle)
    pixel_area = hp.nside2pixarea(nside, degrees=True) * 3600
    np.testing.assert_allclose(hpmap.sum() * pixel_area, image.sum() * reso**2, rtol=2e-3)


def test_paint_interpolates_at_healpix_centres() -> None:
    # Exact geometry: the painted value of each HEALPix pixel is the bilinear interpolation of the
    # image at its centre's position in the gnomonic plane; the image here is a smooth analytic
    # function, so the values agree with it there within the bilinear error
    # (max|I_xx| + max|I_yy|) h^2 / 8 = 1 / (4 sigma^2) for a unit Gaussian, h = 1 pixel.
    nside, glon, glat, npix, reso, sigma = 512, 12.0, 75.0, 40, 6.0, 3.0
    row0, col0 = 2.3, -4.1
    image = _gaussian_image(npix, sigma, row0, col0)
    hpmap = np.zeros(hp.nside2npix(nside))
    paint(hpmap, glon, glat, image, reso_arcmin=reso)
    painted = np.flatnonzero(hpmap)
    row, col = _plane_position_of_pixels(painted, nside, glon, glat, reso, npix)
    inner = (np.abs(row) < (npix - 1) / 2) & (np.abs(col) < (npix - 1) / 2)
    expected = np.exp(-0.5 * ((row - row0) ** 2 + (col - col0) ** 2) / sigma**2)
    np.testing.assert_allclose(hpmap[painted][inner], expected[inner], rtol=0, atol=1 / (4 * sigma**2))
    # every pixel centre inside the image footprint was painted, none outside
    disc = hp.query_disc(nside, hp.ang2vec(glon, glat, lonlat=True), np.radians(npix * reso / 60))
    row, col = _plane_position_of_pixels(disc, nside, glon, glat, reso, npix)
    footprint = (np.abs(row) <= npix / 2) & (np.abs(col) <= npix / 2)
    assert set(disc[footprint]) == set(painted)


@pytest.mark.parametrize(("glon", "glat"), [(359.07, -32.12), (10.0, 0.0), (200.0, 89.5), (0.0, -60.0)])
def test_wcs_matches_the_healpy_projector(glon: float, glat: float) -> None:
    npix, reso = 96, 1.7
    wcs = cutout_wcs(glon, glat, npix, reso)
    proj = GnomonicProj(rot=(glon, glat), xsize=npix, reso=reso)
    for row, col in [
        ((npix - 1) / 2, (npix - 1) / 2),
        (0, 0),
        (npix - 1, 0),
        (0, npix - 1),
        (npix - 1, npix - 1),
        (10, 70),
    ]:
        lon_hp, lat_hp = proj.xy2ang(proj.ij2xy(row, col), lonlat=True)
        lon_w, lat_w = wcs.pixel_to_world_values(col, row)
        separation = hp.rotator.angdist([lon_hp, lat_hp], [lon_w, lat_w], lonlat=True)[0]
        assert np.degrees(separation) * 60 / reso < 1e-3


def test_write_cutout_fits_round_trip(tmp_path: Path) -> None:
    image = np.random.default_rng(1).standard_normal((96, 96))
    path = tmp_path / "out" / "cluster.fits"
    write_cutout_fits(
        path, image, 359.07, -32.12, reso_arcmin=1.7, header_cards={"Z": 0.1496, "NAME": ("PSZ2 X", "cluster")}
    )
    assert [p.name for p in path.parent.iterdir()] == ["cluster.fits"]
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(hdul[0].data, image)
        header = hdul[0].header
        assert header["Z"] == 0.1496 and header["NAME"] == "PSZ2 X"
        assert header["CTYPE1"] == "GLON-TAN" and header["CDELT1"] < 0
        np.testing.assert_allclose(WCS(header).pixel_to_world_values(47.5, 47.5), (359.07, -32.12), atol=1e-9)
    with pytest.raises(ValueError, match="square"):
        write_cutout_fits(path, image[:10], 0.0, 0.0, reso_arcmin=1.7, header_cards={})


def test_read_healpix_map_reorders_nested_and_checks_nside(tmp_path: Path) -> None:
    nside = 16
    ring = np.arange(hp.nside2npix(nside), dtype=np.float64)
    path = tmp_path / "nested.fits"
    hp.write_map(path, hp.reorder(ring, r2n=True), nest=True, dtype=np.float64)
    np.testing.assert_array_equal(read_healpix_map(path), ring)
    np.testing.assert_array_equal(read_healpix_map(path, nside=nside, nest=True), ring)
    with pytest.raises(ValueError, match=r"nested\.fits.*NSIDE is 16, expected 32"):
        read_healpix_map(path, nside=32)
    with pytest.raises(ValueError, match=r"nested\.fits.*ORDERING"):
        read_healpix_map(path, nest=False)


def test_read_healpix_map_unseen_and_nan_become_nan(tmp_path: Path) -> None:
    values = np.ones(hp.nside2npix(8), dtype=np.float32)
    values[[3, 7]] = hp.UNSEEN
    values[11] = np.nan
    path = tmp_path / "bad.fits"
    hp.write_map(path, [values, np.where(values == 1, 2, values)], column_names=["I", "Q"], dtype=np.float32)
    out = read_healpix_map(path, field="Q")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(np.flatnonzero(np.isnan(out)), [3, 7, 11])
    assert np.all(out[np.isfinite(out)] == 2.0)
    with pytest.raises(ValueError, match="no column 'U'"):
        read_healpix_map(path, field="U")


def test_read_healpix_map_without_ordering_needs_nest(tmp_path: Path) -> None:
    nside = 4
    ring = np.arange(hp.nside2npix(nside), dtype=np.float64)
    hdu = fits.BinTableHDU.from_columns([fits.Column(name="I", format="D", array=hp.reorder(ring, r2n=True))])
    hdu.header["NSIDE"] = nside
    path = tmp_path / "plain.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with pytest.raises(ValueError, match=r"plain\.fits.*no ORDERING"):
        read_healpix_map(path)
    np.testing.assert_array_equal(read_healpix_map(path, nest=True), ring)


def test_write_healpix_map_round_trip(tmp_path):
    nside = 16
    m = np.random.default_rng(5).normal(size=hp.nside2npix(nside))
    m[3] = np.nan
    path = tmp_path / "map.fits"
    healpix.write_healpix_map(path, m)
    back = healpix.read_healpix_map(path, nside=nside)
    assert np.isnan(back[3])
    np.testing.assert_array_equal(np.delete(back, 3), np.delete(m.astype(np.float32), 3))
