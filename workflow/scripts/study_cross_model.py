"""Supplementary Table 3: mean b_t and its standard error per (train model, test model) (szmass.studies)."""
import pandas as pd

from szmass.atomic import atomic_path
from szmass.logs import configure
from szmass.provenance import stamp_job
from szmass.studies import cross_model_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
tests = pd.concat([pd.read_csv(path) for path in sm.input], ignore_index=True)
table = cross_model_table({pair: part for pair, part in tests.groupby(["train_model", "test_model"], sort=True)})
with atomic_path(sm.output[0]) as tmp:
    table.to_csv(tmp, index=False)
log.info("cross-model bias:\n%s", table.to_string(index=False))
stamp_job(sm)
