"""Download a public input (e.g. the PSZ2 catalogue) to the configured path, gunzipping ``.gz``."""
from szmass.download import fetch
from szmass.logs import configure
from szmass.provenance import stamp_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
fetch(sm.params.url, sm.output[0], sha256=sm.params.sha256)
log.info("%s -> %s", sm.params.url, sm.output[0])
stamp_job(sm)
