"""Write outputs atomically: to a temporary sibling path, renamed into place on success.

A failed job therefore leaves no partial file or store behind, and a rerun redoes exactly
what is missing. A process killed outright (SIGKILL, a scheduler's time limit) cannot clean
up: its temporary sibling (``.<name>.<random>.tmp``) stays, and the next write of the same
path removes it, so a resumed run ends with the files of an uninterrupted one. One writer per
path at a time, as Snakemake guarantees for its outputs.

An output never destroys what it was not declared to replace: a file output refuses to take
the place of an existing directory, a directory output (``directory=True``, e.g. a zarr store)
that of an existing file, and neither replaces a device, FIFO or socket (``/dev/stdout``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

_TEMP_NAME = re.compile(r"[a-z0-9_]{8}")
"""The random part of a ``tempfile.mkdtemp`` name (so ``.a.csv.x.<random>.tmp`` is not taken for a.csv's)."""


def check_replaceable(path: str | os.PathLike[str], *, directory: bool = False) -> None:
    """Raise ``IsADirectoryError``/``FileExistsError`` naming ``path`` when an output there would destroy
    something of another kind: a directory for a file output, a file for a directory output (``directory``),
    or a device, FIFO or socket for either. Nothing existing, or a symbolic link (replaced, its target
    untouched), passes."""
    final = Path(path)
    if final.is_symlink() or not final.exists():
        return
    mode = final.stat().st_mode
    if stat.S_ISDIR(mode) and not directory:
        raise IsADirectoryError(
            f"{final}: is an existing directory; refusing to replace it with a file (give a file path)"
        )
    if stat.S_ISREG(mode) and directory:
        raise FileExistsError(f"{final}: is an existing file; refusing to replace it with a directory")
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise FileExistsError(
            f"{final}: is not a regular file or directory (a device, FIFO or socket); refusing to replace it"
        )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it to ``path``, on error delete it.

    ``directory``: the output is a directory (e.g. a zarr store), which replaces an existing directory
    at ``path``; otherwise it is a file, which replaces an existing file. The caller must write what it
    declares; anything else at ``path`` is refused (:func:`check_replaceable`) before the caller runs.
    """
    final = Path(path)
    check_replaceable(final, directory=directory)
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
        if tmp.is_dir() != directory:
            wrote, declared = ("a directory", "a file") if tmp.is_dir() else ("a file", "a directory")
            raise IsADirectoryError(
                f"{final}: the writer made {wrote} but declared {declared} (atomic_path(directory=...))"
            )
        check_replaceable(final, directory=directory)
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        elif final.exists() or final.is_symlink():
            final.unlink()
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
