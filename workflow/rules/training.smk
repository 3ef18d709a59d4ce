# Stages 6-7: the paper's CNN trained per data set and redshift bin, N seeded runs each (GPU-tagged;
# they run on the CPU where there is no GPU), then the selection rule picks one model per bin.

TRAIN = config["training"]
ZBINS = list(range(1, len(TRAIN["redshift_edges"])))
SEEDS = list(range(TRAIN["seeds"]))
DATASETS = TRAIN["datasets"]


def training_inputs(w):
    inputs = {"maps": f"results/maps/{w.dataset}.zarr"}
    if w.dataset == "planck" and TRAIN["apply_mass_cut"]:
        inputs["cuts"] = "results/tables/mass_cuts.csv"
    return inputs


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
    params:
        edges=TRAIN["redshift_edges"],
        seed=lambda w: derive_seed(config["seed"], "run", w.dataset, w.zbin, w.seed),
        test_seed=lambda w: derive_seed(config["seed"], "test", w.dataset, w.zbin),
        epochs=TRAIN["epochs"],
        batch_size=TRAIN["batch_size"],
        learning_rate=TRAIN["learning_rate"],
        identity=TRAIN["split_identity"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=per_attempt(8000),
        runtime=per_attempt(240),
    group:
        "train"
    log:
        "logs/train/{dataset}/z{zbin}/seed{seed}.log",
    benchmark:
        "benchmarks/out/train/{dataset}/z{zbin}/seed{seed}.tsv"
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/train.py"


rule select_model:
    """The selection rule of the paper on the validation set: selection.csv and best.keras of a bin."""
    input:
        expand("results/models/{{dataset}}/z{{zbin}}/seed{seed}/predictions.csv", seed=SEEDS),
        expand("results/models/{{dataset}}/z{{zbin}}/seed{seed}/model.keras", seed=SEEDS),
    output:
        selection=report("results/models/{dataset}/z{zbin}/selection.csv", category="Model selection",
                         caption="../report/selection.rst"),
        best="results/models/{dataset}/z{zbin}/best.keras",
    params:
        run_dirs=lambda w: [f"results/models/{w.dataset}/z{w.zbin}/seed{s}" for s in SEEDS],
        threshold=TRAIN["selection_threshold"],
        n_bins=TRAIN["selection_bins"],
    log:
        "logs/select_model/{dataset}/z{zbin}.log",
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/select_model.py"


rule model_bins:
    """The redshift-bin edges of a data set's selected models (read by `szmass predict`)."""
    output:
        "results/models/{dataset}/redshift_bins.json",
    params:
        edges=TRAIN["redshift_edges"],
    log:
        "logs/model_bins/{dataset}.log",
    run:
        from szmass.predict import write_bin_edges
        from szmass.provenance import provenance_record, stamp_outputs

        write_bin_edges(os.path.dirname(output[0]), params.edges)
        stamp_outputs(output, provenance_record(config, rule=rule))


rule pass_counts_figure:
    """Supplementary Figure 4: runs passing the selection versus the threshold, per redshift bin."""
    input:
        expand("results/models/{{dataset}}/z{zbin}/selection.csv", zbin=ZBINS),
    output:
        report("results/figures/supp_fig4_{dataset}.png", category="Model selection",
               caption="../report/supp_fig4.rst"),
    params:
        edges=TRAIN["redshift_edges"],
        threshold=TRAIN["selection_threshold"],
    log:
        "logs/pass_counts_figure/{dataset}.log",
    conda:
        "../../envs/products.yaml"
    script:
        "../scripts/pass_counts_figure.py"
