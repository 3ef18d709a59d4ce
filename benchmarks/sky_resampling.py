"""What the synthetic sky's HEALPix grid does to a cluster and to the networks' mass of it.

For N injected halos of a run's synthetic sky (``results/sky/truth.csv``), each clean map is painted onto an
empty HEALPix map of each Nside (``szmass.healpix.paint``) and cut out again (``szmass.healpix.cutout``) at
its PSZ2 position. Prints per Nside the median ratios of flux and peak (cut out / original) and the change
of the Planck-mock networks' log10 M500 [dex] when the same noise (the map's Planck mock minus its clean
map) is added to the original and to the painted-and-cut map: the sky's own contribution to the closure test.

    python benchmarks/sky_resampling.py RUN_DIR [--n 120] [--nside 1024 2048] [--seed 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import healpy as hp
import numpy as np
import pandas as pd

from szmass import healpix
from szmass.mapstore import open_maps
from szmass.predict import load_models, predict_masses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--n", type=int, default=120, help="injected halos drawn from the sky's truth table")
    parser.add_argument("--nside", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reso-arcmin", type=float, default=1.7)
    args = parser.parse_args()
    results = args.run / "results"
    truth = pd.read_csv(results / "sky" / "truth.csv").sample(args.n, random_state=args.seed)
    clean = open_maps(results / "maps" / "clean.zarr")
    planck = open_maps(results / "maps" / "planck.zarr")
    models = load_models(results / "models" / "planck")
    index = truth["map_index"].to_numpy()
    images = clean["y"].isel(map=index).values.astype(np.float64)
    noise = planck["y"].isel(map=index).values - images
    z = truth["redshift_sim"].to_numpy()
    original = predict_masses(images + noise, z, models.models, edges=models.edges)
    for nside in args.nside:
        back = np.empty_like(images)
        for k, (glon, glat) in enumerate(zip(truth["GLON"], truth["GLAT"], strict=True)):
            sky = np.zeros(hp.nside2npix(nside))
            healpix.paint(sky, glon, glat, images[k], reso_arcmin=args.reso_arcmin)
            back[k] = healpix.cutout(sky, glon, glat, npix=images.shape[-1], reso_arcmin=args.reso_arcmin)
        flux = back.sum(axis=(1, 2)) / images.sum(axis=(1, 2))
        peak = back.max(axis=(1, 2)) / images.max(axis=(1, 2))
        change = predict_masses(back + noise, z, models.models, edges=models.edges) - original
        print(f"Nside {nside} ({hp.nside2resol(nside, arcmin=True):.2f}' pixels), {args.n} maps: flux ratio "
              f"{np.median(flux):.4f}, peak ratio {np.median(peak):.4f}; log10 M_CNN painted-and-cut minus original, "
              f"same noise: median {np.median(change):+.4f} dex, std {np.std(change):.4f}")


if __name__ == "__main__":
    main()
