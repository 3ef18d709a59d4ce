"""Where the workflow's inputs live: regions, snapshots and file paths of each configured simulation.

A simulation entry of the config (``sims.<name>``) is either ``source: synthetic`` (written by the
``simulate`` rule under ``resources/sims/<name>/`` in THE THREE HUNDRED's layout) or ``source: files``
(real snapshots and AHF catalogues found through the user's path templates, formatted with
``region``, ``snapshot`` and ``redshift``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

SYNTH_ROOT = "resources/sims"
FORMAT_SUFFIX = {"hdf5": ".hdf5", "gadget1": "", "gadget2": ""}


def regions(sim_cfg: Mapping[str, Any]) -> list[int]:
    """Region numbers of a simulation entry: ``regions`` is a count N (regions 1..N) or an explicit list."""
    r = sim_cfg["regions"]
    return list(range(1, int(r) + 1)) if isinstance(r, int) else [int(x) for x in r]


def snapshots(sim_cfg: Mapping[str, Any]) -> dict[int, float]:
    """Snapshot number -> redshift of a simulation entry, in snapshot order."""
    return {int(k): float(v) for k, v in sorted(sim_cfg["snapshots"].items(), key=lambda kv: int(kv[0]))}


def snapshots_per_job(sim_cfg: Mapping[str, Any]) -> int:
    """Snapshots of one region handled by one halo-selection or projection job (``snapshots_per_job``;
    default: all of them, one job per region)."""
    n = sim_cfg.get("snapshots_per_job")
    n_snaps = len(sim_cfg["snapshots"])
    if n is None:
        return n_snaps
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"sims: snapshots_per_job must be a positive integer, got {n!r}")
    return min(n, n_snaps)


def snapshot_chunks(sim_cfg: Mapping[str, Any]) -> list[list[int]]:
    """The snapshots of a simulation entry cut into consecutive chunks of :func:`snapshots_per_job`, in
    snapshot order; chunk ``c`` of a region is one job (``{region}_c{c}`` in the workflow's part names)."""
    snaps = list(snapshots(sim_cfg))
    n = snapshots_per_job(sim_cfg)
    return [snaps[i : i + n] for i in range(0, len(snaps), n)]


def synthetic_snapshot_pattern(fmt: str) -> str:
    """Snakemake output pattern of a synthetic snapshot in format ``fmt`` (wildcards sim, region, snapshot)."""
    return SYNTH_ROOT + "/{sim}/NewMDCLUSTER_{region}/snap_{snapshot}" + FORMAT_SUFFIX[fmt]


SYNTHETIC_AHF_PATTERN = SYNTH_ROOT + "/{sim}/NewMDCLUSTER_{region}/snap_{snapshot}.AHF_halos"


def snapshot_path(sim: str, sim_cfg: Mapping[str, Any], region: int, snapshot: int) -> str:
    """Path of one snapshot (the base name for a multi-file binary snapshot)."""
    if sim_cfg["source"] == "synthetic":
        pattern = synthetic_snapshot_pattern(sim_cfg["format"])
        return pattern.format(sim=sim, region=f"{region:04d}", snapshot=f"{snapshot:03d}")
    z = snapshots(sim_cfg)[snapshot]
    return str(sim_cfg["snapshot_path"]).format(region=region, snapshot=snapshot, redshift=z)


def ahf_path(sim: str, sim_cfg: Mapping[str, Any], region: int, snapshot: int) -> str:
    """Path of the AHF ``*.AHF_halos`` catalogue of one snapshot."""
    if sim_cfg["source"] == "synthetic":
        return SYNTHETIC_AHF_PATTERN.format(sim=sim, region=f"{region:04d}", snapshot=f"{snapshot:03d}")
    z = snapshots(sim_cfg)[snapshot]
    return str(sim_cfg["ahf_path"]).format(region=region, snapshot=snapshot, redshift=z)


SEED_BOUND = 2**31
"""Derived seeds lie in [0, SEED_BOUND), valid for numpy, TensorFlow and Keras alike."""


def derive_seed(base_seed: int, *keys: object) -> int:
    """A seed for one random step (e.g. ``"noise"``, or a sim and region), derived from the config seed.

    Stable across runs and machines (SHA-256 of the keys), independent streams for distinct keys.
    """
    digest = hashlib.sha256("/".join(map(str, (int(base_seed), *keys))).encode()).digest()
    return int.from_bytes(digest[:8], "little") % SEED_BOUND
