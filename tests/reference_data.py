"""Paths of the reference data: the PSZ2 catalogue shipped with szmass, and the shared DeepPlanck data
(../shared/data from the repository root; never copied into it)."""

from pathlib import Path

import pytest

from szmass.data import PSZ2_CATALOGUE

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PSZ2_FILE = PSZ2_CATALOGUE
"""The Planck PSZ2 union catalogue (R2.08) shipped with szmass (src/szmass/data)."""
DEEPPLANCK = SHARED_DATA / "deepplanck"
WEIGHTS = DEEPPLANCK / "weights"
CUTOUT = DEEPPLANCK / "PSZ2G359.07-32.12.fits"
"""The real Planck MILCA cutout of PSZ2 G359.07-32.12 (z = 0.1496)."""
KNOWN_LOG10_M500 = 14.6829
"""docs/physics.md: the published bin-2 network on CUTOUT gives log10(M500 / Msun) = 14.6829."""

needs_deepplanck = pytest.mark.skipif(
    not (WEIGHTS / "bestmodel-2.h5").is_file() or not CUTOUT.is_file(),
    reason=f"DeepPlanck reference data absent ({DEEPPLANCK})",
)
