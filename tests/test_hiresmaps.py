"""Tests of szmass.hiresmaps: the high-resolution maps averaged onto the network's grid, in a map store with the
clean store's maps and coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from szmass.hiresmaps import average_onto, field_pixel_arcmin, hires_store
from szmass.mapstore import HIRES_COORDS, HiresWriter, MapConfig, gather, maps_dataset, open_maps, write_part
from workflow_utils import validated_config

DEFAULTS = validated_config(ymaps={}, instrument={})
HIRES_NPIX, PIXEL_ARCSEC, NPIX = 40, 240.0, 8  # a 160 arcmin field: 5 x 5 high-resolution pixels per map pixel
CFG = MapConfig.from_mapping(MapConfig.from_sections(DEFAULTS["ymaps"], DEFAULTS["instrument"]).attrs()
                             | {"projections": 2, "npix_out": NPIX, "hires_npix": HIRES_NPIX, "pixel_arcsec": PIXEL_ARCSEC})


def test_average_onto_is_the_block_mean_and_keeps_y() -> None:
    rng = np.random.default_rng(1)
    ymap = rng.random((HIRES_NPIX, HIRES_NPIX)) * 1e-5
    out = average_onto(ymap, PIXEL_ARCSEC, NPIX)
    blocks = ymap.reshape(NPIX, 5, NPIX, 5).mean(axis=(1, 3))
    np.testing.assert_allclose(out, blocks, rtol=1e-12, atol=0)
    assert field_pixel_arcmin(HIRES_NPIX, PIXEL_ARCSEC, NPIX) == pytest.approx(20.0)
    # pixels that do not divide the field: Y = sum(y) x pixel area is still kept (arcmin^2)
    odd = average_onto(ymap, PIXEL_ARCSEC, 7)
    y_in = ymap.sum() * (PIXEL_ARCSEC / 60) ** 2
    assert odd.sum() * field_pixel_arcmin(HIRES_NPIX, PIXEL_ARCSEC, 7) ** 2 == pytest.approx(y_in, rel=1e-12)


def stores(tmp_path: Path, *, drop: int | None = None, twice: bool = False, nan: bool = False,
           extra: bool = False) -> tuple[Path, list[Path], dict[tuple[int, int], np.ndarray]]:
    """A clean store of two snapshots (two halos each, two lines of sight) and their high-resolution stores,
    optionally spoiled; the high-resolution maps by (halo_id, projection)."""
    rng = np.random.default_rng(2)
    parts, hires_paths, truth = [], [], {}
    for snapshot, halos in ((3, [11, 12]), (5, [21, 22])):
        n = 2 * len(halos)
        coords = {"sim": np.full(n, "gx"), "region": np.full(n, 1), "snapshot": np.full(n, snapshot),
                  "halo_id": np.repeat(halos, 2), "projection": np.tile([0, 1], len(halos)),
                  "redshift": np.full(n, 0.05 * snapshot), "M500": 10 ** rng.uniform(14, 15, n),
                  "R500": rng.uniform(500, 1500, n), "M200": 10 ** rng.uniform(14.1, 15.1, n),
                  "R200": rng.uniform(800, 2400, n), "Y500_cyl": rng.uniform(1e-4, 1e-2, n),
                  "Y500_sph": rng.uniform(1e-4, 1e-2, n), "model": np.full(n, "gadget_x")}  # fmt: skip
        part = maps_dataset(rng.random((n, NPIX, NPIX)), coords, sim="gx", region=1, snapshot=snapshot, config=CFG)
        write_part(part, tmp_path / "parts" / f"s{snapshot}.zarr")
        parts.append(tmp_path / "parts" / f"s{snapshot}.zarr")
        hires = HiresWriter(tmp_path / "hires" / f"s{snapshot}.zarr", HIRES_NPIX, CFG.attrs())
        for m in reversed(range(n)):  # in another order than the clean store's
            if drop == m and snapshot == 5:
                continue
            ymap = rng.random((1, HIRES_NPIX, HIRES_NPIX)) * 1e-5
            if nan and m == 1:
                ymap[0, 3, 4] = np.nan
            key = {k: coords[k][m : m + 1] for k in HIRES_COORDS}
            if extra and m == 0:
                key["halo_id"] = np.array([99])
            hires.append(ymap, key)
            if twice and m == 0:
                hires.append(ymap, key)
            truth[int(coords["halo_id"][m]), int(coords["projection"][m])] = ymap[0]
    gather(parts, tmp_path / "clean.zarr")
    return tmp_path / "clean.zarr", [tmp_path / "hires"], truth


def test_hires_store_holds_the_clean_maps_coordinates_and_their_averaged_high_resolution_maps(tmp_path: Path) -> None:
    clean_path, hires_paths, truth = stores(tmp_path)
    hires_store(clean_path, hires_paths, tmp_path / "hires.zarr")
    clean, out = open_maps(clean_path, need=["M200"]), open_maps(tmp_path / "hires.zarr", need=["M200"])
    assert out["y"].shape == clean["y"].shape == (8, NPIX, NPIX) and out["y"].dtype == np.float32
    for name in clean.coords:
        np.testing.assert_array_equal(out[name].values, clean[name].values)
    for m in range(out.sizes["map"]):
        ymap = truth[int(out["halo_id"][m]), int(out["projection"][m])]
        expect = ymap.reshape(NPIX, 5, NPIX, 5).mean(axis=(1, 3))
        np.testing.assert_allclose(out["y"].values[m], expect, rtol=1e-6)
    assert out.attrs["fwhm_arcmin"] == 0.0 and out.attrs["pixel_arcmin_out"] == pytest.approx(20.0)
    assert out.attrs["npix_out"] == NPIX and "sim" not in out.attrs


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ({"drop": 2}, r"1 map\(s\) of .*clean.zarr have none in 2 high-resolution store\(s\), e.g. \[\{'sim': 'gx', "
                      r"'region': 1, 'snapshot': 5, 'halo_id': 22, 'projection': 0\}\]; make the maps with ymaps.save_hires: true"),
        ({"twice": True}, r"hires/s3.zarr: map \{'sim': 'gx', 'region': 1, 'snapshot': 3, 'halo_id': 11, 'projection': 0\} given twice"),
        ({"nan": True}, r"hires/s3.zarr: map .*'halo_id': 11, 'projection': 1\} has 1 non-finite pixel"),
        ({"extra": True}, r"hires/s3.zarr: map .*'halo_id': 99, 'projection': 0\} is not in .*clean.zarr"),
    ],
)
def test_hires_store_refuses_maps_that_do_not_match(tmp_path: Path, spoil: dict, message: str) -> None:
    clean_path, hires_paths, _ = stores(tmp_path, **spoil)
    with pytest.raises(ValueError, match=message):
        hires_store(clean_path, hires_paths, tmp_path / "hires.zarr")
    assert not (tmp_path / "hires.zarr").exists()  # nothing partial left


def test_hires_store_refuses_maps_of_another_size(tmp_path: Path) -> None:
    clean_path, _, _ = stores(tmp_path)
    HiresWriter(tmp_path / "other" / "s.zarr", 32, CFG.attrs()).append(
        np.zeros((1, 32, 32)), {k: xr.DataArray([v]).values for k, v in
                                {"sim": "gx", "region": 1, "snapshot": 3, "halo_id": 11, "projection": 0, "redshift": 0.1,
                                 "M500": 1e14, "R500": 900.0, "M200": 1.5e14, "R200": 1300.0, "model": "gadget_x"}.items()})
    with pytest.raises(ValueError, match=r"other/s.zarr: maps of shape \(32, 32\), expected \(40, 40\)"):
        hires_store(clean_path, [tmp_path / "other"], tmp_path / "hires.zarr")
