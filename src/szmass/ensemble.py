"""K seeded runs of one redshift bin trained at once, as one vectorised Keras model.

The 100 runs of a bin are independent and identical in shape, and one run's CNN is far too small to
keep a GPU busy (58k parameters, 96 x 96 inputs). :func:`train_ensemble` trains K of them in one
model whose layers hold the K networks side by side:

* input (batch, py, px, K): channel k holds a batch of run k's OWN maps (its own split and order);
* :class:`ChannelStandardise`: each channel standardised with its run's training mean and std;
* :class:`GroupedConv2D`: run k's filters see only run k's channels, so the K networks never mix
  (a grouped convolution on a GPU, where cuDNN has one; K plain convolutions on slices on a CPU,
  where TensorFlow has no grouped convolution and Keras's XLA fallback is ~10x slower than that);
* :class:`GroupedDense`: a batched matmul (einsum) with kernels (K, in, out);
* :class:`GroupedDropout`: run k's dropout drawn with run k's own seed generator, exactly as the
  single network's ``Dropout`` layer would draw it.

Each run keeps its own split (:func:`szmass.train.draw_split`), per-epoch order
(:func:`szmass.train.epoch_order`), loss (the MSE over its own maps of the batch; runs whose epoch has
fewer batches are padded with zero-weight rows), Adam state and step count (an update is skipped for a
run without maps in the step), best epoch and outputs. The ensemble is initialised FROM the single
networks (:func:`szmass.model.build_cnn` with each run's seed), so it reproduces :func:`szmass.train.train_run`
run by run, up to float rounding (grouped versus plain convolutions): same seeds, same outputs.

Outputs: for each run, its ``out_dir`` gets the files of :func:`szmass.train.train_run` (``model.keras``
is a plain single-run model). A checkpoint of the whole group after each epoch (default
``out_dirs[0]/checkpoint``) lets a killed job resume.

Where it pays: on a GPU, where one run's small batches leave the device idle. A CPU is compute-bound
already, so there the ensemble trains no faster than single runs (``benchmarks/training.py``: 400 to
1200 map-steps/s for either on 2 cores) and :func:`szmass.train.train_run` is the simpler choice.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
import xarray as xr
from numpy.typing import NDArray

from szmass.layout import SEED_BOUND
from szmass.logs import progress
from szmass.model import (
    OUTPUT_LAYER,
    PAPER_ARCHITECTURE,
    Architecture,
    build_cnn,
    pooling_layers,
    with_standardisation,
)
from szmass.splits import DEFAULT_FRACTIONS, SPLITS, IdentityKey
from szmass.train import (
    CHECKPOINT_DIR,
    CHECKPOINT_FILE,
    DEFAULT_LR_DECAY_FACTOR,
    DEFAULT_MAX_MEMORY_BYTES,
    EVAL_BATCH_SIZE,
    PREFETCH_BATCHES,
    MapSource,
    RunResult,
    Split,
    assign_all,
    augment_codes,
    check_settings,
    configure_determinism,
    dihedral,
    draw_split,
    epoch_order,
    load_checkpoint,
    log10_mass,
    mass_weights,
    monitored,
    numbered,
    patience_spent,
    pixel_moments,
    plateau_learning_rate,
    save_checkpoint,
    unnumbered,
    write_run_outputs,
)

log = logging.getLogger(__name__)

ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-7
"""keras.optimizers.Adam's defaults, which the single runs use."""


@keras.saving.register_keras_serializable(package="szmass")
class ChannelStandardise(keras.layers.Layer):
    """(x[..., k] - mean[k]) / std[k]: channel k standardised with run k's constants [Compton y], in float32."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], **kwargs: Any) -> None:
        super().__init__(dtype="float32", **{k: v for k, v in kwargs.items() if k != "dtype"})
        m, s = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        if m.ndim != 1 or m.shape != s.shape or not (np.all(np.isfinite(m)) and np.all(np.isfinite(s)) and np.all(s > 0)):
            raise ValueError(f"ChannelStandardise: need equal-length finite means and stds > 0, got {mean!r}, {std!r}")
        self.mean, self.std = m.tolist(), s.tolist()

    def call(self, inputs: Any) -> Any:
        return (inputs - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="szmass")
class GroupedConv2D(keras.layers.Layer):
    """K independent s x s (s = ``kernel_size``) "valid" convolutions with ReLU: channels [k * c_in, (k + 1) * c_in)
    -> run k's ``filters`` output channels [k * filters, (k + 1) * filters). Kernel (s, s, c_in, K * filters),
    laid out as ``Conv2D(K * filters, groups=K)``'s.

    ``split=False``: one grouped convolution; ``split=True``: K convolutions on channel slices, each
    the very op of a single ``Conv2D``. Same weights, same result up to float rounding. Weights start
    at zero: :func:`load_run` sets each run's from its single network.
    """

    def __init__(self, filters: int, n_runs: int, *, split: bool, kernel_size: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.n_runs, self.split = int(filters), int(n_runs), bool(split)
        self.kernel_size = int(kernel_size)

    def build(self, input_shape: tuple[Any, ...]) -> None:
        c_in = int(input_shape[-1]) // self.n_runs
        k = self.kernel_size
        self.kernel = self.add_weight(shape=(k, k, c_in, self.n_runs * self.filters), initializer="zeros", name="kernel")
        self.bias = self.add_weight(shape=(self.n_runs * self.filters,), initializer="zeros", name="bias")

    def call(self, inputs: Any) -> Any:
        if self.split:
            c_in, f = self.kernel.shape[2], self.filters
            out = keras.ops.concatenate(
                [keras.ops.conv(inputs[..., k * c_in : (k + 1) * c_in], self.kernel[..., k * f : (k + 1) * f])
                 for k in range(self.n_runs)], axis=-1)  # fmt: skip
        else:
            out = keras.ops.conv(inputs, self.kernel)
        return keras.activations.relu(keras.ops.add(out, keras.ops.reshape(self.bias, (1, 1, 1, -1))))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        b, h, w, _ = input_shape
        shrink = self.kernel_size - 1
        return (b, None if h is None else h - shrink, None if w is None else w - shrink, self.n_runs * self.filters)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "n_runs": self.n_runs, "split": self.split,
                "kernel_size": self.kernel_size}  # fmt: skip


@keras.saving.register_keras_serializable(package="szmass")
class GroupedDense(keras.layers.Layer):
    """K independent dense layers: (batch, K, n_in) -> (batch, K, units) with kernels (K, n_in, units).

    Weights start at zero: :func:`load_run` sets each run's from its single network.
    """

    def __init__(self, units: int, activation: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape: tuple[Any, ...]) -> None:
        k, n_in = int(input_shape[1]), int(input_shape[2])
        self.kernel = self.add_weight(shape=(k, n_in, self.units), initializer="zeros", name="kernel")
        self.bias = self.add_weight(shape=(k, self.units), initializer="zeros", name="bias")

    def call(self, inputs: Any) -> Any:
        return self.activation(keras.ops.einsum("bki,kio->bko", inputs, self.kernel) + self.bias)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "activation": keras.activations.serialize(self.activation)}


@keras.saving.register_keras_serializable(package="szmass")
class GroupedDropout(keras.layers.Layer):
    """Dropout of (batch, K, n) with one seed generator per run: slice k is dropped exactly as
    ``keras.layers.Dropout(rate)`` with run k's generator state would drop a (batch, n) input.

    Every training call advances each generator by one; :meth:`rewind` takes that back for runs that
    had no maps in the step (their single network made no such call).
    """

    def __init__(self, rate: float, n_runs: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.n_runs = int(n_runs)
        self.generators = [keras.random.SeedGenerator(0, name=f"seed_generator_{k}") for k in range(self.n_runs)]

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.rate == 0:
            return inputs
        runs = [keras.random.dropout(inputs[:, k], self.rate, seed=g) for k, g in enumerate(self.generators)]
        return keras.ops.stack(runs, axis=1)

    def rewind(self, active: Any) -> None:
        """Undo the last draw of the runs whose ``active`` entry (float, 0 or 1) is 0."""
        for k, g in enumerate(self.generators):
            back = keras.ops.cast(1.0 - active[k], g.state.dtype)
            g.state.assign(g.state - keras.ops.stack([keras.ops.zeros_like(back), back]))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "n_runs": self.n_runs}


def build_ensemble(
    mean: Sequence[float],
    std: Sequence[float],
    *,
    map_shape: tuple[int, int] = (96, 96),
    split_conv: bool | None = None,
    architecture: Architecture = PAPER_ARCHITECTURE,
) -> keras.Model:
    """The vectorised network of K = len(mean) runs: raw maps (batch, py, px, K) -> log10 M [Msun] (batch, K).

    Weights are zero until :func:`load_run` fills them in; run k's standardisation is (mean[k], std[k]).
    ``split_conv`` (see :class:`GroupedConv2D`); None: split unless TensorFlow sees a GPU. Each run is
    the network :func:`szmass.model.build_cnn` builds for ``architecture`` (default: the paper's).
    """
    k = len(mean)
    arch = architecture
    arch.feature_side(min(map_shape))
    if split_conv is None:
        split_conv = not tf.config.list_physical_devices("GPU")
    raw = keras.Input(shape=(*map_shape, k), name="y_runs")
    h = ChannelStandardise(mean, std, name="standardise")(raw)
    for i, (name, filters) in enumerate(zip(arch.conv_names, arch.conv_filters, strict=True), start=1):
        h = GroupedConv2D(filters, k, split=split_conv, kernel_size=arch.kernel_size, name=name)(h)
        h = keras.layers.MaxPooling2D(2, name=f"pool{i}")(h)
    if arch.pooling == "flatten":  # run r's features in the single network's Flatten order (row, column, filter)
        side, filters = arch.feature_side(min(map_shape)), arch.conv_filters[-1]
        h = keras.layers.Reshape((side, side, k, filters), name="split_runs")(h)
        h = keras.layers.Permute((3, 1, 2, 4), name="runs_first")(h)
        h = keras.layers.Reshape((k, side * side * filters), name="runs")(h)
    else:  # one feature per channel; run r's are channels r * filters ... (r + 1) * filters - 1
        for layer in pooling_layers(arch, map_shape):
            h = layer(h)
        h = keras.layers.Reshape((k, arch.conv_filters[-1]), name="runs")(h)
    for i, (name, units) in enumerate(zip(arch.dense_names[:-1], arch.dense_units, strict=True)):
        if i < arch.dense_layers:
            h = GroupedDropout(arch.dropout, k, name=arch.dropout_names[i])(h)
        h = GroupedDense(units, "relu", name=name)(h)
    h = GroupedDense(1, None, name=OUTPUT_LAYER)(h)
    out = keras.layers.Reshape((k,), name="log10_m500_msun")(h)
    return keras.Model(raw, out, name="deepplanck_ensemble")


def _conv_slice(run: int, n_out: int) -> slice:
    return slice(run * n_out, (run + 1) * n_out)


def _layers(ensemble: keras.Model, cls: type[keras.layers.Layer]) -> list[keras.layers.Layer]:
    """The ensemble's layers of class ``cls``, in order (their names are those of the single network's)."""
    return [layer for layer in ensemble.layers if isinstance(layer, cls)]


def load_run(ensemble: keras.Model, run: int, cnn: keras.Model) -> None:
    """Copy the single network ``cnn`` (:func:`szmass.model.build_cnn`) into run ``run`` of ``ensemble``,
    weights and dropout generator states. ValueError if their layers do not match."""
    kinds = ((GroupedConv2D, keras.layers.Conv2D), (keras.layers.DepthwiseConv2D, keras.layers.DepthwiseConv2D),
             (GroupedDense, keras.layers.Dense), (GroupedDropout, keras.layers.Dropout))
    for grouped, single in kinds:
        names, theirs = [la.name for la in _layers(ensemble, grouped)], [la.name for la in cnn.layers if isinstance(la, single)]
        if names != theirs:
            raise ValueError(f"load_run: the ensemble's {single.__name__} layers {names} differ from the network's {theirs}")
    for dst in _layers(ensemble, GroupedConv2D):
        src = cnn.get_layer(dst.name)
        s = _conv_slice(run, src.filters)
        dst.kernel.assign(keras.ops.slice_update(dst.kernel, (0, 0, 0, s.start), src.kernel))
        dst.bias.assign(keras.ops.slice_update(dst.bias, (s.start,), src.bias))
    for dst in _layers(ensemble, keras.layers.DepthwiseConv2D):  # the weighted pool: one kernel slice per run
        src = cnn.get_layer(dst.name)
        s = _conv_slice(run, src.kernel.shape[2])
        dst.kernel.assign(keras.ops.slice_update(dst.kernel, (0, 0, s.start, 0), src.kernel))
    for dst in _layers(ensemble, GroupedDense):
        src = cnn.get_layer(dst.name)
        dst.kernel.assign(keras.ops.slice_update(dst.kernel, (run, 0, 0), src.kernel[None]))
        dst.bias.assign(keras.ops.slice_update(dst.bias, (run, 0), src.bias[None]))
    for dst in _layers(ensemble, GroupedDropout):
        dst.generators[run].state.assign(cnn.get_layer(dst.name).seed_generator.state)


def run_weights(ensemble: keras.Model, run: int) -> list[NDArray[np.float32]]:
    """Run ``run``'s weights in the order of ``build_cnn(...).get_weights()``."""
    out: list[NDArray[np.float32]] = []
    for layer in _layers(ensemble, GroupedConv2D):
        s = _conv_slice(run, layer.filters)
        out += [layer.kernel.numpy()[..., s], layer.bias.numpy()[s]]
    for layer in _layers(ensemble, keras.layers.DepthwiseConv2D):
        s = _conv_slice(run, layer.kernel.shape[2] // ensemble.output_shape[-1])
        out.append(layer.kernel.numpy()[:, :, s])
    for layer in _layers(ensemble, GroupedDense):
        out += [layer.kernel.numpy()[run], layer.bias.numpy()[run]]
    return out


def _repeat_column(v: tf.Tensor, repeats: int) -> tf.Tensor:
    return tf.repeat(v, repeats)[:, None]


def _spread(ensemble: keras.Model) -> list[Callable[[tf.Tensor], tf.Tensor]]:
    """Per trainable variable, a map from a per-run vector (K,) to a tensor that broadcasts against it."""
    spread: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {}
    for layer in _layers(ensemble, GroupedConv2D):
        for var in (layer.kernel, layer.bias):
            spread[var.path] = functools.partial(tf.repeat, repeats=layer.filters)
    runs = ensemble.output_shape[-1]
    for layer in _layers(ensemble, keras.layers.DepthwiseConv2D):  # kernel (py, px, K * filters, 1)
        filters = layer.kernel.shape[2] // runs
        spread[layer.kernel.path] = functools.partial(_repeat_column, repeats=filters)
    for layer in _layers(ensemble, GroupedDense):
        spread[layer.kernel.path] = lambda v: v[:, None, None]
        spread[layer.bias.path] = lambda v: v[:, None]
    return [spread[var.path] for var in ensemble.trainable_variables]


class PerRunAdam:
    """Adam (Keras's update, step for step) on the ensemble's variables with a step count per run.

    A run that had no maps in a step keeps its weights, moments and step count, as if the step had
    not happened to it, which is what its single run sees.
    """

    def __init__(self, ensemble: keras.Model, n_runs: int, learning_rate: float) -> None:
        self.variables = list(ensemble.trainable_variables)
        self.spread = _spread(ensemble)
        self.learning_rate = tf.Variable(tf.fill([n_runs], learning_rate), trainable=False, name="adam_learning_rates")
        """Each run's learning rate (K,), set before each epoch."""
        self.steps = tf.Variable(tf.zeros(n_runs, tf.float32), trainable=False, name="adam_steps")
        self.m = [tf.Variable(tf.zeros_like(v.value), trainable=False) for v in self.variables]
        self.v = [tf.Variable(tf.zeros_like(v.value), trainable=False) for v in self.variables]

    def state(self) -> list[tf.Variable]:
        """The optimizer's variables (step counts, first and second moments), for checkpoints."""
        return [self.steps, *self.m, *self.v]

    def apply(self, grads: Sequence[tf.Tensor], active: tf.Tensor) -> None:
        """One update; ``active`` (K,) is 1 for the runs that had maps in the step, else 0."""
        step = self.steps + active
        b1_power = tf.pow(tf.constant(ADAM_BETA_1, tf.float32), step)
        b2_power = tf.pow(tf.constant(ADAM_BETA_2, tf.float32), step)
        alpha = tf.where(active > 0, self.learning_rate * tf.sqrt(1 - b2_power) / (1 - b1_power), 0.0)
        for var, g, m, v, spread in zip(self.variables, grads, self.m, self.v, self.spread, strict=True):
            on = spread(active)
            m.assign_add((g - m) * (1 - ADAM_BETA_1) * on)
            v.assign_add((tf.square(g) - v) * (1 - ADAM_BETA_2) * on)
            var.assign_sub(m * spread(alpha) / (tf.sqrt(v) + ADAM_EPSILON))
        self.steps.assign(step)


def stacked_batches(
    source: MapSource,
    target: NDArray[np.float32],
    orders: Sequence[NDArray[np.int64]],
    batch_size: int,
    codes: Sequence[NDArray[np.int8]] | None = None,
    weights: Sequence[NDArray[np.float32] | None] | None = None,
) -> Iterator[tuple[NDArray[np.float32], ...]]:
    """Batches of K runs side by side: (maps (B, K, py, px), targets (B, K), weights (B, K), active (K,)).
    ``codes[k]``: the symmetry of each map of ``orders[k]`` (:func:`szmass.train.dihedral`; None: none);
    ``weights[k]``: run k's loss weight of every map (:func:`szmass.train.mass_weights`; None: 1).

    Step s holds rows s*B .. s*B+B-1 of each run's ``orders[k]``; rows past a run's end are zero with
    weight 0, and ``active[k]`` is 0 once run k has no rows left. The maps go to the model's layout
    (B, py, px, K) on the device (:func:`make_steps`), which spares the host a copy per batch.
    """
    n_runs = len(orders)
    n_steps = max(-(-len(o) // batch_size) for o in orders)
    for s in range(n_steps):
        idx = np.full((batch_size, n_runs), -1, dtype=np.int64)
        turn = np.zeros((batch_size, n_runs), dtype=np.int8)
        for k, order in enumerate(orders):
            rows = slice(s * batch_size, (s + 1) * batch_size)
            part = order[rows]
            idx[: len(part), k] = part
            if codes is not None:
                turn[: len(part), k] = codes[k][rows]
        valid = idx >= 0
        maps = np.zeros((batch_size, n_runs, *source.map_shape), dtype=np.float32)
        maps[valid] = source.take(idx[valid]) if codes is None else dihedral(source.take(idx[valid]), turn[valid])
        w = valid.astype(np.float32)
        for k, run_weights in enumerate(weights or ()):
            if run_weights is not None:
                w[:, k] = np.where(valid[:, k], run_weights[np.maximum(idx[:, k], 0)], 0)
        yield (
            maps,
            np.where(valid, target[np.maximum(idx, 0)], 0).astype(np.float32),
            w,
            np.asarray(valid.any(axis=0), dtype=np.float32),
        )


def stacked_dataset(
    source: MapSource,
    target: NDArray[np.float32],
    orders: Sequence[NDArray[np.int64]],
    batch_size: int,
    codes: Sequence[NDArray[np.int8]] | None = None,
    weights: Sequence[NDArray[np.float32] | None] | None = None,
) -> tf.data.Dataset:
    """:func:`stacked_batches` as a prefetched ``tf.data`` pipeline of fixed-shape batches."""
    k = len(orders)
    sig = (
        tf.TensorSpec((batch_size, k, *source.map_shape), tf.float32),
        tf.TensorSpec((batch_size, k), tf.float32),
        tf.TensorSpec((batch_size, k), tf.float32),
        tf.TensorSpec((k,), tf.float32),
    )
    data = tf.data.Dataset.from_generator(lambda: stacked_batches(source, target, orders, batch_size, codes, weights),
                                          output_signature=sig)  # fmt: skip
    return data.prefetch(PREFETCH_BATCHES)


def make_steps(
    ensemble: keras.Model, adam: PerRunAdam, *, jit_compile: bool = False
) -> tuple[Callable[..., tuple[tf.Tensor, tf.Tensor]], Callable[..., tuple[tf.Tensor, tf.Tensor]]]:
    """The compiled training and evaluation steps of an ensemble, on batches of :func:`stacked_batches`.

    ``train_step(x, t, w, active)``, maps ``x`` as (batch, K, py, px): one Adam update of every active
    run on the sum over runs of each run's MSE of log10 M over its rows (the squared errors weighted by ``w``,
    summed and divided by the number of rows, those of weight > 0, as Keras's loss with sample weights); returns
    per run the sum of weighted squared errors [dex^2] and the number of rows. ``eval_step(x, t, w)``: the same
    sums in inference mode.
    """
    dropouts = _layers(ensemble, GroupedDropout)

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def train_step(x: tf.Tensor, t: tf.Tensor, w: tf.Tensor, active: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            p = tf.cast(ensemble(tf.transpose(x, (0, 2, 3, 1)), training=True), tf.float32)
            count = tf.reduce_sum(tf.cast(w > 0, tf.float32), axis=0)
            per_run = tf.reduce_sum(w * tf.square(p - t), axis=0) / tf.maximum(count, 1.0)
            total = tf.reduce_sum(per_run)
        adam.apply(tape.gradient(total, adam.variables), active)
        for layer in dropouts:
            layer.rewind(active)
        return per_run * count, count

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def eval_step(x: tf.Tensor, t: tf.Tensor, w: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        p = tf.cast(ensemble(tf.transpose(x, (0, 2, 3, 1)), training=False), tf.float32)
        return tf.reduce_sum(w * tf.square(p - t), axis=0), tf.reduce_sum(tf.cast(w > 0, tf.float32), axis=0)

    return train_step, eval_step


@dataclass
class _Best:
    """Run's best epoch so far (1-based, 0: none), its validation loss and weights."""

    epoch: int = 0
    val_loss: float = np.inf
    weights: list[NDArray[np.float32]] | None = None


def train_ensemble(
    ds: xr.Dataset,
    *,
    out_dirs: Sequence[str | os.PathLike[str]],
    seeds: Sequence[int],
    test_seed: int,
    epochs: int = 200,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    identity: IdentityKey = "halo",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    init_output_bias: bool = True,
    deterministic: bool = True,
    jit_compile: bool = False,
    split_conv: bool | None = None,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    epoch_hook: Callable[[int], None] | None = None,
    architecture: Architecture = PAPER_ARCHITECTURE,
    test_identities: Collection[str] | None = None,
    target_mass: str = "M500",
    patience: int | None = None,
    augment: bool = False,
    lr_decay_patience: int | None = None,
    lr_decay_factor: float = DEFAULT_LR_DECAY_FACTOR,
    sample_weights: str = "none",
    start_from_epoch: int = 0,
) -> list[RunResult]:
    """Train the runs ``seeds`` (one per ``out_dirs`` entry) of the bin ``ds`` at once; see the module docs.

    Same arguments (``architecture``, ``test_identities``, ``target_mass``, ``patience``, ``augment``, ``lr_decay_*``,
    ``sample_weights``, ``start_from_epoch`` included: each run's learning rate follows its own history, its weights
    its own training maps) and outputs as
    :func:`szmass.train.train_run` per run (a run whose patience is spent keeps its best weights and its history
    ends there, as alone; the ensemble stops when every run's is). ``epoch_hook(epoch)`` (0-based)
    is called after each epoch's training and validation, before its checkpoint. ``jit_compile``
    compiles the training step with XLA (on a GPU, with ``deterministic=False`` for speed);
    ``split_conv`` chooses the convolutions (:func:`build_ensemble`). ``checkpoint_dir``: where the
    per-epoch checkpoint file goes (default: a directory inside ``out_dirs[0]``, deleted at the end); of a
    directory given here only that file is deleted.
    """
    if len(out_dirs) != len(seeds) or not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"need one out_dir per seed and distinct seeds; got {len(out_dirs)} dirs, seeds {list(seeds)}")
    if any(not 0 <= s < SEED_BOUND for s in seeds):
        raise ValueError(f"seeds must be in [0, {SEED_BOUND}), got {list(seeds)}")
    check_settings(epochs, batch_size, learning_rate, deterministic=deterministic, jit_compile=jit_compile,
                   patience=patience, lr_decay_patience=lr_decay_patience, lr_decay_factor=lr_decay_factor,
                   start_from_epoch=start_from_epoch)  # fmt: skip
    n_runs = len(seeds)
    source = MapSource(ds, max_memory_bytes=max_memory_bytes)
    log_m = log10_mass(ds, target_mass)
    target = log_m.astype(np.float32)
    splits: list[Split] = [
        draw_split(ds, seed=s, test_seed=test_seed, identity=identity, fractions=fractions, test_identities=test_identities)
        for s in seeds
    ]
    weights = [mass_weights(log_m, sp.train, sample_weights) for sp in splits]
    configure_determinism(seeds[0], deterministic=deterministic)
    moments = [pixel_moments(source, sp.train) for sp in splits]
    means, stds = [m for m, _ in moments], [s for _, s in moments]

    cnns = []
    ensemble = build_ensemble(means, stds, map_shape=source.map_shape, split_conv=split_conv, architecture=architecture)
    for k, (seed, sp) in enumerate(zip(seeds, splits, strict=True)):
        cnn = build_cnn(input_shape=(*source.map_shape, 1), seed=seed, architecture=architecture)
        if init_output_bias:
            cnn.get_layer(OUTPUT_LAYER).bias.assign([float(np.mean(log_m[sp.train]))])
        load_run(ensemble, k, cnn)
        cnns.append(cnn)
    adam = PerRunAdam(ensemble, n_runs, learning_rate)

    train_step, eval_step = make_steps(ensemble, adam, jit_compile=jit_compile)

    def mean_loss(step: Callable[..., tuple[tf.Tensor, tf.Tensor]], data: tf.data.Dataset, train: bool) -> NDArray[np.float64]:
        sse, n = np.zeros(n_runs), np.zeros(n_runs)
        for x, t, w, active in data:
            s, c = step(x, t, w, active) if train else step(x, t, w)
            sse += s.numpy()
            n += c.numpy()
        return sse / np.maximum(n, 1)

    fingerprint = {
        "seeds": list(map(int, seeds)), "test_seed": test_seed, "batch_size": batch_size,
        "learning_rate": learning_rate, "identity": identity, "fractions": list(map(float, fractions)),
        "n_maps": source.n_maps, "map_shape": list(source.map_shape), "splits": [sp.digest() for sp in splits],
        "mean": means, "std": stds, "init_output_bias": init_output_bias, "architecture": architecture.as_dict(),
        "target_mass": target_mass, "augment": augment, "lr_decay": [lr_decay_patience, lr_decay_factor],
        "sample_weights": sample_weights, "start_from_epoch": start_from_epoch,
    }  # fmt: skip
    ckpt_path = Path(checkpoint_dir if checkpoint_dir is not None else Path(out_dirs[0]) / CHECKPOINT_DIR) / CHECKPOINT_FILE
    history = np.zeros((0, n_runs, 3))
    best = [_Best() for _ in seeds]
    restored = load_checkpoint(ckpt_path, fingerprint)
    if restored is not None:
        arrays, meta = restored
        assign_all(ensemble.variables, unnumbered(arrays, "model"), "model")
        assign_all(adam.state(), unnumbered(arrays, "optimizer"), "optimizer")
        history = arrays["history"]
        best = [_Best(e, v, unnumbered(arrays, f"best{k}") or None)
                for k, (e, v) in enumerate(zip(meta["best_epoch"], meta["best_val_loss"], strict=True))]  # fmt: skip
        log.info("ensemble of seeds %s: resumed from %s after epoch %d", list(seeds), ckpt_path, len(history))
    resumed = len(history)

    val_data = stacked_dataset(source, target, [sp.val for sp in splits], EVAL_BATCH_SIZE, weights=weights)
    each_epoch = progress(range(resumed, epochs), total=epochs, initial=resumed, desc=f"seeds {list(seeds)}: epochs")
    for epoch in each_epoch:
        running = [not patience_spent(epoch, b.epoch, patience, start_from_epoch) for b in best]
        if not any(running):
            log.info("ensemble of seeds %s: every run stopped early after epoch %d", list(seeds), epoch)
            break
        adam.learning_rate.assign([plateau_learning_rate(history[:, k, 2], learning_rate, lr_decay_patience, lr_decay_factor)
                                   for k in range(n_runs)])  # fmt: skip
        orders = [epoch_order(seed, epoch, sp.train) for seed, sp in zip(seeds, splits, strict=True)]
        codes = [augment_codes(seed, epoch, len(o)) for seed, o in zip(seeds, orders, strict=True)] if augment else None
        loss = mean_loss(train_step, stacked_dataset(source, target, orders, batch_size, codes, weights), train=True)
        val_loss = mean_loss(eval_step, val_data, train=False)
        history = np.concatenate([history, np.stack([np.full(n_runs, epoch + 1.0), loss, val_loss], axis=1)[None]])
        better = (val_loss < [b.val_loss for b in best]) & running & monitored(epoch + 1, start_from_epoch)
        for k in map(int, np.flatnonzero(better)):
            best[k] = _Best(epoch + 1, float(val_loss[k]), run_weights(ensemble, k))
        if epoch_hook is not None:
            epoch_hook(epoch)
        arrays = {
            **numbered("model", [v.numpy() for v in ensemble.variables]),
            **numbered("optimizer", [v.numpy() for v in adam.state()]),
            "history": history,
        }
        for k, b in enumerate(best):
            arrays.update(numbered(f"best{k}", b.weights or []))
        meta = {"fingerprint": fingerprint, "best_epoch": [b.epoch for b in best], "best_val_loss": [b.val_loss for b in best]}
        save_checkpoint(ckpt_path, arrays, meta)
        log.info("ensemble epoch %d/%d: loss %s val_loss %s", epoch + 1, epochs, np.round(loss, 5), np.round(val_loss, 5))

    results = []
    for k, (seed, sp, cnn, b) in enumerate(zip(seeds, splits, cnns, best, strict=True)):
        if b.weights is None:
            raise FloatingPointError(f"seed {seed}: validation loss was never finite in {len(history)} epochs")
        cnn.set_weights(b.weights)
        out = Path(out_dirs[k])
        trained = len(history) if patience is None else min(len(history), max(b.epoch, start_from_epoch) + patience)
        write_run_outputs(out, with_standardisation(cnn, means[k], stds[k]), history[:trained, k], ds, source, sp,
                          target_mass)  # fmt: skip
        results.append(RunResult(
            out_dir=out, seed=int(seed), best_epoch=b.epoch, best_val_loss=b.val_loss, epochs=trained,
            resumed_epochs=resumed, mean=means[k], std=stds[k],
            n_maps={s: int(np.sum(sp.labels == s)) for s in SPLITS},
        ))  # fmt: skip
    if checkpoint_dir is None:
        shutil.rmtree(ckpt_path.parent, ignore_errors=True)  # the run's own checkpoint directory
    else:
        ckpt_path.unlink(missing_ok=True)  # the caller's directory and whatever else it holds stay
    return results
