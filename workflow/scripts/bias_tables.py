"""Supplementary Table 2 (bias statistics), the log-residual moments, and ensemble versus selected model
(szmass.paper_tables). The 68% intervals resample clusters: a test map's cluster is its identity in the map store
(szmass.splits.cluster_identity; the clean and Planck-mock stores hold the same maps in the same order), each
sky row is its own cluster."""
import numpy as np
import pandas as pd

from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.paper_tables import bias_and_moments, bias_samples, ensemble_comparison
from szmass.provenance import stamp_job
from szmass.splits import cluster_identity
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
selected = {ds: pd.read_csv(path) for ds, path in zip(p.datasets, sm.input.selected)}
ensemble = {ds: pd.read_csv(path) for ds, path in zip(p.datasets, sm.input.ensemble)}
truth = pd.read_csv(sm.input.truth[0]) if sm.input.truth else None  # a synthetic sky
maps = open_maps(sm.input.maps)
labelled = {ds: t.assign(cluster=cluster_identity(maps.isel(map=t["map"].to_numpy()), p.identity))
            for ds, t in selected.items()}  # fmt: skip
sky = pd.read_csv(sm.input.sky)
sky["cluster"] = np.arange(len(sky))
samples = bias_samples(labelled, sky, truth=truth, sky_dataset=p.sky_dataset)
log.info("samples: %s", ", ".join(f"{s.name} {s.statistic} ({len(s.table)} rows, {s.table['cluster'].nunique()} "
                                  "clusters)" for s in samples))  # fmt: skip
bias, moments = bias_and_moments(samples, clusters="cluster", seed=p.seed)
for table, out in ((bias, sm.output.bias), (moments, sm.output.moments),
                   (ensemble_comparison(selected, ensemble), sm.output.ensemble)):
    write_table(table, out)
    log.info("%d rows -> %s", len(table), out)
stamp_job(sm)
