"""Tests of szmass.mapstore (part files, gathering into the clean-map store, the map settings) and of the
projection job that fills it (szmass.projection)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from szmass.mapstore import (
    LATER_COORDS,
    MAP_COORDS,
    MapConfig,
    gather,
    maps_dataset,
    open_maps,
    part_name,
    part_stores,
    write_part,
)
from szmass.projection import HALO_COLUMNS, clean_part, write_clean_parts
from szmass.settings import MissingKeyError
from workflow_utils import validated_config

DEFAULTS = validated_config(ymaps={}, instrument={}, halo_selection={})
"""A config whose ymaps, instrument and halo_selection sections are the schema's defaults."""
SETTINGS = MapConfig.from_sections(DEFAULTS["ymaps"], DEFAULTS["instrument"]).attrs()
"""Every map setting, the schema's defaults (a mapping for MapConfig.from_mapping)."""
CFG = MapConfig.from_mapping(SETTINGS | {"projections": 3, "npix_out": 8})


def make_part(sim: str, region: int, snapshot: int, halo_ids: list[int], seed: int, config: MapConfig = CFG) -> xr.Dataset:
    """A part with random maps; its maps listed in a scrambled order (gather must sort them)."""
    rng = np.random.default_rng(seed)
    n_proj = len(config.projections)
    n = len(halo_ids) * n_proj
    order = rng.permutation(n)
    coords = {
        "sim": np.full(n, sim),
        "region": np.full(n, region),
        "snapshot": np.full(n, snapshot),
        "halo_id": np.repeat(halo_ids, n_proj).astype(np.int64)[order],
        "projection": np.tile(config.projections, len(halo_ids)).astype(np.int64)[order],
        "redshift": np.full(n, 0.1 * snapshot),
        "M500": 10 ** rng.uniform(14, 15, n),
        "R500": rng.uniform(500, 1500, n),
        "M200": 10 ** rng.uniform(14.1, 15.1, n),
        "R200": rng.uniform(800, 2400, n),
        "Y500_cyl": rng.uniform(1e-4, 1e-2, n),
        "Y500_sph": rng.uniform(1e-4, 1e-2, n),
        "model": np.full(n, "gadget_x"),
    }
    y = rng.random((n, config.npix_out, config.npix_out)) * 1e-5
    return maps_dataset(y, coords, sim=sim, region=region, snapshot=snapshot, config=config)


def write_parts(tmp_path: Path, parts: list[xr.Dataset]) -> list[Path]:
    paths = []
    for k, ds in enumerate(parts):
        path = tmp_path / "parts" / f"part{k}.zarr"
        write_part(ds, path)
        paths.append(path)
    return paths


def test_map_config_from_mapping() -> None:
    assert MapConfig.from_mapping(SETTINGS).projections == tuple(range(27))
    assert MapConfig.from_mapping(SETTINGS | {"projections": 4}).projections == (0, 1, 2, 3)
    assert MapConfig.from_mapping(SETTINGS | {"projections": [5, 2]}).projections == (5, 2)
    with pytest.raises(ValueError, match="unknown key.*'beam'"):
        MapConfig.from_mapping(SETTINGS | {"beam": 10})
    with pytest.raises(ValueError, match="projections"):
        MapConfig.from_mapping(SETTINGS | {"projections": [0, 27]})
    with pytest.raises(ValueError, match="repeated"):
        MapConfig.from_mapping(SETTINGS | {"projections": [1, 1]})
    with pytest.raises(MissingKeyError, match=r"^maps: missing key\(s\) maps.kernel, maps.route;"):
        MapConfig.from_mapping({k: v for k, v in SETTINGS.items() if k not in ("kernel", "route")})


def test_round_trip_sorted_and_chunked_by_halo(tmp_path: Path) -> None:
    parts = [
        make_part("the300", 2, 5, [30, 10], seed=1),
        make_part("the300", 1, 5, [7], seed=2),
        make_part("the300", 1, 4, [], seed=3),  # snapshots with no selected halo, one of them gathered first
        make_part("gizmo", 0, 4, [], seed=3),
        make_part("gizmo", 1, 4, [3], seed=4),
    ]
    paths = write_parts(tmp_path, parts)
    out = tmp_path / "maps" / "clean.zarr"
    gather(paths, out)
    ds = open_maps(out)
    assert ds["y"].dtype == np.float32 and ds["y"].shape == (4 * 3, 8, 8)
    keys = list(zip(*(ds[k].values.tolist() for k in ("sim", "region", "snapshot", "halo_id", "projection"))))
    assert keys == sorted(keys)
    assert [k[:4] for k in keys[::3]] == [("gizmo", 1, 4, 3), ("the300", 1, 5, 7), ("the300", 2, 5, 10), ("the300", 2, 5, 30)]
    # every map with its coordinates survives unchanged
    source = xr.concat([p for p in parts if p.sizes["map"]], dim="map")
    for m in range(ds.sizes["map"]):
        row = ds.isel(map=m)
        match = np.nonzero(
            (source["sim"].values == row["sim"].item())
            & (source["region"].values == row["region"].item())
            & (source["snapshot"].values == row["snapshot"].item())
            & (source["halo_id"].values == row["halo_id"].item())
            & (source["projection"].values == row["projection"].item())
        )[0]
        assert match.size == 1
        src = source.isel(map=int(match[0]))
        np.testing.assert_array_equal(row["y"].values, src["y"].values)
        for name in MAP_COORDS:
            assert row[name].item() == src[name].item(), name
    assert ds["M500"].attrs["units"] == "Msun" and ds["Y500_cyl"].attrs["units"] == "arcmin2"
    assert ds.attrs["projections"] == [0, 1, 2] and ds.attrs["fwhm_arcmin"] == 10.0
    assert "sim" not in ds.attrs  # the job identity belongs to parts only
    # chunked by halo: one chunk holds the 3 maps of one halo; compressed
    arr = zarr.open_array(out / "y", mode="r")
    assert arr.chunks == (3, 8, 8)
    assert arr.compressors


def test_gather_is_deterministic_whatever_the_part_order(tmp_path: Path) -> None:
    parts = [make_part("s", r, 1, [r * 10 + 1, r * 10 + 2], seed=r) for r in (3, 1, 2)]
    paths = write_parts(tmp_path, parts)
    gather(paths, tmp_path / "a.zarr")
    gather(paths[::-1], tmp_path / "b.zarr")
    a, b = open_maps(tmp_path / "a.zarr").load(), open_maps(tmp_path / "b.zarr").load()
    xr.testing.assert_identical(a, b)


def test_gather_reads_a_projection_jobs_directory_of_parts(tmp_path: Path) -> None:
    """A job's directory of part stores gathers to the same store as the parts named one by one."""
    parts = [make_part("s", 1, snap, [snap * 10 + 1, snap * 10 + 2], seed=snap) for snap in (3, 1, 2)]
    paths = write_parts(tmp_path, parts[:2])
    write_part(parts[2], tmp_path / "job" / "s_0001_002.zarr")
    write_part(parts[0], tmp_path / "job" / "s_0001_003.zarr")
    assert part_stores([tmp_path / "job", paths[1]]) == [tmp_path / "job" / "s_0001_002.zarr",
                                                         tmp_path / "job" / "s_0001_003.zarr", paths[1]]
    gather([tmp_path / "job", paths[1]], tmp_path / "a.zarr")
    gather([*paths, tmp_path / "job" / "s_0001_002.zarr"], tmp_path / "b.zarr")
    a, b = open_maps(tmp_path / "a.zarr").load(), open_maps(tmp_path / "b.zarr").load()
    xr.testing.assert_identical(a, b)
    assert a["snapshot"].values.tolist() == [1] * 6 + [2] * 6 + [3] * 6


def test_write_clean_parts_is_all_or_nothing(tmp_path: Path) -> None:
    """One part store per snapshot, named by part_name; a failing snapshot leaves no directory behind."""
    from szmass.cosmology import make_cosmology

    halos = pd.DataFrame(columns=[*HALO_COLUMNS, "redshift"])
    out = tmp_path / "parts" / "0007_c1"
    jobs = [(s, tmp_path / f"no-snapshot-{s}", halos) for s in (12, 13)]  # no halo selected: nothing is read
    assert write_clean_parts(jobs, out, sim="s", region=7, cosmo=make_cosmology(), config=CFG) == 0
    assert sorted(p.name for p in out.iterdir()) == [part_name("s", 7, 12), part_name("s", 7, 13)]
    assert [open_maps(p).attrs["snapshot"] for p in part_stores([out])] == [12, 13]
    bad = [*jobs, (14, tmp_path / "x", halos.drop(columns="R500"))]
    with pytest.raises(ValueError, match="R500"):
        write_clean_parts(bad, tmp_path / "parts" / "0007_c2", sim="s", region=7, cosmo=make_cosmology(), config=CFG)
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["0007_c1"]


def test_gather_only_empty_parts(tmp_path: Path) -> None:
    paths = write_parts(tmp_path, [make_part("s", 1, 1, [], seed=0), make_part("s", 2, 1, [], seed=0)])
    gather(paths, tmp_path / "clean.zarr")
    ds = open_maps(tmp_path / "clean.zarr")
    assert ds.sizes["map"] == 0 and ds["y"].shape == (0, 8, 8)
    assert ds["sim"].values.size == 0


def test_gather_rejects_inconsistent_parts_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "clean.zarr"
    other = MapConfig.from_mapping(SETTINGS | {"projections": 3, "npix_out": 8, "fwhm_arcmin": 5.0})
    paths = write_parts(tmp_path, [make_part("s", 1, 1, [1], seed=0), make_part("s", 2, 1, [2], seed=0, config=other)])
    with pytest.raises(ValueError, match=r"part1.zarr: map settings"):
        gather(paths, out)
    assert not out.exists()
    paths = write_parts(tmp_path / "dup", [make_part("s", 1, 1, [1], seed=0), make_part("s", 1, 1, [2], seed=1)])
    with pytest.raises(ValueError, match="same job"):
        gather(paths, out)
    # a halo missing some of its projections
    part = make_part("s", 1, 1, [1, 2], seed=0)
    (path,) = write_parts(tmp_path / "short", [part.isel(map=slice(0, 5))])
    with pytest.raises(ValueError, match=r"part0.zarr: halos with \[2, 3\] maps, expected 3"):
        gather([path], out)
    assert not out.exists()
    with pytest.raises(ValueError, match="no part files"):
        gather([], out)


def test_open_maps_names_missing_field(tmp_path: Path) -> None:
    ds = make_part("s", 1, 1, [1], seed=0).drop_vars("Y500_sph")
    ds.to_zarr(tmp_path / "bad.zarr", consolidated=False)
    with pytest.raises(ValueError, match=r"bad.zarr: field\(s\) \['Y500_sph'\] missing"):
        open_maps(tmp_path / "bad.zarr")


def test_a_store_without_m200_fails_only_when_m200_is_needed(tmp_path: Path) -> None:
    """A store of an older version (no M200, R200) opens for every other use; asking for M200 names it."""
    old = make_part("s", 1, 1, [1, 2], seed=0).drop_vars(list(LATER_COORDS))
    old.to_zarr(tmp_path / "old.zarr", consolidated=False)
    ds = open_maps(tmp_path / "old.zarr")
    assert list(ds.coords)[:8] == ["sim", "region", "snapshot", "halo_id", "projection", "redshift", "M500", "R500"]
    assert "M200" not in ds.variables and ds.sizes["map"] == 6
    with pytest.raises(ValueError, match=r"^map store .*old\.zarr: field\(s\) \['M200'\] missing \(a store written by "
                                         r"an older version: rebuild it\)"):
        open_maps(tmp_path / "old.zarr", need=["M200"])
    with pytest.raises(ValueError, match=r"old\.zarr: field\(s\) \['M200', 'R200'\] missing"):
        gather([tmp_path / "old.zarr"], tmp_path / "clean.zarr")  # a gathered store has every coordinate
    with pytest.raises(FileNotFoundError, match="nowhere.zarr"):
        open_maps(tmp_path / "nowhere.zarr")


def test_maps_dataset_validates_shapes() -> None:
    good = make_part("s", 1, 1, [1], seed=0)
    coords = {k: good[k].values for k in MAP_COORDS}
    with pytest.raises(ValueError, match=r"coordinate 'M500' has shape \(2,\), expected \(3,\)"):
        maps_dataset(good["y"].values, coords | {"M500": np.ones(2)}, sim="s", region=1, snapshot=1, config=CFG)
    with pytest.raises(ValueError, match=r"\['model'\] missing"):
        maps_dataset(good["y"].values, {k: v for k, v in coords.items() if k != "model"}, sim="s", region=1,
                     snapshot=1, config=CFG)


def test_clean_part_without_halos_reads_nothing(tmp_path: Path) -> None:
    halos = pd.DataFrame(columns=[*HALO_COLUMNS, "redshift"])
    from szmass.cosmology import make_cosmology

    ds = clean_part(tmp_path / "no-such-snapshot", halos, sim="s", region=1, snapshot=2, cosmo=make_cosmology(),
                    config=CFG, hires_path=tmp_path / "hires.zarr")
    assert ds.sizes["map"] == 0 and ds["y"].shape == (0, 8, 8)
    hires = xr.open_dataset(tmp_path / "hires.zarr", engine="zarr", consolidated=False)
    assert hires["y"].shape == (0, 1920, 1920) and hires.attrs["snapshot"] == 2
    assert (ds.attrs["sim"], ds.attrs["region"], ds.attrs["snapshot"]) == ("s", 1, 2)
    with pytest.raises(ValueError, match=r"columns \['R500'\] missing"):
        clean_part(tmp_path / "x", halos.drop(columns="R500"), sim="s", region=1, snapshot=2, cosmo=make_cosmology(),
                   config=CFG)


def test_clean_part_of_a_synthetic_snapshot(tmp_path: Path) -> None:
    """End to end on a coarse synthetic region: the real writer/reader, halo table, projection, instrument, store."""
    from szmass.cosmology import make_cosmology
    from szmass.halos import HaloSelection, select_halos
    from szmass.sims import read_snapshot
    from szmass.synth import SynthConfig, generate_region_snapshot
    from szmass.ymap import y500_cyl_arcmin2, y_weight_kpc2

    cosmo = make_cosmology()
    synth = SynthConfig.from_mapping(
        {"gas_particle_mass": 2e10, "dm_particle_mass": 1e11, "halos_per_region": 2, "region_radius": 8000, "n_neighbours": 32}
    )
    snap_path, ahf_path = tmp_path / "snap_100", tmp_path / "snap_100.AHF_halos"
    ahf = generate_region_snapshot(synth, cosmo, region=1, snapshot=100, redshift=0.2, seed=5,
                                   snapshot_path=snap_path, ahf_path=ahf_path)
    halos = select_halos(ahf, ahf_path=ahf_path, sim="synth", region=1, snapshot=100, redshift=0.2, h=float(cosmo.h),
                         model="gadget_x", selection=HaloSelection.from_mapping(DEFAULTS["halo_selection"] | {"m500_min": 1e13}),
                         cosmo=cosmo)
    assert len(halos) >= 1
    config = MapConfig.from_mapping(SETTINGS | {"hires_npix": 128, "pixel_arcsec": 30.0, "projections": [0, 9, 18],
                                                 "npix_out": 40})
    hires_path = tmp_path / "hires.zarr"
    ds = clean_part(snap_path, halos, sim="synth", region=1, snapshot=100, cosmo=cosmo, config=config,
                    hires_path=hires_path)
    n = 3 * len(halos)
    assert ds["y"].shape == (n, 40, 40) and ds["y"].dtype == np.float32
    ids = np.sort(halos["halo_id"].to_numpy())
    np.testing.assert_array_equal(ds["halo_id"].values, np.repeat(ids, 3))
    np.testing.assert_array_equal(ds["projection"].values, np.tile([0, 9, 18], len(halos)))
    assert np.all(ds["redshift"].values == pytest.approx(0.2, rel=1e-6))
    assert np.all(np.isfinite(ds["y"].values)) and np.all(ds["y"].values.sum(axis=(1, 2)) > 0)
    # Y500_sph agrees with the particles of a full read inside R500 (minimum image)
    snap = read_snapshot(snap_path)
    box = snap.box_size * snap.scale_factor / snap.h
    d_a = cosmo.angular_diameter_distance(snap.redshift).to("kpc").value
    for _, halo in halos.iterrows():
        d = snap.pos - halo[["centre_x", "centre_y", "centre_z"]].to_numpy(float)
        d -= box * np.round(d / box)
        inside = np.sum(d**2, axis=1) < halo["R500"] ** 2
        expected = y_weight_kpc2(snap.mass[inside], snap.temperature[inside], snap.ne[inside]).sum() / d_a**2 * (180 * 60 / np.pi) ** 2
        got = ds["Y500_sph"].values[ds["halo_id"].values == halo["halo_id"]]
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        cyl = ds["Y500_cyl"].values[ds["halo_id"].values == halo["halo_id"]]
        assert np.all(cyl > got)
    # the high-resolution maps written on request: same maps in the same order, Y500_cyl recomputed from them
    hires = xr.open_dataset(hires_path, engine="zarr", consolidated=False, chunks=None)
    assert hires["y"].shape == (n, 128, 128) and hires["y"].dtype == np.float32
    for name in ("halo_id", "projection", "M500", "R500", "M200", "R200", "model"):
        np.testing.assert_array_equal(hires[name].values, ds[name].values)
    # the halo table's M200, R200 carried per map; M200 > M500 and R200 > R500 for these hosts
    by_halo = halos.set_index("halo_id").loc[ds["halo_id"].values]
    for name in ("M500", "R500", "M200", "R200"):
        np.testing.assert_array_equal(ds[name].values, by_halo[name].to_numpy())
    assert np.all(ds["M200"].values > ds["M500"].values) and np.all(ds["R200"].values > ds["R500"].values)
    r500_arcmin = ds["R500"].values / d_a * (180 * 60 / np.pi)
    y_cyl = [y500_cyl_arcmin2(hires["y"].values[m].astype(float), 0.5, r500_arcmin[m]) for m in range(n)]
    # Y500_cyl is the pixel-free aperture integral; the 30" pixels sample the aperture's edge to ~2e-3
    np.testing.assert_allclose(y_cyl, ds["Y500_cyl"].values, rtol=5e-3)
    path = tmp_path / "part.zarr"
    write_part(ds, path)
    gather([path], tmp_path / "clean.zarr")
    xr.testing.assert_identical(open_maps(tmp_path / "clean.zarr").load().drop_attrs(), ds.drop_attrs())


def test_map_config_from_the_sections_of_a_validated_config() -> None:
    """Every shipped config, validated by the schema, gives its map settings; the instrument's map_npix is the
    observed maps' side, the ymaps' hires_npix the projection grid's."""
    for name in ("config.yaml", "ci.yaml", "study.yaml", "scale.yaml"):
        cfg = validated_config(name)
        maps = MapConfig.from_sections(cfg["ymaps"], cfg["instrument"])
        assert maps.hires_npix == cfg["ymaps"]["hires_npix"] and maps.npix_out == cfg["instrument"]["map_npix"]
    cfg = validated_config("ci.yaml")
    assert (cfg["ymaps"]["route"], cfg["instrument"]["map_npix"]) == ("fast", 96)  # filled in from the schema
    cfg = validated_config(ymaps={"hires_npix": 384, "projections": 3, "save_hires": True},
                           instrument={"map_npix": 64, "pixel_arcmin": 2.0, "fwhm_arcmin": 5.0})
    maps = MapConfig.from_sections(cfg["ymaps"], cfg["instrument"])
    assert (maps.hires_npix, maps.projections, maps.npix_out, maps.pixel_arcmin_out, maps.fwhm_arcmin) == \
        (384, (0, 1, 2), 64, 2.0, 5.0)
    assert maps.kernel == "wendland_c4" and maps.depth_r500 == 5.0 and maps.route == "fast"


def test_map_config_names_a_missing_or_unknown_key() -> None:
    ymaps, instrument = DEFAULTS["ymaps"], DEFAULTS["instrument"]
    with pytest.raises(MissingKeyError, match=r"^ymaps: missing key\(s\) ymaps.depth_r500; pass the section of a "
                                              r"config validated by workflow/schemas/config.schema.yaml"):
        MapConfig.from_sections({k: v for k, v in ymaps.items() if k != "depth_r500"}, instrument)
    with pytest.raises(MissingKeyError, match=r"^instrument: missing key\(s\) instrument.map_npix;"):
        MapConfig.from_sections(ymaps, {k: v for k, v in instrument.items() if k != "map_npix"})
    with pytest.raises(ValueError, match=r"instrument: unknown key\(s\) \['beam'\]"):
        MapConfig.from_sections(ymaps, instrument | {"beam": 10.0})


def test_map_config_route() -> None:
    assert MapConfig.from_sections(DEFAULTS["ymaps"], DEFAULTS["instrument"]).route == "fast"
    hires = DEFAULTS["ymaps"] | {"route": "hires", "save_hires": False}
    assert MapConfig.from_sections(hires, DEFAULTS["instrument"]).route == "hires"
    with pytest.raises(ValueError, match=r"maps: route must be one of \('fast', 'hires'\), got 'medium'"):
        MapConfig.from_sections(DEFAULTS["ymaps"] | {"route": "medium"}, DEFAULTS["instrument"])
