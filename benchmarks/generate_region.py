"""Benchmark the synthetic THE THREE HUNDRED generator and measure the Y500-M500 scatter it produces.

Not a test: prints figures.

1. ``region``: one THE THREE HUNDRED-like region (gas particles of 2.36e8, dark matter of 12.7e8
   h^-1 Msun, a main halo of ``--main-m500`` h^-1 Msun at z = 0, three hosts, 15 h^-1 Mpc) at
   ``--redshift``, generated and written as a GADGET format-2 snapshot plus AHF file under
   benchmarks/out/ (gitignored). Prints wall times, peak resident memory (``ru_maxrss``) and particle counts.
2. ``scatter``: ``--n-halos`` regions of one host each whose model M500 at ``--redshift`` is
   ``--scatter-m500`` h^-1 Msun, with the default shapes, profile scatter, sub-halos and merger
   fraction (coarse particles). For each: the analytic Y500 of its drawn GNFW (``y_sph_mpc2``) and
   the Y500 summed over its gas particles inside the catalogue's (measured) R500. Prints the standard
   deviation of log10 Y500 at fixed model mass, and of log10 Y500 - 5/3 log10 M500c about the measured mass.

Usage::

    .venv/bin/python benchmarks/generate_region.py                   # both
    .venv/bin/python benchmarks/generate_region.py scatter --n-halos 40
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from szmass.constants import (
    GAMMA_ADIABATIC,
    K_B_ERG_K,
    M_P_G,
    ME_C2_ERG,
    MPC_CM,
    MSUN_G,
    SIGMA_T_CM2,
    X_H,
    mean_molecular_weight,
)
from szmass.cosmology import make_cosmology
from szmass.synth import SynthConfig, build_region_snapshot, population_for, y_sph_mpc2
from szmass.synth.halos import RegionPopulation

OUT = Path(__file__).resolve().parent / "out" / "generate_region"
SEED = 20220515


def peak_rss_gb() -> float:
    """Peak resident memory of this process [GB] (Linux ru_maxrss is in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def bench_region(main_m500: float, redshift: float) -> None:
    """Generate and write one THE THREE HUNDRED-like region; print timings, memory and counts."""
    from szmass.sims import GadgetHeader, write_ahf_halos, write_snapshot

    cosmo = make_cosmology()
    cfg = SynthConfig()
    t0, c0 = time.perf_counter(), time.process_time()
    pop = population_for(cfg, cosmo, region=1, seed=SEED, main_m500=main_m500)
    snap = build_region_snapshot(cfg, cosmo, pop, snapshot=124, redshift=redshift, seed=SEED)
    t1 = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    header = GadgetHeader(redshift=redshift, box_size=cfg.box_size, h=float(cosmo.h), omega_m=float(cosmo.Om0),
                          omega_lambda=float(cosmo.Ode0))
    files = write_snapshot(OUT / "snap_124", header, snap.gas, snap.dm, fmt="gadget2")
    write_ahf_halos(OUT / "snap_124.AHF_halos", snap.halos)
    t2 = time.perf_counter()
    main = snap.halos.iloc[0]
    print(f"region: z = {redshift}, main halo M500c = {main['M500c']:.3e} h^-1 Msun (z = 0 model {main_m500:.2e})")
    print(f"  gas particles {len(snap.gas['POS']):,}, dark matter {len(snap.dm['POS']):,}, halos {len(snap.halos)}")
    print(f"  generate {t1 - t0:.1f} s, write {t2 - t1:.1f} s, total {t2 - t0:.1f} s wall "
          f"({time.process_time() - c0:.1f} s CPU, all threads); "
          f"{sum(f.stat().st_size for f in files) / 1e9:.2f} GB on disk")
    print(f"  peak resident memory {peak_rss_gb():.2f} GB")


def y500_particles_mpc2(gas: dict[str, np.ndarray], centre_ckpch: np.ndarray, r500_ckpch: float, z: float, h: float) -> float:
    """sigma_T / (m_e c^2) sum_i N_e,i k T_i [Mpc^2] over gas particles within R500 (GADGET-unit inputs)."""
    d = gas["POS"].astype(np.float64) - centre_ckpch
    inside = np.einsum("ij,ij->i", d, d) <= r500_ckpch**2
    ne = gas["NE"][inside].astype(np.float64)
    mass_g = gas["MASS"][inside].astype(np.float64) * 1e10 / h * MSUN_G
    temperature = (GAMMA_ADIABATIC - 1.0) * gas["U"][inside] * 1e10 * mean_molecular_weight(ne) * M_P_G / K_B_ERG_K
    n_e = ne * X_H * mass_g / M_P_G
    return float(SIGMA_T_CM2 / ME_C2_ERG * np.sum(n_e * K_B_ERG_K * temperature) / MPC_CM**2)


def bench_scatter(n_halos: int, m500: float, redshift: float) -> None:
    """Print the scatter of Y500 at fixed model M500 over ``n_halos`` generated clusters."""
    cosmo = make_cosmology()
    h = float(cosmo.h)
    cfg = SynthConfig(gas_particle_mass=5e9, dm_particle_mass=2.5e10, halos_per_region=1, region_radius=8000.0)
    t0 = time.perf_counter()
    y_model, y_sampled, m_measured = [], [], []
    for k in range(n_halos):
        pop = population_for(cfg, cosmo, region=k + 1, seed=SEED + k)
        main = pop.halos[0]
        main = replace(main, m500_z0=m500 / h * np.exp(main.accretion_rate * redshift))  # model M500 = m500 at z
        pop = RegionPopulation(pop.region, pop.centre, pop.radius, pop.box_size, pop.gas_model, (main, *pop.halos[1:]))
        snap = build_region_snapshot(cfg, cosmo, pop, snapshot=1, redshift=redshift, seed=SEED + k)
        row = snap.halos.iloc[0]
        y_model.append(y_sph_mpc2(snap.states[0].m500, redshift, main.gas.pressure, cosmo))
        y_sampled.append(y500_particles_mpc2(snap.gas, row[["Xc", "Yc", "Zc"]].to_numpy(float), row["R500c"], redshift, h))
        m_measured.append(row["M500c"] / h)
    ly_model, ly, lm = np.log10(y_model), np.log10(y_sampled), np.log10(m_measured)
    print(f"Y500-M500 scatter over {n_halos} clusters, model M500 = {m500:.1e} h^-1 Msun at z = {redshift} "
          f"({time.perf_counter() - t0:.0f} s)")
    print(f"  analytic Y500 of the drawn GNFW profiles:          std log10 Y = {np.std(ly_model, ddof=1):.3f} dex")
    print(f"  particle Y500 inside measured R500, fixed model M:  std log10 Y = {np.std(ly, ddof=1):.3f} dex")
    print(f"  about the measured M500c (slope 5/3):               std = {np.std(ly - 5.0 / 3.0 * lm, ddof=1):.3f} dex")
    print(f"  measured / model M500: median {np.median(10 ** lm * h / m500):.3f}, std log10 {np.std(lm, ddof=1):.3f} dex")
    print(f"  mean log10(Y particles / Y analytic) = {np.mean(ly - ly_model):+.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["region", "scatter", "both"], default="both")
    parser.add_argument("--main-m500", type=float, default=1.0e15, help="main halo z = 0 M500 [h^-1 Msun]")
    parser.add_argument("--redshift", type=float, default=0.1)
    parser.add_argument("--n-halos", type=int, default=40)
    parser.add_argument("--scatter-m500", type=float, default=5.0e14, help="model M500 at the redshift [h^-1 Msun]")
    args = parser.parse_args()
    if args.what in ("region", "both"):
        bench_region(args.main_m500, args.redshift)
    if args.what in ("scatter", "both"):
        bench_scatter(args.n_halos, args.scatter_m500, args.redshift)


if __name__ == "__main__":
    main()
