# Stage 8: the scientific products (docs/architecture.md): predictions of the selected and ensemble models, bias
# tables, the sky's masses and the catalogue with posteriors, the paper's figures, saliency. Every table
# lands in results/tables/, every figure in results/figures/, all of them in `snakemake --report`.

PRODUCTS = config["products"]
# the sky is measured with the Planck-mock models (the paper's choice), or the only data set trained
SKY_DATASET = "planck" if "planck" in DATASETS else DATASETS[0]
SKY_MODELS = [f"results/models/{SKY_DATASET}/z{b}/best.keras" for b in ZBINS]
PRODUCT_FIGURES = [
    "figure1",
    "figure2",
    "figure3",
    "supp_fig1_mass_redshift",
    "supp_fig2_example_maps",
    "posterior_examples",
    "posterior_pit",
    "posterior_pit_recalibrated",
    "saliency_examples",
    "saliency_profile",
    *(f"{kind}_{dataset}" for kind in ("learning_curves", "predicted_vs_true") for dataset in DATASETS),
]
PRODUCT_TABLES = [
    "supp_table2_bias",
    "log_residual_moments",
    "ensemble_vs_selected",
    "posterior_coverage",
    "saliency_profile",
    "figure3_ym_experiment",
]


rule test_predictions:
    """Test-set predictions of one data set: each bin's estimate (the selected model, or the mean of the runs with
    training.estimator: mean) and the ensemble of passing runs."""
    input:
        selections=lambda w: list(selections(w.dataset).values()),
        runs=lambda w: [f"results/models/{w.dataset}/z{b}/seed{s}/predictions.csv" for b in ZBINS for s in SEEDS],
    output:
        selected="results/tables/test_predictions_{dataset}.csv",
        ensemble="results/tables/ensemble_predictions_{dataset}.csv",
    log:
        "logs/test_predictions/{dataset}.log",
    conda:
        "../../envs/products.yaml"
    params:
        selections=lambda w: selections(w.dataset),
    script:
        "../scripts/test_predictions.py"


rule training_figures:
    """Learning curves (training and validation loss of every run) and the selected models' predicted-against-
    true test masses per redshift bin, of one data set."""
    input:
        selections=lambda w: list(selections(w.dataset).values()),
        histories=lambda w: [f"results/models/{w.dataset}/z{b}/seed{s}/history.csv" for b in ZBINS for s in SEEDS],
        tests="results/tables/test_predictions_{dataset}.csv",
    output:
        learning_curves=report(
            "results/figures/learning_curves_{dataset}.png",
            category="Training",
            caption="../report/learning_curves.rst",
        ),
        predicted_vs_true=report(
            "results/figures/predicted_vs_true_{dataset}.png",
            category="Training",
            caption="../report/predicted_vs_true.rst",
        ),
    log:
        "logs/training_figures/{dataset}.log",
    conda:
        "../../envs/products.yaml"
    params:
        selections=lambda w: selections(w.dataset),
        edges=TRAIN["redshift_edges"],
        target_mass=TRAIN["target_mass"],
    script:
        "../scripts/training_figures.py"


rule sky_predictions:
    """CNN masses of every sky cutout with the model of its redshift bin (best.keras, training.estimator), and
    their spread across the bin's ensemble of passing runs."""
    input:
        # stops an M200 run at start: every sky product compares with PSZ2's M_SZ, an M500
        psz2_mass=lambda w: require_psz2_target(config, "results/sky/predictions.csv") or [],
        sky="results/sky/cutouts.zarr",
        models=SKY_MODELS,
        edges=f"results/models/{SKY_DATASET}/redshift_bins.json",
        selections=list(selections(SKY_DATASET).values()),
        runs=[f"results/models/{SKY_DATASET}/z{b}/seed{s}/model.keras" for b in ZBINS for s in SEEDS],
    output:
        "results/sky/predictions.csv",
    log:
        "logs/sky_predictions.log",
    benchmark:
        "benchmarks/out/sky_predictions.tsv"
    conda:
        "../../envs/training.yaml"
    params:
        models_dir=lambda w, input: os.path.dirname(input.edges),
        selections=selections(SKY_DATASET),
    script:
        "../scripts/sky_predictions.py"


rule bias_tables:
    """Supplementary Table 2 (b_t of the mocks, b_P and b_t of the sky, per bin and mass range), the log
    residual moments, both with 68% bootstrap intervals over clusters, and the ensemble estimate against the
    selected model."""
    input:
        selected=expand("results/tables/test_predictions_{dataset}.csv", dataset=DATASETS),
        ensemble=expand("results/tables/ensemble_predictions_{dataset}.csv", dataset=DATASETS),
        sky="results/sky/predictions.csv",
        truth=[] if REAL_SKY else ["results/sky/truth.csv"],
        # the test maps' cluster identities (the clean and Planck-mock stores hold the same maps in the same order)
        maps="results/maps/planck.zarr",
    output:
        bias=report("results/tables/supp_table2_bias.csv", category="Tables", caption="../report/supp_table2.rst"),
        moments=report(
            "results/tables/log_residual_moments.csv", category="Tables", caption="../report/log_residual_moments.rst"
        ),
        ensemble=report(
            "results/tables/ensemble_vs_selected.csv", category="Tables", caption="../report/ensemble_vs_selected.rst"
        ),
    log:
        "logs/bias_tables.log",
    conda:
        "../../envs/products.yaml"
    params:
        datasets=DATASETS,
        sky_dataset=SKY_DATASET,
        identity=TRAIN["split_identity"],
        seed=derive_seed(config["seed"], "bias_tables"),
    script:
        "../scripts/bias_tables.py"


rule catalogue:
    """The PSZ2 mass catalogue: CNN masses with KDE posteriors of the sky data set's test maps, recalibrated
    by their held-out PITs, and the ensemble's epistemic spread."""
    input:
        sky="results/sky/predictions.csv",
        tests=f"results/tables/test_predictions_{SKY_DATASET}.csv",
        pit="results/tables/posterior_pit.csv",
    output:
        csv=report("results/catalogue/psz2_cnn_masses.csv", category="Catalogue", caption="../report/catalogue.rst"),
        fits="results/catalogue/psz2_cnn_masses.fits",
        examples=report(
            "results/figures/posterior_examples.png", category="Catalogue", caption="../report/posterior_examples.rst"
        ),
    log:
        "logs/catalogue.log",
    benchmark:
        "benchmarks/out/catalogue.tsv"
    conda:
        "../../envs/products.yaml"
    params:
        seed=derive_seed(config["seed"], "posterior_examples"),
        cosmology=config["cosmology"],
        bw_factor=PRODUCTS["kde_bandwidth"],
        min_test_maps=PRODUCTS["min_test_maps"],
    script:
        "../scripts/catalogue.py"


rule posterior_calibration:
    """Calibration of the posteriors on held-out test maps, before and after the cross-fitted PIT
    recalibration: interval coverage, the PITs and their histograms."""
    input:
        tests=f"results/tables/test_predictions_{SKY_DATASET}.csv",
        maps=f"results/maps/{SKY_DATASET}.zarr",
    output:
        table=report(
            "results/tables/posterior_coverage.csv", category="Posteriors", caption="../report/posterior_coverage.rst"
        ),
        figure=report("results/figures/posterior_pit.png", category="Posteriors", caption="../report/posterior_pit.rst"),
        recalibrated=report(
            "results/figures/posterior_pit_recalibrated.png",
            category="Posteriors",
            caption="../report/posterior_pit_recalibrated.rst",
        ),
        pit="results/tables/posterior_pit.csv",
    log:
        "logs/posterior_calibration.log",
    benchmark:
        "benchmarks/out/posterior_calibration.tsv"
    conda:
        "../../envs/products.yaml"
    params:
        bw_factor=PRODUCTS["kde_bandwidth"],
        min_test_maps=PRODUCTS["min_test_maps"],
        folds=PRODUCTS["coverage_folds"],
        identity=TRAIN["split_identity"],
        seed=derive_seed(config["seed"], "posterior_calibration"),
    script:
        "../scripts/posterior_calibration.py"


rule paper_figures:
    """Figures 1-3 of the paper: relative errors of the mocks and of the sky against M_CNN, and the Y-M
    experiment (M_SZ of the sky data set's test maps from their own Y500, slopes 1.63 and 1.79)."""
    input:
        selected=expand("results/tables/test_predictions_{dataset}.csv", dataset=DATASETS),
        sky="results/sky/predictions.csv",
        ym_tests=f"results/tables/test_predictions_{SKY_DATASET}.csv",
        ym_maps=f"results/maps/{SKY_DATASET}.zarr",
    output:
        figure1=report("results/figures/figure1.png", category="Figures", caption="../report/figure1.rst"),
        figure2=report("results/figures/figure2.png", category="Figures", caption="../report/figure2.rst"),
        figure3=report("results/figures/figure3.png", category="Figures", caption="../report/figure3.rst"),
        figure3_table=report(
            "results/tables/figure3_ym_experiment.csv", category="Figures", caption="../report/figure3_table.rst"
        ),
    log:
        "logs/paper_figures.log",
    conda:
        "../../envs/products.yaml"
    params:
        datasets=DATASETS,
        edges=TRAIN["redshift_edges"],
        cosmology=config["cosmology"],
        points=PRODUCTS["figure_points"],
        n_bins=PRODUCTS["figure_bins"],
        pixel_arcmin=config["instrument"]["pixel_arcmin"],
        seed=derive_seed(config["seed"], "figures"),
    script:
        "../scripts/paper_figures.py"


rule sample_figures:
    """Supplementary Figures 1 and 2: the mass-redshift distribution of the samples (PSZ2 at M_SZ / (1 - b),
    marginal histograms) and three example clusters, each clean, as a Planck mock and on the sky."""
    input:
        clean="results/maps/clean.zarr",
        planck="results/maps/planck.zarr",
        sky="results/sky/cutouts.zarr",
    output:
        supp_fig1=report(
            "results/figures/supp_fig1_mass_redshift.png", category="Figures", caption="../report/supp_fig1.rst"
        ),
        supp_fig2=report(
            "results/figures/supp_fig2_example_maps.png", category="Figures", caption="../report/supp_fig2.rst"
        ),
    log:
        "logs/sample_figures.log",
    conda:
        "../../envs/products.yaml"
    params:
        edges=TRAIN["redshift_edges"],
        pixel_arcmin=config["instrument"]["pixel_arcmin"],
        hydrostatic_bias=PLANCK["hydrostatic_bias"],
    script:
        "../scripts/sample_figures.py"


rule saliency:
    """Saliency |dM_CNN/d pixel| of example test maps and its radial profile in units of R500."""
    input:
        tests=f"results/tables/test_predictions_{SKY_DATASET}.csv",
        maps=f"results/maps/{SKY_DATASET}.zarr",
        models=SKY_MODELS,
    output:
        examples=report(
            "results/figures/saliency_examples.png", category="Saliency", caption="../report/saliency_examples.rst"
        ),
        profile=report(
            "results/figures/saliency_profile.png", category="Saliency", caption="../report/saliency_profile.rst"
        ),
        table="results/tables/saliency_profile.csv",
    log:
        "logs/saliency.log",
    benchmark:
        "benchmarks/out/saliency.tsv"
    conda:
        "../../envs/training.yaml"
    params:
        cosmology=config["cosmology"],
        pixel_arcmin=config["instrument"]["pixel_arcmin"],
        max_maps=PRODUCTS["saliency_maps"],
        seed=derive_seed(config["seed"], "saliency"),
    script:
        "../scripts/saliency.py"
