"""Supplementary Table 2 (bias statistics), the log-residual moments, and ensemble versus selected model."""
import pandas as pd

from szmass.evaluate import bias_table, moments_table
from szmass.logs import configure
from szmass.provenance import stamp_job
from szmass.runs import compare_estimates
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
selected = {ds: pd.read_csv(path) for ds, path in zip(sm.params.datasets, sm.input.selected)}
ensemble = {ds: pd.read_csv(path) for ds, path in zip(sm.params.datasets, sm.input.ensemble)}
sky = pd.read_csv(sm.input.sky)
golden = sky[sky["golden"]]

# b_t = (M_CNN - M_true) / M_CNN on the mocks' test maps (and on a synthetic sky, whose truth is known);
# b_P = (M_CNN - M_SZ) / M_CNN against PSZ2's masses, for every cluster and for the Golden sample
samples = [(ds, "b_t", table, "log10_M_true") for ds, table in selected.items()]
samples += [("sky", "b_P", sky, "log10_MSZ"), ("golden", "b_P", golden, "log10_MSZ")]
if "log10_M_true" in sky:
    samples += [("sky", "b_t", sky, "log10_M_true"), ("golden", "b_t", golden, "log10_M_true")]
if sm.input.truth:  # a synthetic sky: its clusters whose injected halo the sky's models never trained on
    injected = pd.read_csv(sm.input.truth[0]).set_index("NAME").loc[sky["name"], "map_index"].to_numpy()
    unseen = sky[pd.Series(injected).isin(selected[sm.params.sky_dataset]["map"]).to_numpy()]
    log.info("%d of %d sky clusters hold a test-set halo of the %s models", len(unseen), len(sky), sm.params.sky_dataset)
    samples += [("sky_unseen", "b_t", unseen, "log10_M_true"), ("sky_unseen", "b_P", unseen, "log10_MSZ")]
bias = pd.concat([bias_table(t.dropna(subset=[ref]), ref=ref).assign(sample=name, statistic=stat)
                  for name, stat, t, ref in samples], ignore_index=True)
moments = pd.concat([moments_table(t.dropna(subset=[ref]), ref=ref).assign(sample=name, reference=ref)
                     for name, stat, t, ref in samples], ignore_index=True)
compare = pd.concat([compare_estimates({"selected": selected[ds], "ensemble": ensemble[ds]}).assign(dataset=ds)
                     for ds in sm.params.datasets], ignore_index=True)
for table, out in ((bias, sm.output.bias), (moments, sm.output.moments), (compare, sm.output.ensemble)):
    first = [c for c in ("sample", "statistic", "reference", "dataset") if c in table]
    write_table(table[first + [c for c in table if c not in first]], out)
    log.info("%d rows -> %s", len(table), out)
stamp_job(sm)
