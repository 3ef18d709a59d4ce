"""The high-resolution data set, ``results/maps/hires.zarr``: the kept high-resolution maps (``ymaps.save_hires``)
averaged onto the network's input grid with no beam, in a map store with the clean store's maps and coordinates.

The paper trained its cross-model networks (Supplementary Table 3) on the high-resolution maps of THE THREE
HUNDRED; a network takes ``instrument.map_npix`` pixels a side, so each ``hires_npix`` map of ``pixel_arcsec``
pixels is averaged onto ``map_npix`` pixels spanning the same field (pixels of hires_npix x pixel_arcsec /
map_npix; 1.67 arcmin for the default 1920 x 5 arcsec), each output pixel the mean of y over its area
(:func:`szmass.instrument.observe` with no beam), so Y = sum(y) x pixel area is kept. The stored attributes
record that grid (``npix_out``, ``pixel_arcmin_out``, ``fwhm_arcmin`` = 0).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import xarray as xr
import zarr

from szmass.atomic import atomic_path
from szmass.instrument import observe
from szmass.logs import progress
from szmass.mapstore import COORD_CHUNK, map_settings, open_maps, part_stores

log = logging.getLogger(__name__)

KEY_COORDS = ("sim", "region", "snapshot", "halo_id", "projection")
"""The coordinates that name one map in both the clean and the high-resolution stores."""


def field_pixel_arcmin(hires_npix: int, pixel_arcsec: float, npix: int) -> float:
    """Pixel side [arcmin] of ``npix`` pixels spanning the field of ``hires_npix`` pixels of ``pixel_arcsec``."""
    return hires_npix * pixel_arcsec / 60.0 / npix


def average_onto(ymap: np.ndarray, pixel_arcsec: float, npix: int) -> np.ndarray:
    """The high-resolution map ``ymap`` (n, n) of ``pixel_arcsec`` [arcsec] pixels averaged onto ``npix`` x ``npix``
    pixels spanning the same field: each output pixel the area-weighted mean of y over it (float64)."""
    side = np.shape(ymap)[0]
    return observe(ymap, pixel_arcsec / 60.0, fwhm_arcmin=0.0, npix_out=npix,
                   pixel_arcmin_out=field_pixel_arcmin(side, pixel_arcsec, npix))


def _keys(ds: xr.Dataset) -> list[tuple[str, int, int, int, int]]:
    cols = [ds[k].values for k in KEY_COORDS]
    return [(str(s), int(r), int(n), int(h), int(p)) for s, r, n, h, p in zip(*cols, strict=True)]


def hires_store(clean_path: str | os.PathLike[str], hires_paths: Sequence[str | os.PathLike[str]],
                out_path: str | os.PathLike[str]) -> None:
    """Write ``out_path`` (atomically): the maps of the clean store ``clean_path`` in its order and with its
    coordinates, each the high-resolution map of the same (sim, region, snapshot, halo_id, projection) from
    ``hires_paths`` (stores or directories of them) averaged onto the clean maps' ``npix_out`` grid
    (:func:`average_onto`).

    Raises ValueError naming the store and the map when a high-resolution map is not in the clean store, is
    there twice, has the wrong size or non-finite pixels, or when a clean map has no high-resolution map.
    """
    clean = open_maps(clean_path)
    settings = map_settings(clean)
    npix, hires_npix, pixel_arcsec = int(settings["npix_out"]), int(settings["hires_npix"]), float(settings["pixel_arcsec"])
    index = {key: i for i, key in enumerate(_keys(clean))}
    y = np.zeros((len(index), npix, npix), np.float32)
    filled = np.zeros(len(index), bool)
    stores = part_stores(hires_paths)
    for path in progress(stores, desc="high-resolution maps, stores averaged"):
        ds = xr.open_dataset(path, engine="zarr", consolidated=False, chunks=None)
        missing = [k for k in ["y", *KEY_COORDS] if k not in ds.variables]
        if missing:
            raise ValueError(f"high-resolution store {path}: field(s) {missing} missing; expected y and {list(KEY_COORDS)}")
        if ds["y"].shape[1:] != (hires_npix, hires_npix):
            raise ValueError(f"high-resolution store {path}: maps of shape {ds['y'].shape[1:]}, expected "
                             f"({hires_npix}, {hires_npix}) (ymaps.hires_npix of {clean_path})")
        for m, key in enumerate(_keys(ds)):
            i = index.get(key)
            if i is None:
                raise ValueError(f"high-resolution store {path}: map {dict(zip(KEY_COORDS, key))} is not in {clean_path}")
            if filled[i]:
                raise ValueError(f"high-resolution store {path}: map {dict(zip(KEY_COORDS, key))} given twice")
            ymap = ds["y"][m].values
            if not np.all(np.isfinite(ymap)):
                raise ValueError(f"high-resolution store {path}: map {dict(zip(KEY_COORDS, key))} has "
                                 f"{np.count_nonzero(~np.isfinite(ymap))} non-finite pixel(s)")
            y[i] = average_onto(ymap, pixel_arcsec, npix)
            filled[i] = True
    if not filled.all():
        keys = list(index)
        absent = [dict(zip(KEY_COORDS, keys[i])) for i in np.flatnonzero(~filled)[:3]]
        raise ValueError(f"high-resolution maps: {np.count_nonzero(~filled)} map(s) of {clean_path} have none in "
                         f"{len(stores)} high-resolution store(s), e.g. {absent}; make the maps with ymaps.save_hires: true")
    out = clean.drop_vars("y").assign(y=(("map", "py", "px"), y))
    out.attrs = settings | {"fwhm_arcmin": 0.0, "pixel_arcmin_out": field_pixel_arcmin(hires_npix, pixel_arcsec, npix)}
    per_halo = len(settings["projections"])
    encoding = {"y": {"chunks": (per_halo, npix, npix)}} | {k: {"chunks": (COORD_CHUNK,)} for k in out.coords}
    with atomic_path(out_path, directory=True) as tmp:
        out[["y", *(k for k in out.data_vars if k != "y")]].to_zarr(tmp, mode="w", consolidated=False, encoding=encoding)
        zarr.consolidate_metadata(tmp)
    log.info("%d high-resolution maps on %d x %d pixels -> %s", len(index), npix, npix, out_path)
