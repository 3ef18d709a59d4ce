"""Planck mocks: clean maps plus noise cutouts at random PSZ2 positions (results/maps/planck.zarr)."""
from szmass.healpix import read_healpix_map
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.mocks import write_planck_mocks
from szmass.planck import read_psz2
from szmass.provenance import stamp_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
clean = open_maps(sm.input.clean)
write_planck_mocks(clean, read_healpix_map(sm.input.noise), read_psz2(sm.input.psz2), sm.output[0],
                   seed=sm.params.seed, reso_arcmin=sm.params.reso_arcmin)
log.info("%d Planck mocks -> %s", clean.sizes["map"], sm.output[0])
stamp_job(sm)
