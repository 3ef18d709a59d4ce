"""A training option tried on one redshift bin of a finished run, against the run's own networks.

The bin's seeded runs are trained again with the seeds, splits and test set of the run (the workflow's
seeds, :func:`szmass.splits.run_seed` and :func:`szmass.splits.bin_test_seed`) and the config's
``training`` settings changed by ``--set KEY=VALUE`` (e.g. ``lr_decay_patience=5``,
``sample_weights=flat_log_mass`` or ``mass_cut_margin_dex=0.2``, which trains on more clusters and tests
the same). Both sets of runs predict the same test maps, so the comparison is paired. Printed, for the
run's networks ("baseline") and the new ones ("variant"):

* per seed: epochs trained, best epoch, the std of r = log10(M_CNN / M_true) [dex] on the test maps;
* for the bin: the run picked by the paper's selection rule (the config's threshold and bins) and the mean
  of log10 M over the seeds: median b_t = (M_CNN - M_true) / M_CNN, std of r, and median b_t in thirds
  of true mass (the pull toward the middle of the mass range shows as + at the low end, - at the high);
* the variant's std of r minus the baseline's, with its 68% bootstrap interval over test clusters;
* with ``--sky`` (the Planck-mock networks of a run on a synthetic sky): the median b_t of the sky's clusters of the
  bin (results/sky/cutouts.zarr, its injected M500 the truth) for both estimates of both sets of runs.

    python benchmarks/training_variants.py RUN_DIR --config config/validation.yaml --dataset planck \
        --zbin 3 --set lr_decay_patience=5 --out VARIANT_DIR [--seeds 0 1 2 3 4] [--sky]

A seed whose VARIANT_DIR/seed{k}/predictions.csv exists is not trained again (a killed harness resumes).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from szmass.architecture import Architecture
from szmass.evaluate import cluster_bootstrap, relative_bias
from szmass.mapstore import open_maps
from szmass.predict import load_run_model, predict_masses
from szmass.rundir import HISTORY_FILE, MODEL_FILE, PREDICTIONS_FILE, read_predictions
from szmass.select import select_model
from szmass.splits import (bin_test_seed, cluster_identity, read_mass_cuts, run_seed, training_maps,
                           training_maps_with_margin)
from szmass.train import train_run
from szmass.zbins import redshift_bins


def train_variant(run: Path, cfg: dict[str, Any], dataset: str, zbin: int, seeds: list[int], out: Path,
                  changes: dict[str, Any]) -> list[Path]:  # fmt: skip
    """Train the variant's runs (module docs); return their directories."""
    tr = cfg["training"] | changes
    maps = open_maps(run / f"results/maps/{dataset}.zarr")
    cut = read_mass_cuts(run / "results/tables/mass_cuts.csv")[zbin] if tr.get("apply_mass_cut") else None
    test_ids = None
    if tr.get("mass_cut_margin_dex", 0) > 0 and cut is not None:  # the run's test set, training below the cut
        ds, test_ids = training_maps_with_margin(
            maps, zbin, tr["redshift_edges"], cut, margin_dex=tr["mass_cut_margin_dex"], identity=tr["split_identity"],
            test_seed=bin_test_seed(cfg["seed"], zbin), fractions=tr["split_fractions"])  # fmt: skip
    else:
        ds = training_maps(maps, zbin, tr["redshift_edges"], cut)
    options = {key: tr[key] for key in ("patience", "augment", "lr_decay_patience", "lr_decay_factor", "sample_weights",
                                        "init_output_bias", "start_from_epoch") if key in tr}  # fmt: skip
    dirs = []
    for seed in seeds:
        target = out / f"seed{seed}"
        if not (target / PREDICTIONS_FILE).exists():
            train_run(ds, out_dir=target, seed=run_seed(cfg["seed"], zbin, seed), test_seed=bin_test_seed(cfg["seed"], zbin),
                      epochs=tr["epochs"], batch_size=tr["batch_size"], learning_rate=tr["learning_rate"],
                      identity=tr["split_identity"], fractions=tr["split_fractions"],
                      architecture=Architecture.from_mapping(tr.get("architecture")), test_identities=test_ids,
                      **options)  # fmt: skip
        dirs.append(target)
    return dirs


def _tests(run_dir: Path) -> pd.DataFrame:
    table = read_predictions(run_dir)
    return table[table["split"] == "test"].sort_values("map").reset_index(drop=True)


def _summary(name: str, log_cnn: np.ndarray, log_true: np.ndarray) -> dict[str, Any]:
    b = relative_bias(log_cnn, log_true)
    thirds = np.array_split(np.argsort(log_true, kind="stable"), 3)
    return {"estimate": name, "median_bt": np.median(b), "std_r": np.std(log_cnn - log_true, ddof=1),
            **{f"bt_{label}": np.median(b[idx]) for label, idx in zip(("low", "mid", "high"), thirds)}}  # fmt: skip


def compare(baseline: list[Path], variant: list[Path], cfg: dict[str, Any], maps_path: Path,
            changes: dict[str, Any]) -> dict[str, Path]:  # fmt: skip
    """Print the module docs' tables; return the run each set's selection rule picks."""
    tr = cfg["training"]
    settings = {"baseline": tr, "variant": tr | changes}
    rows, estimates, picked, tests = [], {}, {}, {}
    for label, dirs in (("baseline", baseline), ("variant", variant)):
        warm_up = settings[label].get("start_from_epoch", 0)
        tests |= {d: _tests(d) for d in dirs}
        for d in dirs:
            t = tests[d]
            hist = pd.read_csv(d / HISTORY_FILE)
            kept = int(hist["val_loss"].iloc[warm_up:].idxmin()) + 1  # the epoch whose weights the run kept
            rows.append({"set": label, "seed": d.name, "epochs": len(hist), "best_epoch": kept,
                         "std_r": np.std(t["log10_M_cnn"] - t["log10_M_true"], ddof=1)})  # fmt: skip
        _, chosen = select_model(dirs, threshold=tr.get("selection_threshold", 0.05), n_bins=tr.get("selection_bins", 10))
        estimates[label] = {"selected": tests[Path(chosen)]["log10_M_cnn"].to_numpy(),
                            "mean": np.mean([tests[d]["log10_M_cnn"].to_numpy() for d in dirs], axis=0)}  # fmt: skip
        estimates[label]["selected_seed"] = chosen.name
        picked[label] = Path(chosen)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    first = tests[baseline[0]]
    for d, t in tests.items():  # the pairing below needs the same test maps, in the same order, in every run
        if not np.array_equal(t["map"].to_numpy(), first["map"].to_numpy()):
            raise ValueError(f"{d / PREDICTIONS_FILE}: its test maps differ from those of {baseline[0] / PREDICTIONS_FILE}; "
                             "the runs cannot be compared map by map")  # fmt: skip
    true = first["log10_M_true"].to_numpy()
    clusters = cluster_identity(open_maps(maps_path).isel(map=first["map"].to_numpy()), tr["split_identity"])
    table = []
    for kind in ("selected", "mean"):
        for label in ("baseline", "variant"):
            row = _summary(f"{label} {kind}", estimates[label][kind], true)
            row["seed"] = estimates[label]["selected_seed"] if kind == "selected" else "all"
            table.append(row)
        r_base = estimates["baseline"][kind] - true
        r_var = estimates["variant"][kind] - true
        pairs = np.stack([r_base, r_var], axis=1)
        lo, hi = _paired_interval(pairs, clusters)
        table.append({"estimate": f"variant - baseline {kind}", "std_r": np.std(r_var, ddof=1) - np.std(r_base, ddof=1),
                      "seed": f"68%: [{lo:+.4f}, {hi:+.4f}]"})  # fmt: skip
    print(f"\n{len(true)} test maps of {len(set(clusters))} clusters")
    print(pd.DataFrame(table).to_string(index=False, float_format=lambda v: f"{v:+.4f}", na_rep=""))
    return picked


def _paired_interval(pairs: np.ndarray, clusters: np.ndarray, n_boot: int = 2000) -> tuple[float, float]:
    """68% bootstrap interval over clusters of std(r_variant) - std(r_baseline), the two residuals of each map kept
    together: rows are resampled by cluster through their index."""
    index = np.arange(len(pairs), dtype=float)

    def diff(rows: np.ndarray, axis: int = 1) -> np.ndarray:
        out = np.empty(rows.shape[0])
        for i, r in enumerate(rows):
            take = r[np.isfinite(r)].astype(int)
            out[i] = np.std(pairs[take, 1], ddof=1) - np.std(pairs[take, 0], ddof=1)
        return out

    return cluster_bootstrap(index, clusters, diff, n_boot=n_boot)


def sky_bias(run: Path, cfg: dict[str, Any], zbin: int, estimates: dict[str, list[Path]]) -> None:
    """Print the median b_t of the bin's sky clusters for each estimate (name -> the run dirs it averages)."""
    sky = xr.open_zarr(run / "results/sky/cutouts.zarr")
    edges = cfg["training"]["redshift_edges"]
    z = np.asarray(sky["redshift"].values, dtype=float)
    rows = redshift_bins(z, edges) == zbin
    y, z = np.asarray(sky["y"].values)[rows], z[rows]
    true = np.log10(np.asarray(sky["M500"].values, dtype=float)[rows])
    print(f"\nsky: {int(rows.sum())} clusters of bin {zbin}, median log10 M_true {np.median(true):.3f}")
    masses: dict[Path, np.ndarray] = {}  # per run, predicted once though it serves two estimates
    for name, dirs in estimates.items():
        for d in dirs:
            if d not in masses:
                masses[d] = predict_masses(y, z, {zbin: load_run_model(d / MODEL_FILE)}, edges=edges)
        log_cnn = np.mean([masses[d] for d in dirs], axis=0)
        b = relative_bias(log_cnn, true)
        print(f"{name:>18}: median b_t {np.median(b):+.4f}, std r {np.std(log_cnn - true, ddof=1):.4f} dex")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--config", type=Path, default=Path("config/validation.yaml"))
    parser.add_argument("--dataset", default="planck", choices=["clean", "planck"])
    parser.add_argument("--zbin", type=int, required=True)
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a training.* setting")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sky", action="store_true", help="also the sky's clusters of the bin (module docs)")
    args = parser.parse_args()
    cfg = yaml.safe_load(args.config.read_text())
    changes = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    seeds = args.seeds if args.seeds is not None else list(range(cfg["training"]["seeds"]))
    print(f"{args.dataset} z{args.zbin}, seeds {seeds}: {changes}")
    variant = train_variant(args.run, cfg, args.dataset, args.zbin, seeds, args.out, changes)
    baseline = [args.run / f"results/models/{args.dataset}/z{args.zbin}/seed{s}" for s in seeds]
    chosen = compare(baseline, variant, cfg, args.run / f"results/maps/{args.dataset}.zarr", changes)
    if args.sky:
        sky_bias(args.run, cfg, args.zbin, {"baseline selected": [chosen["baseline"]], "variant selected": [chosen["variant"]],
                                            "baseline mean": baseline, "variant mean": variant})  # fmt: skip


if __name__ == "__main__":
    main()
