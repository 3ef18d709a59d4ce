"""Saliency |dM_CNN/d pixel| of the sky models on their test maps: examples and the radial profile.

Examples (szmass.supplementary.pick_saliency_examples): the best-predicted test map, the most disturbed of the
others (largest offset between the map's y-weighted centroid within R500 and its centre, a merger or a bright
neighbour: szmass.supplementary.centroid_offset) and the worst-predicted of the rest.
"""
import keras
import numpy as np
import pandas as pd

from szmass.cosmology import make_cosmology, r500_pixels
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.plots import saliency_figure, saliency_profile, save_figure
from szmass.provenance import stamp_job
from szmass.saliency import radial_profile, saliency_by_bin, sample_rows
from szmass.supplementary import centroid_offset, pick_saliency_examples
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
tests = sample_rows(pd.read_csv(sm.input.tests), p.max_maps, p.seed)
ds = open_maps(sm.input.maps).isel(map=tests["map"].to_numpy())
maps = ds["y"].values.astype(np.float32)
models = [keras.saving.load_model(path, compile=False) for path in sm.input.models]
saliency = saliency_by_bin(models, maps, tests["zbin"].to_numpy())
r500 = r500_pixels(ds["R500"].values, ds["redshift"].values, make_cosmology(p.cosmology), p.pixel_arcmin)
profile = radial_profile(saliency, r500)
write_table(profile, sm.output.table)
save_figure(saliency_profile(profile), sm.output.profile)

examples = pick_saliency_examples(tests["log10_M_cnn"], tests["log10_M_true"], centroid_offset(maps, r500),
                                  n_good=1, n_bad=2)
picks = {"best predicted": examples["good"][0], "worst predicted": examples["bad"][0],
         "most disturbed": examples["merger"][0]}
titles = [f"{label}: log M_CNN/M_true = {tests['log10_M_cnn'][k] - tests['log10_M_true'][k]:+.3f}"
          for label, k in picks.items()]
index = list(picks.values())
save_figure(saliency_figure(maps[index], saliency[index], titles), sm.output.examples)
log.info("%d test maps; examples %s -> %s", len(tests), picks, sm.output.examples)
stamp_job(sm)
