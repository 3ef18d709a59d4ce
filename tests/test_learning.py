"""Tests that fail when learning fails: a trained network predicts held-out masses better than the mean
predictor and an untrained network of the same architecture and standardisation does not; on the
config/ci.yaml run (tests/conftest.py), the synthetic sky injects no cluster its models trained or validated on."""

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from szmass.mapstore import open_maps
from szmass.model import OUTPUT_LAYER, with_standardisation
from szmass.predict import input_moments
from szmass.splits import cluster_identity, select_redshift_bin
from szmass.rundir import PREDICTIONS_FILE
from szmass.train import train_run
from test_train import tiny_store

SKILL_MARGIN = 0.5
"""A network has learnt when the std of log10(M_CNN / M_true) over held-out maps is below SKILL_MARGIN times the
std of log10 M_true of those maps (1 is the residual std of predicting the mean), i.e. when it explains at least
75% of the variance of log10 M_true on clusters it never saw. Not 0.8: an untrained network is not constant,
its random ReLU features of the map's amplitude correlate with the mass by chance: 0.79 in the test below for
the network at its initial weights (what a learning rate of 0 leaves), while the trained one reaches 0.12."""


def skill(log_m_cnn: np.ndarray, log_m_true: np.ndarray) -> float:
    """std of log10(M_CNN / M_true) over std of log10 M_true (1: no better than one mass for all)."""
    return float(np.std(log_m_cnn - log_m_true) / np.std(log_m_true))


def untrained_copy(model: keras.Model, train_mean: float) -> keras.Model:
    """``model`` (raw y-map -> log10 M) with its network's weights back at their seeded initial values and the
    output bias at ``train_mean`` (as training starts), the input standardisation kept."""
    cnn = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    fresh = keras.models.clone_model(cnn)
    fresh.get_layer(OUTPUT_LAYER).bias.assign([train_mean])
    return with_standardisation(fresh, *input_moments(model))


def test_trained_network_beats_the_mean_predictor_and_an_untrained_one_does_not(tmp_path: Path):
    """60 toy clusters (Gaussian blobs whose amplitude scales as M^(5/3), plus noise; 2-4 maps each): after 30
    epochs the held-out residual std is far below SKILL_MARGIN times the std of log10 M_true; the same network
    before training is not."""
    maps = select_redshift_bin(tiny_store(n_halos=60, seed=3), 1)
    run = train_run(maps, out_dir=tmp_path / "run", seed=5, test_seed=6, epochs=30, batch_size=16,
                    learning_rate=3e-3)  # fmt: skip
    pred = pd.read_csv(run.out_dir / PREDICTIONS_FILE)
    test = pred[pred["split"] == "test"]
    true = test["log10_M_true"].to_numpy()
    assert len(np.unique(true)) >= 5 and np.std(true) > 0.1  # held-out clusters spread enough to compare
    trained = skill(test["log10_M_cnn"].to_numpy(), true)
    model = keras.saving.load_model(run.out_dir / "model.keras", compile=False)
    start = untrained_copy(model, float(pred.loc[pred["split"] == "train", "log10_M_true"].mean()))
    y = maps["y"].sel(map=test["map"].to_numpy()).values[..., None]
    untrained = skill(start.predict(y, verbose=0)[:, 0], true)
    assert trained < SKILL_MARGIN <= untrained, (trained, untrained)


@pytest.mark.workflow
def test_sky_injects_no_training_or_validation_cluster(ci_run):
    """Every halo injected into the synthetic sky is, in the redshift bin of its PSZ2 cluster, a test cluster of
    every run (every seed) of the sky's models: disjoint from all their training and validation clusters."""
    truth = pd.read_csv(ci_run / "results" / "sky" / "truth.csv")
    clean = open_maps(ci_run / "results" / "maps" / "clean.zarr")
    injected = cluster_identity(clean)[truth["map_index"].to_numpy()]
    maps = open_maps(ci_run / "results" / "maps" / "planck.zarr")
    ids = cluster_identity(maps)
    edges = np.array([0.0, 0.1, 0.2, 0.4, 1.0])  # config/ci.yaml
    sky_bin = np.searchsorted(edges, truth["REDSHIFT"].to_numpy(), side="left")
    assert len(truth) > 100
    for run_dir in sorted((ci_run / "results" / "models" / "planck").glob("z*/seed*")):
        b = int(run_dir.parent.name[1:])
        split = pd.read_csv(run_dir / "predictions.csv")
        seen = set(ids[split.loc[split["split"] != "test", "map"].to_numpy()])
        assert seen and not seen & set(injected[sky_bin == b]), run_dir
