"""Build results/halos/{sim}.csv from every AHF catalogue of one simulation."""
import json

import pandas as pd

from szmass.atomic import atomic_path
from szmass.cosmology import make_cosmology
from szmass.halos import HaloSelection, select_halos, snapshot_matter
from szmass.logs import configure
from szmass.sims import read_ahf_halos, read_snapshot_header

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
cosmo = make_cosmology(json.loads(sm.params.cosmology))
selection = HaloSelection.from_mapping(json.loads(sm.params.selection))
tables = []
for (region, snapshot), ahf_path, snap_path in zip(sm.params.pairs, sm.input.ahf, sm.input.snapshots):
    header = read_snapshot_header(snap_path)
    table = select_halos(
        read_ahf_halos(ahf_path),
        ahf_path=ahf_path,
        sim=sm.wildcards.sim,
        region=region,
        snapshot=snapshot,
        redshift=header.redshift,
        h=header.h,
        model=sm.params.model,
        selection=selection,
        cosmo=cosmo,
        particles=snapshot_matter(snap_path),
    )
    log.info("region %d snapshot %d (z = %.4f): %d halos selected", region, snapshot, header.redshift, len(table))
    tables.append(table)
halos = pd.concat(tables, ignore_index=True)
with atomic_path(sm.output[0]) as tmp:
    halos.to_csv(tmp, index=False, float_format="%.9g")
log.info("%d halos in %s", len(halos), sm.output[0])
