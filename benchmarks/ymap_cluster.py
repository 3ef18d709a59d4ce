"""Benchmark: all lines of sight of one ~4-million-gas-particle cluster, end to end.

Generates (once, cached under ``--out``) a synthetic THE THREE HUNDRED-like region around a main halo of
``--main-m500`` h^-1 Msun, written as a GADGET format-2 snapshot through ``szmass.sims``; then, in a fresh
process (so that the peak memory is the projection's own), reads the halo's sphere with the real reader,
centres, rotates and projects the gas along the 27 lines of sight,
computes Y500, and observes each map with the instrument (10' beam, 96 x 96 pixels of 1.7'), by both
routes, each in its own process: ``hires`` (1920 x 1920 pixels of 5") and ``fast`` (the 96 x 96 maps of the
same field straight from the particles' moments, ``szmass.moments``). Prints the wall time of each
stage, the peak resident memory (ru_maxrss), the end-to-end speed-up and the largest difference between
the routes' maps (relative to each map's peak). Not a test; CI does not gate on it.

    .venv/bin/python benchmarks/ymap_cluster.py                      # defaults: 4.0e6 gas particles read, z = 0.1
    .venv/bin/python benchmarks/ymap_cluster.py --projections 3      # a quicker look
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def generate(out: Path, gas_particle_mass: float, main_m500: float, redshift: float, seed: int) -> Path:
    """Write the region snapshot and its AHF table under ``out`` unless they exist; return the snapshot path."""
    from szmass.cosmology import make_cosmology
    from szmass.sims import GadgetHeader, write_ahf_halos, write_snapshot
    from szmass.synth import SynthConfig, build_region_snapshot, population_for

    tag = f"m{gas_particle_mass:.3g}_M{main_m500:.3g}_z{redshift:g}_s{seed}"
    snap_path, ahf_path = out / f"snap_{tag}", out / f"snap_{tag}.AHF_halos"
    if snap_path.exists() and ahf_path.exists():
        return snap_path
    cosmo = make_cosmology()
    # dark matter is not projected: a coarse DM mass keeps the generation quick
    cfg = SynthConfig.from_mapping({"gas_particle_mass": gas_particle_mass, "dm_particle_mass": 50 * gas_particle_mass})
    t0 = time.perf_counter()
    population = population_for(cfg, cosmo, region=1, seed=seed, main_m500=main_m500)
    snap = build_region_snapshot(cfg, cosmo, population, snapshot=1, redshift=redshift, seed=seed)
    header = GadgetHeader(redshift=snap.redshift, box_size=cfg.box_size, h=float(cosmo.h), omega_m=float(cosmo.Om0),
                          omega_lambda=float(cosmo.Ode0))
    write_snapshot(snap_path, header, snap.gas, snap.dm, fmt="gadget2")
    write_ahf_halos(ahf_path, snap.halos)
    print(f"generated {len(snap.gas['MASS'])} gas particles in {time.perf_counter() - t0:.1f} s -> {snap_path}")
    return snap_path


def main_halo(snap_path: Path) -> tuple[Any, pd.Series, np.ndarray, float]:
    """The snapshot header, the AHF row of the most massive halo (M500c) of ``snap_path``, its centre and R500
    in physical kpc."""
    from szmass.sims import read_ahf_halos, read_snapshot_header

    header = read_snapshot_header(snap_path)
    ahf = read_ahf_halos(snap_path.with_name(snap_path.name + ".AHF_halos"))
    main = ahf.loc[ahf["M500c"].idxmax()]
    a, h = header.scale_factor, header.h
    return header, main, main[["Xc", "Yc", "Zc"]].to_numpy(float) * a / h, float(main["R500c"]) * a / h


def measure(snap_path: Path, n_projections: int, npix: int, route: str, maps_out: Path) -> dict[str, float]:
    """Read, project, observe the main halo of ``snap_path`` by ``route``; wall times [s] and peak memory [MiB].

    The observed maps and Y500_cyl go to ``maps_out`` (npz) for the comparison of the routes.
    """
    from szmass.cosmology import make_cosmology
    from szmass.instrument import Instrument, observe
    from szmass.sims import read_snapshot
    from szmass.sims.snapshot import physical_in_spheres
    from szmass.sph import project
    from szmass.ymap import HaloGas, morton_order, pixel_kpc, project_halo, selection_radius_kpc

    # compile (or load from numba's cache) outside the timed region
    project(np.zeros(1), np.zeros(1), np.ones(1), np.ones(1), npix=8, pixel_size=1.0)
    one = HaloGas(np.zeros((1, 3)), np.ones(1), np.ones(1), r500_kpc=1.0, d_a_kpc=1.0, label="warm-up")
    one.y500_cyl_arcmin2(*one.prism(0, half_width_kpc=1.0))
    morton_order(np.zeros((1, 3)), 1.0)
    physical_in_spheres(np.zeros((1, 3), dtype=np.float32), 1.0, 1.0, np.zeros((1, 3)), np.ones(1), 1.0)
    one.observed(0, npix=8, pixel_arcsec=1e3, kernel="wendland_c4", depth_r500=None, instrument=Instrument())
    cosmo = make_cosmology()
    header, main, centre, r500 = main_halo(snap_path)
    h = header.h
    radius = float(selection_radius_kpc(r500, header.redshift, cosmo, npix=npix))
    t_observe = 0.0

    def timed_observe(ymap: np.ndarray, pixel_arcmin: float) -> np.ndarray:
        nonlocal t_observe
        t = time.perf_counter()
        out = observe(ymap, pixel_arcmin, pixel_window=True)
        t_observe += time.perf_counter() - t
        return out

    t0 = time.perf_counter()
    snap = read_snapshot(snap_path, centre=centre, radius=radius)
    t_read = time.perf_counter() - t0
    if route == "fast":
        hm = project_halo(snap, centre, r500, cosmo=cosmo, npix=npix, pixel_arcsec=5.0,
                          projections=range(n_projections), instrument=Instrument())
    else:
        hm = project_halo(snap, centre, r500, cosmo=cosmo, npix=npix, pixel_arcsec=5.0,
                          projections=range(n_projections), observe=timed_observe)
    t_total = time.perf_counter() - t0
    np.savez(maps_out, maps=hm.maps, y500_cyl=hm.y500_cyl)
    return {
        "gas_particles_read": int(len(snap.mass)),
        "M500_msun": float(main["M500c"]) / h,
        "R500_kpc": r500,
        "redshift": header.redshift,
        "median_hsml_arcmin": float(np.median(snap.hsml) / pixel_kpc(hm.d_a_kpc, 60.0)),
        "projections": n_projections,
        "read_s": t_read,
        "end_to_end_s": t_total,
        "of_which_observe_s": t_observe,
        "per_projection_s": (t_total - t_read) / n_projections,
        "Y500_sph_arcmin2": hm.y500_sph,
        "Y500_cyl_mean_arcmin2": float(hm.y500_cyl.mean()),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/ymap_cluster"))
    p.add_argument("--gas-particle-mass", type=float, default=9.0e7,
                   help="h^-1 Msun (9e7: 5.7e6 gas particles in the region, 4.0e6 of them read for the projections)")
    p.add_argument("--main-m500", type=float, default=1.0e15, help="h^-1 Msun")
    p.add_argument("--redshift", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--projections", type=int, default=27)
    p.add_argument("--npix", type=int, default=1920)
    p.add_argument("--routes", nargs="+", default=["hires", "fast"], choices=["hires", "fast"])
    p.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--route", default="fast", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        maps_out = args.out / f"maps_{args.route}.npz"
        print(json.dumps(measure(args.measure, args.projections, args.npix, args.route, maps_out)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    snap_path = generate(args.out, args.gas_particle_mass, args.main_m500, args.redshift, args.seed)
    import numba

    print(f"numba threads: {numba.config.NUMBA_NUM_THREADS}")
    results = {}
    for route in args.routes:  # each in a fresh process, so that its peak memory is its own
        run = subprocess.run(
            [sys.executable, __file__, "--measure", str(snap_path), "--projections", str(args.projections),
             "--npix", str(args.npix), "--route", route, "--out", str(args.out)],
            check=True, capture_output=True, text=True,
        )
        results[route] = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"route {route}")
        for key, value in results[route].items():
            print(f"  {key:30s} {value:.4g}" if isinstance(value, float) else f"  {key:30s} {value}")
    if len(results) == 2:
        hires, fast = (np.load(args.out / f"maps_{r}.npz") for r in ("hires", "fast"))
        peak = np.abs(hires["maps"]).max(axis=(1, 2))
        diff = np.abs(fast["maps"] - hires["maps"]).max(axis=(1, 2)) / peak
        print(f"speed-up hires / fast end to end   {results['hires']['end_to_end_s'] / results['fast']['end_to_end_s']:.1f}x")
        print(f"peak memory fast / hires           {results['fast']['peak_rss_mib'] / results['hires']['peak_rss_mib']:.2f}")
        print(f"max |fast - hires| / peak          worst {diff.max():.2e}, median {np.median(diff):.2e} "
              f"({diff.size} lines of sight)")
        print(f"Y500_cyl fast / hires - 1          {np.abs(fast['y500_cyl'] / hires['y500_cyl'] - 1).max():.1e}")


if __name__ == "__main__":
    main()
