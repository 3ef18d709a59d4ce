"""Gather the projection jobs' part stores into one map store."""
from szmass.logs import configure
from szmass.mapstore import gather
from szmass.provenance import stamp_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
gather(list(sm.input), sm.output[0])
log.info("%d parts -> %s", len(sm.input), sm.output[0])
stamp_job(sm)
