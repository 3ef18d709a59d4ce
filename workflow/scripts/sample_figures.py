"""Supplementary Figures 1 (mass-redshift distribution of the mocks and of PSZ2, with marginal histograms) and
2 (example maps: three clusters, each clean, as a Planck mock and on the sky)."""
import numpy as np
import pandas as pd
import xarray as xr

from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.plots import save_figure
from szmass.provenance import stamp_job
from szmass.supp_plots import example_grid, mass_redshift_marginals
from szmass.supplementary import nearest_clusters, pick_example_maps, psz2_log10_m500

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
clean, planck, sky = open_maps(sm.input.clean), open_maps(sm.input.planck), xr.open_zarr(sm.input.sky)
maps = clean[["sim", "region", "snapshot", "halo_id", "redshift", "M500"]].reset_coords().to_dataframe()
maps = maps.reset_index(drop=True).assign(log10_M=lambda t: np.log10(t["M500"]))
halos = maps.drop_duplicates(subset=["sim", "region", "snapshot", "halo_id"])
msz = sky["MSZ"].values.astype(float)
psz2 = pd.DataFrame({"redshift": sky["redshift"].values.astype(float),
                     "log10_M": psz2_log10_m500(np.log10(np.where(msz > 0, msz, np.nan)), p.hydrostatic_bias)})
psz2 = psz2.assign(cluster=np.arange(len(psz2))).dropna()
samples = {"simulated halos (clean mocks)": halos[["redshift", "log10_M"]],
           f"PSZ2, $M_{{SZ}}$ / {p.hydrostatic_bias:g}": psz2[["redshift", "log10_M"]]}  # fmt: skip
save_figure(mass_redshift_marginals(samples, edges=p.edges), sm.output.supp_fig1)

# two clusters at z < 0.1 and one of about 1e15 Msun at z of about 0.5; on the sky, the PSZ2 cluster nearest
# in redshift and M_SZ / (1 - b) to each low-redshift one and to (1e15 Msun, z = 0.5)
table = maps.assign(halo=maps[["sim", "region", "snapshot", "halo_id"]].astype(str).agg("/".join, axis=1))
high_log10_m, high_z = 15.0, 0.5
picks = pick_example_maps(table, target_log10_m=high_log10_m, target_z=high_z)
targets_z = [*table["redshift"].to_numpy()[picks[:-1]], high_z]
targets_m = [*table["log10_M"].to_numpy()[picks[:-1]], high_log10_m]
nearest = psz2["cluster"].to_numpy()[nearest_clusters(targets_z, targets_m, psz2["redshift"], psz2["log10_M"])]
rows, titles = [], []
for k, i in zip(picks, nearest, strict=True):
    rows.append({"clean": clean["y"].isel(map=k).values, "planck": planck["y"].isel(map=k).values,
                 "sky": sky["y"].isel(cluster=int(i)).values})  # fmt: skip
    label = rf"$\log M_{{500}}$ = {table.at[k, 'log10_M']:.2f}, z = {table.at[k, 'redshift']:.2f}"
    sky_log_m = psz2.set_index("cluster").at[int(i), "log10_M"]
    titles.append({"clean": f"clean mock: {label}", "planck": "the same map with Planck noise",
                   "sky": f"sky: {sky['name'].values[int(i)]}, z = {float(sky['redshift'].values[int(i)]):.2f}\n"
                          rf"$\log M_{{SZ}}/(1-b)$ = {sky_log_m:.2f}"})  # fmt: skip
save_figure(example_grid(rows, titles, pixel_arcmin=p.pixel_arcmin), sm.output.supp_fig2)
log.info("examples: maps %s, sky clusters %s -> %s, %s", picks, [int(i) for i in nearest], sm.output.supp_fig1,
         sm.output.supp_fig2)
stamp_job(sm)
