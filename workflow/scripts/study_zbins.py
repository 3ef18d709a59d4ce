"""Supplementary Table 1 and its figure: moments of log10 M_CNN / M_true per redshift binning (szmass.studies)."""
from szmass.logs import configure
from szmass.plots import save_figure
from szmass.provenance import stamp_job
from szmass.runs import estimate_predictions
from szmass.studies import plot_zbin_study, zbin_moments
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
predictions = {int(n): estimate_predictions(bins) for n, bins in sm.params.selections.items()}
moments = zbin_moments(predictions, {int(n): e for n, e in sm.params.schemes.items()})
write_table(moments, sm.output.table)
save_figure(plot_zbin_study(predictions, moments), sm.output.figure)
log.info("moments of the bins combined:\n%s", moments[moments["zbin"] == "all"].to_string(index=False))
stamp_job(sm)
