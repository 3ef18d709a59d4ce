"""Select the halos of one snapshot from its AHF catalogue (results/halos/parts/...)."""
import json

from szmass.atomic import atomic_path
from szmass.cosmology import make_cosmology
from szmass.halos import HaloSelection, check_redshift, select_halos, snapshot_matter
from szmass.logs import configure
from szmass.sims import read_ahf_halos, read_snapshot_header

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
header = read_snapshot_header(sm.params.snapshot)
check_redshift(sm.params.snapshot, header.redshift, float(sm.params.redshift))
table = select_halos(
    read_ahf_halos(sm.input.ahf),
    ahf_path=sm.input.ahf,
    sim=sm.wildcards.sim,
    region=int(sm.wildcards.region),
    snapshot=int(sm.wildcards.snapshot),
    redshift=header.redshift,
    h=header.h,
    model=sm.params.model,
    selection=HaloSelection.from_mapping(json.loads(sm.params.selection)),
    cosmo=make_cosmology(json.loads(sm.params.cosmology)),
    particles=snapshot_matter(sm.params.snapshot),
)
with atomic_path(sm.output[0]) as tmp:
    table.to_csv(tmp, index=False, float_format="%.9g")
log.info("region %s snapshot %s (z = %.4f): %d halos selected", sm.wildcards.region, sm.wildcards.snapshot, header.redshift, len(table))
