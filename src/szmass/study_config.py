"""The studies' settings, checked when the workflow is parsed: each study's keys and their merge with the
``training`` section, the redshift-bin schemes of the binning study and the networks of the hyperparameter
scan. Light on purpose (no TensorFlow or matplotlib): the Snakefile and the config checks import it."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from szmass.architecture import Architecture
from szmass.settings import known_keys, require_keys
from szmass.zbins import check_edges

SCAN_GRID: dict[str, tuple[int | float | str, ...]] = {
    "conv_layers": (3, 4, 5),
    "dense_layers": (1, 2),
    "kernel_size": (1, 2, 3),
    "filters": (16, 32),
    "dropout": (0.1, 0.2),
    "pooling": ("global_average",),
}
"""The paper's hyperparameter scan: 3 x 2 x 3 x 2 x 2 = 72 architectures (the published one among them), all
with its global average pool (a grid may add ``pooling: [global_average, flatten, weighted]``)."""

STUDY_KEYS: dict[str, tuple[str, ...]] = {
    "zbins": ("enabled", "dataset", "models", "schemes"),
    "hyperparameters": ("enabled", "dataset", "models", "redshift_range", "grid", "architectures"),
    "learning_rates": ("enabled", "dataset", "models", "redshift_range", "rates"),
    "train_size": ("enabled", "dataset", "models", "redshift_range", "fractions"),
    "cross_model": ("enabled", "dataset", "models", "redshift_edges", "min_log10_m500"),
}
"""Each study's own settings (their defaults: the workflow's config schema, ``studies.<name>``).
``models: []`` means every map (the cross-model test: every gas model of the configured sims)."""
RUN_KEYS = ("seeds", "epochs", "selection_bins")
"""Settings a study takes from the ``training`` section unless it gives its own."""


def study_settings(name: str, studies: Mapping[str, Any], training: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of study ``name`` ("zbins", "hyperparameters", "learning_rates", "train_size", "cross_model")
    from the ``studies`` and ``training`` sections of a validated config: the :data:`RUN_KEYS` of ``training``,
    then ``studies.<name>`` (every key of :data:`STUDY_KEYS`, and the run keys it overrides).

    Raises ValueError naming an unknown study or key, :class:`szmass.settings.MissingKeyError` naming a
    missing one.
    """
    if name not in STUDY_KEYS:
        raise ValueError(f"studies: unknown study {name!r}; expected one of {sorted(STUDY_KEYS)}")
    require_keys(studies, [name], "studies")
    section = dict(studies[name])
    known = set(STUDY_KEYS[name]) | set(RUN_KEYS)
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"studies.{name}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    require_keys(section, STUDY_KEYS[name], f"studies.{name}")
    require_keys(training, RUN_KEYS, "training")
    return {k: training[k] for k in RUN_KEYS} | section


def check_schemes(schemes: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], ...]:
    """Bin-edge lists of a binning study, checked: each valid (:func:`szmass.zbins.check_edges`), their
    numbers of bins distinct (the number labels a scheme in paths and tables)."""
    out = tuple(check_edges(e) for e in schemes)
    counts = [len(e) - 1 for e in out]
    if not out or len(set(counts)) != len(counts):
        raise ValueError(f"redshift-bin schemes: need >= 1 scheme, each with its own number of bins; got {counts}")
    return out


def architecture_grid(grid: Mapping[str, Sequence[int | float | str]] | None = None) -> list[Architecture]:
    """Every combination of the values in ``grid`` (field -> values; a field left out takes all its values
    of the paper's scan, :data:`SCAN_GRID`), in field order: the first field varies slowest."""
    values = SCAN_GRID | known_keys(grid, Architecture, "hyperparameter grid")
    empty = [k for k, v in values.items() if len(v) == 0]
    if empty:
        raise ValueError(f"hyperparameter grid: field(s) {empty} list no value")
    names = [f.name for f in fields(Architecture)]
    return [Architecture(**dict(zip(names, combo, strict=True))) for combo in itertools.product(*(values[n] for n in names))]


def study_architectures(
    architectures: Sequence[Mapping[str, int | float | str]] | None = None,
    grid: Mapping[str, Sequence[int | float | str]] | None = None,
) -> list[Architecture]:
    """The networks of a scan: the explicit ``architectures`` (missing fields: the paper's) if given,
    else :func:`architecture_grid` of ``grid``. ValueError for a network listed twice."""
    archs = [Architecture.from_mapping(a) for a in architectures] if architectures else architecture_grid(grid)
    names = [a.name for a in archs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"hyperparameter scan: architecture(s) {twice} listed more than once")
    return archs
