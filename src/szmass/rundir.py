"""The run-directory contract: the files a training run and a redshift bin's model selection write, their
columns, and their checked readers. Light (no TensorFlow), so that the CPU rules that read runs
(selection, ensembles, figures, catalogue) never load it.

A run directory (``results/models/{dataset}/z{bin}/seed{seed}/``, written by :func:`szmass.train.train_run`
or :func:`szmass.ensemble.train_ensemble`):

* ``model.keras`` (:data:`MODEL_FILE`): the network with its standardisation; RAW y-maps in, log10 M500 [Msun] out;
* ``history.csv`` (:data:`HISTORY_FILE`): columns :data:`HISTORY_COLUMNS` = epoch (1-based), loss, val_loss
  (MSE of log10 M500 [dex^2]);
* ``predictions.csv`` (:data:`PREDICTIONS_FILE`): columns :data:`PREDICTION_COLUMNS` = map (index in the map
  store), split ("train", "val" or "test"), redshift, log10_M_true, log10_M_cnn [log10 Msun], one row per map
  of the bin.

A bin directory (``results/models/{dataset}/z{bin}/``, written by :func:`szmass.select.select_model`):

* ``selection.csv`` (:data:`SELECTION_FILE`): one row per run: run_dir, mean_1..mean_n and std_1..std_n
  (relative error per M_CNN bin), max_abs_mean, sum_std, passed, selected, rule, estimate (the runs behind
  the bin's masses, ``training.estimator``); readers need :data:`SELECTION_COLUMNS`, and exactly one run is
  selected;
* ``best.keras`` (:data:`BEST_MODEL_FILE`): a copy of the selected run's ``model.keras``, or with the
  ``mean`` estimator one model averaging every run's (:func:`szmass.model.average_models`).

A data set's model directory (``results/models/{dataset}/``, read by :func:`szmass.predict.load_models`):
``z1/best.keras ... zN/best.keras`` and ``redshift_bins.json`` (:data:`BIN_EDGES_FILE`,
``{"edges": [z0, ..., zN], "target_mass": "M500"}``; :func:`write_bin_edges`, :func:`read_bin_edges`,
:func:`read_target_mass`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from szmass.atomic import atomic_path
from szmass.zbins import REDSHIFT_EDGES, check_edges

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
PREDICTIONS_FILE = "predictions.csv"
SELECTION_FILE = "selection.csv"
BEST_MODEL_FILE = "best.keras"
HISTORY_COLUMNS = ("epoch", "loss", "val_loss")
PREDICTION_COLUMNS = ("map", "split", "redshift", "log10_M_true", "log10_M_cnn")
SELECTION_COLUMNS = ("run_dir", "passed", "selected")
BIN_EDGES_FILE = "redshift_bins.json"
TARGET_MASSES = ("M500", "M200")
"""The masses a network can be trained to return [Msun] (``training.target_mass``)."""


def _read_checked(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    table = pd.read_csv(path)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: column(s) {missing} missing; expected {list(columns)}")
    return table


def read_predictions(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """A run's ``predictions.csv``, checking that it has :data:`PREDICTION_COLUMNS`."""
    return _read_checked(Path(run_dir) / PREDICTIONS_FILE, PREDICTION_COLUMNS)


def read_history(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """A run's ``history.csv``, checking that it has :data:`HISTORY_COLUMNS`."""
    return _read_checked(Path(run_dir) / HISTORY_FILE, HISTORY_COLUMNS)


def read_selection(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A bin's ``selection.csv`` (the file itself, ``path``), checking :data:`SELECTION_COLUMNS` and that
    exactly one run is selected."""
    table = _read_checked(Path(path), SELECTION_COLUMNS)
    n_selected = int(table["selected"].astype(bool).sum())
    if n_selected != 1:
        raise ValueError(f"{path}: column 'selected': expected exactly one selected run, got {n_selected}")
    return table


def selected_run(selection: pd.DataFrame) -> str:
    """The ``run_dir`` of the selected run of a selection table (:func:`read_selection`)."""
    return str(selection.loc[selection["selected"].astype(bool), "run_dir"].iloc[0])


def write_bin_edges(models_dir: str | os.PathLike[str], edges: Sequence[float], target_mass: str = "M500") -> None:
    """Write ``redshift_bins.json`` atomically: the bin edges of a model directory's ``z{bin}/best.keras`` and
    the mass its networks return (``target_mass``, one of :data:`TARGET_MASSES`)."""
    valid = check_edges(edges)
    check_target_mass(target_mass)
    with atomic_path(Path(models_dir) / BIN_EDGES_FILE) as tmp:
        tmp.write_text(json.dumps({"edges": list(valid), "target_mass": target_mass}) + "\n")


def check_target_mass(target_mass: str) -> str:
    """``target_mass`` if it is one of :data:`TARGET_MASSES`, else ValueError."""
    if target_mass not in TARGET_MASSES:
        raise ValueError(f"target mass must be one of {list(TARGET_MASSES)}, got {target_mass!r}")
    return target_mass


def read_target_mass(models_dir: str | os.PathLike[str]) -> str:
    """The mass a model directory's networks return (``redshift_bins.json`` field ``target_mass``): "M500"
    where the file or the field is absent (the published weights, runs of earlier versions)."""
    path = Path(models_dir) / BIN_EDGES_FILE
    if not path.is_file():
        return "M500"
    try:
        return check_target_mass(json.loads(path.read_text()).get("target_mass", "M500"))
    except (json.JSONDecodeError, AttributeError, ValueError) as exc:
        raise ValueError(f"{path}: field 'target_mass': {exc}") from exc


def read_bin_edges(models_dir: str | os.PathLike[str]) -> tuple[float, ...]:
    """The bin edges of a model directory's ``redshift_bins.json``; the paper's four bins
    (:data:`szmass.zbins.REDSHIFT_EDGES`) where there is none."""
    path = Path(models_dir) / BIN_EDGES_FILE
    if not path.is_file():
        return REDSHIFT_EDGES
    try:
        return check_edges(json.loads(path.read_text())["edges"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: field 'edges': expected increasing redshift bin edges [z0, z1, ...]: {exc}") from exc
