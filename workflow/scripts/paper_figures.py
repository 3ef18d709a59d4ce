"""Figures 1-3 of the paper from the test-set predictions of the mocks and the sky's predictions; Figure 3's
experiment (Y-M masses of the simulated test maps from their own Y500) and its summary table, with the check
of Y500 measured on the maps themselves."""
import pandas as pd

from szmass.cosmology import make_cosmology
from szmass.evaluate import ym_experiment, ym_experiment_summary, ym_map_check, ym_map_table
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.plots import figure1, figure2, figure3, save_figure
from szmass.provenance import stamp_job
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
tables = {ds: pd.read_csv(path) for ds, path in zip(p.datasets, sm.input.selected)}
sky = pd.read_csv(sm.input.sky).dropna(subset=["log10_MSZ"])
save_figure(figure1(tables, n_points=p.points, seed=p.seed, edges=p.edges), sm.output.figure1)
save_figure(figure2(sky, n_bins=p.n_bins, seed=p.seed, edges=p.edges), sm.output.figure2)
maps, tests, cosmo = open_maps(sm.input.ym_maps), pd.read_csv(sm.input.ym_tests), make_cosmology(p.cosmology)
experiment = ym_experiment(tests, ym_map_table(maps), cosmo)
save_figure(figure3(experiment, sky, n_bins=p.n_bins), sm.output.figure3)
# the paper's check: Y500 measured on the (Planck-mock) maps gives the same for clusters with R500 > 5 pixels
check = ym_map_check(tests, maps, cosmo, pixel_arcmin=p.pixel_arcmin)
summary = ym_experiment_summary(pd.concat([experiment, check], ignore_index=True), sky, n_bins=p.n_bins)
write_table(summary, sm.output.figure3_table)
log.info("Figure 3 experiment:\n%s", summary.to_string())
log.info("-> %s, %s, %s, %s", sm.output.figure1, sm.output.figure2, sm.output.figure3, sm.output.figure3_table)
stamp_job(sm)
