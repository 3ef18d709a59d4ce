# szmass: CNN masses of galaxy clusters from Compton-y maps (de Andres et al. 2022).
# The stages live in workflow/rules/*.smk; all logic lives in the szmass library (src/szmass).
import os

# The demo config unless a config file is given: `--configfile` replaces it (it is not merged into it),
# `--config key=value` alone applies on top of it.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/sims.smk"
include: "workflow/rules/ymaps.smk"
include: "workflow/rules/planck.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/products.smk"
include: "workflow/rules/supplementary.smk"
include: "workflow/rules/studies.smk"


rule all:
    input:
        halo_tables=expand("results/halos/{sim}.csv", sim=SIMS),
        clean_maps="results/maps/clean.zarr",
        planck_maps="results/maps/planck.zarr",
        mass_cuts="results/tables/mass_cuts.csv",
        sky="results/sky/cutouts.zarr",
        selected=expand("results/models/{dataset}/z{zbin}/best.keras", dataset=DATASETS, zbin=ZBINS),
        model_bins=expand("results/models/{dataset}/redshift_bins.json", dataset=DATASETS),
        supp_fig4=expand("results/figures/supp_fig4_{dataset}.png", dataset=DATASETS),
        figures=expand("results/figures/{name}.png", name=PRODUCT_FIGURES),
        tables=expand("results/tables/{name}.csv", name=PRODUCT_TABLES),
        supplementary=expand("results/figures/{name}.png", name=SUPP_FIGURES),
        supplementary_tables=expand("results/tables/{name}.csv", name=SUPP_TABLES),
        catalogue=multiext("results/catalogue/psz2_cnn_masses", ".csv", ".fits"),
        studies=STUDY_TARGETS,  # the studies a config enables (none by default)
