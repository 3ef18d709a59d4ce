"""Project every selected halo of one region's chunk of snapshots along its lines of sight and observe the maps."""
import numba
import pandas as pd

from szmass.cosmology import make_cosmology
from szmass.logs import configure
from szmass.mapstore import MapConfig, part_stores
from szmass.projection import write_clean_parts
from szmass.provenance import provenance_record, stamp_outputs

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
numba.set_num_threads(max(1, min(sm.threads, numba.config.NUMBA_NUM_THREADS)))
halos = pd.read_csv(sm.input.halos)
snapshots = sm.params.snapshots  # [[snapshot, path], ...] in snapshot order
n_maps = write_clean_parts(
    ((s, path, halos[halos["snapshot"] == s]) for s, path in snapshots),
    sm.output.maps,
    sim=sm.wildcards.sim,
    region=int(sm.wildcards.region),
    cosmo=make_cosmology(sm.params.cosmology),
    config=MapConfig.from_sections(sm.params.ymaps, sm.params.instrument),
    hires_path=sm.output.get("hires"),
)
log.info("%d maps of %d snapshot(s) -> %s", n_maps, len(snapshots), sm.output.maps)
# each part store carries the provenance in its attributes (the directory holding them is not a store)
stamp_outputs(part_stores([sm.output.maps]), provenance_record(sm.config, rule=sm.rule))
