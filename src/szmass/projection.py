"""The projection job: every selected halo of a region's snapshots, along each line of sight, observed.

A projection job is one (sim, region, chunk of snapshots). For each snapshot it reads the gas once (the
union of the spheres that hold each halo's projected prism), then loops over the halos and, for each, over
the configured lines of sight: :meth:`szmass.ymap.HaloGas.line_of_sight` makes the y-map and its Y500_cyl,
:func:`szmass.instrument.observe` makes the 96 x 96 map the networks see, and :mod:`szmass.mapstore` stores
the maps (a part store per snapshot; the high-resolution maps on request, streamed one map at a time).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable

import numpy as np
import pandas as pd
import xarray as xr
from astropy.cosmology import FLRW

from szmass.atomic import atomic_path
from szmass.instrument import Instrument, observe
from szmass.logs import progress
from szmass.mapstore import HIRES_COORDS, HiresWriter, MapConfig, maps_dataset, part_name, write_part
from szmass.ymap import ARCMIN_PER_ARCSEC, GasSnapshot, HaloGas, selection_radius_kpc

log = logging.getLogger(__name__)

HALO_COLUMNS = ["halo_id", "M500", "R500", "M200", "R200", "centre_x", "centre_y", "centre_z", "model"]
"""Columns :func:`clean_part` needs in the halo table (``results/halos/{sim}.csv``), besides ``redshift``."""


def clean_part(
    snapshot_path: str | os.PathLike[str],
    halos: pd.DataFrame,
    *,
    sim: str,
    region: int,
    snapshot: int,
    cosmo: FLRW,
    config: MapConfig,
    hires_path: str | os.PathLike[str] | None = None,
) -> xr.Dataset:
    """Clean maps of every halo in ``halos`` (rows of one snapshot of ``results/halos/{sim}.csv``), a part Dataset.

    Reads the snapshot once, projects each halo (by halo_id) along ``config.projections`` and observes each
    map with the instrument. No halo: an empty part, and the snapshot is not read. ``hires_path``: also write
    the high-resolution maps there (zarr, float32, ``y`` (map, py, px) with the coordinates
    :data:`szmass.mapstore.HIRES_COORDS`, atomically), one map at a time.
    """
    missing = [c for c in [*HALO_COLUMNS, "redshift"] if c not in halos.columns]
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
        "M200": np.repeat(halos["M200"].to_numpy(float), n_proj),
        "R200": np.repeat(halos["R200"].to_numpy(float), n_proj),
        "Y500_cyl": np.empty(n),
        "Y500_sph": np.empty(n),
        "model": np.repeat(halos["model"].astype(str).to_numpy(), n_proj),
    }
    with contextlib.ExitStack() as stack:
        hires = None
        if hires_path is not None:
            attrs = {"sim": str(sim), "region": int(region), "snapshot": int(snapshot), **config.attrs()}
            hires = HiresWriter(stack.enter_context(atomic_path(hires_path, directory=True)), config.hires_npix, attrs)
        if len(halos):
            snap = _read_gas(snapshot_path, halos, cosmo, config)
            coords["redshift"][:] = snap.redshift
            npix, pixel_arcsec = config.hires_npix, config.pixel_arcsec
            # the fast route makes the maps from the particles; the high-resolution maps, when kept, are the hires route's
            instrument = Instrument(config.fwhm_arcmin, config.npix_out, config.pixel_arcmin_out)
            fast = config.route == "fast" and hires is None
            label = f"{sim} region {region} snapshot {snapshot}"
            each_halo = progress(enumerate(halos.itertuples(index=False)), total=len(halos),
                                 desc=f"{label}: halos projected")
            for i, halo in each_halo:
                t0 = time.perf_counter()
                centre = np.array([halo.centre_x, halo.centre_y, halo.centre_z], dtype=float)
                gas = HaloGas.from_snapshot(snap, centre, float(halo.R500), cosmo=cosmo,
                                            label=f"{label} halo {halo.halo_id}")
                gas.check_field(npix=npix, pixel_arcsec=pixel_arcsec)
                rows = range(i * n_proj, (i + 1) * n_proj)
                for row in rows:
                    if fast:
                        y[row], coords["Y500_cyl"][row] = gas.observed(
                            int(coords["projection"][row]), npix=npix, pixel_arcsec=pixel_arcsec, kernel=config.kernel,
                            depth_r500=config.depth_r500, instrument=instrument,
                        )
                        continue
                    ymap, coords["Y500_cyl"][row] = gas.line_of_sight(
                        int(coords["projection"][row]), npix=npix, pixel_arcsec=pixel_arcsec, kernel=config.kernel,
                        depth_r500=config.depth_r500,
                    )
                    if hires is not None:
                        hires.append(ymap[None], {k: coords[k][row : row + 1] for k in HIRES_COORDS})
                    y[row] = observe(ymap, pixel_arcsec * ARCMIN_PER_ARCSEC, fwhm_arcmin=config.fwhm_arcmin,
                                     npix_out=config.npix_out, pixel_arcmin_out=config.pixel_arcmin_out,
                                     pixel_window=True)
                coords["Y500_sph"][rows.start : rows.stop] = gas.y500_sph_arcmin2()
                log.info("halo %d (%d/%d): %d projections in %.1f s", halo.halo_id, i + 1, len(halos), n_proj,
                         time.perf_counter() - t0)
    return maps_dataset(y, coords, sim=sim, region=region, snapshot=snapshot, config=config)


def _read_gas(
    snapshot_path: str | os.PathLike[str], halos: pd.DataFrame, cosmo: FLRW, config: MapConfig
) -> GasSnapshot:
    """The snapshot's gas: the union of the spheres holding each halo's prism (every particle without a depth)."""
    from szmass.sims import read_snapshot

    if config.depth_r500 is None:
        snap = read_snapshot(snapshot_path)
    else:
        radii = selection_radius_kpc(
            halos["R500"].to_numpy(float), float(halos["redshift"].iloc[0]), cosmo,
            npix=config.hires_npix, pixel_arcsec=config.pixel_arcsec, depth_r500=config.depth_r500,
        )
        snap = read_snapshot(snapshot_path, centre=halos[["centre_x", "centre_y", "centre_z"]].to_numpy(float),
                             radius=radii)
    log.info("%s: %d gas particles read for %d halo(s)", snapshot_path, len(snap.mass), len(halos))
    return snap


def write_clean_parts(
    jobs: Iterable[tuple[int, str | os.PathLike[str], pd.DataFrame]],
    path: str | os.PathLike[str],
    *,
    sim: str,
    region: int,
    cosmo: FLRW,
    config: MapConfig,
    hires_path: str | os.PathLike[str] | None = None,
) -> int:
    """One projection job of several snapshots of one region: the directory ``path`` of their part stores.

    ``jobs`` yields (snapshot, snapshot path, halos of that snapshot); each becomes the part store
    :func:`szmass.mapstore.part_name` inside ``path`` (:func:`clean_part`, written as soon as it is made, so
    memory stays at one snapshot's maps). The directory appears only when every part is written
    (atomically), and so does ``hires_path`` (a directory of high-resolution stores named likewise) when
    given. Returns the map count.
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
