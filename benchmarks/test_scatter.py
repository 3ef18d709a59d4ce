"""The test scatter of finished runs side by side, in both masses: per run, data set and redshift bin, the
selected models' mean and std of log10(M_CNN / M500) and of log10(M_CNN / M200) [dex] on their test maps,
each with its 68% bootstrap interval over clusters (whole clusters resampled). A run's networks learn the
mass its test table's ``log10_M_true`` holds (``training.target_mass``, named in the first column); the
other column says how well they track the other mass. Runs of one config and seed share their test maps,
so the rows compare map for map.

    python benchmarks/test_scatter.py RUN_DIR [RUN_DIR ...] [--seed 0]

Each RUN_DIR holds results/tables/test_predictions_{clean,planck}.csv and results/maps/clean.zarr.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from szmass.evaluate import moments_table
from szmass.mapstore import open_maps
from szmass.splits import cluster_identity


def run_rows(run: Path, dataset: str, seed: int) -> tuple[str, pd.DataFrame]:
    """The mass the networks learnt ("M500" or "M200") and, per bin and "all": n, n_clusters and, for M500 and
    M200, the mean and std of log10 M_CNN - log10 M with their 68% cluster-bootstrap intervals."""
    maps = open_maps(run / "results" / "maps" / "clean.zarr", need=["M500", "M200"])
    tests = pd.read_csv(run / "results" / "tables" / f"test_predictions_{dataset}.csv")
    index = tests["map"].to_numpy()
    tests["cluster"] = cluster_identity(maps)[index]
    parts = []
    for mass in ("M500", "M200"):
        tests[f"log10_{mass}"] = np.log10(np.asarray(maps[mass].values, dtype=float)[index])
        m = moments_table(tests, ref=f"log10_{mass}", clusters="cluster", seed=seed)
        parts.append(m.set_index("zbin")[["n", "n_clusters", "mean", "mean_lo", "mean_hi", "std", "std_lo", "std_hi"]]
                     .add_prefix(f"{mass}_"))
    target = min(("M500", "M200"), key=lambda m: float(np.abs(tests[f"log10_{m}"] - tests["log10_M_true"]).max()))
    return target, pd.concat(parts, axis=1).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    args = parser.parse_args()
    print("| run (target) | data set | bin | N maps (clusters) | log10(M_CNN/M500): mean, std [68%] | "
          "log10(M_CNN/M200): mean, std [68%] |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        for dataset in ("clean", "planck"):
            target, rows = run_rows(run, dataset, args.seed)
            for r in rows.itertuples():
                cells = [f"{getattr(r, f'{m}_mean'):+.3f}, {getattr(r, f'{m}_std'):.3f} "
                         f"[{getattr(r, f'{m}_std_lo'):.3f}, {getattr(r, f'{m}_std_hi'):.3f}]" for m in ("M500", "M200")]
                print(f"| {run.name} ({target}) | {dataset} | {r.zbin} | {r.M500_n} ({r.M500_n_clusters}) | "
                      f"{cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
