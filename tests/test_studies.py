"""The supplement's studies (workflow/rules/studies.smk) end to end on a config smaller than config/study.yaml:
two gas models of two regions each, two snapshots, 1 and 2 redshift bins, two architectures, one seed, one epoch;
the cross-model test on the high-resolution maps, as the paper's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import keras
import pandas as pd
import pytest
import xarray as xr
import yaml
from workflow_utils import ci_config, snakemake

from szmass.splits import cluster_identity

pytestmark = pytest.mark.workflow
MODELS = {"gx": "gadget_x", "simba": "gizmo_simba"}
KERNELS = (1, 3)
FRACTIONS = (0.5, 0.2, 0.3)  # train, validation, test
# conv 3 kernel k filters 16 (16, 32, 64), dense 200, 100, 20, 1: k^2 (16 + 16*32 + 32*64) + 16 + 32 + 64 + 36,141
PARAMETERS = {k: k * k * (16 + 16 * 32 + 32 * 64) + (16 + 32 + 64) + (64 * 200 + 200 + 200 * 100 + 100 + 100 * 20 + 20 + 21)
              for k in KERNELS}  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("study")
    cfg = yaml.safe_load(ci_config(workdir, seeds=1, epochs=1, selection_bins=2).read_text())
    base = cfg["sims"].pop("synth")
    base.update(regions=2, snapshots={121: 0.168, 110: 0.499})
    cfg["sims"] = {name: base | {"synthetic": base["synthetic"] | {"gas_model": model}} for name, model in MODELS.items()}
    # the same 160 arcmin field, fewer pixels; kept for the cross-model test
    cfg["ymaps"].update(hires_npix=256, pixel_arcsec=37.5, projections=4, save_hires=True)
    cfg["training"]["redshift_edges"] = [0.0, 0.2, 1.0]  # every training bin holds one of the two snapshots
    cfg["training"]["split_fractions"] = list(FRACTIONS)  # not the default: the studies must follow them
    cfg["studies"] = {
        "zbins": {"enabled": True, "models": ["gadget_x"], "schemes": [[0.0, 1.0], [0.0, 0.2, 1.0]]},
        "hyperparameters": {"enabled": True, "models": ["gadget_x"], "redshift_range": [0.1, 0.2],
                            "grid": {"conv_layers": [3], "dense_layers": [2], "kernel_size": list(KERNELS),
                                     "filters": [16], "dropout": [0.1]}},
        "cross_model": {"enabled": True, "dataset": "hires"},
    }  # fmt: skip
    (workdir / "study.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(workdir, "studies", "--cores", "2", "--configfile", str(workdir / "study.yaml"))
    return workdir


def clean_maps(workdir: Path, model: str, dataset: str = "clean") -> xr.Dataset:
    ds = xr.open_dataset(workdir / "results" / "maps" / f"{dataset}.zarr", engine="zarr", consolidated=False)
    ds = ds.assign_coords(map=np.arange(ds.sizes["map"]))
    return ds.isel(map=np.flatnonzero(ds["model"].values.astype(object).astype(str) == model))


def run_predictions(root: Path) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in sorted(root.glob("z*/seed*/predictions.csv"))], ignore_index=True)


def test_zbin_study_tests_every_scheme_on_the_same_clusters(study: Path) -> None:
    table = pd.read_csv(study / "results" / "tables" / "supp_table1_zbins.csv")
    assert (study / "results" / "figures" / "supp_table1_zbins.png").stat().st_size > 0
    combined = table[table["zbin"] == "all"].set_index("n_bins")
    assert sorted(combined.index) == [1, 2]
    assert list(combined["edges"]) == ["0 1", "0 0.2 1"]
    # the test maps: every map of gadget_x whose cluster was drawn into the test set, in every scheme
    maps = clean_maps(study, "gadget_x")
    ids = cluster_identity(maps)
    tested = {}
    for n in (1, 2):
        runs = run_predictions(study / "results" / "studies" / "zbins" / f"bins{n}")
        assert np.array_equal(np.sort(runs["map"]), np.sort(maps["map"].values))  # each map in one bin
        labels = dict(zip(runs["map"], runs["split"], strict=True))
        tested[n] = {i for m, i in zip(maps["map"].values, ids, strict=True) if labels[m] == "test"}
        # a test cluster is tested in every bin it appears in, never trained on or validated
        assert all(labels[m] == "test" for m, i in zip(maps["map"].values, ids, strict=True) if i in tested[n])
    assert tested[1] == tested[2] and tested[1]
    assert len(tested[1]) == max(1, round(FRACTIONS[2] * len(set(ids))))  # training.split_fractions' test share
    n_test = int(np.isin(ids, list(tested[1])).sum())
    assert list(combined["n"]) == [n_test, n_test]
    for n, part in table.groupby("n_bins"):
        per_bin = part[part["zbin"] != "all"]
        assert per_bin["n"].sum() == n_test  # the bins' test maps add up to the combined ones
    assert np.isfinite(combined[["mean", "std", "skewness", "kurtosis"]].to_numpy()).all()
    assert (combined["std"] > 0).all()


def test_hyperparameter_scan_table(study: Path) -> None:
    table = pd.read_csv(study / "results" / "tables" / "hyperparameter_scan.csv")
    assert (study / "results" / "figures" / "hyperparameter_scan.png").stat().st_size > 0
    assert list(table["kernel_size"]) == list(KERNELS) and (table["seed"] == 0).all()
    assert list(table["n_parameters"]) == [PARAMETERS[k] for k in KERNELS]
    assert PARAMETERS[3] == 58_437  # the paper's network is one of them
    for row in table.itertuples():
        run = study / "results" / "studies" / "hyperparameters" / row.architecture / "seed0"
        history = pd.read_csv(run / "history.csv")
        assert row.best_val_loss == pytest.approx(history["val_loss"].min(), rel=1e-12)
        assert row.epochs == 1 == row.best_epoch
        predictions = pd.read_csv(run / "predictions.csv")
        assert ((predictions["redshift"] > 0.1) & (predictions["redshift"] <= 0.2)).all()  # the one bin scanned
        val = predictions[predictions["split"] == "val"]
        mse = float(np.mean((val["log10_M_cnn"] - val["log10_M_true"]) ** 2))
        assert mse == pytest.approx(row.best_val_loss, rel=1e-3)  # the kept weights give the least val loss
    # the same seed for every architecture: the same split
    splits = [pd.read_csv(study / "results" / "studies" / "hyperparameters" / a / "seed0" / "predictions.csv")["split"]
              for a in table["architecture"]]  # fmt: skip
    assert splits[0].equals(splits[1])


def test_cross_model_table(study: Path) -> None:
    table = pd.read_csv(study / "results" / "tables" / "supp_table3_cross_model.csv")
    models = sorted(MODELS.values())
    assert list(zip(table["train_model"], table["test_model"], strict=True)) == [(a, b) for a in models for b in models]
    root = study / "results" / "studies" / "cross_model"
    tests = {m: pd.read_csv(root / m / "tests.csv") for m in models}
    for model in models:
        runs = run_predictions(root / model)
        own_tests = runs[runs["split"] == "test"].sort_values("map")
        maps = clean_maps(study, model)
        identity = dict(zip(maps["map"].values, cluster_identity(maps), strict=True))
        n_tested = len({identity[m] for m in own_tests["map"]})
        assert n_tested == max(1, round(FRACTIONS[2] * len(set(identity.values()))))  # training.split_fractions
        # every network is tested on the same maps of a model: that model's own runs' test maps
        assert (table.loc[table["test_model"] == model, "n"] == len(own_tests)).all()
        for train_model in models:
            part = tests[train_model][tests[train_model]["test_model"] == model].sort_values("map")
            np.testing.assert_array_equal(part["map"], own_tests["map"])
        # trained on the model itself: the prediction rule reproduces the run's own test predictions
        own = tests[model][tests[model]["test_model"] == model].sort_values("map")
        np.testing.assert_allclose(own["log10_M_cnn"], own_tests["log10_M_cnn"], rtol=0, atol=1e-5)
        # b_t = (M_CNN - M_true) / M_CNN: its mean and standard error
        for train_model in models:
            part = tests[train_model][tests[train_model]["test_model"] == model]
            b = 1 - 10 ** (part["log10_M_true"] - part["log10_M_cnn"])
            row = table[(table["train_model"] == train_model) & (table["test_model"] == model)].iloc[0]
            assert row["mean"] == pytest.approx(b.mean(), rel=1e-9)
            assert row["stderr"] == pytest.approx(b.std(ddof=1) / np.sqrt(b.size), rel=1e-9)
    # the test maps of a model are none of another model's training maps (different simulations)
    assert not set(tests[models[0]]["map"][tests[models[0]]["test_model"] == models[1]]) & set(
        run_predictions(root / models[0])["map"])
    assert np.isfinite(table[["mean", "stderr", "median", "p16", "p84"]].to_numpy()).all()


def test_cross_model_networks_see_the_high_resolution_maps(study: Path) -> None:
    """studies.cross_model.dataset: hires trains and tests on results/maps/hires.zarr: the clean maps' clusters
    without the beam, Y kept."""
    from szmass.predict import predict_masses

    for model in MODELS.values():
        clean, hires = clean_maps(study, model), clean_maps(study, model, "hires")
        np.testing.assert_array_equal(hires["M500"].values, clean["M500"].values)  # the same maps, in the same order
        np.testing.assert_array_equal(hires["halo_id"].values, clean["halo_id"].values)
        y_hires, y_clean = hires["y"].values.astype(float), clean["y"].values.astype(float)
        # no 10 arcmin beam: every peak higher; the total Y of the field the same within 2 % (the beam spreads
        # a little of it over the clean maps' 3.2 arcmin wider field)
        assert (y_hires.max(axis=(1, 2)) > 1.2 * y_clean.max(axis=(1, 2))).all()
        y_tot = y_hires.sum(axis=(1, 2)) * hires.attrs["pixel_arcmin_out"] ** 2
        np.testing.assert_allclose(y_tot, y_clean.sum(axis=(1, 2)) * clean.attrs["pixel_arcmin_out"] ** 2, rtol=0.02)
        # the selected network's test predictions are those of the high-resolution maps, not of the clean ones
        net = keras.saving.load_model(study / "results" / "studies" / "cross_model" / model / "z1" / "best.keras",
                                      compile=False)
        tests = pd.read_csv(study / "results" / "studies" / "cross_model" / model / "tests.csv")
        own = tests[tests["test_model"] == model]
        rows = np.searchsorted(hires["map"].values, own["map"].to_numpy())
        z = hires["redshift"].values[rows]
        on_hires = predict_masses(y_hires[rows], z, {1: net}, edges=[0.0, 1.0])
        on_clean = predict_masses(y_clean[rows], z, {1: net}, edges=[0.0, 1.0])
        np.testing.assert_allclose(own["log10_M_cnn"], on_hires, rtol=0, atol=1e-5)
        assert np.abs(on_clean - on_hires).max() > 1e-3


def test_hyperparameter_table_counts_parameters_for_the_maps_side(tmp_path: Path) -> None:
    """The scan table's parameter count is that of the network built for the run's maps: a flattened network on
    32 x 32 maps (2 x 2 x 64 features into dense 200: 32 -> 15 -> 6 -> 2) is not the 96 x 96 one (10 x 10 x 64)."""
    from szmass.architecture import Architecture
    from szmass.rundir import HISTORY_COLUMNS, HISTORY_FILE
    from szmass.studies import hyperparameter_table

    history = pd.DataFrame({c: [1.0, 2.0] for c in HISTORY_COLUMNS})
    history["epoch"], history["val_loss"] = [1, 2], [0.02, 0.01]
    history.to_csv(tmp_path / HISTORY_FILE, index=False)
    flat = Architecture(pooling="flatten")
    table = hyperparameter_table([(flat, 0, tmp_path)], side=32)
    assert table["n_parameters"].tolist() == [58_437 - (64 * 200 + 200) + (2 * 2 * 64 * 200 + 200)]
    assert (table["best_epoch"].tolist(), table["best_val_loss"].tolist()) == ([2], [0.01])
