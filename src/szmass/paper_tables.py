"""Supplementary Table 2 (bias statistics) and the log-residual moments over the paper's samples, and the
ensemble estimate against the selected model (docs/architecture.md, stage 8).

Samples (:func:`bias_samples`): each data set's test maps (b_t = (M_CNN - M_true) / M_CNN, from its selected
runs, :func:`szmass.runs.selected_predictions`); the sky's clusters and its Golden sample against PSZ2's masses
(b_P = (M_CNN - M_SZ) / M_CNN); on a synthetic sky, whose truth is known, also their b_t, and both for the
"unseen" clusters (:func:`unseen_clusters`): those whose injected halo is among the TEST maps of the sky's
models, so that no network trained or validated on it.

The tables' 68% intervals (median b; mean and std of the log residual) are bootstraps over clusters
(:func:`szmass.evaluate.cluster_bootstrap`): the test maps of one cluster (its lines of sight) are resampled
together; each sky row is one PSZ2 cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import pandas as pd

from szmass.evaluate import N_BOOT, bias_table, moments_table
from szmass.runs import compare_estimates

LEADING_COLUMNS = ("sample", "statistic", "reference", "dataset")
"""Columns written first in the tables, where present."""
TRUTH_COLUMNS = ("NAME", "map_index")


class Sample(NamedTuple):
    """One sample of the tables: its name, the statistic ("b_t" or "b_P"), its rows (columns log10_M_cnn,
    zbin and ``ref``) and the log10 reference mass column ``ref`` [Msun]."""

    name: str
    statistic: str
    table: pd.DataFrame
    ref: str


def unseen_clusters(sky: pd.DataFrame, truth: pd.DataFrame, test_maps: Sequence[int]) -> pd.DataFrame:
    """The rows of ``sky`` (a synthetic sky's predictions, column name) whose injected halo (``truth``:
    NAME -> map_index, the map-store index of the injected map) is among ``test_maps`` (store indices)."""
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"synthetic sky truth: column(s) {missing} missing; expected {list(TRUTH_COLUMNS)}")
    by_name = truth.set_index("NAME")["map_index"]
    absent = sorted(set(sky["name"]) - set(by_name.index))
    if absent:
        raise ValueError(f"synthetic sky truth: no row for sky cluster(s) {absent[:5]} (column NAME)")
    injected = by_name.loc[sky["name"]].to_numpy()
    return sky[pd.Series(injected).isin(test_maps).to_numpy()]


def bias_samples(
    tests: Mapping[str, pd.DataFrame],
    sky: pd.DataFrame,
    *,
    truth: pd.DataFrame | None = None,
    sky_dataset: str | None = None,
) -> list[Sample]:
    """The samples of the tables (module docs): ``tests`` (data set -> its selected runs' test predictions),
    the sky's predictions ``sky`` (column golden), and for a synthetic sky its ``truth`` with the data set
    ``sky_dataset`` whose models predicted the sky."""
    golden = sky[sky["golden"].astype(bool)]
    samples = [Sample(ds, "b_t", table, "log10_M_true") for ds, table in tests.items()]
    samples += [Sample("sky", "b_P", sky, "log10_MSZ"), Sample("golden", "b_P", golden, "log10_MSZ")]
    if "log10_M_true" in sky:
        samples += [Sample("sky", "b_t", sky, "log10_M_true"), Sample("golden", "b_t", golden, "log10_M_true")]
    if truth is not None:
        if sky_dataset is None or sky_dataset not in tests:
            raise ValueError(f"sky data set {sky_dataset!r} has no test predictions; expected one of {sorted(tests)}")
        unseen = unseen_clusters(sky, truth, tests[sky_dataset]["map"].to_numpy())
        samples += [Sample("sky_unseen", "b_t", unseen, "log10_M_true"),
                    Sample("sky_unseen", "b_P", unseen, "log10_MSZ")]  # fmt: skip
    return samples


def leading_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the :data:`LEADING_COLUMNS` it has first, the others in their order."""
    first = [c for c in LEADING_COLUMNS if c in table]
    return table[first + [c for c in table if c not in first]]


def bias_and_moments(
    samples: Sequence[Sample], *, clusters: str | None = None, n_boot: int = N_BOOT, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Supplementary Table 2 (:func:`szmass.evaluate.bias_table`, columns sample, statistic, ...) and the
    log-residual moments (:func:`szmass.evaluate.moments_table`, columns sample, reference, ...) of every
    sample; rows whose reference mass is missing are left out. ``clusters`` names the column of every
    sample's table that labels each row's cluster (None: each row its own cluster), whose ``n_boot``
    resamples from ``seed`` give the 68% intervals."""
    bias, moments = [], []
    for s in samples:
        rows = s.table.dropna(subset=[s.ref])
        bias.append(bias_table(rows, ref=s.ref, clusters=clusters, n_boot=n_boot, seed=seed)
                    .assign(sample=s.name, statistic=s.statistic))  # fmt: skip
        moments.append(moments_table(rows, ref=s.ref, clusters=clusters, n_boot=n_boot, seed=seed)
                       .assign(sample=s.name, reference=s.ref))  # fmt: skip
    return (leading_columns(pd.concat(bias, ignore_index=True)),
            leading_columns(pd.concat(moments, ignore_index=True)))  # fmt: skip


def ensemble_comparison(selected: Mapping[str, pd.DataFrame], ensemble: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """:func:`szmass.runs.compare_estimates` of the selected runs and the ensemble of each data set (column
    dataset first)."""
    parts = [compare_estimates({"selected": selected[ds], "ensemble": ensemble[ds]}).assign(dataset=ds)
             for ds in selected]  # fmt: skip
    return leading_columns(pd.concat(parts, ignore_index=True))
