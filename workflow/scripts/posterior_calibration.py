"""Posterior calibration on held-out test maps: 68%/95% interval coverage and the PIT histogram.

Each test map's PIT comes from a KDE fitted on the other folds of the test maps (all redshift bins
pooled), the folds drawn by cluster identity so that no cluster sits on both sides.
"""
import numpy as np
import pandas as pd

from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.plots import pit_histogram, save_figure
from szmass.provenance import stamp_job
from szmass.sbi import crossfit_pit, interval_coverage
from szmass.splits import cluster_identity
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
tests = pd.read_csv(sm.input.tests)
groups = cluster_identity(open_maps(sm.input.maps).isel(map=tests["map"].to_numpy()), p.identity)
n_folds = min(p.folds, len(set(groups)))  # leave one cluster out when the test set has fewer clusters than folds
pit = crossfit_pit(tests["log10_M_cnn"].to_numpy(), tests["log10_M_true"].to_numpy(), groups,
                   n_folds=n_folds, seed=p.seed, bw_factor=p.bw_factor)
rows = []
for label, sel in [(f"z{b}", (tests["zbin"] == b).to_numpy()) for b in sorted(tests["zbin"].unique())] + \
        [("all", np.ones(len(tests), dtype=bool))]:
    rows.append({"zbin": label, "n": int(sel.sum())} | interval_coverage(pit[sel]))
table = pd.DataFrame(rows)
write_table(table, sm.output.table)
overall = table.iloc[-1]
save_figure(pit_histogram(pit, {k: overall[k] for k in table.columns if k.startswith("coverage")}), sm.output.figure)
log.info("coverage (all %d test maps, %d folds): %s", len(tests), n_folds, overall.to_dict())
stamp_job(sm)
