"""Splits by cluster identity, redshift bins of a map store, derived seeds (szmass.splits)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from szmass import splits
from szmass.splits import (
    bin_test_seed,
    check_trainable,
    cluster_identity,
    read_mass_cuts,
    run_seed,
    select_redshift_bin,
    split_maps,
    training_maps,
)
from szmass.synthsky import unseen_maps
from szmass.train import split_given_test


def store(
    n_regions: int = 5, halos_per_region: int = 4, snapshots: tuple[float, ...] = (0.05, 0.15, 0.3), n_proj: int = 3
) -> xr.Dataset:
    """A map-store-like Dataset: every halo at every snapshot along n_proj lines of sight (maps are zeros)."""
    rows = [
        (r, s, h, p, z)
        for r in range(1, n_regions + 1)
        for s, z in enumerate(snapshots)
        for h in range(halos_per_region)
        for p in range(n_proj)
    ]
    region, snapshot, halo, proj, z = (np.array(c) for c in zip(*rows, strict=True))
    coords = {"sim": ("map", np.full(len(rows), "synth")), "region": ("map", region), "snapshot": ("map", snapshot),
              "halo_id": ("map", 100 + halo), "projection": ("map", proj), "redshift": ("map", z)}  # fmt: skip
    return xr.Dataset({"y": (("map", "py", "px"), np.zeros((len(rows), 4, 4), np.float32))}, coords=coords)


def test_identity_keys() -> None:
    ds = store()
    halo = cluster_identity(ds, "halo")
    region = cluster_identity(ds, "region")
    assert halo[0] == "synth/1/100" and region[0] == "synth/1"
    assert len(np.unique(halo)) == 5 * 4  # halo_id is stable across the snapshots of a region
    assert len(np.unique(region)) == 5
    with pytest.raises(ValueError, match="identity key"):
        cluster_identity(ds, "snapshot")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="halo_id"):
        cluster_identity(ds.drop_vars("halo_id"), "halo")


def test_split_keeps_each_identity_in_one_split_with_80_10_10_counts() -> None:
    ids = np.repeat([f"c{i:03d}" for i in range(200)], np.arange(200) % 7 + 1)  # 1 to 7 maps per cluster
    labels = split_maps(ids, test_seed=5, seed=9)
    per_id = pd.Series(labels).groupby(ids).nunique()
    assert (per_id == 1).all()
    first = pd.Series(labels).groupby(ids).first()
    assert first.value_counts().to_dict() == {"train": 160, "val": 20, "test": 20}


def test_test_set_fixed_across_seeds_and_train_val_redrawn() -> None:
    ids = np.repeat(np.arange(50), 3)
    a = split_maps(ids, test_seed=1, seed=10)
    b = split_maps(ids, test_seed=1, seed=11)
    assert np.array_equal(a == "test", b == "test")
    assert not np.array_equal(a, b)
    assert np.array_equal(a, split_maps(ids, test_seed=1, seed=10))  # reproducible
    assert not np.array_equal(a == "test", split_maps(ids, test_seed=2, seed=10) == "test")


def test_test_membership_is_uniform_over_identities() -> None:
    # 2 of 20 identities go to test: over 400 test seeds each is drawn ~40 times (binomial sd 6)
    ids = np.arange(20)
    hits = sum((split_maps(ids, test_seed=s, seed=0) == "test").astype(int) for s in range(400))
    assert hits.sum() == 800
    assert np.all(np.abs(hits - 40) < 5 * 6)


def test_small_and_bad_inputs() -> None:
    assert sorted(split_maps(np.array([3, 1, 2]), test_seed=0, seed=0)) == ["test", "train", "val"]
    with pytest.raises(ValueError, match="need >= 3"):
        split_maps(np.array([1, 1, 2]), test_seed=0, seed=0)
    with pytest.raises(ValueError, match="fractions"):
        split_maps(np.arange(10), test_seed=0, seed=0, fractions=(0.8, 0.1, 0.2))


def test_redshift_bins_select_by_upper_closed_edges_and_keep_store_index() -> None:
    ds = store(snapshots=(0.05, 0.1, 0.15, 0.4, 0.7))
    z = ds["redshift"].values
    bins = {n: select_redshift_bin(ds, n) for n in (1, 2, 3, 4)}
    assert sum(b.sizes["map"] for b in bins.values()) == ds.sizes["map"]
    assert set(bins[1]["redshift"].values) == {0.05, 0.1}  # bin 1 is (0, 0.1]
    assert set(bins[3]["redshift"].values) == {0.4}
    assert np.array_equal(bins[2]["map"].values, np.flatnonzero(z == 0.15))
    nested = select_redshift_bin(bins[4], 1, edges=(0.5, 1.0))  # an existing map index is kept
    assert np.array_equal(nested["map"].values, np.flatnonzero(z == 0.7))
    with pytest.raises(ValueError, match="bin 5"):
        select_redshift_bin(ds, 5)



def test_seeds_are_those_the_workflow_has_always_derived() -> None:
    # the values of derive_seed(42, "run" | "test", bin, seed) with the wildcards' strings, pinned so that a
    # refactoring cannot change the runs' splits and initial weights
    assert [bin_test_seed(42, 1), bin_test_seed(42, 2)] == [1996391370, 379027791]
    assert [run_seed(42, 1, 0), run_seed(42, 1, 1), run_seed(42, 2, 0), run_seed(42, 2, 1)] == [
        1614026099, 11039068, 1953553253, 15571247]  # fmt: skip
    assert run_seed(42, "1", "0") == run_seed(42, 1, 0)  # type: ignore[arg-type]  (Snakemake wildcards are strings)
    assert run_seed(43, 1, 0) != run_seed(42, 1, 0)


def with_masses(ds: xr.Dataset) -> xr.Dataset:
    m500 = 10.0 ** np.linspace(13.5, 15.0, ds.sizes["map"])
    return ds.assign_coords(M500=("map", np.random.default_rng(3).permutation(m500)))


def test_test_identities_and_mass_cut_select_as_the_training_job_did() -> None:
    ds = with_masses(store(n_regions=8))
    ids = cluster_identity(ds)
    held_out = splits.test_identities(ids, test_seed=4)
    assert np.array_equal(held_out, np.unique(ids[split_maps(ids, test_seed=4, seed=123) == "test"]))
    cut = 10.0**14.2
    kept = training_maps(ds, 2, m500_cut=cut)
    in_bin = select_redshift_bin(ds, 2)
    expected = in_bin.isel(map=in_bin["M500"].values >= cut)  # the boolean mask of the former training job
    assert np.array_equal(kept["map"].values, expected["map"].values) and kept.sizes["map"] > 0
    assert np.all(kept["M500"].values >= cut) and np.all(np.asarray(kept["redshift"]) == 0.15)


def test_mass_cut_table_and_trainable_checks(tmp_path) -> None:
    path = tmp_path / "mass_cuts.csv"
    pd.DataFrame({"bin": [1, 2], "z_lo": [0.0, 0.1], "M500_cut": [2.5e14, 3.1e14]}).to_csv(path, index=False)
    assert read_mass_cuts(path) == {1: 2.5e14, 2: 3.1e14}
    pd.DataFrame({"bin": [1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"mass_cuts.csv: column\(s\) \['M500_cut'\] missing"):
        read_mass_cuts(path)
    ds = with_masses(store())
    edges = (0.0, 0.1, 0.2, 0.4)
    check_trainable(training_maps(ds, 2, edges), 2, edges, "halo", store="maps.zarr")  # 20 clusters: fine
    with pytest.raises(ValueError, match=r"maps.zarr: no maps in redshift bin 3 \(0.2, 0.25\]"):
        empty = (0.0, 0.1, 0.2, 0.25, 0.4)
        check_trainable(training_maps(ds, 3, empty), 3, empty, "halo", store="maps.zarr")
    cut = float(np.sort(ds["M500"].values)[-30])  # the 30 most massive maps of all redshifts: < 10 clusters in bin 2
    few = training_maps(ds, 2, edges, cut)
    assert np.unique(cluster_identity(few)).size < 10
    with pytest.raises(ValueError, match=r"cuts.csv: the mass cut of redshift bin 2 .* fewer than 10 clusters"):
        check_trainable(few, 2, edges, "halo", store="maps.zarr", m500_cut=cut, cuts="cuts.csv")


def test_a_margin_below_the_cut_trains_on_more_clusters_and_tests_the_same_maps() -> None:
    ds = with_masses(store(n_regions=12))  # masses per map: a cluster's lines of sight straddle the cut
    edges, cut, margin = (0.0, 0.1, 0.2, 0.4), 10.0**14.4, 0.3
    above = training_maps(ds, 2, edges, cut)
    no_margin = split_maps(cluster_identity(above), test_seed=5, seed=9, fractions=(0.6, 0.2, 0.2))
    maps, held_out = splits.training_maps_with_margin(ds, 2, edges, cut, margin_dex=margin, identity="halo",
                                                      test_seed=5, fractions=(0.6, 0.2, 0.2))  # fmt: skip
    labels = split_given_test(cluster_identity(maps), held_out, seed=9, fractions=(0.6, 0.2, 0.2))
    # the same test maps as without the margin, all above the cut
    tested = np.sort(maps["map"].values[labels == "test"])
    assert np.array_equal(tested, np.sort(above["map"].values[no_margin == "test"]))
    m500 = maps["M500"].values
    assert np.all(m500 >= cut * 10**-margin) and np.all(m500[labels == "test"] >= cut)
    below = m500 < cut
    assert below.sum() > 20 and np.all(labels[below] != "test")  # the margin's maps train and validate only
    assert {"train", "val"} <= set(labels[below])
    seen = np.unique(cluster_identity(maps)[labels != "test"])
    eligible = unseen_maps(ds, ds, z_edges=edges, test_seeds=[1, 5, 2], m500_cuts=[cut] * 3, fractions=(0.6, 0.2, 0.2))
    in_bin = np.asarray(ds["redshift"].values) == 0.15
    assert eligible[in_bin].sum() > 0 and not np.isin(cluster_identity(ds)[in_bin & eligible], seen).any()
    # no margin: the maps and the split of the run without it
    same, ids = splits.training_maps_with_margin(ds, 2, edges, cut, margin_dex=0.0, identity="halo", test_seed=5,
                                                 fractions=(0.6, 0.2, 0.2))  # fmt: skip
    assert np.array_equal(same["map"].values, above["map"].values)
    assert np.array_equal(split_given_test(cluster_identity(same), ids, seed=9, fractions=(0.6, 0.2, 0.2)), no_margin)
    with pytest.raises(ValueError, match=r"mass_cut_margin_dex must be >= 0 dex, got -0.1"):
        splits.training_maps_with_margin(ds, 2, edges, cut, margin_dex=-0.1, identity="halo", test_seed=5)
