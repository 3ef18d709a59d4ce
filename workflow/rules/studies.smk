# Stage 8, the supplement's studies (szmass.studies): redshift binnings (Supplementary Table 1), the
# hyperparameter and learning-rate scans, the training-set-size curve, the cross-model test (Supplementary
# Table 3, Figure 11). Off unless asked for: `snakemake study_zbins`, `study_hyperparameters`,
# `study_learning_rates`, `study_train_size`, `study_cross_model` or `studies` (all of them); a study config (config/study.yaml) sets studies.<name>.enabled, which puts the
# study into STUDY_TARGETS (for rule all).
# Training reuses rule `train` (workflow/scripts/train.py) and selection rule `select_model`.

from szmass.study_config import check_schemes, study_architectures, study_settings
from szmass.zbins import check_edges

ZB = study_settings("zbins", config["studies"], TRAIN)
HP = study_settings("hyperparameters", config["studies"], TRAIN)
XM = study_settings("cross_model", config["studies"], TRAIN)
LR = study_settings("learning_rates", config["studies"], TRAIN)
TS = study_settings("train_size", config["studies"], TRAIN)

ZB_SCHEMES = {len(e) - 1: list(e) for e in check_schemes(ZB["schemes"])}
ZB_ROOT = "results/studies/zbins"
ZB_TEST_SEED = derive_seed(config["seed"], "study_zbins", "test")
HP_ARCHS = {a.name: a for a in study_architectures(HP["architectures"], HP["grid"])}
HP_ROOT = "results/studies/hyperparameters"
XM_MODELS = list(XM["models"]) or sorted({sim_model(s) for s in SIMS})
XM_EDGES = list(check_edges(XM["redshift_edges"]))
XM_ZBINS = list(range(1, len(XM_EDGES)))
XM_ROOT = "results/studies/cross_model"
XM_TEST_SEED = derive_seed(config["seed"], "study_cross_model", "test")
LR_RATES = {f"{float(r):g}": float(r) for r in LR["rates"]}
LR_ROOT = "results/studies/learning_rates"
TS_FRACTIONS = {f"{float(f):g}": float(f) for f in TS["fractions"]}
TS_ROOT = "results/studies/train_size"


wildcard_constraints:
    nbins="[0-9]+",
    arch="conv[0-9]+_dense[0-9]+_kernel[0-9]+_filters[0-9]+_dropout[0-9.]+",
    gas_model="[A-Za-z0-9_]+",
    train_model="[A-Za-z0-9_]+",
    rate="[0-9.e+-]+",
    fraction="[0-9.e+-]+",


# -- redshift binnings -------------------------------------------------------------------------------


use rule train as study_zbins_train with:
    input:
        maps=f"results/maps/{ZB['dataset']}.zarr",
    output:
        model="results/studies/zbins/bins{nbins}/z{zbin}/seed{seed}/model.keras",
        history="results/studies/zbins/bins{nbins}/z{zbin}/seed{seed}/history.csv",
        predictions="results/studies/zbins/bins{nbins}/z{zbin}/seed{seed}/predictions.csv",
    log:
        "logs/studies/zbins/bins{nbins}/z{zbin}/seed{seed}.log",
    benchmark:
        "benchmarks/out/studies/zbins/bins{nbins}/z{zbin}/seed{seed}.tsv"
    params:
        **study_params(
            "study_zbins",
            lambda w: ZB_SCHEMES[int(w.nbins)],
            lambda w: int(w.zbin),
            ZB["models"],
            "all",
            lambda w: (w.nbins, w.zbin),
            ZB_TEST_SEED,
        ),


use rule select_model as study_zbins_select with:
    input:
        lambda w: run_files(f"{ZB_ROOT}/bins{w.nbins}/z{w.zbin}", ZB["seeds"]),
    output:
        selection="results/studies/zbins/bins{nbins}/z{zbin}/selection.csv",
        best="results/studies/zbins/bins{nbins}/z{zbin}/best.keras",
    log:
        "logs/studies/zbins/bins{nbins}/z{zbin}/select.log",
    params:
        run_dirs=lambda w: [f"{ZB_ROOT}/bins{w.nbins}/z{w.zbin}/seed{s}" for s in range(ZB["seeds"])],
        threshold=TRAIN["selection_threshold"],
        estimator=TRAIN["estimator"],
        n_bins=ZB["selection_bins"],


rule study_zbins_table:
    """Supplementary Table 1: moments of log10 M_CNN / M_true on the common test clusters, per binning."""
    input:
        [f"{ZB_ROOT}/bins{n}/z{b}/selection.csv" for n in ZB_SCHEMES for b in range(1, n + 1)],
    output:
        table=report(
            "results/tables/supp_table1_zbins.csv", category="Studies", caption="../report/supp_table1_zbins.rst"
        ),
        figure=report(
            "results/figures/supp_table1_zbins.png", category="Studies", caption="../report/supp_table1_zbins.rst"
        ),
    log:
        "logs/studies/zbins_table.log",
    conda:
        "../../envs/products.yaml"
    params:
        schemes=ZB_SCHEMES,
        selections={n: {b: f"{ZB_ROOT}/bins{n}/z{b}/selection.csv" for b in range(1, n + 1)} for n in ZB_SCHEMES},
    script:
        "../scripts/study_zbins.py"


# -- hyperparameter scan -----------------------------------------------------------------------------


use rule train as study_hyperparameters_train with:
    input:
        maps=f"results/maps/{HP['dataset']}.zarr",
    output:
        model="results/studies/hyperparameters/{arch}/seed{seed}/model.keras",
        history="results/studies/hyperparameters/{arch}/seed{seed}/history.csv",
        predictions="results/studies/hyperparameters/{arch}/seed{seed}/predictions.csv",
    log:
        "logs/studies/hyperparameters/{arch}/seed{seed}.log",
    benchmark:
        "benchmarks/out/studies/hyperparameters/{arch}/seed{seed}.tsv"
    params:
        # the same seeds for every architecture: the same splits and training orders, a paired comparison
        **study_params(
            "study_hyperparameters",
            list(HP["redshift_range"]),
            1,
            HP["models"],
            "bin",
            lambda w: (),
            derive_seed(config["seed"], "study_hyperparameters", "test"),
            architecture=lambda w: HP_ARCHS[w.arch].as_dict(),
        ),


rule study_hyperparameters_table:
    """The scan's least validation loss per architecture and seed, and their box plot."""
    input:
        [f"{HP_ROOT}/{a}/seed{s}/history.csv" for a in HP_ARCHS for s in range(HP["seeds"])],
    output:
        table=report(
            "results/tables/hyperparameter_scan.csv", category="Studies", caption="../report/hyperparameter_scan.rst"
        ),
        figure=report(
            "results/figures/hyperparameter_scan.png", category="Studies", caption="../report/hyperparameter_scan.rst"
        ),
    log:
        "logs/studies/hyperparameters_table.log",
    conda:
        "../../envs/products.yaml"
    params:
        runs=[(a, s, f"{HP_ROOT}/{a}/seed{s}") for a in HP_ARCHS for s in range(HP["seeds"])],
        map_npix=config["instrument"]["map_npix"],
    script:
        "../scripts/study_hyperparameters.py"


# -- learning-rate scan -----------------------------------------------------------------------------


use rule train as study_learning_rates_train with:
    input:
        maps=f"results/maps/{LR['dataset']}.zarr",
    output:
        model="results/studies/learning_rates/lr{rate}/seed{seed}/model.keras",
        history="results/studies/learning_rates/lr{rate}/seed{seed}/history.csv",
        predictions="results/studies/learning_rates/lr{rate}/seed{seed}/predictions.csv",
    log:
        "logs/studies/learning_rates/lr{rate}/seed{seed}.log",
    benchmark:
        "benchmarks/out/studies/learning_rates/lr{rate}/seed{seed}.tsv"
    params:
        # the same seeds for every learning rate: the same splits and training orders, a paired comparison
        **study_params(
            "study_learning_rates",
            list(LR["redshift_range"]),
            1,
            LR["models"],
            "bin",
            lambda w: (),
            derive_seed(config["seed"], "study_learning_rates", "test"),
            learning_rate=lambda w: LR_RATES[w.rate],
        ),


rule study_learning_rates_table:
    """The learning-rate scan's least validation loss per learning rate and seed, and their box plot."""
    input:
        [f"{LR_ROOT}/lr{r}/seed{s}/history.csv" for r in LR_RATES for s in range(LR["seeds"])],
    output:
        table=report(
            "results/tables/learning_rate_scan.csv", category="Studies", caption="../report/learning_rate_scan.rst"
        ),
        figure=report(
            "results/figures/learning_rate_scan.png", category="Studies", caption="../report/learning_rate_scan.rst"
        ),
    log:
        "logs/studies/learning_rates_table.log",
    conda:
        "../../envs/products.yaml"
    params:
        runs=[(rate, s, f"{LR_ROOT}/lr{r}/seed{s}") for r, rate in LR_RATES.items() for s in range(LR["seeds"])],
    script:
        "../scripts/study_learning_rates.py"


# -- training-set size ------------------------------------------------------------------------------


use rule train as study_train_size_train with:
    input:
        maps=f"results/maps/{TS['dataset']}.zarr",
    output:
        model="results/studies/train_size/f{fraction}/seed{seed}/model.keras",
        history="results/studies/train_size/f{fraction}/seed{seed}/history.csv",
        predictions="results/studies/train_size/f{fraction}/seed{seed}/predictions.csv",
    log:
        "logs/studies/train_size/f{fraction}/seed{seed}.log",
    benchmark:
        "benchmarks/out/studies/train_size/f{fraction}/seed{seed}.tsv"
    params:
        # the same seeds and test set for every fraction; the run's seed also draws its training clusters
        **study_params(
            "study_train_size",
            list(TS["redshift_range"]),
            1,
            TS["models"],
            "bin",
            lambda w: (),
            derive_seed(config["seed"], "study_train_size", "test"),
        ),
        train_fraction=lambda w: TS_FRACTIONS[w.fraction],


rule study_train_size_table:
    """The training-set-size curve: the scatter of log10 M_CNN / M_true on the test maps per fraction and seed,
    against the number of training clusters (identities in the map store)."""
    input:
        runs=[f"{TS_ROOT}/f{f}/seed{s}/predictions.csv" for f in TS_FRACTIONS for s in range(TS["seeds"])],
        maps=f"results/maps/{TS['dataset']}.zarr",
    output:
        table=report(
            "results/tables/train_size_curve.csv", category="Studies", caption="../report/train_size_curve.rst"
        ),
        figure=report(
            "results/figures/train_size_curve.png", category="Studies", caption="../report/train_size_curve.rst"
        ),
    log:
        "logs/studies/train_size_table.log",
    conda:
        "../../envs/products.yaml"
    params:
        runs=[
            (fraction, s, f"{TS_ROOT}/f{f}/seed{s}")
            for f, fraction in TS_FRACTIONS.items()
            for s in range(TS["seeds"])
        ],
        identity=TRAIN["split_identity"],
    script:
        "../scripts/study_train_size.py"


# -- cross-model test --------------------------------------------------------------------------------


use rule train as study_cross_model_train with:
    input:
        maps=f"results/maps/{XM['dataset']}.zarr",
    output:
        model="results/studies/cross_model/{gas_model}/z{zbin}/seed{seed}/model.keras",
        history="results/studies/cross_model/{gas_model}/z{zbin}/seed{seed}/history.csv",
        predictions="results/studies/cross_model/{gas_model}/z{zbin}/seed{seed}/predictions.csv",
    log:
        "logs/studies/cross_model/{gas_model}/z{zbin}/seed{seed}.log",
    benchmark:
        "benchmarks/out/studies/cross_model/{gas_model}/z{zbin}/seed{seed}.tsv"
    params:
        **study_params(
            "study_cross_model",
            XM_EDGES,
            lambda w: int(w.zbin),
            lambda w: [w.gas_model],
            "all",
            lambda w: (w.gas_model, w.zbin),
            XM_TEST_SEED,
        ),


use rule select_model as study_cross_model_select with:
    input:
        lambda w: run_files(f"{XM_ROOT}/{w.gas_model}/z{w.zbin}", XM["seeds"]),
    output:
        selection="results/studies/cross_model/{gas_model}/z{zbin}/selection.csv",
        best="results/studies/cross_model/{gas_model}/z{zbin}/best.keras",
    log:
        "logs/studies/cross_model/{gas_model}/z{zbin}/select.log",
    params:
        run_dirs=lambda w: [f"{XM_ROOT}/{w.gas_model}/z{w.zbin}/seed{s}" for s in range(XM["seeds"])],
        threshold=TRAIN["selection_threshold"],
        estimator=TRAIN["estimator"],
        n_bins=XM["selection_bins"],


rule study_cross_model_predict:
    """The selected models of one gas model (per bin) on the test clusters of every model (its own included)."""
    input:
        maps=f"results/maps/{XM['dataset']}.zarr",
        models=lambda w: [f"{XM_ROOT}/{w.train_model}/z{b}/best.keras" for b in XM_ZBINS],
    output:
        "results/studies/cross_model/{train_model}/tests.csv",
    log:
        "logs/studies/cross_model/{train_model}/tests.log",
    benchmark:
        "benchmarks/out/studies/cross_model/{train_model}/tests.tsv"
    conda:
        "../../envs/training.yaml"
    threads: 2
    params:
        test_models=XM_MODELS,
        edges=XM_EDGES,
        test_seed=XM_TEST_SEED,
        identity=TRAIN["split_identity"],
        fractions=TRAIN["split_fractions"],
    script:
        "../scripts/study_cross_model_predict.py"


rule study_cross_model_table:
    """Supplementary Table 3 and Figure 11: mean b_t and its standard error per (train model, test model),
    and the distributions of b_t."""
    input:
        lambda w: cross_model_tests(),
    output:
        table=report(
            "results/tables/supp_table3_cross_model.csv",
            category="Studies",
            caption="../report/supp_table3_cross_model.rst",
        ),
        figure=report(
            "results/figures/supp_fig11_cross_model.png",
            category="Studies",
            caption="../report/supp_fig11_cross_model.rst",
        ),
    log:
        "logs/studies/cross_model_table.log",
    conda:
        "../../envs/products.yaml"
    params:
        min_log10_m500=XM["min_log10_m500"],
    script:
        "../scripts/study_cross_model.py"


# -- targets -----------------------------------------------------------------------------------------


rule study_zbins:
    """The redshift-binning study: Supplementary Table 1 and its figure."""
    input:
        rules.study_zbins_table.output,


rule study_hyperparameters:
    """The hyperparameter scan: its table and box plot."""
    input:
        rules.study_hyperparameters_table.output,


rule study_cross_model:
    """The cross-model test: Supplementary Table 3 and Figure 11."""
    input:
        rules.study_cross_model_table.output,


rule study_learning_rates:
    """The learning-rate scan: its table and box plot."""
    input:
        rules.study_learning_rates_table.output,


rule study_train_size:
    """The training-set-size curve: its table and figure."""
    input:
        rules.study_train_size_table.output,


rule studies:
    """All the studies."""
    input:
        rules.study_zbins.input,
        rules.study_hyperparameters.input,
        rules.study_learning_rates.input,
        rules.study_train_size.input,
        rules.study_cross_model.input,


STUDY_TARGETS = [
    path
    for name, cfg, target in (
        ("zbins", ZB, rules.study_zbins),
        ("hyperparameters", HP, rules.study_hyperparameters),
        ("learning_rates", LR, rules.study_learning_rates),
        ("train_size", TS, rules.study_train_size),
        ("cross_model", XM, rules.study_cross_model),
    )
    if cfg["enabled"]
    for path in target.input
]
"""The outputs of the studies the config enables (studies.<name>.enabled), for rule all."""
