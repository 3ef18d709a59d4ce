"""Where the synthetic sky's bias comes from: the sky's clusters against the same maps in the test set.

The synthetic sky injects, for each PSZ2 cluster, one test map of its redshift bin (the halo nearest in mass
to MSZ / (1 - b), :mod:`szmass.synthsky`), so each sky cluster has a twin among the test maps: the same
clean map, seen through other noise and not painted onto HEALPix pixels. Per redshift bin this prints, with
b_t = (M_CNN - M_true) / M_CNN and the sky's networks (the Planck-mock ones):

* ``sky``: median b_t of the sky's clusters, with its 68% bootstrap interval over them;
* ``twins``: median b_t of their twins' test predictions; ``sky - twin``: the median of log10 M_CNN(sky) -
  log10 M_CNN(twin) [dex]. A sky pipeline that adds nothing (painting, cutting out, noise at the position)
  leaves twins = sky and sky - twin = 0;
* ``test set``: median b_t of all the bin's test maps, and by thirds of true mass (low, mid, high): where the
  networks' bias depends on mass, the sky's b_t is the test set's at the sky's masses, not its median;
* median log10 M_true of the sky's clusters and of the test maps, and the distinct halos the sky draws.

    python benchmarks/sky_closure.py RUN_DIR [--dataset planck] [--draws 2000]

RUN_DIR is a finished run on a synthetic sky (results/sky/predictions.csv, results/sky/truth.csv,
results/tables/test_predictions_{dataset}.csv).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from szmass.evaluate import relative_bias


def closure_table(run: Path, dataset: str, draws: int, seed: int = 0) -> pd.DataFrame:
    """One row per redshift bin and one for all (module docs)."""
    sky = pd.read_csv(run / "results/sky/predictions.csv")
    truth = pd.read_csv(run / "results/sky/truth.csv", usecols=["NAME", "map_index"])
    tests = pd.read_csv(run / f"results/tables/test_predictions_{dataset}.csv")
    twins = tests[["map", "log10_M_cnn", "log10_M_true"]].rename(columns=lambda c: f"twin_{c}")
    sky = sky.merge(truth, left_on="name", right_on="NAME").merge(twins, left_on="map_index", right_on="twin_map",
                                                                   how="left")  # fmt: skip
    if sky["twin_log10_M_cnn"].isna().any():
        missing = sky.loc[sky["twin_log10_M_cnn"].isna(), "name"].tolist()
        raise ValueError(f"{run}: {len(missing)} sky clusters injected maps outside the test set, e.g. {missing[:3]}")
    rng = np.random.default_rng(seed)
    rows = []
    for label, part, test in [*((f"z{z}", g, tests[tests["zbin"] == z]) for z, g in sky.groupby("zbin")),
                              ("all", sky, tests)]:  # fmt: skip
        b_sky = relative_bias(part["log10_M_cnn"], part["log10_M_true"])
        boot = np.median(rng.choice(b_sky, size=(draws, b_sky.size)), axis=1)
        b_test = relative_bias(test["log10_M_cnn"], test["log10_M_true"])
        thirds = np.array_split(np.argsort(test["log10_M_true"].to_numpy(), kind="stable"), 3)
        rows.append({
            "bin": label, "n_sky": len(part), "halos": part["map_index"].nunique(),
            "sky": np.median(b_sky), "sky_p16": np.percentile(boot, 16), "sky_p84": np.percentile(boot, 84),
            "twins": np.median(relative_bias(part["twin_log10_M_cnn"], part["twin_log10_M_true"])),
            "sky_minus_twin_dex": np.median(part["log10_M_cnn"] - part["twin_log10_M_cnn"]),
            "n_test": len(test), "test_set": np.median(b_test),
            **{f"test_{name}": np.median(b_test[idx]) for name, idx in zip(("low", "mid", "high"), thirds)},
            "log10_M_true_sky": part["log10_M_true"].median(), "log10_M_true_test": test["log10_M_true"].median(),
        })  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--dataset", default="planck", choices=["clean", "planck"])
    parser.add_argument("--draws", type=int, default=2000, help="bootstrap draws of the sky's median")
    args = parser.parse_args()
    table = closure_table(args.run, args.dataset, args.draws)
    print(table.to_string(index=False, float_format=lambda v: f"{v:+.3f}"))


if __name__ == "__main__":
    main()
