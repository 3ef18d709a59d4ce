"""Concatenate per-job CSV tables, in input order, into one table."""
import pandas as pd

from szmass.atomic import atomic_path
from szmass.logs import configure
from szmass.provenance import stamp_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
table = pd.concat([pd.read_csv(p) for p in sm.input], ignore_index=True)
with atomic_path(sm.output[0]) as tmp:
    table.to_csv(tmp, index=False, float_format="%.9g")
log.info("%d rows from %d tables -> %s", len(table), len(sm.input), sm.output[0])
stamp_job(sm)
