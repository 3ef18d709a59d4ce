"""Benchmark ``szmass.sph.project`` against swiftsimio's flux-conserving numba projection.

Not a test: prints figures. For each particle count, a cluster-like particle set (NFW
radial profile, smoothing lengths from the 150th neighbour via scipy cKDTree) is
projected onto 1920 x 1920 pixels of 9 kpc by

* ``szmass.sph.project`` (Wendland C4, exact pixel integrals, tiled and deterministic);
* swiftsimio's ``projection_backends.renormalised.scatter_parallel`` (Wendland C2 sampled
  at pixel centres, renormalised per particle; float32, fastmath),

with 1 and 2 numba threads. Each case runs in a fresh subprocess, warms the JIT up on a
small input first, reports the best of ``--repeat`` timings and the process's peak
resident memory (``ru_maxrss``) before and after the projections. Particle sets are
cached under benchmarks/out/ (gitignored).

Usage::

    .venv/bin/python benchmarks/projection.py            # 1e6 and 4e6 particles
    .venv/bin/python benchmarks/projection.py --n 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.spatial import cKDTree

OUT = Path(__file__).resolve().parent / "out"
NPIX = 1920
PIXEL_KPC = 9.0
N_NEIGHBOURS = 150
SEED = 20220607
R_S_KPC = 350.0  # NFW scale radius
R_MAX_KPC = 3000.0  # truncation radius of the sampled profile (the map spans +-8640 kpc)


def nfw_particles(n: int, seed: int) -> dict[str, np.ndarray]:
    """Particles with an NFW mass profile: positions [kpc], support radii H [kpc], weights.

    H is the distance to the ``N_NEIGHBOURS``-th neighbour in 3D (GADGET's definition of
    the support radius); weights are uniform random in [0.5, 1.5).
    """
    rng = np.random.default_rng(seed)
    grid = np.geomspace(1e-3, R_MAX_KPC / R_S_KPC, 4096)
    mass = np.log1p(grid) - grid / (1.0 + grid)
    inverse_cdf = PchipInterpolator(mass / mass[-1], grid)
    radius = R_S_KPC * inverse_cdf(rng.uniform(mass[0] / mass[-1], 1.0, n))
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    pos = radius[:, None] * direction
    distance, _ = cKDTree(pos).query(pos, k=[N_NEIGHBOURS + 1], workers=-1)
    return {
        "x": pos[:, 0],
        "y": pos[:, 1],
        "hsml": distance[:, 0],
        "weight": rng.uniform(0.5, 1.5, n),
    }


def load_particles(n: int) -> dict[str, np.ndarray]:
    """The cached particle set of ``n`` particles (generated on first use)."""
    path = OUT / f"nfw_{n}_{SEED}.npz"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        np.savez(path, **nfw_particles(n, SEED))
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _szmass_runner():
    from szmass.sph import project

    def run(p: dict[str, np.ndarray]) -> np.ndarray:
        return project(p["x"], p["y"], p["hsml"], p["weight"], npix=NPIX, pixel_size=PIXEL_KPC)

    return run


def _swiftsimio_runner():
    """swiftsimio's renormalised backend; returns the map in the same layout and units."""
    from swiftsimio.visualisation.projection_backends.kernels import kernel_gamma
    from swiftsimio.visualisation.projection_backends.renormalised import scatter_parallel

    side = NPIX * PIXEL_KPC

    def run(p: dict[str, np.ndarray]) -> np.ndarray:
        # Box coordinates in [0, 1); swiftsimio's kernel support is kernel_gamma * h.
        x = p["x"] / side + 0.5
        y = p["y"] / side + 0.5
        h = (p["hsml"] / side / float(kernel_gamma)).astype(np.float32)
        m = p["weight"].astype(np.float32)
        image = scatter_parallel(x, y, m, h, NPIX)  # image[ix, iy], per unit box area
        return image.T.astype(np.float64) / side**2

    return run


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(method: str, n: int, threads: int, repeat: int) -> dict[str, object]:
    """Time one (method, particle count, thread count) case in this process."""
    import numba

    numba.set_num_threads(threads)
    run = {"szmass": _szmass_runner, "swiftsimio": _swiftsimio_runner}[method]()
    small = {key: value[:2000] for key, value in load_particles(20000).items()}
    run(small)  # JIT warm-up (compilation or cache load)
    particles = load_particles(n)
    rss_before = _peak_rss_mib()
    times, cpu_times = [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        image = run(particles)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return {
        "method": method,
        "n": n,
        "threads": threads,
        "seconds": min(times),
        "cpu_seconds": cpu_times[int(np.argmin(times))],
        "rss_before_mib": rss_before,
        "rss_peak_mib": _peak_rss_mib(),
        "map_sha256": hashlib.sha256(image.tobytes()).hexdigest()[:16],
        # every support lies inside the map (describe() checks), so all weight must be there
        "conservation_error": image.sum() * PIXEL_KPC**2 / particles["weight"].sum() - 1.0,
    }


def describe(n: int) -> str:
    """Summary of the kernel sizes in pixels of the particle set; checks the map holds every support."""
    p = load_particles(n)
    half_side = 0.5 * NPIX * PIXEL_KPC
    reach = np.maximum(np.abs(p["x"]), np.abs(p["y"])) + p["hsml"]
    if reach.max() >= half_side:
        raise RuntimeError(f"a support reaches {reach.max():.0f} kpc, outside the map (+-{half_side:.0f} kpc)")
    q = np.percentile(p["hsml"] / PIXEL_KPC, [1, 10, 50, 90, 99])
    return (
        f"n = {n}: every support inside the map; H / pixel percentiles "
        f"1/10/50/90/99 = {q[0]:.1f}/{q[1]:.1f}/{q[2]:.1f}/{q[3]:.1f}/{q[4]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "N", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, n, threads = args.worker
        print(json.dumps(worker(method, int(n), int(threads), args.repeat)))
        return
    print(f"map {NPIX} x {NPIX} pixels of {PIXEL_KPC} kpc; best of {args.repeat}; JIT excluded")
    load_particles(20000)
    for n in args.n:
        start = time.perf_counter()
        load_particles(n)
        print(describe(n), f"(particle set ready in {time.perf_counter() - start:.1f} s)")
        results = {}
        for threads in args.threads:
            for method in ("szmass", "swiftsimio"):
                command = [sys.executable, __file__, "--repeat", str(args.repeat)]
                command += ["--worker", method, str(n), str(threads)]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                r = json.loads(output.strip().splitlines()[-1])
                results[method, threads] = r
                print(
                    f"  {method:10s} threads={threads}: {r['seconds']:6.3f} s ({r['cpu_seconds']:.3f} s CPU), "
                    f"peak RSS {r['rss_peak_mib']:5.0f} MiB ({r['rss_before_mib']:.0f} before projecting), "
                    f"map total / weight - 1 = {r['conservation_error']:+.1e}, sha256 {r['map_sha256']}"
                )
        for threads in args.threads:
            speedup = results["swiftsimio", threads]["seconds"] / results["szmass", threads]["seconds"]
            print(f"  speed-up of szmass over swiftsimio with {threads} thread(s): {speedup:.2f}x")
        hashes = {results["szmass", t]["map_sha256"] for t in args.threads}
        print(f"  szmass maps identical across thread counts: {len(hashes) == 1}")


if __name__ == "__main__":
    main()
