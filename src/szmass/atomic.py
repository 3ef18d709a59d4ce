"""Write outputs atomically: to a temporary sibling path, renamed into place on success.

A failed job therefore leaves no partial file or store behind, and a rerun redoes exactly
what is missing (docs/architecture.md, Conventions). A process killed outright (SIGKILL, a scheduler's
time limit) cannot clean up: its temporary sibling (``.<name>.<random>.tmp``) stays, and the
next write of the same path removes it, so a resumed run ends with the files of an
uninterrupted one. One writer per path at a time, as Snakemake guarantees for its outputs.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_TEMP_NAME = re.compile(r"[a-z0-9_]{8}")
"""The random part of a ``tempfile.mkdtemp`` name (so ``.a.csv.x.<random>.tmp`` is not taken for a.csv's)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it to ``path``, on error delete it.

    Works for files and directories (e.g. zarr stores). An existing ``path`` is replaced.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):  # left by a killed writer
        if _TEMP_NAME.fullmatch(stale.name[len(final.name) + 2 : -4]):
            shutil.rmtree(stale, ignore_errors=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    tmp = tmpdir / final.name
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary path for {final}")
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        elif final.exists():
            final.unlink()
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
