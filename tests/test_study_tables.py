"""The studies' library (szmass.studies): grids, settings and tables on small known inputs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from szmass.model import PAPER_ARCHITECTURE, Architecture
from szmass.splits import cluster_identity
from szmass.settings import MissingKeyError
from szmass.study_config import architecture_grid, check_schemes, study_architectures, study_settings
from szmass.studies import (
    best_epoch,
    cross_model_table,
    learning_rate_table,
    select_gas_models,
    train_size_table,
    training_subset,
    validation_losses,
    zbin_moments,
)
from workflow_utils import validated_config

STUDIES = validated_config(studies={})["studies"]
"""The ``studies`` section of the schema's defaults."""


def test_paper_grid_has_72_distinct_networks_with_the_published_one() -> None:
    grid = architecture_grid()
    assert len(grid) == 3 * 2 * 3 * 2 * 2 == len({a.name for a in grid})
    assert PAPER_ARCHITECTURE in grid
    assert {a.conv_filters[0] for a in grid} == {16, 32} and {a.dropout for a in grid} == {0.1, 0.2}
    # a subset: fields given with one value are fixed, the first field varies slowest
    sub = architecture_grid({"conv_layers": [3, 4], "dense_layers": [2], "kernel_size": [1, 3], "filters": [16],
                             "dropout": [0.1]})  # fmt: skip
    assert [(a.conv_layers, a.kernel_size) for a in sub] == [(3, 1), (3, 3), (4, 1), (4, 3)]
    with pytest.raises(ValueError, match="unknown key.*'kernels'"):
        architecture_grid({"kernels": [1]})
    with pytest.raises(ValueError, match="listed more than once"):
        study_architectures([{"kernel_size": 3}, {}])
    assert study_architectures([{"conv_layers": 5}]) == [Architecture(conv_layers=5)]


def test_default_zbin_schemes_are_nested_refinements() -> None:
    schemes = check_schemes(STUDIES["zbins"]["schemes"])
    assert [len(e) - 1 for e in schemes] == [1, 2, 4, 8]
    for coarse, fine in itertools.pairwise(schemes):
        assert set(coarse) <= set(fine) and len(fine) - 1 == 2 * (len(coarse) - 1)
    with pytest.raises(ValueError, match="its own number of bins"):
        check_schemes([[0.0, 1.0], [0.0, 0.5]])


def test_zbin_moments_known_answer() -> None:
    rng = np.random.default_rng(3)
    true = rng.uniform(14.0, 15.0, 40)
    r = rng.normal(0.02, 0.05, 40)
    zbin = np.repeat([1, 2], 20)
    one = pd.DataFrame({"log10_M_true": true, "log10_M_cnn": true + r, "zbin": 1})
    two = one.assign(zbin=zbin)
    table = zbin_moments({1: one, 2: two}, {1: [0.0, 1.0], 2: [0.0, 0.2, 1.0]})
    assert list(table["zbin"]) == ["z1", "all", "z1", "z2", "all"]
    assert list(table["edges"]) == ["0 1"] * 2 + ["0 0.2 1"] * 3
    for n_bins in (1, 2):
        row = table[(table["n_bins"] == n_bins) & (table["zbin"] == "all")].iloc[0]
        assert row["n"] == 40
        assert row["mean"] == pytest.approx(r.mean(), abs=1e-12)
        assert row["std"] == pytest.approx(r.std(ddof=1), rel=1e-10)
        assert row["skewness"] == pytest.approx(stats.skew(r, bias=False), rel=1e-8)
        assert row["kurtosis"] == pytest.approx(stats.kurtosis(r, bias=False), rel=1e-8)
    z2 = table[(table["n_bins"] == 2) & (table["zbin"] == "z2")].iloc[0]
    assert z2["n"] == 20 and z2["mean"] == pytest.approx(r[20:].mean(), abs=1e-12)
    with pytest.raises(ValueError, match="make 1 bins"):
        zbin_moments({2: two}, {2: [0.0, 1.0]})


def test_cross_model_table_known_answer() -> None:
    b = np.array([0.1, -0.2, 0.05, 0.0])  # b = 1 - M_true / M_CNN  ->  log10 M_CNN = log10 M_true - log10(1 - b)
    true = np.full(4, 14.5)
    table = pd.DataFrame({"log10_M_true": true, "log10_M_cnn": true - np.log10(1 - b)})
    out = cross_model_table({("gizmo_simba", "gadget_x"): table, ("gadget_x", "gadget_x"): table.iloc[:2]})
    assert list(out["train_model"]) == ["gadget_x", "gizmo_simba"]  # sorted pairs
    row = out.iloc[1]
    assert row["mean"] == pytest.approx(b.mean(), abs=1e-12)
    assert row["stderr"] == pytest.approx(b.std(ddof=1) / 2, rel=1e-10)
    assert row["median"] == pytest.approx(0.025, abs=1e-12) and row["n"] == 4


def test_select_gas_models_keeps_store_indices() -> None:
    ds = xr.Dataset({"y": (("map", "py", "px"), np.zeros((4, 2, 2)))},
                    coords={"model": ("map", ["gadget_x", "gizmo_simba", "gadget_x", "gadget_music"])})  # fmt: skip
    assert select_gas_models(ds, ["gadget_x"])["map"].values.tolist() == [0, 2]
    assert select_gas_models(ds, [])["map"].values.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"no maps of gas model\(s\) \['gizmo'\]"):
        select_gas_models(ds, ["gizmo"])


def test_best_epoch_and_validation_losses(tmp_path: Path) -> None:
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "loss": 1.0, "val_loss": [0.5, 0.2, 0.2, 0.3]})
    history.to_csv(tmp_path / "history.csv", index=False)
    assert best_epoch(tmp_path) == (2, 0.2, 4)  # the first epoch of least loss, as train_run keeps it
    table = pd.DataFrame({"architecture": [PAPER_ARCHITECTURE.name] * 2 + [Architecture(kernel_size=1).name],
                          "best_val_loss": [0.1, 0.3, 0.2]})  # fmt: skip
    losses = validation_losses(table)
    assert list(losses) == ["c3 d2 k3 f16 p0.1", "c3 d2 k1 f16 p0.1"]
    np.testing.assert_array_equal(losses["c3 d2 k3 f16 p0.1"], [0.1, 0.3])


def test_study_settings_defaults_and_overrides() -> None:
    training = {"seeds": 4, "epochs": 30, "selection_bins": 10}
    zb = study_settings("zbins", STUDIES, training)
    assert zb["enabled"] is False and zb["seeds"] == 4 and len(zb["schemes"]) == 4
    studies = validated_config(studies={"hyperparameters": {"seeds": 2, "enabled": True}})["studies"]
    hp = study_settings("hyperparameters", studies, training)
    assert (hp["seeds"], hp["epochs"], hp["enabled"], hp["redshift_range"]) == (2, 30, True, [0.0, 1.0])
    with pytest.raises(ValueError, match=r"studies.cross_model: unknown key\(s\) \['edges'\]"):
        study_settings("cross_model", {"cross_model": STUDIES["cross_model"] | {"edges": [0, 1]}}, training)
    with pytest.raises(ValueError, match="unknown study"):
        study_settings("zbin", STUDIES, training)
    without_rates = {k: v for k, v in STUDIES["learning_rates"].items() if k != "rates"}
    with pytest.raises(MissingKeyError, match=r"^studies.learning_rates: missing key\(s\) studies.learning_rates.rates;"):
        study_settings("learning_rates", {"learning_rates": without_rates}, training)


def test_learning_rate_table_orders_rates_and_reads_the_least_loss(tmp_path: Path) -> None:
    runs = []
    for rate, losses in ((1e-4, [0.5, 0.3, 0.4]), (1e-2, [0.9, 0.8, 0.85]), (1e-3, [0.4, 0.2, 0.1])):
        d = tmp_path / f"lr{rate:g}"
        d.mkdir()
        pd.DataFrame({"epoch": [1, 2, 3], "loss": 1.0, "val_loss": losses}).to_csv(d / "history.csv", index=False)
        runs.append((rate, 0, d))
    table = learning_rate_table(runs)
    assert list(table["learning_rate"]) == [1e-2, 1e-3, 1e-4]
    assert list(table["best_val_loss"]) == [0.8, 0.1, 0.3] and list(table["best_epoch"]) == [2, 3, 2]
    with pytest.raises(ValueError, match="learning rates must be finite and > 0, got 0.0"):
        learning_rate_table([(0.0, 0, runs[0][2])])
    settings = study_settings("learning_rates", STUDIES, {"seeds": 2, "epochs": 3, "selection_bins": 2})
    assert settings["rates"] == [1e-2, 1e-3, 1e-4, 1e-5] and settings["seeds"] == 2


def test_training_subset_keeps_the_test_set_and_a_fraction_of_the_rest(tmp_path: Path) -> None:
    ids = np.tile(np.arange(20), 3)  # 20 clusters, 3 maps each, not next to each other in the store
    ds = xr.Dataset({"y": (("map", "py", "px"), np.zeros((60, 2, 2)))},
                    coords={"map": np.arange(60), "sim": ("map", ["s"] * 60), "region": ("map", ids),
                            "halo_id": ("map", np.zeros(60, int))})  # fmt: skip
    identity = cluster_identity(ds, "halo")
    test = [str(i) for i in identity[:6:3]]  # the clusters of maps 0 and 3
    half = training_subset(ds, test, 0.5, seed=1, identity="halo")
    kept = cluster_identity(half, "halo")
    assert set(test) <= set(kept) and np.unique(kept).size == 2 + 9  # the test set and round(0.5 x 18) others
    assert half.sizes["map"] == 3 * 11  # every map of a kept cluster
    assert training_subset(ds, test, 1.0, seed=1, identity="halo").sizes["map"] == 60
    with pytest.raises(ValueError, match=r"fractions must lie in \(0, 1\], got 0"):
        training_subset(ds, test, 0, seed=1)
    for fraction, std in ((0.5, 0.2), (1.0, 0.1)):
        maps = training_subset(ds, test, fraction, seed=1, identity="halo")
        labels = cluster_identity(maps, "halo")
        is_test = np.isin(labels, test)
        split = np.where(is_test, "test", "train")
        split[labels == labels[-1]] = "val"  # the last kept cluster validates: not a training cluster
        d = tmp_path / f"f{fraction:g}"
        d.mkdir()
        r = np.zeros(labels.size)
        r[is_test] = np.tile([-std, 0.0, std], 2)  # the 6 test maps
        pd.DataFrame({"map": maps["map"].values, "split": split, "redshift": 0.1, "log10_M_true": 14.5,
                      "log10_M_cnn": 14.5 + r}).to_csv(d / "predictions.csv", index=False)  # fmt: skip
    runs = [(1.0, 0, tmp_path / "f1"), (0.5, 0, tmp_path / "f0.5")]
    table = train_size_table(runs, identity)
    assert list(table["fraction"]) == [0.5, 1.0]
    # 9 (half) and 18 (all) of the 18 non-test clusters, one of them validating; 3 maps each
    assert list(table["n_train_clusters"]) == [8, 17] and list(table["n_train"]) == [24, 51]
    assert list(table["n_test"]) == [6, 6]
    np.testing.assert_allclose(table["std"], np.array([0.2, 0.1]) * np.sqrt(4 / 5), rtol=1e-12)
    with pytest.raises(ValueError, match="map indices beyond the 30 maps of the map store"):
        train_size_table(runs, identity[:30])
