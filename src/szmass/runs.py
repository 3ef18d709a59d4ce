"""The trained runs of a data set as prediction tables: the estimate of each redshift bin (its selected run,
or the mean of its runs, ``training.estimator``), and the ensemble of runs that pass the selection
(docs/architecture.md, stage 8).

A bin's runs share one test set (drawn with the bin's test seed, :mod:`szmass.splits`), so their test
predictions line up map by map. The *ensemble estimate* of a test map is the mean of log10 M_CNN over
the runs that pass the selection rule (:mod:`szmass.select`); the standard deviation across those runs
(ddof = 1) is the epistemic part of its uncertainty. When no run of a bin passes, the ensemble takes every
run of the bin (the ``members`` column says which), so that the comparison with the selected model (a
fallback choice then too) still exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from szmass.rundir import PREDICTIONS_FILE, read_predictions, read_selection, selected_run

TEST_COLUMNS = ["map", "redshift", "log10_M_true", "log10_M_cnn"]
ALL_PASSING = "passing runs"
ALL_RUNS = "all runs (none passed)"


def _test_maps(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    table = read_predictions(run_dir)
    return table.loc[table["split"] == "test", TEST_COLUMNS].sort_values("map").reset_index(drop=True)


def estimate_runs(selection: pd.DataFrame) -> list[str]:
    """The run_dirs behind a bin's masses, from its selection table (:func:`szmass.rundir.read_selection`):
    the rows marked ``estimate`` (:func:`szmass.select.select_model`); the selected run in a table written
    without that column."""
    if "estimate" not in selection:
        return [selected_run(selection)]
    return [str(run) for run in selection.loc[selection["estimate"].astype(bool), "run_dir"]]


def _mean_of_runs(runs: list[str]) -> pd.DataFrame:
    """Test maps of ``runs`` (which must share them) with the mean (log10_M_cnn) and the spread (ddof = 1;
    0 for one run; log10_M_cnn_std) [dex] of their log10 M_CNN, and n_runs."""
    tests = [_test_maps(run) for run in runs]
    first = tests[0]
    for run, other in zip(runs, tests):
        if not np.array_equal(other["map"].to_numpy(), first["map"].to_numpy()):
            raise ValueError(f"{Path(run) / PREDICTIONS_FILE}: its test maps differ from those of "
                             f"{runs[0]}; the runs of one bin must share the test set")
    stack = np.stack([t["log10_M_cnn"].to_numpy(float) for t in tests])
    part = first[["map", "redshift", "log10_M_true"]].copy()
    part["log10_M_cnn"] = stack.mean(axis=0)
    part["log10_M_cnn_std"] = stack.std(axis=0, ddof=1) if len(tests) > 1 else 0.0
    part["n_runs"] = len(tests)
    return part


def estimate_predictions(selections: Mapping[int, str | os.PathLike[str]]) -> pd.DataFrame:
    """Test-set predictions of each bin's estimate (bin number -> its ``selection.csv``;
    :func:`estimate_runs`), with columns map, redshift, log10_M_true, log10_M_cnn [log10 Msun] (the selected
    run's, or the mean over the estimate's runs), zbin, run_dir (the selected run, or the bin's directory
    for a mean)."""
    parts = []
    for zbin, path in sorted(selections.items()):
        runs = estimate_runs(read_selection(path))
        part = _mean_of_runs(runs)[TEST_COLUMNS]
        parts.append(part.assign(zbin=int(zbin), run_dir=runs[0] if len(runs) == 1 else str(Path(path).parent)))
    return pd.concat(parts, ignore_index=True)


def ensemble_members(selection: pd.DataFrame) -> tuple[list[str], str]:
    """The run_dirs of a bin's ensemble (module docs) from its selection table
    (:func:`szmass.rundir.read_selection`): the runs that pass the selection, or every run when none passes,
    and which of the two it is (:data:`ALL_PASSING` or :data:`ALL_RUNS`)."""
    passing = selection["passed"].astype(bool)
    if passing.any():
        return [str(run) for run in selection.loc[passing, "run_dir"]], ALL_PASSING
    return [str(run) for run in selection["run_dir"]], ALL_RUNS


def spread_members(selection: pd.DataFrame) -> list[str]:
    """The run_dirs whose spread is the epistemic part of a bin's mass uncertainty, from its selection table:
    the estimate's runs when it averages several (``training.estimator: mean``, :func:`estimate_runs`), else
    the ensemble's (:func:`ensemble_members`)."""
    runs = estimate_runs(selection)
    return runs if len(runs) > 1 else ensemble_members(selection)[0]


def ensemble_predictions(selections: Mapping[int, str | os.PathLike[str]]) -> pd.DataFrame:
    """Ensemble estimate of each test map of each bin (module docs): columns map, redshift, log10_M_true,
    log10_M_cnn (mean over the members), log10_M_cnn_std (spread across members, ddof = 1; 0 for a single
    member) [dex], n_runs, members, zbin."""
    parts = []
    for zbin, path in sorted(selections.items()):
        runs, members = ensemble_members(read_selection(path))
        parts.append(_mean_of_runs(runs).assign(members=members, zbin=int(zbin)))
    return pd.concat(parts, ignore_index=True)


def compare_estimates(estimates: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Bias and scatter of several estimates of the same test maps (e.g. "selected", "ensemble"), per bin
    and for all bins: columns estimate, zbin, n, median, p16, p84 of b_t = (M_CNN - M_true) / M_CNN,
    mean and std of log10 M_CNN / M_true [dex], and the mean epistemic spread [dex] where the table has
    ``log10_M_cnn_std``."""
    from szmass.evaluate import bias_summary, log_residual_moments, relative_bias

    rows = []
    for name, table in estimates.items():
        groups = [(f"z{z}", part) for z, part in table.groupby("zbin", sort=True)] + [("all", table)]
        for label, part in groups:
            b = bias_summary(relative_bias(part["log10_M_cnn"], part["log10_M_true"]))
            moments = log_residual_moments(part["log10_M_cnn"], part["log10_M_true"])
            spread = float(part["log10_M_cnn_std"].mean()) if "log10_M_cnn_std" in part else 0.0
            rows.append({"estimate": name, "zbin": label, "n": b["n"], "median": b["median"], "p16": b["p16"],
                         "p84": b["p84"], "log_mean": moments["mean"], "log_std": moments["std"],
                         "epistemic_std": spread})
    return pd.DataFrame(rows)
