#!/usr/bin/env bash
# szmass itself, installed into a rule's conda environment from this checkout (editable: the environment
# follows the checkout's code). Snakemake runs <env>.post-deploy.sh once, in the new environment, after
# creating it; the workflow sets SZMASS_SOURCE to the checkout (its Snakefile's directory). The packages
# szmass needs are the environment's own (--no-deps). Conda resolves relative paths of an environment's
# pip section against Snakemake's copy of the file under .snakemake/conda, not against envs/, hence this.
set -euo pipefail
if [ ! -f "${SZMASS_SOURCE:-}/pyproject.toml" ]; then
    echo "szmass post-deploy: SZMASS_SOURCE='${SZMASS_SOURCE:-}' is not the szmass checkout (no pyproject.toml)" >&2
    exit 1
fi
python -m pip install --no-deps --editable "$SZMASS_SOURCE"
