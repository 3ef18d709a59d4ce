"""Config sections as dataclasses: the common check that a mapping names only known fields; the numba cache
of a cluster job."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, MutableMapping
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
