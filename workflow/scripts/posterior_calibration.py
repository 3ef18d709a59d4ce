"""Posterior calibration on held-out test maps (szmass.catalogue.posterior_calibration): 68%/95% interval
coverage before and after the cross-fitted PIT recalibration, the held-out PITs (which the catalogue's
recalibration is fitted on) and their histograms. Folds are drawn by cluster identity, so that no cluster
sits on both sides."""
import pandas as pd

from szmass.catalogue import posterior_calibration
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.plots import pit_histogram, save_figure
from szmass.provenance import stamp_job
from szmass.splits import cluster_identity
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
tests = pd.read_csv(sm.input.tests)
groups = cluster_identity(open_maps(sm.input.maps).isel(map=tests["map"].to_numpy()), p.identity)
table, pits = posterior_calibration(tests, groups, n_folds=p.folds, seed=p.seed, bw_factor=p.bw_factor,
                                    min_test_maps=p.min_test_maps)
write_table(table, sm.output.table)
write_table(pits, sm.output.pit)
overall = table.iloc[-1]
for column, prefix, figure in (("pit", "", sm.output.figure), ("pit_recalibrated", "recal_", sm.output.recalibrated)):
    coverage = {k.removeprefix(prefix): overall[k] for k in table.columns if k.startswith(f"{prefix}coverage")}
    save_figure(pit_histogram(pits[column], coverage), figure)
log.info("coverage (all %d test maps): %s", len(tests), overall.to_dict())
stamp_job(sm)
