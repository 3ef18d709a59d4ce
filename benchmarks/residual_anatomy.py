"""Where the test residuals of a run's networks come from, on the main halos (the sub-halos' tail is
``benchmarks/scatter_by_host.py``'s): per data set and redshift bin, the selected models' residuals
r = log10(M_CNN / M_true) [dex] taken apart four ways.

* **Cluster or projection**: the std of each cluster's mean residual over its lines of sight against the std
  of the residuals about that mean. A cluster-level part does not average out over projections: it is a
  property of the cluster that the networks map to a wrong mass.
* **The cluster's own Y-M excess**: ``dex_ycyl`` = log10 M_Y - log10 M_true, M_Y from the halo's Y500_cyl
  inside its true R500 through a power law fitted per snapshot (``scatter_by_host.map_table``). The slope of
  r on dex_ycyl and the std of r once that part is removed: an estimator that read Y500_cyl exactly would
  have slope 1 and nothing left.
* **Neighbours in the field**: the brightest pixel farther than ``--rmin`` pixels from the centre over the
  brightest within 3 pixels of it (near 1: a second cluster as bright in the 96 x 96 field); the std of r
  below and above the bin's median ratio.
* **Aperture photometry on the same maps**, fitted on the selected run's training maps (all halos) and
  scored on its test main halos: the single aperture (log10 M = a + b log10 Y(< r), r = 2 ... 46 pixels)
  whose residual std is least on the validation maps, and a ridge regression on the log aperture fluxes of every radius (their asinh on the Planck
  mocks, whose sums can be negative), the ridge weight chosen on the validation maps.

    python benchmarks/residual_anatomy.py RUN_DIR [--config config/validation.yaml] [--rmin 12]

RUN_DIR is a finished run (results/tables/test_predictions_{clean,planck}.csv, the selected runs'
predictions.csv, results/maps/{clean,planck}.zarr and the AHF catalogues the config names).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from numpy.typing import NDArray
from scatter_by_host import host_flags, map_table

from szmass.mapstore import open_maps
from szmass.rundir import read_predictions, read_selection

RADII = np.arange(2, 48, 2)
RIDGE_WEIGHTS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
CLUSTER = ["sim", "region", "halo_id"]


def radius_grid(npix: int) -> NDArray[np.float64]:
    """Distance of each pixel centre from the map centre [pixels], flattened."""
    yy, xx = np.mgrid[:npix, :npix] - (npix - 1) / 2.0
    return np.hypot(yy, xx).ravel()


def neighbour_ratio(maps: NDArray[np.float64], r: NDArray[np.float64], rmin: float) -> NDArray[np.float64]:
    """Brightest pixel beyond ``rmin`` pixels over the brightest within 3 pixels of the centre, per map."""
    return maps[:, r > rmin].max(axis=1) / maps[:, r < 3].max(axis=1)


def ridge_predict(
    x: NDArray[np.float64], t: NDArray[np.float64], train: NDArray[np.bool_], val: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Predictions of a ridge regression of ``t`` on standardised ``x`` fitted on ``train``, its weight the one
    of :data:`RIDGE_WEIGHTS` with the least residual std on ``val``."""
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-12
    g = np.column_stack([(x - mu) / sd, np.ones(len(x))])
    penalty = np.diag([1.0] * (g.shape[1] - 1) + [0.0])
    preds = [g @ np.linalg.solve(g[train].T @ g[train] + lam * penalty, g[train].T @ t[train]) for lam in RIDGE_WEIGHTS]
    return min(preds, key=lambda p: float(np.std(p[val] - t[val])))


def aperture_scores(
    flux: NDArray[np.float64], t: NDArray[np.float64], train: NDArray[np.bool_], val: NDArray[np.bool_],
    test: NDArray[np.bool_], noisy: bool,
) -> tuple[float, int, float]:
    """Test residual std [dex] of the single aperture best on the validation maps, its radius [pixels], and of
    the ridge on all."""
    singles = []
    for k, radius in enumerate(RADII):
        if np.any(flux[:, k] <= 0):  # a noisy aperture with a negative sum has no log
            continue
        lf = np.log10(flux[:, k])
        r = np.polyval(np.polyfit(lf[train], t[train], 1), lf) - t
        singles.append((float(np.std(r[val])), float(np.std(r[test])), int(radius)))
    feats = np.arcsinh(flux / np.median(np.abs(flux[train]), axis=0)) if noisy else np.log10(np.clip(flux, 1e-300, None))
    best = min(singles) if singles else (float("nan"), float("nan"), 0)
    return best[1], best[2], float(np.std(ridge_predict(feats, t, train, val)[test] - t[test]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--config", type=Path, default=Path("config/validation.yaml"))
    parser.add_argument("--rmin", type=float, default=12.0, help="pixels; the neighbour search starts beyond")
    args = parser.parse_args()
    info = map_table(args.run, host_flags(args.run, yaml.safe_load(args.config.read_text())["sims"]))
    info = info[["sub", "dex_ycyl"]].join(pd.DataFrame({k: info[k] for k in CLUSTER}))
    print("| data set | bin | N maps (clusters) | std r | std of cluster means / within clusters | slope on dex_ycyl "
          "(std left) | weak / strong neighbours | single aperture (radius px) | ridge on apertures |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("clean", "planck"):
        ds = open_maps(args.run / "results" / "maps" / f"{name}.zarr")
        r = radius_grid(ds.sizes["px"])
        masks = np.stack([r < k for k in RADII]).astype(np.float64)
        tests = pd.read_csv(args.run / "results" / "tables" / f"test_predictions_{name}.csv")
        for zbin, part in tests.groupby("zbin"):
            # the splits of the bin's first run; the test maps' masses those of the bin's estimate (one run or a mean)
            first = read_selection(args.run / "results" / "models" / name / f"z{zbin}" / "selection.csv")["run_dir"].iloc[0]
            run = read_predictions(args.run / first).drop(columns="log10_M_cnn")
            run = run.merge(part[["map", "log10_M_cnn"]], on="map", how="left").join(info, on="map")
            t = run["log10_M_true"].to_numpy()
            train, val = (run["split"].to_numpy() == s for s in ("train", "val"))
            test = (run["split"].to_numpy() == "test") & ~run["sub"].astype(bool).to_numpy()
            maps = ds["y"].isel(map=run["map"].to_numpy()).values.reshape(len(run), -1).astype(np.float64)
            main_ = run[test].assign(r=lambda d: d["log10_M_cnn"] - d["log10_M_true"])
            means = main_.groupby(CLUSTER)["r"].transform("mean")
            slope, intercept = np.polyfit(main_["dex_ycyl"], main_["r"], 1)
            left = main_["r"] - (intercept + slope * main_["dex_ycyl"])
            ratio = neighbour_ratio(maps[test], r, args.rmin)
            weak = ratio <= np.median(ratio)
            single, radius, ridge = aperture_scores(maps @ masks.T, t, train, val, test, noisy=name == "planck")
            print(f"| {name} | z{zbin} | {len(main_)} ({main_.groupby(CLUSTER).ngroups}) | {main_['r'].std():.3f} "
                  f"| {main_.groupby(CLUSTER)['r'].mean().std():.3f} / {(main_['r'] - means).std():.3f} "
                  f"| {slope:+.2f} ({left.std():.3f}) | {main_['r'][weak].std():.3f} / {main_['r'][~weak].std():.3f} "
                  f"| {single:.3f} ({radius}) | {ridge:.3f} |")


if __name__ == "__main__":
    main()
