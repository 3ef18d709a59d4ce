"""Cross-model test: one gas model's selected networks (per redshift bin) on the test clusters of every model."""
import keras
import pandas as pd

from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.provenance import stamp_job
from szmass.splits import cluster_identity, test_identities
from szmass.studies import maps_of_identities, predict_maps_by_bin, select_gas_models
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
store = open_maps(sm.input.maps)
models = {b: keras.saving.load_model(path, compile=False) for b, path in enumerate(sm.input.models, start=1)}
parts = []
for test_model in p.test_models:
    maps = select_gas_models(store, [test_model])
    held_out = test_identities(cluster_identity(maps, p.identity), test_seed=p.test_seed,
                               fractions=p.fractions)
    tests = maps_of_identities(maps, held_out, p.identity)
    parts.append(predict_maps_by_bin(tests, models, p.edges).assign(train_model=sm.wildcards.train_model,
                                                                     test_model=test_model))
    log.info("%s networks on %d test maps of %s", sm.wildcards.train_model, len(parts[-1]), test_model)
write_table(pd.concat(parts, ignore_index=True), sm.output[0])
stamp_job(sm)
