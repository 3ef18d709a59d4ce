"""Training runs (szmass.train) and K runs at once (szmass.ensemble) on tiny 32 x 32 maps."""

from __future__ import annotations

import dataclasses

import os
import re
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from szmass import rundir, splits, train
from szmass.ensemble import build_ensemble, load_run, run_weights, train_ensemble
from szmass.mapstore import open_maps
from szmass.model import Architecture, build_cnn, with_standardisation
from szmass.splits import cluster_identity, select_redshift_bin, split_maps
from szmass.train import (
    MapSource,
    monitored,
    patience_spent,
    pixel_moments,
    split_given_test,
    train_run,
)

NPIX = 32
EPOCHS = 3
BATCH = 19  # 57, 58 and 60 training maps (seeds 14, 11, 12): 3 or 4 steps, full or partial last batch
TEST_SEED = 2
SEED = 11


def tiny_store(n_halos: int = 24, seed: int = 0) -> xr.Dataset:
    """Map-store layout (every coordinate of the data contract) with 2 to 4 maps per halo at z = 0.05
    and two at z = 0.3: a Gaussian blob whose amplitude scales as M500^(5/3), plus white noise; M200 is
    1.2 to 1.6 M500 (as NFW halos of various concentrations), so log10 M200 is not log10 M500 shifted."""
    rng = np.random.default_rng(seed)
    log_m = rng.uniform(14.0, 15.0, n_halos)
    m200_over_m500 = 1.2 + 0.4 * (np.arange(n_halos) * 7 % 5) / 4  # no draw: the other coordinates stay as they were
    yy, xx = np.mgrid[:NPIX, :NPIX] - (NPIX - 1) / 2
    maps, rows = [], []
    for h in range(n_halos):
        for p in range(2 + h % 3):
            width = 3.0 + rng.uniform(-0.5, 0.5)
            blob = 1e-6 * 10 ** (5 / 3 * (log_m[h] - 14.5)) * np.exp(-(xx**2 + yy**2) / (2 * width**2))
            maps.append(blob + 2e-7 * rng.normal(size=(NPIX, NPIX)))
            rows.append(("synth", 1 + h % 6, 124, h, p, 0.05, 10 ** log_m[h], m200_over_m500[h] * 10 ** log_m[h]))
    for h in (0, 1):  # a later snapshot: another redshift bin
        maps.append(np.zeros((NPIX, NPIX)))
        rows.append(("synth", 1 + h % 6, 117, h, 0, 0.3, 10 ** log_m[h], m200_over_m500[h] * 10 ** log_m[h]))
    cols = ("sim", "region", "snapshot", "halo_id", "projection", "redshift", "M500", "M200")
    coords = {c: ("map", np.array(v)) for c, v in zip(cols, zip(*rows, strict=True), strict=True)}
    n = len(rows)
    coords |= {"R500": ("map", np.full(n, 1000.0)), "R200": ("map", np.full(n, 1500.0)), "Y500_cyl": ("map", np.ones(n)), "Y500_sph": ("map", np.ones(n)),
               "model": ("map", np.full(n, "gadget_x"))}  # fmt: skip
    return xr.Dataset({"y": (("map", "py", "px"), np.asarray(maps, np.float32))}, coords=coords)


def weights(run_dir: Path) -> list[np.ndarray]:
    return keras.saving.load_model(run_dir / rundir.MODEL_FILE).get_weights()


def max_weight_diff(a: Path, b: Path) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(weights(a), weights(b), strict=True))


@pytest.fixture(scope="module")
def bin1() -> xr.Dataset:
    return select_redshift_bin(tiny_store(), 1)


@pytest.fixture(scope="module")
def reference(bin1: xr.Dataset, tmp_path_factory: pytest.TempPathFactory) -> train.RunResult:
    return train_run(bin1, out_dir=tmp_path_factory.mktemp("ref") / "run", seed=SEED, test_seed=TEST_SEED,
                     epochs=EPOCHS, batch_size=BATCH)  # fmt: skip


def test_outputs_cover_every_map_and_the_saved_model_reproduces_them(bin1: xr.Dataset, reference: train.RunResult) -> None:
    out = reference.out_dir
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "model.keras", "predictions.csv"]  # checkpoint gone
    pred = pd.read_csv(out / rundir.PREDICTIONS_FILE)
    assert list(pred.columns) == list(rundir.PREDICTION_COLUMNS)
    assert np.array_equal(pred["map"], bin1["map"].values)
    labels = split_maps(cluster_identity(bin1), test_seed=TEST_SEED, seed=SEED)
    assert np.array_equal(pred["split"], labels)
    assert np.allclose(pred["log10_M_true"], np.log10(bin1["M500"].values), rtol=0, atol=1e-12)
    model = keras.saving.load_model(out / rundir.MODEL_FILE)  # raw maps in, log10 M500 [Msun] out
    again = model.predict(bin1["y"].values[..., None], verbose=0)[:, 0]
    assert np.allclose(again, pred["log10_M_cnn"], rtol=0, atol=1e-5)

    hist = pd.read_csv(out / rundir.HISTORY_FILE)
    assert list(hist["epoch"]) == list(range(1, EPOCHS + 1))
    best = int(hist["val_loss"].idxmin())
    assert reference.best_epoch == best + 1
    # the kept weights are those of the best epoch: their validation MSE is that epoch's val_loss
    val = pred[pred["split"] == "val"]
    mse = np.mean((val["log10_M_cnn"] - val["log10_M_true"].astype(np.float32)) ** 2)
    assert mse == pytest.approx(hist["val_loss"][best], rel=1e-5)


def test_standardisation_uses_the_training_maps_only(bin1: xr.Dataset, reference: train.RunResult) -> None:
    labels = split_maps(cluster_identity(bin1), test_seed=TEST_SEED, seed=SEED)
    x = bin1["y"].values[labels == "train"].astype(np.float64)
    assert reference.mean == pytest.approx(x.mean(), rel=1e-12)
    assert reference.std == pytest.approx(x.std(), rel=1e-12)
    assert reference.std != pytest.approx(bin1["y"].values.astype(np.float64).std(), rel=1e-3)
    layer = keras.saving.load_model(reference.out_dir / rundir.MODEL_FILE).get_layer("standardise")
    assert (layer.scale, layer.offset) == (1.0 / reference.std, -reference.mean / reference.std)
    assert reference.n_maps == {s: int(np.sum(labels == s)) for s in ("train", "val", "test")}


def test_pixel_moments_combine_blocks_exactly(bin1: xr.Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train, "MOMENT_BLOCK", 7)
    idx = np.arange(3, 50)
    x = bin1["y"].values[idx].astype(np.float64)
    mean, std = pixel_moments(MapSource(bin1), idx)
    assert mean == pytest.approx(x.mean(), rel=1e-12)
    assert std == pytest.approx(x.std(), rel=1e-12)


def test_same_seed_gives_identical_weights(bin1: xr.Dataset, reference: train.RunResult, tmp_path: Path) -> None:
    again = train_run(bin1, out_dir=tmp_path, seed=SEED, test_seed=TEST_SEED, epochs=EPOCHS, batch_size=BATCH)
    assert max_weight_diff(reference.out_dir, again.out_dir) == 0.0
    a, b = (pd.read_csv(d / rundir.PREDICTIONS_FILE) for d in (reference.out_dir, again.out_dir))
    assert a.equals(b)


class Interrupt(keras.callbacks.Callback):
    """Kill the run at the end of epoch ``epoch`` (0-based), before its checkpoint is written."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.stop_at = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.stop_at:
            raise KeyboardInterrupt(f"killed at epoch {epoch}")


def test_resume_after_interruption_gives_the_same_weights(bin1: xr.Dataset, reference: train.RunResult, tmp_path: Path) -> None:
    kwargs = {"out_dir": tmp_path, "seed": SEED, "test_seed": TEST_SEED, "epochs": EPOCHS, "batch_size": BATCH}
    with pytest.raises(KeyboardInterrupt):
        train_run(bin1, callbacks=[Interrupt(1)], **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == [train.CHECKPOINT_DIR]  # no partial outputs
    with pytest.raises(ValueError, match="fingerprint"):  # a checkpoint of other settings is refused
        train_run(bin1, **{**kwargs, "batch_size": 8})
    resumed = train_run(bin1, **kwargs)
    assert resumed.resumed_epochs == 1 and resumed.epochs == EPOCHS
    assert max_weight_diff(reference.out_dir, tmp_path) <= 1e-6
    assert np.allclose(pd.read_csv(tmp_path / rundir.HISTORY_FILE), pd.read_csv(reference.out_dir / rundir.HISTORY_FILE),
                       rtol=1e-6, atol=0)  # fmt: skip


def test_streaming_from_zarr_trains_like_in_memory(reference: train.RunResult, tmp_path: Path) -> None:
    path = tmp_path / "clean.zarr"
    tiny_store().to_zarr(path, consolidated=False, encoding={"y": {"chunks": (3, NPIX, NPIX)}})
    streamed = select_redshift_bin(open_maps(path), 1)
    assert not MapSource(streamed, max_memory_bytes=0).in_memory
    run = train_run(streamed, out_dir=tmp_path / "run", seed=SEED, test_seed=TEST_SEED, epochs=EPOCHS,
                    batch_size=BATCH, max_memory_bytes=0)  # fmt: skip
    assert max_weight_diff(reference.out_dir, run.out_dir) == 0.0


def test_bad_inputs_are_named(bin1: xr.Dataset, tmp_path: Path) -> None:
    bad_mass = bin1.assign_coords(M500=bin1["M500"].where(bin1["map"] != bin1["map"][3], -1.0))
    with pytest.raises(ValueError, match="'M500'"):
        train_run(bad_mass, out_dir=tmp_path, seed=1, test_seed=2, epochs=1)
    y = bin1["y"].values.copy()
    y[5, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite pixels in map\(s\) \[5\]"):
        MapSource(bin1.assign(y=(("map", "py", "px"), y)))
    assert not any(tmp_path.iterdir())


def test_target_m200_trains_on_log10_m200(bin1: xr.Dataset, reference: train.RunResult, tmp_path: Path) -> None:
    """target_mass="M200": the same split, the maps' log10 M200 as truth and target; single and vectorised runs."""
    run = train_run(bin1, out_dir=tmp_path / "m200", seed=SEED, test_seed=TEST_SEED, epochs=EPOCHS, batch_size=BATCH,
                    target_mass="M200")  # fmt: skip
    pred = pd.read_csv(run.out_dir / rundir.PREDICTIONS_FILE)
    ref = pd.read_csv(reference.out_dir / rundir.PREDICTIONS_FILE)
    assert np.array_equal(pred["split"], ref["split"]) and np.array_equal(pred["map"], ref["map"])  # same clusters
    np.testing.assert_allclose(pred["log10_M_true"], np.log10(bin1["M200"].values), rtol=0, atol=1e-12)
    offset = np.log10(bin1["M200"].values / bin1["M500"].values)
    assert offset.min() > 0.07 and np.ptp(offset) > 0.1  # M200 is not a fixed multiple of M500
    # the network learned log10 M200: same seed, same initial weights as the M500 run but for the output bias, which
    # starts at the training maps' mean log10 M200 instead of M500; the predictions follow that offset
    train_rows = pred["split"] == "train"
    shift = (pred["log10_M_cnn"] - ref["log10_M_cnn"])[train_rows].mean()
    assert shift == pytest.approx(offset[train_rows].mean(), abs=0.01)
    (ens,) = train_ensemble(bin1, out_dirs=[tmp_path / "ens"], seeds=[SEED], test_seed=TEST_SEED, epochs=1,
                            batch_size=BATCH, target_mass="M200")  # fmt: skip
    ens_pred = pd.read_csv(ens.out_dir / rundir.PREDICTIONS_FILE)
    np.testing.assert_allclose(ens_pred["log10_M_true"], pred["log10_M_true"], rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"^map store: coordinate 'M200' \[Msun\] missing"):
        train_run(bin1.drop_vars("M200"), out_dir=tmp_path / "none", seed=SEED, test_seed=TEST_SEED, epochs=1,
                  target_mass="M200")  # fmt: skip
    with pytest.raises(ValueError, match=r"target mass must be one of \['M500', 'M200'\], got 'Mvir'"):
        train_run(bin1, out_dir=tmp_path / "none", seed=SEED, test_seed=TEST_SEED, epochs=1, target_mass="Mvir")
    assert not (tmp_path / "none").exists()


def test_vectorised_runs_match_single_runs(bin1: xr.Dataset, reference: train.RunResult, tmp_path: Path) -> None:
    seeds = [SEED, 14, 12]
    singles = [reference.out_dir] + [
        train_run(bin1, out_dir=tmp_path / f"single{s}", seed=s, test_seed=TEST_SEED, epochs=EPOCHS, batch_size=BATCH).out_dir
        for s in seeds[1:]
    ]
    n_train = [(split_maps(cluster_identity(bin1), test_seed=TEST_SEED, seed=s) == "train").sum() for s in seeds]
    assert len({-(-n // BATCH) for n in n_train}) > 1  # the runs have different numbers of steps per epoch
    assert any(n % BATCH for n in n_train)  # and partial last batches

    out_dirs = [tmp_path / f"ens{s}" for s in seeds]
    kwargs = {"out_dirs": out_dirs, "seeds": seeds, "test_seed": TEST_SEED, "epochs": EPOCHS, "batch_size": BATCH}

    def interrupt(epoch: int) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_ensemble(bin1, epoch_hook=interrupt, **kwargs)
    results = train_ensemble(bin1, **kwargs)  # resumes after epoch 1
    assert [r.resumed_epochs for r in results] == [1, 1, 1]
    for single, run in zip(singles, results, strict=True):
        assert max_weight_diff(single, run.out_dir) < 1e-5
        a, b = (pd.read_csv(d / rundir.PREDICTIONS_FILE) for d in (single, run.out_dir))
        assert a["split"].equals(b["split"])
        assert np.allclose(a["log10_M_cnn"], b["log10_M_cnn"], rtol=0, atol=1e-5)
        assert np.allclose(pd.read_csv(single / rundir.HISTORY_FILE), pd.read_csv(run.out_dir / rundir.HISTORY_FILE),
                           rtol=1e-5, atol=0)  # fmt: skip
    assert max_weight_diff(singles[0], singles[1]) > 1e-3  # different seeds, different networks


SMALL = Architecture(conv_layers=2, dense_layers=1, kernel_size=2, filters=8, dropout=0.2)
"""A non-default network for 32 x 32 maps: 32 -> 31 -> 15 -> 14 -> 7 pixels, filters 8 and 16, dense 200, 20, 1."""


SMALL_FLAT = dataclasses.replace(SMALL, pooling="flatten")
"""SMALL with its 7 x 7 x 16 features flattened (784 inputs to the dense 200) instead of averaged."""
SMALL_WEIGHTED = dataclasses.replace(SMALL, pooling="weighted")
"""SMALL with a learned weight per position (7 x 7) and filter (16) in place of the average."""


@pytest.mark.parametrize(("split_conv", "arch"), [(True, Architecture()), (False, Architecture()), (True, SMALL),
                                                  (False, SMALL), (True, SMALL_FLAT), (False, SMALL_FLAT),
                                                  (True, SMALL_WEIGHTED), (False, SMALL_WEIGHTED)],
                         ids=["split", "grouped", "split-small", "grouped-small", "split-flat", "grouped-flat",
                              "split-weighted", "grouped-weighted"])  # fmt: skip
def test_vectorised_model_computes_each_run_as_its_single_network(split_conv: bool, arch: Architecture) -> None:
    means, stds = [1e-7, -2e-7, 0.0], [1e-6, 2e-6, 5e-7]
    cnns = [build_cnn(input_shape=(NPIX, NPIX, 1), seed=s, architecture=arch) for s in (3, 4, 5)]
    for k, cnn in enumerate(cnns):  # distinct position weights per run: a wrong slice of the ensemble's would show
        if arch.pooling == "weighted":
            pool = cnn.get_layer("weighted")
            pool.kernel.assign(np.random.default_rng(k).uniform(0, 0.05, pool.kernel.shape).astype(np.float32))
    ensemble = build_ensemble(means, stds, map_shape=(NPIX, NPIX), split_conv=split_conv, architecture=arch)
    for k, cnn in enumerate(cnns):
        load_run(ensemble, k, cnn)
    x = (1e-6 * np.random.default_rng(0).standard_normal((5, NPIX, NPIX, 3))).astype(np.float32)
    out = ensemble.predict(x, verbose=0)
    for k, cnn in enumerate(cnns):
        single = with_standardisation(cnn, means[k], stds[k]).predict(x[..., k : k + 1], verbose=0)[:, 0]
        assert np.allclose(out[:, k], single, rtol=0, atol=1e-5)
        assert all(np.array_equal(a, b) for a, b in zip(run_weights(ensemble, k), cnn.get_weights(), strict=True))


def test_weighted_runs_train_alike_single_and_vectorised(bin1: xr.Dataset, tmp_path: Path) -> None:
    """Training moves the weighted pool off its start (1 / 49 on the 7 x 7 map), and the vectorised ensemble trains
    each run's pool, as the rest of its network, as the single run does."""
    kwargs = {"test_seed": TEST_SEED, "epochs": EPOCHS, "batch_size": BATCH, "architecture": SMALL_WEIGHTED}
    singles = [train_run(bin1, out_dir=tmp_path / f"w{s}", seed=s, **kwargs) for s in (SEED, 14)]
    ensemble = train_ensemble(bin1, out_dirs=[tmp_path / "ens11", tmp_path / "ens14"], seeds=[SEED, 14], **kwargs)
    for single, run in zip(singles, ensemble, strict=True):
        assert max_weight_diff(single.out_dir, run.out_dir) < 1e-5
    pool = keras.saving.load_model(singles[0].out_dir / rundir.MODEL_FILE).get_layer("deepplanck_cnn").get_layer("weighted")
    assert np.abs(pool.kernel.numpy() - 1 / 49).max() > 1e-4


def test_ensemble_refuses_a_network_of_another_architecture() -> None:
    ensemble = build_ensemble([0.0], [1.0], map_shape=(NPIX, NPIX), architecture=SMALL)
    with pytest.raises(ValueError, match="Conv2D layers"):
        load_run(ensemble, 0, build_cnn(input_shape=(NPIX, NPIX, 1)))


def test_non_default_architecture_round_trips_through_model_keras(bin1: xr.Dataset, tmp_path: Path) -> None:
    run = train_run(bin1, out_dir=tmp_path, seed=SEED, test_seed=TEST_SEED, epochs=2, batch_size=BATCH, architecture=SMALL)
    loaded = keras.saving.load_model(tmp_path / rundir.MODEL_FILE)
    cnn = loaded.get_layer("deepplanck_cnn")
    convs = [la for la in cnn.layers if isinstance(la, keras.layers.Conv2D)]
    assert [(c.kernel.shape, c.get_config()["filters"]) for c in convs] == [((2, 2, 1, 8), 8), ((2, 2, 8, 16), 16)]
    assert [la.get_config()["rate"] for la in cnn.layers if isinstance(la, keras.layers.Dropout)] == [pytest.approx(0.2)]
    assert cnn.count_params() == SMALL.n_parameters() == (4 * 8 + 8) + (4 * 8 * 16 + 16) + (16 * 200 + 200) + (200 * 20 + 20) + 21
    # the saved model reproduces the run's predictions of every map
    pred = pd.read_csv(tmp_path / rundir.PREDICTIONS_FILE)
    again = loaded.predict(bin1["y"].values[..., None], verbose=0)[:, 0]
    np.testing.assert_allclose(again, pred["log10_M_cnn"], rtol=0, atol=1e-5)
    # the best epoch's validation loss is the MSE of the saved model on the validation maps
    val = (pred["split"] == "val").to_numpy()
    mse = float(np.mean((again[val] - pred["log10_M_true"].to_numpy()[val]) ** 2))
    assert mse == pytest.approx(run.best_val_loss, rel=1e-4)


def test_given_test_set_matches_the_drawn_one_and_spans_redshift_bins() -> None:
    store = tiny_store()
    ids = cluster_identity(store)
    drawn = split_maps(ids, test_seed=TEST_SEED, seed=SEED)
    # the test set that split_maps draws, given explicitly, labels every map alike
    given = split_given_test(ids, np.unique(ids[drawn == "test"]), seed=SEED, fractions=(0.8, 0.1, 0.1))
    assert np.array_equal(given, drawn)
    # one test set drawn over all redshifts: in each bin exactly the maps of those clusters are tested
    test_ids = splits.test_identities(ids, test_seed=TEST_SEED)
    assert np.array_equal(test_ids, np.unique(ids[drawn == "test"]))  # split_maps' test draw ignores the seed
    for zbin in (1, 3):
        part = select_redshift_bin(store, zbin)
        split = train.draw_split(part, seed=SEED, test_seed=0, identity="halo", fractions=(0.8, 0.1, 0.1),
                                 test_identities=test_ids)  # fmt: skip
        tested = np.isin(cluster_identity(part), test_ids)
        assert np.array_equal(split.labels == "test", tested)
        assert split.val.size > 0 and split.train.size > 0
    with pytest.raises(ValueError, match="leave none to train on"):
        split_given_test(np.array(["a", "b", "c"]), ["a", "b"], seed=0, fractions=(0.8, 0.1, 0.1))


def test_mixed_precision_computes_hidden_layers_in_float16(bin1: xr.Dataset, tmp_path: Path) -> None:
    """training.mixed_precision: float16 compute in the hidden layers, float32 standardisation and output; the
    run trains to finite losses and its model.keras reproduces its predictions."""
    result = train_run(bin1, out_dir=tmp_path / "mixed", seed=SEED, test_seed=TEST_SEED, epochs=1, batch_size=BATCH,
                       mixed_precision=True)  # fmt: skip
    model = keras.saving.load_model(result.out_dir / rundir.MODEL_FILE)
    cnn = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert model.get_layer("standardise").dtype_policy.compute_dtype == "float32"
    assert cnn.get_layer("conv1").dtype_policy.name == "mixed_float16"
    assert cnn.get_layer(train.OUTPUT_LAYER).dtype_policy.compute_dtype == "float32"
    history = pd.read_csv(result.out_dir / rundir.HISTORY_FILE)
    assert np.all(np.isfinite(history[["loss", "val_loss"]].to_numpy()))
    predictions = pd.read_csv(result.out_dir / rundir.PREDICTIONS_FILE)
    again = model.predict(bin1["y"].values[..., None], batch_size=train.EVAL_BATCH_SIZE, verbose=0)[:, 0]
    assert np.allclose(predictions["log10_M_cnn"], again, rtol=0, atol=1e-3)  # float16 activations: ~1e-3 relative
    assert abs(float(np.median(predictions["log10_M_cnn"] - predictions["log10_M_true"]))) < 1.0  # near the targets


class Started(Exception):
    """Raised once a test has seen the start of a run, so that the run does not train."""


class OutputBiasAtStart(keras.callbacks.Callback):
    """Record the output layer's bias when ``fit`` starts, then stop the run (:class:`Started`) before its first step."""

    bias: float

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.bias = float(self.model.get_layer("deepplanck_cnn").get_layer(train.OUTPUT_LAYER).bias.numpy()[0])
        raise Started


@pytest.mark.parametrize("init_output_bias", [True, False])
def test_output_bias_starts_at_the_training_mean_or_zero(bin1: xr.Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         init_output_bias: bool) -> None:  # fmt: skip
    """training.init_output_bias: the output layer's bias starts at the mean log10 M500 [Msun] of the run's own
    training maps (True) or at 0 (False, as the paper), in single runs and in each run of the vectorised ensemble."""
    seeds = [SEED, 14]
    log_m = np.log10(bin1["M500"].values)
    means = [float(np.mean(log_m[split_maps(cluster_identity(bin1), test_seed=TEST_SEED, seed=s) == "train"])) for s in seeds]
    assert abs(means[0] - means[1]) > 1e-3  # another seed, other training maps: a bias shared by the runs would show
    expected = means if init_output_bias else [0.0, 0.0]
    kwargs = {"test_seed": TEST_SEED, "epochs": EPOCHS, "batch_size": BATCH, "init_output_bias": init_output_bias}
    single = []
    for s in seeds:
        start = OutputBiasAtStart()
        with pytest.raises(Started):
            train_run(bin1, out_dir=tmp_path / f"run{s}", seed=s, callbacks=[start], **kwargs)
        single.append(start.bias)
    vectorised: list[float] = []

    def stop_before_training(ensemble: keras.Model, *args: object, **kw: object) -> None:
        vectorised.extend(float(run_weights(ensemble, k)[-1][0]) for k in range(len(seeds)))
        raise Started

    monkeypatch.setattr("szmass.ensemble.make_steps", stop_before_training)
    with pytest.raises(Started):
        train_ensemble(bin1, out_dirs=[tmp_path / f"ens{s}" for s in seeds], seeds=seeds, **kwargs)
    np.testing.assert_allclose(single, expected, rtol=0, atol=1e-5)  # float32 bias of ~14.5
    np.testing.assert_allclose(vectorised, expected, rtol=0, atol=1e-5)


def test_jit_compile_needs_deterministic_false(bin1: xr.Dataset, tmp_path: Path) -> None:
    """XLA with op determinism is refused by check_settings, and so by both trainers before they write anything;
    jit_compile without determinism passes the check."""
    message = r"^jit_compile: true needs deterministic: false \(TensorFlow has no deterministic XLA max-pool gradient\)$"
    with pytest.raises(ValueError, match=message):
        train.check_settings(EPOCHS, BATCH, 1e-4, deterministic=True, jit_compile=True)
    train.check_settings(EPOCHS, BATCH, 1e-4, deterministic=False, jit_compile=True)
    kwargs = {"test_seed": TEST_SEED, "epochs": EPOCHS, "jit_compile": True, "deterministic": True}
    with pytest.raises(ValueError, match=message):
        train_run(bin1, out_dir=tmp_path / "run", seed=SEED, **kwargs)
    with pytest.raises(ValueError, match=message):
        train_ensemble(bin1, out_dirs=[tmp_path / "ens"], seeds=[SEED], **kwargs)
    assert not any(tmp_path.iterdir())


def test_seeds_per_job_trains_groups_of_seeds_in_one_job(tmp_path: Path) -> None:
    """training.seeds_per_job = 2 on config/ci.yaml: one train_seeds job per data set and bin writes both seeds'
    outputs (the vectorised ensemble, equal to single runs: test_vectorised_runs_match_single_runs); no
    single-seed train job is left."""
    from workflow_utils import ci_config, snakemake

    dry = snakemake(tmp_path, "-n", "--configfile", str(ci_config(tmp_path, seeds_per_job=2)))
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout, re.MULTILINE))
    assert jobs["train_seeds0_1"] == "8" and "train" not in jobs  # 2 data sets x 4 bins, seeds 0 and 1 together
    outputs = re.findall(r"rule train_seeds0_1:\n(?:.*\n)*?\s+output: (.*)\n", dry.stdout)
    assert len(outputs) == 8
    for line in outputs:
        files = sorted(line.split(", "))
        assert len(files) == 6 and {f.split("/seed")[1].split("/")[0] for f in files} == {"0", "1"}


def test_early_stopping_stops_patience_epochs_after_the_best_and_matches_a_shorter_run(bin1: xr.Dataset, tmp_path: Path) -> None:
    """With patience P, training ends P epochs after the least validation loss (history.csv ends there, and no
    epoch of the last P improves on it); its weights are those of a run of exactly that many epochs without
    patience; the vectorised ensemble stops each run at the same epoch with the same weights; a resumed
    early-stopped run stops where the uninterrupted one did."""
    patience, epochs = 2, 30
    kwargs = {"test_seed": TEST_SEED, "batch_size": BATCH, "learning_rate": 3e-2}  # large steps: val loss soon rises
    runs = [train_run(bin1, out_dir=tmp_path / f"es{s}", seed=s, epochs=epochs, patience=patience, **kwargs) for s in (SEED, 14)]
    for run in runs:
        history = pd.read_csv(run.out_dir / rundir.HISTORY_FILE)
        assert run.epochs == len(history) == run.best_epoch + patience < epochs, (run.epochs, run.best_epoch)
        val = history["val_loss"].to_numpy()
        assert val[run.best_epoch - 1] == val.min() < val[run.best_epoch :].min()
    short = train_run(bin1, out_dir=tmp_path / "short", seed=SEED, epochs=runs[0].epochs, **kwargs)
    assert short.best_epoch == runs[0].best_epoch and max_weight_diff(short.out_dir, runs[0].out_dir) == 0
    ensemble = train_ensemble(bin1, out_dirs=[tmp_path / "ens11", tmp_path / "ens14"], seeds=[SEED, 14], epochs=epochs,
                              patience=patience, **kwargs)  # fmt: skip
    for single, run in zip(runs, ensemble, strict=True):
        assert (run.epochs, run.best_epoch) == (single.epochs, single.best_epoch)
        assert len(pd.read_csv(run.out_dir / rundir.HISTORY_FILE)) == single.epochs
        assert max_weight_diff(single.out_dir, run.out_dir) < 1e-3  # rounding (1e-5 at lr 1e-4) grows with the step
    with pytest.raises(KeyboardInterrupt):
        train_run(bin1, out_dir=tmp_path / "killed", seed=SEED, epochs=epochs, patience=patience,
                  callbacks=[Interrupt(runs[0].epochs - 1)], **kwargs)  # fmt: skip
    resumed = train_run(bin1, out_dir=tmp_path / "killed", seed=SEED, epochs=epochs, patience=patience, **kwargs)
    assert resumed.epochs == runs[0].epochs and max_weight_diff(resumed.out_dir, runs[0].out_dir) == 0
    with pytest.raises(ValueError, match="patience"):
        train_run(bin1, out_dir=tmp_path / "bad", seed=SEED, epochs=epochs, patience=0, **kwargs)


def test_plateau_learning_rate_is_keras_reduce_lr_on_plateau() -> None:
    """A known answer (patience 2, factor 0.5: halved after epochs 3 and 6), and the rate after every epoch of a noisy
    loss curve with plateaus equals that of keras.callbacks.ReduceLROnPlateau (min_delta 0, no cooldown) to float32
    rounding; patience None keeps the rate."""
    assert train.plateau_learning_rate([1.0, 2.0, 2.0, 0.5, 0.6, 0.7, 0.8], 1e-3, 2, 0.5) == pytest.approx(2.5e-4)
    assert train.plateau_learning_rate([1.0, 2.0, 3.0], 1e-3, None) == 1e-3
    rng = np.random.default_rng(3)
    val = np.minimum.accumulate(rng.uniform(0.5, 1.0, 60)) + rng.uniform(0, 0.05, 60)  # falls, then noise on plateaus
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    callback = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=3, min_delta=0.0, min_lr=0.0)
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, loss in enumerate(val):
        callback.on_epoch_end(epoch, {"val_loss": float(loss)})
        rates.append(float(model.optimizer.learning_rate.numpy()))
        assert train.plateau_learning_rate(val[: epoch + 1], 1e-3, 3, 0.3) == pytest.approx(rates[-1], rel=1e-6)
    assert rates[-1] < 1e-5  # the curve has plateaus: the comparison saw several lowerings


def test_learning_rate_decay_acts_from_the_first_plateau_and_resumes(bin1: xr.Dataset, tmp_path: Path) -> None:
    """With lr_decay_patience, a run's history equals the constant-rate run's up to the first plateau and departs
    from it in the next epoch (the lowered rate is the one trained at); a killed and resumed run ends with the same
    weights as an uninterrupted one; the vectorised ensemble lowers each run's rate from its own history, as alone."""
    epochs, kwargs = 10, {"test_seed": TEST_SEED, "batch_size": BATCH, "learning_rate": 3e-2}
    constant = train_run(bin1, out_dir=tmp_path / "constant", seed=SEED, epochs=epochs, **kwargs)
    decay = {"lr_decay_patience": 1, "lr_decay_factor": 0.1}
    lowered = train_run(bin1, out_dir=tmp_path / "lowered", seed=SEED, epochs=epochs, **decay, **kwargs)
    base = pd.read_csv(constant.out_dir / rundir.HISTORY_FILE)[["loss", "val_loss"]].to_numpy()
    hist = pd.read_csv(lowered.out_dir / rundir.HISTORY_FILE)[["loss", "val_loss"]].to_numpy()
    first = next(e for e in range(1, epochs) if train.plateau_learning_rate(base[:e, 1], 3e-2, 1, 0.1) < 3e-2)
    assert first < epochs - 1, "no plateau in the constant-rate run: the test needs one"
    assert np.array_equal(hist[:first], base[:first]) and not np.allclose(hist[first], base[first], rtol=1e-3)
    with pytest.raises(KeyboardInterrupt):
        train_run(bin1, out_dir=tmp_path / "killed", seed=SEED, epochs=epochs, callbacks=[Interrupt(first + 1)],
                  **decay, **kwargs)  # fmt: skip
    resumed = train_run(bin1, out_dir=tmp_path / "killed", seed=SEED, epochs=epochs, **decay, **kwargs)
    assert resumed.resumed_epochs == first + 1 and max_weight_diff(resumed.out_dir, lowered.out_dir) == 0
    other = train_run(bin1, out_dir=tmp_path / "other", seed=14, epochs=epochs, **decay, **kwargs)
    ensemble = train_ensemble(bin1, out_dirs=[tmp_path / "ens11", tmp_path / "ens14"], seeds=[SEED, 14],
                              epochs=epochs, **decay, **kwargs)  # fmt: skip
    for single, run in zip((lowered, other), ensemble, strict=True):
        assert run.best_epoch == single.best_epoch
        assert max_weight_diff(single.out_dir, run.out_dir) < 1e-3  # float rounding, grown by the large steps
    for bad in ({"lr_decay_patience": 0}, {"lr_decay_patience": 2, "lr_decay_factor": 1.0}):
        with pytest.raises(ValueError, match="lr_decay"):
            train_run(bin1, out_dir=tmp_path / "bad", seed=SEED, epochs=epochs, **bad, **kwargs)


def test_flat_log_mass_weights_flatten_a_falling_mass_function() -> None:
    """Training masses from a steep mass function (10x fewer per 0.5 dex): the weighted counts are flat to 15% in
    the inner bins, the weights average 1 over the training maps and span at most MAX_WEIGHT_RATIO; validation
    maps get the same function's weights; "none" gives no weights and a typo is refused."""
    rng = np.random.default_rng(5)
    log_m = 14.0 - np.log10(1 - rng.uniform(0, 0.999, 4000)) / 2  # p(log M) ~ 10^(-2 (log M - 14)), 14 to 15.5
    train_idx = np.arange(3000)
    w = train.mass_weights(log_m, train_idx, "flat_log_mass")
    assert w is not None and w.shape == log_m.shape and w[train_idx].mean() == pytest.approx(1.0, rel=1e-6)
    assert w.max() / w.min() <= train.MAX_WEIGHT_RATIO * (1 + 1e-6)
    counts, _ = np.histogram(log_m[train_idx], bins=6, range=(14.1, 14.7))
    flat, _ = np.histogram(log_m[train_idx], bins=6, range=(14.1, 14.7), weights=w[train_idx])
    assert counts[0] > 3 * counts[-1]  # the unweighted counts fall
    np.testing.assert_allclose(flat, flat.mean(), rtol=0.15)
    np.testing.assert_allclose(w[3000:], np.interp(log_m[3000:], np.sort(log_m[train_idx]), w[train_idx][np.argsort(log_m[train_idx])]),
                               rtol=0.05)  # fmt: skip
    assert train.mass_weights(log_m, train_idx, "none") is None
    with pytest.raises(ValueError, match="sample_weights"):
        train.mass_weights(log_m, train_idx, "flat")


def test_mass_weighted_runs_alone_and_in_the_ensemble_agree(bin1: xr.Dataset, tmp_path: Path) -> None:
    """With flat_log_mass weights (and the 8 symmetries), a run trains on other losses than the unweighted one,
    and the vectorised ensemble reproduces each weighted run: same best epoch, same history and weights to float
    rounding."""
    kwargs = {"test_seed": TEST_SEED, "batch_size": BATCH, "epochs": EPOCHS, "augment": True}
    plain = train_run(bin1, out_dir=tmp_path / "plain", seed=SEED, **kwargs)
    singles = [train_run(bin1, out_dir=tmp_path / f"w{s}", seed=s, sample_weights="flat_log_mass", **kwargs) for s in (SEED, 14)]
    hist = [pd.read_csv(r.out_dir / rundir.HISTORY_FILE)[["loss", "val_loss"]].to_numpy() for r in (plain, *singles)]
    assert not np.allclose(hist[0], hist[1], rtol=1e-3)
    ensemble = train_ensemble(bin1, out_dirs=[tmp_path / "e11", tmp_path / "e14"], seeds=[SEED, 14],
                              sample_weights="flat_log_mass", **kwargs)  # fmt: skip
    for single, run, h in zip(singles, ensemble, hist[1:], strict=True):
        assert run.best_epoch == single.best_epoch
        np.testing.assert_allclose(pd.read_csv(run.out_dir / rundir.HISTORY_FILE)[["loss", "val_loss"]], h, rtol=1e-4)
        assert max_weight_diff(single.out_dir, run.out_dir) < 1e-4


def test_dihedral_gives_the_eight_symmetries_of_the_square() -> None:
    """Code 0 is the identity, 1-3 quarter turns (numpy's rot90), 4 the transpose; the 8 images of an asymmetric
    map are distinct and each keeps the pixel values (moved, not interpolated); non-square maps are refused."""
    m = np.arange(12, dtype=np.float32).reshape(1, 3, 4)[:, :, :3] ** 1.5
    images = train.dihedral(np.repeat(m, 8, axis=0), np.arange(8))
    assert np.array_equal(images[0], m[0]) and np.array_equal(images[1], np.rot90(m[0]))
    assert np.array_equal(images[4], m[0].T) and np.array_equal(images[2], m[0, ::-1, ::-1])
    assert len({im.tobytes() for im in images}) == 8
    assert all(np.array_equal(np.sort(im, axis=None), np.sort(m[0], axis=None)) for im in images)
    with pytest.raises(ValueError, match="square"):
        train.dihedral(np.zeros((2, 3, 4), np.float32), np.zeros(2, np.int8))


def test_augmented_runs_differ_reproduce_and_match_the_vectorised_ensemble(bin1: xr.Dataset, reference: train.RunResult,
                                                                           tmp_path: Path) -> None:  # fmt: skip
    """With ``augment`` the maps of each epoch are turned (the weights leave the unaugmented run's), the same seed
    gives the same weights, and the vectorised ensemble turns each run's maps as its single run does."""
    kwargs = {"test_seed": TEST_SEED, "epochs": EPOCHS, "batch_size": BATCH, "augment": True}
    singles = [train_run(bin1, out_dir=tmp_path / f"aug{s}", seed=s, **kwargs) for s in (SEED, 14)]
    again = train_run(bin1, out_dir=tmp_path / "again", seed=SEED, **kwargs)
    assert max_weight_diff(singles[0].out_dir, again.out_dir) == 0
    assert max_weight_diff(singles[0].out_dir, reference.out_dir) > 1e-4
    ensemble = train_ensemble(bin1, out_dirs=[tmp_path / "ens11", tmp_path / "ens14"], seeds=[SEED, 14], **kwargs)
    for single, run in zip(singles, ensemble, strict=True):
        assert max_weight_diff(single.out_dir, run.out_dir) < 1e-5


def test_warm_up_is_keras_early_stopping_start_from_epoch() -> None:
    """The best epoch kept and the epochs trained, from patience_spent and monitored as train_run uses them, equal
    those of keras.callbacks.EarlyStopping(start_from_epoch, patience, restore_best_weights) on noisy loss curves whose
    least value often falls inside the warm-up."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    rng = np.random.default_rng(5)
    departures = 0
    for trial in range(40):
        start, patience, epochs = int(rng.integers(0, 8)), int(rng.integers(1, 5)), 30
        val = np.minimum.accumulate(rng.uniform(0.5, 1.0, epochs)) + rng.uniform(0, 0.2, epochs)
        callback = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, start_from_epoch=start,
                                                 restore_best_weights=True)  # fmt: skip
        callback.set_model(model)
        model.stop_training = False
        callback.on_train_begin()
        best, best_val, trained = 0, np.inf, 0
        for epoch in range(epochs):
            if patience_spent(epoch, best, patience, start):
                break
            trained = epoch + 1
            if val[epoch] < best_val and monitored(epoch + 1, start):
                best, best_val = epoch + 1, val[epoch]
            callback.on_epoch_end(epoch, {"val_loss": float(val[epoch])})
            assert model.stop_training == patience_spent(epoch + 1, best, patience, start), trial
        assert (best, trained) == (callback.best_epoch + 1, (callback.stopped_epoch or epochs - 1) + 1), trial
        departures += int(np.argmin(val[:trained]) + 1 != best)
    assert departures >= 5  # the warm-up changed the kept epoch in several curves: the comparison tested it


def test_warm_up_keeps_a_later_epoch_alone_in_the_ensemble_and_on_resume(bin1: xr.Dataset, tmp_path: Path) -> None:
    """With start_from_epoch S, the history is the run's without it (monitoring does not change training), the kept
    epoch is the least validation loss after S and the run stops patience epochs later; a killed and resumed run and
    the vectorised ensemble end alike; S must be below the epochs."""
    patience, epochs = 2, 14
    kwargs = {"test_seed": TEST_SEED, "batch_size": BATCH, "learning_rate": 3e-2, "patience": patience}
    plain = train_run(bin1, out_dir=tmp_path / "plain", seed=SEED, epochs=epochs, **kwargs)
    start = plain.best_epoch  # the plain run's kept epoch is inside the warm-up
    warm = train_run(bin1, out_dir=tmp_path / "warm", seed=SEED, epochs=epochs, start_from_epoch=start, **kwargs)
    base = pd.read_csv(plain.out_dir / rundir.HISTORY_FILE)
    hist = pd.read_csv(warm.out_dir / rundir.HISTORY_FILE)
    assert warm.best_epoch > start and warm.epochs == len(hist) == min(epochs, warm.best_epoch + patience)
    assert np.array_equal(hist.to_numpy()[: len(base)], base.to_numpy()[: len(hist)])
    val = hist["val_loss"].to_numpy()
    assert val[warm.best_epoch - 1] == val[start:].min()
    with pytest.raises(KeyboardInterrupt):
        train_run(bin1, out_dir=tmp_path / "killed", seed=SEED, epochs=epochs, start_from_epoch=start,
                  callbacks=[Interrupt(start)], **kwargs)  # fmt: skip
    resumed = train_run(bin1, out_dir=tmp_path / "killed", seed=SEED, epochs=epochs, start_from_epoch=start, **kwargs)
    assert resumed.resumed_epochs == start and max_weight_diff(resumed.out_dir, warm.out_dir) == 0
    other = train_run(bin1, out_dir=tmp_path / "other", seed=14, epochs=epochs, start_from_epoch=start, **kwargs)
    ensemble = train_ensemble(bin1, out_dirs=[tmp_path / "ens11", tmp_path / "ens14"], seeds=[SEED, 14], epochs=epochs,
                              start_from_epoch=start, **kwargs)  # fmt: skip
    for single, run in zip((warm, other), ensemble, strict=True):
        assert (run.epochs, run.best_epoch) == (single.epochs, single.best_epoch)
        assert max_weight_diff(single.out_dir, run.out_dir) < 1e-3  # rounding, grown by the large steps
    with pytest.raises(ValueError, match="start_from_epoch"):
        train_run(bin1, out_dir=tmp_path / "bad", seed=SEED, epochs=epochs, start_from_epoch=epochs, **kwargs)
