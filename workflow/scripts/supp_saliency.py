"""Supplementary Figures 9 and 10: saliency examples and the radial distribution of unit-sum saliency maps
on the sky data set's test maps, on the sky and on the Golden sample (R500 of a sky cluster from its M_CNN)."""
import keras
import numpy as np
import pandas as pd
import xarray as xr

from szmass.cosmology import make_cosmology, r500_from_m500, r500_pixels
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.plots import save_figure
from szmass.provenance import stamp_job
from szmass.saliency import saliency_by_bin, sample_rows
from szmass.splits import cluster_identity
from szmass.supp_plots import example_label, radial_distribution_figure, saliency_examples
from szmass.supplementary import (
    centroid_offset,
    distribution_summary,
    has_saliency,
    peak_radius,
    pick_saliency_examples,
    radial_distribution,
    unit_sum,
)
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
cosmo = make_cosmology(p.cosmology)
models = [keras.saving.load_model(path, compile=False) for path in sm.input.models]

tests = sample_rows(pd.read_csv(sm.input.tests), p.max_maps, p.seed)
ds = open_maps(sm.input.maps).isel(map=tests["map"].to_numpy())
maps = ds["y"].values.astype(np.float32)
r500 = r500_pixels(ds["R500"].values, ds["redshift"].values, cosmo, p.pixel_arcmin)
raw = saliency_by_bin(models, maps, tests["zbin"].to_numpy())
keep = has_saliency(raw)
if not keep.all():  # a bin's network flat around these maps: they have no saliency distribution
    log.warning("%d of %d test maps left out: zero saliency (bins %s)", (~keep).sum(), keep.size,
                sorted(set(tests.loc[~keep, "zbin"])))  # fmt: skip
    tests, ds, maps, r500, raw = tests[keep].reset_index(drop=True), ds.isel(map=np.flatnonzero(keep)), maps[keep], r500[keep], raw[keep]
saliency = unit_sum(raw)

# the disturbance of a cluster is read off its clean map (the same map index), free of the mocks' noise
clean = open_maps(sm.input.clean)["y"].isel(map=tests["map"].to_numpy()).values
# one example per cluster and snapshot, not several projections of one, where the test maps hold enough of them
groups = np.array([f"{c}/{s}" for c, s in zip(cluster_identity(ds, p.identity), ds["snapshot"].values, strict=True)])
if np.unique(groups).size < 8:
    log.warning("%d clusters among the test maps: examples may be projections of one cluster", np.unique(groups).size)
    groups = None
picks = pick_saliency_examples(tests["log10_M_cnn"], tests["log10_M_true"], centroid_offset(clean, r500),
                               groups=groups)  # fmt: skip
index = [i for kind in ("good", "bad", "merger") for i in picks[kind]]
titles = [f"{kind}:\n" + example_label(tests.at[i, "log10_M_true"], tests.at[i, "log10_M_cnn"], tests.at[i, "redshift"])
          for kind in ("good", "bad", "merger") for i in picks[kind]]  # fmt: skip
save_figure(saliency_examples(maps[index], saliency[index], titles, r500[index], pixel_arcmin=p.pixel_arcmin,
                              ncols=2), sm.output.fig9)  # fmt: skip
log.info("Supp. Fig. 9: examples %s of %d test maps -> %s", picks, len(tests), sm.output.fig9)

sky_table = pd.read_csv(sm.input.sky).set_index("name")
cutouts = xr.open_zarr(sm.input.sky_maps)
names = np.asarray(cutouts["name"].values).astype(object).astype(str)
sky = sky_table.loc[names].reset_index()
m_cnn = 10.0 ** sky["log10_M_cnn"].to_numpy(float)
sky_r500 = r500_pixels(r500_from_m500(cosmo, m_cnn, sky["redshift"].to_numpy(float)), sky["redshift"].to_numpy(float),
                       cosmo, p.pixel_arcmin)  # fmt: skip
raw = saliency_by_bin(models, cutouts["y"].values.astype(np.float32), sky["zbin"].to_numpy())
keep = has_saliency(raw)
if not keep.all():
    log.warning("%d of %d sky clusters left out: zero saliency (bins %s)", (~keep).sum(), keep.size,
                sorted(set(sky.loc[~keep, "zbin"])))  # fmt: skip
sky, sky_r500, sky_saliency = sky[keep].reset_index(drop=True), sky_r500[keep], unit_sum(raw[keep])
golden = sky["golden"].to_numpy(bool)
samples = {f"{p.dataset} test maps": (saliency, r500), "sky": (sky_saliency, sky_r500),
           "Golden sample": (sky_saliency[golden], sky_r500[golden])}
summaries = {label: distribution_summary(radial_distribution(s, r)) for label, (s, r) in samples.items() if len(s)}
save_figure(radial_distribution_figure(summaries), sm.output.fig10)
table = pd.concat([s.assign(sample=label, peak=s["r_lo"] == peak_radius(s)[0]) for label, s in summaries.items()])
write_table(table[["sample", *summaries["sky"].columns, "peak"]], sm.output.table)
for label, s in summaries.items():
    log.info("Supp. Fig. 10: %s peaks at %.1f-%.1f R500 (the paper: 0.4-1.2)", label, *peak_radius(s))
stamp_job(sm)
