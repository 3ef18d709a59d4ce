"""The data of Supplementary Figures 1 and 2 (szmass.supplementary.map_catalogue, psz2_sample, example_pairs)."""

import numpy as np
import pytest
import xarray as xr

from szmass.supplementary import example_pairs, map_catalogue, psz2_sample


def store() -> xr.Dataset:
    """Eight maps: halo a (two projections) and b, c, g at low redshift, d, e, f near z = 0.5."""
    z = [0.05, 0.05, 0.08, 0.03, 0.5, 0.45, 0.52, 0.05]
    log_m = [14.9, 14.9, 14.7, 14.2, 14.5, 15.02, 15.3, 14.8]
    halo_id = [1, 1, 2, 3, 4, 5, 6, 7]
    coords = {"sim": ("map", ["synth"] * 8), "region": ("map", [1] * 8), "snapshot": ("map", [0] * 8),
              "halo_id": ("map", halo_id), "redshift": ("map", z), "M500": ("map", 10.0 ** np.array(log_m))}
    return xr.Dataset({"y": (("map", "py", "px"), np.zeros((8, 4, 4), np.float32))}, coords=coords)


def sky() -> xr.Dataset:
    msz = np.array([0.8e15, 0.0, 0.8 * 10**14.83, 0.8e14, 0.8 * 10**14.95])  # cluster 1 has no M_SZ
    return xr.Dataset(coords={"MSZ": ("cluster", msz), "redshift": ("cluster", [0.5, 0.05, 0.06, 0.2, 0.04])})


def test_map_catalogue_and_psz2_sample() -> None:
    maps = map_catalogue(store())
    assert list(maps.columns) == ["sim", "region", "snapshot", "halo_id", "redshift", "M500", "log10_M", "halo"]
    np.testing.assert_allclose(maps["log10_M"], [14.9, 14.9, 14.7, 14.2, 14.5, 15.02, 15.3, 14.8], rtol=0, atol=1e-12)
    assert maps["halo"].tolist()[:3] == ["synth/1/0/1", "synth/1/0/1", "synth/1/0/2"]
    assert maps.drop_duplicates(subset="halo").shape[0] == 7
    psz2 = psz2_sample(sky(), 0.8)
    assert psz2["cluster"].tolist() == [0, 2, 3, 4]
    np.testing.assert_allclose(psz2["log10_M"], [15.0, 14.83, 14.0, 14.95], rtol=0, atol=1e-12)  # M_SZ / 0.8
    with pytest.raises(ValueError, match=r"map store: coordinate\(s\) \['M500'\] missing"):
        map_catalogue(store().drop_vars("M500"))


def test_example_pairs_match_maps_to_the_nearest_psz2_clusters() -> None:
    pairs = example_pairs(map_catalogue(store()), psz2_sample(sky(), 0.8))
    # maps a (14.9, z 0.05) and g (14.8, z 0.05) -> clusters 4 (14.95, z 0.04) and 2 (14.83, z 0.06);
    # map d (the redshift nearest 0.5) -> the cluster nearest (15.0, z 0.5): cluster 0
    assert pairs == [(0, 4), (7, 2), (4, 0)]
