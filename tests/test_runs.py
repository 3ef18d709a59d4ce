"""Selected and ensemble predictions of a bin's runs (szmass.runs)."""

import numpy as np
import pandas as pd
import pytest

from szmass.rundir import read_selection
from szmass.runs import (
    ALL_PASSING,
    ALL_RUNS,
    compare_estimates,
    ensemble_predictions,
    estimate_predictions,
    spread_members,
)


def make_runs(tmp_path, cnn_by_run, passed, selected, *, zbin=1, test_maps=(3, 7, 9), true=(14.0, 14.5, 15.0),
              estimate=None):
    """Run directories whose predictions.csv hold two training maps and the given test maps; the selection
    table has an ``estimate`` column when it is given (without: a table written before it existed)."""
    dirs = []
    for k, cnn in enumerate(cnn_by_run):
        run = tmp_path / f"z{zbin}" / f"seed{k}"
        run.mkdir(parents=True)
        pd.DataFrame({
            "map": [0, 1, *test_maps],
            "split": ["train", "val", *["test"] * len(test_maps)],
            "redshift": 0.1 * zbin,
            "log10_M_true": [13.9, 14.1, *true],
            "log10_M_cnn": [13.0, 13.0, *cnn],
        }).to_csv(run / "predictions.csv", index=False)
        dirs.append(str(run))
    path = tmp_path / f"z{zbin}" / "selection.csv"
    table = pd.DataFrame({"run_dir": dirs, "passed": passed, "selected": selected})
    if estimate is not None:
        table["estimate"] = estimate
    table.to_csv(path, index=False)
    return path


def test_selected_run_and_ensemble_of_passing_runs(tmp_path):
    cnn = [(14.1, 14.4, 15.0), (14.3, 14.6, 15.2), (13.0, 13.0, 13.0)]
    path = make_runs(tmp_path, cnn, passed=[True, True, False], selected=[False, True, False])
    sel = estimate_predictions({1: path})
    assert sel["map"].tolist() == [3, 7, 9] and (sel["zbin"] == 1).all()
    np.testing.assert_allclose(sel["log10_M_cnn"], cnn[1])
    ens = ensemble_predictions({1: path})
    np.testing.assert_allclose(ens["log10_M_cnn"], [14.2, 14.5, 15.1])  # mean of the two passing runs
    np.testing.assert_allclose(ens["log10_M_cnn_std"], np.full(3, np.sqrt(0.02)))  # ddof = 1 of a 0.2 gap
    assert (ens["n_runs"] == 2).all() and (ens["members"] == ALL_PASSING).all()


def test_mean_estimate_of_every_run(tmp_path):
    """training.estimator: mean: the bin's masses are the mean over the runs marked ``estimate`` (all of them,
    a failing one included), whatever the rule selected; the ensemble stays that of the passing runs."""
    cnn = [(14.1, 14.4, 15.0), (14.3, 14.6, 15.2), (13.8, 14.2, 14.5)]
    path = make_runs(tmp_path, cnn, passed=[True, True, False], selected=[False, True, False], estimate=[True] * 3)
    est = estimate_predictions({1: path})
    np.testing.assert_allclose(est["log10_M_cnn"], np.mean(cnn, axis=0))
    assert (est["run_dir"] == str(tmp_path / "z1")).all()
    np.testing.assert_allclose(ensemble_predictions({1: path})["log10_M_cnn"], [14.2, 14.5, 15.1])
    # marked as the selected estimator writes it: the selected run alone
    path = make_runs(tmp_path / "sel", cnn, passed=[True, True, False], selected=[False, True, False],
                     estimate=[False, True, False])
    np.testing.assert_allclose(estimate_predictions({1: path})["log10_M_cnn"], cnn[1])


def test_spread_is_over_the_runs_of_a_mean_else_the_passing_runs(tmp_path):
    """The epistemic spread of the catalogue: over every run the mean estimate averages, a failing one included;
    for the selected run, over the passing runs; in a table without the estimate column, as the selected one."""
    cnn = [(14.1, 14.4, 15.0), (14.3, 14.6, 15.2), (13.8, 14.2, 14.5)]
    mean = make_runs(tmp_path / "mean", cnn, passed=[True, True, False], selected=[False, True, False], estimate=[True] * 3)
    assert [p[-5:] for p in spread_members(read_selection(mean))] == ["seed0", "seed1", "seed2"]
    for estimate, name in (([False, True, False], "sel"), (None, "old")):
        path = make_runs(tmp_path / name, cnn, passed=[True, True, False], selected=[False, True, False],
                         estimate=estimate)
        assert [p[-5:] for p in spread_members(read_selection(path))] == ["seed0", "seed1"]


def test_ensemble_falls_back_to_all_runs(tmp_path):
    path = make_runs(tmp_path, [(14.0, 14.0, 14.0), (14.3, 14.3, 14.3)], passed=[False, False], selected=[True, False])
    ens = ensemble_predictions({1: path})
    np.testing.assert_allclose(ens["log10_M_cnn"], 14.15)
    assert (ens["members"] == ALL_RUNS).all() and (ens["n_runs"] == 2).all()


def test_runs_with_different_test_maps_are_refused(tmp_path):
    path = make_runs(tmp_path, [(14.0, 14.0, 14.0), (14.3, 14.3, 14.3)], passed=[True, True], selected=[True, False])
    pred = tmp_path / "z1" / "seed1" / "predictions.csv"
    table = pd.read_csv(pred)
    table.loc[4, "map"] = 11
    table.to_csv(pred, index=False)
    with pytest.raises(ValueError, match="share the test set"):
        ensemble_predictions({1: path})


def test_selection_without_a_selected_run_is_refused(tmp_path):
    path = make_runs(tmp_path, [(14.0, 14.0, 14.0)], passed=[True], selected=[False])
    with pytest.raises(ValueError, match="exactly one selected run"):
        estimate_predictions({1: path})


def test_compare_estimates_by_hand():
    table = pd.DataFrame({"zbin": [1, 1, 2, 2], "log10_M_true": [14.0] * 4,
                          "log10_M_cnn": [14.0, np.log10(2e14), 14.0, 14.0], "log10_M_cnn_std": [0.1, 0.1, 0.0, 0.0]})
    out = compare_estimates({"ensemble": table}).set_index("zbin")
    # bin 1: b_t = 0 and 1 - 1e14 / 2e14 = 0.5; log residuals 0 and log10 2
    assert out.loc["z1", "n"] == 2 and out.loc["z1", "median"] == pytest.approx(0.25)
    assert out.loc["z1", "log_mean"] == pytest.approx(np.log10(2) / 2)
    assert out.loc["z1", "epistemic_std"] == pytest.approx(0.1)
    assert out.loc["all", "n"] == 4 and out.loc["all", "epistemic_std"] == pytest.approx(0.05)
