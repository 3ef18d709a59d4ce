# Stage 8, the supplementary figures as the paper draws them (szmass.supplementary for the data,
# szmass.supp_plots for the figures): Supplementary Figures 3 and 5-10, in results/figures/ and the report.
# (Supplementary Figures 1-2 come from rule sample_figures, 4 from the selection, 11 and Table 3 from the studies.)

SUPP_FIGURES = [
    "supp_fig3_architecture",
    "supp_fig5_run_errors",
    "supp_fig6_bias_distributions",
    "supp_fig7_kde",
    "supp_fig8_log_ratio",
    "supp_fig9_saliency_examples",
    "supp_fig10_saliency_radial",
]
SUPP_TABLES = ["supp_fig10_saliency_radial"]


rule supp_architecture:
    """Supplementary Figure 3: the network's layers, output shapes and parameters."""
    output:
        report(
            "results/figures/supp_fig3_architecture.png",
            category="Supplementary figures",
            caption="../report/supp_fig3.rst",
        ),
    log:
        "logs/supp_architecture.log",
    conda:
        "../../envs/products.yaml"
    params:
        map_npix=config["instrument"]["map_npix"],
        architecture=config["training"]["architecture"],
    script:
        "../scripts/supp_architecture.py"


rule supp_distributions:
    """Supplementary Figures 5 (right), 6, 7 and 8: the runs' errors, b_t and b_P per redshift bin, the KDE
    of the test set, log10 M_CNN / M_true per bin with its skewness and kurtosis."""
    input:
        selections=list(selections(SKY_DATASET).values()),
        runs=[f"results/models/{SKY_DATASET}/z{b}/seed{s}/predictions.csv" for b in ZBINS for s in SEEDS],
        tests=expand("results/tables/test_predictions_{dataset}.csv", dataset=DATASETS),
        sky="results/sky/predictions.csv",
    output:
        fig5=report(
            "results/figures/supp_fig5_run_errors.png",
            category="Supplementary figures",
            caption="../report/supp_fig5.rst",
        ),
        fig6=report(
            "results/figures/supp_fig6_bias_distributions.png",
            category="Supplementary figures",
            caption="../report/supp_fig6.rst",
        ),
        fig7=report(
            "results/figures/supp_fig7_kde.png", category="Supplementary figures", caption="../report/supp_fig7.rst"
        ),
        fig8=report(
            "results/figures/supp_fig8_log_ratio.png",
            category="Supplementary figures",
            caption="../report/supp_fig8.rst",
        ),
    log:
        "logs/supp_distributions.log",
    conda:
        "../../envs/products.yaml"
    params:
        selections=selections(SKY_DATASET),
        datasets=DATASETS,
        sky_dataset=SKY_DATASET,
        edges=TRAIN["redshift_edges"],
        bw_factor=PRODUCTS["kde_bandwidth"],
    script:
        "../scripts/supp_distributions.py"


rule supp_saliency:
    """Supplementary Figures 9 and 10: saliency examples (good, bad, a merger) and the radial distribution of
    unit-sum saliency maps in r / R500 on the test maps, the sky and the Golden sample."""
    input:
        tests=f"results/tables/test_predictions_{SKY_DATASET}.csv",
        maps=f"results/maps/{SKY_DATASET}.zarr",
        clean="results/maps/clean.zarr",
        sky_maps="results/sky/cutouts.zarr",
        sky="results/sky/predictions.csv",
        models=SKY_MODELS,
    output:
        fig9=report(
            "results/figures/supp_fig9_saliency_examples.png",
            category="Supplementary figures",
            caption="../report/supp_fig9.rst",
        ),
        fig10=report(
            "results/figures/supp_fig10_saliency_radial.png",
            category="Supplementary figures",
            caption="../report/supp_fig10.rst",
        ),
        table=report(
            "results/tables/supp_fig10_saliency_radial.csv",
            category="Supplementary figures",
            caption="../report/supp_fig10.rst",
        ),
    log:
        "logs/supp_saliency.log",
    benchmark:
        "benchmarks/out/supp_saliency.tsv"
    conda:
        "../../envs/training.yaml"
    params:
        dataset=SKY_DATASET,
        identity=TRAIN["split_identity"],
        cosmology=config["cosmology"],
        pixel_arcmin=config["instrument"]["pixel_arcmin"],
        max_maps=PRODUCTS["saliency_maps"],
        seed=derive_seed(config["seed"], "supp_saliency"),
    script:
        "../scripts/supp_saliency.py"
