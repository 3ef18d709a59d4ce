"""szmass.annuli: annulus sums of maps in r / R500 and the percentile summary over maps."""

from __future__ import annotations

import numpy as np
import pytest

from szmass.annuli import SUMMARY_COLUMNS, annulus_sums, percentile_summary


def test_pixel_counts_match_annulus_areas_and_sums_are_conserved() -> None:
    """A map of ones: each annulus counts about its area pi (r_hi^2 - r_lo^2) R500^2 in pixel centres (to
    within its perimeter, the pixel-centre sampling error), sums equal counts, and the annuli out to
    3 R500 = 45 pixels (inside the 96-pixel map) hold every pixel centre within that radius."""
    r500 = 15.0
    edges = np.linspace(0.0, 3.0, 16)
    rings = annulus_sums(np.ones((2, 96, 96)), r500, edges, "test")
    area = np.pi * np.diff((edges * r500) ** 2)
    perimeter = 2 * np.pi * edges[1:] * r500
    assert np.all(np.abs(rings.counts[0] - area) <= perimeter / 4 + 2)
    np.testing.assert_array_equal(rings.sums, rings.counts)
    j, i = np.indices((96, 96))
    assert rings.counts[0].sum() == np.count_nonzero(np.hypot(i - 47.5, j - 47.5) < 3.0 * r500)
    assert not rings.partial.any()
    assert annulus_sums(np.ones((1, 96, 96)), 20.0, edges, "test").partial[0].tolist() == list(edges[1:] > 2.4 + 1e-6)  # 2.4 R500 = 48 px: inside


@pytest.mark.parametrize(
    ("maps", "r500", "edges", "message"),
    [
        (np.ones((96, 96)), 10.0, [0, 1], "expected maps (n, py, px)"),
        (np.ones((2, 8, 8)), [1.0, 2.0, 3.0], [0, 1], "one value per map (2)"),
        (np.ones((1, 8, 8)), 0.0, [0, 1], "finite and > 0"),
        (np.ones((1, 8, 8)), 1.0, [0, 2, 1], "increasing"),
        (np.ones((1, 8, 8)), 1.0, [-1, 1], ">= 0"),
    ],
)
def test_bad_inputs_are_named(maps, r500, edges, message) -> None:
    with pytest.raises(ValueError, match=r"^sal: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        annulus_sums(maps, r500, edges, "sal")


def test_percentile_summary_leaves_out_nans() -> None:
    values = np.array([[1.0, np.nan], [2.0, 5.0], [3.0, np.nan]])
    table = percentile_summary(values, [0.0, 1.0, 2.0], "t")
    assert tuple(table.columns) == SUMMARY_COLUMNS
    assert table["n"].tolist() == [3, 1]
    assert table["median"].tolist() == [2.0, 5.0] and table["r_mid"].tolist() == [0.5, 1.5]
    np.testing.assert_allclose(table["p16"], [np.percentile([1, 2, 3], 16), 5.0])
    with pytest.raises(ValueError, match=r"^t: need values \(n, 2\)"):
        percentile_summary(values[:, :1], [0.0, 1.0, 2.0], "t")
