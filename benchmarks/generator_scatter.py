"""The synthetic generator's Y500_sph-M500 scatter per redshift, measured as THE THREE HUNDRED's.

Not a test: prints figures (the unit test is tests/test_synth.py::test_ym_scatter_matches_the_three_hundred).
For each redshift, ``--n`` clusters of model M500 log-uniform in [1.5e14, 1.5e15] Msun are generated
(:func:`szmass.synth.calibration.ym_sample`: the workflow's generator, one host per region, sub-halos and
mergers as configured); M500c and Y500_sph inside R500c are measured on the particles, a power law
log10 Y = A + B log10 M is fitted, and the masses it gives are compared with the measured ones: the
half-width of the 16th-84th range of M_Y / M_true (THE THREE HUNDRED: <= 7%), the slope B
(THE THREE HUNDRED: 1.63), and the scatter budget of log10 Y500 in dex.

Usage::

    .venv/bin/python benchmarks/generator_scatter.py                   # 60 clusters at each of 4 redshifts
    .venv/bin/python benchmarks/generator_scatter.py --n 40 --redshifts 0.1 --gas-model gizmo_simba
"""

from __future__ import annotations

import argparse
import time

from szmass.cosmology import make_cosmology
from szmass.synth import SynthConfig
from szmass.synth.calibration import scatter_budget, ym_fit, ym_sample

SEED = 20220515


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="clusters per redshift")
    parser.add_argument("--redshifts", type=float, nargs="+", default=[0.05, 0.15, 0.3, 0.6])
    parser.add_argument("--gas-model", default="gadget_x")
    parser.add_argument("--n-gas-r500", type=int, default=20_000, help="gas particles inside R500 per cluster")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    cosmo = make_cosmology()
    cfg = SynthConfig(gas_model=args.gas_model)
    print(f"gas model {args.gas_model}, {args.n} clusters per redshift, ~{args.n_gas_r500} gas particles in R500")
    print("    z   slope  M_Y/M_true 16-84 half-width | log10 Y scatter [dex]: total  norm.  shape  profile  structure")
    for k, z in enumerate(args.redshifts):
        t0 = time.perf_counter()
        sample = ym_sample(cfg, cosmo, redshift=z, n=args.n, seed=args.seed + 1000 * k, n_gas_r500=args.n_gas_r500)
        fit = ym_fit(sample.m500, sample.y500)
        b = scatter_budget(sample, fit)
        print(f"  {z:5.2f}  {fit.slope:5.3f}  {fit.half_width_68:6.3f}"
              f"                          |                        {b['total']:.3f}  {b['normalisation']:.3f}  "
              f"{b['shape']:.3f}  {b['profile']:.3f}    {b['structure']:.3f}   ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
