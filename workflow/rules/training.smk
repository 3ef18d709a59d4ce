# Stages 6-7: the paper's CNN trained per data set and redshift bin, N seeded runs each (GPU-tagged;
# they run on the CPU where there is no GPU), then the selection rule picks one model per bin. The clean
# and Planck-mock runs of a seed share their seed, split and test set, and the mass cut (if applied), so
# both data sets train and test on the same clusters.

TRAIN = config["training"]
ZBINS = list(range(1, len(TRAIN["redshift_edges"])))
SEEDS = list(range(TRAIN["seeds"]))
DATASETS = TRAIN["datasets"]


SEEDS_PER_JOB = TRAIN["seeds_per_job"]
# the options of szmass.train.train_run / szmass.ensemble.train_ensemble that the config sets (the studies' too;
# training.target_mass is the main networks' only: the studies train on M500)
TRAIN_OPTIONS = {
    key: TRAIN[key]
    for key in ("init_output_bias", "deterministic", "jit_compile", "mixed_precision", "patience", "augment")
}
# the warm-up, the learning rate's decay, the loss weights and the training margin below the mass cut only where
# they are on: runs trained without them keep their recorded params
if TRAIN["start_from_epoch"] > 0:
    TRAIN_OPTIONS["start_from_epoch"] = TRAIN["start_from_epoch"]
if TRAIN["mass_cut_margin_dex"] > 0:
    TRAIN_OPTIONS["mass_cut_margin_dex"] = TRAIN["mass_cut_margin_dex"]
if TRAIN["lr_decay_patience"] is not None:
    TRAIN_OPTIONS |= {key: TRAIN[key] for key in ("lr_decay_patience", "lr_decay_factor")}
if TRAIN["sample_weights"] != "none":
    TRAIN_OPTIONS["sample_weights"] = TRAIN["sample_weights"]


rule train:
    """One seeded training run of one redshift bin: model.keras, history.csv, predictions.csv.

    A killed run resumes from its per-epoch checkpoint (seed{seed}/checkpoint/, kept across failures).
    """
    input:
        unpack(training_inputs),
    output:
        model="results/models/{dataset}/z{zbin}/seed{seed}/model.keras",
        history="results/models/{dataset}/z{zbin}/seed{seed}/history.csv",
        predictions="results/models/{dataset}/z{zbin}/seed{seed}/predictions.csv",
    log:
        "logs/train/{dataset}/z{zbin}/seed{seed}.log",
    benchmark:
        "benchmarks/out/train/{dataset}/z{zbin}/seed{seed}.tsv"
    group:
        "train"
    conda:
        "../../envs/training.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=per_attempt(8000),
        runtime=per_attempt(240),
    params:
        **TRAIN_OPTIONS,
        edges=TRAIN["redshift_edges"],
        seed=lambda w: run_seed(w, w.seed),
        test_seed=test_seed,
        epochs=TRAIN["epochs"],
        batch_size=TRAIN["batch_size"],
        learning_rate=TRAIN["learning_rate"],
        identity=TRAIN["split_identity"],
        fractions=TRAIN["split_fractions"],
        target_mass=TRAIN["target_mass"],
        architecture=TRAIN["architecture"],
    script:
        "../scripts/train.py"


# training.seeds_per_job = K > 1: K seeds of a bin in one job, trained at once as the vectorised ensemble
# (szmass.ensemble; the throughput path on a GPU), each seed's outputs those of rule train. One rule per group
# of seeds (a rule's outputs cannot depend on a wildcard's value), preferred to rule train.
SEED_GROUPS = [SEEDS[i : i + SEEDS_PER_JOB] for i in range(0, len(SEEDS), SEEDS_PER_JOB)] if SEEDS_PER_JOB > 1 else []
for _group in SEED_GROUPS:
    _name = f"train_seeds{_group[0]}_{_group[-1]}"

    rule:
        name:
            _name
        input:
            unpack(training_inputs),
        output:
            **{
                f"{kind}{s}": f"results/models/{{dataset}}/z{{zbin}}/seed{s}/{file}"
                for s in _group
                for kind, file in (
                    ("model", "model.keras"),
                    ("history", "history.csv"),
                    ("predictions", "predictions.csv"),
                )
            },
        log:
            f"logs/train/{{dataset}}/z{{zbin}}/seeds{_group[0]}-{_group[-1]}.log",
        benchmark:
            f"benchmarks/out/train/{{dataset}}/z{{zbin}}/seeds{_group[0]}-{_group[-1]}.tsv"
        group:
            "train"
        conda:
            "../../envs/training.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=per_attempt(8000),
            runtime=per_attempt(240 * len(_group)),
        params:
            **TRAIN_OPTIONS,
            edges=TRAIN["redshift_edges"],
            seeds=lambda w, group=tuple(_group): [run_seed(w, s) for s in group],
            run_dirs=lambda w, group=tuple(_group): [f"results/models/{w.dataset}/z{w.zbin}/seed{s}" for s in group],
            test_seed=test_seed,
            epochs=TRAIN["epochs"],
            batch_size=TRAIN["batch_size"],
            learning_rate=TRAIN["learning_rate"],
            identity=TRAIN["split_identity"],
            fractions=TRAIN["split_fractions"],
            target_mass=TRAIN["target_mass"],
            architecture=TRAIN["architecture"],
        script:
            "../scripts/train.py"

    workflow.ruleorder(_name, "train")


rule select_model:
    """The selection rule of the paper on the validation set: selection.csv and best.keras of a bin (the
    selected run, or with training.estimator: mean every run averaged)."""
    input:
        expand("results/models/{{dataset}}/z{{zbin}}/seed{seed}/predictions.csv", seed=SEEDS),
        expand("results/models/{{dataset}}/z{{zbin}}/seed{seed}/model.keras", seed=SEEDS),
    output:
        selection=report(
            "results/models/{dataset}/z{zbin}/selection.csv",
            category="Model selection",
            caption="../report/selection.rst",
        ),
        best="results/models/{dataset}/z{zbin}/best.keras",
    log:
        "logs/select_model/{dataset}/z{zbin}.log",
    conda:
        "../../envs/training.yaml"
    params:
        run_dirs=lambda w: [f"results/models/{w.dataset}/z{w.zbin}/seed{s}" for s in SEEDS],
        threshold=TRAIN["selection_threshold"],
        estimator=TRAIN["estimator"],
        n_bins=TRAIN["selection_bins"],
    script:
        "../scripts/select_model.py"


rule model_bins:
    """What `szmass predict` reads next to a data set's selected models besides them: the redshift-bin edges,
    and the test set's (prediction, truth) pairs with the KDE settings of the posteriors (posterior.json)."""
    input:
        tests="results/tables/test_predictions_{dataset}.csv",
    output:
        edges="results/models/{dataset}/redshift_bins.json",
        posterior="results/models/{dataset}/posterior.json",
    log:
        "logs/model_bins/{dataset}.log",
    conda:
        "../../envs/products.yaml"
    params:
        edges=TRAIN["redshift_edges"],
        target_mass=TRAIN["target_mass"],
        bw_factor=lambda w: PRODUCTS["kde_bandwidth"],
        min_test_maps=lambda w: PRODUCTS["min_test_maps"],
    script:
        "../scripts/model_bins.py"


rule pass_counts_figure:
    """Supplementary Figure 4: runs passing the selection versus the threshold, per redshift bin."""
    input:
        expand("results/models/{{dataset}}/z{zbin}/selection.csv", zbin=ZBINS),
    output:
        report("results/figures/supp_fig4_{dataset}.png", category="Model selection", caption="../report/supp_fig4.rst"),
    log:
        "logs/pass_counts_figure/{dataset}.log",
    conda:
        "../../envs/products.yaml"
    params:
        edges=TRAIN["redshift_edges"],
        threshold=TRAIN["selection_threshold"],
    script:
        "../scripts/pass_counts_figure.py"
