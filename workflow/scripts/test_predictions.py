"""Test-set predictions of one data set: the selected run of each bin and the ensemble of passing runs."""
from szmass.atomic import atomic_path
from szmass.logs import configure
from szmass.provenance import stamp_job
from szmass.runs import ensemble_predictions, selected_predictions

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
selections = {int(b): path for b, path in sm.params.selections.items()}
for table, out in ((selected_predictions(selections), sm.output.selected),
                   (ensemble_predictions(selections), sm.output.ensemble)):
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.9g")
    log.info("%d test maps -> %s", len(table), out)
stamp_job(sm)
