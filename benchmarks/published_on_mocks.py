"""Domain gap: the published DeepPlanck networks applied to this project's Planck mocks.

Not a test: prints figures. The paper's networks (``bestmodel-{1..4}.h5``, trained on THE THREE
HUNDRED's Planck mocks) predict the masses of a run's ``results/maps/planck.zarr`` through
:func:`szmass.predict.load_models` / :func:`szmass.predict.predict_masses`, without any training of ours.
Per redshift bin of the published networks, on the maps above the bin's mass cut (the range those
networks were trained on: the run's ``results/tables/mass_cuts.csv``, or ``--m500-min`` for all bins):
the median b_t = (M_CNN - M_true) / M_CNN with its 16th and 84th percentiles and the standard error
(:func:`szmass.evaluate.bias_table`), and the std of log10(M_CNN / M_true)
(:func:`szmass.evaluate.moments_table`). On THE THREE HUNDRED's own Planck mocks they give about
-0.03 (+0.14/-0.17) and 0.07 dex (de Andres et al. 2022).

Usage::

    .venv/bin/python benchmarks/published_on_mocks.py WEIGHTS_DIR RUN_DIR
    .venv/bin/python benchmarks/published_on_mocks.py WEIGHTS_DIR RUN_DIR --m500-min 1.5e14
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from szmass.evaluate import bias_table, moments_table
from szmass.mapstore import open_maps
from szmass.predict import load_models, predict_masses
from szmass.splits import read_mass_cuts
from szmass.zbins import redshift_bins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="directory of the published bestmodel-{1..4}.h5")
    parser.add_argument("run", type=Path, help="a run's working directory (results/maps/planck.zarr inside)")
    parser.add_argument("--m500-min", type=float, default=None,
                        help="one mass cut [Msun] for every bin instead of the run's results/tables/mass_cuts.csv")
    args = parser.parse_args()
    models = load_models(args.weights)
    maps = open_maps(args.run / "results" / "maps" / "planck.zarr")
    z = np.asarray(maps["redshift"].values, dtype=np.float64)
    m500 = np.asarray(maps["M500"].values, dtype=np.float64)
    inside = (z > models.edges[0]) & (z <= models.edges[-1])
    zbin = np.zeros(z.size, dtype=np.int64)
    zbin[inside] = redshift_bins(z[inside], models.edges)
    if args.m500_min is not None:
        cut = np.full(z.size, args.m500_min)
    else:
        cuts_file = args.run / "results" / "tables" / "mass_cuts.csv"
        by_bin = read_mass_cuts(cuts_file)
        if len(by_bin) != len(models.edges) - 1:
            raise ValueError(f"{cuts_file}: {len(by_bin)} bins, the published networks have {len(models.edges) - 1}; "
                             "pass --m500-min")
        cut = np.where(inside, [by_bin.get(int(b), np.nan) for b in zbin], np.inf)
    keep = np.flatnonzero(inside & (m500 >= cut))
    if keep.size == 0:
        raise ValueError(f"{args.run}: no Planck mock inside the bins {models.edges} above the mass cuts")
    log_m = predict_masses(maps["y"].isel(map=keep).values, z[keep], models.models, edges=models.edges)
    table = pd.DataFrame({"zbin": zbin[keep], "log10_M_true": np.log10(m500[keep]), "log10_M_cnn": log_m})
    bias = bias_table(table, ref="log10_M_true").query("mass_range == 'all'").set_index("zbin")
    moments = moments_table(table, ref="log10_M_true").set_index("zbin")
    print(f"published networks {args.weights} on {args.run / 'results/maps/planck.zarr'}: {keep.size} maps above the cuts")
    print("  bin   N    median b_t  (-16th/+84th)    std err   std log10(M_CNN/M_true) [dex]")
    for label, row in bias.iterrows():
        print(f"  {label:>4} {int(row['n']):4d}   {row['median']:+.3f} (-{row['median'] - row['p16']:.3f}/"
              f"+{row['p84'] - row['median']:.3f})    {row['stderr']:.3f}     {moments.loc[label, 'std']:.3f}")


if __name__ == "__main__":
    main()
