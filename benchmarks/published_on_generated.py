"""Domain gap inside the published networks' reach: generated clusters of their training masses and redshifts.

Not a test: prints figures. A run's Planck mocks hold the clusters its regions happen to contain, most of
them, at z > 0.2, below the published networks' noise floor (``benchmarks/published_on_mocks.py``). Here
the clusters are chosen instead: ``--per-bin`` single-cluster regions in each redshift bin of the published
networks, the redshift uniform in the bin ((0.4, 1] is sampled over (0.4, 0.7], where THE THREE HUNDRED's
Planck-detectable clusters are), M500 log-uniform in ``--m500-range`` (default 4e14-1.5e15 Msun, above the
floors and inside THE THREE HUNDRED's range at every redshift), with the demo's particle masses (gas 1e10,
dark matter 5e10 h^-1 Msun; cluster k: seed ``--seed`` + k), written as GADGET snapshots and read back.
Each is projected by the default (fast) route along ``--projections`` lines of sight onto 96 x 96 pixels of
1.7' with the 10' beam; Planck noise is added from a run's own Planck mocks: the noise of a map (Planck mock
minus clean map, ``results/maps/{planck,clean}.zarr`` of RUN_DIR), drawn at random (seeded). The paper's
networks (``bestmodel-{1..4}.h5``) predict the masses through :func:`szmass.predict.predict_masses`, and the
harness prints per bin: N maps and clusters, median b_t = (M_CNN - M_true) / M_CNN with its 16th/84th
percentiles and standard error, and the std of log10(M_CNN / M_true), on the clean and on the noisy maps.
On THE THREE HUNDRED's own Planck mocks the networks give about -0.03 (+0.14/-0.17) and 0.07 dex.

    .venv/bin/python benchmarks/published_on_generated.py WEIGHTS_DIR RUN_DIR --per-bin 30 --projections 2

``--table out.csv`` keeps the per-map rows (bin, cluster, redshift, log10 M_true and the clean and noisy
log10 M_CNN [Msun]) for further analysis.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

Z_SAMPLED_MAX = 0.7
"""Upper redshift of the clusters of the last bin (0.4, 1]."""


def observed_maps(snap_path: Path, projections: range) -> tuple[float, float, np.ndarray]:
    """(M500 [Msun], z, maps (n, 96, 96) [y]) of the main halo of ``snap_path`` by the default route."""
    from ymap_cluster import main_halo  # sibling harness

    from szmass.cosmology import make_cosmology
    from szmass.instrument import Instrument
    from szmass.sims import read_snapshot
    from szmass.ymap import project_halo, selection_radius_kpc

    cosmo = make_cosmology()
    header, main, centre, r500 = main_halo(snap_path)
    snap = read_snapshot(snap_path, centre=centre, radius=float(selection_radius_kpc(r500, header.redshift, cosmo)))
    halo = project_halo(snap, centre, r500, cosmo=cosmo, projections=projections, instrument=Instrument())
    return float(main["M500c"]) / header.h, float(header.redshift), np.asarray(halo.maps)


def summary(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per bin and over all: N maps, clusters, median b_t (16th/84th), std err, std log10(M_CNN/M_true)."""
    from szmass.evaluate import bias_table, moments_table

    t = table.rename(columns={column: "log10_M_cnn"})
    bias = bias_table(t, ref="log10_M_true").query("mass_range == 'all'").set_index("zbin")
    std = moments_table(t, ref="log10_M_true").set_index("zbin")["std"]
    clusters = t.groupby("zbin")["cluster"].nunique()
    bias["clusters"] = [clusters.get(int(str(k)[1:]), t["cluster"].nunique()) if str(k) != "all"
                        else t["cluster"].nunique() for k in bias.index]  # fmt: skip
    bias["std_dex"] = std.reindex(bias.index).to_numpy()
    m_true = t.groupby("zbin")["log10_M_true"].median()
    bias["m_true"] = [m_true.get(int(str(k)[1:])) if str(k) != "all" else t["log10_M_true"].median() for k in bias.index]
    return bias


def main() -> None:
    from ymap_equivalence import make_cluster  # sibling harness

    from szmass.mapstore import open_maps
    from szmass.predict import load_models, predict_masses
    from szmass.zbins import REDSHIFT_EDGES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", type=Path, help="directory of the published bestmodel-{1..4}.h5")
    p.add_argument("run", type=Path, help="a run's working directory (its Planck and clean map stores give the noise)")
    p.add_argument("--per-bin", type=int, default=30)
    p.add_argument("--projections", type=int, default=2)
    p.add_argument("--m500-range", type=float, nargs=2, default=(4.0e14, 1.5e15))
    p.add_argument("--seed", type=int, default=300)
    p.add_argument("--table", type=Path, default=None, help="write the per-map table (CSV) here")
    args = p.parse_args()

    models = load_models(args.weights)
    planck = open_maps(args.run / "results" / "maps" / "planck.zarr")["y"].values
    noise = planck - open_maps(args.run / "results" / "maps" / "clean.zarr")["y"].values
    rng = np.random.default_rng(args.seed)
    edges = np.asarray(REDSHIFT_EDGES, dtype=float)
    rows, maps = [], []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for b in range(1, edges.size):
            lo, hi = edges[b - 1], min(edges[b], Z_SAMPLED_MAX)
            for j in range(args.per_bin):
                k = (b - 1) * args.per_bin + j
                z = float(rng.uniform(max(lo, 0.02), hi))
                m = float(np.exp(rng.uniform(*np.log(args.m500_range))))
                m500, z_snap, y = observed_maps(make_cluster(Path(tmp), k, m, z, args.seed), range(args.projections))
                maps.append(y)
                rows += [{"zbin": b, "cluster": k, "redshift": z_snap, "log10_M_true": np.log10(m500)}] * len(y)
            print(f"bin {b}: {args.per_bin} clusters generated and projected ({time.perf_counter() - t0:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    clean = np.concatenate(maps)
    noisy = clean + noise[rng.integers(0, noise.shape[0], clean.shape[0])]
    for name, images in (("clean", clean), ("noisy", noisy)):
        table[name] = predict_masses(images, table["redshift"].to_numpy(), models.models, edges=models.edges)
    if args.table is not None:
        table.to_csv(args.table, index=False)
    print(f"published networks {args.weights}; noise from {args.run}; M500 {args.m500_range[0]:.1e}-"
          f"{args.m500_range[1]:.1e} Msun, {args.projections} lines of sight per cluster")
    for name in ("clean", "noisy"):
        s = summary(table, name)
        print(f"{name} maps:  bin   N maps (clusters)   median log10 M_true   median b_t (-16th/+84th)   std err   "
              "std log10(M_CNN/M_true) [dex]")
        for label, r in s.iterrows():
            print(f"        {label:>4}   {int(r['n']):6d} ({int(r['clusters']):4d})   {r['m_true']:19.2f}   {r['median']:+.3f} "
                  f"(-{r['median'] - r['p16']:.3f}/+{r['p84'] - r['median']:.3f})   {r['stderr']:.3f}     {r['std_dex']:.3f}")


if __name__ == "__main__":
    main()
