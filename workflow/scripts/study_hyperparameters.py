"""The hyperparameter scan's table of least validation losses and its box plot (szmass.studies)."""
from szmass.architecture import Architecture
from szmass.logs import configure
from szmass.plots import save_figure, validation_boxplot
from szmass.provenance import stamp_job
from szmass.studies import hyperparameter_table, validation_losses
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
runs = [(Architecture.from_name(a), int(s), d) for a, s, d in sm.params.runs]
table = hyperparameter_table(runs, side=sm.params.map_npix)
write_table(table, sm.output.table)
save_figure(validation_boxplot(validation_losses(table)), sm.output.figure)
log.info("median least validation loss [dex^2]:\n%s", table.groupby("architecture", sort=False)["best_val_loss"].median())
stamp_job(sm)
