"""The clean-map store: one part file per projection job, gathered into ``results/maps/clean.zarr``.

A projection job is one (sim, region, snapshot): every selected halo of that snapshot, each along the
configured lines of sight, beam-smoothed and regridded by :mod:`szmass.instrument`. Its part file is a
small zarr store (written atomically) with the layout of the final store (docs/architecture.md, data contract):

* ``y`` (map, py, px) float32, the clean y-maps (dimensionless, 96 x 96 by default);
* per-map coordinates along ``map``: sim, region, snapshot, halo_id, projection, redshift (of the
  snapshot the map was made from), M500 [Msun], R500 [physical kpc], Y500_cyl [arcmin^2],
  Y500_sph [arcmin^2], model;
* attributes: the map settings (:class:`MapConfig`), and in a part the job's sim, region and snapshot,
  so a part with no halo (a snapshot where nothing was selected) is still a valid, identifiable part.

:func:`gather` concatenates the parts in a deterministic order (sim, region, snapshot, halo_id, projection)
into one zarr store, chunked by halo (one chunk = the maps of one halo), zstd-compressed (zarr's default
codec), streaming one part at a time so memory stays at one part's size.

On request (``clean_part(..., hires_path=...)``) a job also writes its high-resolution maps (1920 x 1920
float32, 14.7 MB each before compression), streamed one map at a time into their own zarr store; they
are not kept by default (the paper's 182,655 maps would be terabytes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from astropy.cosmology import FLRW

from szmass.atomic import atomic_path
from szmass.instrument import intermediate_grid, observe
from szmass.logs import progress
from szmass.rotations import N_PROJECTIONS
from szmass.settings import known_keys
from szmass.ymap import project_halo, selection_radius_kpc

log = logging.getLogger(__name__)

STRING = np.dtypes.StringDType()

MAP_COORDS: dict[str, tuple[np.dtype, str]] = {
    "sim": (STRING, ""),
    "region": (np.dtype(np.int64), ""),
    "snapshot": (np.dtype(np.int64), ""),
    "halo_id": (np.dtype(np.int64), ""),
    "projection": (np.dtype(np.int64), ""),
    "redshift": (np.dtype(np.float64), ""),
    "M500": (np.dtype(np.float64), "Msun"),
    "R500": (np.dtype(np.float64), "kpc"),
    "Y500_cyl": (np.dtype(np.float64), "arcmin2"),
    "Y500_sph": (np.dtype(np.float64), "arcmin2"),
    "model": (STRING, ""),
}
"""Per-map coordinates: name -> (dtype, units)."""

JOB_ATTRS = ("sim", "region", "snapshot")
"""Attributes naming a part's projection job."""

COORD_CHUNK = 1 << 16
"""Chunk length of the 1D coordinate arrays in the gathered store."""

HIRES_COORDS = ("sim", "region", "snapshot", "halo_id", "projection", "redshift", "M500", "R500", "model")
"""Per-map coordinates of a high-resolution map store (its Y500 are in the clean part)."""

ROUTES = ("fast", "hires")
"""Map-making routes (:class:`MapConfig` ``route``)."""

HALO_COLUMNS = ["halo_id", "M500", "R500", "centre_x", "centre_y", "centre_z", "model"]
"""Columns :func:`clean_part` needs in the halo table (``results/halos/{sim}.csv``)."""


@dataclass(frozen=True)
class MapConfig:
    """Settings of the clean maps.

    High-resolution maps: ``npix`` pixels of ``pixel_arcsec`` [arcsec], SPH ``kernel``, line-of-sight depth
    +- ``depth_r500`` R500 (None: all particles read), ``projections`` (line-of-sight indices, 0..26).
    ``route``: ``"fast"`` projects the same field onto the coarse grid of
    :func:`szmass.instrument.intermediate_grid`, ``"hires"`` onto the ``npix`` grid (also whenever the
    high-resolution maps are written); both observe with the pixel window compensated.
    Instrument: beam ``fwhm_arcmin`` [arcmin], ``npix_out`` pixels of ``pixel_arcmin_out`` [arcmin].
    """

    npix: int = 1920
    pixel_arcsec: float = 5.0
    kernel: str = "wendland_c4"
    depth_r500: float | None = 5.0
    projections: tuple[int, ...] = tuple(range(N_PROJECTIONS))
    fwhm_arcmin: float = 10.0
    npix_out: int = 96
    pixel_arcmin_out: float = 1.7
    route: str = "fast"

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> MapConfig:
        """From a config mapping; ``projections`` is a count N (lines of sight 0..N-1) or a list of indices."""
        d = known_keys(d, cls, "maps")
        if "projections" in d:
            p = d["projections"]
            d["projections"] = tuple(range(int(p))) if isinstance(p, int) else tuple(int(k) for k in p)
            if not d["projections"] or any(not 0 <= k < N_PROJECTIONS for k in d["projections"]):
                raise ValueError(
                    f"maps: projections must be a count 1..{N_PROJECTIONS} or indices in "
                    f"0..{N_PROJECTIONS - 1}, got {p!r}"
                )
            if len(set(d["projections"])) != len(d["projections"]):
                raise ValueError(f"maps: projections has repeated indices: {p!r}")
        if d.get("route", "fast") not in ROUTES:
            raise ValueError(f"maps: route must be one of {ROUTES}, got {d['route']!r}")
        return cls(**d)

    @classmethod
    def from_sections(cls, ymaps: Mapping[str, Any] | None, instrument: Mapping[str, Any] | None) -> MapConfig:
        """From the workflow config's ``ymaps`` and ``instrument`` sections (``save_hires`` is the rule's concern)."""
        d = {k: v for k, v in (ymaps or {}).items() if k != "save_hires"}
        renamed = {"fwhm_arcmin": "fwhm_arcmin", "npix": "npix_out", "pixel_arcmin": "pixel_arcmin_out"}
        for key, value in (instrument or {}).items():
            if key not in renamed:
                raise ValueError(f"instrument: unknown key {key!r}; expected some of {sorted(renamed)}")
            d[renamed[key]] = value
        return cls.from_mapping(d)

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


class _HiresWriter:
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


def clean_part(
    snapshot_path: str | os.PathLike[str],
    halos: pd.DataFrame,
    *,
    sim: str,
    region: int,
    snapshot: int,
    cosmo: FLRW,
    config: MapConfig = MapConfig(),
    hires_path: str | os.PathLike[str] | None = None,
) -> xr.Dataset:
    """Clean maps of every halo in ``halos`` (rows of one snapshot of ``results/halos/{sim}.csv``).

    Reads the snapshot once (the union of the spheres that hold each halo's projected prism), projects each
    halo along ``config.projections`` and observes each map with the instrument. No halo: an empty part.
    ``hires_path``: also write the high-resolution maps there (zarr, float32, ``y`` (map, py, px) with the
    coordinates :data:`HIRES_COORDS`, atomically), streamed one map at a time.
    """
    missing = [c for c in HALO_COLUMNS + ["redshift"] if c not in halos.columns]
    if missing:
        raise ValueError(f"halo table for {sim} region {region} snapshot {snapshot}: columns {missing} missing")
    halos = halos.sort_values("halo_id", kind="stable")
    n_proj = len(config.projections)
    n = len(halos) * n_proj
    y = np.empty((n, config.npix_out, config.npix_out))
    coords: dict[str, np.ndarray] = {
        "sim": np.full(n, sim),
        "region": np.full(n, region),
        "snapshot": np.full(n, snapshot),
        "halo_id": np.repeat(halos["halo_id"].to_numpy(np.int64), n_proj),
        "projection": np.tile(np.asarray(config.projections, dtype=np.int64), len(halos)),
        "redshift": np.empty(n),
        "M500": np.repeat(halos["M500"].to_numpy(float), n_proj),
        "R500": np.repeat(halos["R500"].to_numpy(float), n_proj),
        "Y500_cyl": np.empty(n),
        "Y500_sph": np.empty(n),
        "model": np.repeat(halos["model"].astype(str).to_numpy(), n_proj),
    }
    with contextlib.ExitStack() as stack:
        hires = None
        if hires_path is not None:
            attrs = {"sim": str(sim), "region": int(region), "snapshot": int(snapshot), **config.attrs()}
            hires = _HiresWriter(stack.enter_context(atomic_path(hires_path, directory=True)), config.npix, attrs)
        if len(halos):
            _project_halos(snapshot_path, halos, cosmo, config, y, coords, hires,
                           label=f"{sim} region {region} snapshot {snapshot}")
    return maps_dataset(y, coords, sim=sim, region=region, snapshot=snapshot, config=config)


def _project_halos(
    snapshot_path: str | os.PathLike[str],
    halos: pd.DataFrame,
    cosmo: FLRW,
    config: MapConfig,
    y: np.ndarray,
    coords: dict[str, np.ndarray],
    hires: _HiresWriter | None,
    *,
    label: str,
) -> None:
    """Fill ``y`` and the redshift and Y500 ``coords`` of :func:`clean_part` (halos sorted by halo_id)."""
    from szmass.sims import read_snapshot

    centres = halos[["centre_x", "centre_y", "centre_z"]].to_numpy(float)
    r500 = halos["R500"].to_numpy(float)
    if config.depth_r500 is None:
        snap = read_snapshot(snapshot_path)
    else:
        radii = selection_radius_kpc(
            r500, float(halos["redshift"].iloc[0]), cosmo,
            npix=config.npix, pixel_arcsec=config.pixel_arcsec, depth_r500=config.depth_r500,
        )
        snap = read_snapshot(snapshot_path, centre=centres, radius=radii)
    log.info("%s: %d gas particles read for %d halo(s)", snapshot_path, len(snap.mass), len(halos))
    coords["redshift"][:] = snap.redshift
    row = 0  # the map being made

    def instrument(ymap: np.ndarray, pixel_arcmin: float) -> np.ndarray:
        nonlocal row
        if hires is not None:
            hires.append(ymap[None], {k: coords[k][row : row + 1] for k in HIRES_COORDS})
        row += 1
        return observe(ymap, pixel_arcmin, fwhm_arcmin=config.fwhm_arcmin, npix_out=config.npix_out,
                       pixel_arcmin_out=config.pixel_arcmin_out, pixel_window=True)

    npix, pixel_arcsec = config.npix, config.pixel_arcsec
    if hires is None and config.route == "fast":
        npix, pixel_arcsec = intermediate_grid(npix, pixel_arcsec, config.fwhm_arcmin)

    n_proj = len(config.projections)
    each_halo = progress(zip(halos["halo_id"], centres, r500), total=len(halos), desc=f"{label}: halos projected")
    for i, (halo_id, centre, radius) in enumerate(each_halo):
        t0 = time.perf_counter()
        hm = project_halo(
            snap, centre, radius, cosmo=cosmo, npix=npix, pixel_arcsec=pixel_arcsec,
            kernel=config.kernel, depth_r500=config.depth_r500, projections=config.projections,
            observe=instrument, label=f"{label} halo {halo_id}",
        )
        rows = slice(i * n_proj, (i + 1) * n_proj)
        y[rows] = hm.maps
        coords["Y500_cyl"][rows] = hm.y500_cyl
        coords["Y500_sph"][rows] = hm.y500_sph
        log.info("halo %d (%d/%d): %d projections in %.1f s", halo_id, i + 1, len(halos), n_proj,
                 time.perf_counter() - t0)


def write_part(ds: xr.Dataset, path: str | os.PathLike[str]) -> None:
    """Write a part Dataset (:func:`maps_dataset`) to the zarr store ``path``, atomically."""
    with atomic_path(path, directory=True) as tmp:
        ds.to_zarr(tmp, mode="w", consolidated=False)


def part_name(sim: str, region: int, snapshot: int) -> str:
    """File name of the part store of one (sim, region, snapshot) inside a projection job's part directory."""
    return f"{sim}_{int(region):04d}_{int(snapshot):03d}.zarr"


def write_clean_parts(
    jobs: Iterable[tuple[int, str | os.PathLike[str], pd.DataFrame]],
    path: str | os.PathLike[str],
    *,
    sim: str,
    region: int,
    cosmo: FLRW,
    config: MapConfig = MapConfig(),
    hires_path: str | os.PathLike[str] | None = None,
) -> int:
    """One projection job of several snapshots of one region: the directory ``path`` of their part stores.

    ``jobs`` yields (snapshot, snapshot path, halos of that snapshot); each becomes the part store
    :func:`part_name` inside ``path`` (:func:`clean_part`, written as soon as it is made, so memory stays at
    one snapshot's maps). The directory appears only when every part is written (atomically), and so does
    ``hires_path`` (a directory of high-resolution stores named likewise) when given. Returns the map count.
    """
    n_maps = 0
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(path, directory=True))
        tmp.mkdir()
        hires_tmp = None
        if hires_path is not None:
            hires_tmp = stack.enter_context(atomic_path(hires_path, directory=True))
            hires_tmp.mkdir()
        for snapshot, snapshot_path, halos in jobs:
            name = part_name(sim, region, snapshot)
            ds = clean_part(snapshot_path, halos, sim=sim, region=region, snapshot=snapshot, cosmo=cosmo,
                            config=config, hires_path=None if hires_tmp is None else hires_tmp / name)
            write_part(ds, tmp / name)
            n_maps += ds.sizes["map"]
            log.info("%s region %d snapshot %d: %d maps", sim, region, snapshot, ds.sizes["map"])
    return n_maps


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


def open_maps(path: str | os.PathLike[str]) -> xr.Dataset:
    """Open a map store (a part or a gathered store) lazily, checking that it has ``y`` and every coordinate."""
    try:
        ds = xr.open_dataset(path, engine="zarr", consolidated=False, chunks=None)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"map store {path}: not found or not a zarr store") from err
    missing = [k for k in ["y", *MAP_COORDS] if k not in ds.variables]
    if missing:
        raise ValueError(f"map store {path}: field(s) {missing} missing; expected y and coordinates {list(MAP_COORDS)}")
    if ds["y"].dims != ("map", "py", "px"):
        raise ValueError(f"map store {path}: y has dimensions {ds['y'].dims}, expected ('map', 'py', 'px')")
    # the per-map coordinates first, in MAP_COORDS order (a stable column order for users); others kept after them
    coords = [*MAP_COORDS, *(k for k in ds.coords if k not in MAP_COORDS and k not in ds.indexes)]
    data = ["y", *(k for k in ds.data_vars if k != "y")]
    return ds.reset_coords(coords)[data + coords].set_coords(coords)


def _settings(ds: xr.Dataset) -> dict[str, Any]:
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
        ds = open_maps(path)
        absent = [k for k in JOB_ATTRS if k not in ds.attrs]
        if absent:
            raise ValueError(f"part file {path}: attribute(s) {absent} naming the projection job missing")
        parts.append((str(ds.attrs["sim"]), int(ds.attrs["region"]), int(ds.attrs["snapshot"]), str(path), ds))
    parts.sort(key=lambda p: p[:3])
    for a, b in zip(parts, parts[1:]):
        if a[:3] == b[:3]:
            raise ValueError(f"part files {a[3]} and {b[3]} are the same job {a[:3]}")
    settings = _settings(parts[0][4])
    for *_, path, ds in parts[1:]:
        if _settings(ds) != settings:
            raise ValueError(f"part file {path}: map settings {_settings(ds)} differ from {parts[0][3]}'s {settings}")
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
