"""Supplementary Table 3 (mean b_t and its standard error per (train model, test model)) and Supplementary
Figure 11 (the distributions of b_t) of the cross-model test (szmass.studies, szmass.supp_plots)."""
import pandas as pd

from szmass.logs import configure
from szmass.plots import save_figure
from szmass.provenance import stamp_job
from szmass.studies import cross_model_table
from szmass.supp_plots import cross_model_figure
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
cut = sm.params.min_log10_m500
tests = pd.concat([pd.read_csv(path) for path in sm.input], ignore_index=True)
table = cross_model_table({pair: part for pair, part in tests.groupby(["train_model", "test_model"], sort=True)},
                          min_log10_m500=cut)  # fmt: skip
write_table(table, sm.output.table)
save_figure(cross_model_figure(tests, min_log10_m500=cut), sm.output.figure)
log.info("cross-model bias (test maps with log10 M500 >= %s):\n%s", cut, table.to_string(index=False))
stamp_job(sm)
