"""The CNN of de Andres et al. 2022 ("DeepPlanck"), its variants for the hyperparameter scan, and its raw-map wrapper.

`build_cnn` is the paper's network on STANDARDISED y-maps; `with_standardisation` puts the
input standardisation (x - mean) / std and an output offset around it, so that a saved
``.keras`` model predicts log10 M500 [Msun] straight from raw Compton-y maps. Only standard Keras
layers are used, so ``keras.saving.load_model`` reads such a file without szmass installed.

Layer choices that the published weights fix (DeepPlanck release, ``BaseModel``): 3 x 3
convolutions with "valid" padding and ReLU, 2 x 2 max pooling, so 96 -> 94 -> 47 -> 45 -> 22
-> 20 -> 10 pixels before the global average pool.

The network of each :class:`szmass.architecture.Architecture` (the paper's by default).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from szmass.architecture import (  # noqa: F401  (re-exported: szmass.model is where users look)
    CONV_FILTERS,
    DENSE_UNITS,
    DROPOUT_RATE,
    FIRST_DENSE_UNITS,
    HEAD_UNITS,
    MAP_SHAPE,
    OUTPUT_LAYER,
    PAPER_ARCHITECTURE,
    Architecture,
)


def build_cnn(
    *,
    input_shape: tuple[int, int, int] = MAP_SHAPE,
    seed: int = 0,
    architecture: Architecture = PAPER_ARCHITECTURE,
    dtype: str | None = None,
) -> keras.Model:
    """Return the CNN, uncompiled: by default the paper's (58,437 trainable parameters for 96 x 96 x 1 inputs).

    conv 3x3x16, max-pool 2, conv 3x3x32, max-pool 2, conv 3x3x64, max-pool 2, global average
    pool (or another: ``architecture.pooling``), dropout 0.1, dense 200, dropout 0.1, dense 100, dense 20, dense 1; ReLU on the hidden
    layers, linear output (log10 of a mass). Inputs are standardised y-maps (dimensionless).
    ``architecture`` changes the depth, kernels, filters and dropout (module docs).
    ``seed`` fixes the Glorot-uniform kernel initialisation and the dropout masks: each layer
    gets its own seed drawn from ``numpy.random.default_rng(seed)``, in layer order.
    ``dtype``: the Keras dtype policy of the hidden layers (default: the global policy), e.g. "mixed_float16"
    (float16 compute, float32 weights) for mixed-precision training on a GPU; the output layer of a mixed
    policy computes in float32, as log10 M (~14.5) needs more than float16's 3 significant digits.
    """
    arch = architecture
    arch.feature_side(min(input_shape[0], input_shape[1]))
    rng = np.random.default_rng(seed)

    def next_seed() -> int:
        return int(rng.integers(0, 2**31 - 1))

    def dense(units: int, activation: str | None, name: str, layer_dtype: str | None = dtype) -> keras.layers.Dense:
        init = keras.initializers.GlorotUniform(seed=next_seed())
        return keras.layers.Dense(units, activation=activation, kernel_initializer=init, name=name, dtype=layer_dtype)

    layers: list[keras.layers.Layer] = [keras.Input(shape=input_shape, name="y_standardised")]
    for i, (name, filters) in enumerate(zip(arch.conv_names, arch.conv_filters, strict=True), start=1):
        init = keras.initializers.GlorotUniform(seed=next_seed())
        layers += [keras.layers.Conv2D(filters, arch.kernel_size, activation="relu", kernel_initializer=init, name=name,
                                       dtype=dtype),
                   keras.layers.MaxPooling2D(2, name=f"pool{i}", dtype=dtype)]  # fmt: skip
    layers += pooling_layers(arch, input_shape[:2], dtype)
    hidden = zip(arch.dense_names[:-1], arch.dense_units, strict=True)
    for i, (name, units) in enumerate(hidden):
        if i < arch.dense_layers:
            layers.append(keras.layers.Dropout(arch.dropout, seed=next_seed(), name=arch.dropout_names[i], dtype=dtype))
        layers.append(dense(units, "relu", name))
    layers.append(dense(1, None, OUTPUT_LAYER, "float32" if dtype and dtype.startswith("mixed") else dtype))
    return keras.Sequential(layers, name="deepplanck_cnn")


def pooling_layers(arch: Architecture, map_shape: tuple[int, int], dtype: str | None = None) -> list[keras.layers.Layer]:
    """The layers joining the last feature map (of ``map_shape`` [pixels] inputs) to the dense blocks, the
    first named after ``arch.pooling``: a global average pool, a flatten, or (weighted) a bias-free
    depthwise convolution spanning the feature map, initialised to 1 / (its pixels), then a flatten."""
    if arch.pooling == "flatten":
        return [keras.layers.Flatten(name="flatten", dtype=dtype)]
    if arch.pooling == "global_average":
        return [keras.layers.GlobalAveragePooling2D(name="global_average", dtype=dtype)]
    side = (arch.feature_side(map_shape[0]), arch.feature_side(map_shape[1]))
    uniform = keras.initializers.Constant(1.0 / (side[0] * side[1]))
    return [keras.layers.DepthwiseConv2D(side, use_bias=False, depthwise_initializer=uniform, name="weighted",
                                         dtype=dtype),
            keras.layers.Flatten(name="weighted_features", dtype=dtype)]  # fmt: skip


STANDARDISE_LAYER = "standardise"
"""Name of the ``keras.layers.Rescaling`` of :func:`with_standardisation`: (y - mean) / std."""


def with_standardisation(
    cnn: keras.Model, mean: float, std: float, *, output_offset: float = 0.0, name: str = "log10_m500_msun"
) -> keras.Model:
    """Wrap ``cnn`` so that it takes RAW y-maps and returns log10 M500 [Msun].

    The wrapper standardises its input with ``mean`` and ``std`` (those of the training maps,
    Compton y) and adds ``output_offset`` [dex] to the network's output: 0 for a network trained
    on log10 M500 [Msun]; -log10(h) for one trained on log10 M500 [h^-1 Msun] such as the
    published weights. Layers are shared with ``cnn`` (no copy of the weights).

    The standardisation is a plain ``keras.layers.Rescaling`` layer named "standardise" (scale 1 / std,
    offset -mean / std), so a saved model loads with Keras alone, without importing szmass. Its constants
    are layer config (JSON floats, saved exactly), not weights. ``keras.layers.Normalization`` is not used:
    it divides by max(sqrt(variance), 1e-7), and y-map standard deviations (~1e-6) come close to that floor.
    """
    if not (np.isfinite(mean) and np.isfinite(std) and std > 0):
        raise ValueError(f"standardisation: need a finite mean and a finite std > 0, got mean={mean!r}, std={std!r}")
    raw = keras.Input(shape=cnn.input_shape[1:], name="y")
    standardise = keras.layers.Rescaling(scale=1.0 / float(std), offset=-float(mean) / float(std),
                                         name=STANDARDISE_LAYER)
    out = cnn(standardise(raw))
    if output_offset != 0.0:
        out = keras.layers.Rescaling(scale=1.0, offset=float(output_offset), name="to_msun")(out)
    return keras.Model(raw, out, name=name)


def input_moments(model: keras.Model) -> tuple[float, float]:
    """(mean, std) [Compton y] of the training maps' pixels, from the model's standardisation layer
    (scale 1 / std, offset -mean / std)."""
    layer = next((layer for layer in model.layers if layer.name == STANDARDISE_LAYER), None)
    if not isinstance(layer, keras.layers.Rescaling) or not float(layer.scale) > 0:
        raise ValueError(f"model {model.name!r}: no Rescaling layer {STANDARDISE_LAYER!r} with a scale > 0; expected "
                         "a full model standardising raw y-maps (szmass.model.with_standardisation)")
    std = 1.0 / float(layer.scale)
    return -float(layer.offset) * std, std


def average_models(models: Sequence[keras.Model], *, name: str = "mean_log10_mass") -> keras.Model:
    """One model whose output is the mean of the outputs of ``models`` (each a full model, raw y-map -> log10
    of a mass [Msun], e.g. the seeded runs of one redshift bin): the ``mean`` estimator of
    :func:`szmass.select.select_model`.

    Each member keeps its own standardisation. The composite exposes the first member's as its top-level
    "standardise" layer (so :func:`input_moments` reads it) and undoes it before the members, which costs
    float32 rounding only (~1e-7 of the map). Standard Keras layers (``Rescaling``, ``Average``), so the saved
    model loads without szmass. The members are renamed ``run0``, ``run1``, ... (their layers are shared).
    """
    if not models:
        raise ValueError("average_models: no models given")
    mean, std = input_moments(models[0])
    raw = keras.Input(shape=models[0].input_shape[1:], name="y")
    standardised = keras.layers.Rescaling(scale=1.0 / std, offset=-mean / std, name=STANDARDISE_LAYER)(raw)
    restored = keras.layers.Rescaling(scale=std, offset=mean, name="unstandardise")(standardised)
    outputs = []
    for k, member in enumerate(models):
        member.name = f"run{k}"
        outputs.append(member(restored))
    out = outputs[0] if len(outputs) == 1 else keras.layers.Average(name="mean")(outputs)
    return keras.Model(raw, out, name=name)
