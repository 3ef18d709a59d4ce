"""Supplementary Figure 4 of one data set from its per-bin selection tables."""
from szmass.logs import configure
from szmass.provenance import stamp_job
from szmass.rundir import read_selection
from szmass.select import plot_pass_counts

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
edges = sm.params.edges
selections = {f"{lo:g} < z <= {hi:g}": read_selection(path) for lo, hi, path in zip(edges[:-1], edges[1:], sm.input)}
plot_pass_counts(selections, sm.output[0], threshold=sm.params.threshold)
log.info("-> %s", sm.output[0])
stamp_job(sm)
