"""The figures of a validation run (config/validation.yaml; docs/validation.md) next to the paper's and the
targets, from a finished run's directory.

Prints, per data set and redshift bin, on the selected models' test maps: N maps and distinct clusters,
median b_t = (M_CNN - M_true) / M_CNN with its 16th/84th percentiles, standard error and 68% bootstrap
interval over clusters, and the mean and std of log10(M_CNN / M_true) [dex] with their bootstrap intervals;
the same above the Planck mocks' S/N mass cut of each bin; the runs' convergence (epochs trained, best
epoch), how many passed the selection rule, the test scatter of every run and of the mean over all runs of
a bin (no selection); the ensemble against the selected run; the synthetic sky's
closure (median b_P of M_CNN > 5e14 Msun against the configured b, b_t per bin); the posterior coverage
before and after recalibration; and the CPU and wall time of each rule from the jobs' benchmark files.

    python benchmarks/validation_report.py RUN_DIR [--config config/validation.yaml] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from szmass.evaluate import bias_table, moments_table
from szmass.mapstore import open_maps
from szmass.rundir import HISTORY_FILE, read_predictions, read_selection
from szmass.splits import cluster_identity, read_mass_cuts

TARGETS = {"clean": 0.06, "planck": 0.08}
"""Std of log10(M_CNN / M_true) [dex] the validation run must reach per data set (|median b_t| <= 0.03)."""
PAPER = {"clean": "-0.02 (+0.09/-0.10), 0.05 dex", "planck": "-0.03 (+0.14/-0.17), 0.07 dex"}


def pm(value: float, lo: float, hi: float) -> str:
    """``value [lo, hi]`` to three decimals."""
    return f"{value:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def mock_rows(tests: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per bin and all: Table 2's b_t row joined with the log-residual moments (both with cluster intervals)."""
    bias = bias_table(tests, ref="log10_M_true", clusters="cluster", seed=seed)
    bias = bias[bias["mass_range"] == "all"].drop(columns="mass_range")
    moments = moments_table(tests, ref="log10_M_true", clusters="cluster", seed=seed)
    return bias.merge(moments.drop(columns=["n", "n_clusters"]), on="zbin")


def print_mock_table(rows: pd.DataFrame, dataset: str) -> None:
    target = TARGETS[dataset]
    print("| bin | N maps (clusters) | median b_t (16th/84th) | std err | median b_t, 68% boot. | mean log [dex], 68% boot. "
          "| std log [dex], 68% boot. | targets met |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows.itertuples():
        met = abs(r.median) <= 0.03 or r.median_lo <= 0.03 and r.median_hi >= -0.03
        ok = f"bias {'yes' if met else 'no'}, std {'yes' if r.std <= target else 'no'}"
        print(f"| {r.zbin} | {r.n} ({r.n_clusters}) | {r.median:+.3f} ({r.p16 - r.median:+.3f}/{r.p84 - r.median:+.3f}) "
              f"| {r.stderr:.3f} | {pm(r.median, r.median_lo, r.median_hi)} | {pm(r.mean, r.mean_lo, r.mean_hi)} "
              f"| {r.std:.3f} [{r.std_lo:.3f}, {r.std_hi:.3f}] | {ok} |")
    print(f"(targets: |median b_t| <= 0.03 within its interval, std <= {target} dex; paper: {PAPER[dataset]})")


def convergence(run: Path, dataset: str) -> None:
    """Epochs trained and best epoch of every run; runs passing the selection rule; the test std of
    log10(M_CNN / M_true) [dex] of every run and of the mean of log10 M_CNN over all runs of the bin (no
    selection), per bin and over all bins."""
    print(f"\n### convergence and selection, {dataset}\n")
    print("| bin | runs passed / all | selected seed | epochs trained (min-max) | best epoch (min-max) "
          "| test std per run (min-max) | test std of the mean of all runs |")
    print("|---|---|---|---|---|---|---|")
    residuals = []
    for sel_path in sorted((run / "results" / "models" / dataset).glob("z*/selection.csv")):
        sel = read_selection(sel_path)
        lengths, best, tests = [], [], []
        for run_dir in sel["run_dir"]:
            h = pd.read_csv(run / run_dir / HISTORY_FILE)
            lengths.append(len(h))
            best.append(int(h["epoch"].to_numpy()[np.argmin(h["val_loss"].to_numpy())]))
            p = read_predictions(run / run_dir)
            tests.append(p[p["split"] == "test"].sort_values("map"))
        runs_std = [float((t["log10_M_cnn"] - t["log10_M_true"]).std(ddof=0)) for t in tests]
        mean = np.mean([t["log10_M_cnn"].to_numpy() for t in tests], axis=0)  # the runs share the test maps
        residuals.append(mean - tests[0]["log10_M_true"].to_numpy())
        chosen = Path(sel.loc[sel["selected"].astype(bool), "run_dir"].iloc[0]).name
        print(f"| {sel_path.parent.name} | {int(sel['passed'].sum())}/{len(sel)} | {chosen} | {min(lengths)}-{max(lengths)} "
              f"| {min(best)}-{max(best)} | {min(runs_std):.3f}-{max(runs_std):.3f} | {residuals[-1].std():.3f} |")
    print(f"| all | | | | | | {np.concatenate(residuals).std():.3f} |")


def sky_closure(run: Path, hydrostatic_bias: float, seed: int) -> None:
    """Median b_P of the synthetic sky's clusters against the injected b = 1 - (1 - b) and b_t per bin."""
    sky = pd.read_csv(run / "results" / "sky" / "predictions.csv")  # a synthetic sky's holds log10_M_true
    b = 1 - hydrostatic_bias
    print(f"\n### synthetic sky: closure (injected b = {b:.2f}; targets: median b_P = b +- 0.03 at M_CNN > 5e14, "
          "|median b_t| <= 0.05 in bins of >= 20 clusters)\n")
    print("| bin | N | median b_P (M_CNN > 5e14), N | median b_P all, 68% boot. | median b_t, 68% boot. "
          "| median b_t of the catalogue's M_CNN, 68% boot. |")
    print("|---|---|---|---|---|---|")
    b_p = bias_table(sky, ref="log10_MSZ", seed=seed)
    b_t = bias_table(sky, ref="log10_M_true", seed=seed)
    b_cat = catalogue_bias(run, seed)
    for label in b_p["zbin"].unique():
        part = b_p[b_p["zbin"] == label].set_index("mass_range")
        hi = part.loc["M_CNN>5e14"]
        al = part.loc["all"]
        t = b_t[(b_t["zbin"] == label) & (b_t["mass_range"] == "all")].iloc[0]
        c = b_cat[(b_cat["zbin"] == label) & (b_cat["mass_range"] == "all")] if b_cat is not None else None
        cat = pm(c["median"].iloc[0], c["median_lo"].iloc[0], c["median_hi"].iloc[0]) if c is not None and len(c) else "-"
        print(f"| {label} | {int(al['n'])} | {hi['median']:+.3f}, {int(hi['n'])} | {pm(al['median'], al['median_lo'], al['median_hi'])} "
              f"| {pm(t['median'], t['median_lo'], t['median_hi'])} | {cat} |")
    print("(b_t of the networks' point masses, and of the catalogue's M_CNN: the posterior median, the KDE of the test "
          "set's (prediction, truth) pairs sliced at the prediction)")


def catalogue_bias(run: Path, seed: int) -> pd.DataFrame | None:
    """:func:`szmass.evaluate.bias_table` of the catalogue's M_CNN (the posterior median) against the injected M500,
    per redshift bin; None without the catalogue."""
    path = run / "results" / "catalogue" / "psz2_cnn_masses.csv"
    if not path.exists():
        return None
    cat = pd.read_csv(path, usecols=["ZBIN", "M_CNN", "M500_TRUE"])
    table = pd.DataFrame({"zbin": cat["ZBIN"], "log10_M_cnn": np.log10(cat["M_CNN"]),
                          "log10_M_true": np.log10(cat["M500_TRUE"])})  # fmt: skip
    return bias_table(table, ref="log10_M_true", seed=seed)


def timing(run: Path) -> None:
    """Wall and CPU seconds summed per rule over its jobs' benchmark files (benchmarks/out/RULE/...)."""
    rows = []
    for tsv in (run / "benchmarks" / "out").rglob("*.tsv"):
        rule = tsv.relative_to(run / "benchmarks" / "out").parts[0].removesuffix(".tsv")
        t = pd.read_csv(tsv, sep="\t")
        rows.append({"rule": rule, "wall_s": float(t["s"].iloc[0]), "cpu_s": float(t["cpu_time"].iloc[0])})
    if not rows:
        return
    table = pd.DataFrame(rows).groupby("rule").agg(jobs=("wall_s", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"))
    print("\n### time per rule (sums over jobs)\n")
    print(table.sort_values("cpu_s", ascending=False).round(0).to_string())
    print(f"total: {table['wall_s'].sum():.0f} s job wall, {table['cpu_s'].sum():.0f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the run's working directory")
    parser.add_argument("--config", type=Path, default=Path("config/validation.yaml"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    args = parser.parse_args()
    cfg = yaml.safe_load(args.config.read_text())
    training = cfg["training"]
    maps = open_maps(args.run / "results" / "maps" / "planck.zarr")
    ids = cluster_identity(maps, training.get("split_identity", "halo"))
    cuts = read_mass_cuts(args.run / "results" / "tables" / "mass_cuts.csv")
    for dataset in training["datasets"]:
        tests = pd.read_csv(args.run / "results" / "tables" / f"test_predictions_{dataset}.csv")
        tests["cluster"] = ids[tests["map"].to_numpy()]
        print(f"\n### {dataset}: selected models on the test maps\n")
        print_mock_table(mock_rows(tests, args.seed), dataset)
        above = tests[10 ** tests["log10_M_true"].to_numpy() >= tests["zbin"].map(cuts).to_numpy()]
        if len(above) and above["cluster"].nunique() > 1:
            print(f"\n{dataset}, above each bin's Planck S/N mass cut ({', '.join(f'z{k} {v:.2g}' for k, v in sorted(cuts.items()))} Msun):\n")
            print_mock_table(mock_rows(above, args.seed), dataset)
        convergence(args.run, dataset)
    ensemble = args.run / "results" / "tables" / "ensemble_vs_selected.csv"
    if ensemble.exists():
        print("\n### ensemble of passing runs against the selected run\n")
        print(pd.read_csv(ensemble).round(3).to_string(index=False))
    if (args.run / "results" / "sky" / "truth.csv").exists():
        sky_closure(args.run, float(cfg["planck"].get("hydrostatic_bias", 0.8)), args.seed)
    coverage = args.run / "results" / "tables" / "posterior_coverage.csv"
    if coverage.exists():
        print("\n### posterior coverage of the held-out test maps (targets 0.68 +- 0.03, 0.95 +- 0.02)\n")
        print(pd.read_csv(coverage).round(3).to_string(index=False))
    timing(args.run)


if __name__ == "__main__":
    main()
