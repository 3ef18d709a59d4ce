"""GADGET binary snapshots, format 1 and format 2 (one file of a possibly multi-file snapshot).

Each block is a Fortran-style record: a 4-byte marker holding the byte count, the data, the same marker.
Format 2 precedes every block with an 8-byte record holding its 4-character label ("POS ", "HSML", ...)
and the size of the next record plus 8, so blocks are found by label in any order and unknown blocks are
skipped. Format 1 has no labels: blocks are identified by GADGET-2's fixed output order,

    HEAD, POS, VEL, ID, MASS, U, RHO, NE, NH, HSML, (further blocks, ignored)

where MASS is present only if some particle type with particles in this file has MassTable = 0, the gas
blocks U ... HSML only if the file holds gas, and NE, NH only if Flag_Cooling is set.

Within a block particles are ordered by type. POS, VEL and ID hold every type, MASS only the types whose
MassTable entry is 0, the gas blocks only type 0. Values are float32 or float64 (IDs uint32 or uint64),
told apart by the block size; the byte order is that of the first record marker.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from szmass.sims.snapshot import BLOCKS, NTYPES, WRITE_ORDER, FileBlocks, SnapshotError, SnapshotHeader

HEADER_BYTES = 256
_HEADER_FIELDS = "6i 6d d d i i 6I i i d d d d i i 6I i"
"""npart, massarr, time, redshift, flag_sfr, flag_feedback, npartTotal, flag_cooling, num_files, BoxSize,
Omega0, OmegaLambda, HubbleParam, flag_stellarage, flag_metals, npartTotalHighWord, flag_entropy_instead_u."""
MAX_RECORD_BYTES = 2**31 - 1
"""GADGET record markers are signed 4-byte integers."""


def binary_format(path: Path) -> tuple[int, str] | None:
    """(1 or 2, byte order '<' or '>') from the first record marker of ``path``; None if it is neither."""
    with open(path, "rb") as fh:
        first = fh.read(4)
    if len(first) < 4:
        return None
    for order in "<>":
        marker = struct.unpack(order + "i", first)[0]
        if marker == 8:
            return 2, order
        if marker == HEADER_BYTES:
            return 1, order
    return None


def format1_order(header: SnapshotHeader) -> list[str]:
    """Stripped labels of the blocks of a format-1 file with this header, in GADGET-2's output order."""
    order = ["HEAD"]
    if sum(header.npart_file) == 0:
        return order
    order += ["POS", "VEL", "ID"]
    if any(header.in_mass_block(t) for t in range(NTYPES)):
        order.append("MASS")
    if header.npart_file[0] > 0:
        order += ["U", "RHO"] + (["NE", "NH"] if header.flag_cooling else []) + ["HSML"]
    return order


def _parse_header(raw: bytes, order: str, path: Path) -> SnapshotHeader:
    """Decode the 256-byte GADGET header (byte order ``order``); NumPart_Total includes the high words."""
    v = struct.unpack(order + _HEADER_FIELDS, raw[: struct.calcsize(order + _HEADER_FIELDS)])
    npart, mass_table = v[0:6], v[6:12]
    time, redshift, flag_sfr, flag_feedback = v[12:16]
    low, (flag_cooling, num_files, box, om, ol, h, _stellarage, _metals), high = v[16:22], v[22:30], v[30:36]
    return SnapshotHeader(
        path=path, npart_file=tuple(npart), npart_total=tuple(lo + (hi << 32) for lo, hi in zip(low, high)),
        mass_table=tuple(mass_table), scale_factor=time, redshift=redshift, box_size=box, omega_m=om,
        omega_lambda=ol, h=h, num_files=num_files, flag_cooling=flag_cooling, flag_sfr=flag_sfr,
        flag_feedback=flag_feedback,
    )


class BinaryFile:
    """One file of a GADGET binary snapshot: the header and the byte offsets of its blocks (no data read)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        detected = binary_format(self.path)
        if detected is None:
            raise SnapshotError(f"file {self.path}: not a GADGET snapshot: the first record marker is neither 8 "
                                f"(format 2) nor {HEADER_BYTES} (format 1) in either byte order, and no HDF5 signature")
        self.format, self.order = detected
        self._size = self.path.stat().st_size
        self.blocks: dict[str, tuple[int, int]] = {}
        """Stripped label -> (byte offset of the data, byte count)."""
        with open(self.path, "rb") as fh:
            if self.format == 2:
                self._scan_format2(fh)
                if "HEAD" not in self.blocks:
                    raise SnapshotError(f"file {self.path}: block 'HEAD' (header) not found")
                self.header = self._header(fh, *self.blocks["HEAD"])
            else:
                off, n = self._record(fh, 0, "HEAD")
                self.header = self._header(fh, off, n)
                self.blocks["HEAD"] = (off, n)
                self._scan_format1(fh, off + n + 4)

    def _record(self, fh: BinaryIO, pos: int, name: str) -> tuple[int, int]:
        """Check the record starting at byte ``pos``; return (offset of its data, byte count)."""
        if pos + 4 > self._size:
            raise SnapshotError(f"file {self.path}: block {name!r} truncated: expected a 4-byte record marker at "
                                f"byte {pos}, found {self._size - pos} bytes")
        fh.seek(pos)
        n = struct.unpack(self.order + "I", fh.read(4))[0]
        if pos + 8 + n > self._size:
            raise SnapshotError(f"file {self.path}: block {name!r} truncated: expected {n} bytes, found "
                                f"{min(n, self._size - pos - 4)}" + (" and no end marker" if pos + 4 + n <= self._size else ""))
        fh.seek(pos + 4 + n)
        end = struct.unpack(self.order + "I", fh.read(4))[0]
        if end != n:
            raise SnapshotError(f"file {self.path}: block {name!r}: inconsistent record markers {n} and {end} "
                                f"(record at byte {pos})")
        return pos + 4, n

    def _add(self, label: str, off: int, n: int) -> None:
        if label in self.blocks:
            raise SnapshotError(f"file {self.path}: block {label!r} appears twice")
        self.blocks[label] = (off, n)

    def _scan_format2(self, fh: BinaryIO) -> None:
        pos = 0
        while pos < self._size:
            off, n = self._record(fh, pos, f"label record at byte {pos}")
            if n != 8:
                raise SnapshotError(f"file {self.path}: expected an 8-byte format-2 label record at byte {pos}, "
                                    f"found a record of {n} bytes")
            fh.seek(off)
            label = fh.read(4).decode("ascii", errors="replace")
            data_off, data_n = self._record(fh, off + n + 4, label)
            self._add(label.strip(), data_off, data_n)
            pos = data_off + data_n + 4

    def _scan_format1(self, fh: BinaryIO, pos: int) -> None:
        order = format1_order(self.header)
        index = 1
        while pos < self._size:
            label = order[index] if index < len(order) else f"record {index}"
            off, n = self._record(fh, pos, label.ljust(4))
            self._add(label, off, n)
            pos, index = off + n + 4, index + 1

    def _header(self, fh: BinaryIO, off: int, n: int) -> SnapshotHeader:
        if n != HEADER_BYTES:
            raise SnapshotError(f"file {self.path}: block 'HEAD' has {n} bytes, expected {HEADER_BYTES}")
        fh.seek(off)
        return _parse_header(fh.read(n), self.order, self.path)

    def _types(self, block: str) -> list[int]:
        """Particle types stored in ``block`` of this file, in order."""
        npart = self.header.npart_file
        if BLOCKS[block].gas_only:
            return [0] if npart[0] > 0 else []
        if block == "MASS":
            return [t for t in range(NTYPES) if self.header.in_mass_block(t)]
        return [t for t in range(NTYPES) if npart[t] > 0]

    def _dtype(self, block: str) -> np.dtype:
        """The on-disk dtype of ``block``, from its byte count."""
        rows = sum(self.header.npart_file[t] for t in self._types(block)) * BLOCKS[block].ncomp
        nbytes = self.blocks[block][1]
        size = nbytes // rows if rows else 0
        if size not in (4, 8) or size * rows != nbytes:
            raise SnapshotError(f"file {self.path}: block {BLOCKS[block].label!r} holds {nbytes} bytes, expected 4 or 8 "
                                f"bytes for each of {rows} values (types {self._types(block)})")
        kind = "u" if block == "ID" else "f"
        return np.dtype(f"{self.order}{kind}{size}")

    def has(self, block: str, ptype: int) -> bool:
        """Whether this file stores ``block`` for particles of ``ptype``."""
        return block in self.blocks and ptype in self._types(block)

    def read(self, block: str, ptype: int, mask: np.ndarray | None = None) -> np.ndarray:
        """Rows of ``block`` for ``ptype`` in native byte order; only the rows where ``mask`` is set, if given."""
        dtype = self._dtype(block)
        types = self._types(block)
        npart = self.header.npart_file
        ncomp = BLOCKS[block].ncomp
        start = sum(npart[t] for t in types if t < ptype)
        offset = self.blocks[block][0] + start * ncomp * dtype.itemsize
        shape = (npart[ptype], ncomp) if ncomp > 1 else (npart[ptype],)
        if mask is None:
            values = np.fromfile(self.path, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
        else:
            if mask.shape != (npart[ptype],):
                raise ValueError(f"file {self.path}: mask of shape {mask.shape} for {npart[ptype]} particles")
            values = np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=shape)[mask]
        return np.asarray(values, dtype=dtype.newbyteorder("="))


def _write_record(fh: BinaryIO, label: str, data: bytes, fmt: int, path: Path) -> None:
    if len(data) > MAX_RECORD_BYTES - 8:
        raise ValueError(f"file {path}: block {label!r} of {len(data)} bytes exceeds a GADGET record; use more files")
    if fmt == 2:
        fh.write(struct.pack("<i4sii", 8, label.encode("ascii"), len(data) + 8, 8))
    marker = struct.pack("<i", len(data))
    fh.write(marker + data + marker)


def header_bytes(header: SnapshotHeader) -> bytes:
    """The 256-byte little-endian GADGET header record for ``header``."""
    packed = struct.pack(
        "<" + _HEADER_FIELDS, *header.npart_file, *header.mass_table, header.scale_factor, header.redshift,
        header.flag_sfr, header.flag_feedback, *(n & 0xFFFFFFFF for n in header.npart_total), header.flag_cooling,
        header.num_files, header.box_size, header.omega_m, header.omega_lambda, header.h, 0, 0,
        *(n >> 32 for n in header.npart_total), 0,
    )
    return packed.ljust(HEADER_BYTES, b"\0")


def write_binary(header: SnapshotHeader, blocks: FileBlocks, path: Path, fmt: int) -> None:
    """Write one file of a little-endian GADGET snapshot of format ``fmt`` (1 or 2) to ``path``.

    ``blocks`` maps particle type -> label -> array (GADGET internal units, dtype as stored).
    """
    with open(path, "wb") as fh:
        _write_record(fh, "HEAD", header_bytes(header), fmt, path)
        for name in WRITE_ORDER:
            parts = [np.ascontiguousarray(blocks[t][name]) for t in sorted(blocks) if name in blocks[t]]
            if parts:
                data = np.concatenate(parts)
                _write_record(fh, BLOCKS[name].label, data.astype(data.dtype.newbyteorder("<")).tobytes(), fmt, path)
