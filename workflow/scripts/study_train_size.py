"""The training-set-size curve: the test scatter per fraction of the training clusters and seed against the number
of training clusters (szmass.studies)."""
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.plots import save_figure
from szmass.provenance import stamp_job
from szmass.splits import cluster_identity
from szmass.studies import train_size_table
from szmass.supp_plots import train_size_figure
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
identity = cluster_identity(open_maps(sm.input.maps), sm.params.identity)
table = train_size_table([(float(f), int(s), d) for f, s, d in sm.params.runs], identity)
write_table(table, sm.output.table)
save_figure(train_size_figure(table), sm.output.figure)
log.info("test scatter [dex] per fraction of the training clusters:\n%s", table.to_string(index=False))
stamp_job(sm)
