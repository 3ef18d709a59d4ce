"""Cutouts of the (real or synthetic) sky at every PSZ2 cluster with a redshift (results/sky/cutouts.zarr)."""
import numpy as np
import pandas as pd

from szmass.atomic import atomic_path
from szmass.healpix import read_healpix_map
from szmass.logs import configure
from szmass.planck import read_mask, read_psz2, sky_cutouts
from szmass.provenance import stamp_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
sky = read_healpix_map(sm.input.sky, nside=p.nside)
mask = read_mask(list(sm.input.masks), nside=p.nside, field=p.mask_column) if sm.input.masks else np.ones_like(sky, dtype=np.float32)
truth = pd.read_csv(sm.input.truth[0]) if sm.input.truth else None
ds = sky_cutouts(sky, mask, read_psz2(sm.input.psz2), seed=p.seed, truth=truth, npix=p.map_npix,
                 reso_arcmin=p.reso_arcmin, golden_radius_arcmin=p.golden_radius_arcmin)
with atomic_path(sm.output[0], directory=True) as tmp:
    ds.to_zarr(tmp, mode="w", consolidated=True)
log.info("%d cutouts, %d Golden -> %s", ds.sizes["cluster"], int(ds["golden"].sum()), sm.output[0])
stamp_job(sm)
