"""The PSZ2 mass catalogue (CSV and FITS) with KDE posteriors from the test maps of the sky's models."""
import pandas as pd

from szmass.catalogue import build_catalogue, write_catalogue
from szmass.cosmology import make_cosmology
from szmass.logs import configure
from szmass.provenance import stamp_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
cat = build_catalogue(pd.read_csv(sm.input.sky), pd.read_csv(sm.input.tests), make_cosmology(p.cosmology),
                      bw_factor=p.bw_factor, min_test_maps=p.min_test_maps)
write_catalogue(cat, sm.output.csv, sm.output.fits, meta={"KDE_BW": p.bw_factor})
log.info("%d clusters, %d Golden -> %s", len(cat), int(cat["GOLDEN"].sum()), sm.output.csv)
stamp_job(sm)
