"""Project every selected halo of one snapshot along its lines of sight and observe the maps."""
import json

import numba
import pandas as pd

from szmass.cosmology import make_cosmology
from szmass.logs import configure
from szmass.mapstore import MapConfig, clean_part, write_part

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
numba.set_num_threads(max(1, min(sm.threads, numba.config.NUMBA_NUM_THREADS)))
part = clean_part(
    sm.params.snapshot,
    pd.read_csv(sm.input.halos),
    sim=sm.wildcards.sim,
    region=int(sm.wildcards.region),
    snapshot=int(sm.wildcards.snapshot),
    cosmo=make_cosmology(json.loads(sm.params.cosmology)),
    config=MapConfig.from_sections(json.loads(sm.params.ymaps), json.loads(sm.params.instrument)),
    hires_path=sm.output.get("hires"),
)
write_part(part, sm.output.maps)
log.info("%d maps -> %s", part.sizes["map"], sm.output.maps)
