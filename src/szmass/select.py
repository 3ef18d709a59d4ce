"""Selection of one model among the seeded runs of a redshift bin, and Supplementary Figure 4.

The rule (de Andres et al. 2022; docs/architecture.md, stage 7), on each run's VALIDATION maps: the relative
error (M_CNN - M_true) / M_CNN in ``n_bins`` equal-count bins of M_CNN (maps sorted by M_CNN and cut
into consecutive groups whose sizes differ by at most one); a run passes if the mean error of every
bin satisfies |mean| < ``threshold``; among the passing runs, the one with the least sum over bins of
the per-bin standard deviation (ddof = 1) is selected. Ties go to the first run in the given order.

Fallback when no run passes: the run with the least max |mean| (the one closest to passing), with a
warning; the ``rule`` column of the selection table records which way the choice was made.

The bin's *estimator* (``training.estimator``) says which runs the bin's masses come from: ``selected`` (the
paper's) takes the selected run; ``mean`` takes the mean of log10 M over every run of the bin, whatever the
rule says (the rule's table is still written, for Supplementary Figure 4). The ``estimate`` column of the
table marks the runs behind the bin's masses, and ``best.keras`` is their model (for ``mean``, one model
averaging them, :func:`szmass.model.average_models`).
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from szmass.atomic import atomic_path
from szmass.plots import save_figure
from szmass.rundir import BEST_MODEL_FILE, MODEL_FILE, PREDICTIONS_FILE, SELECTION_FILE, read_predictions
from szmass.tables import write_table

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.05
DEFAULT_N_BINS = 10
RULE_PASS = "least sum of std among passing runs"
RULE_FALLBACK = "no run passed: least max |mean|"
ESTIMATORS = ("selected", "mean")
"""The bin's estimators (module docs): the selected run, or the mean over every run."""


def relative_error_bins(
    log10_m_true: ArrayLike, log10_m_cnn: ArrayLike, *, n_bins: int = DEFAULT_N_BINS
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and std (ddof = 1) of (M_CNN - M_true) / M_CNN in ``n_bins`` equal-count bins of M_CNN,
    lowest M_CNN first. Inputs are log10 masses [Msun]; at least 2 maps per bin are needed."""
    true = np.asarray(log10_m_true, dtype=float)
    cnn = np.asarray(log10_m_cnn, dtype=float)
    if true.shape != cnn.shape or true.ndim != 1:
        raise ValueError(f"need two 1-D arrays of equal length, got shapes {true.shape} and {cnn.shape}")
    if n_bins < 1 or cnn.size < 2 * n_bins:
        raise ValueError(f"{cnn.size} maps cannot fill {n_bins} mass bins with >= 2 maps each")
    if not (np.all(np.isfinite(true)) and np.all(np.isfinite(cnn))):
        raise ValueError("log10 masses must be finite")
    rel = -np.expm1((true - cnn) * np.log(10.0))  # 1 - M_true / M_CNN, accurate for small errors
    groups = np.array_split(rel[np.argsort(cnn, kind="stable")], n_bins)
    return np.array([g.mean() for g in groups]), np.array([g.std(ddof=1) for g in groups])


def select_model(
    run_dirs: Sequence[str | os.PathLike[str]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    n_bins: int = DEFAULT_N_BINS,
    out_dir: str | os.PathLike[str] | None = None,
    estimator: str = "selected",
) -> tuple[pd.DataFrame, Path]:
    """Apply the selection rule (module docs) to the runs ``run_dirs``; return (table, chosen run dir).

    The table has one row per run: run_dir, mean_1..mean_n and std_1..std_n (per M_CNN bin, lowest
    first), max_abs_mean, sum_std, passed, selected, rule, estimate (the runs of the ``estimator``). With
    ``out_dir``, it is written to ``out_dir/selection.csv`` and the estimate's model to ``out_dir/best.keras``
    (both atomically): a copy of the estimate's ``model.keras`` if it is one run, else its runs' models averaged.
    """
    if not run_dirs:
        raise ValueError("select_model: no run directories given")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    rows = []
    for run in run_dirs:
        table = read_predictions(run)
        val = table[table["split"] == "val"]
        try:
            means, stds = relative_error_bins(val["log10_M_true"], val["log10_M_cnn"], n_bins=n_bins)
        except ValueError as err:
            raise ValueError(f"{Path(run) / PREDICTIONS_FILE}: validation maps: {err}") from err
        rows.append(
            {"run_dir": str(run)}
            | {f"mean_{i}": m for i, m in enumerate(means, start=1)}
            | {f"std_{i}": s for i, s in enumerate(stds, start=1)}
            | {"max_abs_mean": float(np.max(np.abs(means))), "sum_std": float(stds.sum())}
        )
    selection = pd.DataFrame(rows)
    selection["passed"] = selection["max_abs_mean"] < threshold
    if selection["passed"].any():
        chosen = int(selection["sum_std"].where(selection["passed"]).idxmin())
        rule = RULE_PASS
    else:
        chosen = int(selection["max_abs_mean"].idxmin())
        rule = RULE_FALLBACK
        msg = (f"no run of {len(selection)} has |mean relative error| < {threshold} in all {n_bins} bins; "
               f"chose {selection.at[chosen, 'run_dir']} "
               f"(least max |mean| = {selection.at[chosen, 'max_abs_mean']:.4f})")  # fmt: skip
        warnings.warn(msg, stacklevel=2)
        log.warning(msg)
    selection["selected"] = selection.index == chosen
    selection["rule"] = rule
    selection["estimate"] = selection["selected"] if estimator == "selected" else True
    winner = Path(selection.at[chosen, "run_dir"])
    if out_dir is not None:
        out = Path(out_dir)
        write_table(selection, out / SELECTION_FILE)
        models = [Path(run) / MODEL_FILE for run in selection.loc[selection["estimate"], "run_dir"]]
        with atomic_path(out / BEST_MODEL_FILE) as tmp:
            if len(models) == 1:
                shutil.copyfile(models[0], tmp)
            else:
                _save_mean_model(models, tmp)
    return selection, winner


def _save_mean_model(paths: Sequence[Path], out: Path) -> None:
    """Save the model averaging the full models ``paths`` (:func:`szmass.model.average_models`) to ``out``."""
    from szmass.model import average_models  # Keras only where a model is built
    from szmass.predict import load_run_model

    average_models([load_run_model(path) for path in paths]).save(out)


def pass_counts(selection: pd.DataFrame, thresholds: ArrayLike) -> NDArray[np.int64]:
    """Number of runs of a selection table that pass at each threshold (max |mean| < threshold)."""
    if "max_abs_mean" not in selection.columns:
        raise ValueError("selection table: column 'max_abs_mean' missing (see select_model)")
    worst = selection["max_abs_mean"].to_numpy(float)
    return (worst[None, :] < np.asarray(thresholds, dtype=float)[:, None]).sum(axis=1)


def plot_pass_counts(
    selections: Mapping[str, pd.DataFrame],
    path: str | os.PathLike[str],
    *,
    thresholds: ArrayLike | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> None:
    """Supplementary Figure 4: runs passing the selection versus the threshold, one line per redshift
    bin (``selections``: label, e.g. "0.1 < z <= 0.2", -> selection table); the threshold in use is
    marked. Written as a PNG, atomically. Default thresholds: 0 to max(0.2, 1.05 x the largest max |mean|),
    161 steps."""
    if not selections:
        raise ValueError("plot_pass_counts: no selection tables given")
    if thresholds is None:
        worst = max(float(table["max_abs_mean"].max()) for table in selections.values())
        t = np.linspace(0.0, max(0.2, 1.05 * worst), 161)
    else:
        t = np.asarray(thresholds, dtype=float)
    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for label, table in selections.items():
        ax.step(t, pass_counts(table, t), where="post", label=f"{label} ({len(table)} runs)")
    ax.axvline(threshold, color="0.5", linestyle=":", label=f"threshold {threshold:g}")
    ax.set_xlabel("threshold on |mean relative error| in every bin")
    ax.set_ylabel("passing runs")
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    save_figure(fig, path, dpi=150)
