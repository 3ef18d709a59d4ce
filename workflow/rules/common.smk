# Config validation and the path helpers every stage uses.
import os

from snakemake.utils import min_version, validate

from szmass import layout, splits
from szmass.config_checks import check_schema, check_values, require_psz2_target
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
SYNTH_FORMAT = next((c["format"] for c in SIMS.values() if c["source"] == "synthetic"), None)  # one for all (checked)


SAVE_HIRES = config["ymaps"]["save_hires"]


def snapshot_file(sim, region, snapshot):
    return layout.snapshot_path(sim, SIMS[sim], int(region), int(snapshot))


def ahf_file(sim, region, snapshot):
    return layout.ahf_path(sim, SIMS[sim], int(region), int(snapshot))


def sim_model(sim):
    """Gas model name recorded in every output of a simulation."""
    c = SIMS[sim]
    return c.get("model") or c.get("synthetic", {}).get("gas_model", "gadget_x")


# Rules hand a script a config section as a param holding the section itself, e.g.
# cosmology=config["cosmology"] (validated, with the schema's defaults filled in); the script passes it to
# the library (make_cosmology, MapConfig.from_sections, HaloSelection.from_mapping, ...). Scripts do not read
# snakemake.config.


def per_attempt(base):
    """A resource (mem_mb, runtime) of ``base`` times the attempt: 1x, then 2x, 3x when a job killed for time or
    memory is resubmitted (profiles/slurm: retries). ``base``: a number or a function of the wildcards."""
    return lambda wildcards, attempt: (base(wildcards) if callable(base) else base) * attempt


wildcard_constraints:
    sim="[A-Za-z0-9_]+",
    region="[0-9]+",
    snapshot="[0-9]+",


# -- the rules' functions, by stage (Snakemake's convention: functions apart from the rules; they read the
# stage files' globals, e.g. TRAIN and CHUNKS, when called) --


# stage 1, simulations (sims.smk)


def region_chunks(sim):
    """(region, chunk) of every halo-selection and projection job of one simulation."""
    return [(r, c) for r in layout.regions(SIMS[sim]) for c in range(len(CHUNKS[sim]))]


def chunk_snapshots(w):
    """Snapshot numbers of a job's chunk (wildcards sim, chunk), in snapshot order."""
    chunks = CHUNKS[w.sim]
    c = int(w.chunk)
    if c >= len(chunks):
        raise ValueError(f"{w.sim}: chunk {c} requested, but its snapshots make {len(chunks)} chunk(s)")
    return chunks[c]


def existing_snapshot(path):
    """A snapshot path as a Snakemake input: multi-file snapshots are given by their first file."""
    return path if os.path.exists(path) or not os.path.exists(f"{path}.0") else f"{path}.0"


def chunk_inputs(w):
    """The AHF catalogues and snapshot files of a job's chunk (the first file of a multi-file snapshot)."""
    snaps = chunk_snapshots(w)
    return {
        "ahf": [ahf_file(w.sim, w.region, s) for s in snaps],
        "snapshots": [existing_snapshot(snapshot_file(w.sim, w.region, s)) for s in snaps],
    }


def chunk_snapshot_paths(w):
    """[[snapshot, path], ...] of a job's chunk, in snapshot order (the base name of a multi-file snapshot)."""
    return [[s, snapshot_file(w.sim, w.region, s)] for s in chunk_snapshots(w)]


# stages 4-5, Planck mocks and the sky (planck.smk)


def synthetic_sky_inputs(w):
    """The clean maps, PSZ2, and the maps (and mass cuts) the sky's models split by cluster: only clusters of
    their fixed test sets are injected."""
    from types import SimpleNamespace

    trained = training_inputs(SimpleNamespace(dataset=SKY_DATASET))
    return {"clean": "results/maps/clean.zarr", "psz2": PSZ2, "trained": trained.pop("maps"), **trained}


# stages 6-7, training and selection (training.smk)


def training_inputs(w):
    """The map store; with training.apply_mass_cut, the Planck S/N mass cuts, applied to EVERY data set so
    that the clean and the Planck-mock networks learn and are tested on the same clusters (as in the paper)."""
    inputs = {"maps": f"results/maps/{w.dataset}.zarr"}
    if TRAIN["apply_mass_cut"]:
        inputs["cuts"] = "results/tables/mass_cuts.csv"
    return inputs


def run_seed(w, seed):
    """The seed of run ``seed`` of bin ``w.zbin`` (szmass.splits.run_seed)."""
    return splits.run_seed(config["seed"], int(w.zbin), seed)


def test_seed(w):
    """The bin's test-set seed (szmass.splits.bin_test_seed)."""
    return splits.bin_test_seed(config["seed"], int(w.zbin))


def bin_test_seeds(w):
    """The test-set seeds of all redshift bins, in bin order (the synthetic sky injects only their test clusters)."""
    return [splits.bin_test_seed(config["seed"], b) for b in ZBINS]


# stage 8, products (products.smk)


def selections(dataset):
    return {b: f"results/models/{dataset}/z{b}/selection.csv" for b in ZBINS}


# the studies (studies.smk)


def study_params(study, edges, zbin, models, scope, seed_keys, test_seed, architecture=None, learning_rate=None):
    """Params of rule `train` for one study run (see workflow/scripts/train.py); the training section's
    split fractions, its network (training.architecture) unless ``architecture`` is given, and its learning
    rate unless ``learning_rate`` is given."""
    return dict(
        edges=edges,
        zbin=zbin,
        models=models,
        test_scope=scope,
        test_seed=test_seed,
        seed=lambda w: derive_seed(config["seed"], study, *seed_keys(w), w.seed),
        epochs=study_cfg(study)["epochs"],
        batch_size=TRAIN["batch_size"],
        learning_rate=learning_rate or TRAIN["learning_rate"],
        identity=TRAIN["split_identity"],
        fractions=TRAIN["split_fractions"],
        architecture=architecture or TRAIN["architecture"],
        **TRAIN_OPTIONS,
    )


def study_cfg(study):
    return {
        "study_zbins": ZB,
        "study_hyperparameters": HP,
        "study_cross_model": XM,
        "study_learning_rates": LR,
        "study_train_size": TS,
    }[study]


def run_files(root, seeds):
    """predictions.csv and model.keras of the runs seed0.. under ``root`` (for the selection rule)."""
    return [f"{root}/seed{s}/{f}" for f in ("predictions.csv", "model.keras") for s in range(seeds)]


def cross_model_tests():
    """The test tables of the cross-model test, one per training model; ValueError with fewer than two gas models."""
    if len(XM_MODELS) < 2:
        raise ValueError(
            f"studies.cross_model: needs maps of >= 2 gas models, the config gives {XM_MODELS}; add sims "
            "with other sims.<name>.synthetic.gas_model (or model) values, or list studies.cross_model.models"
        )
    return [f"{XM_ROOT}/{m}/tests.csv" for m in XM_MODELS]
