"""Provenance of every output: which config, code and library versions made it.

A provenance record (:func:`provenance_record`) is a flat ``dict[str, str]``:

* ``config_sha256``: sha256 (hex) of the canonical JSON of the run's config,
  ``json.dumps(config, sort_keys=True, separators=(",", ":"))``; ``"none"`` without a config.
  In a workflow job the config is Snakemake's ``config`` object: the config file(s) plus any
  ``--config`` overrides plus the defaults that ``snakemake.utils.validate`` fills in from
  ``workflow/schemas/config.schema.yaml``. That effective config is what decides the outputs,
  so two config files that differ only by spelling out a default give the same checksum; to
  reproduce it from a file, load it with yaml and validate it against the schema first.
* ``szmass`` (version), ``git_commit`` (``git rev-parse HEAD`` of the checkout szmass is imported
  from), ``git_dirty`` (``"true"`` when tracked files differ from that commit); both ``"unknown"``
  when szmass is not imported from a git checkout (e.g. an installed wheel) or git is missing.
* ``python`` and the versions of numpy, numba, healpy, tensorflow, zarr, astropy, xarray, keras
  (from the installed distributions' metadata; nothing is imported; ``"not installed"`` if absent).
* ``rule`` (the producing Snakemake rule, or ``"none"``).

No time is recorded: the same config and code give byte-identical outputs (a rerun or a resumed run
included), and the file's mtime and Snakemake's own records say when a job ran.

Where it goes (:func:`stamp_outputs` picks by path):

* zarr stores (format 2 or 3; a directory with ``zarr.json``, ``.zgroup`` or ``.zarray`` at its root):
  the root's attribute ``"provenance"``, the record as a JSON object; consolidated metadata is rewritten
  so it stays current. zarr writes the small metadata file through a temporary file and a rename.
  A directory without zarr metadata (even one named ``*.zarr``, e.g. a folder of part stores) gets a sidecar.
* FITS files (``.fits``, ``.fit``, ``.fts``, optionally ``.gz``): cards of the primary HDU (see
  :data:`FITS_KEYWORDS`; the package versions as ``HIERARCH SZMASS <NAME>``). The file is rewritten
  to a temporary sibling and renamed into place; data units are copied byte for byte.
* anything else (CSV, PNG, keras, JSON, other directories): a sidecar ``<file>.provenance.json``,
  written atomically. Sidecars are not declared Snakemake outputs: Snakemake neither checks nor
  removes them, so a failed rerun can leave the previous run's sidecar beside a missing output.
  The creation time lives only in the sidecar, never in a CSV itself, so that rerunning a job
  that makes the same table leaves its bytes (and Snakemake's checksum of it) unchanged.

Two runs of one config make outputs that differ in their provenance alone (creation time; commit and
versions if those changed): compare runs by their data, not by the checksums of whole files or stores.

In a workflow script, ``stamp_job(snakemake)`` as the last line stamps every output of the job.
Stamping after the output was written keeps the job's other writes atomic; Snakemake marks the
outputs complete only when the script has returned, so a job killed while stamping is rerun.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import warnings
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from szmass import __version__
from szmass.atomic import atomic_path

ATTR_KEY = "provenance"
"""zarr root attribute that holds the record."""

SIDECAR_SUFFIX = ".provenance.json"
"""Sidecar name: the output's file name plus this suffix."""

PACKAGES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "numba": ("numba",),
    "healpy": ("healpy",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel"),
    "zarr": ("zarr",),
    "astropy": ("astropy",),
    "xarray": ("xarray",),
    "keras": ("keras",),
}
"""Record key -> distribution names to look up, first installed wins (the TensorFlow wheel has several names)."""

FITS_KEYWORDS: dict[str, str] = {
    "szmass": "SZMVER",
    "git_commit": "SZMGIT",
    "git_dirty": "SZMDIRTY",
    "config_sha256": "CFGSHA",
    "rule": "SZMRULE",
    "python": "PYVER",
}
"""Record key -> primary-header keyword; other keys (package versions) go to ``HIERARCH SZMASS <KEY>``."""

FITS_COMMENTS: dict[str, str] = {
    "szmass": "szmass version",
    "git_commit": "git commit of szmass src",
    "git_dirty": "szmass source differs from SZMGIT",
    "config_sha256": "",  # the 64-digit value leaves no room: FITS_NOTE explains it
    "rule": "Snakemake rule that made this file",
    "python": "Python version",
}
FITS_NOTE = "szmass provenance: CFGSHA = sha256 of the run's config as canonical JSON"
"""COMMENT card written once with the provenance cards."""
HIERARCH_PREFIX = "SZMASS "
FITS_SUFFIXES = (".fits", ".fit", ".fts")
ZARR_METADATA = ("zarr.json", ".zgroup", ".zarray")


def config_checksum(config: Mapping[str, Any] | None) -> str:
    """sha256 (hex) of ``json.dumps(config, sort_keys=True, separators=(",", ":"))``; ``"none"`` for None.

    Values JSON cannot hold (e.g. YAML dates) enter as their ``str``.
    """
    if config is None:
        return "none"
    try:
        text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    except TypeError as err:  # e.g. keys of mixed types cannot be sorted
        raise ValueError(f"config: no canonical JSON for the provenance checksum ({err})") from err
    return hashlib.sha256(text.encode()).hexdigest()


def _package_version(names: Iterable[str]) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True,
                          timeout=20).stdout.strip()


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str, str]:
    """(commit, dirty) of the git checkout szmass is imported from; ("unknown", "unknown") if there is none.

    The package's ``__init__.py`` must be a tracked file of that checkout, so an installed copy that
    merely lies inside some repository (e.g. a virtual environment in a checkout) counts as unknown.
    Dirty means tracked files differ from the commit (untracked files such as results are ignored).
    """
    init = Path(__file__).resolve().with_name("__init__.py")
    try:
        _git(init.parent, "ls-files", "--error-unmatch", init.name)
        commit = _git(init.parent, "rev-parse", "HEAD")
        dirty = _git(init.parent, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"
    return commit, "true" if dirty else "false"


def provenance_record(config: Mapping[str, Any] | None, *, rule: str | None = None) -> dict[str, str]:
    """The provenance of an output made now with ``config`` by ``rule`` (see the module docstring)."""
    commit, dirty = git_state()
    record = {
        "config_sha256": config_checksum(config),
        "szmass": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
    }
    record |= {key: _package_version(names) for key, names in PACKAGES.items()}
    record["rule"] = rule or "none"
    return record


def _check_record(record: Mapping[str, str]) -> dict[str, str]:
    bad = [k for k, v in record.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad or not record:
        raise ValueError(f"provenance record: expected a non-empty mapping of str to str, bad keys {bad}")
    return dict(record)


def is_zarr(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a zarr store (format 2 or 3): a directory with zarr metadata at its root."""
    p = Path(path)
    return p.is_dir() and any((p / m).is_file() for m in ZARR_METADATA)


def is_fits(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like a FITS file (``.fits``, ``.fit``, ``.fts``, each optionally ``.gz``)."""
    name = Path(path).name.lower().removesuffix(".gz")
    return name.endswith(FITS_SUFFIXES)


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The sidecar of ``path``: ``<path>.provenance.json``."""
    p = Path(path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def stamp_zarr(path: str | os.PathLike[str], record: Mapping[str, str]) -> None:
    """Put ``record`` into the root attributes of the zarr store ``path`` (key ``"provenance"``).

    Consolidated metadata, where the store has it, is rewritten so that ``consolidated=True`` readers
    see the new attribute (zarr format 2 copies root attributes into ``.zmetadata``).
    """
    import zarr

    record = _check_record(record)
    if not is_zarr(path):
        raise ValueError(f"{path}: not a zarr store (expected a directory with {' or '.join(ZARR_METADATA)})")
    with warnings.catch_warnings():  # zarr warns that consolidated metadata is not yet in the v3 spec
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        node = zarr.open(store=str(path), mode="r+")
        consolidated = isinstance(node, zarr.Group) and node.metadata.consolidated_metadata is not None
        node.attrs[ATTR_KEY] = record
        if consolidated:
            zarr.consolidate_metadata(str(path), zarr_format=node.metadata.zarr_format)


def stamp_fits(path: str | os.PathLike[str], record: Mapping[str, str]) -> None:
    """Write ``record`` as cards of the primary header of the FITS file ``path``, atomically.

    The file is rewritten to a temporary sibling (data copied unscaled, byte for byte) and renamed into
    place. A primary HDU that carried a CHECKSUM gets a new one; other HDUs are not touched.
    """
    from astropy.io import fits

    record = _check_record(record)
    with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
        header = hdul[0].header
        for key, value in record.items():
            if key in FITS_KEYWORDS:
                header[FITS_KEYWORDS[key]] = (value, FITS_COMMENTS[key])
            else:
                header[f"HIERARCH {HIERARCH_PREFIX}{key.upper()}"] = (value, f"{key} version")
        if FITS_NOTE not in [str(c) for c in header.get("COMMENT", [])]:
            header.add_comment(FITS_NOTE)
        if "CHECKSUM" in header:
            hdul[0].add_checksum()
        with atomic_path(path) as tmp:
            hdul.writeto(tmp, output_verify="exception")


def write_sidecar(path: str | os.PathLike[str], record: Mapping[str, str]) -> Path:
    """Write ``record`` as JSON to the sidecar ``<path>.provenance.json`` (atomically); return its path."""
    record = _check_record(record)
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such output to record the provenance of")
    side = sidecar_path(path)
    with atomic_path(side) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return side


def stamp_outputs(paths: Iterable[str | os.PathLike[str]], record: Mapping[str, str]) -> None:
    """Record ``record`` with every path: zarr stores in their attributes, FITS files in their header,
    anything else in a sidecar (:func:`sidecar_path`)."""
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: no such output to record the provenance of")
        if is_zarr(path):
            stamp_zarr(path, record)
        elif is_fits(path) and Path(path).is_file():
            stamp_fits(path, record)
        else:
            write_sidecar(path, record)


def stamp_job(sm: Any) -> None:
    """Stamp every output of a Snakemake script job with the job's config and rule (last line of a script)."""
    stamp_outputs(list(sm.output), provenance_record(sm.config, rule=sm.rule))


def _read_zarr(path: Path) -> dict[str, str] | None:
    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        record = zarr.open(store=str(path), mode="r").attrs.get(ATTR_KEY)
    return {str(k): str(v) for k, v in record.items()} if isinstance(record, Mapping) else None


def _read_fits(path: Path) -> dict[str, str] | None:
    from astropy.io import fits

    header = fits.getheader(path, 0)
    if FITS_KEYWORDS["szmass"] not in header:
        return None
    record = {key: str(header[kw]) for key, kw in FITS_KEYWORDS.items() if kw in header}
    for card in header.cards:
        if card.keyword.startswith(HIERARCH_PREFIX):
            record[card.keyword.removeprefix(HIERARCH_PREFIX).lower()] = str(card.value)
    return record


def read_provenance(path: str | os.PathLike[str]) -> dict[str, str]:
    """The provenance record of an output (zarr attributes, FITS header or sidecar; a sidecar may be given itself).

    Raises FileNotFoundError if ``path`` does not exist and ValueError if it has no provenance.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    if p.name.endswith(SIDECAR_SUFFIX) and p.is_file():
        side = p
        record = None
    else:
        side = sidecar_path(p)
        record = _read_zarr(p) if is_zarr(p) else _read_fits(p) if is_fits(p) and p.is_file() else None
    if record is None and side.is_file():
        try:
            loaded = json.loads(side.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{side}: not a provenance record (invalid JSON: {err})") from err
        if not isinstance(loaded, dict):
            raise ValueError(f"{side}: not a provenance record (expected a JSON object)")
        record = {str(k): str(v) for k, v in loaded.items()}
    if not record:
        if is_zarr(p):
            where = "no zarr root attribute 'provenance', "
        elif is_fits(p) and p.is_file():
            where = "no FITS primary-header card SZMVER, "
        else:
            where = ""
        raise ValueError(f"{p}: no szmass provenance ({where}no sidecar {side})")
    return record
