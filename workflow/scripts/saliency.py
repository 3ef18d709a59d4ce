"""Saliency |dM_CNN/d pixel| of the sky models on their test maps: examples and the radial profile.

Examples: the best- and the worst-predicted test map, and the most disturbed one (largest offset between
the map's y-weighted centroid within R500 and its centre: a merger or a bright neighbour).
"""
import keras
import numpy as np
import pandas as pd

from szmass.atomic import atomic_path
from szmass.cosmology import make_cosmology
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.plots import saliency_figure, saliency_profile, save_figure
from szmass.provenance import stamp_job
from szmass.saliency import r500_pixels, radial_profile, saliency_maps

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
tests = pd.read_csv(sm.input.tests)
rng = np.random.default_rng(p.seed)
if len(tests) > p.max_maps:
    tests = tests.iloc[np.sort(rng.choice(len(tests), p.max_maps, replace=False))].reset_index(drop=True)
ds = open_maps(sm.input.maps).isel(map=tests["map"].to_numpy())
maps = ds["y"].values.astype(np.float32)
saliency = np.zeros_like(maps)
for zbin, path in enumerate(sm.input.models, start=1):
    rows = (tests["zbin"] == zbin).to_numpy()
    if rows.any():
        saliency[rows] = saliency_maps(keras.saving.load_model(path, compile=False), maps[rows])
r500 = r500_pixels(ds["R500"].values, ds["redshift"].values, make_cosmology(p.cosmology), p.pixel_arcmin)
profile = radial_profile(saliency, r500)
with atomic_path(sm.output.table) as tmp:
    profile.to_csv(tmp, index=False, float_format="%.6g")
save_figure(saliency_profile(profile), sm.output.profile)

resid = np.abs(tests["log10_M_cnn"] - tests["log10_M_true"]).to_numpy()
jj, ii = np.indices(maps.shape[1:]) - (maps.shape[1] / 2 - 0.5)
inside = np.hypot(jj, ii)[None] <= r500[:, None, None]
w = np.where(inside, maps, 0.0)
offset = np.hypot((w * ii).sum((1, 2)), (w * jj).sum((1, 2))) / w.sum((1, 2)) / r500
picks = {"best predicted": int(np.argmin(resid)), "worst predicted": int(np.argmax(resid)),
         "most disturbed": int(np.argmax(offset))}
titles = [f"{label}: log M_CNN/M_true = {tests['log10_M_cnn'][k] - tests['log10_M_true'][k]:+.3f}"
          for label, k in picks.items()]
index = list(picks.values())
save_figure(saliency_figure(maps[index], saliency[index], titles), sm.output.examples)
log.info("%d test maps; examples %s -> %s", len(tests), picks, sm.output.examples)
stamp_job(sm)
