"""Where the test scatter of a run comes from: its selected models' residuals log10(M_CNN / M_true) [dex]
split by the halo's AHF status, sub-halo (``hostHalo`` != -1: inside a heavier halo, whose gas then lies
in the sub-halo's aperture) or main halo, per data set and redshift bin; next to the scatter of the mass
that the halo's own Y500_cyl (inside the true R500) gives through a power law fitted to every map of its
snapshot, the floor of an estimator that knows the aperture.

    python benchmarks/scatter_by_host.py RUN_DIR [--config config/validation.yaml]

RUN_DIR is a finished run (results/tables/test_predictions_{clean,planck}.csv, results/maps/clean.zarr and
the AHF catalogues the config names).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from szmass.layout import ahf_path, regions, snapshots
from szmass.mapstore import open_maps
from szmass.sims import read_ahf_halos


def host_flags(run: Path, sims: dict) -> pd.DataFrame:
    """sim, region, snapshot, halo_id and ``sub`` (AHF hostHalo != -1) of every halo of the run's catalogues."""
    parts = []
    for sim, cfg in sims.items():
        for region in regions(cfg):
            for snapshot in snapshots(cfg):
                ahf = read_ahf_halos(run / ahf_path(sim, cfg, region, snapshot))
                parts.append(pd.DataFrame({"sim": sim, "region": region, "snapshot": snapshot,
                                           "halo_id": ahf["ID"].to_numpy(), "sub": ahf["hostHalo"].to_numpy() != -1}))
    return pd.concat(parts, ignore_index=True)


def map_table(run: Path, flags: pd.DataFrame) -> pd.DataFrame:
    """Per map of the clean store (index: map): ``sub`` and ``dex_ycyl``, log10 M_Y - log10 M500, M_Y from a
    log M500 - log Y500_cyl line fitted to the maps of the same redshift."""
    ds = open_maps(run / "results" / "maps" / "clean.zarr", need=["Y500_cyl"])
    maps = pd.DataFrame({"sim": np.asarray(ds["sim"].values).astype(object).astype(str)}
                        | {k: np.asarray(ds[k].values).astype(int) for k in ("region", "snapshot", "halo_id")}
                        | {k: np.asarray(ds[k].values, dtype=float) for k in ("redshift", "M500", "Y500_cyl")})
    maps = maps.reset_index(names="map").merge(flags, on=["sim", "region", "snapshot", "halo_id"], how="left")
    if maps["sub"].isna().any():
        raise ValueError(f"{run}: {int(maps['sub'].isna().sum())} maps have no halo in the AHF catalogues")
    maps["dex_ycyl"] = np.nan
    for _, part in maps.groupby("redshift"):
        x, y = np.log10(part["Y500_cyl"]), np.log10(part["M500"])
        slope, intercept = np.polyfit(x, y, 1)
        maps.loc[part.index, "dex_ycyl"] = intercept + slope * x - y
    return maps.set_index("map")


def half_width(r: pd.Series) -> float:
    """Half the 16th-84th percentile range [dex]."""
    return float(0.5 * np.diff(np.percentile(r, [16, 84]))[0]) if len(r) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--config", type=Path, default=Path("config/validation.yaml"))
    args = parser.parse_args()
    maps = map_table(args.run, host_flags(args.run, yaml.safe_load(args.config.read_text())["sims"]))
    print("| data set | bin | N maps | sub-halo maps | std all | std sub-halos | std main halos (16-84 half-width) "
          "| std M(Y500_cyl) all / main |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("clean", "planck"):
        tests = pd.read_csv(args.run / "results" / "tables" / f"test_predictions_{name}.csv")
        tests = tests.assign(r=tests["log10_M_cnn"] - tests["log10_M_true"]).join(maps[["sub", "dex_ycyl"]], on="map")
        for zbin, part in [*tests.groupby("zbin"), ("all", tests)]:
            sub, main_ = part[part["sub"]], part[~part["sub"].astype(bool)]
            print(f"| {name} | {'z' if zbin != 'all' else ''}{zbin} | {len(part)} | {len(sub)} ({len(sub) / len(part):.3f}) "
                  f"| {part['r'].std():.3f} | {sub['r'].std():.3f} | {main_['r'].std():.3f} ({half_width(main_['r']):.3f}) "
                  f"| {part['dex_ycyl'].std():.3f} / {main_['dex_ycyl'].std():.3f} |")


if __name__ == "__main__":
    main()
