"""Supplementary Table 2 (bias statistics), the log-residual moments, and ensemble versus selected model
(szmass.paper_tables)."""
import pandas as pd

from szmass.logs import configure
from szmass.paper_tables import bias_and_moments, bias_samples, ensemble_comparison
from szmass.provenance import stamp_job
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
selected = {ds: pd.read_csv(path) for ds, path in zip(p.datasets, sm.input.selected)}
ensemble = {ds: pd.read_csv(path) for ds, path in zip(p.datasets, sm.input.ensemble)}
truth = pd.read_csv(sm.input.truth[0]) if sm.input.truth else None  # a synthetic sky
samples = bias_samples(selected, pd.read_csv(sm.input.sky), truth=truth, sky_dataset=p.sky_dataset)
log.info("samples: %s", ", ".join(f"{s.name} {s.statistic} ({len(s.table)} rows)" for s in samples))
bias, moments = bias_and_moments(samples)
for table, out in ((bias, sm.output.bias), (moments, sm.output.moments),
                   (ensemble_comparison(selected, ensemble), sm.output.ensemble)):
    write_table(table, out)
    log.info("%d rows -> %s", len(table), out)
stamp_job(sm)
