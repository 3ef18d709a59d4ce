"""Config errors caught at start (szmass.config_checks): each names its key and the reason, and no input changes."""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

import healpy as hp
import numpy as np
import pytest
import yaml
from astropy.io import fits
from snakemake.utils import validate
from workflow_utils import REPO, snakemake

from szmass.config_checks import ConfigError, check_schema, check_values, healpix_problem, output_dir_of
from szmass.data import PSZ2_CATALOGUE
from szmass.healpix import write_healpix_map

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CI = yaml.safe_load((REPO / "config" / "ci.yaml").read_text())


def ci(**sections: dict) -> dict:
    """config/ci.yaml with some sections updated key by key."""
    cfg = copy.deepcopy(CI)
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def problems(cfg: dict, workdir: Path) -> str:
    """The ConfigError message of the workflow's checks on ``cfg`` (schema, defaults, values)."""
    with pytest.raises(ConfigError) as err:
        check_schema(cfg, SCHEMA)
        validate(cfg, str(SCHEMA))
        check_values(cfg, workdir)
    return str(err.value)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shipped_configs_pass(tmp_path):
    for name in ("config.yaml", "ci.yaml", "study.yaml", "scale.yaml", "validation.yaml", "cross_model.yaml"):
        cfg = yaml.safe_load((REPO / "config" / name).read_text())
        check_schema(cfg, SCHEMA)
        validate(cfg, str(SCHEMA))
        check_values(cfg, tmp_path)


def test_empty_config_names_every_missing_section(tmp_path):
    msg = problems({}, tmp_path)
    assert "the config is empty" in msg
    assert "(top level): missing required key(s) seed, cosmology, sims, halo_selection, ymaps, instrument, planck, " \
           "training" in msg


def test_partial_config_names_what_is_missing(tmp_path):
    cfg = ci()
    del cfg["training"], cfg["cosmology"]["Om0"]
    msg = problems(cfg, tmp_path)
    assert "(top level): missing required key(s) training" in msg
    assert "cosmology: missing required key(s) Om0" in msg
    assert len(msg.splitlines()) == 3  # a header and one line per problem, not the schema


def test_a_renamed_key_names_its_new_name(tmp_path):
    """The two meanings of the old `npix` now have their own names; the old key says where it went."""
    cfg = copy.deepcopy(CI)
    cfg["ymaps"]["npix"] = cfg["ymaps"].pop("hires_npix")
    cfg["instrument"]["npix"] = cfg["instrument"].pop("map_npix")
    msg = problems(cfg, tmp_path)
    assert "ymaps: Additional properties are not allowed ('npix' was unexpected) (renamed: 'npix' is now " \
           "'hires_npix')" in msg
    assert "instrument: Additional properties are not allowed ('npix' was unexpected) (renamed: 'npix' is now " \
           "'map_npix')" in msg
    assert len(msg.splitlines()) == 3


def test_schema_errors_are_one_line_each(tmp_path):
    cfg = ci(ymaps={"hires_npix": "big"})
    cfg["halo_selecton"] = cfg.pop("halo_selection")
    msg = problems(cfg, tmp_path)
    assert "ymaps.hires_npix: 'big' is not of type 'integer'" in msg
    assert "(top level): Additional properties are not allowed ('halo_selecton' was unexpected)" in msg
    assert "(top level): missing required key(s) halo_selection" in msg
    assert len(msg.splitlines()) == 4 and len(msg) < 600


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"cosmology": {"Ob0": 0.31}}, "cosmology: Ob0 = 0.31 >= Om0 = 0.307115"),
        ({"halo_selection": {"z_min": 0.5, "z_max": 0.4}}, "halo_selection: z_min = 0.5 >= z_max = 0.4"),
        ({"halo_selection": {"z_min": 0.5, "z_max": 0.5}}, "halo_selection: z_min = 0.5 >= z_max = 0.5"),
        ({"halo_selection": {"z_min": 0.6, "z_max": 1.0}},
         "halo_selection: (z_min, z_max] = (0.6, 1] holds none of sims.synth.snapshots' redshifts"),
        ({"halo_selection": {"m500_min": 3e15},
          "sims": {"synth": {**CI["sims"]["synth"], "synthetic": {"m500_max": 2e15}}}},
         "halo_selection: m500_min = 3e+15 h^-1 Msun is not below sims.synth.synthetic.m500_max = 2e+15"),
        ({"training": {"redshift_edges": [0.0, 0.2, 0.1, 1.0]}},
         "training.redshift_edges: edges out of order (0.2 before 0.1 in [0.0, 0.2, 0.1, 1.0])"),
        ({"training": {"redshift_edges": [0.0, 0.1, 0.1, 1.0]}},
         "training.redshift_edges: edge 0.1 is duplicated ([0.0, 0.1, 0.1, 1.0])"),
        ({"training": {"redshift_edges": [0.0, 0.1, 0.15, 0.2, 1.0]}},
         "training.redshift_edges: bin 2 (0.1, 0.15] holds no configured snapshot"),
        ({"halo_selection": {"z_max": 0.3}},  # the bin (0.4, 1] keeps no snapshot once the selection stops at 0.3
         "training.redshift_edges: bin 4 (0.4, 1] holds no configured snapshot"),
        ({"training": {"split_fractions": [0.7, 0.2, 0.2]}},
         "training.split_fractions: train, validation and test fractions must sum to 1, got [0.7, 0.2, 0.2] (sum 1.1)"),
        ({"studies": {"zbins": {"schemes": [[0.0, 1.0], [0.0, 0.5, 0.3, 1.0]]}}},
         "studies.zbins.schemes[1]: edges out of order"),
        ({"studies": {"hyperparameters": {"redshift_range": [0.4, 0.2]}}},
         "studies.hyperparameters.redshift_range: [0.4, 0.2] is not (z_min, z_max) with z_min < z_max"),
        ({"studies": {"train_size": {"redshift_range": [0.4, 0.2]}}},
         "studies.train_size.redshift_range: [0.4, 0.2] is not (z_min, z_max) with z_min < z_max"),
        ({"planck": {"noise_std_map": "std.fits", "noise_cl": "cl.txt"}},
         "planck.noise_std_map: std.fits does not exist"),
        ({"studies": {"cross_model": {"dataset": "hires"}}},
         "studies.cross_model.dataset: hires needs ymaps.save_hires: true (the high-resolution maps are kept only "
         "then); set it, or dataset: clean"),
    ],
)
def test_value_errors_name_the_key(tmp_path, sections, expected):
    assert expected in problems(ci(**sections), tmp_path)


def test_every_problem_is_reported_at_once(tmp_path):
    msg = problems(ci(cosmology={"Ob0": 0.5}, training={"redshift_edges": [0.0, 0.3, 0.2, 1.0]}), tmp_path)
    assert "2 problem(s)" in msg and "cosmology: Ob0" in msg and "training.redshift_edges" in msg


def test_training_options_that_exclude_each_other_stop_the_start(tmp_path):
    """mixed_precision with seeds_per_job > 1 (the vectorised ensemble trains in float32) and jit_compile with
    deterministic (the default) are refused at start, naming both keys and what is needed; each option alone,
    and jit_compile with deterministic: false, pass."""
    msg = problems(ci(training={"mixed_precision": True, "seeds_per_job": 2}), tmp_path)
    assert "1 problem(s)" in msg
    assert "training.mixed_precision, training.seeds_per_job: mixed_precision: true needs seeds_per_job: 1, got 2 " \
           "(the vectorised ensemble trains in float32); set seeds_per_job: 1 or mixed_precision: false" in msg
    msg = problems(ci(training={"jit_compile": True}), tmp_path)
    assert "1 problem(s)" in msg
    assert "training.jit_compile, training.deterministic: jit_compile: true needs deterministic: false" in msg
    for fine in ({"mixed_precision": True}, {"seeds_per_job": 2}, {"jit_compile": True, "deterministic": False}):
        cfg = ci(training=fine)
        check_schema(cfg, SCHEMA)
        validate(cfg, str(SCHEMA))
        check_values(cfg, tmp_path)


def test_a_warm_up_as_long_as_the_training_stops_the_start(tmp_path):
    """training.start_from_epoch at or above the epochs of the main runs or of a study's is refused at start, naming
    both keys; a shorter warm-up passes."""
    msg = problems(ci(training={"start_from_epoch": 2}), tmp_path)  # ci.yaml trains 2 epochs
    assert "1 problem(s)" in msg
    assert "training.start_from_epoch, training.epochs: the warm-up of 2 epochs must be shorter than the 2 epochs " \
           "trained; lower start_from_epoch or raise training.epochs" in msg
    msg = problems(ci(training={"start_from_epoch": 3, "epochs": 10}, studies={"learning_rates": {"epochs": 3}}),
                   tmp_path)  # fmt: skip
    assert "1 problem(s)" in msg and "training.start_from_epoch, studies.learning_rates.epochs: the warm-up of 3" in msg
    cfg = ci(training={"start_from_epoch": 1})
    check_schema(cfg, SCHEMA)
    validate(cfg, str(SCHEMA))
    check_values(cfg, tmp_path)


def test_a_margin_below_the_mass_cut_needs_the_cut(tmp_path):
    """training.mass_cut_margin_dex without apply_mass_cut is refused at start, naming both keys; a negative
    margin is a schema error; with the cut it passes."""
    msg = problems(ci(training={"mass_cut_margin_dex": 0.2, "apply_mass_cut": False}), tmp_path)
    assert "1 problem(s)" in msg and "training.mass_cut_margin_dex, training.apply_mass_cut: a margin of 0.2 dex " \
        "below the mass cut needs apply_mass_cut: true; set it, or mass_cut_margin_dex: 0" in msg
    with pytest.raises(ConfigError, match=r"training.mass_cut_margin_dex: -0.1 is less than the minimum of 0"):
        check_schema(ci(training={"mass_cut_margin_dex": -0.1}), SCHEMA)
    cfg = ci(training={"mass_cut_margin_dex": 0.2, "apply_mass_cut": True})
    check_schema(cfg, SCHEMA)
    validate(cfg, str(SCHEMA))
    check_values(cfg, tmp_path)


def test_synthetic_sims_share_one_format(tmp_path):
    cfg = ci()
    cfg["sims"]["other"] = {**copy.deepcopy(cfg["sims"]["synth"]), "format": "gadget2"}
    assert "sims.<name>.format: all synthetic sims must share one format, got {'synth': 'hdf5', 'other': " \
           "'gadget2'}" in problems(cfg, tmp_path)


@pytest.mark.parametrize("place", ["resources/planck", "results", "logs", "resources"])
def test_inputs_inside_output_folders_are_refused(tmp_path, place):
    """A catalogue where a rule writes (e.g. the download's resources/planck/) would be deleted by -F or make clean."""
    path = tmp_path / place / PSZ2_CATALOGUE.name
    path.parent.mkdir(parents=True)
    path.write_bytes(PSZ2_CATALOGUE.read_bytes())
    before = sha256(path)
    for configured in (f"{place}/{path.name}", str(path), f"./{place}/../{place}/{path.name}"):
        msg = problems(ci(planck={"psz2_catalogue": configured}), tmp_path)
        assert f"planck.psz2_catalogue: {configured} lies in {place.split('/')[0]}/" in msg
    assert sha256(path) == before


def test_symlinked_output_folder_is_an_output_folder(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "results").symlink_to(tmp_path / "elsewhere")
    assert output_dir_of(tmp_path / "elsewhere" / "psz2.fits", tmp_path) == "results"
    assert output_dir_of("results_backup/psz2.fits", tmp_path) is None
    assert output_dir_of("data/results/psz2.fits", tmp_path) is None


def test_file_sims_outside_output_folders(tmp_path):
    cfg = ci()
    cfg["sims"]["synth"] = {"source": "files", "regions": 2, "snapshots": {126: 0.045, 121: 0.168, 117: 0.278,
                                                                            110: 0.499},
                            "snapshot_path": "resources/sims/{region}/snap_{snapshot:03d}.hdf5",
                            "ahf_path": "/data/ahf/{region}/{snapshot}.AHF_halos"}
    msg = problems(cfg, tmp_path)
    assert "sims.synth.snapshot_path: resources/sims/1/snap_110.hdf5 lies in resources/" in msg
    assert "ahf_path" not in msg


def test_path_templates_must_format(tmp_path):
    cfg = ci()
    cfg["sims"]["synth"] = {"source": "files", "regions": 2, "snapshots": {126: 0.045, 121: 0.168, 117: 0.278,
                                                                            110: 0.499},
                            "snapshot_path": "sims/{regoin:04d}/snap_{snapshot:03d}",
                            "ahf_path": "ahf/{region}/{snapshot:.3f}/{redshift:d}.AHF_halos"}
    msg = problems(cfg, tmp_path)
    assert ("sims.synth.snapshot_path: 'sims/{regoin:04d}/snap_{snapshot:03d}' is not a valid template "
            "(KeyError: 'regoin'); it may use {region}, {snapshot} and {redshift}") in msg
    assert "sims.synth.ahf_path: 'ahf/{region}/{snapshot:.3f}/{redshift:d}.AHF_halos' is not a valid template " \
           "(ValueError: Unknown format code 'd' for object of type 'float')" in msg


def test_missing_and_directory_inputs(tmp_path):
    (tmp_path / "maps").mkdir()
    msg = problems(ci(planck={"psz2_catalogue": "maps", "noise_cl": "nowhere/cl.txt"}), tmp_path)
    assert "planck.psz2_catalogue: maps is a directory, expected a file" in msg
    assert "planck.noise_cl: nowhere/cl.txt does not exist" in msg
    assert "planck.noise_std_map, planck.noise_cl: give both noise products or neither" in msg


def write_masks(path: Path, nside: int, columns: tuple[str, ...]) -> None:
    npix = hp.nside2npix(nside)
    cols = [fits.Column(name=c, format="E", array=np.ones(npix, dtype=np.float32)) for c in columns]
    table = fits.BinTableHDU.from_columns(cols)
    table.header.update(PIXTYPE="HEALPIX", ORDERING="RING", NSIDE=nside, INDXSCHM="IMPLICIT")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)


def test_healpix_columns_and_nside_of_the_real_sky_inputs(tmp_path):
    ymap, masks, image = tmp_path / "y.fits", tmp_path / "masks.fits", tmp_path / "image.fits"
    write_healpix_map(ymap, np.zeros(hp.nside2npix(64)))
    write_masks(masks, 64, ("M1", "M2"))
    fits.PrimaryHDU(np.zeros((8, 8))).writeto(image)
    sums = {p: sha256(p) for p in (ymap, masks, image)}

    good = {"ymap": str(ymap), "masks": [str(masks)], "mask_column": "M2", "nside": 64}
    cfg = ci(planck=good)
    check_schema(cfg, SCHEMA)
    validate(cfg, str(SCHEMA))
    check_values(cfg, tmp_path)

    msg = problems(ci(planck={**good, "mask_column": "GAL060"}), tmp_path)
    assert f"planck.masks[0]: {masks}: no column 'GAL060'; its columns are ['M1', 'M2']" in msg
    msg = problems(ci(planck={**good, "mask_column": 2}), tmp_path)
    assert f"planck.masks[0]: {masks}: no column 2 (it has 2: ['M1', 'M2'])" in msg
    msg = problems(ci(planck={**good, "nside": 128}), tmp_path)
    assert f"planck.ymap: {ymap}: NSIDE is 64, but planck.nside is 128" in msg
    msg = problems(ci(planck={**good, "ymap": str(image)}), tmp_path)
    assert f"planck.ymap: {image}: not a HEALPix map: HDU 1 is not a binary table" in msg
    msg = problems(ci(planck={"noise_std_map": str(image), "noise_cl": str(ymap)}), tmp_path)
    assert f"planck.noise_std_map: {image}: not a HEALPix map: HDU 1 is not a binary table" in msg
    assert {p: sha256(p) for p in sums} == sums


def test_healpix_problem_of_a_non_fits_file(tmp_path):
    path = tmp_path / "y.fits"
    path.write_text("not a FITS file")
    assert healpix_problem(path).startswith("not a readable FITS file")


def test_schema_default_checksum_is_the_shipped_catalogues():
    from szmass.data import PSZ2_SHA256

    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["properties"]["planck"]["properties"]["psz2_sha256"]["default"] == PSZ2_SHA256 == sha256(
        PSZ2_CATALOGUE)


# End to end: the checks run before any job, in a dry run too (each call takes a few seconds).


def test_empty_config_file_stops_the_dry_run(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("{}\n")
    proc = snakemake(tmp_path, "-n", "--configfile", str(path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "missing required key(s) seed, cosmology, sims" in out
    assert "$schema" not in out and len(out.splitlines()) < 30  # no schema dump


def test_config_alone_applies_on_top_of_the_demo_config(tmp_path):
    proc = snakemake(tmp_path, "-n", "--quiet", "rules", "--config", "seed=3", check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.MULTILINE))
    assert jobs["simulate"] == "16"  # the demo's 16 regions
    proc = snakemake(tmp_path, "-n", "--config", "seed=-1", check=False)
    assert proc.returncode != 0
    assert "seed: -1 is less than the minimum of 0" in proc.stdout + proc.stderr


M200_MOCK_TARGETS = ("results/tables/test_predictions_clean.csv", "results/tables/test_predictions_planck.csv",
                     "results/figures/predicted_vs_true_planck.png", "results/tables/posterior_coverage.csv")
"""Products of the mocks, which a run of M200 networks makes."""


def test_m200_networks_make_the_mocks_products_and_refuse_the_sky_at_start(tmp_path):
    m200 = ("--configfile", str(REPO / "config" / "ci.yaml"), "--config", 'training={"target_mass": "M200"}')
    proc = snakemake(tmp_path, "-n", "--quiet", "rules", *m200, "--", *M200_MOCK_TARGETS, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.MULTILINE))
    assert jobs["train"] == "16" and "sky_predictions" not in jobs  # ci.yaml: 2 data sets x 4 bins x 2 seeds
    proc = snakemake(tmp_path, "-n", *m200, check=False)  # the default target holds the sky and the catalogue
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ("training.target_mass: results/sky/predictions.csv compares the networks' masses with PSZ2's M_SZ, "
            "an M500, but the networks learn M200") in out
    assert not (tmp_path / "results").exists()  # stopped before any job


def test_psz2_products_need_m500_networks():
    from szmass.config_checks import require_psz2_target

    require_psz2_target({"training": {"target_mass": "M500"}}, "the catalogue")
    with pytest.raises(ConfigError, match=r"^invalid configuration \(the sky and the catalogue need M500 networks\), "
                                          r"1 problem\(s\):\n  training\.target_mass: the catalogue compares"):
        require_psz2_target({"training": {"target_mass": "M200"}}, "the catalogue")


def test_empty_halo_table_names_the_cuts():
    from szmass.config_checks import check_halos_selected

    selection = {"m500_min": 1e14, "fmhires_min": 0.98, "z_min": 0.0, "z_max": 1.0}
    check_halos_selected(1, selection, "gadgetx")
    with pytest.raises(ConfigError, match=re.escape(
            "halo_selection: no halo of sims.gadgetx passes the cuts (m500_min = 1e+14 h^-1 Msun, fmhires_min = "
            "0.98, redshift in (0, 1])")):
        check_halos_selected(0, selection, "gadgetx")


def test_cluster_jobs_get_a_private_numba_cache():
    from szmass.settings import use_private_numba_cache

    env = {"SLURM_JOB_ID": "4242", "TMPDIR": "node-tmp/job4242"}
    assert use_private_numba_cache(env) == "node-tmp/job4242/szmass-numba-4242" == env["NUMBA_CACHE_DIR"]
    other = {"SLURM_JOB_ID": "4243", "TMPDIR": "node-tmp/job4242"}
    assert use_private_numba_cache(other) != env["NUMBA_CACHE_DIR"]  # two jobs never share one
    user = {"SLURM_JOB_ID": "4242", "NUMBA_CACHE_DIR": "shared/numba"}
    assert use_private_numba_cache(user) == "shared/numba"  # the user's choice wins
