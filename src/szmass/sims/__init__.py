"""THE THREE HUNDRED simulation inputs: GADGET snapshots (HDF5, binary format 1 and 2) and AHF catalogues.

:func:`read_snapshot` finds the file(s) of a snapshot, detects their format and returns a
:class:`Snapshot` in physical units; :func:`write_snapshot` writes the same formats from arrays in
GADGET internal units (used by the synthetic generator, so the demo exercises the real readers).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Literal

import h5py
import numpy as np

from szmass.atomic import atomic_path
from szmass.sims.ahf import AhfError, read_ahf_halos, require_columns, write_ahf_halos
from szmass.sims.gadget_binary import BinaryFile, write_binary
from szmass.sims.gadget_hdf5 import Hdf5File, write_hdf5
from szmass.sims.snapshot import (
    GadgetHeader,
    ParticleFile,
    Snapshot,
    SnapshotError,
    SnapshotHeader,
    load_snapshot,
    split_into_files,
)

__all__ = [
    "AhfError", "GadgetHeader", "Snapshot", "SnapshotError", "SnapshotHeader", "read_ahf_halos", "read_snapshot",
    "read_snapshot_header", "require_columns", "write_ahf_halos", "write_snapshot",
]

SnapshotFormat = Literal["hdf5", "gadget1", "gadget2"]
_INDEXED = re.compile(r"^(?P<base>.+)\.(?P<index>\d+)(?P<suffix>\.hdf5|\.h5)?$")
"""A file of a multi-file snapshot: ``snap_128.3`` or ``snap_128.3.hdf5``."""


def _open(path: Path) -> ParticleFile:
    """Open one snapshot file, HDF5 if it has the HDF5 signature, else GADGET binary."""
    return Hdf5File(path) if h5py.is_hdf5(path) else BinaryFile(path)


def _first_file(path: Path) -> Path:
    """``path`` itself if it is a file, else the first file of the snapshot with base name ``path``."""
    if path.is_file():
        return path
    stem = path.name.removesuffix(".hdf5").removesuffix(".h5")
    candidates = [path.with_name(path.name + s) for s in (".0", ".0.hdf5", ".0.h5", ".hdf5", ".h5")]
    candidates += [path.with_name(stem + ".0" + path.name[len(stem):])] if stem != path.name else []
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"snapshot {path}: no such file, nor {', '.join(c.name for c in candidates)}")


def _snapshot_files(path: Path) -> list[ParticleFile]:
    """Open every file of the snapshot at ``path`` (a file or a multi-file base name), in file-index order."""
    first = _open(_first_file(path))
    match = _INDEXED.match(first.header.path.name)
    if first.header.num_files == 1 and (match is None or path.is_file()):
        return [first]
    if match is None:
        raise SnapshotError(f"file {first.header.path}: header NumFilesPerSnapshot = {first.header.num_files} but the "
                            "file name has no '.<index>' to find the other files by")
    base, suffix = match["base"], match["suffix"] or ""
    pattern = re.compile(re.escape(base) + r"\.(\d+)" + re.escape(suffix) + "$")
    parent = first.header.path.parent
    found = sorted(int(m[1]) for q in parent.iterdir() if (m := pattern.match(q.name)))
    if found != list(range(len(found))):
        raise SnapshotError(f"snapshot {parent / base}: file indices {found} found, expected 0 ... {len(found) - 1} "
                            "without gaps")
    return [first if i == int(match["index"]) else _open(parent / f"{base}.{i}{suffix}") for i in found]


def read_snapshot_header(path: str | os.PathLike[str]) -> SnapshotHeader:
    """The header of the (first) file of the snapshot at ``path``; no particle data is read."""
    return _open(_first_file(Path(path))).header


def read_snapshot(path: str | os.PathLike[str], centre: object = None, radius: object = None, *,
                  dark_matter: bool = False) -> Snapshot:
    """Read the gas (and with ``dark_matter`` the dark matter) of a GADGET snapshot in physical units.

    ``path``: an HDF5 or binary (format 1 or 2) snapshot file, or the base name of a multi-file snapshot
    (``snap_128`` for ``snap_128.0``, ``snap_128.1``, ... or ``snap_128.0.hdf5``, ...). ``centre`` (3,) or
    (n, 3) and ``radius`` scalar or (n,) [physical kpc] select the particles within any of the spheres
    (minimum image in the periodic box); then only the selected rows of blocks other than positions are read.
    Raises :class:`SnapshotError` for truncated, inconsistent or incomplete files.
    """
    files = _snapshot_files(Path(path))
    return load_snapshot(files, centre, radius, dark_matter=dark_matter, path=Path(path))


def snapshot_paths(path: str | os.PathLike[str], fmt: SnapshotFormat, nfiles: int) -> list[Path]:
    """The files :func:`write_snapshot` writes: ``path``, or ``path.i`` (binary) / ``base.i.hdf5`` (HDF5)."""
    path = Path(path)
    if nfiles == 1:
        return [path]
    if fmt == "hdf5":
        base = path.name.removesuffix(".hdf5").removesuffix(".h5")
        return [path.with_name(f"{base}.{i}.hdf5") for i in range(nfiles)]
    return [path.with_name(f"{path.name}.{i}") for i in range(nfiles)]


def write_snapshot(path: str | os.PathLike[str], header: GadgetHeader, gas: dict[str, np.ndarray],
                   dm: dict[str, np.ndarray] | None = None, *, fmt: SnapshotFormat = "gadget2",
                   nfiles: int = 1) -> list[Path]:
    """Write a GADGET snapshot from arrays in GADGET internal units; return the files written.

    ``gas`` keys POS (N, 3) [ckpc/h], VEL (N, 3) [km/s sqrt(a)], ID, MASS [1e10 Msun/h], U [(km/s)^2],
    RHO [(1e10 Msun/h)/(ckpc/h)^3], HSML [ckpc/h], and NE, NH with ``header.flag_cooling``; ``dm`` (type 1)
    keys POS, VEL, ID, MASS. Particles are split contiguously over ``nfiles`` files, written atomically
    together: a failure leaves none of them behind.
    """
    if fmt not in ("hdf5", "gadget1", "gadget2"):
        raise ValueError(f"write_snapshot: fmt must be 'hdf5', 'gadget1' or 'gadget2', got {fmt!r}")
    if not (isinstance(nfiles, int) and nfiles >= 1):
        raise ValueError(f"write_snapshot: nfiles must be an integer >= 1, got {nfiles!r}")
    paths = snapshot_paths(path, fmt, nfiles)
    with contextlib.ExitStack() as stack:
        for file_header, blocks in split_into_files(paths, header, gas, dm):
            tmp = stack.enter_context(atomic_path(file_header.path))
            if fmt == "hdf5":
                write_hdf5(file_header, blocks, tmp)
            else:
                write_binary(file_header, blocks, tmp, fmt=1 if fmt == "gadget1" else 2)
    return paths
