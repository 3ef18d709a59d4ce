"""The learning-rate scan's table of least validation losses and its box plot (szmass.studies)."""
from szmass.logs import configure
from szmass.plots import save_figure, validation_boxplot
from szmass.provenance import stamp_job
from szmass.studies import learning_rate_table
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
table = learning_rate_table([(float(r), int(s), d) for r, s, d in sm.params.runs])
write_table(table, sm.output.table)
losses = {f"lr {rate:g}": part["best_val_loss"].to_numpy(float)
          for rate, part in table.groupby("learning_rate", sort=False)}  # fmt: skip
save_figure(validation_boxplot(losses), sm.output.figure)
log.info("median least validation loss [dex^2] per learning rate:\n%s",
         table.groupby("learning_rate", sort=False)["best_val_loss"].median())
stamp_job(sm)
