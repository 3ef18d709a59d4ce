"""Train one seeded run of one redshift bin of a map store (results/models/{dataset}/z{bin}/seed{seed}/)."""
import os

import numpy as np
import pandas as pd

from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.splits import cluster_identity, select_redshift_bin
from szmass.train import train_run

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
zbin = int(sm.wildcards.zbin)
ds = select_redshift_bin(open_maps(sm.input.maps), zbin, p.edges)
if "cuts" in sm.input.keys():
    cut = float(pd.read_csv(sm.input.cuts).set_index("bin").loc[zbin, "M500_cut"])
    ds = ds.isel(map=ds["M500"].values >= cut)
    log.info("mass cut M500 >= %.3g Msun: %d maps kept", cut, ds.sizes["map"])
    if len(np.unique(cluster_identity(ds, p.identity))) < 10:
        raise ValueError(f"{sm.input.cuts}: the mass cut of redshift bin {zbin} (M500 >= {cut:.3g} Msun) keeps "
                         f"{ds.sizes['map']} maps of fewer than 10 clusters; simulate more massive halos or set "
                         "training.apply_mass_cut: false")
result = train_run(ds, out_dir=os.path.dirname(sm.output.model), seed=p.seed, test_seed=p.test_seed,
                   epochs=p.epochs, batch_size=p.batch_size, learning_rate=p.learning_rate, identity=p.identity)
log.info("%s bin %d seed %s: %s", sm.wildcards.dataset, zbin, sm.wildcards.seed, result)
