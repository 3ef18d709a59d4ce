"""The synthetic sky: Planck-like noise with simulated clusters injected at the PSZ2 positions, and masks.

Without the real Planck y-map the real-data branch (docs/architecture.md, stage 5) runs on this sky, whose answer is
known. :func:`synthetic_sky` builds it:

* noise: ``szmass.noise.realise(default_noise_model(nside), ...)``, the MILCA-calibrated realisation;
* clusters: for each PSZ2 cluster with a redshift, a clean map (:mod:`szmass.mapstore`) of a simulated
  halo that none of the sky's models trained or validated on (:func:`unseen_maps`: a cluster of the
  fixed test set of the cluster's redshift bin), matched in redshift -- the snapshot redshift nearest
  to the cluster's among those in the same redshift bin, so the CNN of the cluster's bin sees a halo
  of that bin, never one of its training or validation clusters -- and in mass -- the halo whose
  log10 M500 is nearest to log10(MSZ / hydrostatic_bias), PSZ2's hydrostatic masses being biased low
  by (1 - b) = 0.8, so that the pipeline's b_P on the sky recovers b (a closure test) -- seen along
  one of its lines of sight drawn at random. Its 96 x 96, 1.7' map (already beam-smoothed) is painted with
  :func:`szmass.healpix.paint`: every HEALPix pixel whose centre falls on the map gets the map's
  bilinear interpolation there (y is a surface brightness, so the values carry over). Cutting the sky out
  again at the same position samples the nearest HEALPix pixel, so the recovered cluster's integrated y
  (over the 96 x 96 field) matches the injected map's to 0.4 % rms (1.2 % at worst) at Nside 2048, the
  Planck maps' 1.7' pixels, 1.4 % rms (6 % at worst) at Nside 1024 and 2.3 % rms (7 %) at Nside 512
  (measured on 40 beam-smoothed toy clusters of 1e14-2e15 Msun at random positions);
* masks: a galactic band |b| < ``galactic_cut_deg`` and point sources, discs of
  ``point_source_radius_arcmin`` at positions uniform on the sphere (their number Poisson with mean
  ``point_source_density_deg2`` times the sky's area). A cluster is not Golden when a disc's centre lies
  within about 10' + radius of it, so the default 1 per deg^2 of 5' discs leaves exp(-pi (15')^2 / deg^2),
  82 %, of the clusters away from the band Golden (about 20 % non-Golden in all), as intended for a
  realistic Golden sample. Point sources are masked only; the sky holds no point-source signal.

The sky's cutout store is made from this sky as from the real one (:func:`szmass.planck.sky_cutouts`).
"""

from __future__ import annotations

from collections.abc import Sequence

import healpy as hp
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from szmass import healpix, noise
from szmass.logs import progress
from szmass.splits import DEFAULT_FRACTIONS, IdentityKey, cluster_identity, test_identities, training_maps
from szmass.zbins import REDSHIFT_EDGES, check_edges

SKY_AREA_DEG2 = 4.0 * np.pi * np.degrees(1.0) ** 2
"""Area of the sphere [deg^2]."""

TRUTH_COLUMNS = [
    "NAME", "GLON", "GLAT", "REDSHIFT", "MSZ", "M500", "R500", "map_index",
    "sim", "region", "snapshot", "halo_id", "projection", "redshift_sim",
]
"""Columns of the injected truth: the PSZ2 row (GLON/GLAT [deg], MSZ [Msun]), the injected halo's M500
[Msun] and R500 [kpc], its map's index in the clean store and identity, and its snapshot's redshift."""


def synthetic_mask(
    nside: int,
    *,
    seed: int | np.random.SeedSequence,
    galactic_cut_deg: float = 10.0,
    point_source_density_deg2: float = 1.0,
    point_source_radius_arcmin: float = 5.0,
) -> np.ndarray:
    """A RING mask (float32, 1 = valid, 0 = masked): the band |b| < ``galactic_cut_deg`` [deg] and point sources.

    Point sources: a Poisson number (mean ``point_source_density_deg2`` [deg^-2] times the sky's area) of
    discs of radius ``point_source_radius_arcmin`` [arcmin] centred uniformly on the sphere; a pixel is
    masked when its centre lies in the band or a disc (so the masked area is right at any nside).
    """
    if not hp.isnsideok(nside):
        raise ValueError(f"synthetic_mask: nside must be a power of 2, got {nside!r}")
    for name, value in (("galactic_cut_deg", galactic_cut_deg), ("point_source_density_deg2", point_source_density_deg2),
                        ("point_source_radius_arcmin", point_source_radius_arcmin)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"synthetic_mask: {name} must be >= 0, got {value!r}")
    mask = np.ones(hp.nside2npix(nside), dtype=np.float32)
    if galactic_cut_deg > 0:
        mask[hp.query_strip(nside, np.radians(90.0 - galactic_cut_deg), np.radians(90.0 + galactic_cut_deg))] = 0.0
    rng = np.random.default_rng(seed)
    n = rng.poisson(point_source_density_deg2 * SKY_AREA_DEG2)
    cos_theta = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    radius = np.radians(point_source_radius_arcmin / 60.0)
    for vec in progress(hp.ang2vec(np.arccos(cos_theta), phi).reshape(-1, 3), desc="synthetic mask, point sources"):
        mask[hp.query_disc(nside, vec, radius, inclusive=False)] = 0.0
    return mask


def unseen_maps(
    clean: xr.Dataset,
    trained: xr.Dataset,
    *,
    z_edges: Sequence[float],
    test_seeds: Sequence[int],
    identity: IdentityKey = "halo",
    m500_cuts: Sequence[float] | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> NDArray[np.bool_]:
    """Per map of ``clean``: True when no model of its redshift bin trained or validated on its cluster.

    ``trained`` is the map store the sky's models trained on (the same clusters as ``clean``, e.g. the
    Planck mocks); bin k (1-based, (lo, hi] of ``z_edges``) trained on :func:`szmass.splits.training_maps`
    (its maps with M500 >= ``m500_cuts[k - 1]`` [Msun] when cuts are given) and held out the cluster
    identities :func:`szmass.splits.test_identities` draws with ``test_seeds[k - 1]``, the same for every
    run of the bin. A clean map of bin k is True when its identity is one of those: every run of bin k
    (any seed; their validation draws differ but never reach the test set) saw it only as a test cluster.
    The same halo at another bin's redshift may have trained that bin's models, which never see the
    sky's clusters of bin k.
    """
    e = check_edges(z_edges)
    n_bins = len(e) - 1
    if len(test_seeds) != n_bins or (m500_cuts is not None and len(m500_cuts) != n_bins):
        raise ValueError(f"unseen_maps: need one test seed (and one mass cut, if any) per redshift bin: {n_bins} "
                         f"for edges {list(e)}, got {len(test_seeds)} seeds and "
                         f"{'no' if m500_cuts is None else len(m500_cuts)} cuts")
    ids = cluster_identity(clean, identity)
    z = np.asarray(clean["redshift"].values, dtype=np.float64)
    eligible = np.zeros(clean.sizes["map"], dtype=bool)
    for k in range(1, n_bins + 1):
        maps = training_maps(trained, k, e, None if m500_cuts is None else float(m500_cuts[k - 1]))
        if maps.sizes["map"] == 0:
            continue
        held_out = test_identities(cluster_identity(maps, identity), test_seed=int(test_seeds[k - 1]), fractions=fractions)
        eligible |= (z > e[k - 1]) & (z <= e[k]) & np.isin(ids, held_out)
    return eligible


def match_halos(
    psz2: pd.DataFrame,
    clean: xr.Dataset,
    *,
    eligible: ArrayLike,
    seed: int | np.random.SeedSequence,
    hydrostatic_bias: float = 0.8,
    z_edges: tuple[float, ...] = REDSHIFT_EDGES,
) -> pd.DataFrame:
    """The injected truth (:data:`TRUTH_COLUMNS`): one clean map per PSZ2 cluster with REDSHIFT > 0.

    Only maps where ``eligible`` (bool per map of ``clean``, e.g. :func:`unseen_maps`) is True are
    injected. Matching as in the module docstring: of the eligible maps in the cluster's bin (lo, hi] of
    ``z_edges``, the snapshot redshift nearest to the cluster's, then the halo nearest in log10 M500 to
    MSZ / ``hydrostatic_bias`` [Msun] (ties: the first in store order), then one of its eligible maps
    (lines of sight) drawn with ``seed``. ValueError naming the bin when a cluster's bin has no eligible map.
    """
    missing = [c for c in ("NAME", "GLON", "GLAT", "REDSHIFT", "MSZ") if c not in psz2.columns]
    if missing:
        raise ValueError(f"PSZ2 table: column(s) {missing} missing")
    if not 0 < hydrostatic_bias <= 1:
        raise ValueError(f"hydrostatic_bias (1 - b) must lie in (0, 1], got {hydrostatic_bias!r}")
    coords = {k: clean[k].values for k in ("sim", "region", "snapshot", "halo_id", "projection", "redshift", "M500", "R500")}
    if clean.sizes["map"] == 0:
        raise ValueError("clean map store: no maps to inject")
    ok = np.asarray(eligible)
    if ok.dtype != bool or ok.shape != (clean.sizes["map"],):
        raise ValueError(f"eligible must be one bool per map of the clean store ({clean.sizes['map']}), "
                         f"got dtype {ok.dtype} and shape {ok.shape}")
    rows = psz2[psz2["REDSHIFT"] > 0].reset_index(drop=True)
    if np.any(~(rows["MSZ"].to_numpy(float) > 0)):
        raise ValueError("PSZ2 table: MSZ must be > 0 Msun for every cluster with a redshift")
    edges = np.asarray(z_edges, dtype=np.float64)
    snap_z = np.unique(coords["redshift"][ok])
    snap_bin = np.searchsorted(edges, snap_z, side="left")
    halo, _ = pd.MultiIndex.from_arrays([coords["sim"].astype(object), coords["region"], coords["halo_id"]]).factorize()
    at_z = {z: np.flatnonzero((coords["redshift"] == z) & ok) for z in snap_z}
    log_m = np.log10(coords["M500"])
    rng = np.random.default_rng(seed)
    chosen = np.empty(len(rows), dtype=np.int64)
    for i, (name, z, msz) in enumerate(zip(rows["NAME"], rows["REDSHIFT"].to_numpy(float), rows["MSZ"].to_numpy(float))):
        zbin = int(np.searchsorted(edges, z, side="left"))
        candidates = snap_z[snap_bin == zbin]
        if candidates.size == 0:
            raise ValueError(f"PSZ2 cluster {name} (z = {z:g}): no eligible (held-out) map in redshift bin {zbin} "
                             f"of edges {list(edges)}")
        maps = at_z[candidates[np.argmin(np.abs(candidates - z))]]
        nearest = maps[np.argmin(np.abs(log_m[maps] - np.log10(msz / hydrostatic_bias)))]
        chosen[i] = rng.choice(maps[halo[maps] == halo[nearest]])
    truth = rows[["NAME", "GLON", "GLAT", "REDSHIFT", "MSZ"]].copy()
    truth["M500"] = coords["M500"][chosen]
    truth["R500"] = coords["R500"][chosen]
    truth["map_index"] = chosen
    for k in ("sim", "region", "snapshot", "halo_id", "projection"):
        truth[k] = coords[k][chosen]
    truth["redshift_sim"] = coords["redshift"][chosen]
    return truth[TRUTH_COLUMNS]


def synthetic_sky(
    psz2: pd.DataFrame,
    clean: xr.Dataset,
    *,
    eligible: ArrayLike,
    nside: int,
    seed: int,
    hydrostatic_bias: float = 0.8,
    reso_arcmin: float = 1.7,
    z_edges: tuple[float, ...] = REDSHIFT_EDGES,
    galactic_cut_deg: float = 10.0,
    point_source_density_deg2: float = 1.0,
    point_source_radius_arcmin: float = 5.0,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(sky_map, mask_map, truth): a synthetic full-sky y-map with clusters injected at PSZ2 positions.

    ``sky_map`` (RING, float64, Compton y) is the noise realisation plus the matched clean maps
    (:func:`match_halos` among the ``eligible`` maps, pixels of ``reso_arcmin`` [arcmin]) painted at each
    cluster's (GLON, GLAT);
    ``mask_map`` is :func:`synthetic_mask` (float32, 1 = valid); ``truth`` is the injected truth per
    cluster with a redshift. The seeds of the noise, the mask and the matching derive from ``seed``.
    """
    noise_seed, mask_seed, match_seed = np.random.SeedSequence(seed).spawn(3)
    truth = match_halos(psz2, clean, eligible=eligible, seed=match_seed, hydrostatic_bias=hydrostatic_bias,
                        z_edges=z_edges)
    sky = noise.realise(noise.default_noise_model(nside), noise_seed)
    used = np.unique(truth["map_index"].to_numpy())
    images = clean["y"].isel(map=used).values
    injected = zip(truth["GLON"], truth["GLAT"], np.searchsorted(used, truth["map_index"].to_numpy()))
    for glon, glat, k in progress(injected, total=len(truth), desc="synthetic sky, clusters injected"):
        healpix.paint(sky, glon, glat, images[k], reso_arcmin=reso_arcmin)
    mask = synthetic_mask(nside, seed=mask_seed, galactic_cut_deg=galactic_cut_deg,
                          point_source_density_deg2=point_source_density_deg2,
                          point_source_radius_arcmin=point_source_radius_arcmin)
    return sky, mask, truth
