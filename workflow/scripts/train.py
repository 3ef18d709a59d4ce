"""Train seeded runs of one redshift bin of a map store (results/models/{dataset}/z{bin}/seed{seed}/).

One run (params ``seed``) with szmass.train.train_run, or K runs at once (params ``seeds`` and ``run_dirs``,
rule training.seeds_per_job) with the vectorised szmass.ensemble.train_ensemble; the same outputs per run.
Optional params: ``init_output_bias``, ``deterministic``, ``jit_compile``, ``mixed_precision``, ``patience``,
``augment``, ``start_from_epoch``, ``lr_decay_patience``, ``lr_decay_factor``, ``sample_weights``,
``fractions`` (training options, defaults as in szmass.train.train_run), ``target_mass`` (the mass trained
on: M500, the default, or M200; the mass cut stays on M500), ``mass_cut_margin_dex`` (train and validate
down to that many dex below the mass cut, test above it: szmass.splits.training_maps_with_margin).
Also the training job of the studies
(workflow/rules/studies.smk): ``zbin`` (else the wildcard), ``models`` (gas models to keep), ``test_scope``
("bin": the bin's own test draw; "all": one test set drawn over every redshift), ``architecture``
(a mapping of szmass.model.Architecture fields) and ``train_fraction`` (train on that fraction of the
clusters outside the test set, szmass.studies.training_subset).
"""
import os

from szmass.architecture import Architecture
from szmass.ensemble import train_ensemble
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.provenance import stamp_job
from szmass.splits import (DEFAULT_FRACTIONS, check_trainable, cluster_identity, read_mass_cuts, test_identities,
                           training_maps, training_maps_with_margin)
from szmass.studies import select_gas_models, training_subset
from szmass.train import DEFAULT_LR_DECAY_FACTOR, train_run

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
zbin = int(p.get("zbin") or sm.wildcards.zbin)
target_mass = p.get("target_mass", "M500")
maps = select_gas_models(open_maps(sm.input.maps, need=[target_mass]), p.get("models") or ())
test_ids = None
fractions = p.get("fractions", DEFAULT_FRACTIONS)
if p.get("test_scope", "bin") == "all":
    test_ids = test_identities(cluster_identity(maps, p.identity), test_seed=p.test_seed, fractions=fractions)
    log.info("test set over all redshifts: %d cluster identities", len(test_ids))
cuts = sm.input.get("cuts")  # by name (the Planck mocks' S/N mass cuts)
cut = read_mass_cuts(cuts)[zbin] if cuts else None
margin = p.get("mass_cut_margin_dex", 0.0)  # train and validate below the cut, test above it (the main runs only)
if margin > 0 and cut is not None and test_ids is None:
    ds, test_ids = training_maps_with_margin(maps, zbin, p.edges, cut, margin_dex=margin, identity=p.identity,
                                             test_seed=p.test_seed, fractions=fractions)
    log.info("training and validation down to %.2f dex below the mass cut", margin)
else:
    ds = training_maps(maps, zbin, p.edges, cut)
check_trainable(ds, zbin, p.edges, p.identity, store=sm.input.maps, m500_cut=cut, cuts=cuts)
if cut is not None:
    log.info("mass cut M500 >= %.3g Msun: %d maps kept", cut, ds.sizes["map"])
if p.get("train_fraction") is not None:  # the training-set-size study: the bin's whole test set, fewer clusters
    if test_ids is None:
        test_ids = test_identities(cluster_identity(ds, p.identity), test_seed=p.test_seed, fractions=fractions)
    ds = training_subset(ds, test_ids, p.train_fraction, seed=p.seed, identity=p.identity)
    log.info("training on %.3g of the training clusters: %d maps kept", p.train_fraction, ds.sizes["map"])
arch = Architecture.from_mapping(p.get("architecture"))
options = dict(test_seed=p.test_seed, epochs=p.epochs, batch_size=p.batch_size, learning_rate=p.learning_rate,
               identity=p.identity, architecture=arch, test_identities=test_ids,
               init_output_bias=p.get("init_output_bias", True), deterministic=p.get("deterministic", True),
               jit_compile=p.get("jit_compile", False), target_mass=target_mass, patience=p.get("patience"),
               augment=p.get("augment", False), lr_decay_patience=p.get("lr_decay_patience"),
               lr_decay_factor=p.get("lr_decay_factor", DEFAULT_LR_DECAY_FACTOR),
               sample_weights=p.get("sample_weights", "none"), start_from_epoch=p.get("start_from_epoch", 0),
               fractions=fractions)
if p.get("seeds"):  # mixed_precision is single-seed only (refused with seeds_per_job > 1 at workflow start)
    results = train_ensemble(ds, out_dirs=p.run_dirs, seeds=p.seeds, **options)
else:
    results = [train_run(ds, out_dir=os.path.dirname(sm.output.model), seed=p.seed,
                         mixed_precision=p.get("mixed_precision", False), **options)]
for result in results:
    log.info("%s bin %d (%s, log10 %s): %s", sm.input.maps, zbin, arch.name, target_mass, result)
stamp_job(sm)
