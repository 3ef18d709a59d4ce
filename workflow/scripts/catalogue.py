"""The PSZ2 mass catalogue (CSV and FITS) with KDE posteriors from the test maps of the sky's models, and
the posteriors of six Golden clusters (the three with the largest M_SZ, three drawn at random)."""
import numpy as np
import pandas as pd

from szmass.catalogue import bin_posteriors, build_catalogue, write_catalogue
from szmass.cosmology import make_cosmology
from szmass.logs import configure
from szmass.plots import posterior_examples, save_figure
from szmass.provenance import stamp_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
tests, sky = pd.read_csv(sm.input.tests), pd.read_csv(sm.input.sky)
posteriors = bin_posteriors(tests, sky["zbin"].to_numpy(), bw_factor=p.bw_factor, min_test_maps=p.min_test_maps)
cat = build_catalogue(sky, tests, make_cosmology(p.cosmology), posteriors=posteriors)
write_catalogue(cat, sm.output.csv, sm.output.fits, meta={"KDE_BW": p.bw_factor})
log.info("%d clusters, %d Golden -> %s", len(cat), int(cat["GOLDEN"].sum()), sm.output.csv)

golden = cat[cat["GOLDEN"] & np.isfinite(cat["LOG10_MSZ"])]
top = golden.nlargest(3, "MSZ").index
rest = golden.index.difference(top)
picks = list(top) + list(np.random.default_rng(p.seed).choice(rest, min(3, len(rest)), replace=False))
grids = [posteriors[int(cat.at[i, "ZBIN"])][0].grid for i in picks]
grid = np.linspace(min(g[0] for g in grids), max(g[-1] for g in grids), 1000)
pdfs = [np.interp(grid, g, posteriors[int(cat.at[i, "ZBIN"])][0].pdf(np.array([cat.at[i, "LOG10_M_CNN"]]))[0],
                  left=0.0, right=0.0) for i, g in zip(picks, grids)]
markers = [{"M_CNN": cat.at[i, "LOG10_M_CNN"], "M_SZ": cat.at[i, "LOG10_MSZ"],
            "truth": np.log10(cat.at[i, "M500_TRUE"]) if "M500_TRUE" in cat else np.nan} for i in picks]
titles = [f"{cat.at[i, 'NAME']}, z = {cat.at[i, 'REDSHIFT']:.2f}" for i in picks]
save_figure(posterior_examples(grid, pdfs, titles, markers), sm.output.examples)
stamp_job(sm)
