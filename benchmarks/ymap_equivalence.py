"""Harness: the fast map route against the 1920 x 1920 route on demo-sized synthetic clusters.

Generates ``--clusters`` single-cluster regions with the demo's particle masses (gas 1e10, dark matter 5e10
h^-1 Msun), main halos of M500 log-uniform in [1e14, 2e15] Msun at redshifts spread evenly in log(1 + z) over
[0.03, 1] (cluster k: seed ``--seed`` + k), each written as a GADGET snapshot and read back with the real
reader. Every cluster is projected along ``--projections`` lines of sight by both routes (the fast route's
maps straight from the particles' moments, and the 1920 x 5" grid observed with the 10' beam; both 96 x 96
pixels of 1.7'), and
the harness prints, per cluster and over all maps, max |fast - hires| / max |hires| (worst and median),
Y500_cyl of the two routes (both the aperture integral of the particles: equal by construction), and
how far the 1920^2 map's pixel-sampled aperture (``ymap.y500_cyl_arcmin2``) is from the exact aperture.
Not a test; CI runs the same comparison on small clusters (tests/test_ymap.py).

    .venv/bin/python benchmarks/ymap_equivalence.py                       # 20 clusters x 27 lines of sight
    .venv/bin/python benchmarks/ymap_equivalence.py --clusters 20 --projections 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def make_cluster(out: Path, k: int, m500: float, redshift: float, seed: int) -> Path:
    """Write cluster ``k`` (a one-halo region around a main halo of ``m500`` Msun at ``redshift``); its snapshot path."""
    from szmass.cosmology import make_cosmology
    from szmass.sims import GadgetHeader, write_ahf_halos, write_snapshot
    from szmass.synth import SynthConfig, build_region_snapshot, population_for

    cosmo = make_cosmology()
    h = float(cosmo.h)
    cfg = SynthConfig.from_mapping({
        "gas_particle_mass": 1.0e10, "dm_particle_mass": 5.0e10, "halos_per_region": 1, "region_radius": 12000.0,
        "m500_max": max(2.0e15, 2.0 * m500 * h),
    })
    population = population_for(cfg, cosmo, region=k + 1, seed=seed + k, main_m500=m500 * h)
    main = population.halos[0]  # its M500(z) = m500 at this redshift (the accretion history sets M500(0))
    main = replace(main, m500_z0=m500 * np.exp(main.accretion_rate * redshift))
    population = replace(population, halos=(main, *population.halos[1:]))
    snap = build_region_snapshot(cfg, cosmo, population, snapshot=1, redshift=redshift, seed=seed + k)
    header = GadgetHeader(redshift=snap.redshift, box_size=cfg.box_size, h=h, omega_m=float(cosmo.Om0),
                          omega_lambda=float(cosmo.Ode0))
    snap_path = out / f"snap_{k:03d}"
    write_snapshot(snap_path, header, snap.gas, snap.dm, fmt="gadget2")
    write_ahf_halos(snap_path.with_name(snap_path.name + ".AHF_halos"), snap.halos)
    return snap_path


def compare(snap_path: Path, projections: range) -> dict[str, object]:
    """Both routes on the main halo of ``snap_path``: per-map relative differences and the Y500_cyl figures."""
    from szmass.cosmology import make_cosmology
    from szmass.instrument import Instrument, observe
    from szmass.sims import read_snapshot
    from szmass.ymap import project_halo, selection_radius_kpc, y500_cyl_arcmin2
    from ymap_cluster import main_halo  # the sibling harness (benchmarks/ is the script's folder)

    cosmo = make_cosmology()
    header, main, centre, r500 = main_halo(snap_path)
    h = header.h
    snap = read_snapshot(snap_path, centre=centre, radius=float(selection_radius_kpc(r500, header.redshift, cosmo)))
    common = dict(cosmo=cosmo, projections=projections, npix=1920, pixel_arcsec=5.0)
    t0 = time.perf_counter()
    fast = project_halo(snap, centre, r500, instrument=Instrument(), **common)
    t1 = time.perf_counter()
    hires = project_halo(snap, centre, r500, keep_hires=True, observe=lambda m, p: observe(m, p, pixel_window=True),
                         **common)
    t2 = time.perf_counter()
    peak = np.abs(hires.maps).max(axis=(1, 2))
    r500_arcmin = r500 / hires.d_a_kpc * 60.0 * 180.0 / np.pi
    sampled = np.array([y500_cyl_arcmin2(m, hires.pixel_arcmin, r500_arcmin) for m in hires.hires])
    return {
        "m500": float(main["M500c"]) / h, "z": header.redshift, "n_gas": len(snap.mass),
        "map_diff": np.abs(fast.maps - hires.maps).max(axis=(1, 2)) / peak,
        "y_routes": np.abs(fast.y500_cyl / hires.y500_cyl - 1.0),
        "y_sampled": np.abs(sampled / hires.y500_cyl - 1.0),
        "t_fast": t1 - t0, "t_hires": t2 - t1,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clusters", type=int, default=20)
    p.add_argument("--projections", type=int, default=27)
    p.add_argument("--seed", type=int, default=100)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    m500 = np.exp(rng.uniform(np.log(1.0e14), np.log(2.0e15), args.clusters))
    redshift = np.expm1(np.linspace(np.log1p(0.03), np.log1p(1.0), args.clusters))
    diffs, y_routes, y_sampled = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.clusters):
            snap_path = make_cluster(Path(tmp), k, float(m500[k]), float(redshift[k]), args.seed)
            r = compare(snap_path, range(args.projections))
            diffs.append(r["map_diff"])
            y_routes.append(r["y_routes"])
            y_sampled.append(r["y_sampled"])
            print(f"cluster {k:2d}: M500 {r['m500']:.2e} Msun z {r['z']:.3f} {r['n_gas']:7d} gas | max|diff|/peak "
                  f"worst {r['map_diff'].max():.1e} median {np.median(r['map_diff']):.1e} | Y500_cyl routes "
                  f"{r['y_routes'].max():.0e}, 5\"-pixel aperture vs exact {r['y_sampled'].max():.1e} | "
                  f"fast {r['t_fast']:.1f} s, hires {r['t_hires']:.1f} s", flush=True)
    d, yr, ys = np.concatenate(diffs), np.concatenate(y_routes), np.concatenate(y_sampled)
    print(f"{d.size} maps of {args.clusters} clusters x {args.projections} lines of sight")
    print(f"max |fast - hires| / peak:          worst {d.max():.2e}, median {np.median(d):.2e}")
    print(f"Y500_cyl fast / hires - 1:          worst {yr.max():.1e}")
    print(f"Y500_cyl 5\" map / aperture - 1:     worst {ys.max():.1e}, median {np.median(ys):.1e}")


if __name__ == "__main__":
    main()
