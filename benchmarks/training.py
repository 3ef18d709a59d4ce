"""Training throughput: map-steps per second (maps x runs trained per second, batch 32 per run).

Times the two ways of training the 100 seeded runs of a redshift bin, on random 96 x 96 maps:

* ``single``: one run, ``keras.Model.fit`` on the network wrapped with its standardisation, as
  :func:`szmass.train.train_run` does (fed from a tf.data pipeline of in-memory maps);
* ``ensemble K``: K runs in one vectorised model (:mod:`szmass.ensemble`), timed twice: on one batch
  kept on the device (``compute``: the model and optimizer only) and fed by the pipeline of
  :func:`szmass.ensemble.stacked_batches` (``pipeline``: what ``train_ensemble`` sees).

Options for a GPU: ``--jit-compile`` (XLA; needs ``--no-deterministic``, as TensorFlow has no
deterministic XLA max-pool gradient; on a CPU XLA is ~10x slower than oneDNN), ``--mixed-precision``
(bfloat16 compute, float32 weights) and ``--conv`` (grouped or split convolutions in the ensemble).
Usage, e.g. on an H100::

    python benchmarks/training.py --k 1 4 16 64 --jit-compile --mixed-precision --no-deterministic

The figures are printed; nothing is asserted (not a test).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import xarray as xr  # noqa: E402

from szmass.ensemble import PerRunAdam, build_ensemble, load_run, make_steps, stacked_dataset  # noqa: E402
from szmass.model import build_cnn, with_standardisation  # noqa: E402
from szmass.train import MapSource, batch_dataset, configure_determinism  # noqa: E402


def random_maps(n: int, npix: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random y-maps (float32, ~1e-6) and log10 masses in [14, 15.5]."""
    rng = np.random.default_rng(seed)
    maps = (1e-6 * rng.standard_normal((n, npix, npix))).astype(np.float32)
    return maps, rng.uniform(14.0, 15.5, n).astype(np.float32)


def timed(run: Callable[[], None], repeats: int) -> float:
    """Best wall time [s] of ``repeats`` calls of ``run`` after one warm-up call (tracing, compilation)."""
    run()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_single(maps: np.ndarray, target: np.ndarray, *, batch: int, steps: int, repeats: int, jit: bool) -> float:
    """Map-steps per second of one run trained with ``keras.Model.fit``."""
    model = with_standardisation(build_cnn(input_shape=(*maps.shape[1:], 1), seed=1), float(maps.mean()), float(maps.std()))
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", jit_compile=jit)
    order = np.arange(batch * steps) % len(maps)
    sig = (tf.TensorSpec((None, *maps.shape[1:], 1), tf.float32), tf.TensorSpec((None, 1), tf.float32))
    data = batch_dataset(lambda i: (maps[i][..., None], target[i, None]), order, batch, sig)
    seconds = timed(lambda: model.fit(data, epochs=1, verbose=0, shuffle=False), repeats)
    return batch * steps / seconds


def bench_ensemble(
    maps: np.ndarray, target: np.ndarray, k: int, *, batch: int, steps: int, repeats: int, jit: bool, split: bool | None
) -> tuple[float, float]:
    """Map-steps per second of K runs in one vectorised model: (compute only, with the data pipeline)."""
    shape = maps.shape[1:]
    ensemble = build_ensemble([float(maps.mean())] * k, [float(maps.std())] * k, map_shape=shape, split_conv=split)
    for run in range(k):
        load_run(ensemble, run, build_cnn(input_shape=(*shape, 1), seed=run + 1))
    train_step, _ = make_steps(ensemble, PerRunAdam(ensemble, k, 1e-4), jit_compile=jit)
    rng = np.random.default_rng(2)
    orders = [rng.permutation(batch * steps) % len(maps) for _ in range(k)]
    source = MapSource(xr.Dataset({"y": (("map", "py", "px"), maps)}))
    x, t, w, active = (tf.constant(a) for a in next(iter(stacked_dataset(source, target, orders, batch))))

    def compute() -> None:
        for _ in range(steps):
            out = train_step(x, t, w, active)
        out[0].numpy()

    def pipeline() -> None:
        for xb, tb, wb, ab in stacked_dataset(source, target, orders, batch):
            out = train_step(xb, tb, wb, ab)
        out[0].numpy()

    n = batch * steps * k
    return n / timed(compute, repeats), n / timed(pipeline, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 4, 16], help="runs per vectorised model")
    parser.add_argument("--npix", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--maps", type=int, default=2048, help="random maps held in memory")
    parser.add_argument("--jit-compile", action="store_true", help="compile with XLA")
    parser.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute (GPU)")
    parser.add_argument("--conv", choices=["auto", "grouped", "split"], default="auto",
                        help="ensemble convolutions (szmass.ensemble.GroupedConv2D); auto: split on CPU, grouped on GPU")
    parser.add_argument("--no-deterministic", dest="deterministic", action="store_false",
                        help="skip tf.config.experimental.enable_op_determinism()")  # fmt: skip
    args = parser.parse_args()
    if args.jit_compile and args.deterministic:
        parser.error("--jit-compile needs --no-deterministic (no deterministic XLA max-pool gradient)")

    configure_determinism(0, deterministic=args.deterministic)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    devices = [d.device_type + ":" + d.name.split(":")[-1] for d in tf.config.list_physical_devices()]
    print(f"devices {devices}; TF {tf.__version__}, Keras {keras.__version__}; {os.cpu_count()} CPU cores; "
          f"npix {args.npix}, batch {args.batch_size}, {args.steps} steps, best of {args.repeats}; "
          f"jit_compile={args.jit_compile} mixed_precision={args.mixed_precision} "
          f"deterministic={args.deterministic} conv={args.conv}", flush=True)  # fmt: skip
    maps, target = random_maps(args.maps, args.npix, seed=0)
    kw = dict(batch=args.batch_size, steps=args.steps, repeats=args.repeats, jit=args.jit_compile)
    single = bench_single(maps, target, **kw)
    print(f"{'single run (Model.fit)':32s} {single:10.0f} map-steps/s", flush=True)
    for k in args.k:
        split = {"auto": None, "grouped": False, "split": True}[args.conv]
        compute, piped = bench_ensemble(maps, target, k, split=split, **kw)
        print(f"{f'ensemble K={k:<3d} compute':32s} {compute:10.0f} map-steps/s  ({compute / single:5.2f} x single)", flush=True)
        print(f"{f'ensemble K={k:<3d} pipeline':32s} {piped:10.0f} map-steps/s  ({piped / single:5.2f} x single)", flush=True)


if __name__ == "__main__":
    main()
