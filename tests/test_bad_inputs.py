"""Bad inputs a user can reach: each gives a clear error (or a flagged result) naming the file or key, and leaves
every input as it was (checksums before and after)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import healpy as hp
import keras
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.io import fits
from astropy.table import Table

from szmass.catalogue import build_catalogue, sky_predictions, write_catalogue
from szmass.cli import main
from szmass.cosmology import make_cosmology
from szmass.ensemble import train_ensemble
from szmass.healpix import read_healpix_map
from szmass.model import build_cnn, with_standardisation
from szmass.planck import PSZ2_UNITS, read_psz2
from szmass.predict import MAP_MEAN_RANGE, MAP_STD_RANGE, MassModels, range_warnings
from szmass.provenance import provenance_record, write_sidecar
from szmass.sims import read_ahf_halos
from szmass.sims.ahf import AhfError
from szmass.splits import select_redshift_bin

from reference_data import CUTOUT, WEIGHTS  # noqa: E402
from reference_data import needs_deepplanck as needs_data  # noqa: E402
from test_train import tiny_store  # noqa: E402

MU, SIGMA = 2e-7, 2e-6
"""Training pixel mean and std [Compton y] of the synthetic models below."""


def checksums(*paths: Path) -> dict[str, str]:
    """sha256 of every file under ``paths`` (files or directories), by path: any change of content or names shows."""
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*"))) if f.is_file()]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def level_model() -> keras.Model:
    """A cheap full model with the standardisation of training maps of pixel mean MU and std SIGMA, predicting
    log10 M500 = 14.5 for every map."""
    x = keras.Input((96, 96, 1))
    dense = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(14.5))
    return with_standardisation(keras.Model(x, dense(keras.layers.GlobalAveragePooling2D()(x))), MU, SIGMA)


def checkerboard(std: float, mean: float = MU) -> np.ndarray:
    """A 96 x 96 map of pixel mean ``mean`` and standard deviation ``std`` exactly (+-std around the mean)."""
    return mean + std * np.where(np.indices((96, 96)).sum(axis=0) % 2 == 0, 1.0, -1.0)


def run_models(tmp_path: Path) -> Path:
    """A run's models directory (one bin, (0, 1]) of an untrained network: predictions far below any cluster."""
    models_dir = tmp_path / "models"
    (models_dir / "z1").mkdir(parents=True)
    with_standardisation(build_cnn(seed=3), MU, SIGMA).save(models_dir / "z1" / "best.keras")
    (models_dir / "redshift_bins.json").write_text('{"edges": [0.0, 1.0]}\n')
    return models_dir


def write_cutout(path: Path, image: np.ndarray, z: float = 0.3) -> Path:
    hdu = fits.PrimaryHDU(np.asarray(image, dtype=np.float32))
    hdu.header["Z"] = z
    hdu.writeto(path)
    return path


def predict(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """Run ``szmass predict ARGS``; its exit status and stderr."""
    status = main(["predict", *map(str, args)])
    return status, capsys.readouterr().err


# ----------------------------------------------------------------------------------- outputs that destroyed inputs


def test_output_onto_an_existing_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--output results/`` deleted the whole tree and put a CSV in its place."""
    cutout = write_cutout(tmp_path / "cutout.fits", checkerboard(SIGMA))
    results = tmp_path / "results"
    (results / "maps").mkdir(parents=True)
    (results / "maps" / "clean.zarr").write_text("a day of projections")
    before = checksums(tmp_path)
    status, err = predict(capsys, cutout, "--weights", tmp_path / "no-models", "--output", results)
    assert status == 1
    assert err == f"szmass predict: error: {results}: is an existing directory; refusing to replace it with a file (give a file path)\n"
    assert checksums(tmp_path) == before


def test_output_that_is_an_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cutout = write_cutout(tmp_path / "cutout.fits", checkerboard(SIGMA))
    store = tmp_path / "mystore.zarr"
    xr.Dataset({"y": (("map", "py", "px"), checkerboard(SIGMA)[None])}, coords={"redshift": ("map", [0.3])}).to_zarr(store)
    (tmp_path / "alias.fits").symlink_to(cutout)
    models_dir = run_models(tmp_path)
    before = checksums(tmp_path)
    capsys.readouterr()  # zarr's warnings while writing the store
    weights = ("--weights", models_dir)
    cases = [
        ((store, *weights, "--output", store), f"--output {store}: is the input {store}; refusing to overwrite an input"),
        ((cutout, *weights, "--output", cutout), f"--output {cutout}: is the input {cutout}; refusing to overwrite an input"),
        ((cutout, *weights, "--output", tmp_path / "alias.fits"), f"--output {tmp_path / 'alias.fits'}: is the input {cutout}"),
        ((cutout, *weights, "--output", tmp_path / "sub" / ".." / "cutout.fits"), "is the input"),
        ((store, *weights, "--output", store / "y" / "masses.csv"), f"lies inside the input {store}; write it outside"),
        ((cutout, *weights, "--output", models_dir / "z1" / "best.keras"),
         f"--output {models_dir / 'z1' / 'best.keras'}: is the input {models_dir / 'z1' / 'best.keras'}"),
        ((cutout, *weights, "--output", models_dir / "redshift_bins.json"), "redshift_bins.json: is the input"),
    ]
    for args, message in cases:
        status, err = predict(capsys, *args)
        assert status == 1 and err.startswith("szmass predict: error: ") and message in err, (args, err)
    assert checksums(tmp_path) == before
    assert (tmp_path / "alias.fits").is_symlink()


@needs_data
def test_output_onto_published_weights_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = checksums(WEIGHTS, CUTOUT)
    status, err = predict(capsys, CUTOUT, "--weights", WEIGHTS, "--output", WEIGHTS / "bestmodel-3.h5")
    assert status == 1 and f"is the input {WEIGHTS / 'bestmodel-3.h5'}; refusing to overwrite an input" in err
    assert checksums(WEIGHTS, CUTOUT) == before


def test_train_ensemble_keeps_the_callers_checkpoint_directory(tmp_path: Path) -> None:
    """A given checkpoint_dir was deleted whole at the end of training; only the checkpoint file goes now."""
    user_dir = tmp_path / "scratch"
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("keep me")
    before = checksums(user_dir)
    results = train_ensemble(select_redshift_bin(tiny_store(), 1), out_dirs=[tmp_path / "run"], seeds=[11], test_seed=2,
                             epochs=1, batch_size=19, checkpoint_dir=user_dir)  # fmt: skip
    assert results[0].epochs == 1 and (tmp_path / "run" / "model.keras").is_file()
    assert checksums(user_dir) == before and sorted(p.name for p in user_dir.iterdir()) == ["notes.txt"]


# ----------------------------------------------------------------------------------------- silently wrong results


def test_range_warnings_bounds() -> None:
    """Each bound in training units: per-map std outside MAP_STD_RANGE x SIGMA, |mean - MU| > MAP_MEAN_RANGE x SIGMA,
    log10 M500 outside [13, 16]; just inside passes, just outside is flagged naming the quantity and the bin."""
    lo, hi = MAP_STD_RANGE
    models = MassModels({1: level_model(), 2: level_model()}, (0.0, 0.5, 1.0))
    cases = [  # (map, log10 M500, expected start of the warning or '')
        (checkerboard(SIGMA), 14.5, ""),
        (checkerboard(1.05 * lo * SIGMA), 14.5, ""),
        (checkerboard(0.95 * lo * SIGMA), 14.5, "y-map std 1.9e-09 outside [0.001, 100] x the training std 2e-06 of bin"),
        (np.zeros((96, 96)), 14.5, "y-map std 0 outside [0.001, 100] x the training std 2e-06 of bin"),
        (checkerboard(0.95 * hi * SIGMA), 14.5, ""),
        (checkerboard(1.05 * hi * SIGMA), 14.5, "y-map std 0.00021 outside"),
        (checkerboard(SIGMA, MU + 0.95 * MAP_MEAN_RANGE * SIGMA), 14.5, ""),
        (checkerboard(SIGMA, MU - 1.05 * MAP_MEAN_RANGE * SIGMA), 14.5,
         "y-map mean -0.00021 more than 100 training std (2e-06) from the training mean 2e-07 of bin"),
        (checkerboard(SIGMA), 13.01, ""),
        (checkerboard(SIGMA), 12.99, "log10_M500 12.99 outside the plausible [13, 16]"),
        (checkerboard(SIGMA), 16.01, "log10_M500 16.01 outside the plausible [13, 16]"),
    ]
    maps = np.stack([m for m, _, _ in cases])
    z = np.resize([0.2, 0.7], len(cases))
    warnings = range_warnings(maps, z, [m for _, m, _ in cases], models)
    for (_, _, expected), warning, zi in zip(cases, warnings, z, strict=True):
        assert warning.startswith(expected) and (warning == "") == (expected == ""), (expected, warning)
        if "of bin" in expected:
            assert f"of bin {1 if zi < 0.5 else 2}" in warning


@needs_data
def test_empty_map_and_wrong_units_are_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An all-zero map gave log10 M500 = 14.54 and the map x 1e6 gave 758450.8, both with exit status 0."""
    with fits.open(CUTOUT) as hdul:
        y, header = np.asarray(hdul[0].data, dtype=np.float64), hdul[0].header
    zero, big = tmp_path / "zero.fits", tmp_path / "big.fits"
    fits.PrimaryHDU(np.zeros_like(y), header=header).writeto(zero)
    fits.PrimaryHDU(y * 1e6, header=header).writeto(big)
    before = checksums(zero, big, CUTOUT, WEIGHTS)
    out = tmp_path / "masses.csv"
    status, err = predict(capsys, CUTOUT, zero, big, "--weights", WEIGHTS, "--output", out)
    assert status == 3
    assert err.startswith(f"szmass predict: warning: 2 of 3 maps out of range (column 'warning'), e.g. {zero}: y-map std 0 ")
    table = pd.read_csv(out, keep_default_na=False)
    assert table.loc[0, "warning"] == ""  # the real cutout: in range
    assert table.loc[1, "warning"] == "y-map std 0 outside [0.001, 100] x the training std 2.04e-06 of bin 2"
    assert table.loc[1, "log10_M500"] == pytest.approx(14.54, abs=0.01)  # a plausible-looking mass, now flagged
    assert table.loc[2, "warning"].split("; ")[0] == "y-map std 1.72 outside [0.001, 100] x the training std 2.04e-06 of bin 2"
    assert "outside the plausible [13, 16]" in table.loc[2, "warning"]
    assert predict(capsys, CUTOUT, zero, "--weights", WEIGHTS, "--output", out, "--allow-out-of-range")[0] == 0
    assert checksums(zero, big, CUTOUT, WEIGHTS) == before


def test_sky_predictions_carry_the_warning_into_the_catalogue(tmp_path: Path) -> None:
    """The workflow keeps running on an out-of-range cutout; the catalogue's WARNING column says why."""
    maps = np.stack([checkerboard(SIGMA), np.zeros((96, 96)), checkerboard(SIGMA) * 1e6])
    coords = {"name": ("cluster", ["A", "B", "C"]), "glon": ("cluster", [1.0, 2.0, 3.0]), "glat": ("cluster", [40.0, 50.0, 60.0]),
              "redshift": ("cluster", [0.1, 0.2, 0.3]), "MSZ": ("cluster", [3e14, 4e14, 5e14]),
              "golden": ("cluster", [True, False, True])}  # fmt: skip
    ds = xr.Dataset({"y": (("cluster", "py", "px"), maps.astype(np.float32))}, coords=coords)
    sky = sky_predictions(ds, MassModels({1: level_model()}, (0.0, 1.0)))
    assert sky.loc[1, "warning"].startswith("y-map std 0 outside") and sky.loc[2, "warning"].startswith("y-map std 2 outside")
    sky.to_csv(tmp_path / "predictions.csv", index=False)  # as the workflow passes it on: '' reads back as NaN
    sky = pd.read_csv(tmp_path / "predictions.csv")
    rng = np.random.default_rng(0)
    true = rng.normal(14.5, 0.3, 200)
    tests = pd.DataFrame({"zbin": 1, "log10_M_true": true, "log10_M_cnn": true + rng.normal(0, 0.1, 200)})
    cat = build_catalogue(sky, tests, make_cosmology(None))
    assert list(cat["WARNING"]) == [""] + [w for w in sky["warning"][1:]]
    write_catalogue(cat, tmp_path / "cat.csv", tmp_path / "cat.fits")
    fits_warnings = Table.read(tmp_path / "cat.fits")["WARNING"]
    assert fits_warnings[1].startswith("y-map std 0") and fits_warnings[2].startswith("y-map std 2")


def test_run_models_that_are_not_full_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A best.keras that is not a Keras file, or a network without its input standardisation (whose training
    level is then unknown): the error names the file."""
    cutout = write_cutout(tmp_path / "cutout.fits", checkerboard(SIGMA))
    models_dir = tmp_path / "models"
    (models_dir / "z1").mkdir(parents=True)
    (models_dir / "redshift_bins.json").write_text('{"edges": [0.0, 1.0]}\n')
    best = models_dir / "z1" / "best.keras"
    best.write_text("not a zip file\n")
    before = checksums(tmp_path)
    status, err = predict(capsys, cutout, "--weights", models_dir, "--output", tmp_path / "masses.csv")
    assert status == 1 and err.startswith(f"szmass predict: error: {best}: cannot load as a Keras model: ")
    assert checksums(tmp_path) == before
    best.unlink()
    build_cnn(seed=1).save(best)  # standardised input -> log10 M, without the standardisation in front
    status, err = predict(capsys, cutout, "--weights", models_dir, "--output", tmp_path / "masses.csv")
    assert status == 1
    assert err == (f"szmass predict: error: {best}: model 'deepplanck_cnn': no Rescaling layer 'standardise' with a scale "
                   "> 0; expected a full model standardising raw y-maps (szmass.model.with_standardisation)\n")


# ------------------------------------------------------------------------------------------------ unclear errors


def test_truncated_fits_and_fits_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A truncated cutout ended in a raw TypeError; a FITS table was read as an 'image' of its rows."""
    whole = write_cutout(tmp_path / "whole.fits", checkerboard(SIGMA))
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(whole.read_bytes()[:20000])
    table = tmp_path / "table.fits"
    Table({"GLON": [1.0, 2.0], "GLAT": [3.0, 4.0]}).write(table)
    before = checksums(tmp_path)
    out = tmp_path / "masses.csv"
    status, err = predict(capsys, truncated, "--weights", run_models(tmp_path / "m"), "--output", out)
    assert status == 1
    assert err.startswith(f"szmass predict: error: {truncated}: cannot read as FITS (truncated or not a FITS file): ")
    assert "Traceback" not in err
    status, err = predict(capsys, table, "--weights", tmp_path / "m" / "models", "--output", out)
    assert status == 1
    assert err == (f"szmass predict: error: {table}: no image HDU (found PrimaryHDU (no image data), BinTableHDU (no "
                   "image data)); expected a 96 x 96 y-map image, not a table\n")
    assert checksums(tmp_path / "truncated.fits", tmp_path / "table.fits", whole) == before
    assert not out.exists()


def test_truncated_psz2_catalogue_and_healpix_map(tmp_path: Path) -> None:
    """The other FITS inputs: a raw TypeError (catalogue) and 'cannot reshape array of size 0' (map) before."""
    catalogue = tmp_path / "psz2.fits"
    Table({"NAME": ["PSZ2 G000.00+00.00"] * 300, **{c: np.ones(300) for c in PSZ2_UNITS}}).write(catalogue)
    hp_map = tmp_path / "ymap.fits"
    hp.write_map(str(hp_map), np.ones(hp.nside2npix(16)), dtype=np.float64)
    for path in (catalogue, hp_map):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = checksums(tmp_path)
    with pytest.raises(OSError, match=rf"^{catalogue}: cannot read as FITS \(truncated or not a FITS file\): File may "
                                      r"have been truncated: .*; TypeError: buffer is too small"):
        read_psz2(catalogue)
    with pytest.raises(OSError, match=rf"^{hp_map}: cannot read as FITS \(truncated or not a FITS file\): File may "
                                      r"have been truncated: "):
        read_healpix_map(hp_map)
    assert checksums(tmp_path) == before


def test_non_hdf5_published_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "bestmodel-1.h5").write_text("<html>404 Not Found</html>\n")  # a failed download, saved anyway
    cutout = write_cutout(tmp_path / "cutout.fits", checkerboard(SIGMA))
    before = checksums(tmp_path)
    status, err = predict(capsys, cutout, "--weights", weights, "--output", tmp_path / "masses.csv")
    assert status == 1
    assert err.startswith(f"szmass predict: error: {weights / 'bestmodel-1.h5'}: not an HDF5 file (")
    assert err.endswith("); expected Keras HDF5 weights (bestmodel-*.h5)\n")
    assert checksums(tmp_path) == before


NO_TENSORFLOW = """
import sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTensorFlow())
from szmass.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_tensorflow_the_cli_names_the_extra(tmp_path: Path) -> None:
    cutout = write_cutout(tmp_path / "cutout.fits", checkerboard(SIGMA))
    before = checksums(tmp_path)
    args = ["predict", str(cutout), "--weights", str(tmp_path), "--output", str(tmp_path / "masses.csv")]
    run = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *args], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert run.stderr == ('szmass predict: error: TensorFlow (the backend of Keras) is not installed; install szmass with '
                          'it: pip install "szmass[cpu]" (or "szmass[gpu]" for NVIDIA GPUs)\n')
    assert checksums(tmp_path) == before


def test_closed_stdout_exits_quietly(tmp_path: Path) -> None:
    """``szmass provenance ... | head -1``: the reader is gone before the first line; no traceback, no message."""
    paths = []
    for i in range(3):
        (tmp_path / f"t{i}.csv").write_text("a\n1\n")
        paths.append(str(write_sidecar(tmp_path / f"t{i}.csv", provenance_record(None))))
    before = checksums(tmp_path)
    script = "import sys; from szmass.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", script, "provenance", *paths], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # before the interpreter has even started: every write fails
    _, err = proc.communicate(timeout=300)
    assert (proc.returncode, err) == (1, "")
    assert checksums(tmp_path) == before


AHF_HEADER = "#ID(1)\thostHalo(2)\tMvir(3)\tXc(4)\tYc(5)\tZc(6)\tRvir(7)\tfMhires(8)\tlambda(9)\n"


@pytest.mark.parametrize(("row", "column", "value"), [
    ("7\t-1\t3e14\tnan\t500.0\t500.0\t900.0\t1.0\t0.03\n", "Xc", "nan"),
    ("7\t-1\tNaN\t500.0\t500.0\t500.0\t900.0\t1.0\t0.03\n", "Mvir", "NaN"),
    ("7\t-1\t3e14\t500.0\t500.0\tinf\t900.0\t1.0\t0.03\n", "Zc", "inf"),
])  # fmt: skip
def test_ahf_halo_with_a_nan_centre_or_mass(tmp_path: Path, row: str, column: str, value: str) -> None:
    """Accepted before: the error came later and blamed the snapshot."""
    path = tmp_path / "snap_128.AHF_halos"
    path.write_text(AHF_HEADER + "5\t-1\t4e14\t100.0\t100.0\t100.0\t950.0\t1.0\t0.02\n" + row)
    before = checksums(path)
    with pytest.raises(AhfError) as info:
        read_ahf_halos(path)
    assert str(info.value) == (f"file {path}, line 3: halo ID 7: column {column!r} is {value}; expected a finite number "
                               f"(1 halos have non-finite {column})")
    assert checksums(path) == before


def test_ahf_nan_outside_the_centre_and_masses_is_kept(tmp_path: Path) -> None:
    """Real catalogues hold NaN in e.g. the spin of halos of few particles: not an error."""
    path = tmp_path / "snap_128.AHF_halos"
    path.write_text(AHF_HEADER + "5\t-1\t4e14\t100.0\t100.0\t100.0\t950.0\t1.0\tnan\n")
    halos = read_ahf_halos(path)
    assert halos.loc[0, "Mvir"] == 4e14 and np.isnan(halos.loc[0, "lambda"])
