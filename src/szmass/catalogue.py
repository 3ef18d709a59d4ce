"""The sky's CNN masses and the mass catalogue (``results/catalogue/psz2_cnn_masses.{csv,fits}``).

:func:`sky_predictions` runs the selected models of each redshift bin on the sky's cutouts.
:func:`build_catalogue` adds each cluster's posterior (:class:`szmass.sbi.KDEPosterior` fitted on the
test maps of its bin; the test maps of all bins pooled where a bin has fewer than ``min_test_maps``) and
the Y500 that the Planck Y-M relation (:mod:`szmass.scaling`, slope 1.79) gives for the posterior
median and its 16th-84th percentile masses, and the recalibrated percentiles
(:class:`szmass.sbi.PITRecalibration` of the held-out PITs of :func:`posterior_calibration`).
:func:`write_catalogue` writes the CSV and a FITS table whose columns carry units.

Columns (masses in Msun, Y500 spherical in arcmin^2): NAME, GLON, GLAT [deg], REDSHIFT, ZBIN, MSZ (PSZ2's
hydrostatic mass), LOG10_MSZ, LOG10_M_CNN (the network's point prediction), LOG10_M500_P16, _P50, _P84 (the
posterior's percentiles of log10 M500), M_CNN (the posterior median), M_CNN_ERR_UP, M_CNN_ERR_LOW (84th minus
median, median minus 16th), M500_CAL_P2_5, M500_CAL_P16, M500_CAL_P50, M500_CAL_P84, M500_CAL_P97_5 (the
recalibrated posterior's percentiles of M500: 16-84 and 2.5-97.5 are its 68% and 95% intervals), Y500_CNN,
Y500_CNN_ERR_UP, Y500_CNN_ERR_LOW, GOLDEN, POSTERIOR_POOLED (the bin's test set was too small and all bins'
test maps were used), WARNING ('' or why the cutout or its prediction lies out of range,
:func:`szmass.predict.range_warnings`), LOG10_M_CNN_STD and N_RUNS (the epistemic spread [dex]: the standard
deviation of log10 M_CNN across the runs the bin's estimate averages, or else its ensemble of passing runs,
:func:`szmass.runs.spread_members`, and their number) where the sky's
predictions have them, and for a synthetic sky M500_TRUE (the injected halo's M500).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from astropy import units as u
from astropy.cosmology import FLRW
from astropy.table import Table

from szmass.atomic import atomic_path
from szmass.sbi import (
    DEFAULT_BW_FACTOR,
    MIN_TEST_MAPS,
    KDEPosterior,
    PITRecalibration,
    bin_posteriors,
    crossfit_recalibrated_pit,
    group_folds,
    interval_coverage,
)
from szmass.scaling import ALPHA_PLANCK, y500_from_m500
from szmass.tables import write_table
from szmass.zbins import redshift_bins

if TYPE_CHECKING:  # TensorFlow is loaded only by sky_predictions, so the CPU rules import this module without it
    import keras

    from szmass.predict import MassModels

log = logging.getLogger(__name__)

SKY_COORDS = ("name", "glon", "glat", "redshift", "MSZ", "golden")
UNITS = {"GLON": u.deg, "GLAT": u.deg, "MSZ": u.Msun, "M_CNN": u.Msun, "M_CNN_ERR_UP": u.Msun,
         "M_CNN_ERR_LOW": u.Msun, "Y500_CNN": u.arcmin**2, "Y500_CNN_ERR_UP": u.arcmin**2,
         "Y500_CNN_ERR_LOW": u.arcmin**2, "M500_TRUE": u.Msun}
CALIBRATED = {"M500_CAL_P2_5": 0.025, "M500_CAL_P16": 0.16, "M500_CAL_P50": 0.5, "M500_CAL_P84": 0.84,
              "M500_CAL_P97_5": 0.975}
"""The recalibrated posterior percentiles of the catalogue [Msun] and their levels."""
UNITS |= dict.fromkeys(CALIBRATED, u.Msun)
LOG_COMMENT = ("LOG10_* columns: log10 of masses in solMass, LOG10_M_CNN_STD a standard deviation of log10 M_CNN "
               "in dex (no FITS unit for a logarithm)")


def sky_predictions(
    ds: xr.Dataset, models: MassModels, *, members: Mapping[int, Sequence[keras.Model]] | None = None,
    source: str = "sky cutouts",
) -> pd.DataFrame:
    """CNN masses of every sky cutout (``results/sky/cutouts.zarr``) with the model of its redshift bin:
    columns name, glon, glat [deg], redshift, zbin, log10_MSZ, log10_M_cnn [log10 Msun], golden, and
    log10_M_true where the store has the injected truth ``M500`` (a synthetic sky); warning ('' or why the cutout
    or its prediction is out of range, :func:`szmass.predict.range_warnings`). With ``members`` (bin -> the
    models whose spread is the epistemic uncertainty, :func:`szmass.runs.spread_members`), also
    log10_M_cnn_std, the standard deviation of log10 M_CNN across them (ddof = 1; 0 for one member) [dex],
    the epistemic part of the mass's uncertainty, and n_runs; NaN and 0 in a bin without members."""
    missing = [c for c in (*SKY_COORDS, "y") if c not in ds.variables]
    if missing:
        raise ValueError(f"{source}: variable(s) {missing} missing; expected y and coordinates {list(SKY_COORDS)}")
    z = np.asarray(ds["redshift"].values, dtype=float)
    msz = np.asarray(ds["MSZ"].values, dtype=float)
    names = np.asarray(ds["name"].values).astype(object).astype(str)
    from szmass.predict import predict_checked, predict_masses

    y = np.asarray(ds["y"].values)  # read once: a lazily opened store would decode the cube at each access
    log_m, warnings = predict_checked(y, z, models, labels=list(names))
    table = pd.DataFrame({
        "name": names,
        "glon": np.asarray(ds["glon"].values, dtype=float),
        "glat": np.asarray(ds["glat"].values, dtype=float),
        "redshift": z,
        "zbin": redshift_bins(z, models.edges),
        "log10_MSZ": np.where(msz > 0, np.log10(np.where(msz > 0, msz, 1.0)), np.nan),
        "log10_M_cnn": log_m,
        "golden": np.asarray(ds["golden"].values, dtype=bool),
        "warning": warnings,
    })
    if "M500" in ds.variables:
        table["log10_M_true"] = np.log10(np.asarray(ds["M500"].values, dtype=float))
    if members is not None:
        table["log10_M_cnn_std"], table["n_runs"] = np.nan, 0
        for zbin, runs in members.items():
            rows = (table["zbin"] == zbin).to_numpy()
            if not rows.any() or not runs:
                continue
            stack = np.stack([predict_masses(y[rows], z[rows], {zbin: m}, edges=models.edges,
                                             labels=list(names[rows])) for m in runs])  # fmt: skip
            table.loc[rows, "log10_M_cnn_std"] = stack.std(axis=0, ddof=1) if len(runs) > 1 else 0.0
            table.loc[rows, "n_runs"] = len(runs)
    return table


def build_catalogue(
    sky: pd.DataFrame, tests: pd.DataFrame, cosmo: FLRW, *, bw_factor: float = DEFAULT_BW_FACTOR,
    min_test_maps: int = MIN_TEST_MAPS, alpha: float = ALPHA_PLANCK,
    posteriors: Mapping[int, tuple[KDEPosterior, bool]] | None = None,
    recalibration: PITRecalibration | None = None,
) -> pd.DataFrame:
    """The catalogue (module docs) from the sky's predictions (:func:`sky_predictions`) and the test
    predictions of the same models (columns zbin, log10_M_cnn, log10_M_true); ``posteriors`` (from
    :func:`bin_posteriors` for the sky's bins) saves fitting them again where the caller has them; with
    ``recalibration``, the recalibrated percentiles (``CALIBRATED``) too."""
    quantiles = np.full((len(sky), 3), np.nan)
    calibrated = np.full((len(sky), len(CALIBRATED)), np.nan)
    pooled = np.zeros(len(sky), dtype=bool)
    if posteriors is None:
        posteriors = bin_posteriors(tests, sky["zbin"].to_numpy(), bw_factor=bw_factor, min_test_maps=min_test_maps)
    for zbin, (posterior, was_pooled) in posteriors.items():
        rows = (sky["zbin"] == zbin).to_numpy()
        x = sky.loc[rows, "log10_M_cnn"].to_numpy()
        quantiles[rows] = posterior.quantiles(x, q=(0.16, 0.5, 0.84))
        if recalibration is not None:
            calibrated[rows] = posterior.quantiles(x, q=recalibration.levels(list(CALIBRATED.values())).tolist())
        pooled[rows] = was_pooled
    m16, m50, m84 = (10.0 ** quantiles[:, i] for i in range(3))
    z = sky["redshift"].to_numpy(float)
    y16, y50, y84 = (y500_from_m500(m, z, cosmo, alpha=alpha) for m in (m16, m50, m84))
    cat = pd.DataFrame({
        "NAME": sky["name"].to_numpy(), "GLON": sky["glon"].to_numpy(), "GLAT": sky["glat"].to_numpy(),
        "REDSHIFT": z, "ZBIN": sky["zbin"].to_numpy(), "MSZ": 10.0 ** sky["log10_MSZ"].to_numpy(),
        "LOG10_MSZ": sky["log10_MSZ"].to_numpy(), "LOG10_M_CNN": sky["log10_M_cnn"].to_numpy(),
        "LOG10_M500_P16": quantiles[:, 0], "LOG10_M500_P50": quantiles[:, 1], "LOG10_M500_P84": quantiles[:, 2],
        "M_CNN": m50, "M_CNN_ERR_UP": m84 - m50, "M_CNN_ERR_LOW": m50 - m16,
        **({name: 10.0 ** calibrated[:, i] for i, name in enumerate(CALIBRATED)} if recalibration else {}),
        "Y500_CNN": y50, "Y500_CNN_ERR_UP": y84 - y50, "Y500_CNN_ERR_LOW": y50 - y16,
        "GOLDEN": sky["golden"].to_numpy(bool), "POSTERIOR_POOLED": pooled,
    })
    if "warning" in sky:  # read back from CSV, an empty warning is NaN
        cat["WARNING"] = sky["warning"].fillna("").astype(str).to_numpy()
    if "log10_M_true" in sky:
        cat["M500_TRUE"] = 10.0 ** sky["log10_M_true"].to_numpy()
    if "log10_M_cnn_std" in sky:
        cat["LOG10_M_CNN_STD"] = sky["log10_M_cnn_std"].to_numpy(float)
        cat["N_RUNS"] = sky["n_runs"].to_numpy(int)
    return cat


def posterior_example_panels(
    cat: pd.DataFrame, posteriors: Mapping[int, tuple[KDEPosterior, bool]], *, seed: int, n_points: int = 1000,
) -> tuple[np.ndarray, list[np.ndarray], list[str], list[dict[str, float]]]:
    """The posteriors of six Golden clusters of the catalogue ``cat`` with a PSZ2 mass (the three with the
    largest M_SZ, three more drawn with ``numpy.random.default_rng(seed)``; fewer if there are fewer), for
    :func:`szmass.plots.posterior_examples`: a common grid [log10 Msun] of ``n_points`` over their bins'
    posterior grids, each density on it [1/dex] (0 outside its own grid), titles (name, redshift) and markers
    (log10 M_CNN, M_SZ and, for a synthetic sky, the truth; NaN where absent)."""
    golden = cat[cat["GOLDEN"] & np.isfinite(cat["LOG10_MSZ"])]
    top = golden.nlargest(3, "MSZ").index
    rest = golden.index.difference(top)
    picks = list(top) + list(np.random.default_rng(seed).choice(rest, min(3, len(rest)), replace=False))
    own = [posteriors[int(cat.at[i, "ZBIN"])][0] for i in picks]
    grid = np.linspace(min(p.grid[0] for p in own), max(p.grid[-1] for p in own), n_points)
    pdfs = [np.interp(grid, p.grid, p.pdf(np.array([cat.at[i, "LOG10_M_CNN"]]))[0], left=0.0, right=0.0)
            for i, p in zip(picks, own)]  # fmt: skip
    markers = [{"M_CNN": float(cat.at[i, "LOG10_M_CNN"]), "M_SZ": float(cat.at[i, "LOG10_MSZ"]),
                "truth": float(np.log10(cat.at[i, "M500_TRUE"])) if "M500_TRUE" in cat else np.nan} for i in picks]
    titles = [f"{cat.at[i, 'NAME']}, z = {cat.at[i, 'REDSHIFT']:.2f}" for i in picks]
    return grid, pdfs, titles, markers


def crossfit_bin_pit(
    tests: pd.DataFrame, groups: np.ndarray, *, n_folds: int, seed: int, bw_factor: float = DEFAULT_BW_FACTOR,
    min_test_maps: int = MIN_TEST_MAPS,
) -> np.ndarray:
    """PIT of each test map's truth (``tests``: zbin, log10_M_cnn, log10_M_true) under the posterior that the
    catalogue would give it (:func:`bin_posteriors`) fitted on the OTHER folds (:func:`szmass.sbi.group_folds`
    by ``groups``, e.g. cluster identity, so that no cluster is on both sides). Where the other folds hold
    fewer than ``min_test_maps`` maps in all, their pooled KDE is used (at least :data:`szmass.sbi.MIN_POINTS`)."""
    folds = group_folds(groups, n_folds, seed=seed)
    pit = np.empty(len(tests))
    zbins = tests["zbin"].to_numpy()
    for k in range(int(n_folds)):
        held = folds == k
        fewest = min(min_test_maps, int((~held).sum()))
        for zbin, (posterior, _) in bin_posteriors(tests[~held], zbins[held], bw_factor=bw_factor,
                                                   min_test_maps=fewest).items():  # fmt: skip
            rows = held & (zbins == zbin)
            part = tests[rows]
            pit[rows] = posterior.cdf_at(part["log10_M_cnn"].to_numpy(), part["log10_M_true"].to_numpy())
    return pit


def posterior_calibration(
    tests: pd.DataFrame, groups: np.ndarray, *, n_folds: int, seed: int, bw_factor: float = DEFAULT_BW_FACTOR,
    min_test_maps: int = MIN_TEST_MAPS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calibration of the catalogue's posteriors on held-out test maps, before and after recalibration:
    the maps' PITs (:func:`crossfit_bin_pit`, ``n_folds`` folds by ``groups``, fewer where there are fewer
    groups) and their recalibrated PITs (:func:`szmass.sbi.crossfit_recalibrated_pit`, folds drawn with
    ``seed + 1``). Returns the coverage table (rows per bin ``z{b}`` and ``all``: n, coverage_68, stderr_68,
    coverage_95, stderr_95 of the posteriors, and the same prefixed ``recal_`` for the recalibrated ones) and
    the PIT table (map, zbin, pit, pit_recalibrated)."""
    n_folds = min(n_folds, len(set(groups)))
    pit = crossfit_bin_pit(tests, groups, n_folds=n_folds, seed=seed, bw_factor=bw_factor, min_test_maps=min_test_maps)
    recal = crossfit_recalibrated_pit(pit, groups, n_folds=n_folds, seed=seed + 1)
    zbins = tests["zbin"].to_numpy()
    rows = []
    for label, sel in [(f"z{b}", zbins == b) for b in sorted(set(zbins))] + [("all", np.ones(len(tests), bool))]:
        after = {f"recal_{k}": v for k, v in interval_coverage(recal[sel]).items()}
        rows.append({"zbin": label, "n": int(sel.sum())} | interval_coverage(pit[sel]) | after)
    pits = pd.DataFrame({"map": tests["map"].to_numpy(), "zbin": zbins, "pit": pit, "pit_recalibrated": recal})
    return pd.DataFrame(rows), pits


def catalogue_table(cat: pd.DataFrame, meta: Mapping[str, object] | None = None) -> Table:
    """The catalogue as an astropy Table with units (Msun, deg, arcmin^2; the log10 masses are of Msun)."""
    table = Table.from_pandas(cat)
    for name in table.colnames:
        if name in UNITS:
            table[name].unit = UNITS[name]
    table.meta.update({"EXTNAME": "PSZ2_CNN", "YM_ALPHA": ALPHA_PLANCK, **(meta or {})})
    table.meta["COMMENTS"] = [LOG_COMMENT]
    return table


def write_catalogue(
    cat: pd.DataFrame, csv_path: str | os.PathLike[str], fits_path: str | os.PathLike[str],
    meta: Mapping[str, object] | None = None,
) -> None:
    """Write the catalogue as CSV and as a FITS binary table with units, each atomically."""
    write_table(cat, csv_path)
    with atomic_path(fits_path) as tmp:
        catalogue_table(cat, meta).write(tmp, format="fits")
