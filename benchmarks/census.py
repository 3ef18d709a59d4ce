"""How many halos a synthetic config selects, per redshift bin and per region, without making any particle.

    .venv/bin/python benchmarks/census.py [CONFIG]      # default: config/scale.yaml

For each synthetic simulation of the config: each region's halo population (``szmass.synth``, the same draw as
the ``simulate`` jobs make), evolved to every snapshot; a halo-snapshot counts when its model M500 exceeds the
config's ``halo_selection.m500_min`` [h^-1 Msun] and the halo is uncontaminated (the measured M500 of the
selection differs from the model's by the profile scatter, so the counts are estimates to a few per cent).
Prints the halo-snapshots and maps (times the lines of sight) per redshift bin, the spread over regions, and
the training map-steps (80 % training split x epochs, per data set and seed). docs/scaling.md uses it.
Cost: 1-2.5 s per region (the population draws), 6-15 min for config/scale.yaml on the 2-core VM.
"""

import sys
import time
from pathlib import Path

import numpy as np
import yaml

from szmass import layout
from szmass.cosmology import make_cosmology
from szmass.synth import SynthConfig
from szmass.synth.halos import evolve
from szmass.synth.region import population_for
from szmass.zbins import REDSHIFT_EDGES

REPO = Path(__file__).resolve().parents[1]
path = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "config" / "scale.yaml"
cfg = yaml.safe_load(path.read_text())
cosmo = make_cosmology(cfg["cosmology"])
m_min = float(cfg["halo_selection"].get("m500_min", 1e14)) / cosmo.h  # [Msun]
projections = int(cfg["ymaps"].get("projections", 27))
edges = cfg.get("training", {}).get("redshift_edges", list(REDSHIFT_EDGES))
epochs = int(cfg.get("training", {}).get("epochs", 200))
t0 = time.perf_counter()
for sim, sim_cfg in cfg["sims"].items():
    if sim_cfg["source"] != "synthetic":
        print(f"{sim}: source {sim_cfg['source']}, skipped (no generator to ask)")
        continue
    synth = SynthConfig.from_mapping(sim_cfg.get("synthetic", {}))
    snaps = layout.snapshots(sim_cfg)
    per_bin = np.zeros(len(edges) - 1, dtype=int)
    per_region = []
    for region in layout.regions(sim_cfg):
        population = population_for(synth, cosmo, region=region, seed=layout.derive_seed(cfg["seed"], sim, region))
        n = 0
        for z in snaps.values():
            k = int(np.searchsorted(edges, z, side="left")) - 1  # bins (lo, hi]
            selected = sum(not s.halo.contaminated and s.m500 > m_min for s in evolve(population, z, cosmo, synth.r_max_r500))
            per_bin[k] += selected
            n += selected
        per_region.append(n)
    total = int(per_bin.sum())
    print(f"{sim}: {len(per_region)} regions x {len(snaps)} snapshots; {total} halo-snapshots, {total * projections} maps "
          f"({time.perf_counter() - t0:.0f} s)")
    print(f"  per region: min {min(per_region)}, median {np.median(per_region):.0f}, "
          f"90th percentile {np.percentile(per_region, 90):.0f}, max {max(per_region)} halo-snapshots")
    for k, n in enumerate(per_bin):
        print(f"  bin {k + 1} ({edges[k]}, {edges[k + 1]}]: {n} halo-snapshots, {n * projections} maps, "
              f"{0.8 * n * projections * epochs:.3g} training map-steps per data set and seed")
