"""Simulation-based-inference posteriors of cluster masses (de Andres et al. 2022, uncertainties).

A Gaussian KDE of the test set's pairs (log10 M_CNN, log10 M_true) [log10 Msun],
``scipy.stats.gaussian_kde(..., bw_method=f)`` (a scalar ``bw_method`` is the bandwidth factor: kernel
covariance H = f^2 times the data covariance; the paper uses f = 0.2), is sliced at an observed prediction
x: p(t | x) is proportional to kde([x, t]).

The slice is evaluated exactly, not by brute force. With H = [[a, b], [b, c]] (prediction first), each
2-D kernel factorises into a Gaussian in x of variance a times a Gaussian in t of variance
s^2 = c - b^2 / a centred on mu_i(x) = t_i + (b / a)(x - p_i). So the posterior is a mixture of Gaussians
of common width s, weights w_i(x) proportional to exp(-(x - p_i)^2 / 2a):

* :meth:`KDEPosterior.cdf_at` (the PIT) uses the mixture's exact CDF, sum_i w_i Phi((t - mu_i) / s);
* :meth:`KDEPosterior.pdf` deposits the weights at mu_i on a uniform working grid (linear, "cloud in
  cell", which keeps each mixture's mass and mean) and convolves with the sampled Gaussian of width s
  (``scipy.signal.oaconvolve``): O(n_obs N + n_obs n_grid s / dt) instead of O(n_obs n_grid N).
  The working grid has spacing <= s / 8, which makes the relative error of the density ~1e-3 at most;
* :meth:`KDEPosterior.quantiles` start from the working grid's CDF and solve the exact CDF (safeguarded
  Halley steps), so that cdf_at(quantiles(q)) = q to 1e-12, also for a posterior that lies off the grid.

For a Gaussian population the KDE is the Gaussian of covariance (1 + f^2) Sigma in the large-N limit, so
the posterior keeps the exact conditional mean and is wider by sqrt(1 + f^2) (2% for f = 0.2): a central
interval of nominal level L covers 2 Phi(sqrt(1 + f^2) Phi^-1((1 + L) / 2)) - 1 (0.690 for L = 0.68).

A run's selected models carry their posteriors' inputs in ``posterior.json`` (:func:`write_posterior_pairs`),
so that ``szmass predict`` gives posterior percentiles (:class:`PosteriorPairs`).

Weights are computed relative to the nearest training prediction, so an observation outside the
predictions' range gets the posterior of its nearest neighbours (logged as a warning) rather than NaN.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, signal, special, stats

from szmass.atomic import atomic_path

log = logging.getLogger(__name__)

MIN_POINTS = 10
"""Fewest (prediction, truth) pairs a posterior is fitted on."""
DEFAULT_BW_FACTOR = 0.2
DEFAULT_GRID_SIZE = 2000
GRID_PAD_WIDTHS = 5.0
"""The default grid spans the truths' range padded by this many kernel widths sqrt(c) on each side."""
EXTRAPOLATION_WIDTHS = 5.0
"""An observation farther than this many kernel widths sqrt(a) from every training prediction is logged."""
_WORK_STEP = 1.0 / 8.0  # working-grid spacing in units of the conditional kernel width s
_TRUNCATE = 8.0  # Gaussian kernel truncated at 8 s
_MAX_ITERATIONS = 100
_CDF_TOL = 1e-12
_T_TOL = 1e-12  # dex
_SQRT_HALF = float(np.sqrt(0.5))
_CHUNK = 1 << 22  # floats per temporary array


def _check_pairs(log10_m_cnn: ArrayLike, log10_m_true: ArrayLike, *, min_points: int = MIN_POINTS
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    p = np.asarray(log10_m_cnn, dtype=float)
    t = np.asarray(log10_m_true, dtype=float)
    if p.ndim != 1 or t.ndim != 1 or p.size != t.size:
        raise ValueError(f"log10_m_cnn and log10_m_true must be 1-D of equal length, got shapes {p.shape} and "
                         f"{t.shape}")
    bad = ~(np.isfinite(p) & np.isfinite(t))
    if np.any(bad):
        raise ValueError(f"log10_m_cnn / log10_m_true: {int(bad.sum())} non-finite value(s), first at index "
                         f"{int(np.flatnonzero(bad)[0])}")
    if p.size < min_points:
        raise ValueError(f"a posterior needs at least {min_points} (prediction, truth) pairs, got {p.size}")
    return p, t


def _observations(log10_m_cnn_obs: ArrayLike) -> NDArray[np.float64]:
    x = np.atleast_1d(np.asarray(log10_m_cnn_obs, dtype=float))
    if x.ndim != 1:
        raise ValueError(f"observed log10 M_CNN must be a scalar or 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"observed log10 M_CNN: {int((~np.isfinite(x)).sum())} non-finite value(s)")
    return x


class KDEPosterior:
    """p(log10 M_true | log10 M_CNN) from a Gaussian KDE of a test set's (prediction, truth) pairs
    [log10 Msun] with bandwidth factor ``bw_factor`` (module docs).

    ``grid`` [log10 Msun], strictly increasing, is where :meth:`pdf` is given; default: 2000 points over
    the truths' range padded by 5 kernel widths. Attributes: ``kde`` (the scipy object), ``grid``,
    ``slope`` (b / a), ``width`` (s, the conditional kernel width [dex]).
    """

    def __init__(
        self,
        log10_m_cnn: ArrayLike,
        log10_m_true: ArrayLike,
        *,
        bw_factor: float = DEFAULT_BW_FACTOR,
        grid: ArrayLike | None = None,
    ) -> None:
        p, t = _check_pairs(log10_m_cnn, log10_m_true)
        if not (np.isfinite(bw_factor) and bw_factor > 0):
            raise ValueError(f"bw_factor must be finite and > 0, got {bw_factor!r}")
        try:
            self.kde = stats.gaussian_kde(np.vstack([p, t]), bw_method=float(bw_factor))
        except np.linalg.LinAlgError as err:
            raise ValueError(f"KDE of {p.size} (prediction, truth) pairs: singular covariance ({err}); "
                             "the predictions or truths are constant or exactly collinear") from err
        (a, b), (_, c) = self.kde.covariance
        s2 = c - b * b / a
        if not s2 > 1e-10 * c:  # 1 - rho^2 < 1e-10
            raise ValueError("KDE covariance has no width in log10 M_true at fixed log10 M_CNN (collinear pairs)")
        self.bw_factor = float(bw_factor)
        self.slope = float(b / a)
        self.width = float(np.sqrt(s2))
        self._h_p = float(np.sqrt(a))
        self._p = p
        self._p_sorted = np.sort(p)
        self._c0 = t - self.slope * p  # mu_i(x) = c0_i + slope x
        if grid is None:
            pad = GRID_PAD_WIDTHS * np.sqrt(c)
            self.grid = np.linspace(t.min() - pad, t.max() + pad, DEFAULT_GRID_SIZE)
        else:
            g = np.asarray(grid, dtype=float)
            if g.ndim != 1 or g.size < 2 or not np.all(np.isfinite(g)) or not np.all(np.diff(g) > 0):
                raise ValueError(f"grid must be >= 2 finite, strictly increasing log10 masses, got shape {g.shape}")
            self.grid = g
        self._setup_work_grid()

    def _setup_work_grid(self) -> None:
        """A uniform grid of spacing <= width / 8 over the grid's span (the grid itself when it qualifies)."""
        g = self.grid
        step = np.diff(g)
        if np.allclose(step, step[0], rtol=1e-9, atol=0.0) and step[0] <= _WORK_STEP * self.width:
            self._work = g
        else:
            n = int(np.ceil((g[-1] - g[0]) / (_WORK_STEP * self.width))) + 1
            if n > 1_000_000:
                raise ValueError(f"grid span {g[-1] - g[0]:.3g} dex needs {n} working points at the posterior's "
                                 f"width {self.width:.3g} dex; use a narrower grid")
            self._work = np.linspace(g[0], g[-1], max(n, 2))
        self._dt = float(self._work[1] - self._work[0])
        self._pad = int(np.ceil(_TRUNCATE * self.width / self._dt)) + 1
        self._same = self._work is g
        if not self._same:
            j = np.clip(np.searchsorted(self._work, g, side="right") - 1, 0, self._work.size - 2)
            self._interp = (j, (g - self._work[j]) / self._dt)

    # -- the mixture ------------------------------------------------------------------------------------
    def _weights(self, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Mixture weights (rows sum to 1) and centres mu_i(x) [log10 Msun], each (len(x), N)."""
        d2 = ((x[:, None] - self._p[None, :]) / self._h_p) ** 2
        nearest = d2.min(axis=1)
        w = np.exp(-0.5 * (d2 - nearest[:, None]))
        w /= w.sum(axis=1, keepdims=True)
        return w, self._c0[None, :] + self.slope * x[:, None]

    def _chunks(self, n_obs: int, per_obs: int) -> list[slice]:
        size = max(1, _CHUNK // max(per_obs, 1))
        return [slice(i, min(i + size, n_obs)) for i in range(0, n_obs, size)]

    def _warn_extrapolation(self, x: NDArray[np.float64]) -> None:
        """Log the observations farther than EXTRAPOLATION_WIDTHS kernel widths from every training prediction."""
        j = np.clip(np.searchsorted(self._p_sorted, x), 1, self._p_sorted.size - 1)
        gap = np.minimum(np.abs(x - self._p_sorted[j - 1]), np.abs(x - self._p_sorted[j])) / self._h_p
        far = gap > EXTRAPOLATION_WIDTHS
        if np.any(far):
            log.warning("%d observation(s) lie more than %g kernel widths from every training prediction "
                        "(first log10 M_CNN = %.3f): their posterior is that of the nearest predictions",
                        int(far.sum()), EXTRAPOLATION_WIDTHS, float(x[far][0]))

    def _work_pdf(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Unnormalised-by-grid densities [1/dex] on the working grid, (len(x), n_work)."""
        n_work = self._work.size
        n_pad = n_work + 2 * self._pad
        origin = self._work[0] - self._pad * self._dt
        out = np.empty((x.size, n_work))
        kernel = np.exp(-0.5 * (np.arange(-self._pad, self._pad + 1) * self._dt / self.width) ** 2)
        kernel /= kernel.sum()
        for sl in self._chunks(x.size, max(self._p.size, n_pad)):
            w, mu = self._weights(x[sl])
            u = (mu - origin) / self._dt
            j = np.floor(u)
            frac = u - j
            w = np.where((j >= 0) & (j < n_pad - 1), w, 0.0)  # centres beyond the padded grid: < 1e-14 on it
            flat = (np.clip(j, 0, n_pad - 2).astype(np.int64) + (np.arange(w.shape[0]) * n_pad)[:, None]).ravel()
            m = w.shape[0] * n_pad
            dep = (np.bincount(flat, weights=(w * (1.0 - frac)).ravel(), minlength=m)
                   + np.bincount(flat + 1, weights=(w * frac).ravel(), minlength=m)).reshape(w.shape[0], n_pad)
            smooth = signal.oaconvolve(dep, kernel[None, :], mode="same", axes=1)
            out[sl] = np.maximum(smooth[:, self._pad:self._pad + n_work], 0.0) / self._dt
        return out

    def _exact(self, x: NDArray[np.float64], t: NDArray[np.float64], *, derivatives: bool = True
               ) -> tuple[NDArray, NDArray, NDArray]:
        """Exact mixture CDF, density [1/dex] and its derivative [1/dex^2] (the last two NaN unless
        ``derivatives``) at t[k, j] for observation x[k]; t has shape (len(x), m)."""
        cdf, pdf, slope = np.empty(t.shape), np.full(t.shape, np.nan), np.full(t.shape, np.nan)
        for sl in self._chunks(x.size, self._p.size * t.shape[1]):
            w, mu = self._weights(x[sl])
            z = (t[sl, :, None] - mu[:, None, :]) / self.width
            cdf[sl] = 0.5 * np.einsum("kjn,kn->kj", special.erfc(z * -_SQRT_HALF), w)  # Phi(z), 3x faster than ndtr
            if derivatives:
                phi = np.exp(-0.5 * z * z) / (self.width * np.sqrt(2.0 * np.pi))
                pdf[sl] = np.einsum("kjn,kn->kj", phi, w)
                slope[sl] = -np.einsum("kjn,kn->kj", phi * z, w) / self.width
        return cdf, pdf, slope

    # -- public -----------------------------------------------------------------------------------------
    def pdf(self, log10_m_cnn_obs: ArrayLike) -> NDArray[np.float64]:
        """Posterior densities [1 / dex] of log10 M_true on ``self.grid``, (n_obs, n_grid), each row
        normalised to unit integral on the grid (trapezoid rule)."""
        x = _observations(log10_m_cnn_obs)
        self._warn_extrapolation(x)
        dens = self._work_pdf(x)
        if not self._same:
            j, f = self._interp
            dens = dens[:, j] * (1.0 - f) + dens[:, j + 1] * f
        norm = integrate.trapezoid(dens, self.grid, axis=1)  # the posterior's mass on the grid
        short = ~(norm > 0.99)
        if np.any(short):
            log.warning("%d posterior(s) have less than 99%% of their mass on the grid [%.3f, %.3f] "
                        "(least %.3g); densities renormalised on the grid (NaN where none)",
                        int(short.sum()), self.grid[0], self.grid[-1], float(norm.min()))
        with np.errstate(invalid="ignore", divide="ignore"):
            return dens / np.where(norm > 0, norm, np.nan)[:, None]

    def cdf_at(self, log10_m_cnn_obs: ArrayLike, log10_m_true: ArrayLike) -> NDArray[np.float64]:
        """P(log10 M_true <= log10_m_true | log10_m_cnn_obs) for each (observation, truth) pair, the
        probability integral transform (PIT) of the truth; exact (module docs), shape of the inputs."""
        x = _observations(log10_m_cnn_obs)
        t = np.atleast_1d(np.asarray(log10_m_true, dtype=float))
        if t.shape != x.shape or not np.all(np.isfinite(t)):
            raise ValueError(f"log10_m_true must be finite with the observations' shape {x.shape}, got {t.shape}")
        self._warn_extrapolation(x)
        cdf = self._exact(x, t[:, None], derivatives=False)[0][:, 0]
        return np.clip(cdf, 0.0, 1.0)  # the weights' sum is 1 only to rounding (1 + 7e-16 seen)

    def quantiles(self, log10_m_cnn_obs: ArrayLike, q: Sequence[float] = (0.16, 0.5, 0.84)) -> NDArray[np.float64]:
        """Posterior quantiles of log10 M_true [log10 Msun], (n_obs, len(q)): the working grid's CDF
        interpolated, then solved on the exact CDF (safeguarded Halley steps) to |CDF - q| < 1e-12."""
        x = _observations(log10_m_cnn_obs)
        qq = np.asarray(q, dtype=float)
        if qq.ndim != 1 or qq.size == 0 or not np.all((qq > 0) & (qq < 1)):
            raise ValueError(f"quantile levels must be a non-empty 1-D sequence in (0, 1), got {q!r}")
        self._warn_extrapolation(x)
        out = np.empty((x.size, qq.size))
        for sl in self._chunks(x.size, max(self._p.size, self._work.size)):
            cdf = integrate.cumulative_trapezoid(self._work_pdf(x[sl]), self._work, axis=1, initial=0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                cdf /= cdf[:, -1:]  # NaN for a posterior with no mass on the grid: the solver bisects
            out[sl] = [np.interp(qq, row, self._work) for row in cdf]
        return self._solve_quantiles(x, qq, out)

    def _solve_quantiles(self, x: NDArray, qq: NDArray, start: NDArray) -> NDArray[np.float64]:
        """Solve CDF(t | x_k) = q_j on the exact mixture from ``start`` (n_obs, n_q): Halley steps kept inside
        a bracket, bisection when a step leaves it. The initial bracket holds every mixture centre +- 40
        widths, so posteriors that lie off the grid are found too."""
        lo = np.broadcast_to((self._c0.min() + self.slope * x - 40.0 * self.width)[:, None], start.shape).copy()
        hi = np.broadcast_to((self._c0.max() + self.slope * x + 40.0 * self.width)[:, None], start.shape).copy()
        t = np.where(np.isfinite(start), np.clip(start, lo, hi), 0.5 * (lo + hi))
        done = np.zeros(t.shape, dtype=bool)
        for _ in range(_MAX_ITERATIONS):
            r = np.flatnonzero(~done.all(axis=1))
            if r.size == 0:
                break
            f, dens, dslope = self._exact(x[r], t[r])
            miss = f - qq[None, :]
            act = ~done[r]
            lo[r] = np.where(act & (miss < 0), t[r], lo[r])
            hi[r] = np.where(act & (miss >= 0), t[r], hi[r])
            fin = act & ((np.abs(miss) < _CDF_TOL) | (hi[r] - lo[r] < _T_TOL))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                newton = miss / dens
                curve = 0.5 * newton * dslope / dens
                step = np.where(np.abs(curve) < 0.5, newton / (1.0 - curve), newton)
                trial = t[r] - step
            inside = (dens > 0) & (trial > lo[r]) & (trial < hi[r])
            trial = np.where(inside, trial, 0.5 * (lo[r] + hi[r]))
            t[r] = np.where(act & ~fin, trial, t[r])
            done[r] |= fin
        if not done.all():
            log.warning("%d posterior quantile(s) did not converge to |CDF - q| < %g", int((~done).sum()), _CDF_TOL)
        return t


def interval_coverage(pit: ArrayLike, levels: Sequence[float] = (0.68, 0.95)) -> dict[str, float]:
    """Fraction of PIT values inside the central interval of each level L (|pit - 0.5| <= L / 2) and its
    binomial standard error sqrt(c (1 - c) / n): keys ``coverage_68``, ``stderr_68``, ``coverage_95``,
    ``stderr_95`` (the level in percent, ``%g``). NaNs for an empty input."""
    u = np.asarray(pit, dtype=float).ravel()
    if not np.all(np.isfinite(u) & (u >= 0) & (u <= 1)):
        raise ValueError("PIT values must be finite and in [0, 1]")
    out: dict[str, float] = {}
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"interval level must be in (0, 1), got {level!r}")
        key = f"{100.0 * level:g}"
        c = float(np.mean(np.abs(u - 0.5) <= level / 2.0)) if u.size else np.nan
        out[f"coverage_{key}"] = c
        out[f"stderr_{key}"] = float(np.sqrt(c * (1.0 - c) / u.size)) if u.size else np.nan
    return out


def group_folds(groups: ArrayLike, n_folds: int, *, seed: int) -> NDArray[np.int64]:
    """Fold index (0 .. n_folds - 1) of each item such that all items of one group share a fold: the
    distinct groups (sorted) are shuffled with ``numpy.random.default_rng(seed)`` and dealt round robin,
    so fold sizes in groups differ by at most one."""
    g = np.asarray(groups)
    if g.ndim != 1:
        raise ValueError(f"groups must be 1-D, got shape {g.shape}")
    distinct, inverse = np.unique(g, return_inverse=True)
    if int(n_folds) != n_folds or n_folds < 2 or distinct.size < n_folds:
        raise ValueError(f"{distinct.size} distinct groups cannot fill {n_folds!r} folds (need n_folds >= 2)")
    fold_of_group = np.empty(distinct.size, dtype=np.int64)
    fold_of_group[np.random.default_rng(seed).permutation(distinct.size)] = np.arange(distinct.size) % int(n_folds)
    return fold_of_group[inverse]


def crossfit_pit(
    log10_m_cnn: ArrayLike,
    log10_m_true: ArrayLike,
    groups: ArrayLike,
    *,
    n_folds: int = 2,
    seed: int,
    bw_factor: float = DEFAULT_BW_FACTOR,
) -> NDArray[np.float64]:
    """PIT of each map's truth under the posterior fitted on the OTHER folds (:func:`group_folds` by
    ``groups``, e.g. cluster identity, so no cluster is on both sides): the honest calibration of the
    posteriors on held-out maps. Inputs are log10 masses [Msun]; output in [0, 1], one per map."""
    p, t = _check_pairs(log10_m_cnn, log10_m_true)
    g = np.asarray(groups)
    if g.shape != p.shape:
        raise ValueError(f"groups must have one entry per map ({p.size}), got shape {g.shape}")
    folds = group_folds(g, n_folds, seed=seed)
    pit = np.empty(p.size)
    for k in range(int(n_folds)):
        held = folds == k
        posterior = KDEPosterior(p[~held], t[~held], bw_factor=bw_factor)
        pit[held] = posterior.cdf_at(p[held], t[held])
    return pit


LEVEL_FLOOR = 1e-6
"""Calibrated posterior levels are kept inside [LEVEL_FLOOR, 1 - LEVEL_FLOOR], so that they stay finite
quantiles of the posterior (a PIT of 0 or 1 means a truth beyond every kernel of its posterior)."""


@dataclass(frozen=True)
class PITRecalibration:
    """Recalibration of posteriors by the distribution of their held-out PIT values (Kuleshov et al. 2018).

    With R the CDF of the held-out PITs (``pit``, sorted; piecewise linear between order statistics, the
    inverse of ``numpy.quantile``'s default), the recalibrated posterior CDF is R(F(t | x)): its quantile
    of level q is the posterior's quantile of level R^-1(q), the q-quantile of the held-out PITs
    (:meth:`levels`), and the recalibrated PIT of a truth is R(PIT) (:meth:`transform`). A Gaussian
    posterior too narrow by a factor k (PIT = Phi(k Z), Z standard normal) gets its quantile of level q from
    its level Phi(k Phi^-1(q)): its 68% interval from Phi(-/+ 0.994 k).
    The map is marginal: it corrects the posteriors' average miscalibration over the PITs' population.
    """

    pit: NDArray[np.float64]

    @classmethod
    def fit(cls, pit: ArrayLike) -> PITRecalibration:
        """The recalibration of held-out PIT values (>= 2, finite, in [0, 1])."""
        u = np.sort(np.asarray(pit, dtype=float).ravel())
        if u.size < 2 or not np.all(np.isfinite(u) & (u >= 0) & (u <= 1)):
            raise ValueError(f"a PIT recalibration needs >= 2 finite PIT values in [0, 1], got {u.size} "
                             f"({int((~(np.isfinite(u) & (u >= 0) & (u <= 1))).sum())} invalid)")
        return cls(u)

    def levels(self, q: ArrayLike) -> NDArray[np.float64]:
        """Posterior levels R^-1(q) that give the recalibrated quantiles of levels ``q`` (in (0, 1)),
        kept inside [LEVEL_FLOOR, 1 - LEVEL_FLOOR]."""
        qq = np.asarray(q, dtype=float)
        if not np.all((qq > 0) & (qq < 1)):
            raise ValueError(f"quantile levels must be in (0, 1), got {q!r}")
        return np.clip(np.quantile(self.pit, qq), LEVEL_FLOOR, 1.0 - LEVEL_FLOOR)

    def transform(self, pit: ArrayLike) -> NDArray[np.float64]:
        """Recalibrated PIT values R(pit) in [0, 1]."""
        u = np.asarray(pit, dtype=float)
        if not np.all(np.isfinite(u) & (u >= 0) & (u <= 1)):
            raise ValueError("PIT values must be finite and in [0, 1]")
        return np.interp(u, self.pit, np.linspace(0.0, 1.0, self.pit.size))


def crossfit_recalibrated_pit(pit: ArrayLike, groups: ArrayLike, *, n_folds: int, seed: int) -> NDArray[np.float64]:
    """Recalibrated PIT of each map under the :class:`PITRecalibration` fitted on the PITs of the OTHER
    folds (:func:`group_folds` by ``groups``, e.g. cluster identity): no map, and no map of its cluster,
    recalibrates itself, so that the coverage of these values is that of recalibrated posteriors on
    held-out clusters. ``pit``: held-out PITs (e.g. :func:`crossfit_pit`), one per map."""
    u = np.asarray(pit, dtype=float)
    g = np.asarray(groups)
    if u.ndim != 1 or g.shape != u.shape:
        raise ValueError(f"pit and groups must be 1-D of equal length, got shapes {u.shape} and {g.shape}")
    folds = group_folds(g, n_folds, seed=seed)
    out = np.empty(u.size)
    for k in range(int(n_folds)):
        held = folds == k
        out[held] = PITRecalibration.fit(u[~held]).transform(u[held])
    return out


POSTERIOR_FILE = "posterior.json"
"""What `szmass predict` needs for posteriors, next to a run's models (``results/models/{dataset}/``)."""
POSTERIOR_COLUMNS = ("zbin", "log10_M_cnn", "log10_M_true")


MIN_TEST_MAPS = 20
"""Fewest test maps of a bin for a posterior of its own; fewer and the bins' test maps are pooled."""


def bin_posteriors(
    tests: pd.DataFrame, zbins: np.ndarray, *, bw_factor: float = DEFAULT_BW_FACTOR, min_test_maps: int = MIN_TEST_MAPS
) -> dict[int, tuple[KDEPosterior, bool]]:
    """The posterior of each bin in ``zbins`` from the test predictions ``tests`` (columns zbin,
    log10_M_cnn, log10_M_true): (KDE of the bin's test maps, False), or (KDE of all test maps, True) for a
    bin with fewer than ``min_test_maps``."""
    pooled: KDEPosterior | None = None
    out: dict[int, tuple[KDEPosterior, bool]] = {}
    for zbin in sorted({int(b) for b in zbins}):
        part = tests[tests["zbin"] == zbin]
        if len(part) >= min_test_maps:
            out[zbin] = (KDEPosterior(part["log10_M_cnn"], part["log10_M_true"], bw_factor=bw_factor), False)
            continue
        if pooled is None:
            if len(tests) < min_test_maps:
                raise ValueError(f"test predictions: {len(tests)} test maps in all bins, fewer than the "
                                 f"{min_test_maps} needed for a posterior")
            pooled = KDEPosterior(tests["log10_M_cnn"], tests["log10_M_true"], bw_factor=bw_factor)
        log.warning("redshift bin %d has %d test maps (< %d): its posteriors use all bins' %d test maps",
                    zbin, len(part), min_test_maps, len(tests))
        out[zbin] = (pooled, True)
    return out


@dataclass(frozen=True)
class PosteriorPairs:
    """The test set's (prediction, truth) pairs of a run's selected models, per redshift bin (columns zbin,
    log10_M_cnn, log10_M_true [log10 Msun]), and the KDE settings of the posteriors built from them."""

    pairs: pd.DataFrame
    bw_factor: float
    min_test_maps: int

    def percentiles(self, zbins: ArrayLike, log10_m_cnn: ArrayLike, q: Sequence[float] = (0.16, 0.5, 0.84)) -> NDArray[np.float64]:
        """Posterior quantiles ``q`` of log10 M500 [Msun], (n, len(q)), of predictions ``log10_m_cnn`` made by the
        models of redshift bins ``zbins``: the KDE of each bin's test pairs (all bins' where a bin has fewer than
        ``min_test_maps``; :func:`bin_posteriors`, as the catalogue's), sliced at the prediction."""
        b = np.asarray(zbins, dtype=np.int64)
        x = np.asarray(log10_m_cnn, dtype=float)
        out = np.full((x.size, len(q)), np.nan)
        for zbin, (posterior, _) in bin_posteriors(self.pairs, b, bw_factor=self.bw_factor,
                                                   min_test_maps=self.min_test_maps).items():  # fmt: skip
            rows = np.flatnonzero(b == zbin)
            out[rows] = posterior.quantiles(x[rows], q)
        return out


def write_posterior_pairs(
    path: str | os.PathLike[str], tests: pd.DataFrame, *, bw_factor: float = DEFAULT_BW_FACTOR, min_test_maps: int
) -> None:
    """Write the test pairs (``tests``: zbin, log10_M_cnn, log10_M_true, e.g. the selected models' test
    predictions) and the KDE settings to the JSON file ``path`` atomically (:func:`read_posterior_pairs`)."""
    missing = [c for c in POSTERIOR_COLUMNS if c not in tests.columns]
    if missing:
        raise ValueError(f"test predictions: column(s) {missing} missing; expected {list(POSTERIOR_COLUMNS)}")
    _check_pairs(tests["log10_M_cnn"], tests["log10_M_true"])
    doc = {"bw_factor": float(bw_factor), "min_test_maps": int(min_test_maps),
           "zbin": [int(b) for b in tests["zbin"]]} | {c: [float(v) for v in tests[c]] for c in POSTERIOR_COLUMNS[1:]}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(doc) + "\n")


def read_posterior_pairs(path: str | os.PathLike[str]) -> PosteriorPairs:
    """The :class:`PosteriorPairs` of a file of :func:`write_posterior_pairs`; ValueError naming the file and field."""
    try:
        doc = json.loads(Path(path).read_text())
        pairs = pd.DataFrame({c: doc[c] for c in POSTERIOR_COLUMNS})
        settings = float(doc["bw_factor"]), int(doc["min_test_maps"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: expected fields bw_factor, min_test_maps and equal-length lists "
                         f"{list(POSTERIOR_COLUMNS)}: {err!r}") from err  # fmt: skip
    _check_pairs(pairs["log10_M_cnn"], pairs["log10_M_true"])
    return PosteriorPairs(pairs, *settings)
