"""Config sections as dataclasses: the common checks that a mapping names only known fields and every
required key; the numba cache of a cluster job.

The defaults of the workflow's keys live in one place, ``workflow/schemas/config.schema.yaml``, which
Snakemake's ``validate`` fills into the config; the library's ``from_sections`` constructors take a
validated config's sections and require every key (:func:`require_keys`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import fields
from typing import Any


def known_keys(d: Mapping[str, Any] | None, cls: type, section: str) -> dict[str, Any]:
    """``dict(d)``, after checking that every key is a field of the dataclass ``cls``.

    Raises ValueError naming the config ``section``, the unknown keys and the expected ones.
    """
    d = dict(d or {})
    names = sorted(f.name for f in fields(cls))
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(f"{section}: unknown key(s) {unknown}; expected some of {names}")
    return d


class MissingKeyError(KeyError):
    """A config section lacks keys that a config validated by the workflow's schema always has."""

    def __str__(self) -> str:
        return str(self.args[0])


def require_keys(d: Mapping[str, Any], keys: Iterable[str], section: str) -> None:
    """Raise :class:`MissingKeyError` naming the config ``section`` and each of ``keys`` that ``d`` lacks."""
    missing = [k for k in keys if k not in d]
    if missing:
        names = ", ".join(f"{section}.{k}" for k in missing)
        raise MissingKeyError(
            f"{section}: missing key(s) {names}; pass the section of a config validated by "
            "workflow/schemas/config.schema.yaml (its validation fills in every default)"
        )


def exact_keys(d: Mapping[str, Any] | None, cls: type, section: str) -> dict[str, Any]:
    """``dict(d)`` holding every field of the dataclass ``cls`` and nothing else: :func:`known_keys`, then
    :func:`require_keys` for the fields."""
    out = known_keys(d, cls, section)
    require_keys(out, [f.name for f in fields(cls)], section)
    return out


def use_private_numba_cache(environ: MutableMapping[str, str]) -> str:
    """Point ``NUMBA_CACHE_DIR`` of ``environ`` at a folder private to one cluster job, unless it is set.

    The folder is ``<tmp>/szmass-numba-<job id>``: ``<tmp>`` the job's temporary folder (``TMPDIR``,
    node-local on most clusters), the job id ``SLURM_JOB_ID`` (else the process id). Jobs that compile
    numba functions into one shared cache at once (the default cache sits next to the installed package,
    on a shared file system) race on its index files; a private cache costs each job one compilation
    (seconds) instead. Returns the cache folder in use. Must run before numba is imported.
    """
    job = environ.get("SLURM_JOB_ID") or str(os.getpid())
    default = os.path.join(environ.get("TMPDIR") or tempfile.gettempdir(), f"szmass-numba-{job}")
    return environ.setdefault("NUMBA_CACHE_DIR", default)


def xla_determinism_problem(*, jit_compile: bool, deterministic: bool) -> str | None:
    """Why ``jit_compile`` cannot go with ``deterministic`` (TensorFlow has no deterministic XLA max-pool
    gradient); None when the pair is allowed. Checked at workflow start and by the trainers."""
    if jit_compile and deterministic:
        return "jit_compile: true needs deterministic: false (TensorFlow has no deterministic XLA max-pool gradient)"
    return None
