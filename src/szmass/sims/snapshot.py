"""The Snapshot container, GADGET headers, and the conversion of GADGET internal units to physical ones.

GADGET internal units (THE THREE HUNDRED, docs/physics.md): lengths comoving kpc/h, masses 1e10 Msun/h,
velocities km/s * sqrt(a), specific internal energy u (km/s)^2, density (1e10 Msun/h) / (ckpc/h)^3.
The readers of each file format (:mod:`.gadget_hdf5`, :mod:`.gadget_binary`) return raw blocks in these
units through the :class:`ParticleFile` protocol; :func:`load_snapshot` selects, checks and converts them
once, to physical kpc, Msun, K and Msun / kpc^3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numba
import numpy as np
from astropy import units as u

from szmass.constants import GAMMA_ADIABATIC, K_B_ERG_K, M_P_G, NE_FULLY_IONISED, mean_molecular_weight

MASS_UNIT_MSUN_H: float = 1e10
"""GADGET mass unit [Msun/h]."""
U_UNIT_CGS: float = ((u.km / u.s) ** 2).to(u.cm**2 / u.s**2)
"""GADGET specific internal energy unit (km/s)^2 in (cm/s)^2."""
NTYPES = 6
"""GADGET particle types: 0 gas, 1-3 and 5 dark matter (high and low resolution), 4 stars."""
DM_TYPES: tuple[int, ...] = (1, 2, 3, 5)
"""Particle types read as dark matter."""


class SnapshotError(ValueError):
    """A snapshot file that is unreadable, truncated, inconsistent or lacks a needed block."""


@dataclass(frozen=True)
class Block:
    """One GADGET data block: its 4-character binary label, HDF5 dataset name and components per particle."""

    label: str
    hdf5: str
    ncomp: int
    description: str
    gas_only: bool = False


BLOCKS: dict[str, Block] = {
    b.label.strip(): b
    for b in (
        Block("POS ", "Coordinates", 3, "positions"),
        Block("VEL ", "Velocities", 3, "velocities"),
        Block("ID  ", "ParticleIDs", 1, "particle IDs"),
        Block("MASS", "Masses", 1, "masses"),
        Block("U   ", "InternalEnergy", 1, "internal energy", gas_only=True),
        Block("RHO ", "Density", 1, "density", gas_only=True),
        Block("NE  ", "ElectronAbundance", 1, "electron abundance", gas_only=True),
        Block("NH  ", "NeutralHydrogenAbundance", 1, "neutral hydrogen abundance", gas_only=True),
        Block("HSML", "SmoothingLength", 1, "smoothing length", gas_only=True),
    )
}
"""The blocks this package reads and writes, by stripped label ("POS", "MASS", "HSML", ...)."""

GAS_BLOCKS_NEEDED: tuple[str, ...] = ("POS", "ID", "MASS", "U", "RHO", "NE", "HSML")
"""Gas blocks :func:`load_snapshot` reads (MASS only where MassTable[0] is 0, NE only with Flag_Cooling)."""


@dataclass(frozen=True)
class GadgetHeader:
    """The cosmological part of a GADGET header, as given to the writers.

    ``box_size`` [comoving kpc/h], ``h`` the HubbleParam; the scale factor written is 1 / (1 + redshift).
    """

    redshift: float
    box_size: float
    h: float
    omega_m: float
    omega_lambda: float
    flag_cooling: int = 1
    flag_sfr: int = 0
    flag_feedback: int = 0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.redshift) and self.redshift > -1.0):
            raise ValueError(f"GadgetHeader: redshift must be finite and > -1, got {self.redshift!r}")
        for name in ("box_size", "h"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"GadgetHeader: {name} must be finite and > 0, got {getattr(self, name)!r}")

    @property
    def time(self) -> float:
        """Scale factor a = 1 / (1 + z)."""
        return 1.0 / (1.0 + self.redshift)


@dataclass(frozen=True)
class SnapshotHeader:
    """The header of one file of a snapshot, as stored (``box_size`` comoving kpc/h, ``mass_table`` 1e10 Msun/h)."""

    path: Path
    npart_file: tuple[int, ...]
    npart_total: tuple[int, ...]
    mass_table: tuple[float, ...]
    scale_factor: float
    redshift: float
    box_size: float
    omega_m: float
    omega_lambda: float
    h: float
    num_files: int
    flag_cooling: int
    flag_sfr: int = 0
    flag_feedback: int = 0

    def __post_init__(self) -> None:
        if (self.num_files < 1 or min(self.npart_file) < 0 or len(self.npart_file) != NTYPES
                or not (self.box_size > 0 and self.h > 0 and self.scale_factor > 0)):
            raise SnapshotError(
                f"file {self.path}: implausible GADGET header (NumFilesPerSnapshot {self.num_files}, NumPart_ThisFile "
                f"{list(self.npart_file)}, BoxSize {self.box_size}, HubbleParam {self.h}, Time {self.scale_factor}); "
                "expected >= 1 file, 6 non-negative counts and positive BoxSize, HubbleParam, Time"
            )

    @property
    def params(self) -> GadgetHeader:
        """The cosmological part of this header."""
        return GadgetHeader(self.redshift, self.box_size, self.h, self.omega_m, self.omega_lambda,
                            self.flag_cooling, self.flag_sfr, self.flag_feedback)

    def in_mass_block(self, ptype: int) -> bool:
        """Whether particles of ``ptype`` in this file have individual masses (MassTable entry 0)."""
        return self.npart_file[ptype] > 0 and self.mass_table[ptype] == 0.0


class ParticleFile(Protocol):
    """One file of a snapshot, giving raw blocks in GADGET internal units (native byte order)."""

    header: SnapshotHeader

    def has(self, block: str, ptype: int) -> bool:
        """Whether the file stores ``block`` (a key of :data:`BLOCKS`) for particles of ``ptype``."""
        ...

    def read(self, block: str, ptype: int, mask: np.ndarray | None = None) -> np.ndarray:
        """Rows of ``block`` for ``ptype`` ((n,) or (n, 3)); ``mask`` (bool, this file's npart[ptype]) selects rows."""
        ...


@dataclass(frozen=True)
class Snapshot:
    """Gas (and optionally dark matter) of a snapshot in physical units.

    ``box_size`` is comoving kpc/h as in the header; ``pos``/``dm_pos`` (N, 3) physical kpc, not recentred;
    ``mass``/``dm_mass`` Msun; ``temperature`` K; ``ne`` electron abundance per H; ``hsml`` physical kpc
    (kernel support radius); ``rho`` Msun / physical kpc^3; ``dm_type`` the GADGET particle type (int8).
    """

    path: Path
    redshift: float
    scale_factor: float
    h: float
    box_size: float
    omega_m: float
    omega_lambda: float
    pos: np.ndarray
    mass: np.ndarray
    temperature: np.ndarray
    ne: np.ndarray
    hsml: np.ndarray
    rho: np.ndarray
    ids: np.ndarray
    dm_pos: np.ndarray | None = None
    dm_mass: np.ndarray | None = None
    dm_type: np.ndarray | None = None

    @property
    def box_size_kpc(self) -> float:
        """Side of the periodic box [physical kpc]."""
        return self.box_size * self.scale_factor / self.h


def length_to_physical_kpc(x: np.ndarray, scale_factor: float, h: float) -> np.ndarray:
    """Comoving kpc/h -> physical kpc (float64)."""
    return np.multiply(x, scale_factor / h, dtype=np.float64)


def mass_to_msun(m: np.ndarray, h: float) -> np.ndarray:
    """1e10 Msun/h -> Msun (float64)."""
    return np.multiply(m, MASS_UNIT_MSUN_H / h, dtype=np.float64)


def density_to_msun_kpc3(rho: np.ndarray, scale_factor: float, h: float) -> np.ndarray:
    """(1e10 Msun/h) / (comoving kpc/h)^3 -> Msun / physical kpc^3 (float64)."""
    return np.multiply(rho, MASS_UNIT_MSUN_H * h**2 / scale_factor**3, dtype=np.float64)


def temperature_from_u(u_kms2: np.ndarray, ne: np.ndarray) -> np.ndarray:
    """Temperature [K] from specific internal energy u [(km/s)^2] and electron abundance per H.

    T = (gamma - 1) u mu m_p / k_B with mu = 4 / (1 + 3 X + 4 X ne) (GADGET convention).
    """
    mu = mean_molecular_weight(np.asarray(ne, dtype=np.float64))
    t = np.multiply(GAMMA_ADIABATIC - 1.0, u_kms2, dtype=np.float64)  # in place from here: the same arithmetic
    t *= U_UNIT_CGS
    t *= mu
    t *= M_P_G
    t /= K_B_ERG_K
    return t


_SELECT_CHUNKS = 256
"""Fixed chunks of the particles in :func:`physical_in_spheres`'s parallel passes (the result does not depend
on the number of threads)."""


@numba.njit(cache=True, inline="always")
def _inside(x: float, y: float, z: float, centres: np.ndarray, r2: np.ndarray, box: float) -> bool:
    """Whether (x, y, z) lies within sqrt(r2[k]) of any ``centres[k]`` (minimum image in a box of side ``box``)."""
    for k in range(centres.shape[0]):
        d = x - centres[k, 0]
        d -= box * math.floor(d / box + 0.5)
        d2 = d * d
        d = y - centres[k, 1]
        d -= box * math.floor(d / box + 0.5)
        d2 += d * d
        d = z - centres[k, 2]
        d -= box * math.floor(d / box + 0.5)
        d2 += d * d
        if d2 <= r2[k]:
            return True
    return False


@numba.njit(cache=True, parallel=True)
def _physical_in_spheres(raw: np.ndarray, factor: float, centres: np.ndarray, r2: np.ndarray,
                         box: float) -> tuple[np.ndarray, np.ndarray]:
    """(float64 ``raw * factor`` of the rows inside the spheres, mask of those rows): counted, then written, in
    parallel over fixed chunks."""
    n = raw.shape[0]
    size = (n + _SELECT_CHUNKS - 1) // _SELECT_CHUNKS
    mask = np.zeros(n, dtype=np.bool_)
    kept = np.zeros(_SELECT_CHUNKS + 1, dtype=np.int64)
    for c in numba.prange(_SELECT_CHUNKS):
        for i in range(c * size, min(n, (c + 1) * size)):
            x, y, z = np.float64(raw[i, 0]) * factor, np.float64(raw[i, 1]) * factor, np.float64(raw[i, 2]) * factor
            if _inside(x, y, z, centres, r2, box):
                mask[i] = True
                kept[c + 1] += 1
    start = np.cumsum(kept)
    pos = np.empty((start[-1], 3))
    for c in numba.prange(_SELECT_CHUNKS):
        k = start[c]
        for i in range(c * size, min(n, (c + 1) * size)):
            if mask[i]:
                for j in range(3):
                    pos[k, j] = np.float64(raw[i, j]) * factor
                k += 1
    return pos, mask


def physical_in_spheres(raw_pos: np.ndarray, scale_factor: float, h: float, centres: np.ndarray, radii: np.ndarray,
                        box: float) -> tuple[np.ndarray, np.ndarray]:
    """The particles of comoving positions ``raw_pos`` (N, 3) [kpc/h, as stored] within ``radii`` (n,) of any of
    ``centres`` (n, 3) [physical kpc]: (their positions in physical kpc, float64 as
    :func:`length_to_physical_kpc` gives them; boolean mask of the selected rows). Distances use the minimum
    image in a periodic box of side ``box`` [physical kpc]. One parallel pass, no full-size float64 copy."""
    return _physical_in_spheres(raw_pos, scale_factor / h, np.ascontiguousarray(centres, dtype=np.float64),
                                np.asarray(radii, dtype=np.float64) ** 2, float(box))


def _spheres(centre: object, radius: object, box_kpc: float, where: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Validate a sphere selection: centres (n, 3) and radii (n,) [physical kpc], or None for no selection."""
    if centre is None and radius is None:
        return None
    if centre is None or radius is None:
        raise ValueError(f"snapshot {where}: give both centre and radius for a sphere selection, or neither")
    c = np.asarray(centre, dtype=np.float64)
    c = c[None, :] if c.ndim == 1 else c
    if c.ndim != 2 or c.shape[1] != 3 or len(c) == 0:
        raise ValueError(f"snapshot {where}: centre must have shape (3,) or (n, 3) [physical kpc], got {np.asarray(centre).shape}")
    r = np.asarray(radius, dtype=np.float64)
    r = np.full(len(c), r) if r.ndim == 0 else r
    if r.shape != (len(c),):
        raise ValueError(f"snapshot {where}: radius must be a scalar or have shape ({len(c)},), got {r.shape}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(r)) and np.all(r >= 0)):
        raise ValueError(f"snapshot {where}: centre and radius must be finite and radius >= 0 [physical kpc]")
    outside = np.any((c < 0) | (c > box_kpc), axis=1)
    if np.any(outside):
        raise ValueError(f"snapshot {where}: centre {c[outside][0].tolist()} [physical kpc] is outside the periodic box "
                         f"[0, {box_kpc:.6g}] (box_size * a / h)")
    return c, r


def _checked(f: ParticleFile, block: str, ptype: int, mask: np.ndarray | None) -> np.ndarray:
    """Read ``block`` of ``ptype`` and raise if any value is not finite."""
    values = f.read(block, ptype, mask)
    if values.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise SnapshotError(f"file {f.header.path}: block {BLOCKS[block].label!r} has {bad} non-finite values")
    return values


def _signed(values: np.ndarray, f: ParticleFile, block: str, *, strict: bool) -> np.ndarray:
    """Return ``values`` after checking they are > 0 (``strict``) or >= 0."""
    bad = int(np.count_nonzero(values <= 0 if strict else values < 0))
    if bad:
        raise SnapshotError(f"file {f.header.path}: block {BLOCKS[block].label!r} has {bad} "
                            f"{'non-positive' if strict else 'negative'} value(s); expected {'> 0' if strict else '>= 0'}")
    return values


def _require(f: ParticleFile, block: str, ptype: int) -> None:
    if not f.has(block, ptype):
        b = BLOCKS[block]
        raise SnapshotError(
            f"file {f.header.path}: block {b.label!r} ({b.description}, HDF5 PartType{ptype}/{b.hdf5}) not found"
            f" for particle type {ptype}; gas blocks needed: {', '.join(GAS_BLOCKS_NEEDED)}"
        )


def _masses(f: ParticleFile, ptype: int, mask: np.ndarray | None, n: int) -> np.ndarray:
    """Masses [1e10 Msun/h] of the ``n`` selected particles of ``ptype``: the MASS block, else the MassTable."""
    if f.header.mass_table[ptype] > 0 and not f.has("MASS", ptype):
        return np.full(n, f.header.mass_table[ptype])
    _require(f, "MASS", ptype)
    return _signed(_checked(f, "MASS", ptype, mask), f, "MASS", strict=True)


def check_files(files: Sequence[ParticleFile]) -> None:
    """Raise unless the files form one snapshot: NumFilesPerSnapshot, NumPart_Total and cosmology agree."""
    first = files[0].header
    if first.num_files != len(files):
        raise SnapshotError(f"file {first.path}: header NumFilesPerSnapshot = {first.num_files} but {len(files)} "
                            f"file(s) found: {[str(f.header.path) for f in files]}")
    for f in files[1:]:
        h = f.header
        if (h.params, h.num_files, h.npart_total, h.mass_table) != (first.params, first.num_files, first.npart_total,
                                                                     first.mass_table):
            raise SnapshotError(f"file {h.path}: header differs from {first.path} (redshift, box, cosmology, "
                                "NumPart_Total or MassTable); expected files of one snapshot")
    counted = tuple(int(sum(f.header.npart_file[t] for f in files)) for t in range(NTYPES))
    if counted != first.npart_total:
        raise SnapshotError(f"file {first.path}: header NumPart_Total = {list(first.npart_total)} but the "
                            f"{len(files)} file(s) hold NumPart_ThisFile sums {list(counted)}")


def load_snapshot(files: Sequence[ParticleFile], centre: object = None, radius: object = None, *,
                  dark_matter: bool = False, path: Path | None = None) -> Snapshot:
    """Read, select and convert the particles of a snapshot made of ``files`` (see ``sims.read_snapshot``).

    Positions are read first; with a sphere selection only the selected rows of the other blocks are then
    read. Each block is read once per file.
    """
    check_files(files)
    hdr = files[0].header
    a, h = hdr.scale_factor, hdr.h
    box_kpc = hdr.box_size * a / h
    spheres = _spheres(centre, radius, box_kpc, hdr.path)
    gas: dict[str, list[np.ndarray]] = {k: [] for k in ("pos", "mass", "u", "ne", "rho", "hsml", "ids")}
    dm: dict[str, list[np.ndarray]] = {k: [] for k in ("pos", "mass", "type")}

    def select(f: ParticleFile, ptype: int) -> tuple[np.ndarray, np.ndarray | None]:
        raw = _checked(f, "POS", ptype, None)
        if spheres is None:
            return length_to_physical_kpc(raw, a, h), None
        return physical_in_spheres(raw, a, h, *spheres, box_kpc)

    for f in files:
        fh = f.header
        if fh.npart_file[0] > 0:
            for block in GAS_BLOCKS_NEEDED:
                if (block != "MASS" or fh.mass_table[0] == 0) and (block != "NE" or fh.flag_cooling):
                    _require(f, block, 0)
            pos, mask = select(f, 0)
            gas["pos"].append(pos)
            gas["mass"].append(_masses(f, 0, mask, len(pos)))
            gas["u"].append(_signed(_checked(f, "U", 0, mask), f, "U", strict=False))
            gas["ne"].append(_signed(_checked(f, "NE", 0, mask), f, "NE", strict=False) if f.has("NE", 0)
                             else np.full(len(pos), NE_FULLY_IONISED))
            gas["rho"].append(_signed(_checked(f, "RHO", 0, mask), f, "RHO", strict=False))
            gas["hsml"].append(_signed(_checked(f, "HSML", 0, mask), f, "HSML", strict=True))
            gas["ids"].append(_checked(f, "ID", 0, mask).astype(np.uint64))
        if dark_matter:
            for t in DM_TYPES:
                if fh.npart_file[t] > 0:
                    pos, mask = select(f, t)
                    dm["pos"].append(pos)
                    dm["mass"].append(_masses(f, t, mask, len(pos)))
                    dm["type"].append(np.full(len(pos), t, dtype=np.int8))

    def cat(parts: list[np.ndarray], shape: tuple[int, ...] = (0,), dtype: type = np.float64) -> np.ndarray:
        if len(parts) == 1:  # one file: no copy
            return parts[0]
        return np.concatenate(parts) if parts else np.empty(shape, dtype=dtype)

    ne = cat(gas["ne"])
    return Snapshot(
        path=path if path is not None else hdr.path,
        redshift=hdr.redshift, scale_factor=a, h=h, box_size=hdr.box_size,
        omega_m=hdr.omega_m, omega_lambda=hdr.omega_lambda,
        pos=cat(gas["pos"], (0, 3)),
        mass=mass_to_msun(cat(gas["mass"]), h),
        temperature=temperature_from_u(cat(gas["u"]), ne),
        ne=ne.astype(np.float64),
        hsml=length_to_physical_kpc(cat(gas["hsml"]), a, h),
        rho=density_to_msun_kpc3(cat(gas["rho"]), a, h),
        ids=cat(gas["ids"], dtype=np.uint64),
        dm_pos=cat(dm["pos"], (0, 3)) if dark_matter else None,
        dm_mass=mass_to_msun(cat(dm["mass"]), h) if dark_matter else None,
        dm_type=cat(dm["type"], dtype=np.int8) if dark_matter else None,
    )


WRITE_ORDER: tuple[str, ...] = ("POS", "VEL", "ID", "MASS", "U", "RHO", "NE", "NH", "HSML")
"""GADGET-2's order of the blocks in a snapshot file (the order format 1 relies on; NE, NH only with cooling)."""

FileBlocks = dict[int, dict[str, np.ndarray]]
"""Blocks of one file: particle type -> stripped label -> array in GADGET internal units, as stored."""


def _validated(kind: str, arrays: dict[str, np.ndarray], required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Check the keys, shapes and finiteness of a writer's input arrays; return them as numpy arrays."""
    missing = sorted(set(required) - set(arrays))
    extra = sorted(set(arrays) - set(required))
    if missing or extra:
        raise ValueError(f"write_snapshot: {kind} arrays need keys {list(required)}; missing {missing}, unexpected {extra}")
    out = {k: np.asarray(arrays[k]) for k in required}
    n = len(out["POS"])
    for k, v in out.items():
        shape = (n, BLOCKS[k].ncomp) if BLOCKS[k].ncomp > 1 else (n,)
        if v.shape != shape:
            raise ValueError(f"write_snapshot: {kind} {k!r} has shape {v.shape}, expected {shape}")
        if k == "ID":
            if v.dtype.kind not in "iu" or (n and v.min() < 0):
                raise ValueError(f"write_snapshot: {kind} 'ID' must be non-negative integers, got dtype {v.dtype}")
        elif not np.all(np.isfinite(v)):
            raise ValueError(f"write_snapshot: {kind} {k!r} has non-finite values")
    return out


def split_into_files(paths: Sequence[Path], header: GadgetHeader, gas: dict[str, np.ndarray],
                     dm: dict[str, np.ndarray] | None) -> list[tuple[SnapshotHeader, FileBlocks]]:
    """Lay out gas (type 0) and dark matter (type 1) as GADGET stores them, split contiguously over ``paths``.

    Floats become float32 and IDs uint32 (uint64 beyond 2^32 - 1). Gas masses go to a MASS block; dark
    matter masses go to MassTable[1] when all equal, else to the MASS block.
    """
    gas_keys = ("POS", "VEL", "ID", "MASS", "U", "RHO") + (("NE", "NH") if header.flag_cooling else ()) + ("HSML",)
    types = {0: _validated("gas", gas, gas_keys)}
    if dm is not None:
        types[1] = _validated("dark matter", dm, ("POS", "VEL", "ID", "MASS"))
    mass_table = [0.0] * NTYPES
    if 1 in types and len(types[1]["MASS"]) and np.all(types[1]["MASS"] == types[1]["MASS"][0]):
        mass_table[1] = float(types[1]["MASS"][0])
        types[1] = {k: v for k, v in types[1].items() if k != "MASS"}
    for t, arrays in types.items():
        if "MASS" in arrays and np.any(arrays["MASS"] <= 0):
            raise ValueError(f"write_snapshot: particle type {t} 'MASS' must be > 0 [1e10 Msun/h]")
    max_id = max((int(a["ID"].max()) for a in types.values() if len(a["ID"])), default=0)
    id_dtype = np.uint32 if max_id <= np.iinfo(np.uint32).max else np.uint64
    npart_total = tuple(len(types[t]["POS"]) if t in types else 0 for t in range(NTYPES))
    bounds = {t: np.linspace(0, npart_total[t], len(paths) + 1).round().astype(int) for t in types}
    out = []
    for i, path in enumerate(paths):
        blocks = {t: {k: v[bounds[t][i]:bounds[t][i + 1]].astype(id_dtype if k == "ID" else np.float32)
                      for k, v in arrays.items()} for t, arrays in types.items()}
        npart_file = tuple(len(blocks[t]["POS"]) if t in blocks else 0 for t in range(NTYPES))
        hdr = SnapshotHeader(
            path=Path(path), npart_file=npart_file, npart_total=npart_total, mass_table=tuple(mass_table),
            scale_factor=header.time, redshift=header.redshift, box_size=header.box_size, omega_m=header.omega_m,
            omega_lambda=header.omega_lambda, h=header.h, num_files=len(paths), flag_cooling=header.flag_cooling,
            flag_sfr=header.flag_sfr, flag_feedback=header.flag_feedback,
        )
        out.append((hdr, {t: b for t, b in blocks.items() if npart_file[t] > 0}))
    return out
