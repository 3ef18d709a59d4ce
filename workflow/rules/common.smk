# Config validation and the path helpers every stage uses.
import json
import os

from snakemake.utils import min_version, validate

from szmass import layout
from szmass.layout import derive_seed

min_version("9.0")

# envs/*.post-deploy.sh install szmass from this checkout into the rules' conda environments (--sdm conda).
os.environ.update(SZMASS_SOURCE=workflow.basedir)

validate(config, "../schemas/config.schema.yaml")

SIMS = config["sims"]
SYNTH_FORMATS = {c.get("format", "gadget2") for c in SIMS.values() if c["source"] == "synthetic"}
if len(SYNTH_FORMATS) > 1:
    raise ValueError(f"config: all synthetic sims must share one 'format', got {sorted(SYNTH_FORMATS)}")
SYNTH_FORMAT = SYNTH_FORMATS.pop() if SYNTH_FORMATS else "gadget2"


SAVE_HIRES = bool(config["ymaps"].get("save_hires", False))


def snapshot_file(sim, region, snapshot):
    return layout.snapshot_path(sim, SIMS[sim], int(region), int(snapshot))


def ahf_file(sim, region, snapshot):
    return layout.ahf_path(sim, SIMS[sim], int(region), int(snapshot))


def sim_model(sim):
    """Gas model name recorded in every output of a simulation."""
    c = SIMS[sim]
    return c.get("model") or c.get("synthetic", {}).get("gas_model", "gadget_x")


def as_json(obj):
    """Canonical JSON of a config section, passed as a rule param so that changing it reruns the rule."""
    return json.dumps(obj, sort_keys=True)


wildcard_constraints:
    sim="[A-Za-z0-9_]+",
    region="[0-9]+",
    snapshot="[0-9]+",
