"""Synthetic THE THREE HUNDRED regions: halo populations, gas models and particles, written in the real formats.

``SynthConfig`` and ``generate_region_snapshot`` are the workflow's entry points; ``profiles`` holds the
GNFW pressure and its analytic integrals (``gnfw_pressure``, ``p500_kev_cm3``, ``y_sph_mpc2``).
"""

from szmass.synth.gasmodels import GAS_MODELS, gas_model
from szmass.synth.profiles import gnfw_pressure, p500_kev_cm3, y_sph_mpc2
from szmass.synth.region import SynthConfig, build_region_snapshot, generate_region_snapshot, population_for

__all__ = [
    "GAS_MODELS",
    "SynthConfig",
    "build_region_snapshot",
    "gas_model",
    "generate_region_snapshot",
    "gnfw_pressure",
    "p500_kev_cm3",
    "population_for",
    "y_sph_mpc2",
]
