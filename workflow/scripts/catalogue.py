"""The PSZ2 mass catalogue (CSV and FITS) with KDE posteriors from the test maps of the sky's models, their
recalibrated percentiles (the held-out PITs of rule posterior_calibration), and the posteriors of six Golden
clusters (szmass.catalogue)."""
import pandas as pd

from szmass.catalogue import build_catalogue, posterior_example_panels, write_catalogue
from szmass.cosmology import make_cosmology
from szmass.logs import configure
from szmass.plots import posterior_examples, save_figure
from szmass.provenance import stamp_job
from szmass.sbi import PITRecalibration, bin_posteriors

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
tests, sky = pd.read_csv(sm.input.tests), pd.read_csv(sm.input.sky)
posteriors = bin_posteriors(tests, sky["zbin"].to_numpy(), bw_factor=p.bw_factor, min_test_maps=p.min_test_maps)
recalibration = PITRecalibration.fit(pd.read_csv(sm.input.pit)["pit"])
cat = build_catalogue(sky, tests, make_cosmology(p.cosmology), posteriors=posteriors, recalibration=recalibration)
write_catalogue(cat, sm.output.csv, sm.output.fits, meta={"KDE_BW": p.bw_factor})
log.info("%d clusters, %d Golden -> %s", len(cat), int(cat["GOLDEN"].sum()), sm.output.csv)
save_figure(posterior_examples(*posterior_example_panels(cat, posteriors, seed=p.seed)), sm.output.examples)
stamp_job(sm)
