"""The halo table of one simulation: the per-job CSV tables concatenated in input order (an error if empty)."""
import pandas as pd

from szmass.config_checks import check_halos_selected
from szmass.logs import configure
from szmass.provenance import stamp_job
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
table = pd.concat([pd.read_csv(p) for p in sm.input], ignore_index=True)
check_halos_selected(len(table), sm.params.selection, sm.wildcards.sim)
write_table(table, sm.output[0])
log.info("%d rows from %d tables -> %s", len(table), len(sm.input), sm.output[0])
stamp_job(sm)
