"""Supplementary Figures 1 (mass-redshift distribution of the mocks and of PSZ2, with marginal histograms) and
2 (example maps: three clusters, each clean, as a Planck mock and on the sky)."""
import xarray as xr

from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.plots import save_figure
from szmass.provenance import stamp_job
from szmass.supp_plots import example_grid, mass_redshift_marginals
from szmass.supplementary import example_pairs, map_catalogue, psz2_sample

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
clean, planck, sky = open_maps(sm.input.clean), open_maps(sm.input.planck), xr.open_zarr(sm.input.sky)
maps = map_catalogue(clean)
psz2 = psz2_sample(sky, p.hydrostatic_bias)
samples = {"simulated halos (clean mocks)": maps.drop_duplicates(subset="halo")[["redshift", "log10_M"]],
           f"PSZ2, $M_{{SZ}}$ / {p.hydrostatic_bias:g}": psz2[["redshift", "log10_M"]]}  # fmt: skip
save_figure(mass_redshift_marginals(samples, edges=p.edges), sm.output.supp_fig1)

# two clusters at z < 0.1 and one of about 1e15 Msun at z of about 0.5; on the sky, the PSZ2 cluster nearest
# in redshift and M_SZ / (1 - b) to each low-redshift one and to (1e15 Msun, z = 0.5)
pairs = example_pairs(maps, psz2, target_log10_m=15.0, target_z=0.5)
sky_log_m = psz2.set_index("cluster")["log10_M"]
rows, titles = [], []
for k, i in pairs:
    rows.append({"clean": clean["y"].isel(map=k).values, "planck": planck["y"].isel(map=k).values,
                 "sky": sky["y"].isel(cluster=i).values})  # fmt: skip
    label = rf"$\log M_{{500}}$ = {maps.at[k, 'log10_M']:.2f}, z = {maps.at[k, 'redshift']:.2f}"
    titles.append({"clean": f"clean mock: {label}", "planck": "the same map with Planck noise",
                   "sky": f"sky: {sky['name'].values[i]}, z = {float(sky['redshift'].values[i]):.2f}\n"
                          rf"$\log M_{{SZ}}/(1-b)$ = {sky_log_m[i]:.2f}"})  # fmt: skip
save_figure(example_grid(rows, titles, pixel_arcmin=p.pixel_arcmin), sm.output.supp_fig2)
log.info("examples (map, sky cluster): %s -> %s, %s", pairs, sm.output.supp_fig1, sm.output.supp_fig2)
stamp_job(sm)
