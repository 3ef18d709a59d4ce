"""CNN masses of the sky cutouts (results/sky/predictions.csv) with each bin's estimate, and their spread across
the runs it averages or else the bin's ensemble of passing runs (szmass.runs.spread_members,
szmass.catalogue.sky_predictions)."""
from pathlib import Path

import xarray as xr

from szmass.catalogue import sky_predictions
from szmass.logs import configure
from szmass.predict import load_models, load_run_model
from szmass.provenance import stamp_job
from szmass.rundir import MODEL_FILE, read_selection
from szmass.runs import spread_members
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
members = {int(b): [load_run_model(Path(run) / MODEL_FILE) for run in spread_members(read_selection(path))]
           for b, path in sm.params.selections.items()}
table = sky_predictions(xr.open_zarr(sm.input.sky), load_models(sm.params.models_dir), members=members,
                        source=sm.input.sky)
write_table(table, sm.output[0])
log.info("%d clusters (%d Golden) -> %s", len(table), int(table["golden"].sum()), sm.output[0])
flagged = table[table["warning"] != ""]
for name, warning in zip(flagged["name"], flagged["warning"]):  # kept, flagged in the catalogue's WARNING
    log.warning("%s: out of range: %s", name, warning)
stamp_job(sm)
