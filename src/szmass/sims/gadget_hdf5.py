"""GADGET HDF5 snapshots (one file of a possibly multi-file snapshot).

Layout: group ``Header`` with the attributes NumPart_ThisFile, NumPart_Total, NumPart_Total_HighWord,
MassTable, Time, Redshift, BoxSize, NumFilesPerSnapshot, Omega0, OmegaLambda, HubbleParam, Flag_Cooling,
Flag_Sfr, Flag_Feedback; groups ``PartType{t}`` with one dataset per block (Coordinates, Masses,
InternalEnergy, ...; names in :data:`szmass.sims.snapshot.BLOCKS`), GADGET internal units.

Selected rows are read by slabs: h5py's point selection (``ds[indices]``) is orders of magnitude slower
than reading contiguous slabs (over a minute for 2e5 points of a 4e6-row dataset, measured), so
:meth:`Hdf5File.read` reads the pieces of :data:`PIECE_ROWS` rows that hold selected rows and masks them.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from szmass.sims.snapshot import BLOCKS, NTYPES, FileBlocks, SnapshotError, SnapshotHeader

PIECE_ROWS = 1 << 20
"""Rows per slab when reading a selection."""


def _attr(attrs: h5py.AttributeManager, name: str, path: Path, default: object = None) -> object:
    if name in attrs:
        return attrs[name]
    if default is None:
        raise SnapshotError(f"file {path}: Header attribute {name!r} not found; not a GADGET HDF5 snapshot?")
    return default


class Hdf5File:
    """One file of a GADGET HDF5 snapshot: the header and the list of datasets (no data read)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with self._open() as f:
            if "Header" not in f:
                raise SnapshotError(f"file {self.path}: group 'Header' not found; not a GADGET HDF5 snapshot")
            a = f["Header"].attrs

            def vec(name: str, dtype: type, default: object = None) -> tuple:
                values: np.ndarray = np.asarray(_attr(a, name, self.path, default), dtype=dtype).ravel()
                if values.shape != (NTYPES,):
                    raise SnapshotError(f"file {self.path}: Header attribute {name!r} has {values.size} entries, "
                                        f"expected {NTYPES}")
                return tuple(values.tolist())

            def num(name: str, default: object = None) -> float:
                return float(np.asarray(_attr(a, name, self.path, default)).ravel()[0])

            low = vec("NumPart_Total", np.int64)
            high = vec("NumPart_Total_HighWord", np.int64, np.zeros(NTYPES))
            self.header = SnapshotHeader(
                path=self.path, npart_file=vec("NumPart_ThisFile", np.int64),
                npart_total=tuple(lo + (hi << 32) for lo, hi in zip(low, high)),
                mass_table=vec("MassTable", np.float64), scale_factor=num("Time"), redshift=num("Redshift"),
                box_size=num("BoxSize"), omega_m=num("Omega0"), omega_lambda=num("OmegaLambda"),
                h=num("HubbleParam"), num_files=int(num("NumFilesPerSnapshot")),
                flag_cooling=int(num("Flag_Cooling", 0)), flag_sfr=int(num("Flag_Sfr", 0)),
                flag_feedback=int(num("Flag_Feedback", 0)),
            )
            self._datasets = {
                (t, name) for t in range(NTYPES) if f"PartType{t}" in f for name in f[f"PartType{t}"].keys()
            }

    def _open(self) -> h5py.File:
        try:
            return h5py.File(self.path, "r")
        except OSError as exc:
            raise SnapshotError(f"file {self.path}: cannot be read as HDF5 (truncated or corrupt?): {exc}") from exc

    def has(self, block: str, ptype: int) -> bool:
        """Whether this file stores ``block`` for particles of ``ptype``."""
        return self.header.npart_file[ptype] > 0 and (ptype, BLOCKS[block].hdf5) in self._datasets

    def read(self, block: str, ptype: int, mask: np.ndarray | None = None) -> np.ndarray:
        """Rows of ``block`` for ``ptype`` in native byte order; only the rows where ``mask`` is set, if given."""
        name = f"PartType{ptype}/{BLOCKS[block].hdf5}"
        n, ncomp = self.header.npart_file[ptype], BLOCKS[block].ncomp
        shape = (n, ncomp) if ncomp > 1 else (n,)
        with self._open() as f:
            ds = f[name]
            if ds.shape != shape:
                raise SnapshotError(f"file {self.path}: dataset {name!r} (block {BLOCKS[block].label!r}) has shape "
                                    f"{ds.shape}, expected {shape} from NumPart_ThisFile[{ptype}]")
            if mask is not None and mask.shape != (n,):
                raise ValueError(f"file {self.path}: mask of shape {mask.shape} for {n} particles")
            try:
                if mask is None:
                    values = ds[()]
                else:
                    pieces = [ds[lo: lo + PIECE_ROWS][mask[lo: lo + PIECE_ROWS]]
                              for lo in range(0, n, PIECE_ROWS) if mask[lo: lo + PIECE_ROWS].any()]
                    values = np.concatenate(pieces) if pieces else np.empty((0,) + shape[1:], dtype=ds.dtype)
            except OSError as exc:
                raise SnapshotError(f"file {self.path}: dataset {name!r} (block {BLOCKS[block].label!r}) cannot be "
                                    f"read (truncated or corrupt?): {exc}") from exc
        return np.asarray(values, dtype=values.dtype.newbyteorder("="))


def write_hdf5(header: SnapshotHeader, blocks: FileBlocks, path: Path) -> None:
    """Write one file of a GADGET HDF5 snapshot to ``path`` (``blocks``: type -> label -> array as stored)."""
    with h5py.File(path, "w") as f:
        a = f.create_group("Header").attrs
        a["NumPart_ThisFile"] = np.asarray(header.npart_file, dtype=np.int32)
        a["NumPart_Total"] = np.asarray([n & 0xFFFFFFFF for n in header.npart_total], dtype=np.uint32)
        a["NumPart_Total_HighWord"] = np.asarray([n >> 32 for n in header.npart_total], dtype=np.uint32)
        a["MassTable"] = np.asarray(header.mass_table, dtype=np.float64)
        a["Time"] = header.scale_factor
        a["Redshift"] = header.redshift
        a["BoxSize"] = header.box_size
        a["NumFilesPerSnapshot"] = np.int32(header.num_files)
        a["Omega0"] = header.omega_m
        a["OmegaLambda"] = header.omega_lambda
        a["HubbleParam"] = header.h
        a["Flag_Cooling"] = np.int32(header.flag_cooling)
        a["Flag_Sfr"] = np.int32(header.flag_sfr)
        a["Flag_Feedback"] = np.int32(header.flag_feedback)
        for t in sorted(blocks):
            group = f.create_group(f"PartType{t}")
            for label, values in blocks[t].items():
                group.create_dataset(BLOCKS[label].hdf5, data=values)
