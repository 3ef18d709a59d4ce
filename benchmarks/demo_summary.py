"""Headline figures of a finished run (e.g. `make demo`), printed next to the paper's (docs/physics.md).

    .venv/bin/python benchmarks/demo_summary.py [WORKDIR]      # default: the current directory

Y500_cyl / Y500_sph; the Y500-M500 relation of the clean sample in the form of the paper's Eq. 4 with
the Ysph -> Ycyl factor; the selected models' test-set bias b = (M_CNN - M_true) / M_CNN and log
residual scatter per data set and redshift bin; the mass cuts; the Golden fraction of the sky.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from astropy import units as u

from szmass.cosmology import make_cosmology

work = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
cosmo = make_cosmology()
clean = xr.open_dataset(work / "results/maps/clean.zarr", engine="zarr", consolidated=False)
ratio = clean["Y500_cyl"].values / clean["Y500_sph"].values
print(f"maps {clean.sizes['map']}, halos {len(np.unique(clean['halo_id'].values + 0))}")
print(f"Y500_cyl/Y500_sph: median {np.median(ratio):.3f}, 16-84% {np.percentile(ratio, 16):.3f}-"
      f"{np.percentile(ratio, 84):.3f} (FACTS: 1.2)")

# Eq. 4: E(z)^(-2/3) D_A^2 Y500 / 1e-4 Mpc^2 = 10^logB h70^(-2+alpha) (M500 / 6e14 Msun)^alpha, Y = Ysph * 1.2
z = clean["redshift"].values
d_a = cosmo.angular_diameter_distance(z).to_value(u.Mpc)
y_mpc2 = clean["Y500_sph"].values * (u.arcmin**2).to(u.rad**2) * d_a**2 * 1.2
lhs = np.log10(cosmo.efunc(z) ** (-2 / 3) * y_mpc2 / 1e-4)
x = np.log10(clean["M500"].values / 6e14)
h70 = cosmo.H0.value / 70
per_halo = pd.DataFrame({"x": x, "lhs": lhs, "id": clean["halo_id"].values, "snap": clean["snapshot"].values})
per_halo = per_halo.groupby(["id", "snap"]).mean()  # Y500_sph does not depend on the line of sight
alpha, intercept = np.polyfit(per_halo["x"], per_halo["lhs"], 1)
scatter = np.std(per_halo["lhs"] - (alpha * per_halo["x"] + intercept))
log_b = intercept - (-2 + alpha) * np.log10(h70)
print(f"Y-M (Eq. 4, Ysph x 1.2): alpha {alpha:.2f}, log B {log_b:.3f}, scatter {scatter:.3f} dex "
      f"(THE300 1.63 +- 0.29; Planck 1.79 +- 0.08, log B -0.19 +- 0.02)")

for dataset in ("clean", "planck"):
    for zdir in sorted((work / "results/models" / dataset).glob("z*")):
        sel = pd.read_csv(zdir / "selection.csv")
        best = Path(sel.loc[sel["selected"], "run_dir"].iloc[0])
        pred = pd.read_csv(work / best / "predictions.csv")
        test = pred[pred["split"] == "test"]
        m_cnn, m_true = 10 ** test["log10_M_cnn"], 10 ** test["log10_M_true"]
        b = (m_cnn - m_true) / m_cnn
        resid = test["log10_M_cnn"] - test["log10_M_true"]
        p16, p50, p84 = np.percentile(b, [16, 50, 84])
        print(f"{dataset:6s} {zdir.name}: test maps {len(test):4d}, b_t {p50:+.3f} (+{p84 - p50:.3f} / -{p50 - p16:.3f}), "
              f"log residual mean {resid.mean():+.3f} std {resid.std():.3f} dex; {int(sel['passed'].sum())}/{len(sel)} runs pass")
print("paper (all z): clean b_t -0.02 (+0.09/-0.10), 0.05 dex; Planck mocks -0.03 (+0.14/-0.17), 0.07 dex")
cuts = work / "results/tables/mass_cuts.csv"
if cuts.is_file():
    print(pd.read_csv(cuts).to_string(index=False))
sky = xr.open_dataset(work / "results/sky/cutouts.zarr", engine="zarr")
print(f"sky: {sky.sizes['cluster']} clusters, {int(sky['golden'].sum())} Golden")
