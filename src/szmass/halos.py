"""Halo selection: THE THREE HUNDRED halo catalogues -> the halo table of the data contract.

Selection (de Andres et al. 2022): M500 > 1e14 h^-1 Msun, uncontaminated by low-resolution
particles (AHF ``fMhires`` at least a configured fraction), and 0 < z <= 1. M500 and R500 are taken
from the AHF columns ``M500c``/``R500c`` when the catalogue has them, else computed by spherical
overdensity (500 times the critical density) from the snapshot's particles around the halo centre;
likewise M200 and R200 (200 times the critical density; AHF ``M200c``/``R200c``), which the networks
can be trained on instead of M500 (``training.target_mass``). The selection is on M500 either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np
import pandas as pd
from astropy.cosmology import FlatLambdaCDM

from szmass.cosmology import rho_crit_msun_kpc3
from szmass.settings import exact_keys

HALO_COLUMNS = [
    "sim", "region", "snapshot", "redshift", "halo_id", "M500", "R500", "M200", "R200",
    "centre_x", "centre_y", "centre_z", "fMhires", "model",
]
"""Columns of ``results/halos/{sim}.csv``: M500, M200 [Msun], R500, R200 and centre [physical kpc]."""

OVERDENSITIES: dict[int, tuple[str, str]] = {500: ("M500", "R500"), 200: ("M200", "R200")}
"""Overdensity (times rho_crit(z)) -> the halo table's (mass, radius) columns; the AHF columns add a ``c``."""

AHF_NEEDED = ["ID", "hostHalo", "Mvir", "Xc", "Yc", "Zc", "Rvir", "fMhires"]


@dataclass(frozen=True)
class HaloSelection:
    """Selection thresholds: ``m500_min`` [h^-1 Msun], ``fmhires_min`` (fraction), redshift range (z_min, z_max],
    and ``main_halos_only``: leave out the sub-halos (AHF ``hostHalo`` != -1).

    Every field required (the defaults live in the workflow's config schema, ``halo_selection``).
    """

    m500_min: float
    fmhires_min: float
    z_min: float
    z_max: float
    main_halos_only: bool

    @classmethod
    def from_mapping(cls, d: Mapping[str, float | bool]) -> "HaloSelection":
        """From the ``halo_selection`` section of a validated config; ValueError naming an unknown key,
        :class:`szmass.settings.MissingKeyError` naming a missing one."""
        d = exact_keys(d, cls, "halo_selection")
        return cls(m500_min=float(d["m500_min"]), fmhires_min=float(d["fmhires_min"]), z_min=float(d["z_min"]),
                   z_max=float(d["z_max"]), main_halos_only=bool(d["main_halos_only"]))


def overdensity_radius(r: np.ndarray, m_enc: np.ndarray, threshold: float) -> float | None:
    """Outermost radius where the mean enclosed density crosses ``threshold`` (log-linear); None if never below it.

    ``r`` sorted ascending (> 0), ``m_enc`` the cumulative mass; units consistent. Returns 0 when the
    density never reaches the threshold.
    """
    dens = m_enc / (4.0 / 3.0 * np.pi * r**3)
    above = np.nonzero(dens >= threshold)[0]
    if above.size == 0:
        return 0.0
    i = int(above[-1])
    if i == r.size - 1:
        return None
    f = (np.log(dens[i]) - np.log(threshold)) / (np.log(dens[i]) - np.log(dens[i + 1]))
    return float(np.exp(np.log(r[i]) + f * (np.log(r[i + 1]) - np.log(r[i]))))


def so_from_particles(
    pos_kpc: np.ndarray,
    mass_msun: np.ndarray,
    centre_kpc: np.ndarray,
    redshift: float,
    cosmo: FlatLambdaCDM,
    overdensities: Sequence[int] = (500,),
) -> list[tuple[float, float]]:
    """Spherical-overdensity (M_Delta [Msun], R_Delta [kpc]) about ``centre_kpc`` for each Delta of ``overdensities``.

    R_Delta is the largest radius at which the mean enclosed density of the particles (physical positions
    [kpc], masses [Msun]) is Delta rho_crit(z) (:func:`overdensity_radius`), and M_Delta = 4/3 pi R_Delta^3
    Delta rho_crit(z). Raises if the particles never reach an overdensity or never fall below it (the
    sphere read was too small).
    """
    r = np.sqrt(np.sum((np.asarray(pos_kpc, float) - np.asarray(centre_kpc, float)) ** 2, axis=1))
    order = np.argsort(r, kind="stable")
    r = r[order]
    m_enc = np.cumsum(np.asarray(mass_msun, float)[order])
    keep = r > 0
    r, m_enc = r[keep], m_enc[keep]
    if r.size < 2:
        raise ValueError(f"spherical overdensity from particles: fewer than two particles around {centre_kpc}")
    out = []
    for delta in overdensities:
        what = f"M{delta} from particles"
        target = delta * rho_crit_msun_kpc3(cosmo, redshift)
        radius = overdensity_radius(r, m_enc, target)
        if radius == 0.0:
            raise ValueError(f"{what}: mean density never reaches {delta} rho_crit around {centre_kpc}")
        if radius is None:
            raise ValueError(
                f"{what}: still above {delta} rho_crit at the last particle (r = {r[-1]:.1f} kpc); read a larger sphere"
            )
        out.append((float(4.0 / 3.0 * np.pi * radius**3 * target), radius))
    return out


ParticleSource = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Callable (centres [kpc] (n,3), radii [kpc] (n,)) -> (positions [kpc], masses [Msun]) of all matter."""


def select_halos(
    ahf: pd.DataFrame,
    *,
    ahf_path: str | PathLike[str],
    sim: str,
    region: int,
    snapshot: int,
    redshift: float,
    h: float,
    model: str,
    selection: HaloSelection,
    cosmo: FlatLambdaCDM,
    particles: ParticleSource | None = None,
) -> pd.DataFrame:
    """Select the halos of one AHF catalogue (``ahf`` as read by ``szmass.sims.read_ahf_halos``).

    AHF units (h^-1 Msun, comoving kpc/h) are converted with ``h`` and the scale factor 1/(1+z).
    ``particles`` supplies the matter around candidate halos when the catalogue lacks ``M500c``/``R500c`` or
    ``M200c``/``R200c`` (each pair is taken from the catalogue when it has both columns, else computed).
    Returns rows with :data:`HALO_COLUMNS` (empty when nothing passes).
    """
    from szmass.sims import require_columns

    require_columns(ahf, AHF_NEEDED, ahf_path)
    if not selection.z_min < redshift <= selection.z_max:
        return pd.DataFrame(columns=HALO_COLUMNS)
    a = 1.0 / (1.0 + redshift)
    m_min_msun = selection.m500_min / h
    keep = (ahf["fMhires"] >= selection.fmhires_min) & (ahf["Mvir"] / h > m_min_msun)
    if selection.main_halos_only:
        keep &= ahf["hostHalo"] == -1
    cand = ahf[keep]
    centres = cand[["Xc", "Yc", "Zc"]].to_numpy(float) * a / h
    radii = cand["Rvir"].to_numpy(float) * a / h  # R500 < R200 < Rvir (Delta_vir < 200 at z <= 1)
    so: dict[str, np.ndarray] = {}
    from_particles = []
    for delta, (m_col, r_col) in OVERDENSITIES.items():
        if {f"{m_col}c", f"{r_col}c"} <= set(ahf.columns):
            so[m_col] = cand[f"{m_col}c"].to_numpy(float) / h
            so[r_col] = cand[f"{r_col}c"].to_numpy(float) * a / h
        else:
            from_particles.append(delta)
    if from_particles:
        if particles is None:
            absent = [f"{c}c" for d in from_particles for c in OVERDENSITIES[d]]
            raise ValueError(f"file {ahf_path}: no {'/'.join(absent)} columns and no snapshot given to compute them "
                             "from particles")
        found = np.empty((len(cand), len(from_particles), 2))
        for k, (c, rv) in enumerate(zip(centres, radii)):
            pos, mass = particles(c[None, :], np.array([1.5 * rv]))
            found[k] = so_from_particles(pos, mass, c, redshift, cosmo, from_particles)
        for j, delta in enumerate(from_particles):
            m_col, r_col = OVERDENSITIES[delta]
            so[m_col], so[r_col] = found[:, j, 0], found[:, j, 1]
    out = pd.DataFrame(
        {
            "sim": sim,
            "region": int(region),
            "snapshot": int(snapshot),
            "redshift": float(redshift),
            "halo_id": cand["ID"].to_numpy(np.int64),
            **so,
            "centre_x": centres[:, 0],
            "centre_y": centres[:, 1],
            "centre_z": centres[:, 2],
            "fMhires": cand["fMhires"].to_numpy(float),
            "model": model,
        },
        columns=HALO_COLUMNS,
    )
    return out[out["M500"] > m_min_msun].reset_index(drop=True)


def snapshot_matter(path: str | PathLike[str]) -> ParticleSource:
    """A :data:`ParticleSource` reading gas and dark matter of the snapshot at ``path`` (physical units).

    Positions are returned as minimum images about each requested centre, so spheres that straddle the
    periodic box boundary are whole.
    """
    from szmass.sims import read_snapshot

    def source(centres: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        snap = read_snapshot(path, centre=centres, radius=radii, dark_matter=True)
        box = snap.box_size * snap.scale_factor / snap.h
        pos = np.concatenate([snap.pos, snap.dm_pos]).astype(float)
        mass = np.concatenate([snap.mass, snap.dm_mass]).astype(float)
        c = np.asarray(centres, float)[0]
        pos = c + (pos - c + 0.5 * box) % box - 0.5 * box
        return pos, mass

    return source


def check_redshift(path: str | PathLike[str], header_z: float, config_z: float, tol: float = 2e-3) -> None:
    """Raise if the configured redshift of a snapshot differs from its header's by more than ``tol``."""
    if abs(header_z - config_z) > tol:
        raise ValueError(
            f"file {path}: header Redshift = {header_z:.4f} but the config gives {config_z:.4f}; fix sims.<name>.snapshots"
        )


def select_snapshot_halos(
    snapshot_path: str | PathLike[str],
    ahf_path: str | PathLike[str],
    *,
    sim: str,
    region: int,
    snapshot: int,
    redshift: float,
    model: str,
    selection: HaloSelection,
    cosmo: FlatLambdaCDM,
) -> pd.DataFrame:
    """:func:`select_halos` of one snapshot file and its AHF catalogue, after checking that the snapshot
    header's redshift is the configured ``redshift`` (:func:`check_redshift`); h from the header."""
    from szmass.sims import read_ahf_halos, read_snapshot_header

    header = read_snapshot_header(snapshot_path)
    check_redshift(snapshot_path, header.redshift, float(redshift))
    return select_halos(
        read_ahf_halos(ahf_path), ahf_path=ahf_path, sim=sim, region=int(region), snapshot=int(snapshot),
        redshift=header.redshift, h=header.h, model=model, selection=selection, cosmo=cosmo,
        particles=snapshot_matter(snapshot_path),
    )


def concat_halo_tables(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Halo tables one after the other (their order kept); the empty ones only contribute their columns."""
    if not tables:
        raise ValueError("concat_halo_tables: no table given")
    rows = [t for t in tables if len(t)]
    return pd.concat(rows, ignore_index=True) if rows else tables[0].reset_index(drop=True)
