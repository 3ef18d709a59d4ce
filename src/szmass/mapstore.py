"""The clean-map store: one part store per snapshot of a projection job, gathered into ``results/maps/clean.zarr``.

It only stores: :mod:`szmass.projection` makes the maps of a projection job (one (sim, region, chunk of
snapshots)) and writes them with :func:`maps_dataset` and :func:`write_part`. A part store is a small zarr
store (written atomically) with the layout of the final store (docs/architecture.md, data contract):

* ``y`` (map, py, px) float32, the clean y-maps (dimensionless, 96 x 96 by default);
* per-map coordinates along ``map``: sim, region, snapshot, halo_id, projection, redshift (of the
  snapshot the map was made from), M500 [Msun], R500 [physical kpc], M200 [Msun], R200 [physical kpc],
  Y500_cyl [arcmin^2], Y500_sph [arcmin^2], model (M200 and R200 may be absent from a store written by
  an older version: :data:`LATER_COORDS`);
* attributes: the map settings (:class:`MapConfig`), and in a part the job's sim, region and snapshot,
  so a part with no halo (a snapshot where nothing was selected) is still a valid, identifiable part.

:func:`gather` concatenates the parts in a deterministic order (sim, region, snapshot, halo_id, projection)
into one zarr store, chunked by halo (one chunk = the maps of one halo), zstd-compressed (zarr's default
codec), streaming one part at a time so memory stays at one part's size.

:class:`HiresWriter` streams high-resolution maps (1920 x 1920 float32, 14.7 MB each before compression)
one map at a time into their own zarr store, written on request only (the paper's 182,655 maps would be
terabytes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from szmass.atomic import atomic_path
from szmass.logs import progress
from szmass.rotations import N_PROJECTIONS
from szmass.settings import exact_keys, require_keys

log = logging.getLogger(__name__)

STRING = np.dtypes.StringDType()
"""The string dtype of the map and cutout stores (names, sims, gas models)."""

MAP_COORDS: dict[str, tuple[np.dtype, str]] = {
    "sim": (STRING, ""),
    "region": (np.dtype(np.int64), ""),
    "snapshot": (np.dtype(np.int64), ""),
    "halo_id": (np.dtype(np.int64), ""),
    "projection": (np.dtype(np.int64), ""),
    "redshift": (np.dtype(np.float64), ""),
    "M500": (np.dtype(np.float64), "Msun"),
    "R500": (np.dtype(np.float64), "kpc"),
    "M200": (np.dtype(np.float64), "Msun"),
    "R200": (np.dtype(np.float64), "kpc"),
    "Y500_cyl": (np.dtype(np.float64), "arcmin2"),
    "Y500_sph": (np.dtype(np.float64), "arcmin2"),
    "model": (STRING, ""),
}
"""Per-map coordinates: name -> (dtype, units)."""

LATER_COORDS = ("M200", "R200")
"""Coordinates that stores written by older versions lack: :func:`open_maps` requires them only on request."""

JOB_ATTRS = ("sim", "region", "snapshot")
"""Attributes naming a part's projection job."""

COORD_CHUNK = 1 << 16
"""Chunk length of the 1D coordinate arrays in the gathered store."""

HIRES_COORDS = ("sim", "region", "snapshot", "halo_id", "projection", "redshift", "M500", "R500", "M200", "R200",
                "model")
"""Per-map coordinates of a high-resolution map store (its Y500 are in the clean part)."""

ROUTES = ("fast", "hires")
"""Map-making routes (:class:`MapConfig` ``route``)."""

@dataclass(frozen=True)
class MapConfig:
    """Settings of the clean maps (every field required: the defaults live in the workflow's config schema).

    Projection grid: ``hires_npix`` pixels of ``pixel_arcsec`` [arcsec], SPH ``kernel``, line-of-sight depth
    +- ``depth_r500`` R500 (None: all particles read), ``projections`` (line-of-sight indices, 0..26).
    ``route``: ``"fast"`` makes the observed maps of the same field straight from the particles
    (:mod:`szmass.moments`), ``"hires"`` projects onto the ``hires_npix`` grid and observes that map (also
    whenever the high-resolution maps are written).
    Observed maps (the instrument): beam ``fwhm_arcmin`` [arcmin], ``npix_out`` pixels of ``pixel_arcmin_out``
    [arcmin].
    """

    hires_npix: int
    pixel_arcsec: float
    kernel: str
    depth_r500: float | None
    projections: tuple[int, ...]
    fwhm_arcmin: float
    npix_out: int
    pixel_arcmin_out: float
    route: str

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> MapConfig:
        """From a mapping of every field; ``projections`` is a count N (lines of sight 0..N-1) or a list of indices.

        Raises :class:`szmass.settings.MissingKeyError` naming missing fields, ValueError naming unknown ones
        or bad values.
        """
        d = exact_keys(d, cls, "maps")
        p = d["projections"]
        d["projections"] = tuple(range(int(p))) if isinstance(p, int) else tuple(int(k) for k in p)
        if not d["projections"] or any(not 0 <= k < N_PROJECTIONS for k in d["projections"]):
            raise ValueError(
                f"maps: projections must be a count 1..{N_PROJECTIONS} or indices in "
                f"0..{N_PROJECTIONS - 1}, got {p!r}"
            )
        if len(set(d["projections"])) != len(d["projections"]):
            raise ValueError(f"maps: projections has repeated indices: {p!r}")
        if d["route"] not in ROUTES:
            raise ValueError(f"maps: route must be one of {ROUTES}, got {d['route']!r}")
        return cls(**d)

    @classmethod
    def from_sections(cls, ymaps: Mapping[str, Any], instrument: Mapping[str, Any]) -> MapConfig:
        """From the ``ymaps`` and ``instrument`` sections of a validated workflow config (``save_hires`` is
        the rule's concern). Raises :class:`szmass.settings.MissingKeyError` naming a missing key."""
        ymap_keys = ["hires_npix", "pixel_arcsec", "kernel", "depth_r500", "projections", "route"]
        renamed = {"fwhm_arcmin": "fwhm_arcmin", "map_npix": "npix_out", "pixel_arcmin": "pixel_arcmin_out"}
        require_keys(ymaps, ymap_keys, "ymaps")
        require_keys(instrument, renamed, "instrument")
        unknown = sorted(set(instrument) - set(renamed))
        if unknown:
            raise ValueError(f"instrument: unknown key(s) {unknown}; expected {sorted(renamed)}")
        unknown = sorted(set(ymaps) - {*ymap_keys, "save_hires"})
        if unknown:
            raise ValueError(f"ymaps: unknown key(s) {unknown}; expected {sorted([*ymap_keys, 'save_hires'])}")
        return cls.from_mapping({k: ymaps[k] for k in ymap_keys} | {renamed[k]: v for k, v in instrument.items()})

    def attrs(self) -> dict[str, Any]:
        """The settings as zarr/netCDF attributes (JSON-serialisable)."""
        a = asdict(self)
        a["projections"] = list(self.projections)
        return a


def maps_dataset(
    y: np.ndarray, coords: Mapping[str, Any], *, sim: str, region: int, snapshot: int, config: MapConfig
) -> xr.Dataset:
    """A part's Dataset: ``y`` (n, py, px) stored as float32 and the per-map ``coords`` (each (n,), see MAP_COORDS)."""
    y = np.asarray(y)
    if y.ndim != 3:
        raise ValueError(f"maps of {sim} region {region} snapshot {snapshot}: y must be (map, py, px), "
                         f"got shape {y.shape}")
    missing = [k for k in MAP_COORDS if k not in coords]
    if missing:
        raise ValueError(f"maps of {sim} region {region} snapshot {snapshot}: coordinates {missing} missing")
    out = {}
    for name, (dtype, units) in MAP_COORDS.items():
        values = np.asarray(coords[name]).astype(dtype)
        if values.shape != (y.shape[0],):
            raise ValueError(f"maps of {sim} region {region} snapshot {snapshot}: coordinate {name!r} has shape "
                             f"{values.shape}, expected ({y.shape[0]},)")
        out[name] = xr.Variable("map", values, attrs={"units": units} if units else {})
    attrs = {"sim": str(sim), "region": int(region), "snapshot": int(snapshot), **config.attrs()}
    return xr.Dataset({"y": (("map", "py", "px"), y.astype(np.float32))}, coords=out, attrs=attrs)


class HiresWriter:
    """Streams high-resolution y-maps (float32, one chunk per map) with their identity into a new zarr store."""

    def __init__(self, path: Path, npix: int, attrs: Mapping[str, Any]) -> None:
        self.path = path
        empty = self._dataset(np.empty((0, npix, npix)), {k: np.empty(0, MAP_COORDS[k][0]) for k in HIRES_COORDS})
        empty.attrs = dict(attrs)
        encoding = {"y": {"chunks": (1, npix, npix)}} | {k: {"chunks": (COORD_CHUNK,)} for k in HIRES_COORDS}
        empty.to_zarr(path, mode="w", consolidated=False, encoding=encoding)

    @staticmethod
    def _dataset(ymaps: np.ndarray, coords: Mapping[str, np.ndarray]) -> xr.Dataset:
        return xr.Dataset(
            {"y": (("map", "py", "px"), ymaps.astype(np.float32))},
            coords={k: ("map", np.asarray(coords[k]).astype(MAP_COORDS[k][0])) for k in HIRES_COORDS},
        )

    def append(self, ymaps: np.ndarray, coords: Mapping[str, np.ndarray]) -> None:
        """Append maps (n, npix, npix) with their coordinates (each (n,))."""
        self._dataset(ymaps, coords).to_zarr(self.path, append_dim="map", consolidated=False)


def write_part(ds: xr.Dataset, path: str | os.PathLike[str]) -> None:
    """Write a part Dataset (:func:`maps_dataset`) to the zarr store ``path``, atomically."""
    with atomic_path(path, directory=True) as tmp:
        ds.to_zarr(tmp, mode="w", consolidated=False)


def part_name(sim: str, region: int, snapshot: int) -> str:
    """File name of the part store of one (sim, region, snapshot) inside a projection job's part directory."""
    return f"{sim}_{int(region):04d}_{int(snapshot):03d}.zarr"


def part_stores(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Part stores named by ``paths``: each a part store, or a projection job's directory of them (its
    ``*.zarr`` entries, sorted by name)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not any((p / meta).exists() for meta in (".zgroup", "zarr.json")):
            out.extend(sorted(q for q in p.iterdir() if q.suffix == ".zarr" and not q.name.startswith(".")))
        else:
            out.append(p)
    return out


def open_maps(path: str | os.PathLike[str], *, need: Iterable[str] = ()) -> xr.Dataset:
    """Open a map store (a part or a gathered store) lazily, checking that it has ``y`` and every coordinate
    of :data:`MAP_COORDS`, those of :data:`LATER_COORDS` only when named in ``need`` (e.g. ``["M200"]`` to
    train on M200), so that a store of an older version serves every other use."""
    try:
        ds = xr.open_dataset(path, engine="zarr", consolidated=False, chunks=None)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"map store {path}: not found or not a zarr store") from err
    required = [k for k in MAP_COORDS if k not in LATER_COORDS or k in set(need)]
    missing = [k for k in ["y", *required] if k not in ds.variables]
    if missing:
        older = " (a store written by an older version: rebuild it)" if set(missing) <= set(LATER_COORDS) else ""
        raise ValueError(f"map store {path}: field(s) {missing} missing{older}; expected y and coordinates "
                         f"{list(MAP_COORDS)}")
    if ds["y"].dims != ("map", "py", "px"):
        raise ValueError(f"map store {path}: y has dimensions {ds['y'].dims}, expected ('map', 'py', 'px')")
    # the per-map coordinates first, in MAP_COORDS order (a stable column order for users); others kept after them
    present = [k for k in MAP_COORDS if k in ds.variables]
    coords = [*present, *(k for k in ds.coords if k not in MAP_COORDS and k not in ds.indexes)]
    data = ["y", *(k for k in ds.data_vars if k != "y")]
    return ds.reset_coords(coords)[data + coords].set_coords(coords)


def map_settings(ds: xr.Dataset) -> dict[str, Any]:
    """A store's map settings (its attributes without the job identity and the job's provenance)."""
    return {k: v for k, v in ds.attrs.items() if k not in JOB_ATTRS and k != "provenance"}


def gather(part_paths: Sequence[str | os.PathLike[str]], out_path: str | os.PathLike[str]) -> None:
    """Concatenate part stores into one map store at ``out_path`` (atomically), sorted by
    (sim, region, snapshot, halo_id, projection), ``y`` chunked by halo.

    ``part_paths``: part stores or directories of them (:func:`part_stores`). All parts must share the map
    settings and hold every configured projection of each of their halos.
    """
    part_paths = part_stores(part_paths)
    if not part_paths:
        raise ValueError(f"gather into {out_path}: no part files given")
    parts = []
    for path in progress(part_paths, desc="clean maps, parts opened"):
        ds = open_maps(path, need=LATER_COORDS)  # a gathered store has every coordinate
        absent = [k for k in JOB_ATTRS if k not in ds.attrs]
        if absent:
            raise ValueError(f"part file {path}: attribute(s) {absent} naming the projection job missing")
        parts.append((str(ds.attrs["sim"]), int(ds.attrs["region"]), int(ds.attrs["snapshot"]), str(path), ds))
    parts.sort(key=lambda p: p[:3])
    for a, b in zip(parts, parts[1:]):
        if a[:3] == b[:3]:
            raise ValueError(f"part files {a[3]} and {b[3]} are the same job {a[:3]}")
    settings = map_settings(parts[0][4])
    for *_, path, ds in parts[1:]:
        if map_settings(ds) != settings:
            raise ValueError(f"part file {path}: map settings {map_settings(ds)} differ from {parts[0][3]}'s {settings}")
    per_halo = len(settings["projections"])
    shape = parts[0][4]["y"].shape[1:]
    with atomic_path(out_path, directory=True) as tmp:
        written = False
        for *_, path, ds in progress(parts, desc="clean maps, parts gathered"):
            if ds["y"].shape[1:] != shape:
                raise ValueError(f"part file {path}: maps of shape {ds['y'].shape[1:]}, expected {shape}")
            ds = ds.load()
            halo_id, projection = ds["halo_id"].values, ds["projection"].values
            _, counts = np.unique(halo_id, return_counts=True)
            if np.any(counts != per_halo):
                raise ValueError(
                    f"part file {path}: halos with {sorted(set(counts.tolist()))} maps, expected {per_halo} each"
                )
            ds = ds.isel(map=np.lexsort((projection, halo_id)))
            ds.attrs = settings
            if not written:
                encoding = {"y": {"chunks": (per_halo, *shape)}} | {k: {"chunks": (COORD_CHUNK,)} for k in MAP_COORDS}
                ds.to_zarr(tmp, mode="w", consolidated=False, encoding=encoding)
                written = True
            elif ds.sizes["map"]:
                ds.to_zarr(tmp, append_dim="map", consolidated=False)
        zarr.consolidate_metadata(tmp)  # users open the gathered store with xarray's defaults, quickly
        log.info("gathered %d part(s) into %s", len(parts), out_path)
