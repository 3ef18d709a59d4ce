"""Training of one CNN run on the maps of one redshift bin, with per-epoch checkpoints and resume.

A run (docs/architecture.md, stage 6) trains :func:`szmass.model.build_cnn` on log10 M [Msun] of the
target mass, M500 (the paper's, the default) or M200 (``target_mass``, :data:`szmass.rundir.TARGET_MASSES`), with the
paper's settings: inputs standardised with the pixel mean and std of the TRAINING maps, loss = MSE
of log10 M, Adam (lr 1e-4), batch 32, 200 epochs, the weights of the epoch with the least
validation loss kept; optionally early stopping (``patience``: stop once that many epochs have passed
without a new least validation loss), a warm-up whose epochs are not monitored (``start_from_epoch``) and a
learning rate lowered on plateaus (``lr_decay_patience``, :func:`plateau_learning_rate`). The split is by
cluster identity (:mod:`szmass.splits`). The network is the paper's unless an :class:`szmass.model.Architecture`
of the hyperparameter scan is given.

Test set: by default drawn per bin (:func:`szmass.splits.split_maps` with ``test_seed``). A study
that compares redshift binnings passes ``test_identities`` instead (:func:`szmass.splits.test_identities`
over all redshifts), so that every binning is tested on the same clusters.

Outputs in ``out_dir`` (each written atomically, so a failed run leaves none half-written; names and
columns in :mod:`szmass.rundir`):

* ``model.keras``: the network wrapped with its standardisation (``szmass.model.with_standardisation``):
  RAW y-maps in, log10 M [Msun] of the target mass out;
* ``history.csv``: epoch (1-based), loss, val_loss (MSE of log10 M [dex^2]);
* ``predictions.csv``: map (index in the map store), split, redshift, log10_M_true (of the target mass),
  log10_M_cnn for every map of the bin.

Checkpoint and resume: after every epoch ``out_dir/checkpoint/state.npz`` holds the model's variables
(weights and the dropout seed-generator states), the optimizer's variables (step, moments), the
best weights so far and the history. A rerun of a killed job restores it and continues with the next
epoch; as the training order of epoch ``e`` is drawn from ``default_rng([seed, e])`` and every random
op is seeded, the resumed run ends with the same weights as an uninterrupted one. The checkpoint is
deleted once the outputs are written. (With Snakemake, declare the three files, not ``out_dir``, as
outputs, or a failed job's checkpoint is removed with its outputs.)

Data pipeline: batches come from a :class:`MapSource`, which holds the bin's maps in memory when
they fit in ``max_memory_bytes`` and otherwise reads each batch from the (zarr-backed, lazily
opened) store; either way a ``tf.data`` generator pipeline with prefetching feeds Keras, and the
batches are the same, so both paths train identically. Streaming reads whole store chunks (one halo
each) for a batch of random maps, so it costs I/O; it is a fallback for bins larger than memory.

Determinism: ``keras.utils.set_random_seed(seed)`` and ``tf.config.experimental.enable_op_determinism()``;
on a CPU two runs with the same seed give identical weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
import xarray as xr
from numpy.typing import NDArray
from scipy.stats import gaussian_kde

from szmass.atomic import atomic_path
from szmass.layout import SEED_BOUND
from szmass.logs import progress
from szmass.model import (
    OUTPUT_LAYER,
    PAPER_ARCHITECTURE,
    Architecture,
    build_cnn,
    with_standardisation,
)
from szmass.rundir import HISTORY_COLUMNS, HISTORY_FILE, MODEL_FILE, PREDICTIONS_FILE, check_target_mass
from szmass.settings import xla_determinism_problem
from szmass.splits import (
    DEFAULT_FRACTIONS,
    SPLITS,
    IdentityKey,
    cluster_identity,
    split_maps,
)
from szmass.tables import write_table

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FILE = "state.npz"

DEFAULT_MAX_MEMORY_BYTES = 8 * 2**30
"""Bins whose maps take more than this many bytes are streamed from the store batch by batch."""
EVAL_BATCH_SIZE = 256
"""Batch size for validation and prediction (no effect on the result beyond float rounding)."""
MOMENT_BLOCK = 512
"""Maps per block when accumulating the pixel mean and variance."""
PREFETCH_BATCHES = 4
DEFAULT_LR_DECAY_FACTOR = 0.5
"""The learning rate's factor at each plateau (:func:`plateau_learning_rate`)."""
SAMPLE_WEIGHTS = ("none", "flat_log_mass")
"""The loss weights of the maps (:func:`mass_weights`): none (the paper's), or flat in log10 M."""
MAX_WEIGHT_RATIO = 10.0
"""The largest weight of :func:`mass_weights` over its least."""


class MapSource:
    """The raw y-maps (Compton y) of a map-store Dataset, read by map index.

    Held in memory (float32) when ``y`` takes at most ``max_memory_bytes``; otherwise each :meth:`take`
    reads the needed maps from the lazily opened store. Non-finite pixels raise ValueError.
    """

    def __init__(self, ds: xr.Dataset, *, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES) -> None:
        if "y" not in ds.variables:
            raise ValueError("map store: variable 'y' missing; expected y (map, py, px)")
        y = ds["y"]
        if y.ndim != 3 or y.dims[0] != "map":
            raise ValueError(f"map store: y has dimensions {y.dims}, expected ('map', 'py', 'px')")
        self.n_maps: int = int(y.shape[0])
        self.map_shape: tuple[int, int] = (int(y.shape[1]), int(y.shape[2]))
        self.in_memory: bool = self.n_maps * self.map_shape[0] * self.map_shape[1] * 4 <= max_memory_bytes
        self._y: NDArray[np.float32] | xr.DataArray = y
        if self.in_memory:
            self._y = self._check(np.asarray(y.values, dtype=np.float32), np.arange(self.n_maps))

    @staticmethod
    def _check(maps: NDArray[np.float32], indices: NDArray[np.int64]) -> NDArray[np.float32]:
        bad = ~np.isfinite(maps).all(axis=(1, 2))
        if np.any(bad):
            raise ValueError(f"map store: variable 'y' has non-finite pixels in map(s) {indices[bad][:10].tolist()}")
        return maps

    def take(self, indices: NDArray[np.int64]) -> NDArray[np.float32]:
        """Maps at positions ``indices`` (in the given order), shape (len(indices), py, px), float32."""
        idx = np.asarray(indices, dtype=np.int64)
        if isinstance(self._y, np.ndarray):
            return self._y[idx]
        distinct, inverse = np.unique(idx, return_inverse=True)  # one sorted, orthogonal read per batch
        maps = np.asarray(self._y.isel(map=distinct).values, dtype=np.float32)
        return self._check(maps, distinct)[inverse]


def log10_mass(ds: xr.Dataset, target_mass: str = "M500") -> NDArray[np.float64]:
    """log10 of each map's ``target_mass`` coordinate [Msun] (one of :data:`szmass.rundir.TARGET_MASSES`); ValueError if
    the name is not one of them, or the coordinate is missing or has values non-finite or <= 0."""
    check_target_mass(target_mass)
    if target_mass not in ds.variables:
        raise ValueError(f"map store: coordinate {target_mass!r} [Msun] missing")
    m = np.asarray(ds[target_mass].values, dtype=np.float64)
    bad = ~np.isfinite(m) | (m <= 0)
    if np.any(bad):
        raise ValueError(f"map store: coordinate {target_mass!r} must be finite and > 0 [Msun], "
                         f"got {m[bad][:5].tolist()}")
    return np.log10(m)


def map_index(ds: xr.Dataset) -> NDArray[np.int64]:
    """Each map's index in the map store: the ``map`` coordinate if present (see
    :func:`szmass.splits.select_redshift_bin`), else its position in ``ds``."""
    if "map" in ds.coords:
        return np.asarray(ds["map"].values, dtype=np.int64)
    return np.arange(ds.sizes["map"], dtype=np.int64)


def pixel_moments(source: MapSource, indices: NDArray[np.int64]) -> tuple[float, float]:
    """Mean and standard deviation (population, float64) of all pixels of the maps ``indices`` [Compton y].

    Accumulated block by block with Chan et al.'s pairwise update, so it is exact to float64 rounding
    for the in-memory and the streamed source alike. ValueError if the pixels are all equal.
    """
    count, mean, m2 = 0, 0.0, 0.0
    for start in range(0, len(indices), MOMENT_BLOCK):
        x = source.take(indices[start : start + MOMENT_BLOCK]).astype(np.float64).ravel()
        mb = float(x.mean())
        m2b = float(np.square(x - mb).sum())
        total = count + x.size
        delta = mb - mean
        mean += delta * x.size / total
        m2 += m2b + delta**2 * count * x.size / total
        count = total
    if count == 0 or m2 <= 0:
        raise ValueError(f"training maps ({len(indices)}) have no pixel variance: cannot standardise them")
    return mean, float(np.sqrt(m2 / count))


def batch_dataset(
    read: Callable[[NDArray[np.int64]], tuple[NDArray[np.float32], ...]],
    order: NDArray[np.int64],
    batch_size: int,
    signature: tuple[tf.TensorSpec, ...],
) -> tf.data.Dataset:
    """A prefetched ``tf.data`` pipeline yielding ``read(order[i:i + batch_size])`` for consecutive batches."""

    def batches() -> Iterator[tuple[NDArray[np.float32], ...]]:
        for start in range(0, len(order), batch_size):
            yield read(order[start : start + batch_size])

    n_batches = -(-len(order) // batch_size)
    data = tf.data.Dataset.from_generator(batches, output_signature=signature)
    return data.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(PREFETCH_BATCHES)


def mass_weights(log_m: NDArray[np.floating], train: NDArray[np.int64], scheme: str) -> NDArray[np.float32] | None:
    """The loss weight of every map of a bin, from log10 M of its maps [Msun] and the indices of its training
    maps: None for ``"none"``; for ``"flat_log_mass"``, 1 / p(log10 M), p the Gaussian KDE (Scott's bandwidth)
    of the training maps' log10 M, capped at :data:`MAX_WEIGHT_RATIO` times the least weight and scaled to a
    mean of 1 over the training maps. Each interval of log10 M then weighs alike in the loss: the network's
    implicit prior is flat over the training range, not the training set's mass function, so the masses at
    the ends of that range are pulled less toward its middle. Validation maps get the same function's weights."""
    if scheme not in SAMPLE_WEIGHTS:
        raise ValueError(f"sample_weights must be one of {SAMPLE_WEIGHTS}, got {scheme!r}")
    if scheme == "none":
        return None
    density = gaussian_kde(log_m[train])(log_m)
    weights = np.minimum(1.0 / density, MAX_WEIGHT_RATIO / density.max())
    return (weights / weights[train].mean()).astype(np.float32)


def epoch_order(seed: int, epoch: int, indices: NDArray[np.int64]) -> NDArray[np.int64]:
    """Training order of epoch ``epoch`` (0-based): a permutation of ``indices`` from ``default_rng([seed, epoch])``."""
    return np.random.default_rng([seed, epoch]).permutation(indices)


DIHEDRAL_CODES = 8
"""The symmetries of a square map: rotations by 0, 90, 180, 270 degrees, each with or without a flip."""


def dihedral(maps: NDArray[np.float32], codes: NDArray[np.integer]) -> NDArray[np.float32]:
    """Each square map of ``maps`` (N, py, px) turned by ``codes[i] % 4`` quarter turns and, for codes 4-7,
    transposed first (code 0: unchanged). Pixel values are moved, never interpolated."""
    if maps.shape[-1] != maps.shape[-2]:
        raise ValueError(f"dihedral augmentation needs square maps, got {maps.shape[-2]} x {maps.shape[-1]} pixels")
    out = np.array(maps, copy=True)
    codes = np.asarray(codes)
    for code in np.unique(codes):
        sel = codes == code
        turned = np.swapaxes(maps[sel], -1, -2) if code >= 4 else maps[sel]
        out[sel] = np.rot90(turned, k=int(code) % 4, axes=(-2, -1))
    return out


def augment_codes(seed: int, epoch: int, n: int) -> NDArray[np.int8]:
    """The symmetry (:func:`dihedral` code) of each of the ``n`` training maps of epoch ``epoch`` (0-based), in
    the epoch's order: uniform draws from ``default_rng([seed, epoch, 1])``, so a resumed run repeats them."""
    return np.random.default_rng([seed, epoch, 1]).integers(0, DIHEDRAL_CODES, n).astype(np.int8)


def map_reader(
    source: MapSource, target: NDArray[np.float32], weights: NDArray[np.float32] | None,
    order: NDArray[np.int64] | None = None, codes: NDArray[np.int8] | None = None,
) -> Callable[[NDArray[np.int64]], tuple[NDArray[np.float32], ...]]:
    """``read(i)`` for :func:`batch_dataset`: the maps ``i`` with a channel axis, their targets and, with
    ``weights``, their loss weights. With ``order`` and ``codes``, ``i`` are positions in an epoch's ``order``
    and the maps ``order[i]`` are turned by ``codes[i]`` (:func:`dihedral`)."""

    def read(pos: NDArray[np.int64]) -> tuple[NDArray[np.float32], ...]:
        i = pos if order is None else order[pos]
        maps = source.take(i) if codes is None else dihedral(source.take(i), codes[pos])
        return (maps[..., None], target[i, None]) + (() if weights is None else (weights[i],))

    return read


def configure_determinism(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, numpy and TensorFlow (``keras.utils.set_random_seed``) and, if ``deterministic``,
    make TF ops deterministic for the rest of the process (TensorFlow cannot switch that off again;
    Keras then ignores ``jit_compile=True`` of ``Model.compile``)."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


@dataclass(frozen=True)
class Split:
    """Per-map split labels and the map positions of each split."""

    labels: NDArray[np.str_]
    train: NDArray[np.int64]
    val: NDArray[np.int64]
    test: NDArray[np.int64]

    @classmethod
    def of(cls, labels: NDArray[np.str_]) -> Split:
        """From per-map labels "train" / "val" / "test"."""
        return cls(labels, *(np.flatnonzero(labels == s) for s in SPLITS))

    def digest(self) -> str:
        """A short hash of the labels (identifies the split in a checkpoint)."""
        return hashlib.sha256("".join(s[0] for s in self.labels).encode()).hexdigest()[:16]


def draw_split(
    ds: xr.Dataset,
    *,
    seed: int,
    test_seed: int,
    identity: IdentityKey,
    fractions: Sequence[float],
    test_identities: Collection[str] | None = None,
) -> Split:
    """The run's split of the maps of ``ds`` (:func:`szmass.splits.split_maps` over cluster identities).

    With ``test_identities``, the test set is the maps of those identities instead of a draw with
    ``test_seed`` (see :func:`split_given_test`).
    """
    ids = cluster_identity(ds, identity)
    if test_identities is None:
        return Split.of(split_maps(ids, test_seed=test_seed, seed=seed, fractions=fractions))
    return Split.of(split_given_test(ids, test_identities, seed=seed, fractions=fractions))


def split_given_test(
    identity: NDArray[np.str_], test_identities: Collection[str], *, seed: int, fractions: Sequence[float]
) -> NDArray[np.str_]:
    """Per-map labels with a GIVEN test set: "test" for the maps of ``test_identities``; of the other
    identities, round(f_val * n) (at least 1; n counts every distinct identity of ``identity``) drawn
    for validation with ``default_rng(seed)``, the rest "train".

    The validation draw is that of :func:`szmass.splits.split_maps`, so given the test identities that
    ``split_maps`` would draw, both label every map alike. ValueError if no identity is left to train on.
    """
    f_val = float(fractions[1])
    ids = np.asarray(identity)
    distinct, inverse = np.unique(ids, return_inverse=True)
    label = np.where(np.isin(distinct, np.asarray(list(test_identities), dtype=str)), "test", "train").astype("<U5")
    n_val = max(1, round(f_val * distinct.size))
    rest = np.flatnonzero(label == "train")
    if rest.size - n_val < 1:
        raise ValueError(f"{distinct.size} cluster identities, {distinct.size - rest.size} of them in the given test set, "
                         f"leave none to train on after {n_val} for validation")  # fmt: skip
    label[np.random.default_rng(seed).permutation(rest)[:n_val]] = "val"
    return label[inverse]


def check_settings(
    epochs: int, batch_size: int, learning_rate: float, *, deterministic: bool, jit_compile: bool,
    patience: int | None = None, lr_decay_patience: int | None = None, lr_decay_factor: float = DEFAULT_LR_DECAY_FACTOR,
    start_from_epoch: int = 0,
) -> None:
    """ValueError unless epochs >= 1, batch_size >= 1, learning_rate > 0, patience and lr_decay_patience (if any)
    >= 1, 0 < lr_decay_factor < 1, 0 <= start_from_epoch < epochs and jit_compile goes without determinism."""
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1, learning_rate > 0; got {epochs}, {batch_size}, {learning_rate}")
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be >= 1 epoch (or None: no early stopping), got {patience}")
    if lr_decay_patience is not None and lr_decay_patience < 1:
        raise ValueError(f"lr_decay_patience must be >= 1 epoch (or None: a constant learning rate), got {lr_decay_patience}")
    if not 0 < lr_decay_factor < 1:
        raise ValueError(f"lr_decay_factor must be in (0, 1), got {lr_decay_factor}")
    if not 0 <= start_from_epoch < epochs:
        raise ValueError(f"start_from_epoch must be in [0, epochs = {epochs}), got {start_from_epoch}")
    problem = xla_determinism_problem(jit_compile=jit_compile, deterministic=deterministic)
    if problem:
        raise ValueError(problem)


def patience_spent(completed: int, best_epoch: int, patience: int | None, start_from_epoch: int = 0) -> bool:
    """Early stopping: True when ``patience`` epochs have passed since ``best_epoch`` (1-based; 0: none), or
    since the warm-up's last epoch ``start_from_epoch`` if later, after ``completed`` epochs. Checked before each
    epoch, so a resumed run stops where an uninterrupted one did."""
    return patience is not None and completed - max(best_epoch, start_from_epoch) >= patience


def monitored(epoch: int, start_from_epoch: int) -> bool:
    """Whether the validation loss of ``epoch`` (1-based) may give the kept weights: not during the warm-up's
    first ``start_from_epoch`` epochs (``keras.callbacks.EarlyStopping(start_from_epoch=...)``)."""
    return epoch > start_from_epoch


def plateau_learning_rate(
    val_losses: Iterable[float], learning_rate: float, patience: int | None, factor: float = DEFAULT_LR_DECAY_FACTOR
) -> float:
    """The learning rate of the epoch after those with validation losses ``val_losses``: ``learning_rate``
    times ``factor`` for each plateau, a plateau being ``patience`` epochs in a row without a new least
    validation loss (the count restarts after each lowering); ``patience`` None: ``learning_rate`` always.
    This is ``keras.callbacks.ReduceLROnPlateau`` with ``min_delta=0``, no cooldown and no floor, computed
    from the history alone, so a resumed run goes on with the rate an uninterrupted one had."""
    if patience is None:
        return learning_rate
    rate, best, wait = learning_rate, np.inf, 0
    for loss in val_losses:
        if loss < best:
            best, wait = loss, 0
            continue
        wait += 1
        if wait >= patience:
            rate, wait = rate * factor, 0
    return rate


# -- checkpoints -------------------------------------------------------------------------------------


def save_checkpoint(path: Path, arrays: dict[str, NDArray[Any]], meta: dict[str, Any]) -> None:
    """Write ``arrays`` and the JSON-serialisable ``meta`` to the ``.npz`` file ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        payload: dict[str, Any] = {"__meta__": np.array(json.dumps(meta)), **arrays}
        np.savez(fh, **payload)


def load_checkpoint(path: Path, fingerprint: dict[str, Any]) -> tuple[dict[str, NDArray[Any]], dict[str, Any]] | None:
    """(arrays, meta) of the checkpoint ``path``, or None if there is none.

    ValueError if it was written for another run (its ``meta["fingerprint"]`` differs from ``fingerprint``).
    """
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "__meta__"}
        meta = json.loads(str(z["__meta__"]))
    if meta.get("fingerprint") != fingerprint:
        raise ValueError(
            f"checkpoint {path}: field 'fingerprint' is {meta.get('fingerprint')}, expected {fingerprint} "
            "(written by a run with other settings or data); delete the checkpoint directory to start afresh"
        )
    return arrays, meta


def numbered(prefix: str, values: Sequence[NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """``{"prefix/0": values[0], ...}`` for a checkpoint."""
    return {f"{prefix}/{i}": np.asarray(v) for i, v in enumerate(values)}


def unnumbered(arrays: dict[str, NDArray[Any]], prefix: str) -> list[NDArray[Any]]:
    """The arrays ``prefix/0, prefix/1, ...`` of a checkpoint, in order."""
    n = sum(1 for k in arrays if k.startswith(prefix + "/"))
    return [arrays[f"{prefix}/{i}"] for i in range(n)]


def assign_all(variables: Sequence[keras.Variable], values: Sequence[NDArray[Any]], what: str) -> None:
    """Assign checkpointed ``values`` to ``variables``, checking count and shapes."""
    if len(values) != len(variables):
        raise ValueError(f"checkpoint: {what} has {len(values)} arrays, the model has {len(variables)} variables")
    for var, val in zip(variables, values, strict=True):
        if tuple(var.shape) != val.shape:
            raise ValueError(f"checkpoint: {what} variable {var.path} has shape {val.shape}, expected {tuple(var.shape)}")
        var.assign(val)


# -- outputs -----------------------------------------------------------------------------------------


def predict_maps(model: keras.Model, source: MapSource, indices: NDArray[np.int64]) -> NDArray[np.float64]:
    """``model``'s output (log10 M [Msun] of its target mass) for the raw maps ``indices``, in inference mode."""
    sig = (tf.TensorSpec((None, *source.map_shape, 1), tf.float32),)
    data = batch_dataset(lambda i: (source.take(i)[..., None],), indices, EVAL_BATCH_SIZE, sig)
    return np.asarray(model.predict(data, verbose=0), dtype=np.float64).reshape(-1)


def write_run_outputs(
    out_dir: Path,
    inference: keras.Model,
    history: NDArray[np.float64],
    ds: xr.Dataset,
    source: MapSource,
    split: Split,
    target_mass: str = "M500",
) -> None:
    """Write ``predictions.csv``, ``history.csv`` and ``model.keras`` (each atomically) for one run.

    ``inference`` maps raw y-maps to log10 M [Msun] of ``target_mass``, whose log10 per map is written as
    log10_M_true; ``history`` rows are (epoch, loss, val_loss).
    """
    every = np.arange(source.n_maps)
    predictions = pd.DataFrame(
        {
            "map": map_index(ds),
            "split": split.labels,
            "redshift": np.asarray(ds["redshift"].values, dtype=np.float64),
            "log10_M_true": log10_mass(ds, target_mass),
            "log10_M_cnn": predict_maps(inference, source, every),
        }
    )
    write_table(predictions, out_dir / PREDICTIONS_FILE)
    hist = pd.DataFrame(history, columns=list(HISTORY_COLUMNS)).astype({"epoch": np.int64})
    write_table(hist, out_dir / HISTORY_FILE)
    with atomic_path(out_dir / MODEL_FILE) as tmp:
        inference.save(tmp)


# -- one run -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """Summary of a finished run: where its outputs are, its best epoch (1-based) and validation
    loss [dex^2], epochs trained in total and restored from a checkpoint, the standardisation
    (mean, std of the training pixels [Compton y]) and the number of maps per split."""

    out_dir: Path
    seed: int
    best_epoch: int
    best_val_loss: float
    epochs: int
    resumed_epochs: int
    mean: float
    std: float
    n_maps: dict[str, int]


def train_run(
    ds: xr.Dataset,
    *,
    out_dir: str | os.PathLike[str],
    seed: int,
    test_seed: int,
    epochs: int = 200,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    identity: IdentityKey = "halo",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    init_output_bias: bool = True,
    deterministic: bool = True,
    jit_compile: bool = False,
    mixed_precision: bool = False,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    architecture: Architecture = PAPER_ARCHITECTURE,
    test_identities: Collection[str] | None = None,
    target_mass: str = "M500",
    patience: int | None = None,
    augment: bool = False,
    lr_decay_patience: int | None = None,
    lr_decay_factor: float = DEFAULT_LR_DECAY_FACTOR,
    sample_weights: str = "none",
    start_from_epoch: int = 0,
) -> RunResult:
    """Train one seeded run on the maps of ``ds`` (one redshift bin of a map store) and write its outputs.

    ``seed`` (in [0, 2**31)) fixes the weights' initialisation, dropout, the train / validation split
    and the per-epoch order; ``test_seed`` fixes the test set (shared by all runs of the bin).
    Resumes from ``out_dir/checkpoint`` if a killed run left one. ``callbacks`` are passed to each
    epoch's ``keras.Model.fit`` (e.g. progress or early-abort hooks). See the module docs for outputs.
    ``architecture``: the network (default: the paper's). ``test_identities``: a given test set
    (:func:`szmass.splits.test_identities`) instead of the draw with ``test_seed``. ``fractions``: of the
    cluster identities in train, validation and test. ``patience``: stop after that many epochs without a new
    least validation loss (None: train all ``epochs``); history.csv then ends at the last epoch trained.
    ``augment``: each training map of each epoch goes through one of the 8 symmetries of the square
    (:func:`dihedral`, :func:`augment_codes`): a cluster's y-map has no preferred orientation and the noise
    is isotropic, so each is a map as likely as the original; validation and test maps are not turned.
    ``lr_decay_patience``, ``lr_decay_factor``: each epoch trains at :func:`plateau_learning_rate` of the history so
    far (None: ``learning_rate`` throughout, as the paper). ``sample_weights``: the loss weights of the training
    and validation maps (:func:`mass_weights`; ``"none"``: all alike, as the paper). ``start_from_epoch``: the
    validation loss of the first that many epochs is not monitored, so neither gives the kept weights nor starts
    the patience (Keras's EarlyStopping semantics; 0: every epoch, as the paper): a small validation set's dip
    in the first epochs, while the training loss still falls steeply, cannot stop the run.

    ``target_mass``: the mass trained on and written as log10_M_true (:data:`szmass.rundir.TARGET_MASSES`); the split
    is by cluster, so the same clusters are trained and tested on either way.
    ``init_output_bias``: start the output layer's bias at the mean log10 M of the training maps
    (~14.5) instead of 0. The loss and the network are the paper's; only the starting point differs,
    which spares the first hundreds of Adam steps (at lr 1e-4) the climb from 0 to ~14.5 dex, a climb
    that a toy-sized training set might not finish in 200 epochs. ``deterministic=False`` (with
    ``jit_compile=True``) trades bitwise reproducibility for speed on a GPU. ``mixed_precision``: the hidden
    layers compute in float16 (``build_cnn(dtype="mixed_float16")``; standardisation and output stay float32)
    and Adam is wrapped in ``keras.optimizers.LossScaleOptimizer`` against float16 gradient underflow; it
    pays on GPUs with tensor cores and is slow on a CPU.
    """
    if not 0 <= seed < SEED_BOUND:
        raise ValueError(f"seed must be in [0, {SEED_BOUND}), got {seed}")
    check_settings(epochs, batch_size, learning_rate, deterministic=deterministic, jit_compile=jit_compile,
                   patience=patience, lr_decay_patience=lr_decay_patience, lr_decay_factor=lr_decay_factor,
                   start_from_epoch=start_from_epoch)  # fmt: skip
    out = Path(out_dir)
    source = MapSource(ds, max_memory_bytes=max_memory_bytes)
    architecture.feature_side(min(source.map_shape))
    log_m = log10_mass(ds, target_mass)
    target = log_m.astype(np.float32)
    split = draw_split(ds, seed=seed, test_seed=test_seed, identity=identity, fractions=fractions,
                       test_identities=test_identities)  # fmt: skip
    weights = mass_weights(log_m, split.train, sample_weights)
    configure_determinism(seed, deterministic=deterministic)
    mean, std = pixel_moments(source, split.train)

    cnn = build_cnn(input_shape=(*source.map_shape, 1), seed=seed, architecture=architecture,
                    dtype="mixed_float16" if mixed_precision else None)  # fmt: skip
    if init_output_bias:
        cnn.get_layer(OUTPUT_LAYER).bias.assign([float(np.mean(log_m[split.train]))])
    model = with_standardisation(cnn, mean, std)
    optimizer = keras.optimizers.Adam(learning_rate)
    if mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit_compile)
    model.optimizer.build(model.trainable_variables)

    fingerprint = {
        "seed": seed, "test_seed": test_seed, "batch_size": batch_size, "learning_rate": learning_rate,
        "identity": identity, "fractions": list(map(float, fractions)), "n_maps": source.n_maps,
        "map_shape": list(source.map_shape), "split": split.digest(), "mean": mean, "std": std,
        "init_output_bias": init_output_bias, "architecture": architecture.as_dict(), "mixed_precision": mixed_precision,
        "target_mass": target_mass, "augment": augment, "lr_decay": [lr_decay_patience, lr_decay_factor],
        "sample_weights": sample_weights, "start_from_epoch": start_from_epoch,
    }  # fmt: skip
    ckpt_path = out / CHECKPOINT_DIR / CHECKPOINT_FILE
    history: list[tuple[float, float, float]] = []
    best_epoch, best_val, best_weights = 0, np.inf, None
    restored = load_checkpoint(ckpt_path, fingerprint)
    if restored is not None:
        arrays, meta = restored
        assign_all(model.variables, unnumbered(arrays, "model"), "model")
        assign_all(model.optimizer.variables, unnumbered(arrays, "optimizer"), "optimizer")
        history = [(float(e), float(t), float(v)) for e, t, v in arrays["history"]]
        best_epoch, best_val = int(meta["best_epoch"]), float(meta["best_val_loss"])
        best_weights = unnumbered(arrays, "best") or None
        log.info("seed %d: resumed from %s after epoch %d", seed, ckpt_path, len(history))
    resumed = len(history)

    read = map_reader(source, target, weights)
    sig = (tf.TensorSpec((None, *source.map_shape, 1), tf.float32), tf.TensorSpec((None, 1), tf.float32))
    sig += () if weights is None else (tf.TensorSpec((None,), tf.float32),)
    val_data = batch_dataset(read, split.val, EVAL_BATCH_SIZE, sig)
    for epoch in progress(range(resumed, epochs), total=epochs, initial=resumed, desc=f"seed {seed}: epochs"):
        if patience_spent(epoch, best_epoch, patience, start_from_epoch):
            log.info("seed %d: stopped after epoch %d (no better validation loss since epoch %d)", seed, epoch, best_epoch)
            break
        model.optimizer.learning_rate = plateau_learning_rate([v for _, _, v in history], learning_rate,
                                                              lr_decay_patience, lr_decay_factor)  # fmt: skip
        order = epoch_order(seed, epoch, split.train)
        if augment:  # batches of positions in the epoch's order
            read_turned = map_reader(source, target, weights, order, augment_codes(seed, epoch, len(order)))
            train_data = batch_dataset(read_turned, np.arange(len(order)), batch_size, sig)
        else:
            train_data = batch_dataset(read, order, batch_size, sig)
        fit = model.fit(train_data, validation_data=val_data, initial_epoch=epoch, epochs=epoch + 1,
                        shuffle=False, verbose=0, callbacks=list(callbacks))  # fmt: skip
        loss, val_loss = float(fit.history["loss"][-1]), float(fit.history["val_loss"][-1])
        history.append((epoch + 1, loss, val_loss))
        if val_loss < best_val and monitored(epoch + 1, start_from_epoch):
            best_epoch, best_val, best_weights = epoch + 1, val_loss, model.get_weights()
        save_checkpoint(
            ckpt_path,
            {**numbered("model", [v.numpy() for v in model.variables]),
             **numbered("optimizer", [v.numpy() for v in model.optimizer.variables]),
             **numbered("best", best_weights or []), "history": np.asarray(history, dtype=np.float64)},
            {"fingerprint": fingerprint, "best_epoch": best_epoch, "best_val_loss": best_val},
        )  # fmt: skip
        log.info("seed %d epoch %d/%d: loss %.5f val_loss %.5f (best epoch %d)", seed, epoch + 1, epochs, loss,
                 val_loss, best_epoch)  # fmt: skip
    if best_weights is None:
        raise FloatingPointError(f"seed {seed}: validation loss was never finite in {len(history)} epochs")

    model.set_weights(best_weights)
    write_run_outputs(out, with_standardisation(cnn, mean, std), np.asarray(history), ds, source, split, target_mass)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    return RunResult(
        out_dir=out, seed=seed, best_epoch=best_epoch, best_val_loss=best_val, epochs=len(history),
        resumed_epochs=resumed, mean=mean, std=std, n_maps={s: int(np.sum(split.labels == s)) for s in SPLITS},
    )  # fmt: skip
