"""The CNN's architecture as plain data (no TensorFlow, so the workflow can read it cheaply).

:class:`Architecture` spans the paper's hyperparameter scan (its supplement: 3 to 5 convolutional
layers, 1 or 2 dense layers, kernel size 1 to 3, 16 or 32 filters in the first layer, dropout 0.1 or
0.2); its defaults are the published network. How the scan's words map onto layers (our reading,
chosen so that the published network is one point of the grid):

* ``conv_layers`` blocks of (conv k x k, ReLU, "valid"; max-pool 2 x 2), the filters doubling from
  ``filters`` (16: 16, 32, 64, 128, 256);
* ``dense_layers`` blocks of (dropout, dense, ReLU) after the global average pool, 200 units in the
  first and half as many in each next one (200, 100, 50, ...);
* then the fixed head: dense 20 (ReLU) and dense 1 (linear, log10 of a mass).

Between the convolutions and the dense blocks, ``pooling``: the paper's global average pool (each
feature's mean over the map: translation-invariant, so a second cluster anywhere in the 160' field adds to
the features as the centred one does), or ``flatten``, which keeps where each feature is (the cluster is at
the centre of every map) at the cost of dense weights per position (1,325,637 parameters instead of 58,437
for the published network on 96 x 96 maps), or ``weighted``: each feature's sum over the map with a learned
weight per position and filter (a depthwise convolution whose kernel spans the last feature map, no bias;
6,400 more parameters on 96 x 96 maps). Its weights start at the global average's 1 / side**2, so a weighted
network starts as the global-average network of the same seed and learns where each feature counts.
Measured in docs/validation.md.

Another reading, N dense layers of 200 units followed by fixed layers of 100 and 20, also holds the
published network (N = 1), but not its dropout: the published network has a dropout before its 200 and
before its 100 units and none before its 20, so its dense layers come as two (dropout, dense) blocks and a
plain head. Counting those blocks (2 for the published network) keeps every grid point built the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from szmass.settings import known_keys

MAP_SHAPE: tuple[int, int, int] = (96, 96, 1)
"""Input of the network: 96 x 96 pixels of 1.7 arcmin, one channel (Compton y)."""

DROPOUT_RATE = 0.1
CONV_FILTERS = (16, 32, 64)
DENSE_UNITS = (200, 100, 20)
"""The published network: filters of its convolutions, units of its hidden dense layers."""
FIRST_DENSE_UNITS = 200
"""Units of the first dense block; each further block has half as many as the one before."""
HEAD_UNITS = 20
"""Units of the last hidden dense layer (no dropout before it), ahead of the output."""
POOLINGS = ("global_average", "flatten", "weighted")
"""The layers that may join the convolutions to the dense blocks (the first: the paper's)."""
OUTPUT_LAYER = "log10_mass"
"""Name of the output layer (one unit, linear: log10 M500)."""

_NAME = re.compile(rf"^conv(\d+)_dense(\d+)_kernel(\d+)_filters(\d+)_dropout([0-9.]+?)(?:_({'|'.join(POOLINGS[1:])}))?$")


@dataclass(frozen=True)
class Architecture:
    """One network of the hyperparameter scan (module docs); the defaults are the paper's network.

    ``conv_layers`` convolution + pooling blocks with ``kernel_size`` x ``kernel_size`` kernels and
    ``filters`` x 2**i filters in block i; ``dense_layers`` dropout + dense blocks with dropout rate
    ``dropout`` (a fraction); then dense 20 and dense 1. ``pooling`` (:data:`POOLINGS`) joins the
    convolutions to the dense blocks.
    """

    conv_layers: int = 3
    dense_layers: int = 2
    kernel_size: int = 3
    filters: int = 16
    dropout: float = DROPOUT_RATE
    pooling: str = POOLINGS[0]

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "pooling":
                if value not in POOLINGS:
                    raise ValueError(f"architecture: 'pooling' must be one of {', '.join(POOLINGS)}, got {value!r}")
            elif f.name == "dropout":
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
                    raise ValueError(f"architecture: 'dropout' must be a fraction in [0, 1), got {value!r}")
                object.__setattr__(self, "dropout", float(value))
            elif isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"architecture: {f.name!r} must be an integer >= 1, got {value!r}")
            else:
                object.__setattr__(self, f.name, int(value))
        if FIRST_DENSE_UNITS >> (self.dense_layers - 1) < HEAD_UNITS:
            raise ValueError(f"architecture: 'dense_layers' = {self.dense_layers} halves the dense blocks below the "
                             f"head's {HEAD_UNITS} units; use at most {self.max_dense_layers()}")  # fmt: skip

    @staticmethod
    def max_dense_layers() -> int:
        """Most dense blocks whose halving widths stay >= the head's units (200, 100, 50, 25: 4)."""
        return int(np.floor(np.log2(FIRST_DENSE_UNITS / HEAD_UNITS))) + 1

    @property
    def conv_filters(self) -> tuple[int, ...]:
        """Filters of each convolution, doubling from ``filters``."""
        return tuple(self.filters << i for i in range(self.conv_layers))

    @property
    def dense_units(self) -> tuple[int, ...]:
        """Units of every hidden dense layer: the dropout + dense blocks, then the head's 20."""
        return (*(FIRST_DENSE_UNITS >> i for i in range(self.dense_layers)), HEAD_UNITS)

    @property
    def conv_names(self) -> tuple[str, ...]:
        """Layer names of the convolutions (``conv1``, ...); pooling layers are ``pool1``, ..."""
        return tuple(f"conv{i}" for i in range(1, self.conv_layers + 1))

    @property
    def dense_names(self) -> tuple[str, ...]:
        """Layer names of the dense layers, hidden ones (``dense1``, ...) then the output."""
        return (*(f"dense{i}" for i in range(1, self.dense_layers + 2)), OUTPUT_LAYER)

    @property
    def dropout_names(self) -> tuple[str, ...]:
        """Layer names of the dropout layers (``dropout1``, ...), one ahead of each dense block."""
        return tuple(f"dropout{i}" for i in range(1, self.dense_layers + 1))

    @property
    def name(self) -> str:
        """A path-safe label, e.g. ``conv3_dense2_kernel3_filters16_dropout0.1`` (:meth:`from_name` reads it), with
        ``_flatten`` appended for that pooling."""
        suffix = "" if self.pooling == POOLINGS[0] else f"_{self.pooling}"
        return (f"conv{self.conv_layers}_dense{self.dense_layers}_kernel{self.kernel_size}_filters{self.filters}"
                f"_dropout{self.dropout:g}{suffix}")  # fmt: skip

    @classmethod
    def from_name(cls, name: str) -> Architecture:
        """The architecture of a :attr:`name` label; ValueError for anything else."""
        m = _NAME.match(name)
        if m is None:
            raise ValueError(f"architecture name {name!r}: expected conv<N>_dense<N>_kernel<N>_filters<N>_dropout<rate>"
                             "[_flatten]")  # fmt: skip
        c, d, k, f = (int(g) for g in m.groups()[:4])
        return cls(conv_layers=c, dense_layers=d, kernel_size=k, filters=f, dropout=float(m.group(5)),
                   pooling=m.group(6) or POOLINGS[0])  # fmt: skip

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Architecture:
        """From a config mapping (missing keys take the paper's values); ValueError naming an unknown key."""
        return cls(**known_keys(d, cls, "architecture"))

    def as_dict(self) -> dict[str, int | float | str]:
        """The fields as a plain dict (for configs, params and tables)."""
        return asdict(self)

    def n_parameters(self, channels: int = MAP_SHAPE[2], side: int = MAP_SHAPE[0]) -> int:
        """Trainable parameters (kernels and biases) for ``side`` x ``side`` inputs of ``channels`` channels (58,437
        for the paper's network, whatever the side: the global average pool ends the convolutions; the weighted
        pool adds one weight per position of the last feature map and filter)."""
        n, c_in = 0, int(channels)
        for c_out in self.conv_filters:
            n += self.kernel_size**2 * c_in * c_out + c_out
            c_in = c_out
        c_in = self.pooled_features(side)
        n += self.pooling_parameters(side)
        for units in (*self.dense_units, 1):
            n += c_in * units + units
            c_in = units
        return n

    def pooling_parameters(self, side: int) -> int:
        """Trainable parameters of the pool for square maps of ``side`` pixels: one weight per position of the
        last feature map and filter for the weighted pool, none for the others."""
        if self.pooling != "weighted":
            return 0
        return self.feature_side(side) ** 2 * self.conv_filters[-1]

    def pooled_features(self, side: int) -> int:
        """Inputs of the first dense layer for square maps of ``side`` pixels: the last convolution's filters
        (global average and weighted pools), times the last feature map's pixels (flatten)."""
        n = self.conv_filters[-1]
        return n * self.feature_side(side) ** 2 if self.pooling == "flatten" else n

    def feature_side(self, side: int) -> int:
        """Side [pixels] of the last feature map for square inputs of ``side`` pixels; ValueError if the
        convolutions and pools shrink it below one pixel."""
        s = int(side)
        for i in range(self.conv_layers):
            s = (s - self.kernel_size + 1) // 2
            if s < 1:
                raise ValueError(f"architecture {self.name}: {side} x {side} pixel inputs shrink to nothing after "
                                 f"convolution block {i + 1}; use fewer convolutional layers or a smaller kernel")  # fmt: skip
        return s


PAPER_ARCHITECTURE = Architecture()
"""The published network (de Andres et al. 2022): 58,437 parameters on 96 x 96 x 1 inputs."""
