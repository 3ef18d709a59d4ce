"""Train seeded runs of one redshift bin of a map store (results/models/{dataset}/z{bin}/seed{seed}/).

One run (params ``seed``) with szmass.train.train_run, or K runs at once (params ``seeds`` and ``run_dirs``,
rule training.seeds_per_job) with the vectorised szmass.ensemble.train_ensemble; the same outputs per run.
Optional params: ``init_output_bias``, ``deterministic``, ``jit_compile``, ``mixed_precision`` (training
options, defaults as in szmass.train.train_run). Also the training job of the studies
(workflow/rules/studies.smk): ``zbin`` (else the wildcard), ``models`` (gas models to keep), ``test_scope``
("bin": the bin's own test draw; "all": one test set drawn over every redshift), ``architecture``
(a mapping of szmass.model.Architecture fields) and ``train_fraction`` (train on that fraction of the
clusters outside the test set, szmass.studies.training_subset).
"""
import os

import numpy as np
import pandas as pd

from szmass.architecture import Architecture
from szmass.ensemble import train_ensemble
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.provenance import stamp_job
from szmass.splits import cluster_identity, select_redshift_bin
from szmass.studies import select_gas_models, training_subset
from szmass.train import draw_test_identities, train_run

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
zbin = int(p.get("zbin") or sm.wildcards.zbin)
maps = select_gas_models(open_maps(sm.input.maps), p.get("models") or ())
test_ids = None
if p.get("test_scope", "bin") == "all":
    test_ids = draw_test_identities(maps, test_seed=p.test_seed, identity=p.identity)
    log.info("test set over all redshifts: %d cluster identities", len(test_ids))
ds = select_redshift_bin(maps, zbin, p.edges)
if ds.sizes["map"] == 0:
    raise ValueError(f"{sm.input.maps}: no maps in redshift bin {zbin} ({p.edges[zbin - 1]}, {p.edges[zbin]}] "
                     f"(of edges {list(p.edges)}); choose bin edges around the snapshots' redshifts")
cuts = sm.input.get("cuts")  # by name (the Planck mocks' S/N mass cuts)
if cuts:
    cut = float(pd.read_csv(cuts).set_index("bin").loc[zbin, "M500_cut"])
    ds = ds.isel(map=ds["M500"].values >= cut)
    log.info("mass cut M500 >= %.3g Msun: %d maps kept", cut, ds.sizes["map"])
    if len(np.unique(cluster_identity(ds, p.identity))) < 10:
        raise ValueError(f"{cuts}: the mass cut of redshift bin {zbin} (M500 >= {cut:.3g} Msun) keeps "
                         f"{ds.sizes['map']} maps of fewer than 10 clusters; simulate more massive halos or set "
                         "training.apply_mass_cut: false")
if p.get("train_fraction") is not None:  # the training-set-size study: the bin's whole test set, fewer clusters
    if test_ids is None:
        test_ids = draw_test_identities(ds, test_seed=p.test_seed, identity=p.identity)
    ds = training_subset(ds, test_ids, p.train_fraction, seed=p.seed, identity=p.identity)
    log.info("training on %.3g of the training clusters: %d maps kept", p.train_fraction, ds.sizes["map"])
arch = Architecture.from_mapping(p.get("architecture"))
options = dict(test_seed=p.test_seed, epochs=p.epochs, batch_size=p.batch_size, learning_rate=p.learning_rate,
               identity=p.identity, architecture=arch, test_identities=test_ids,
               init_output_bias=p.get("init_output_bias", True), deterministic=p.get("deterministic", True),
               jit_compile=p.get("jit_compile", False))
if p.get("seeds"):
    if p.get("mixed_precision", False):
        raise ValueError("training.mixed_precision: not available with training.seeds_per_job > 1 (the vectorised "
                         "ensemble trains in float32); set seeds_per_job: 1 or mixed_precision: false")
    results = train_ensemble(ds, out_dirs=p.run_dirs, seeds=p.seeds, **options)
else:
    results = [train_run(ds, out_dir=os.path.dirname(sm.output.model), seed=p.seed,
                         mixed_precision=p.get("mixed_precision", False), **options)]
for result in results:
    log.info("%s bin %d (%s): %s", sm.input.maps, zbin, arch.name, result)
stamp_job(sm)
