"""The synthetic sky (szmass.synthsky): injected clusters, synthetic masks; and the sky's cutout store
(szmass.planck.sky_cutouts) of the synthetic and of a real-like sky."""


import healpy as hp
import numpy as np
import pandas as pd
import pytest
from test_mocks import toy_clean_store

from szmass import healpix
from szmass.planck import centre_distance_arcmin, golden_flags, read_psz2, sky_cutouts
from szmass.splits import cluster_identity, split_maps, training_maps
from szmass.synthsky import TRUTH_COLUMNS, match_halos, synthetic_mask, synthetic_sky, unseen_maps

from reference_data import PSZ2_FILE  # noqa: E402
SNAPSHOT_Z = (0.093, 0.168, 0.278, 0.499)
CUTOUT = {"npix": 96, "reso_arcmin": 1.7, "golden_radius_arcmin": 10.0}
"""The paper's cutouts: 96 x 96 pixels of 1.7 arcmin, Golden within 10 arcmin."""


@pytest.fixture(scope="module")
def clean():
    """12 halos from 1e14 to 3e15 Msun at each of four snapshot redshifts, two lines of sight each."""
    m = np.tile(np.logspace(14.0, 15.5, 12), len(SNAPSHOT_Z))
    return toy_clean_store(m, np.repeat(SNAPSHOT_Z, 12), projections=2, seed=3)


def grid_catalogue():
    """Twelve clusters at least 10 deg apart (so their 163' maps do not overlap), with PSZ2-like fields."""
    lon = np.arange(12) * 30.0 + 5.0
    lat = np.where(np.arange(12) % 2 == 0, 35.0, -50.0)
    return pd.DataFrame({
        "NAME": [f"G{i:02d}" for i in range(12)], "GLON": lon, "GLAT": lat,
        "REDSHIFT": np.resize([0.06, 0.15, 0.3, 0.55], 12), "MSZ": np.logspace(14.3, 15.0, 12),
    })


def test_synthetic_mask_area_and_seed():
    nside = 512
    mask = synthetic_mask(nside, seed=1)
    band = np.sin(np.radians(10.0))  # sky fraction of |b| < 10 deg
    discs = 1.0 - np.exp(-1.0 * np.pi * (5.0 / 60.0) ** 2)  # Poisson discs of 5' at 1 per deg^2
    assert 1.0 - mask.mean() == pytest.approx(band + (1.0 - band) * discs, abs=0.002)
    lat = hp.pix2ang(nside, np.arange(mask.size), lonlat=True)[1]
    assert np.all(mask[np.abs(lat) < 9.9] == 0.0)
    np.testing.assert_array_equal(mask, synthetic_mask(nside, seed=1))
    assert not np.array_equal(mask, synthetic_mask(nside, seed=2))


def everything(ds):
    """Every map of ``ds`` eligible for injection (tests where leakage does not matter)."""
    return np.ones(ds.sizes["map"], dtype=bool)


def test_match_halos_known_answers():
    # snapshots z = 0.093 (bin 1), 0.12 (bin 2), 0.3 (bin 3); halos of 2e14, 5e14, 1e15 Msun at each
    clean = toy_clean_store(np.tile([2e14, 5e14, 1e15], 3), np.repeat([0.093, 0.12, 0.3], 3), projections=4)
    cat = pd.DataFrame({
        "NAME": ["A", "B", "C"], "GLON": [10.0, 20.0, 30.0], "GLAT": [40.0, 50.0, 60.0],
        "REDSHIFT": [0.105, 0.35, -1.0], "MSZ": [0.8 * 5.5e14, 0.8 * 1.2e15, 3e14],
    })
    truth = match_halos(cat, clean, eligible=everything(clean), seed=0)
    assert list(truth.columns) == TRUTH_COLUMNS
    assert list(truth["NAME"]) == ["A", "B"]  # C has no redshift
    # A: z = 0.105 is nearer 0.093, but 0.12 is in its bin (0.1, 0.2]; MSZ / 0.8 = 5.5e14 -> the 5e14 halo
    # B: z = 0.35 -> the snapshot of its bin (0.2, 0.4], 0.3; MSZ / 0.8 = 1.2e15 -> the 1e15 halo
    np.testing.assert_allclose(truth["redshift_sim"], [0.12, 0.3])
    np.testing.assert_allclose(truth["M500"], [5e14, 1e15])
    for row in truth.itertuples():
        assert clean["M500"].values[row.map_index] == row.M500
        assert clean["projection"].values[row.map_index] == row.projection
    projections = {int(match_halos(cat, clean, eligible=everything(clean), seed=s)["projection"].iloc[0])
                   for s in range(20)}
    assert len(projections) > 1  # the line of sight is drawn at random
    assert match_halos(cat, clean, eligible=everything(clean), seed=5).equals(
        match_halos(cat, clean, eligible=everything(clean), seed=5))
    # only eligible maps are injected: without the 5e14 halo of bin 2, A (5.5e14) gets the nearer 1e15 halo
    eligible = ~((clean["M500"].values == 5e14) & (clean["redshift"].values == 0.12))
    assert match_halos(cat, clean, eligible=eligible, seed=0)["M500"].iloc[0] == 1e15
    # a cluster whose bin holds no eligible map is an error naming it and the bin, not a halo from another bin
    far = cat.assign(REDSHIFT=[0.105, 0.7, -1.0])
    with pytest.raises(ValueError, match=r"PSZ2 cluster B \(z = 0.7\): no eligible \(held-out\) map in redshift bin 4"):
        match_halos(far, clean, eligible=everything(clean), seed=0)
    with pytest.raises(ValueError, match="eligible must be one bool per map of the clean store"):
        match_halos(cat, clean, eligible=np.ones(3, bool), seed=0)


def shared_identity_store(n_halos=30):
    """``n_halos`` halos seen at each of the four snapshot redshifts (the same identity at every redshift, as
    the generator's halos), masses 1e14-3e15 Msun, two lines of sight each."""
    m = np.tile(np.logspace(14.0, 15.5, n_halos), len(SNAPSHOT_Z))
    store = toy_clean_store(m, np.repeat(SNAPSHOT_Z, n_halos), projections=2, seed=5)
    halo = store["halo_id"].values % n_halos
    return store.assign_coords(halo_id=("map", halo), region=("map", halo + 1))


@pytest.mark.parametrize("cuts", [None, (2e14, 3e14, 1e14, 5e14)])
def test_injected_halos_are_disjoint_from_every_training_and_validation_cluster(cuts):
    """Every eligible map's cluster is held out (test) by the models of its bin, whatever the run's seed; and
    a sky built from the eligible maps injects only them."""
    store = shared_identity_store()
    edges = (0.0, 0.1, 0.2, 0.4, 1.0)
    test_seeds = (11, 12, 13, 14)
    eligible = unseen_maps(store, store, z_edges=edges, test_seeds=test_seeds, m500_cuts=cuts)
    ids = cluster_identity(store)
    z = store["redshift"].values
    for k in range(1, 5):
        maps = training_maps(store, k, edges, None if cuts is None else cuts[k - 1])
        in_bin = (z > edges[k - 1]) & (z <= edges[k])
        for seed in range(5):  # the runs of a bin differ in their train / val draws, never in the test set
            labels = split_maps(cluster_identity(maps), test_seed=test_seeds[k - 1], seed=seed)
            seen = set(cluster_identity(maps)[labels != "test"])
            assert seen and not seen & set(ids[eligible & in_bin])
        held_out = set(cluster_identity(maps)[labels == "test"])
        assert set(ids[eligible & in_bin]) == held_out  # every held-out cluster of the bin can be injected
        assert len(held_out) == round(0.1 * len(set(cluster_identity(maps))))
    cat = grid_catalogue()
    truth = match_halos(cat, store, eligible=eligible, seed=3)
    assert eligible[truth["map_index"].to_numpy()].all()
    with pytest.raises(ValueError, match="need one test seed"):
        unseen_maps(store, store, z_edges=edges, test_seeds=test_seeds[:3])


def test_synthetic_sky_is_reproducible(clean):
    cat = grid_catalogue()
    sky, mask, truth = synthetic_sky(cat, clean, eligible=everything(clean), nside=128, seed=9)
    sky2, mask2, truth2 = synthetic_sky(cat, clean, eligible=everything(clean), nside=128, seed=9)
    np.testing.assert_array_equal(sky, sky2)
    np.testing.assert_array_equal(mask, mask2)
    pd.testing.assert_frame_equal(truth, truth2)
    assert not np.array_equal(sky, synthetic_sky(cat, clean, eligible=everything(clean), nside=128, seed=10)[0])


def test_injected_clusters_are_recovered_by_the_cutouts(clean):
    """Cutout of the sky minus that of the same sky without clusters = the injected clean map, to the
    interpolation error of painting (bilinear at HEALPix centres) then cutting out (nearest HEALPix pixel).
    Measured at Nside 1024 (3.4' pixels): the integrated y of the 96 x 96 field agrees to 0.7 % rms, at
    worst 1.5 %, for these clusters (1.4 % rms, 6 % at worst over random positions and masses); bounds
    here 3 % rms and 8 %."""
    cat = grid_catalogue()
    nside = 1024
    sky, _, truth = synthetic_sky(cat, clean, eligible=everything(clean), nside=nside, seed=2)
    empty = clean.copy(data={"y": np.zeros_like(clean["y"].values)})
    noise_only, _, truth_empty = synthetic_sky(cat, empty, eligible=everything(empty), nside=nside, seed=2)
    pd.testing.assert_frame_equal(truth, truth_empty)  # matching uses the coordinates only
    lon, lat = truth["GLON"].to_numpy(), truth["GLAT"].to_numpy()
    recovered = healpix.cutouts(sky, lon, lat) - healpix.cutouts(noise_only, lon, lat)
    injected = clean["y"].values[truth["map_index"].to_numpy()].astype(np.float64)
    ratio = recovered.sum(axis=(1, 2)) / injected.sum(axis=(1, 2))
    assert np.sqrt(np.mean((ratio - 1.0) ** 2)) < 0.03
    assert np.max(np.abs(ratio - 1.0)) < 0.08
    # the recovered cluster sits at the centre of its cutout
    inner = centre_distance_arcmin(96, 1.7) < 10.0
    assert np.all(recovered[:, inner].mean(axis=1) > 0.8 * injected[:, inner].mean(axis=1))


@pytest.mark.skipif(not PSZ2_FILE.is_file(), reason=f"reference PSZ2 catalogue not found at {PSZ2_FILE}")
def test_sky_cutout_store_of_the_synthetic_psz2_sky(clean):
    psz2 = read_psz2(PSZ2_FILE)
    sky, mask, truth = synthetic_sky(psz2, clean, eligible=everything(clean), nside=512, seed=4)
    assert len(truth) == 1094
    ds = sky_cutouts(sky, mask, psz2, seed=1, truth=truth, **CUTOUT)
    assert ds["y"].dtype == np.float32 and ds["y"].shape == (1094, 96, 96)
    assert np.all(np.isfinite(ds["y"].values))
    assert list(ds["name"].values) == list(psz2["NAME"])
    np.testing.assert_array_equal(ds["M500"].values, truth["M500"].to_numpy())
    np.testing.assert_allclose(ds["MSZ"].values, psz2["MSZ"].to_numpy())
    lon, lat = psz2["GLON"].to_numpy(), psz2["GLAT"].to_numpy()
    mask_cut = healpix.cutouts(mask, lon, lat)
    np.testing.assert_array_equal(ds["golden"].values, golden_flags(mask_cut))
    assert 0.70 < ds["golden"].values.mean() < 0.90  # ~20 % non-Golden by design (module docstring)
    # unmasked pixels and masked pixels inside the Golden radius keep the sky's values
    sky_cut = healpix.cutouts(sky, lon, lat).astype(np.float32)
    kept = (mask_cut == 1.0) | (centre_distance_arcmin(96, 1.7) <= 10.0)
    np.testing.assert_array_equal(ds["y"].values[kept], sky_cut[kept])
    assert np.all(ds["n_masked"].values == (mask_cut == 0).sum(axis=(1, 2)))
    # the filled pixels carry noise of the local level
    filled = ~kept
    assert filled.sum() > 10000
    ratio = np.std(ds["y"].values[filled]) / np.std(sky_cut[mask_cut == 1.0])
    assert 0.5 < ratio < 1.5


def test_sky_cutouts_of_a_real_sky_without_truth_and_with_unseen_pixels():
    nside = 256
    cat = grid_catalogue()
    rng = np.random.default_rng(0)
    sky = rng.normal(0.0, 1e-6, hp.nside2npix(nside))
    pix = hp.ang2pix(nside, cat["GLON"].iloc[0], cat["GLAT"].iloc[0], lonlat=True)
    sky[pix] = np.nan  # an UNSEEN pixel at the first cluster
    mask = np.ones(hp.nside2npix(nside), dtype=np.float32)
    ds = sky_cutouts(sky, mask, cat, seed=0, **CUTOUT)
    assert np.all(np.isnan(ds["M500"].values))
    assert np.all(np.isfinite(ds["y"].values))
    np.testing.assert_array_equal(ds["golden"].values, np.arange(12) > 0)
