"""Config checks run at workflow start (before any job, ``snakemake -n`` included).

Two steps, called from ``workflow/rules/common.smk``:

1. :func:`check_schema`: the JSON-schema checks (keys, types, ranges), each error printed as one line
   ``<key>: <reason>`` instead of the schema dump; missing sections are named together.
2. :func:`check_values` (after Snakemake's ``validate`` has filled in the schema's defaults): what a
   schema cannot say — ``Ob0 < Om0``, ``z_min < z_max``, redshift bin edges in strictly increasing order
   with a configured snapshot in each bin, a halo selection that can keep halos, and configured input
   files that exist, are files, lie outside the workflow's output folders and, for HEALPix maps, hold
   the needed column; training options that exclude each other, a warm-up shorter than the training.

Every problem found is reported at once, in a :class:`ConfigError` with one line per problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from astropy.io import fits

from szmass import layout
from szmass.settings import xla_determinism_problem
from szmass.study_config import STUDY_KEYS

OUTPUT_DIRS: tuple[str, ...] = ("results", "resources", "logs", "benchmarks/out", ".snakemake")
"""Folders (relative to the working directory) that the workflow writes and ``make clean`` deletes."""

_MAX_REASON = 200
"""Characters of one schema error's reason kept in the message (a long instance is cut)."""


class ConfigError(ValueError):
    """A configuration problem found at start; the message holds one line per problem, each naming its key."""


def _fail(problems: Sequence[str], source: str) -> None:
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise ConfigError(f"invalid configuration ({source}), {len(problems)} problem(s):\n{lines}")


def _key(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _renamed_hint(err: jsonschema.ValidationError) -> str:
    """For an unknown key that a section's ``x-renamed`` (old name -> new name) lists: where it went."""
    if err.validator != "additionalProperties" or not isinstance(err.schema, Mapping):
        return ""
    renamed = err.schema.get("x-renamed") or {}
    moved = [f"{old!r} is now {renamed[old]!r}" for old in err.instance if old in renamed]
    return f" (renamed: {'; '.join(moved)})" if moved else ""


def schema_problems(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """One line ``<key>: <reason>`` per JSON-schema violation of ``config``; missing keys merged per section."""
    validator = jsonschema.Draft202012Validator(schema)
    missing: dict[str, list[str]] = {}
    problems: list[str] = []
    for err in sorted(validator.iter_errors(dict(config)), key=lambda e: [str(p) for p in e.absolute_path]):
        where = _key(err.absolute_path)
        if err.validator == "required":
            keys = missing.setdefault(where, [])
            keys += [k for k in err.validator_value if k not in err.instance and k not in keys]
            continue
        reason = err.message if len(err.message) <= _MAX_REASON else err.message[: _MAX_REASON - 3] + "..."
        problems.append(f"{where}: {reason}{_renamed_hint(err)}")
    return [f"{where}: missing required key(s) {', '.join(keys)}" for where, keys in missing.items()] + problems


def check_schema(config: Mapping[str, Any], schema_path: str | os.PathLike[str]) -> None:
    """Raise :class:`ConfigError` listing every schema violation of ``config`` (see :func:`schema_problems`).

    An empty config (e.g. a ``{}`` config file) is reported as such, with the sections it lacks.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    problems = schema_problems(config, schema)
    if not config:
        problems.insert(0, "the config is empty: give a complete config file (start from a copy of config/config.yaml)")
    _fail(problems, f"checked against {Path(schema_path).name}")


def _edge_problems(key: str, edges: Sequence[float], redshifts: Sequence[float] | None) -> list[str]:
    """Bin edges out of order or duplicated, and bins (lo, hi] holding none of ``redshifts`` (None: not checked)."""
    for i in range(1, len(edges)):
        if edges[i] == edges[i - 1]:
            return [f"{key}: edge {edges[i]!r} is duplicated ({list(edges)}); edges must strictly increase"]
        if edges[i] < edges[i - 1]:
            return [f"{key}: edges out of order ({edges[i - 1]!r} before {edges[i]!r} in {list(edges)}); "
                    "edges must strictly increase"]
    if redshifts is None:
        return []
    problems = []
    for i in range(1, len(edges)):
        lo, hi = edges[i - 1], edges[i]
        if not any(lo < z <= hi for z in redshifts):
            problems.append(f"{key}: bin {i} ({lo:g}, {hi:g}] holds no configured snapshot "
                            f"(selected snapshot redshifts: {sorted(set(redshifts))})")
    return problems


def _selection_problems(config: Mapping[str, Any]) -> tuple[list[str], list[float]]:
    """Cuts of ``halo_selection`` that keep no halo; also the snapshot redshifts inside its redshift range."""
    sel = config["halo_selection"]
    z_min, z_max = sel["z_min"], sel["z_max"]
    if z_min >= z_max:
        return [f"halo_selection: z_min = {z_min!r} >= z_max = {z_max!r}; the selection keeps (z_min, z_max]"], []
    problems = []
    kept: list[float] = []
    for name, sim in config["sims"].items():
        zs = list(layout.snapshots(sim).values())
        inside = [z for z in zs if z_min < z <= z_max]
        if not inside:
            problems.append(f"halo_selection: (z_min, z_max] = ({z_min:g}, {z_max:g}] holds none of "
                            f"sims.{name}.snapshots' redshifts {sorted(zs)}: no halo would be selected")
        kept += inside
        m_max = sim.get("synthetic", {}).get("m500_max")  # the largest z = 0 M500 drawn, when configured
        if sim["source"] == "synthetic" and m_max is not None and sel["m500_min"] >= m_max:
            problems.append(f"halo_selection: m500_min = {sel['m500_min']:.3g} h^-1 Msun is not below "
                            f"sims.{name}.synthetic.m500_max = {m_max:.3g}: no halo would be selected")
    return problems, kept


def _study_problems(config: Mapping[str, Any], redshifts: Sequence[float]) -> list[str]:
    studies = config.get("studies", {})

    def enabled(study: str) -> Sequence[float] | None:
        # every bin of an enabled study needs a snapshot; a study left off runs only on request, with the
        # schema's default bins unless the config gives its own
        return redshifts if studies.get(study, {}).get("enabled") else None

    problems = []
    for i, scheme in enumerate(studies.get("zbins", {}).get("schemes", [])):
        problems += _edge_problems(f"studies.zbins.schemes[{i}]", scheme, enabled("zbins"))
    if "redshift_edges" in studies.get("cross_model", {}):
        problems += _edge_problems("studies.cross_model.redshift_edges", studies["cross_model"]["redshift_edges"],
                                   enabled("cross_model"))
    if studies.get("cross_model", {}).get("dataset") == "hires" and not config.get("ymaps", {}).get("save_hires"):
        problems.append("studies.cross_model.dataset: hires needs ymaps.save_hires: true (the high-resolution maps "
                        "are kept only then); set it, or dataset: clean")
    for study in (name for name, keys in STUDY_KEYS.items() if "redshift_range" in keys):
        z_range = studies.get(study, {}).get("redshift_range")
        if z_range is not None and not z_range[0] < z_range[1]:
            problems.append(f"studies.{study}.redshift_range: {z_range} is not (z_min, z_max) with z_min < z_max")
    return problems


def _training_problems(training: Mapping[str, Any]) -> list[str]:
    """Options of the ``training`` section that exclude each other, found before any training job runs."""
    problems = []
    xla = xla_determinism_problem(jit_compile=training["jit_compile"], deterministic=training["deterministic"])
    if xla:
        problems.append(f"training.jit_compile, training.deterministic: {xla}")
    if training["mixed_precision"] and training["seeds_per_job"] > 1:
        problems.append(f"training.mixed_precision, training.seeds_per_job: mixed_precision: true needs seeds_per_job: 1, "
                        f"got {training['seeds_per_job']} (the vectorised ensemble trains in float32); set "
                        "seeds_per_job: 1 or mixed_precision: false")
    if training["mass_cut_margin_dex"] > 0 and not training["apply_mass_cut"]:
        problems.append(f"training.mass_cut_margin_dex, training.apply_mass_cut: a margin of "
                        f"{training['mass_cut_margin_dex']!r} dex below the mass cut needs apply_mass_cut: true; set it, "
                        "or mass_cut_margin_dex: 0")  # fmt: skip
    return problems


def _warm_up_problems(config: Mapping[str, Any]) -> list[str]:
    """``training.start_from_epoch`` must leave epochs to monitor, in the main runs and in every study's."""
    start = config["training"].get("start_from_epoch", 0)
    runs = {"training.epochs": config["training"]["epochs"]}
    runs |= {f"studies.{name}.epochs": study["epochs"] for name, study in config.get("studies", {}).items()
             if isinstance(study, Mapping) and "epochs" in study}  # fmt: skip
    return [f"training.start_from_epoch, {key}: the warm-up of {start} epochs must be shorter than the {epochs} "
            f"epochs trained; lower start_from_epoch or raise {key}"
            for key, epochs in runs.items() if start >= epochs]  # fmt: skip


def output_dir_of(path: str | os.PathLike[str], workdir: str | os.PathLike[str]) -> str | None:
    """The output folder of :data:`OUTPUT_DIRS` that ``path`` is, or lies under (None if none).

    ``path`` is taken relative to ``workdir``; both its literal and its symlink-resolved location count.
    """
    root = Path(workdir).absolute()
    literal = Path(os.path.normpath(root / path))
    for d in OUTPUT_DIRS:
        out = Path(os.path.normpath(root / d))
        for p, o in ((literal, out), (Path(os.path.realpath(literal)), Path(os.path.realpath(out)))):
            if p == o or o in p.parents:
                return d
    return None


def healpix_problem(path: str | os.PathLike[str], column: int | str = 0, nside: int | None = None) -> str | None:
    """Why ``path`` is not a full-sky HEALPix map with ``column`` (and ``nside``, if given); None if it is.

    Reads the headers only (fast on a multi-GB map).
    """
    try:
        with fits.open(path, memmap=True) as hdul:
            if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
                return "not a HEALPix map: HDU 1 is not a binary table"
            header = hdul[1].header
            names = list(hdul[1].columns.names)
    except (OSError, ValueError) as err:
        return f"not a readable FITS file ({err})"
    if str(header.get("PIXTYPE", "HEALPIX")).strip().upper() != "HEALPIX":
        return f"PIXTYPE is {header['PIXTYPE']!r}, not 'HEALPIX'"
    if str(header.get("INDXSCHM", "IMPLICIT")).strip().upper() != "IMPLICIT":
        return f"INDXSCHM is {header['INDXSCHM']!r}; only full-sky IMPLICIT maps are supported"
    if isinstance(column, str) and column not in names:
        return f"no column {column!r}; its columns are {names}"
    if isinstance(column, int) and not 0 <= column < len(names):
        return f"no column {column} (it has {len(names)}: {names})"
    if nside is not None and "NSIDE" in header and int(header["NSIDE"]) != nside:
        return f"NSIDE is {header['NSIDE']}, but planck.nside is {nside}"
    return None


def template_problems(config: Mapping[str, Any]) -> list[str]:
    """Path templates of simulations of files that do not format with ``region``, ``snapshot`` and ``redshift``."""
    problems = []
    for name, sim in config["sims"].items():
        for key in ("snapshot_path", "ahf_path"):
            if sim["source"] != "files":
                continue
            try:
                str(sim[key]).format(region=1, snapshot=1, redshift=0.5)
            except (KeyError, IndexError, ValueError) as err:
                problems.append(f"sims.{name}.{key}: {sim[key]!r} is not a valid template ({type(err).__name__}: "
                                f"{err}); it may use {{region}}, {{snapshot}} and {{redshift}}")
    return problems


def configured_inputs(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, path) of every input file the config names: the Planck products and, per simulation of files,
    its first region's first snapshot and AHF catalogue (standing for the path templates)."""
    planck = config["planck"]
    keys = ("psz2_catalogue", "ymap", "noise_std_map", "noise_cl")
    found = [(f"planck.{k}", planck[k]) for k in keys if planck.get(k)]
    found += [(f"planck.masks[{i}]", m) for i, m in enumerate(planck.get("masks", []))]
    for name, sim in config["sims"].items():
        if sim["source"] == "files":
            region, snapshot = layout.regions(sim)[0], next(iter(layout.snapshots(sim)))
            found.append((f"sims.{name}.snapshot_path", layout.snapshot_path(name, sim, region, snapshot)))
            found.append((f"sims.{name}.ahf_path", layout.ahf_path(name, sim, region, snapshot)))
    return found


def input_problems(config: Mapping[str, Any], workdir: str | os.PathLike[str]) -> list[str]:
    """Configured inputs inside an output folder; Planck inputs that are missing, directories, or (maps
    and masks) not HEALPix maps with the needed column; one noise product without the other. Snapshots
    and AHF files are only checked for their place: Snakemake reports a missing one at start, naming it."""
    planck = config["planck"]
    problems = []
    if bool(planck.get("noise_std_map")) != bool(planck.get("noise_cl")):
        problems.append("planck.noise_std_map, planck.noise_cl: give both noise products or neither "
                        "(one alone would be ignored for the default noise model)")
    for key, path in configured_inputs(config):
        out = output_dir_of(path, workdir)
        if out is not None:
            problems.append(f"{key}: {path} lies in {out}/, which the workflow writes and `make clean` deletes; "
                            "keep inputs outside results/, resources/ and logs/")
            continue
        if not key.startswith("planck."):
            continue
        full = Path(workdir, path)
        if full.is_dir():
            problems.append(f"{key}: {path} is a directory, expected a file")
        elif not full.is_file():
            problems.append(f"{key}: {path} does not exist")
        elif key in ("planck.ymap", "planck.noise_std_map") or key.startswith("planck.masks"):
            column = planck["mask_column"] if key.startswith("planck.masks") else 0
            why = healpix_problem(full, column, planck["nside"] if key == "planck.ymap" else None)
            if why:
                problems.append(f"{key}: {path}: {why}")
    return problems


def check_values(config: Mapping[str, Any], workdir: str | os.PathLike[str] = ".") -> None:
    """Raise :class:`ConfigError` listing every value problem of a schema-valid config with defaults filled in.

    Checks ``cosmology.Ob0 < Om0``; one ``format`` for all synthetic sims; ``halo_selection``
    (``z_min < z_max``, a redshift range holding snapshots of every sim, ``m500_min`` below a synthetic
    sim's configured ``m500_max``); ``training.redshift_edges`` and the studies' edges (strictly increasing, a
    selected snapshot in every bin); ``training.split_fractions`` summing to 1; ``training.jit_compile`` only
    with ``deterministic: false``, ``mixed_precision`` only with ``seeds_per_job: 1`` and ``mass_cut_margin_dex``
    only with ``apply_mass_cut``; ``training.start_from_epoch``
    below the epochs of the runs and of every study; the configured input
    files (:func:`input_problems`), relative paths taken from ``workdir``.
    """
    problems = []
    cosmo = config["cosmology"]
    if cosmo["Ob0"] >= cosmo["Om0"]:
        problems.append(f"cosmology: Ob0 = {cosmo['Ob0']!r} >= Om0 = {cosmo['Om0']!r}; baryons are part of the matter")
    selection, redshifts = _selection_problems(config)
    problems += selection
    synthetic = {name: sim for name, sim in config["sims"].items() if sim["source"] == "synthetic"}
    formats = {name: sim["format"] for name, sim in synthetic.items()}
    if len(set(formats.values())) > 1:
        problems.append(f"sims.<name>.format: all synthetic sims must share one format, got {formats}")
    if redshifts:
        problems += _edge_problems("training.redshift_edges", config["training"]["redshift_edges"], redshifts)
        problems += _study_problems(config, redshifts)
    fractions = config["training"]["split_fractions"]
    if abs(sum(fractions) - 1) > 1e-9:
        problems.append(f"training.split_fractions: train, validation and test fractions must sum to 1, got {fractions} "
                        f"(sum {sum(fractions):g})")
    problems += _training_problems(config["training"])
    problems += _warm_up_problems(config)
    templates = template_problems(config)
    problems += templates or input_problems(config, workdir)  # the inputs' paths need valid templates
    _fail(problems, f"working directory {Path(workdir).absolute()}")


PSZ2_MASS = "M500"
"""The mass PSZ2's M_SZ estimates (of M500, biased low by the hydrostatic bias)."""


def require_psz2_target(config: Mapping[str, Any], product: str) -> None:
    """Raise :class:`ConfigError` unless the networks learn PSZ2's mass (``training.target_mass`` M500).

    For the products that compare the networks' masses with PSZ2's M_SZ, an M500 (the sky's masses and,
    from them, the catalogue, the bias tables and the figures of the sky): called by their rules while the
    workflow builds its jobs, so a run of M200 networks stops at start when it asks for one of them and
    makes every product of the mocks. ``product`` names the refused output.
    """
    target = config["training"]["target_mass"]
    if target != PSZ2_MASS:
        _fail([f"training.target_mass: {product} compares the networks' masses with PSZ2's M_SZ, an {PSZ2_MASS}, "
               f"but the networks learn {target}; ask only for the products of the mocks (e.g. "
               f"results/tables/test_predictions_clean.csv) or set training.target_mass: {PSZ2_MASS}"],
              "the sky and the catalogue need M500 networks")


def check_halos_selected(n_halos: int, selection: Mapping[str, Any], sim: str) -> None:
    """Raise :class:`ConfigError` naming the ``halo_selection`` cuts when they kept no halo of simulation ``sim``.

    The run-time half of the selection check (the snapshots' masses and contamination are only known once
    read): an empty halo table would otherwise surface stages later as an empty map store.
    """
    if n_halos == 0:
        cuts = (f"m500_min = {selection['m500_min']:.3g} h^-1 Msun, fmhires_min = {selection['fmhires_min']:g}, "
                f"redshift in ({selection['z_min']:g}, {selection['z_max']:g}]")
        raise ConfigError(f"halo_selection: no halo of sims.{sim} passes the cuts ({cuts}); "
                          "lower m500_min or fmhires_min, or widen (z_min, z_max]")
