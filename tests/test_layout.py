"""Paths, regions, snapshots and seeds of configured simulations."""

import hashlib

import pytest

from szmass import layout

SYNTH = {"source": "synthetic", "format": "gadget2", "regions": 3, "snapshots": {"117": 0.278, "124": 0.093}}
FILES = {
    "source": "files", "regions": [5, 7], "snapshots": {"124": 0.093},
    "snapshot_path": "/data/NewMDCLUSTER_{region:04d}/snap_{snapshot:03d}",
    "ahf_path": "/data/AHF/GadgetX-NewMDCLUSTER_{region:04d}.snap_{snapshot:03d}.z{redshift:.3f}.AHF_halos",
}


def test_regions_and_snapshots():
    assert layout.regions(SYNTH) == [1, 2, 3]
    assert layout.regions(FILES) == [5, 7]
    assert layout.snapshots(SYNTH) == {117: 0.278, 124: 0.093}


def test_paths_follow_the300_layout():
    assert layout.snapshot_path("s", SYNTH, 2, 117) == "resources/sims/s/NewMDCLUSTER_0002/snap_117"
    assert layout.snapshot_path("s", dict(SYNTH, format="hdf5"), 2, 117).endswith("snap_117.hdf5")
    assert layout.ahf_path("g", FILES, 7, 124) == "/data/AHF/GadgetX-NewMDCLUSTER_0007.snap_124.z0.093.AHF_halos"


def test_derive_seeds_are_stable_and_distinct():
    seeds = {layout.derive_seed(1, "s", r) for r in range(100)}
    assert len(seeds) == 100
    assert layout.derive_seed(1, "s", 5) == layout.derive_seed(1, "s", 5)
    assert layout.derive_seed(1, "s", 5) != layout.derive_seed(2, "s", 5)
    assert 0 <= layout.derive_seed(1, "s", 5) < 2**31


@pytest.mark.parametrize("fmt", ["hdf5", "gadget1", "gadget2"])
def test_snapshot_pattern_matches_path(fmt):
    pattern = layout.synthetic_snapshot_pattern(fmt)
    path = pattern.format(sim="s", region="0001", snapshot="124")
    assert path == layout.snapshot_path("s", dict(SYNTH, format=fmt), 1, 124)


def test_derive_seed_is_the_documented_hash():
    expected = int.from_bytes(hashlib.sha256(b"7/test/2").digest()[:8], "little") % layout.SEED_BOUND
    assert layout.derive_seed(7, "test", 2) == expected


def test_snapshot_chunks_cover_the_snapshots_in_order():
    """One job per region by default; with snapshots_per_job, consecutive chunks of it, the last one shorter."""
    snaps = {str(s): 0.01 * (130 - s) for s in (121, 99, 110, 127, 100)}
    cfg = dict(SYNTH, snapshots=snaps)
    assert layout.snapshot_chunks(cfg) == [[99, 100, 110, 121, 127]]
    assert layout.snapshot_chunks(dict(cfg, snapshots_per_job=2)) == [[99, 100], [110, 121], [127]]
    assert layout.snapshot_chunks(dict(cfg, snapshots_per_job=9)) == [[99, 100, 110, 121, 127]]
    for n in range(1, 7):
        chunks = layout.snapshot_chunks(dict(cfg, snapshots_per_job=n))
        assert [s for c in chunks for s in c] == sorted(map(int, snaps)) and max(map(len, chunks)) == min(n, 5)
    with pytest.raises(ValueError, match="snapshots_per_job"):
        layout.snapshot_chunks(dict(cfg, snapshots_per_job=0))
