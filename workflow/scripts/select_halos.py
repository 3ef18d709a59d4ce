"""Select the halos of one region's chunk of snapshots from their AHF catalogues (results/halos/parts/...)."""
from szmass.cosmology import make_cosmology
from szmass.halos import HaloSelection, concat_halo_tables, select_snapshot_halos
from szmass.logs import configure
from szmass.provenance import stamp_job
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
selection = HaloSelection.from_mapping(sm.params.selection)
cosmo = make_cosmology(sm.params.cosmology)
tables = []
for snap in sm.params.snapshots:  # in snapshot order
    tables.append(select_snapshot_halos(
        snap["path"], snap["ahf"], sim=sm.wildcards.sim, region=int(sm.wildcards.region),
        snapshot=snap["snapshot"], redshift=snap["redshift"], model=sm.params.model, selection=selection,
        cosmo=cosmo,
    ))
    log.info("region %s snapshot %s (z = %.4f): %d halos selected", sm.wildcards.region, snap["snapshot"],
             snap["redshift"], len(tables[-1]))
write_table(concat_halo_tables(tables), sm.output[0])
stamp_job(sm)
