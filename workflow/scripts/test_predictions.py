"""Test-set predictions of one data set: each bin's estimate (its selected run, or the mean of its runs) and the
ensemble of passing runs."""
from szmass.logs import configure
from szmass.provenance import stamp_job
from szmass.runs import ensemble_predictions, estimate_predictions
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
selections = {int(b): path for b, path in sm.params.selections.items()}
for table, out in ((estimate_predictions(selections), sm.output.selected),
                   (ensemble_predictions(selections), sm.output.ensemble)):
    write_table(table, out)
    log.info("%d test maps -> %s", len(table), out)
stamp_job(sm)
