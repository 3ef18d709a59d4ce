"""The high-resolution data set: the kept high-resolution maps averaged onto the network's input grid."""
from szmass.hiresmaps import hires_store
from szmass.logs import configure
from szmass.provenance import stamp_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
hires_store(sm.input.clean, list(sm.input.hires), sm.output[0])
stamp_job(sm)
