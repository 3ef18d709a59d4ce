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

Beside them, per bin: the number of distinct clusters behind the maps, their median log10 M_true, and
the networks' "noise floor": the median log10 M_CNN of the same maps' noise alone (Planck mock minus clean
map, ``results/maps/clean.zarr``), the mass a network reads from a map without a cluster. Clusters whose
mass is near or below the floor cannot be measured by those networks, whatever the generator.

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
from szmass.splits import cluster_identity, read_mass_cuts
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
    y = maps["y"].isel(map=keep).values
    log_m = predict_masses(y, z[keep], models.models, edges=models.edges)
    clean = open_maps(args.run / "results" / "maps" / "clean.zarr")["y"].isel(map=keep).values
    log_floor = predict_masses(y - clean, z[keep], models.models, edges=models.edges)
    table = pd.DataFrame({"zbin": zbin[keep], "log10_M_true": np.log10(m500[keep]), "log10_M_cnn": log_m,
                          "floor": log_floor, "cluster": cluster_identity(maps)[keep]})  # fmt: skip
    per_bin = table.groupby("zbin").agg(clusters=("cluster", "nunique"), m_true=("log10_M_true", "median"),
                                        floor=("floor", "median"))  # fmt: skip
    bias = bias_table(table, ref="log10_M_true").query("mass_range == 'all'").set_index("zbin")
    moments = moments_table(table, ref="log10_M_true").set_index("zbin")
    print(f"published networks {args.weights} on {args.run / 'results/maps/planck.zarr'}: {keep.size} maps above the cuts")
    print("  bin   N maps (clusters)  median log10 M_true  noise floor  median b_t (-16th/+84th)  std err  "
          "std log10(M_CNN/M_true) [dex]")
    for label, row in bias.iterrows():
        b = per_bin.loc[int(str(label)[1:])] if str(label) != "all" else pd.Series(
            {"clusters": table["cluster"].nunique(), "m_true": table["log10_M_true"].median(),
             "floor": table["floor"].median()})  # fmt: skip
        print(f"  {label:>4} {int(row['n']):6d} ({int(b['clusters']):4d})  {b['m_true']:19.2f}  {b['floor']:11.2f}  "
              f"{row['median']:+.3f} (-{row['median'] - row['p16']:.3f}/+{row['p84'] - row['median']:.3f})"
              f"    {row['stderr']:.3f}    {moments.loc[label, 'std']:.3f}")


if __name__ == "__main__":
    main()
