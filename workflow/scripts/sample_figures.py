"""Supplementary Figures 1 (mass-redshift distribution of the mocks and of PSZ2) and 2 (example maps)."""
import numpy as np
import pandas as pd
import xarray as xr

from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.plots import example_maps, mass_redshift, save_figure
from szmass.provenance import stamp_job
from szmass.synthsky import match_halos

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
clean, planck, sky = open_maps(sm.input.clean), open_maps(sm.input.planck), xr.open_zarr(sm.input.sky)
halos = clean[["sim", "region", "snapshot", "halo_id", "redshift", "M500"]].reset_coords().to_dataframe()
halos = halos.drop_duplicates(subset=["sim", "region", "snapshot", "halo_id"])
psz2 = pd.DataFrame({"redshift": sky["redshift"].values, "MSZ": sky["MSZ"].values}).query("MSZ > 0")
samples = {"simulated halos (clean mocks)": pd.DataFrame({"redshift": halos["redshift"], "log10_M": np.log10(halos["M500"])}),
           "PSZ2 (M_SZ)": pd.DataFrame({"redshift": psz2["redshift"], "log10_M": np.log10(psz2["MSZ"])})}
save_figure(mass_redshift(samples, edges=p.edges), sm.output.supp_fig1)

# the most massive Golden PSZ2 cluster, and the simulated map standing in for it: the injected map of a
# synthetic sky, or for the real sky the map the synthetic sky's matching would pick (szmass.synthsky)
golden = np.flatnonzero(sky["golden"].values)
i = int(golden[np.argmax(sky["MSZ"].values[golden])])
if sm.input.truth:
    truth = pd.read_csv(sm.input.truth[0]).set_index("NAME")
    k = int(truth.loc[str(sky["name"].values[i]), "map_index"])
else:
    row = pd.DataFrame({"NAME": [str(sky["name"].values[i])], "GLON": [float(sky["glon"].values[i])],
                        "GLAT": [float(sky["glat"].values[i])], "REDSHIFT": [float(sky["redshift"].values[i])],
                        "MSZ": [float(sky["MSZ"].values[i])]})
    matched = match_halos(row, clean, seed=p.seed, hydrostatic_bias=p.hydrostatic_bias, z_edges=tuple(p.edges))
    k = int(matched["map_index"].iloc[0])
m500 = float(clean["M500"].values[k])
maps = {"clean": clean["y"].isel(map=k).values, "planck": planck["y"].isel(map=k).values, "sky": sky["y"].isel(cluster=i).values}
titles = {"clean": f"clean mock, M500 = {m500:.2g} Msun, z = {float(clean['redshift'].values[k]):.2f}",
          "planck": "the same map with Planck noise",
          "sky": f"sky: {sky['name'].values[i]}, z = {float(sky['redshift'].values[i]):.2f}"}
save_figure(example_maps(maps, titles, pixel_arcmin=p.pixel_arcmin), sm.output.supp_fig2)
log.info("-> %s, %s", sm.output.supp_fig1, sm.output.supp_fig2)
stamp_job(sm)
