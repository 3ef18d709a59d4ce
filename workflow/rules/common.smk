# Config validation and the path helpers every stage uses.
import json
import os

from snakemake.utils import min_version, validate

from szmass import layout
from szmass.config_checks import check_schema, check_values
from szmass.layout import derive_seed
from szmass.settings import use_private_numba_cache

min_version("9.0")

# envs/*.post-deploy.sh install szmass from this checkout into the rules' conda environments (--sdm conda).
os.environ.update(SZMASS_SOURCE=workflow.basedir)

# Every config error at start, one line per problem naming its key: the schema (keys, types, ranges), then,
# with the schema's defaults filled in by validate, the values (bins, cuts, input files).
check_schema(config, os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml"))
validate(config, "../schemas/config.schema.yaml")
check_values(config, os.getcwd())

# A job on a cluster node compiles numba functions into a cache of its own (a shared cache written by many
# jobs at once races); NUMBA_CACHE_DIR set by the user wins.
if workflow.remote_exec:
    use_private_numba_cache(os.environ)

SIMS = config["sims"]
SYNTH_FORMAT = next((c.get("format", "gadget2") for c in SIMS.values() if c["source"] == "synthetic"), "gadget2")


SAVE_HIRES = bool(config["ymaps"].get("save_hires", False))


def snapshot_file(sim, region, snapshot):
    return layout.snapshot_path(sim, SIMS[sim], int(region), int(snapshot))


def ahf_file(sim, region, snapshot):
    return layout.ahf_path(sim, SIMS[sim], int(region), int(snapshot))


def sim_model(sim):
    """Gas model name recorded in every output of a simulation."""
    c = SIMS[sim]
    return c.get("model") or c.get("synthetic", {}).get("gas_model", "gadget_x")


def per_attempt(base):
    """A resource (mem_mb, runtime) of ``base`` times the attempt: 1x, then 2x, 3x when a job killed for time or
    memory is resubmitted (profiles/slurm: retries). ``base``: a number or a function of the wildcards."""
    return lambda wildcards, attempt: (base(wildcards) if callable(base) else base) * attempt


def as_json(obj):
    """Canonical JSON of a config section, passed as a rule param so that changing it reruns the rule."""
    return json.dumps(obj, sort_keys=True)


wildcard_constraints:
    sim="[A-Za-z0-9_]+",
    region="[0-9]+",
    snapshot="[0-9]+",
