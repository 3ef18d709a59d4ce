"""The supplement's studies (docs/architecture.md): redshift binnings, the hyperparameter and learning-rate
scans, the cross-model test.

Each study trains networks with :func:`szmass.train.train_run` (the workflow's ``train`` script) and
summarises them here; ``workflow/rules/studies.smk`` wires them up; their settings are checked in
:mod:`szmass.study_config`.

* **Redshift binnings** (Supplementary Table 1): the same maps trained in 1, 2, 4 and 8 redshift bins
  (the config's ``studies.zbins.schemes``, by default the supplement's). Every scheme is tested on the
  SAME clusters: the test identities are drawn once over all redshifts (:func:`szmass.splits.test_identities`) and every run of every bin
  keeps their maps out of training and validation. For each scheme, the test maps of all its bins, each
  predicted by its bin's SELECTED run (:mod:`szmass.select`), give the moments of r = log10 M_CNN / M_true
  (:func:`zbin_moments`): one row per bin and one, ``all``, for the bins combined.
* **Hyperparameter scan**: networks of :func:`szmass.study_config.architecture_grid` (:class:`szmass.model.Architecture`),
  each trained with the same seeds (so the same splits and orders), summarised by their least validation
  loss [dex^2] (:func:`hyperparameter_table`).
* **Learning-rate scan**: the paper's network trained with each learning rate of ``rates`` (1e-2 ... 1e-5)
  and the same seeds (so the same splits and orders), summarised by the least validation loss
  (:func:`learning_rate_table`).
* **Training-set size**: the paper's network trained on a seeded fraction of the training clusters
  (:func:`training_subset`; the test set is the same for every fraction), summarised by the scatter of
  log10 M_CNN / M_true on the test maps against the number of training clusters (:func:`train_size_table`).
* **Cross-model test** (Supplementary Table 3): networks trained on the maps of one gas model (the map
  store's ``model`` coordinate), tested on the test clusters of every model: mean b_t = (M_CNN - M_true) /
  M_CNN and its standard error per (train model, test model) pair (:func:`cross_model_table`). The test
  clusters of a model are drawn with one test seed shared by all models (and all redshifts), and the
  training runs of that model never see them; the same regions land in the test set of every model when
  the identity is the region and the models simulate the same regions (THE THREE HUNDRED). The paper's
  set-up is training and testing at z = 0 (``redshift_edges`` around the lowest snapshot only) and counting
  the test clusters above log10 M500 of about 14.7 (``min_log10_m500``) on its high-resolution maps: the
  study's ``dataset: hires`` (:mod:`szmass.hiresmaps`, the kept high-resolution maps on the network's grid
  with no beam).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from szmass.architecture import MAP_SHAPE, Architecture
from szmass.evaluate import (
    bias_summary,
    moments_table,
    relative_bias,
)
from szmass.rundir import HISTORY_FILE, PREDICTIONS_FILE, read_history, read_predictions
from szmass.splits import IdentityKey, cluster_identity
from szmass.zbins import check_edges, redshift_bins

ZBIN_COLUMNS = ("n_bins", "edges", "zbin", "mean", "std", "skewness", "kurtosis", "n")
SCAN_COLUMNS = ("architecture", *(f.name for f in fields(Architecture)), "n_parameters", "seed", "best_epoch",
                "best_val_loss", "epochs")  # fmt: skip
RATE_COLUMNS = ("learning_rate", "seed", "best_epoch", "best_val_loss", "epochs")
SIZE_COLUMNS = ("fraction", "seed", "n_train", "n_train_clusters", "n_test", "mean", "std")
CROSS_COLUMNS = ("train_model", "test_model", "mean", "stderr", "median", "p16", "p84", "n")


# -- shared ------------------------------------------------------------------------------------------


def select_gas_models(ds: xr.Dataset, models: Collection[str]) -> xr.Dataset:
    """The maps of ``ds`` whose ``model`` coordinate (gas model name) is one of ``models``; all maps if
    ``models`` is empty. Keeps (or adds) the ``map`` coordinate, each map's index in ``ds``.
    ValueError naming the missing coordinate or the models that ``ds`` lacks."""
    if "map" not in ds.coords:
        ds = ds.assign_coords(map=np.arange(ds.sizes["map"], dtype=np.int64))
    if not models:
        return ds
    if "model" not in ds.variables:
        raise ValueError("map store: coordinate 'model' (gas model name) missing; it is needed to select gas models")
    have = np.asarray(ds["model"].values).astype(object).astype(str)  # also numpy StringDType (zarr v3)
    absent = sorted(set(models) - set(have.tolist()))
    if absent:
        raise ValueError(f"map store: coordinate 'model' has no maps of gas model(s) {absent}; "
                         f"it has {sorted(set(have.tolist()))}")  # fmt: skip
    return ds.isel(map=np.flatnonzero(np.isin(have, list(models))))


def best_epoch(run_dir: str | os.PathLike[str]) -> tuple[int, float, int]:
    """(best epoch (1-based), its validation loss [dex^2], epochs trained) of a run's ``history.csv``
    (:func:`szmass.rundir.read_history`); the first epoch of least ``val_loss``, as
    :func:`szmass.train.train_run` keeps it."""
    hist = read_history(run_dir)
    path = Path(run_dir) / HISTORY_FILE
    if hist.empty:
        raise ValueError(f"{path}: no epochs")
    val = hist["val_loss"].to_numpy(float)
    if not np.isfinite(val).any():
        raise ValueError(f"{path}: column 'val_loss' is never finite")
    i = int(np.nanargmin(np.where(np.isfinite(val), val, np.nan)))
    return int(hist["epoch"].iloc[i]), float(val[i]), len(hist)


# -- redshift binnings -------------------------------------------------------------------------------


def zbin_moments(predictions: Mapping[int, pd.DataFrame], schemes: Mapping[int, Sequence[float]]) -> pd.DataFrame:
    """Supplementary Table 1: moments of r = log10 M_CNN - log10 M_true [dex] of each scheme's test maps.

    ``predictions``: number of bins -> test predictions (columns log10_M_true, log10_M_cnn [log10 Msun] and
    zbin, as :func:`szmass.runs.selected_predictions` gives); ``schemes``: number of bins -> edges. Rows
    per scheme: one per bin ("z1", ...) and "all" (the bins combined), columns :data:`ZBIN_COLUMNS`
    (:func:`szmass.evaluate.moments_table`).
    """
    parts = []
    for n_bins in sorted(predictions):
        edges = check_edges(schemes[n_bins])
        if len(edges) - 1 != n_bins:
            raise ValueError(f"redshift-bin scheme {n_bins}: its edges {edges} make {len(edges) - 1} bins")
        table = moments_table(predictions[n_bins], ref="log10_M_true", cnn="log10_M_cnn", zbin="zbin")
        table.insert(0, "edges", " ".join(f"{e:g}" for e in edges))
        table.insert(0, "n_bins", n_bins)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)[list(ZBIN_COLUMNS)]


def plot_zbin_study(predictions: Mapping[int, pd.DataFrame], moments: pd.DataFrame) -> Figure:
    """Figure of the binning study: the distribution of r = log10 M_CNN / M_true [dex] of each scheme's
    test maps (left), and the moments of the bins combined against the number of bins: mean and std [dex]
    (middle), skewness and excess kurtosis (right)."""
    fig = Figure(figsize=(12.0, 3.6), layout="constrained")
    hist, dex, shape = fig.subplots(1, 3)
    every = np.concatenate([(p["log10_M_cnn"] - p["log10_M_true"]).to_numpy(float) for p in predictions.values()])
    lim = max(float(np.max(np.abs(every))), 1e-3) if every.size else 0.1
    bins = np.linspace(-lim, lim, 31)
    for n_bins in sorted(predictions):
        r = (predictions[n_bins]["log10_M_cnn"] - predictions[n_bins]["log10_M_true"]).to_numpy(float)
        hist.hist(r, bins=bins, histtype="step", density=True, label=f"{n_bins} bin{'s' * (n_bins > 1)} ({r.size} maps)")
    hist.axvline(0.0, color="0.5", linestyle=":")
    hist.set_xlabel(r"$r = \log_{10} M_{\rm CNN} / M_{\rm true}$ [dex]")
    hist.set_ylabel("density")
    hist.legend(fontsize="small")
    combined = moments[moments["zbin"] == "all"].sort_values("n_bins")
    for ax, columns, label in ((dex, ("mean", "std"), "mean, std of r [dex]"),
                               (shape, ("skewness", "kurtosis"), "skewness, excess kurtosis of r")):
        for column, marker in zip(columns, ("o", "s"), strict=True):
            ax.plot(combined["n_bins"], combined[column], marker=marker, label=column)
        ax.axhline(0.0, color="0.5", linestyle=":")
        ax.set_xscale("log", base=2)
        ax.set_xticks(combined["n_bins"].to_numpy(), [str(n) for n in combined["n_bins"]])
        ax.set_xlabel("redshift bins")
        ax.set_ylabel(label)
        ax.legend(fontsize="small")
    return fig


# -- hyperparameter scan -----------------------------------------------------------------------------


def hyperparameter_table(runs: Sequence[tuple[Architecture, int, str | os.PathLike[str]]], side: int = MAP_SHAPE[0]
                         ) -> pd.DataFrame:  # fmt: skip
    """One row per run (architecture, seed, run directory holding ``history.csv``): the architecture's
    fields and parameter count (``side`` x ``side`` x 1 inputs [pixels]), the seed, best epoch, least validation loss [dex^2]
    and the epochs trained. Columns :data:`SCAN_COLUMNS`."""
    rows = []
    for arch, seed, run_dir in runs:
        epoch, loss, epochs = best_epoch(run_dir)
        rows.append({"architecture": arch.name, **arch.as_dict(), "n_parameters": arch.n_parameters(side=side),
                     "seed": int(seed), "best_epoch": epoch, "best_val_loss": loss, "epochs": epochs})  # fmt: skip
    return pd.DataFrame(rows, columns=list(SCAN_COLUMNS))


def learning_rate_table(runs: Sequence[tuple[float, int, str | os.PathLike[str]]]) -> pd.DataFrame:
    """The learning-rate scan: one row per run (learning rate, seed, run directory holding ``history.csv``)
    with the seed, best epoch, least validation loss [dex^2] and the epochs trained, ordered by decreasing
    learning rate, then seed. Columns :data:`RATE_COLUMNS`."""
    rows = []
    for rate, seed, run_dir in runs:
        if not (np.isfinite(rate) and rate > 0):
            raise ValueError(f"learning-rate scan: learning rates must be finite and > 0, got {rate!r}")
        epoch, loss, epochs = best_epoch(run_dir)
        rows.append({"learning_rate": float(rate), "seed": int(seed), "best_epoch": epoch, "best_val_loss": loss,
                     "epochs": epochs})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(RATE_COLUMNS))
    return table.sort_values(["learning_rate", "seed"], ascending=[False, True], kind="stable").reset_index(drop=True)


def training_subset(
    ds: xr.Dataset, test_identities: Collection[str], fraction: float, *, seed: int, identity: IdentityKey = "halo"
) -> xr.Dataset:
    """The maps of ``ds`` for a run trained on a ``fraction`` (in (0, 1]) of its clusters: every map of the
    ``test_identities`` (the test set stays whole, the same for every fraction) and the maps of
    round(``fraction`` x n) of the n other cluster identities (at least 2, so that training and validation
    keep one each), drawn with ``numpy.random.default_rng(seed)`` over the sorted identities."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"training-set-size study: fractions must lie in (0, 1], got {fraction!r}")
    ids = cluster_identity(ds, identity)
    is_test = np.isin(ids, np.asarray(list(test_identities), dtype=str))
    others = np.unique(ids[~is_test])
    keep = np.random.default_rng(seed).choice(others, size=min(others.size, max(2, round(fraction * others.size))),
                                              replace=False)  # fmt: skip
    return ds.isel(map=np.flatnonzero(is_test | np.isin(ids, keep)))


def train_size_table(runs: Sequence[tuple[float, int, str | os.PathLike[str]]], identity: ArrayLike) -> pd.DataFrame:
    """The training-set-size curve: one row per run (fraction of the training clusters, seed, run directory
    holding ``predictions.csv``) with the number of training maps and of their distinct clusters, and the mean
    and scatter (std, ddof = 1) of r = log10 M_CNN / M_true [dex] on its test maps, ordered by fraction, then
    seed. ``identity``: each map's cluster identity in the map store the runs trained on
    (:func:`szmass.splits.cluster_identity`), indexed by the predictions' ``map`` column. Columns
    :data:`SIZE_COLUMNS`."""
    ids = np.asarray(identity)
    rows = []
    for fraction, seed, run_dir in runs:
        table = read_predictions(run_dir)
        if not table["map"].between(0, ids.size - 1).all():
            raise ValueError(f"{Path(run_dir) / PREDICTIONS_FILE}: map indices beyond the {ids.size} maps of the "
                             "map store given; not the store these runs trained on")  # fmt: skip
        test = table[table["split"] == "test"]
        r = (test["log10_M_cnn"] - test["log10_M_true"]).to_numpy(float)
        if r.size < 2:
            raise ValueError(f"{Path(run_dir) / PREDICTIONS_FILE}: {r.size} test map(s); the scatter needs >= 2")
        train = table["map"][table["split"] == "train"].to_numpy(np.int64)
        rows.append({"fraction": float(fraction), "seed": int(seed), "n_train": int(train.size),
                     "n_train_clusters": int(np.unique(ids[train]).size), "n_test": int(r.size),
                     "mean": float(r.mean()), "std": float(r.std(ddof=1))})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(SIZE_COLUMNS))
    return table.sort_values(["fraction", "seed"], kind="stable").reset_index(drop=True)


def short_label(arch: Architecture) -> str:
    """A short plot label of an architecture, e.g. ``c3 d2 k3 f16 p0.1`` (convolutional layers, dense blocks,
    kernel size, first-layer filters, dropout)."""
    return f"c{arch.conv_layers} d{arch.dense_layers} k{arch.kernel_size} f{arch.filters} p{arch.dropout:g}"


def validation_losses(table: pd.DataFrame) -> dict[str, NDArray[np.float64]]:
    """:func:`short_label` of each architecture -> the least validation losses [dex^2] of its runs, from
    :func:`hyperparameter_table`, in the table's order of architectures."""
    return {short_label(Architecture.from_name(name)): part["best_val_loss"].to_numpy(float)
            for name, part in table.groupby("architecture", sort=False)}  # fmt: skip


# -- cross-model test --------------------------------------------------------------------------------


def maps_of_identities(ds: xr.Dataset, test_identities: Collection[str], identity: IdentityKey) -> xr.Dataset:
    """The maps of ``ds`` whose cluster identity is in ``test_identities``."""
    keep = np.isin(cluster_identity(ds, identity), np.asarray(list(test_identities), dtype=str))
    return ds.isel(map=np.flatnonzero(keep))


def predict_maps_by_bin(ds: xr.Dataset, models: Mapping[int, object], edges: Sequence[float]) -> pd.DataFrame:
    """Predictions of the bin models ``models`` (bin -> keras model, raw y-map -> log10 M500 [Msun]) for
    the maps of ``ds`` inside the bins (edges[0], edges[-1]] (the others are left out), each by the model of
    its redshift bin: columns map, redshift, zbin, log10_M_true, log10_M_cnn [log10 Msun]."""
    # TensorFlow only where predictions are made
    from szmass.predict import predict_masses
    from szmass.train import log10_mass, map_index

    e = check_edges(edges)
    z = np.asarray(ds["redshift"].values, dtype=float)
    ds = ds.isel(map=np.flatnonzero((z > e[0]) & (z <= e[-1])))
    z = np.asarray(ds["redshift"].values, dtype=float)
    table = pd.DataFrame({"map": map_index(ds), "redshift": z, "zbin": redshift_bins(z, edges) if z.size else [],
                          "log10_M_true": log10_mass(ds)})  # fmt: skip
    table["log10_M_cnn"] = (predict_masses(np.asarray(ds["y"].values), z, models, edges=edges) if z.size
                            else np.empty(0))  # fmt: skip
    return table


def cross_model_table(
    predictions: Mapping[tuple[str, str], pd.DataFrame], *, min_log10_m500: float | None = None
) -> pd.DataFrame:
    """Supplementary Table 3: per (train model, test model), the mean relative bias b_t = (M_CNN - M_true) /
    M_CNN of the test maps, its standard error std(b, ddof=1) / sqrt(n), the median and 16th / 84th
    percentiles and n (:func:`szmass.evaluate.bias_summary`). ``predictions`` maps each pair to a table
    with columns log10_M_true and log10_M_cnn [log10 Msun]; with ``min_log10_m500``, only the maps with
    log10 M_true >= it count (the paper tests above log10 M500 of about 14.7). Columns :data:`CROSS_COLUMNS`."""
    rows = []
    for (train_model, test_model), table in sorted(predictions.items()):
        if min_log10_m500 is not None:
            table = table[table["log10_M_true"] >= min_log10_m500]
        b = relative_bias(table["log10_M_cnn"].to_numpy(float), table["log10_M_true"].to_numpy(float))
        summary = bias_summary(b)
        rows.append({"train_model": train_model, "test_model": test_model,
                     "mean": float(b.mean()) if b.size else np.nan} | summary)  # fmt: skip
    return pd.DataFrame(rows, columns=list(CROSS_COLUMNS))
