"""Benchmark ``szmass.healpix.cutouts`` against a loop of ``healpy.gnomview``, and the noise model.

Not a test: prints figures. On an Nside 2048 realisation of ``szmass.noise.default_noise_model``
(its construction and realisation are timed), the 96 x 96, 1.7 arcmin cutouts at the 1094 PSZ2
clusters with a redshift (GLON, GLAT from the catalogue shipped with szmass, ``szmass.data``) are
extracted

* with ``szmass.healpix.cutouts`` (vectorised; best of ``--repeat``);
* with ``healpy.gnomview(..., return_projected_map=True, no_plot=True)``, timed on the first
  ``--n-gnomview`` clusters and extrapolated to all;

and compared pixel for pixel. Finally the noise statistics of the cutouts at 25 < |b| < 35 deg
are compared with the real MILCA cutout's (docs/physics.md) and with the model's expectation.

Usage::

    .venv/bin/python benchmarks/cutouts.py
    .venv/bin/python benchmarks/cutouts.py --nside 1024 --n-gnomview 20
"""

from __future__ import annotations

import argparse
import resource
import time

import healpy as hp
import numpy as np

from szmass import noise
from szmass.data import PSZ2_CATALOGUE
from szmass.healpix import cutouts
from szmass.planck import read_psz2

NPIX, RESO_ARCMIN = 96, 1.7


def positions() -> tuple[np.ndarray, np.ndarray, str]:
    """GLON, GLAT [deg] of the PSZ2 clusters with a redshift, and the catalogue's file name."""
    table = read_psz2(PSZ2_CATALOGUE)
    return table["GLON"].to_numpy(float), table["GLAT"].to_numpy(float), PSZ2_CATALOGUE.name


def timed(func, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nside", type=int, default=2048)
    parser.add_argument("--n-gnomview", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20220607)
    args = parser.parse_args()

    glon, glat, source = positions()
    print(f"positions: {glon.size} from {source}")

    model, t_model = timed(noise.default_noise_model, args.nside)
    print(f"default_noise_model({args.nside}): {t_model:.1f} s (lmax {model.lmax}, spectrum {noise.milca_spectrum()})")
    hpmap, t_realise = timed(noise.realise, model, args.seed)
    print(f"realise at Nside {args.nside}: {t_realise:.1f} s; peak RSS so far {peak_rss_gib():.2f} GiB")

    times = []
    for _ in range(args.repeat):
        images, seconds = timed(cutouts, hpmap, glon, glat, npix=NPIX, reso_arcmin=RESO_ARCMIN)
        times.append(seconds)
    print(f"szmass.healpix.cutouts, {glon.size} cutouts: best {min(times):.2f} s of {args.repeat}")

    n = min(args.n_gnomview, glon.size)
    start = time.perf_counter()
    equal = 0
    for k in range(n):
        ref = hp.gnomview(
            hpmap, rot=(glon[k], glat[k]), xsize=NPIX, reso=RESO_ARCMIN, return_projected_map=True, no_plot=True
        )
        equal += np.array_equal(np.ma.getdata(ref), images[k])
    per_call = (time.perf_counter() - start) / n
    print(
        f"healpy.gnomview: {per_call:.3f} s per cutout -> {per_call * glon.size:.0f} s for {glon.size} "
        f"(speed-up {per_call * glon.size / min(times):.0f}x); pixel-for-pixel equal: {equal}/{n}"
    )

    band = (np.abs(glat) > 25) & (np.abs(glat) < 35)
    stats = [noise.measure_noise_stats(img) for img in images[band]]
    corr = np.mean([s["corr"] for s in stats], axis=0)
    expected = noise.expected_cutout_stats(model.cl, args.nside)["corr"]
    median_std = np.median([s["std"] for s in stats])
    print(f"noise of {band.sum()} cutouts at 25 < |b| < 35: median std {median_std:.3g} (MILCA {noise.MILCA_STD:.3g})")
    print("  lag      " + " ".join(f"{lag:6d}" for lag in noise.MILCA_CORR_LAGS))
    print("  measured " + " ".join(f"{c:6.3f}" for c in corr))
    print("  expected " + " ".join(f"{c:6.3f}" for c in expected))
    print("  MILCA    " + " ".join(f"{c:6.3f}" for c in noise.MILCA_CORR))
    print(f"peak RSS {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
