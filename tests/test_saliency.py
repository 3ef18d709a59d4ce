"""Saliency maps of the CNN and their radial profile in units of R500 (szmass.saliency)."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from szmass.cosmology import make_cosmology, r500_pixels
from szmass.model import build_cnn, with_standardisation
from szmass.saliency import radial_profile, saliency_by_bin, saliency_maps, sample_rows

NPIX = 12  # tiny maps keep the Keras models fast; the code does not assume 96 x 96
LOG10_M0 = 14.5  # [Msun]


def linear_model(w: np.ndarray, b: float, *, dropout: float = 0.0, relu: bool = False) -> keras.Model:
    """log10 M = w . x + b on the flattened map (optionally relu(w . x) + b, and a dropout layer that
    must be inactive in inference mode)."""
    layers = [keras.Input(shape=(NPIX, NPIX, 1)), keras.layers.Flatten()]
    if dropout:
        layers.append(keras.layers.Dropout(dropout, seed=1))
    dense = keras.layers.Dense(1, activation="relu" if relu else None, use_bias=not relu)
    layers.append(dense)
    if relu:
        layers.append(keras.layers.Rescaling(scale=1.0, offset=b))
    model = keras.Sequential(layers)
    dense.set_weights([w.reshape(-1, 1)] if relu else [w.reshape(-1, 1), np.array([b])])
    return model


def test_linear_model_saliency_is_normalised_weights() -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(0.0, 2e4, size=(NPIX, NPIX)).astype(np.float32)  # [dex per unit y]
    maps = rng.normal(0.0, 5e-6, size=(5, NPIX, NPIX))  # Compton y
    model = linear_model(w, LOG10_M0, dropout=0.5)
    expected = np.abs(w.astype(float)) / np.abs(w).max()
    sal = saliency_maps(model, maps, batch_size=2)  # 3 batches, the last one partial
    assert sal.shape == maps.shape
    assert np.allclose(sal, expected[None], rtol=0, atol=1e-6)  # dropout off, each map's max is 1
    # unnormalised: dM/dy = M ln10 w [Msun per unit y], with M = 10^(w . x + b)
    raw = saliency_maps(model, maps, normalise=False)
    mass = 10.0 ** (maps.reshape(5, -1) @ w.reshape(-1).astype(float) + LOG10_M0)
    assert np.allclose(raw, np.log(10.0) * mass[:, None, None] * np.abs(w)[None], rtol=1e-5, atol=0)


def test_nonlinear_chain_rule() -> None:
    # log10 M = 1 + log10(sum y^2), so M = 10 sum y^2 and dM/dy_p = 20 y_p exactly
    model = keras.Sequential(
        [
            keras.Input(shape=(NPIX, NPIX, 1)),
            keras.layers.Lambda(lambda t: 1.0 + keras.ops.log10(keras.ops.sum(t**2, axis=(1, 2, 3)))[:, None]),
        ]
    )
    maps = np.random.default_rng(4).uniform(-1.0, 1.0, size=(3, NPIX, NPIX))
    raw = saliency_maps(model, maps, normalise=False)
    assert np.allclose(raw, 20.0 * np.abs(maps), rtol=2e-5, atol=1e-6)
    norm = saliency_maps(model, maps)
    assert np.allclose(norm, np.abs(maps) / np.abs(maps).max(axis=(1, 2), keepdims=True), rtol=0, atol=1e-6)


def test_zero_gradient_map_stays_zero_and_bad_input() -> None:
    w = np.ones((NPIX, NPIX), dtype=np.float32)
    model = linear_model(w, LOG10_M0, relu=True)  # log10 M = relu(sum y) + b: flat for sum y < 0
    maps = np.stack([np.full((NPIX, NPIX), -1e-3), np.full((NPIX, NPIX), 1e-3)])
    sal = saliency_maps(model, maps)
    assert np.all(sal[0] == 0.0)
    assert np.allclose(sal[1], 1.0, atol=1e-6)
    with pytest.raises(ValueError, match=r"model maps \(12, 12, 1\) -> \(1,\); expected \(10, 10, 1\)"):
        saliency_maps(model, np.zeros((1, 10, 10)))
    with pytest.raises(ValueError, match="map 1 has non-finite"):
        saliency_maps(model, np.stack([maps[0], np.full((NPIX, NPIX), np.nan)]))


def test_paper_cnn_matches_finite_differences() -> None:
    """The paper's CNN behind the raw-map standardisation (szmass.model), built in float64 so that a central
    difference of M = 10^(log10 M) resolves the gradient: |dM/dy| at the most salient and two other pixels."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")  # the Input's dtype
    keras.config.set_dtype_policy("float64")  # the layers' (the global policy outlives floatx once created)
    try:
        model = with_standardisation(build_cnn(seed=1), 1e-6, 2e-6, output_offset=14.0)
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
    assert model.inputs[0].dtype == "float64" and model.layers[-1].compute_dtype == "float64"
    rng = np.random.default_rng(5)
    j, i = np.indices((96, 96))
    maps = 1e-5 / (1 + (np.hypot(i - 47.5, j - 47.5) / 5) ** 2)[None] + rng.normal(0, 1.5e-6, (2, 96, 96))
    raw = saliency_maps(model, maps, normalise=False)
    norm = saliency_maps(model, maps)
    assert np.allclose(norm, raw / raw.max(axis=(1, 2), keepdims=True), rtol=1e-12, atol=0)

    def mass(x: np.ndarray) -> float:
        return float(10.0 ** np.asarray(model(x[None, :, :, None], training=False))[0, 0])  # [Msun]

    h = 1e-11  # [Compton y]; float64 round-off in M ~ 1e-16 M / h is ~1e-6 of the derivative here
    for k in range(2):
        for pix in (np.unravel_index(np.argmax(raw[k]), (96, 96)), (48, 48), (10, 80)):
            up, down = maps[k].copy(), maps[k].copy()
            up[pix] += h
            down[pix] -= h
            assert np.isclose(abs(mass(up) - mass(down)) / (2 * h), raw[k][pix], rtol=1e-5, atol=0), (k, pix)


def annulus_mean_exp(x1: float, x2: float) -> float:
    """Area-weighted mean of exp(-x) over the annulus x1 <= x < x2: int exp(-x) 2 pi x dx / (pi (x2^2 - x1^2))."""
    primitive = lambda x: -(1.0 + x) * np.exp(-x)
    return 2.0 * (primitive(x2) - primitive(x1)) / (x2**2 - x1**2)


def test_radial_profile_of_analytic_maps() -> None:
    npix = 96
    r500 = np.array([10.0, 12.0, 14.0, 16.0, 20.0])  # [pixels]
    amp = np.array([1.0, 0.8, 0.6, 0.9, 0.7])
    j, i = np.indices((npix, npix))
    dist = np.hypot(i - 47.5, j - 47.5)
    maps = amp[:, None, None] * np.exp(-dist[None] / r500[:, None, None])
    prof = radial_profile(maps, r500)
    assert list(prof.columns) == ["r_lo", "r_hi", "r_mid", "median", "p16", "p84", "n"]
    assert np.allclose(prof["r_lo"], np.linspace(0, 2.8, 15)) and np.allclose(prof["r_hi"], np.linspace(0.2, 3, 15))
    analytic = np.array([annulus_mean_exp(a, b) for a, b in zip(prof["r_lo"], prof["r_hi"], strict=True)])
    # the map with R500 = 20 pixels reaches 48 / 20 = 2.4 R500: annuli beyond are left out for it
    assert list(prof["n"]) == [5] * 12 + [4] * 3
    full = prof["n"] == 5
    # per-annulus statistics over maps are those of the amplitudes times the analytic profile; averaging
    # over the pixel centres of an annulus 2-4 pixels wide differs from the area average by < 0.9% here
    for col, q in (("median", 50), ("p16", 16), ("p84", 84)):
        want = np.percentile(amp, q) * analytic
        rel = prof[col][full].to_numpy() / want[full] - 1.0
        assert np.all(np.abs(rel) < 0.012), (col, rel)
        rel4 = prof[col][~full].to_numpy() / (np.percentile(amp[:4], q) * analytic[~full]) - 1.0
        assert np.all(np.abs(rel4) < 0.012), (col, rel4)
    # without the inside-the-map requirement the partial annuli count too
    assert list(radial_profile(maps, r500, require_inside=False)["n"]) == [5] * 15


def test_radial_profile_centre_convention() -> None:
    # with R500 = 1 pixel the central four pixels of an even map sit at r = sqrt(0.5) = 0.707 R500
    sal = np.zeros((1, 8, 8))
    sal[0, 3:5, 3:5] = 1.0
    prof = radial_profile(sal, 1.0, r_edges=[0.0, 0.5, 0.75, 1.6])  # next ring: 1.58 R500
    assert list(prof["n"]) == [0, 1, 1]
    assert np.isnan(prof["median"][0]) and prof["median"][1] == 1.0 and prof["median"][2] == 0.0
    with pytest.raises(ValueError, match="r500_pixels"):
        radial_profile(sal, [1.0, 2.0])
    with pytest.raises(ValueError, match="r_edges"):
        radial_profile(sal, 1.0, r_edges=[0.0, 1.0, 0.5])


def test_r500_pixels_hand_computation() -> None:
    cosmo = make_cosmology({"H0": 70.0, "Om0": 0.3, "Ob0": 0.05})
    z = np.array([0.05, 0.3, 0.9])
    r500 = np.array([800.0, 1200.0, 1000.0])  # [physical kpc]
    c_kms = 299792.458
    comoving = np.array([quad(lambda zz: 1.0 / np.sqrt(0.3 * (1 + zz) ** 3 + 0.7), 0, zi)[0] for zi in z])
    d_a_kpc = c_kms / 70.0 * comoving / (1 + z) * 1e3
    want = r500 / d_a_kpc * (180.0 / np.pi * 60.0) / 1.7
    assert np.allclose(r500_pixels(r500, z, cosmo, 1.7), want, rtol=1e-7, atol=0)
    # e.g. 1 Mpc at z = 0.05 (D_A ~ 200 Mpc) spans ~17 arcmin ~ 10 pixels of 1.7 arcmin
    assert 9.0 < float(r500_pixels(1000.0, 0.05, cosmo, 1.7)) < 11.0
    with pytest.raises(ValueError, match="redshift must be > 0"):
        r500_pixels(1000.0, 0.0, cosmo, 1.7)
    with pytest.raises(ValueError, match="pixel_arcmin"):
        r500_pixels(1000.0, 0.1, cosmo, 0.0)


def test_saliency_by_bin_uses_each_maps_bin_model() -> None:
    """Two linear models with different weights: each map gets the saliency of its own bin's model (|w| / max);
    a map of a bin without a model stays zero."""
    rng = np.random.default_rng(5)
    w1, w2 = (rng.normal(0.0, 2e4, size=(NPIX, NPIX)).astype(np.float32) for _ in range(2))
    maps = rng.normal(0.0, 5e-6, size=(4, NPIX, NPIX))
    sal = saliency_by_bin([linear_model(w1, LOG10_M0), linear_model(w2, LOG10_M0)], maps, [2, 1, 3, 2])
    for k, w in ((0, w2), (1, w1), (3, w2)):
        assert np.allclose(sal[k], np.abs(w.astype(float)) / np.abs(w).max(), rtol=0, atol=1e-6)
    assert not sal[2].any()


def test_sample_rows_is_seeded_ordered_and_whole_when_short() -> None:
    table = pd.DataFrame({"map": np.arange(50) * 3})
    a, b = sample_rows(table, 10, seed=7), sample_rows(table, 10, seed=7)
    assert a.equals(b) and len(a) == 10 and a["map"].is_monotonic_increasing and list(a.index) == list(range(10))
    assert set(a["map"]) <= set(table["map"]) and a["map"].is_unique
    assert not a.equals(sample_rows(table, 10, seed=8))
    assert sample_rows(table, 50, seed=7) is table
