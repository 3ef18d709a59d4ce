"""Train / validation / test splits by cluster identity, redshift bins of a map store, derived seeds.

Maps of one simulated cluster are strongly correlated (27 lines of sight, neighbouring snapshots), so
the split is drawn over cluster identities, never over maps: every map of one identity lands in the
same split (docs/architecture.md, stage 6; 80/10/10 as in de Andres et al. 2022).

Identity (:func:`cluster_identity`):

* ``"halo"``: (sim, region, halo_id). Right for the synthetic generator (:mod:`szmass.synth`), which
  keeps a halo's ``halo_id`` stable across the snapshots of its region, so one halo's snapshots share
  an identity.
* ``"region"``: (sim, region). The safe choice for real THE THREE HUNDRED data, where AHF halo IDs
  change from snapshot to snapshot, so the same cluster at two redshifts would get two "halo"
  identities and could sit on both sides of a split. A region holds one central cluster (plus a few
  smaller ones), so splitting by region loses little.

Seeds: the TEST set is drawn with ``test_seed`` only and is therefore the same for every run of a
redshift bin; the train / validation split is redrawn with each run's ``seed``. Both come from the
config seed: :func:`bin_test_seed` and :func:`run_seed` (through :func:`szmass.layout.derive_seed`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from szmass.layout import derive_seed
from szmass.zbins import REDSHIFT_EDGES, check_edges

IdentityKey = Literal["halo", "region"]
IDENTITY_FIELDS: dict[str, tuple[str, ...]] = {"halo": ("sim", "region", "halo_id"), "region": ("sim", "region")}
"""Map coordinates that make up a cluster identity, per identity key."""

SPLITS: tuple[str, str, str] = ("train", "val", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)
MIN_TRAINING_CLUSTERS = 10
"""Fewest cluster identities a redshift bin must keep to be trained on (:func:`check_trainable`)."""
MASS_CUT_COLUMNS = ("bin", "M500_cut")


def run_seed(base_seed: int, zbin: int, seed: int) -> int:
    """The seed of run ``seed`` of redshift bin ``zbin`` from the config seed ``base_seed``: the same for
    every data set, so the clean and the Planck-mock runs of one seed share their initial weights and
    their train / validation split."""
    return derive_seed(base_seed, "run", int(zbin), int(seed))


def bin_test_seed(base_seed: int, zbin: int) -> int:
    """The test-set seed of redshift bin ``zbin`` from the config seed ``base_seed``: the same for every
    data set (the same test clusters in clean maps and Planck mocks) and every run of the bin."""
    return derive_seed(base_seed, "test", int(zbin))


def cluster_identity(ds: xr.Dataset, key: IdentityKey = "halo") -> NDArray[np.str_]:
    """Per-map cluster identity strings such as ``"synth/3/12"`` (sim/region/halo_id) or ``"synth/3"``.

    ``ds`` is a map store Dataset (dimension ``map``); see the module docs for the choice of ``key``.
    """
    if key not in IDENTITY_FIELDS:
        raise ValueError(f"cluster identity key must be one of {sorted(IDENTITY_FIELDS)}, got {key!r}")
    fields = IDENTITY_FIELDS[key]
    missing = [f for f in fields if f not in ds.variables]
    if missing:
        raise ValueError(f"map store: coordinate(s) {missing} missing; the {key!r} identity needs {list(fields)}")
    columns = [np.asarray(ds[f].values).astype(object).astype(str) for f in fields]  # also numpy StringDType
    out = columns[0]
    for col in columns[1:]:
        out = np.char.add(np.char.add(out, "/"), col)
    return np.asarray(out, dtype=str)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or not np.all(np.isfinite(f)) or np.any(f <= 0) or abs(f.sum() - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be three positive numbers (train, val, test) summing to 1, got {fractions!r}")
    return float(f[0]), float(f[1]), float(f[2])


def split_maps(
    identity: ArrayLike,
    *,
    test_seed: int,
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> NDArray[np.str_]:
    """Label each map "train", "val" or "test" so that all maps of one identity share a label.

    Fractions count identities (not maps): round(f * n) identities each for test and validation (at
    least one each), the rest for training. The test identities are a uniform draw with
    ``numpy.random.default_rng(test_seed)`` over the sorted distinct identities, so they do not depend
    on ``seed``; the validation identities are then drawn from the remaining ones with
    ``default_rng(seed)``.
    """
    _, f_val, f_test = _check_fractions(fractions)
    ids = np.asarray(identity)
    if ids.ndim != 1:
        raise ValueError(f"identity must be one-dimensional (one entry per map), got shape {ids.shape}")
    distinct, inverse = np.unique(ids, return_inverse=True)
    n = distinct.size
    n_test = max(1, round(f_test * n))
    n_val = max(1, round(f_val * n))
    if n - n_test - n_val < 1:
        raise ValueError(f"{n} distinct cluster identities cannot be split into train, val and test (need >= 3)")
    label = np.full(n, "train", dtype="<U5")
    test = np.random.default_rng(test_seed).permutation(n)[:n_test]
    label[test] = "test"
    rest = np.flatnonzero(label == "train")
    label[np.random.default_rng(seed).permutation(rest)[:n_val]] = "val"
    return label[inverse]


def select_redshift_bin(ds: xr.Dataset, number: int, edges: Sequence[float] = REDSHIFT_EDGES) -> xr.Dataset:
    """The maps of redshift bin ``number`` (1-based; bin i is (edges[i-1], edges[i]]) by each map's ``redshift``.

    The result carries an integer ``map`` coordinate: each map's index in ``ds`` (kept if ``ds`` already
    has one), so predictions can be joined back to the store.
    """
    e = check_edges(edges)
    if not 1 <= number < len(e):
        raise ValueError(f"redshift bin {number} does not exist: bins are 1..{len(e) - 1} for edges {e}")
    if "redshift" not in ds.variables:
        raise ValueError("map store: coordinate 'redshift' missing; it is needed to assign maps to redshift bins")
    if "map" not in ds.coords:
        ds = ds.assign_coords(map=np.arange(ds.sizes["map"], dtype=np.int64))
    z = np.asarray(ds["redshift"].values, dtype=float)
    return ds.isel(map=np.flatnonzero((z > e[number - 1]) & (z <= e[number])))


def test_identities(
    identity: ArrayLike, *, test_seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> NDArray[np.str_]:
    """The sorted distinct identities that :func:`split_maps` labels "test" with ``test_seed`` (any ``seed``)."""
    ids = np.asarray(identity)
    labels = split_maps(ids, test_seed=test_seed, seed=0, fractions=fractions)  # the test draw ignores seed
    return np.unique(ids[labels == "test"])


def training_maps(
    ds: xr.Dataset, number: int, edges: Sequence[float] = REDSHIFT_EDGES, m500_cut: float | None = None
) -> xr.Dataset:
    """The maps the runs of redshift bin ``number`` split into train / val / test: those of the bin
    (:func:`select_redshift_bin`) with M500 >= ``m500_cut`` [Msun] when a cut is given (the Planck mocks'
    S/N mass cut)."""
    maps = select_redshift_bin(ds, number, edges)
    if m500_cut is None:
        return maps
    if "M500" not in maps.variables:
        raise ValueError("map store: coordinate 'M500' missing; it is needed for the mass cut")
    return maps.isel(map=np.flatnonzero(np.asarray(maps["M500"].values) >= m500_cut))


def training_maps_with_margin(
    ds: xr.Dataset,
    number: int,
    edges: Sequence[float],
    m500_cut: float,
    *,
    margin_dex: float,
    identity: IdentityKey,
    test_seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> tuple[xr.Dataset, NDArray[np.str_]]:
    """The maps the runs of redshift bin ``number`` split when they train down to ``margin_dex`` [dex] below
    the mass cut ``m500_cut`` [Msun], and the bin's test identities.

    The test set is the one drawn without the margin (:func:`test_identities` with ``test_seed`` over the
    maps with M500 >= ``m500_cut``), tested above the cut only; the maps with ``m500_cut`` *
    10**-``margin_dex`` <= M500 < ``m500_cut`` of the other identities join training and validation. Networks
    trained so see the masses just above the cut away from the edge of their training range, where a
    regression pulls its estimates toward the middle.
    """
    if not margin_dex >= 0:
        raise ValueError(f"mass_cut_margin_dex must be >= 0 dex, got {margin_dex!r}")
    above = training_maps(ds, number, edges, m500_cut)
    held_out = test_identities(cluster_identity(above, identity), test_seed=test_seed, fractions=fractions)
    maps = training_maps(ds, number, edges, m500_cut * 10.0 ** (-margin_dex))
    below = np.asarray(maps["M500"].values) < m500_cut
    keep = ~(below & np.isin(cluster_identity(maps, identity), held_out))
    return maps.isel(map=np.flatnonzero(keep)), held_out


def read_mass_cuts(path: str | os.PathLike[str]) -> dict[int, float]:
    """Redshift bin (1-based) -> M500 cut [Msun] of a mass-cut table (columns bin, M500_cut; written by
    :func:`szmass.mocks.mass_cuts`)."""
    table = pd.read_csv(path)
    missing = [c for c in MASS_CUT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: column(s) {missing} missing; expected {list(MASS_CUT_COLUMNS)}")
    return {int(b): float(m) for b, m in zip(table["bin"], table["M500_cut"], strict=True)}


def check_trainable(
    maps: xr.Dataset,
    number: int,
    edges: Sequence[float],
    identity: IdentityKey,
    *,
    store: str,
    m500_cut: float | None = None,
    cuts: str = "the mass-cut table",
) -> None:
    """ValueError unless the training maps ``maps`` of redshift bin ``number`` (:func:`training_maps`) hold
    a map and, after a mass cut ``m500_cut`` [Msun], at least :data:`MIN_TRAINING_CLUSTERS` cluster
    identities. ``store`` (the map store) and ``cuts`` (the mass-cut table) name the sources in the messages."""
    if maps.sizes["map"] == 0 and m500_cut is None:
        e = list(edges)
        raise ValueError(f"{store}: no maps in redshift bin {number} ({e[number - 1]}, {e[number]}] (of edges {e}); "
                         "choose bin edges around the snapshots' redshifts")  # fmt: skip
    if m500_cut is not None and np.unique(cluster_identity(maps, identity)).size < MIN_TRAINING_CLUSTERS:
        raise ValueError(f"{cuts}: the mass cut of redshift bin {number} (M500 >= {m500_cut:.3g} Msun) keeps "
                         f"{maps.sizes['map']} maps of fewer than {MIN_TRAINING_CLUSTERS} clusters; simulate more "
                         "massive halos or set training.apply_mass_cut: false")  # fmt: skip
