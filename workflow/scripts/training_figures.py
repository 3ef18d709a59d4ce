"""Learning curves of every run (the selected one highlighted) and the estimates' predicted-against-true masses
of one data set."""
import os

import pandas as pd

from szmass.logs import configure
from szmass.plots import learning_curves, predicted_vs_true, save_figure
from szmass.provenance import stamp_job
from szmass.rundir import read_history, read_selection
from szmass.runs import estimate_runs

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
histories, selected = {}, {}
for zbin, path in p.selections.items():
    table = read_selection(path)
    label = f"z{zbin}"
    histories[label] = {os.path.basename(run): read_history(run) for run in table["run_dir"]}
    runs = estimate_runs(table)
    if len(runs) == 1:  # a mean of several runs highlights none
        selected[label] = os.path.basename(runs[0])
save_figure(learning_curves(histories, selected, mass=p.target_mass), sm.output.learning_curves)
save_figure(predicted_vs_true(pd.read_csv(sm.input.tests), edges=p.edges), sm.output.predicted_vs_true)
log.info("-> %s, %s", sm.output.learning_curves, sm.output.predicted_vs_true)
stamp_job(sm)
