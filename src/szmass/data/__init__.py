"""Public data shipped with szmass, so that the demo and the tests run offline.

``PSZ2_CATALOGUE``: the Planck 2015 (PR2) union catalogue of Sunyaev-Zel'dovich sources,
``HFI_PCCS_SZ-union_R2.08.fits`` (1653 sources, 607,680 bytes), byte for byte as distributed by the
Planck Legacy Archive and the IRSA Planck mirror (README.md in this folder: source and licence).
"""

from __future__ import annotations

from pathlib import Path

PSZ2_CATALOGUE: Path = Path(__file__).with_name("HFI_PCCS_SZ-union_R2.08.fits")
"""The shipped PSZ2 union catalogue (FITS, binary table in HDU 1)."""

PSZ2_SHA256: str = "041a1acd080f0c9f4b688d56e766fe17f50700dad05f185286e7d2edf584dfd9"
"""SHA-256 of ``PSZ2_CATALOGUE``; a downloaded copy of the same release must match it."""
