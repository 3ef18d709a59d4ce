"""Tests of szmass.provenance: the record, its round trip through zarr, FITS and sidecars, and the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import healpy as hp
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.io import fits
from reference_data import PSZ2_FILE

import szmass
from szmass import provenance as prov
from szmass.cli import main
from szmass.healpix import read_healpix_map, write_cutout_fits, write_healpix_map

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"seed": 7, "cosmology": {"H0": 67.77, "Om0": 0.307115}, "sims": {"synth": {"snapshots": {126: 0.045}}},
          "training": {"learning_rate": 1.0e-4, "redshift_edges": [0.0, 0.1, 0.2, 0.4, 1.0]}}
KEYS = {"config_sha256", "szmass", "git_commit", "git_dirty", "python", "numpy", "numba", "healpy", "tensorflow",
        "zarr", "astropy", "xarray", "keras", "rule"}


@pytest.fixture(scope="module")
def record() -> dict[str, str]:
    return prov.provenance_record(CONFIG, rule="test_rule")


def _git_head() -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_record_fields_and_config_checksum() -> None:
    prov.git_state.cache_clear()
    head_before = _git_head()
    rec = prov.provenance_record(CONFIG, rule="clean_maps")
    head_after = _git_head()
    assert set(rec) == KEYS and all(isinstance(v, str) for v in rec.values())
    canonical = json.dumps(CONFIG, sort_keys=True, separators=(",", ":"))
    assert rec["config_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert len(rec["config_sha256"]) == 64
    # key order does not matter; any change of a value does
    reordered = dict(reversed(list(CONFIG.items())))
    assert prov.provenance_record(reordered)["config_sha256"] == rec["config_sha256"]
    changed = json.loads(json.dumps(CONFIG))
    changed["training"]["learning_rate"] = 2.0e-4
    assert prov.provenance_record(changed)["config_sha256"] != rec["config_sha256"]
    assert prov.provenance_record(None)["config_sha256"] == "none"
    assert rec["numpy"] == np.__version__ and rec["healpy"] == hp.__version__ and rec["xarray"] == xr.__version__
    assert rec["szmass"] == szmass.__version__ and rec["python"] == platform.python_version()
    tf_dists = [d for d in ("tensorflow", "tensorflow-cpu") if _installed(d)]
    assert rec["tensorflow"] == (metadata.version(tf_dists[0]) if tf_dists else "not installed")
    assert rec["rule"] == "clean_maps" and prov.provenance_record(CONFIG)["rule"] == "none"
    # szmass is imported from this checkout: the commit is HEAD (which others may move meanwhile)
    assert rec["git_commit"] in {head_before, head_after} and rec["git_dirty"] in {"true", "false"}


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_git_unknown_outside_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of szmass untracked in some git repository, or no git at all: "unknown", never a failure.

    The record is made without importing TensorFlow (its version comes from the installed metadata).
    """
    repo = tmp_path / "elsewhere"
    shutil.copytree(Path(szmass.__file__).parent, repo / "szmass", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    code = ("import sys; from szmass.provenance import provenance_record as p, __file__ as f; r = p(None); "
            "print(f, r['git_commit'], r['git_dirty'], r['tensorflow'] != 'not installed', 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env=dict(os.environ, PYTHONPATH=str(repo))).stdout.split()
    assert out == [str(repo / "szmass" / "provenance.py"), "unknown", "unknown", "True", "False"]
    prov.git_state.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    try:
        assert prov.provenance_record(None)["git_commit"] == "unknown"
    finally:
        prov.git_state.cache_clear()


def _store_files(path: Path) -> dict[str, bytes]:
    """Every file of a zarr store but the root metadata, by relative path."""
    root_meta = {"zarr.json", ".zattrs", ".zmetadata", ".zgroup"}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and str(p.relative_to(path)) not in root_meta}


@pytest.mark.parametrize(("zarr_format", "consolidated"), [(3, True), (3, False), (2, True)])
def test_zarr_round_trip(tmp_path: Path, record: dict[str, str], zarr_format: int, consolidated: bool) -> None:
    rng = np.random.default_rng(3)
    ds = xr.Dataset({"y": (("map", "py", "px"), rng.random((6, 8, 8)).astype(np.float32))},
                    coords={"M500": ("map", 10 ** rng.uniform(14, 15, 6)),
                            "model": ("map", np.array(["gadget_x"] * 6, dtype=np.dtypes.StringDType()))},
                    attrs={"fwhm_arcmin": 10.0})
    path = tmp_path / "maps.zarr"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        ds.to_zarr(path, mode="w", consolidated=consolidated, zarr_format=zarr_format)
    files = _store_files(path)
    prov.stamp_outputs([path], record)
    assert _store_files(path) == files  # chunks and array metadata untouched, byte for byte
    assert prov.read_provenance(path) == record
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        back = xr.open_zarr(path, consolidated=consolidated)
        assert back.attrs == {"fwhm_arcmin": 10.0, "provenance": record}
        xr.testing.assert_identical(back.drop_attrs().load(), ds.drop_attrs())
    if zarr_format == 3:  # consolidated metadata lives in the root zarr.json, kept only where it was
        root = json.loads((path / "zarr.json").read_text())
        assert (root.get("consolidated_metadata") is not None) == consolidated
    # a second stamp replaces the first
    later = {**record, "rule": "another"}
    prov.stamp_zarr(path, later)
    assert prov.read_provenance(path) == later
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        assert xr.open_zarr(path, consolidated=consolidated).attrs["provenance"] == later


def _data_bytes(path: Path) -> list[bytes]:
    """The raw bytes of each HDU's data unit."""
    with fits.open(path) as hdul:
        spans = [h.fileinfo() for h in hdul]
    raw = path.read_bytes()
    return [raw[s["datLoc"] : s["datLoc"] + s["datSpan"]] for s in spans]


def test_fits_image_cutout(tmp_path: Path, record: dict[str, str]) -> None:
    image = np.random.default_rng(1).normal(0, 1e-5, (96, 96))
    path = tmp_path / "cutout.fits"
    write_cutout_fits(path, image, 30.0, -40.0, reso_arcmin=1.7, header_cards={"Z": (0.15, "redshift")})
    data = _data_bytes(path)
    prov.stamp_outputs([path], record)
    assert _data_bytes(path) == data
    assert prov.read_provenance(path) == record
    header = fits.getheader(path)
    assert header["Z"] == 0.15 and header["CTYPE1"].startswith("GLON")  # the cutout's own cards kept
    assert header["SZMVER"] == szmass.__version__ and header["CFGSHA"] == record["config_sha256"]
    assert header["SZMGIT"] == record["git_commit"] and header["HIERARCH SZMASS NUMPY"] == np.__version__
    assert len(header["SZMASS TENSORFLOW"]) > 0 and prov.FITS_NOTE in [str(c) for c in header["COMMENT"]]
    np.testing.assert_array_equal(fits.getdata(path), image)
    prov.stamp_fits(path, record)  # stamping twice adds no second set of cards
    assert list(fits.getheader(path)).count("SZMVER") == 1
    assert [str(c) for c in fits.getheader(path)["COMMENT"]].count(prov.FITS_NOTE) == 1


def test_fits_table_healpix_map(tmp_path: Path, record: dict[str, str]) -> None:
    hpmap = np.random.default_rng(2).normal(size=hp.nside2npix(16))
    hpmap[5] = np.nan
    path = tmp_path / "noise_nside16.fits"
    write_healpix_map(path, hpmap)
    data = _data_bytes(path)
    prov.stamp_outputs([path], record)
    assert _data_bytes(path) == data
    assert prov.read_provenance(path) == record
    np.testing.assert_array_equal(read_healpix_map(path), hpmap.astype(np.float32))  # NaN == NaN here
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary copy was renamed away


def test_fits_checksums_stay_valid(tmp_path: Path, record: dict[str, str]) -> None:
    """The PSZ2 catalogue carries CHECKSUM/DATASUM: stamped, it still verifies and its table is unchanged."""
    if not PSZ2_FILE.is_file():
        pytest.skip(f"PSZ2 catalogue absent ({PSZ2_FILE})")
    path = tmp_path / PSZ2_FILE.name
    shutil.copyfile(PSZ2_FILE, path)
    data = _data_bytes(path)
    prov.stamp_outputs([path], record)
    assert _data_bytes(path) == data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checksum mismatch is a warning
        with fits.open(path, checksum=True) as hdul:
            assert "CHECKSUM" in hdul[0].header and hdul[0].header["SZMRULE"] == "test_rule"
            assert len(hdul[1].data) == 1653


def test_failed_fits_stamp_leaves_the_file(tmp_path: Path, record: dict[str, str]) -> None:
    path = tmp_path / "cutout.fits.gz"
    write_cutout_fits(path, np.ones((8, 8)), 0.0, 0.0, reso_arcmin=1.7, header_cards={})
    before = path.read_bytes()
    with pytest.raises(ValueError):
        prov.stamp_fits(path, {**record, "rule": "r\u00e9gion"})  # FITS cards are ASCII
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["cutout.fits.gz"]
    prov.stamp_fits(path, record)  # a gzipped FITS stays gzipped
    assert path.read_bytes()[:2] == b"\x1f\x8b" and prov.read_provenance(path) == record


def test_sidecars(tmp_path: Path, record: dict[str, str]) -> None:
    table = tmp_path / "mass_cuts.csv"
    pd.DataFrame({"bin": [1, 2], "M500_cut": [1.5e14, 2.5e14]}).to_csv(table, index=False)
    figure = tmp_path / "figure.png"
    figure.write_bytes(b"\x89PNG\r\n\x1a\n")
    folder = tmp_path / "models"
    folder.mkdir()
    parts = tmp_path / "parts.zarr"  # named like a store but a folder of part stores: no zarr metadata of its own
    xr.Dataset({"y": ("map", np.zeros(2))}).to_zarr(parts / "part_0001.zarr", consolidated=False)
    before = table.read_bytes()
    prov.stamp_outputs([table, figure, folder, parts], record)
    assert table.read_bytes() == before  # provenance is never written into the table itself
    assert "provenance" not in xr.open_zarr(parts / "part_0001.zarr").attrs
    for path in (table, figure, folder, parts):
        side = path.with_name(path.name + ".provenance.json")
        assert json.loads(side.read_text()) == record
        assert prov.read_provenance(path) == record and prov.read_provenance(side) == record
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        prov.stamp_outputs([tmp_path / "missing.csv"], record)
    with pytest.raises(ValueError, match="str to str"):
        prov.write_sidecar(table, {"seed": 7})


def test_stamp_job_stamps_every_output(tmp_path: Path) -> None:
    store = tmp_path / "cutouts.zarr"
    xr.Dataset({"y": ("cluster", np.arange(3.0))}).to_zarr(store, consolidated=False)
    sky = tmp_path / "sky.fits"
    write_healpix_map(sky, np.zeros(hp.nside2npix(1)))
    truth = tmp_path / "truth.csv"
    truth.write_text("M500\n1e14\n")
    sm = SimpleNamespace(output=[str(store), str(sky), str(truth)], config=CONFIG, rule="synthetic_sky")
    prov.stamp_job(sm)
    records = [prov.read_provenance(p) for p in (store, sky, truth)]
    assert records[0] == records[1] == records[2]
    assert records[0]["rule"] == "synthetic_sky"
    assert records[0]["config_sha256"] == prov.config_checksum(CONFIG)


def test_gather_ignores_the_parts_provenance(tmp_path: Path, record: dict[str, str]) -> None:
    """Stamped part stores (e.g. made at different commits) still gather: provenance is not a map setting."""
    from test_mapstore import make_part, write_parts

    from szmass.mapstore import gather

    paths = write_parts(tmp_path, [make_part("s", 1, 10, [1, 2], seed=1), make_part("s", 2, 10, [3], seed=2)])
    prov.stamp_outputs(paths[:1], record)
    prov.stamp_outputs(paths[1:], {**record, "git_commit": "0" * 40})
    out = tmp_path / "clean.zarr"
    gather(paths, out)
    with pytest.raises(ValueError, match="no szmass provenance"):
        prov.read_provenance(out)
    prov.stamp_outputs([out], record)
    assert xr.open_zarr(out).attrs["provenance"] == record and xr.open_zarr(out).sizes["map"] == 9


def test_cli_prints_records_and_fails_cleanly(tmp_path: Path, record: dict[str, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "a.csv"
    table.write_text("x\n1\n")
    prov.write_sidecar(table, record)
    assert main(["provenance", str(table)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == str(table) and record["config_sha256"] in out and record["git_commit"] in out
    assert main(["provenance", "--json", str(table)]) == 0
    assert json.loads(capsys.readouterr().out) == {str(table): record}
    bare = tmp_path / "bare.fits"
    fits.PrimaryHDU(np.zeros((2, 2))).writeto(bare)
    assert main(["provenance", str(table), str(bare)]) == 1
    captured = capsys.readouterr()
    assert str(table) in captured.out and record["config_sha256"] in captured.out  # the good one still printed
    assert captured.err.strip() == (f"szmass provenance: error: {bare}: no szmass provenance (no FITS primary-header "
                                    f"card SZMVER, no sidecar {bare}.provenance.json)")
    assert main(["provenance", str(tmp_path / "nowhere.zarr")]) == 1
    assert f"{tmp_path / 'nowhere.zarr'}: no such file" in capsys.readouterr().err
