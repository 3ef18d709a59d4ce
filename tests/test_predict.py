"""Prediction of log10 M500 from y-map cutouts (szmass.predict) and the `szmass predict` command."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.io import fits
from reference_data import CUTOUT, KNOWN_LOG10_M500, WEIGHTS
from reference_data import needs_deepplanck as needs_data

from szmass.cli import main
from szmass.model import build_cnn, with_standardisation
from szmass.predict import (
    BIN_EDGES_FILE,
    load_models,
    predict_masses,
    read_cutouts,
    read_fits_cutout,
    write_bin_edges,
)


def mean_plus_bin_model(b: int) -> keras.Model:
    """A map -> mean(map) + 100 b network: tells which bin's model saw which map."""
    x = keras.Input((96, 96, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(1, kernel_initializer="ones", bias_initializer=keras.initializers.Constant(100.0 * b))
    return keras.Model(x, dense(pooled))


def synthetic_maps(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, (n, 96, 96)) + np.arange(n)[:, None, None]


def write_fits(path: Path, image: np.ndarray, z: float | None) -> Path:
    hdu = fits.PrimaryHDU(image)
    if z is not None:
        hdu.header["Z"] = z
    hdu.writeto(path)
    return path


def test_predict_masses_routes_each_map_to_its_bin_in_order() -> None:
    models = {b: mean_plus_bin_model(b) for b in (1, 2, 3, 4)}
    z = np.array([0.35, 0.05, 0.7, 0.1, 0.15, 0.5, 0.2])
    maps = synthetic_maps(z.size, seed=0)
    out = predict_masses(maps, z, models, batch_size=2)
    expected = maps.mean(axis=(1, 2)) + 100.0 * np.array([3, 1, 4, 1, 2, 4, 2])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4)


def test_predict_masses_bad_inputs_name_the_entry() -> None:
    models = {b: mean_plus_bin_model(b) for b in (1, 2, 3, 4)}
    maps = synthetic_maps(3, seed=1)
    labels = ["a.fits", "b.fits", "c.fits"]
    nan_maps = maps.copy()
    nan_maps[1, 5, 7] = np.nan
    with pytest.raises(ValueError, match=r"b\.fits: y-map has 1 non-finite"):
        predict_masses(nan_maps, [0.1, 0.2, 0.3], models, labels=labels)
    with pytest.raises(ValueError, match="image 1: y-map"):
        predict_masses(nan_maps, [0.1, 0.2, 0.3], models)
    with pytest.raises(ValueError, match=r"expected shape \(n, 96, 96\), got \(3, 96, 95\)"):
        predict_masses(maps[:, :, :95], [0.1, 0.2, 0.3], models)
    with pytest.raises(ValueError, match=r"redshifts: expected shape \(3,\)"):
        predict_masses(maps, [0.1, 0.2], models)
    with pytest.raises(ValueError, match=r"c\.fits: redshift 1\.5 outside"):
        predict_masses(maps, [0.1, 0.2, 1.5], models, labels=labels)
    with pytest.raises(ValueError, match=r"b\.fits: no model for redshift bin 3"):
        predict_masses(maps, [0.1, 0.3, 0.3], {1: models[1]}, labels=labels)


def test_read_fits_cutout_errors(tmp_path: Path) -> None:
    image = synthetic_maps(1, seed=2)[0]
    no_z = write_fits(tmp_path / "noz.fits", image, None)
    with pytest.raises(ValueError, match=r"noz\.fits: header keyword 'Z'.*missing"):
        read_fits_cutout(no_z)
    assert read_fits_cutout(no_z, redshift=0.3).redshifts[0] == 0.3
    wrong = write_fits(tmp_path / "wrong.fits", image[:90], 0.2)
    with pytest.raises(ValueError, match=r"wrong\.fits: image shape \(90, 96\)"):
        read_fits_cutout(wrong)
    with pytest.raises(ValueError, match="1 or 2"):
        read_cutouts([no_z, wrong], redshifts=[0.1, 0.2, 0.3])


def test_cli_missing_redshift_keyword(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_z = write_fits(tmp_path / "noz.fits", synthetic_maps(1, seed=3)[0], None)
    out = tmp_path / "out.csv"
    rc = main(["predict", str(no_z), "--weights", str(tmp_path), "--output", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "noz.fits" in err and "'Z'" in err
    assert not out.exists()


@needs_data
def test_cli_published_known_answer(tmp_path: Path) -> None:
    out = tmp_path / "masses.csv"
    assert main(["predict", str(CUTOUT), "--weights", str(WEIGHTS), "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["file", "redshift", "log10_M500", "warning"]
    assert len(table) == 1 and table.loc[0, "file"] == str(CUTOUT) and pd.isna(table.loc[0, "warning"])
    assert table.loc[0, "redshift"] == pytest.approx(0.1496, abs=1e-6)
    assert table.loc[0, "log10_M500"] == pytest.approx(KNOWN_LOG10_M500, abs=1e-4)


@needs_data
def test_cli_zarr_store_and_redshift_override(tmp_path: Path) -> None:
    with fits.open(CUTOUT) as hdul:
        y = np.asarray(hdul[0].data, dtype=np.float32)
    store = tmp_path / "cutouts.zarr"
    xr.Dataset(
        {"y": (("cluster", "py", "px"), np.stack([y, y]))},
        coords={"name": ("cluster", ["PSZ2 A", "PSZ2 B"]), "redshift": ("cluster", [0.1496, 0.3])},
    ).to_zarr(store)
    out = tmp_path / "masses.csv"
    assert main(["predict", str(store), "--weights", str(WEIGHTS), "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["file"]) == ["PSZ2 A", "PSZ2 B"]
    assert table.loc[0, "log10_M500"] == pytest.approx(KNOWN_LOG10_M500, abs=1e-4)
    # the same map through the bin-3 network: a different answer
    assert abs(table.loc[1, "log10_M500"] - KNOWN_LOG10_M500) > 1e-3
    # --redshift on the FITS file sends it to bin 3: must agree with the store's second entry
    out2 = tmp_path / "override.csv"
    assert main(["predict", str(CUTOUT), "--weights", str(WEIGHTS), "--output", str(out2), "--redshift", "0.3"]) == 0
    assert pd.read_csv(out2).loc[0, "log10_M500"] == pytest.approx(table.loc[1, "log10_M500"], abs=1e-5)
    assert main(["predict", str(store), "--weights", str(WEIGHTS), "--output", str(out2), "--redshift", "0.3"]) == 1


def test_run_models_directory(tmp_path: Path) -> None:
    """A run's z{bin}/best.keras with its own bin edges, through load_models and the CLI."""
    models_dir = tmp_path / "models"
    mean, std = 1e-6, 2e-6
    direct = {}
    for b in (1, 2):
        model = with_standardisation(build_cnn(seed=10 + b), mean, std)
        (models_dir / f"z{b}").mkdir(parents=True)
        model.save(models_dir / f"z{b}" / "best.keras")
        direct[b] = model
    write_bin_edges(models_dir, (0.0, 0.5, 1.0))
    assert (models_dir / BIN_EDGES_FILE).is_file()
    loaded = load_models(models_dir)
    assert loaded.edges == (0.0, 0.5, 1.0) and sorted(loaded.models) == [1, 2]

    maps = (mean + std * synthetic_maps(3, seed=4)).astype(np.float32)
    z = [0.45, 0.55, 1.0]
    store = tmp_path / "maps.zarr"
    xr.Dataset({"y": (("map", "py", "px"), maps)}, coords={"redshift": ("map", z)}).to_zarr(store)
    out = tmp_path / "masses.csv"
    # untrained networks: maps at the training level, but masses far below any cluster's
    assert main(["predict", str(store), "--weights", str(models_dir), "--output", str(out)]) == 3
    assert main(["predict", str(store), "--weights", str(models_dir), "--output", str(out), "--allow-out-of-range"]) == 0
    table = pd.read_csv(out)
    assert list(table["file"]) == [f"{store}[{i}]" for i in range(3)]
    expected = [float(direct[b].predict_on_batch(maps[i : i + 1, ..., None])[0, 0]) for i, b in enumerate((1, 2, 2))]
    np.testing.assert_allclose(table["log10_M500"], expected, rtol=0, atol=1e-6)
    assert all(abs(m) < 5 for m in expected)
    assert list(table["warning"]) == [f"log10_M500 {m:.6g} outside the plausible [13, 16]" for m in table["log10_M500"]]

    write_bin_edges(models_dir, (0.0, 0.5, 1.0), "M200")  # the models of a run trained on M200
    assert load_models(models_dir).target_mass == "M200"
    assert main(["predict", str(store), "--weights", str(models_dir), "--output", str(out), "--allow-out-of-range"]) == 0
    m200 = pd.read_csv(out)
    assert list(m200.columns) == ["file", "redshift", "log10_M200", "warning"]
    np.testing.assert_allclose(m200["log10_M200"], expected, rtol=0, atol=1e-6)
    assert m200["warning"].str.startswith("log10_M200 ").all()

    (models_dir / "z2" / "best.keras").unlink()
    with pytest.raises(FileNotFoundError, match="z2/best.keras"):
        load_models(models_dir)


def test_load_models_rejects_wrong_layouts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no models found.*bestmodel-\{1\.\.4\}\.h5.*z\{bin\}/best\.keras"):
        load_models(tmp_path)
    (tmp_path / "z1").mkdir()
    x = keras.Input((32, 32, 1))
    keras.Model(x, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(x))).save(tmp_path / "z1" / "best.keras")
    write_bin_edges(tmp_path, (0.0, 1.0))
    with pytest.raises(ValueError, match=r"z1/best\.keras: model maps \(32, 32, 1\) -> \(1,\); expected \(96, 96, 1\)"):
        load_models(tmp_path)
    (tmp_path / BIN_EDGES_FILE).write_text('{"edges": [0.0, 0.5, 0.4]}')
    with pytest.raises(ValueError, match=r"redshift_bins\.json: field 'edges'"):
        load_models(tmp_path)
