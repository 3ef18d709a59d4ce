"""Model selection among seeded runs and Supplementary Figure 4 (szmass.select)."""

from __future__ import annotations

from pathlib import Path

import keras
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from szmass.select import pass_counts, plot_pass_counts, relative_error_bins, select_model

N_BINS = 10
PER_BIN = 20


def errors(bias: np.ndarray, scatter: np.ndarray) -> np.ndarray:
    """Relative errors for maps sorted by M_CNN: in mass bin i, bias[i] +- scatter[i] alternately, so
    the bin's mean is bias[i] and its std (ddof = 1) scatter[i] * sqrt(n / (n - 1))."""
    sign = np.where(np.arange(PER_BIN) % 2 == 0, 1.0, -1.0)
    return np.concatenate([b + s * sign for b, s in zip(bias, scatter, strict=True)])


def write_run(run_dir: Path, bias: np.ndarray, scatter: np.ndarray) -> Path:
    """A run's predictions.csv whose validation maps have the given per-bin relative errors; its training
    maps are off by a factor 2 (the selection must ignore them); model.keras is a placeholder file."""
    run_dir.mkdir(parents=True)
    rel = errors(bias, scatter)
    log_cnn = np.linspace(14.0, 15.2, rel.size)  # increasing, so the bins are consecutive blocks
    log_true = log_cnn + np.log10(1.0 - rel)  # (M_cnn - M_true) / M_cnn = rel
    val = pd.DataFrame({"split": "val", "log10_M_true": log_true, "log10_M_cnn": log_cnn})
    trn = pd.DataFrame({"split": "train", "log10_M_true": log_cnn[:30], "log10_M_cnn": log_cnn[:30] + np.log10(2.0)})
    table = pd.concat([trn, val.sample(frac=1.0, random_state=1)], ignore_index=True)  # order must not matter
    table.insert(0, "map", np.arange(len(table)))
    table.insert(2, "redshift", 0.15)
    table.to_csv(run_dir / "predictions.csv", index=False)
    (run_dir / "model.keras").write_bytes(run_dir.name.encode())
    return run_dir


def test_relative_error_bins_analytic() -> None:
    bias = np.linspace(-0.04, 0.03, N_BINS)
    scatter = np.linspace(0.01, 0.1, N_BINS)
    rel = errors(bias, scatter)
    log_cnn = np.linspace(14.0, 15.0, rel.size)
    perm = np.random.default_rng(0).permutation(rel.size)
    means, stds = relative_error_bins((log_cnn + np.log10(1 - rel))[perm], log_cnn[perm], n_bins=N_BINS)
    assert np.allclose(means, bias, rtol=0, atol=1e-12)
    assert np.allclose(stds, scatter * np.sqrt(PER_BIN / (PER_BIN - 1)), rtol=1e-10, atol=0)


def test_equal_count_bins_and_too_few_maps() -> None:
    # 23 maps in 4 bins: sizes 6, 6, 6, 5 -- a map's bin follows from its rank in M_CNN only
    log_cnn = np.arange(23) * 0.01 + 14.0
    rel = np.repeat([0.1, 0.2, 0.3, 0.4], [6, 6, 6, 5])
    means, _ = relative_error_bins(log_cnn + np.log10(1 - rel), log_cnn, n_bins=4)
    assert np.allclose(means, [0.1, 0.2, 0.3, 0.4], atol=1e-12)
    with pytest.raises(ValueError, match="cannot fill"):
        relative_error_bins(log_cnn[:19], log_cnn[:19], n_bins=10)


def test_least_scatter_among_passing_runs_wins(tmp_path: Path) -> None:
    flat = np.zeros(N_BINS)
    biased = flat.copy()
    biased[7] = 0.06  # fails in one bin although it has the least scatter
    runs = [
        write_run(tmp_path / "seed1", flat + 0.01, np.full(N_BINS, 0.08)),
        write_run(tmp_path / "seed2", flat - 0.049, np.full(N_BINS, 0.05)),  # passes, least scatter of the passing
        write_run(tmp_path / "seed3", biased, np.full(N_BINS, 0.01)),
        write_run(tmp_path / "seed4", flat, np.full(N_BINS, 0.06)),
    ]
    table, winner = select_model(runs, out_dir=tmp_path / "z1")
    assert winner == runs[1]
    assert list(table["passed"]) == [True, True, False, True]
    assert list(table["selected"]) == [False, True, False, False]
    assert table["sum_std"].to_numpy() == pytest.approx(np.array([0.8, 0.5, 0.1, 0.6]) * np.sqrt(PER_BIN / (PER_BIN - 1)))
    assert table["max_abs_mean"].to_numpy() == pytest.approx([0.01, 0.049, 0.06, 0.0], abs=1e-12)
    written = pd.read_csv(tmp_path / "z1" / "selection.csv")
    assert list(written.columns[:3]) == ["run_dir", "mean_1", "mean_2"] and len(written) == 4
    assert (tmp_path / "z1" / "best.keras").read_bytes() == b"seed2"
    # a stricter threshold leaves only the unbiased runs
    assert select_model(runs, threshold=0.02)[1] == runs[3]


def test_fallback_when_no_run_passes(tmp_path: Path) -> None:
    runs = [write_run(tmp_path / f"seed{i}", np.full(N_BINS, b), np.full(N_BINS, 0.01)) for i, b in enumerate([0.2, -0.08, 0.1])]
    with pytest.warns(UserWarning, match="no run of 3"):
        table, winner = select_model(runs)
    assert winner == runs[1]
    assert not table["passed"].any()
    assert table["rule"].str.startswith("no run passed").all()


def test_missing_column_is_named(tmp_path: Path) -> None:
    run = tmp_path / "seed1"
    run.mkdir()
    pd.DataFrame({"split": ["val"], "log10_M_true": [14.0]}).to_csv(run / "predictions.csv", index=False)
    with pytest.raises(ValueError, match=r"predictions.csv: column\(s\) \['map', 'redshift', 'log10_M_cnn'\] missing"):
        select_model([run])


def test_pass_counts_and_figure(tmp_path: Path) -> None:
    table = pd.DataFrame({"max_abs_mean": [0.01, 0.03, 0.03, 0.07, 0.2]})
    assert list(pass_counts(table, [0.0, 0.01, 0.02, 0.05, 0.1, 1.0])) == [0, 0, 1, 3, 4, 5]
    path = tmp_path / "figures" / "supp_fig4.png"
    plot_pass_counts({"0 < z <= 0.1": table, "0.1 < z <= 0.2": table * 2}, path)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05  # not blank


def test_mean_estimator_averages_every_run(tmp_path: Path) -> None:
    """training.estimator: mean: the rule's table is unchanged (the same run selected), every run is marked as
    the estimate, and best.keras predicts the mean of every run's model.keras, the failing run's included."""
    from szmass.model import build_cnn, with_standardisation

    flat = np.zeros(N_BINS)
    runs = [write_run(tmp_path / f"seed{k}", flat + b, np.full(N_BINS, s))
            for k, (b, s) in enumerate([(0.0, 0.04), (0.1, 0.02), (0.02, 0.06)])]
    models = [with_standardisation(build_cnn(seed=k), 1e-6, 5e-6, output_offset=0.2 * k) for k in range(3)]
    for run, model in zip(runs, models):
        model.save(run / "model.keras")
    table, winner = select_model(runs, out_dir=tmp_path / "z1", estimator="mean")
    assert winner == runs[0] and list(table["passed"]) == [True, False, True]
    assert table["estimate"].all()
    x = (1e-6 + 5e-6 * np.random.default_rng(0).standard_normal((4, 96, 96, 1))).astype(np.float32)
    best = keras.saving.load_model(tmp_path / "z1" / "best.keras", compile=False)
    expected = np.mean([m.predict_on_batch(x) for m in models], axis=0)
    np.testing.assert_allclose(best.predict_on_batch(x), expected, rtol=0, atol=2e-6)
    assert np.ptp(expected) > 0 and abs(float(expected.mean()) - float(models[0].predict_on_batch(x).mean())) > 0.1
    selected, _ = select_model(runs, estimator="selected")
    assert list(selected["estimate"]) == [True, False, False]
    with pytest.raises(ValueError, match="estimator must be one of"):
        select_model(runs, estimator="median")
