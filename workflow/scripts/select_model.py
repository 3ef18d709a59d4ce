"""Apply the selection rule to every run of one bin: selection.csv, and best.keras (the selected run, or the
mean of every run with training.estimator: mean)."""
import os

from szmass.logs import configure
from szmass.provenance import stamp_job
from szmass.select import select_model

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
table, chosen = select_model(sm.params.run_dirs, threshold=sm.params.threshold, n_bins=sm.params.n_bins,
                             out_dir=os.path.dirname(sm.output.best), estimator=sm.params.estimator)
log.info("%d of %d runs pass; selected %s; best.keras: %s", int(table["passed"].sum()), len(table), chosen,
         "the selected run" if sm.params.estimator == "selected" else f"the mean of {len(table)} runs")
stamp_job(sm)
