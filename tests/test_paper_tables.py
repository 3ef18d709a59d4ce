"""Supplementary Table 2 and the moments over the paper's samples (szmass.paper_tables)."""

import numpy as np
import pandas as pd
import pytest

from szmass.evaluate import bias_table
from szmass.paper_tables import bias_and_moments, bias_samples, ensemble_comparison, unseen_clusters


def predictions_table(n: int = 40, offset: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    true = rng.uniform(14.0, 15.2, n)
    return pd.DataFrame({"map": np.arange(100, 100 + n), "zbin": 1 + np.arange(n) % 2, "log10_M_true": true,
                         "log10_M_cnn": true + offset + rng.normal(0, 0.05, n)})  # fmt: skip


def sky_and_truth(n: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    true = rng.uniform(14.0, 15.0, n)
    msz = np.where(np.arange(n) % 10 == 0, np.nan, true - 0.1 + rng.normal(0, 0.05, n))  # 3 without an M_SZ
    sky = pd.DataFrame({"name": [f"PSZ2 G{i:03d}" for i in range(n)], "zbin": 1 + np.arange(n) % 2,
                        "log10_M_cnn": true + rng.normal(0.02, 0.05, n), "log10_MSZ": msz, "log10_M_true": true,
                        "golden": np.arange(n) < 8})  # fmt: skip
    truth = pd.DataFrame({"NAME": sky["name"][::-1], "map_index": np.arange(100, 100 + n)[::-1] * 2})  # shuffled order
    return sky, truth


def test_samples_and_unseen_clusters() -> None:
    tests = {"clean": predictions_table(), "planck": predictions_table(offset=-0.03)}
    sky, truth = sky_and_truth()
    # cluster i was injected from map 2 * (100 + i); the planck test maps are 100..139, so i = 0..19 are unseen
    unseen = unseen_clusters(sky, truth, tests["planck"]["map"].to_numpy())
    assert unseen["name"].tolist() == [f"PSZ2 G{i:03d}" for i in range(0, 20) if 2 * (100 + i) < 140]
    samples = bias_samples(tests, sky, truth=truth, sky_dataset="planck")
    assert [(s.name, s.statistic, s.ref) for s in samples] == [
        ("clean", "b_t", "log10_M_true"), ("planck", "b_t", "log10_M_true"), ("sky", "b_P", "log10_MSZ"),
        ("golden", "b_P", "log10_MSZ"), ("sky", "b_t", "log10_M_true"), ("golden", "b_t", "log10_M_true"),
        ("sky_unseen", "b_t", "log10_M_true"), ("sky_unseen", "b_P", "log10_MSZ")]  # fmt: skip
    assert len(samples[3].table) == 8 and samples[6].table.equals(unseen)
    names = [s.name for s in bias_samples(tests, sky.drop(columns="log10_M_true"))]
    assert names == ["clean", "planck", "sky", "golden"]
    with pytest.raises(ValueError, match=r"truth: column\(s\) \['map_index'\] missing"):
        unseen_clusters(sky, truth.drop(columns="map_index"), [100])
    with pytest.raises(ValueError, match=r"truth: no row for sky cluster\(s\) \['PSZ2 G000'\]"):
        unseen_clusters(sky, truth.iloc[:-1], [100])
    with pytest.raises(ValueError, match="sky data set 'sky' has no test predictions"):
        bias_samples(tests, sky, truth=truth, sky_dataset="sky")


def test_tables_are_the_evaluate_tables_of_each_sample() -> None:
    tests = {"clean": predictions_table()}
    sky, _ = sky_and_truth()
    bias, moments = bias_and_moments(bias_samples(tests, sky))
    assert list(bias.columns[:2]) == ["sample", "statistic"] and list(moments.columns[:2]) == ["sample", "reference"]
    sky_bp = bias[(bias["sample"] == "sky") & (bias["statistic"] == "b_P")].drop(columns=["sample", "statistic"])
    expected = bias_table(sky.dropna(subset=["log10_MSZ"]), ref="log10_MSZ")
    pd.testing.assert_frame_equal(sky_bp.reset_index(drop=True), expected[list(sky_bp.columns)])
    sky_msz = moments[(moments["sample"] == "sky") & (moments["reference"] == "log10_MSZ")]
    assert int(sky_msz.loc[sky_msz["zbin"] == "all", "n"].iloc[0]) == 27  # the 3 clusters without an M_SZ left out
    # the clean test maps are 0.05 dex heavy on average: b_t = 1 - 10**-0.05 = 0.109 within the scatter
    clean = bias[(bias["sample"] == "clean") & (bias["zbin"] == "all") & (bias["mass_range"] == "all")]
    assert float(clean["median"].iloc[0]) == pytest.approx(1 - 10**-0.05, abs=0.03)
    compare = ensemble_comparison({"clean": tests["clean"]}, {"clean": tests["clean"].assign(log10_M_cnn_std=0.01)})
    assert compare.columns[0] == "dataset" and set(compare["estimate"]) == {"selected", "ensemble"}


def test_tables_bootstrap_clusters_of_each_sample() -> None:
    tests = {"clean": predictions_table().assign(cluster=lambda t: t["map"] // 4)}  # 10 clusters of 4 maps
    sky, _ = sky_and_truth()
    sky["cluster"] = np.arange(len(sky))  # each PSZ2 cluster its own
    bias, moments = bias_and_moments(bias_samples(tests, sky), clusters="cluster", seed=7)
    assert {"median_lo", "median_hi", "n_clusters"} <= set(bias) and {"mean_lo", "std_hi", "n_clusters"} <= set(moments)
    every = bias[(bias["zbin"] == "all") & (bias["mass_range"] == "all")].set_index(["sample", "statistic"])
    assert every.loc[("clean", "b_t"), "n_clusters"] == 10 and every.loc[("clean", "b_t"), "n"] == 40
    assert every.loc[("sky", "b_P"), "n_clusters"] == every.loc[("sky", "b_P"), "n"] == 27
    assert (every["median_lo"] <= every["median"]).all() and (every["median"] <= every["median_hi"]).all()
    again, _ = bias_and_moments(bias_samples(tests, sky), clusters="cluster", seed=7)
    pd.testing.assert_frame_equal(again, bias)
    with pytest.raises(ValueError, match=r"\['cluster'\] missing"):
        bias_and_moments(bias_samples(tests, sky.drop(columns="cluster")), clusters="cluster")
