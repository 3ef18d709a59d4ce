"""The paper's CNN (szmass.model) and the published DeepPlanck weights (szmass.published)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py
import keras
import numpy as np
import pytest
from astropy.io import fits
from reference_data import CUTOUT, KNOWN_LOG10_M500, WEIGHTS
from reference_data import needs_deepplanck as needs_data

from szmass.architecture import POOLINGS
from szmass.model import (
    PAPER_ARCHITECTURE,
    Architecture,
    average_models,
    build_cnn,
    input_moments,
    with_standardisation,
)
from szmass.published import (
    H_PUBLISHED,
    INPUT_MEAN,
    INPUT_STD,
    load_published,
    load_published_cnn,
    redshift_bin,
    redshift_bins,
)

# docs/physics.md: the published bin-2 network on this cutout gives log10(M500 / Msun) = 14.6829.


def test_parameter_count_and_output_shape() -> None:
    cnn = build_cnn()
    assert sum(int(np.prod(w.shape)) for w in cnn.trainable_weights) == 58_437
    assert not cnn.non_trainable_weights
    assert cnn.output_shape == (None, 1)
    out = cnn(np.zeros((3, 96, 96, 1), dtype=np.float32))
    assert tuple(out.shape) == (3, 1)


def test_layer_order_and_configuration() -> None:
    cnn = build_cnn()
    L = keras.layers
    expected = [
        (L.Conv2D, 16), (L.MaxPooling2D, None), (L.Conv2D, 32), (L.MaxPooling2D, None),
        (L.Conv2D, 64), (L.MaxPooling2D, None), (L.GlobalAveragePooling2D, None), (L.Dropout, None),
        (L.Dense, 200), (L.Dropout, None), (L.Dense, 100), (L.Dense, 20), (L.Dense, 1),
    ]  # fmt: skip
    assert [type(layer) for layer in cnn.layers] == [cls for cls, _ in expected]
    for layer, (cls, width) in zip(cnn.layers, expected, strict=True):
        cfg = layer.get_config()
        if cls is L.Conv2D:
            assert (cfg["filters"], cfg["kernel_size"], cfg["padding"], cfg["activation"]) == (width, (3, 3), "valid", "relu")
        elif cls is L.MaxPooling2D:
            assert cfg["pool_size"] == (2, 2)
        elif cls is L.Dropout:
            assert cfg["rate"] == pytest.approx(0.1)
        elif cls is L.Dense:
            assert cfg["units"] == width
            assert cfg["activation"] == ("linear" if width == 1 else "relu")
    # valid 3x3 convolutions and 2x2 pools: 96 -> 94 -> 47 -> 45 -> 22 -> 20 -> 10
    assert cnn.get_layer("pool3").output.shape == (None, 10, 10, 64)


def n_trainable(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# Parameter counts by hand: a k x k convolution of c_in -> c_out channels has k*k*c_in*c_out + c_out
# parameters, a dense layer n_in -> n_out has n_in*n_out + n_out.
# conv 4, kernel 1, filters 16 (16, 32, 64, 128), dense 2 (200, 100) + 20 + 1:
#   convs 1*16+16 + 16*32+32 + 32*64+64 + 64*128+128 = 32 + 544 + 2112 + 8320 = 11,008
#   dense 128*200+200 + 200*100+100 + 100*20+20 + 20+1 = 25,800 + 20,100 + 2,020 + 21 = 47,941; total 58,949
# conv 5, kernel 2, filters 32 (32 ... 512), dense 1 (200) + 20 + 1:
#   convs 4*32+32 + 4*32*64+64 + 4*64*128+128 + 4*128*256+256 + 4*256*512+512
#       = 160 + 8,256 + 32,896 + 131,328 + 524,800 = 697,440
#   dense 512*200+200 + 200*20+20 + 20+1 = 102,600 + 4,020 + 21 = 106,641; total 804,081
# conv 3, kernel 3, filters 16, dense 1: the paper's minus dense 100 (200*100+100), with dense 20 fed by 200
#   58,437 - 20,100 - 2,020 + (200*20+20) = 40,337
# the paper's with flatten: dense 200 fed by 10*10*64 = 6,400 features instead of 64
#   58,437 - (64*200+200) + (6,400*200+200) = 58,437 - 13,000 + 1,280,200 = 1,325,637
# the paper's with the weighted pool: 58,437 + 10*10*64 = 64,837
HAND_COUNTS = [
    (Architecture(conv_layers=4, kernel_size=1), 58_949, 6),  # 96 -> 48 -> 24 -> 12 -> 6
    (Architecture(conv_layers=5, kernel_size=2, filters=32, dense_layers=1, dropout=0.2), 804_081, 2),  # 95 47 46 23 22 11 10 5 4 2
    (Architecture(dense_layers=1), 40_337, 10),
    (Architecture(pooling="flatten"), 1_325_637, 10),
    (Architecture(pooling="weighted"), 58_437 + 10 * 10 * 64, 10),  # one weight per position and filter, no bias
]


@pytest.mark.parametrize(("arch", "count", "side"), HAND_COUNTS, ids=lambda v: getattr(v, "name", str(v)))
def test_architecture_parameter_counts_by_hand(arch: Architecture, count: int, side: int) -> None:
    cnn = build_cnn(architecture=arch, seed=1)
    assert n_trainable(cnn) == count == arch.n_parameters()
    # last feature map: each block takes a valid k x k convolution (side - k + 1), then floor(side / 2)
    assert cnn.get_layer(f"pool{arch.conv_layers}").output.shape == (None, side, side, arch.conv_filters[-1])
    assert tuple(cnn(np.zeros((2, 96, 96, 1), dtype=np.float32)).shape) == (2, 1)


def test_architecture_layers_follow_the_options() -> None:
    arch = Architecture(conv_layers=5, dense_layers=1, kernel_size=2, filters=32, dropout=0.2)
    cnn = build_cnn(architecture=arch)
    convs = [la for la in cnn.layers if isinstance(la, keras.layers.Conv2D)]
    assert [c.get_config()["filters"] for c in convs] == [32, 64, 128, 256, 512]
    assert {c.get_config()["kernel_size"] for c in convs} == {(2, 2)}
    drops = [la for la in cnn.layers if isinstance(la, keras.layers.Dropout)]
    assert [d.get_config()["rate"] for d in drops] == [pytest.approx(0.2)]
    dense = [la.get_config()["units"] for la in cnn.layers if isinstance(la, keras.layers.Dense)]
    assert dense == [200, 20, 1]
    assert [la.name for la in cnn.layers if la.weights] == [*arch.conv_names, *arch.dense_names]


def test_weighted_pool_starts_as_the_global_average_and_weighs_each_position() -> None:
    """An untrained weighted network is the global-average network of the same seed (same weights, same outputs:
    its pool starts at 1 / 100 on the 10 x 10 feature map); once its pool weights change, a map's output depends
    on where a feature lies, which the global average cannot see."""
    x = np.random.default_rng(2).standard_normal((4, 96, 96, 1)).astype(np.float32)
    gap, weighted = build_cnn(seed=7), build_cnn(seed=7, architecture=Architecture(pooling="weighted"))
    pool = weighted.get_layer("weighted")
    assert pool.kernel.shape == (10, 10, 64, 1) and np.all(pool.kernel.numpy() == np.float32(0.01))
    mine = [w for layer in weighted.layers if layer.name != "weighted" for w in layer.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(gap.get_weights(), mine, strict=True))
    np.testing.assert_allclose(weighted.predict(x, verbose=0), gap.predict(x, verbose=0), rtol=0, atol=1e-5)
    features = keras.Sequential(weighted.layers[: weighted.layers.index(pool) + 2])
    shifted = np.roll(x, 8, axis=(1, 2))  # the same map moved by one feature-map pixel (8 input pixels)
    kernel = np.zeros((10, 10, 64, 1), np.float32)
    kernel[4:6, 4:6] = 0.25  # the central 2 x 2 feature pixels only
    pool.kernel.assign(kernel)
    a, b = features.predict(x, verbose=0), features.predict(shifted, verbose=0)
    assert np.abs(a - b).max() > 0.1 * np.abs(a).max()


def test_default_architecture_is_the_paper_network() -> None:
    assert Architecture() == PAPER_ARCHITECTURE
    assert (PAPER_ARCHITECTURE.conv_filters, PAPER_ARCHITECTURE.dense_units) == ((16, 32, 64), (200, 100, 20))
    assert PAPER_ARCHITECTURE.n_parameters() == 58_437
    a, b = build_cnn(seed=5), build_cnn(seed=5, architecture=Architecture.from_mapping({}))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_architecture_names_and_bad_options() -> None:
    arch = Architecture(conv_layers=4, dense_layers=1, kernel_size=1, filters=32, dropout=0.2)
    assert arch.name == "conv4_dense1_kernel1_filters32_dropout0.2"
    assert Architecture.from_name(arch.name) == arch
    assert Architecture.from_mapping(arch.as_dict()) == arch
    assert PAPER_ARCHITECTURE.name == "conv3_dense2_kernel3_filters16_dropout0.1"
    flat = Architecture(dropout=0.2, pooling="flatten")
    assert flat.name == "conv3_dense2_kernel3_filters16_dropout0.2_flatten"
    assert Architecture.from_name(flat.name) == flat
    assert Architecture.from_mapping(flat.as_dict()) == flat
    weighted = Architecture(pooling="weighted")
    assert weighted.name == "conv3_dense2_kernel3_filters16_dropout0.1_weighted"
    assert Architecture.from_name(weighted.name) == weighted
    with pytest.raises(ValueError, match="'pooling' must be one of global_average, flatten, weighted"):
        Architecture(pooling="max")
    with pytest.raises(ValueError, match="unknown key.*'kernel'"):
        Architecture.from_mapping({"kernel": 3})
    with pytest.raises(ValueError, match="'conv_layers' must be an integer >= 1"):
        Architecture(conv_layers=0)
    with pytest.raises(ValueError, match="'dropout' must be a fraction"):
        Architecture(dropout=1.0)
    with pytest.raises(ValueError, match="'dense_layers'"):
        Architecture(dense_layers=Architecture.max_dense_layers() + 1)
    with pytest.raises(ValueError, match="architecture name"):
        Architecture.from_name("conv3")
    # 96 -> 94 -> 47 -> 45 -> 22 -> 20 -> 10 -> 8 -> 4 -> 2 -> 1 -> (nothing after a sixth block)
    assert Architecture(conv_layers=5).feature_side(96) == 1
    with pytest.raises(ValueError, match="shrink to nothing after convolution block 6"):
        build_cnn(architecture=Architecture(conv_layers=6))


def test_seed_fixes_initial_weights() -> None:
    a, b, c = build_cnn(seed=1), build_cnn(seed=1), build_cnn(seed=2)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    # every layer draws its own seed: no two conv kernels share their leading values
    firsts = [w.ravel()[:4] for w in a.get_weights()[::2]]
    assert len({tuple(f) for f in firsts}) == len(firsts)


def test_standardisation_wrapper_is_affine_in_front_and_behind() -> None:
    cnn = build_cnn(seed=3)
    mean, std, offset = 2.0e-7, 1.5e-6, -0.25
    model = with_standardisation(cnn, mean, std, output_offset=offset)
    rng = np.random.default_rng(0)
    x = (mean + std * rng.standard_normal((4, 96, 96, 1))).astype(np.float32)
    direct = cnn.predict_on_batch(((x.astype(np.float64) - mean) / std).astype(np.float32))
    np.testing.assert_allclose(model.predict_on_batch(x), direct + offset, rtol=0, atol=1e-5)
    assert not model.get_layer("standardise").weights  # mean and std are fixed constants, not weights


def test_standardisation_rejects_bad_constants() -> None:
    with pytest.raises(ValueError, match="std > 0"):
        with_standardisation(build_cnn(seed=0), 0.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        with_standardisation(build_cnn(seed=0), float("nan"), 1.0)


def test_keras_round_trip_with_standardisation(tmp_path: Path) -> None:
    mean, std = INPUT_MEAN[1], INPUT_STD[1]
    model = with_standardisation(build_cnn(seed=4), mean, std, output_offset=0.1)
    path = tmp_path / "best.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    x = (mean + std * np.random.default_rng(1).standard_normal((5, 96, 96, 1))).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_on_batch(x), model.predict_on_batch(x))
    cfg = loaded.get_layer("standardise").get_config()
    assert (cfg["scale"], cfg["offset"]) == (1.0 / std, -mean / std)  # stored exactly


PLAIN_KERAS_LOAD = textwrap.dedent(
    """
    import sys

    import keras
    import numpy as np

    model = keras.saving.load_model(sys.argv[1], compile=False)
    x = np.load(sys.argv[2])
    np.save(sys.argv[3], np.asarray(model.predict_on_batch(x)))
    assert not [m for m in sys.modules if m.split(".")[0] == "szmass"], "szmass was imported"
    """
)


def predict_with_plain_keras(model_path: Path, x: np.ndarray, work: Path) -> np.ndarray:
    """Predictions of the saved model on ``x`` in a fresh Python process that imports keras only."""
    np.save(work / "x.npy", x)
    done = subprocess.run([sys.executable, "-c", PLAIN_KERAS_LOAD, str(model_path), str(work / "x.npy"),
                           str(work / "y.npy")], cwd=work, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(work / "y.npy")


@pytest.mark.parametrize("pooling", POOLINGS)
def test_saved_model_loads_with_plain_keras(tmp_path: Path, pooling: str) -> None:
    """A saved raw-map model (as train writes model.keras / best.keras) of each pooling loads and predicts in a
    process that imports keras only: no custom layer needs szmass. The weights are moved off their seeded
    initialisers (the weighted pool's off 1 / side**2), so equal predictions show them read from the file."""
    mean, std = INPUT_MEAN[2], INPUT_STD[2]
    npix = 32  # the paper's convolutions leave 2 x 2 positions for the flatten and weighted pools
    cnn = build_cnn(input_shape=(npix, npix, 1), seed=5, architecture=Architecture(pooling=pooling))
    rng = np.random.default_rng(3)
    cnn.set_weights([w + rng.uniform(-0.05, 0.05, w.shape).astype(w.dtype) for w in cnn.get_weights()])
    model = with_standardisation(cnn, mean, std, output_offset=-0.2)
    model.save(tmp_path / "best.keras")
    x = (mean + std * np.random.default_rng(2).standard_normal((3, npix, npix, 1))).astype(np.float32)
    np.testing.assert_array_equal(predict_with_plain_keras(tmp_path / "best.keras", x, tmp_path), model.predict_on_batch(x))


@needs_data
def test_published_known_answer_survives_plain_keras_load(tmp_path: Path) -> None:
    """The published bin-2 network, saved as a raw-map .keras file and reloaded without szmass, still
    gives the known answer on the real cutout."""
    with fits.open(CUTOUT) as hdul:
        y = np.asarray(hdul[0].data, dtype=np.float32)[np.newaxis, ..., np.newaxis]
    load_published(WEIGHTS)[2].save(tmp_path / "best.keras")
    assert float(predict_with_plain_keras(tmp_path / "best.keras", y, tmp_path)[0, 0]) == pytest.approx(KNOWN_LOG10_M500, abs=1e-4)


@pytest.mark.parametrize(("z", "expected"), [(0.1, 1), (0.1000001, 2), (0.2, 2), (0.4, 3), (0.41, 4), (1.0, 4), (1e-9, 1)])
def test_redshift_bin_edges(z: float, expected: int) -> None:
    assert redshift_bin(z) == expected


@pytest.mark.parametrize("z", [0.0, -0.1, 1.2, float("nan")])
def test_redshift_bin_outside_raises(z: float) -> None:
    with pytest.raises(ValueError, match="outside the bins"):
        redshift_bin(z)


def test_redshift_bins_vectorised_and_custom_edges() -> None:
    np.testing.assert_array_equal(redshift_bins([0.05, 0.15, 0.3, 0.9]), [1, 2, 3, 4])
    np.testing.assert_array_equal(redshift_bins([0.5, 1.0], edges=(0.0, 0.5, 1.0)), [1, 2])
    with pytest.raises(ValueError, match="index 2"):
        redshift_bins([0.5, 0.6, 1.5])
    with pytest.raises(ValueError, match="strictly increasing"):
        redshift_bins([0.5], edges=(0.0, 0.4, 0.2))


@needs_data
def test_published_weights_land_in_layer_order() -> None:
    path = WEIGHTS / "bestmodel-3.h5"
    cnn = load_published_cnn(path)
    with h5py.File(path, "r") as f:
        stored = []
        for layer in f.attrs["layer_names"]:
            g = f[layer]
            stored += [g[name][...] for name in g.attrs["weight_names"]]
    loaded = cnn.get_weights()
    assert [w.shape for w in loaded] == [w.shape for w in stored]
    for a, b in zip(loaded, stored, strict=True):
        np.testing.assert_array_equal(a, b)


@needs_data
def test_published_known_answer() -> None:
    with fits.open(CUTOUT) as hdul:
        y = np.asarray(hdul[0].data, dtype=np.float64)
        z = float(hdul[0].header["Z"])
    assert redshift_bin(z) == 2
    models = load_published(WEIGHTS)
    assert sorted(models) == [1, 2, 3, 4]
    log_m = float(models[2].predict_on_batch(y[np.newaxis, ..., np.newaxis].astype(np.float32))[0, 0])
    assert log_m == pytest.approx(KNOWN_LOG10_M500, abs=1e-4)
    # the wrapper adds exactly -log10(h_published) to the raw network output [log10 h^-1 Msun]
    raw = load_published_cnn(WEIGHTS / "bestmodel-2.h5")
    x = ((y - INPUT_MEAN[1]) / INPUT_STD[1])[np.newaxis, ..., np.newaxis].astype(np.float32)
    assert log_m == pytest.approx(float(raw.predict_on_batch(x)[0, 0]) - np.log10(H_PUBLISHED), abs=1e-5)


def test_not_keras_weights_raises_naming_file(tmp_path: Path) -> None:
    bad = tmp_path / "bestmodel-1.h5"
    with h5py.File(bad, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="bestmodel-1.h5.*layer_names"):
        load_published_cnn(bad)
    with pytest.raises(FileNotFoundError, match="bestmodel-2.h5"):
        load_published_cnn(tmp_path / "bestmodel-2.h5")


def test_average_of_models_with_their_own_standardisations(tmp_path: Path) -> None:
    """The mean estimator's model: the mean of the members' log10 M on raw maps, each member standardising
    with its own constants (three differ by up to 2x here), exposing the first's; saved, it predicts the same
    in a process that imports keras only."""
    npix = 32
    members = []
    for k, (mean, std) in enumerate(((1e-6, 4e-6), (2e-6, 6e-6), (0.5e-6, 8e-6))):
        cnn = build_cnn(input_shape=(npix, npix, 1), seed=k, architecture=Architecture(pooling="weighted"))
        members.append(with_standardisation(cnn, mean, std, output_offset=0.1 * k))
    x = (1e-6 + 5e-6 * np.random.default_rng(4).standard_normal((6, npix, npix, 1))).astype(np.float32)
    each = np.stack([m.predict_on_batch(x) for m in members])
    assert np.ptp(each, axis=0).min() > 1e-3  # the members differ, so the mean is a test
    model = average_models(members)
    assert input_moments(model) == pytest.approx((1e-6, 4e-6), rel=1e-12)
    np.testing.assert_allclose(model.predict_on_batch(x), each.mean(axis=0), rtol=0, atol=2e-6)  # float32 of ~1
    model.save(tmp_path / "best.keras")
    np.testing.assert_allclose(predict_with_plain_keras(tmp_path / "best.keras", x, tmp_path), each.mean(axis=0),
                               rtol=0, atol=2e-6)
    with pytest.raises(ValueError, match="no models"):
        average_models([])
