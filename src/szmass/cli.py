"""The ``szmass`` console script: ``szmass <command> ...``.

Each command is one ``_add_<command>(subparsers)`` function that defines its arguments and sets
``func`` (parsed arguments -> exit status); `main` dispatches. Bad input (ValueError, OSError)
is reported as one line on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from szmass import __version__


def _run_predict(args: argparse.Namespace) -> int:
    from szmass.atomic import atomic_path
    from szmass.predict import load_models, predict_table, read_cutouts

    cutouts = read_cutouts(args.inputs, args.redshift)
    table = predict_table(cutouts, load_models(args.weights))
    with atomic_path(args.output) as tmp:
        table.to_csv(tmp, index=False)
    return 0


def _add_predict(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="CNN masses log10 M500 [Msun] of y-map cutouts",
        description=(
            "Predict log10 M500 [Msun] for each 96 x 96 y-map cutout (FITS image, redshift from the header "
            "keyword Z) or each map of a zarr store (variable y, coordinate redshift). Writes the CSV columns "
            "file, redshift, log10_M500."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="FILE", help="FITS cutouts and/or zarr stores")
    p.add_argument(
        "--weights",
        required=True,
        type=Path,
        metavar="DIR",
        help="published bestmodel-{1..4}.h5, or a run's models z{bin}/best.keras (+ redshift_bins.json)",
    )
    p.add_argument("--output", required=True, type=Path, metavar="OUT.csv", help="CSV written atomically")
    p.add_argument(
        "--redshift",
        nargs="+",
        type=float,
        metavar="Z",
        help="redshift of the FITS cutouts instead of their header Z: one value for all, or one per file",
    )
    p.set_defaults(func=_run_predict)


def _run_provenance(args: argparse.Namespace) -> int:
    import json

    from szmass.provenance import read_provenance

    records: dict[str, dict[str, str]] = {}
    status = 0
    for path in args.paths:
        try:
            records[str(path)] = read_provenance(path)
        except (ValueError, OSError) as exc:
            print(f"szmass provenance: error: {exc}", file=sys.stderr)
            status = 1
    if args.json:
        print(json.dumps(records, indent=1, sort_keys=True))
    else:
        for path, record in records.items():
            width = max(map(len, record))
            print(path)
            print("\n".join(f"  {key:<{width}}  {value}" for key, value in record.items()))
    return status


def _add_provenance(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "provenance",
        help="print the provenance record of outputs",
        description=(
            "Print the provenance of each output: config checksum, szmass version and git commit, library "
            "versions, creation time and rule, read from a zarr store's attribute 'provenance', a FITS file's "
            "primary header (SZMVER, SZMGIT, CFGSHA, ...) or a sidecar FILE.provenance.json. Exit status 1 "
            "when a path has none."
        ),
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="zarr stores, FITS files or other outputs")
    p.add_argument("--json", action="store_true", help="print one JSON object {path: record}")
    p.set_defaults(func=_run_provenance)


def build_parser() -> argparse.ArgumentParser:
    """The ``szmass`` argument parser with its subcommands."""
    parser = argparse.ArgumentParser(prog="szmass", description="Galaxy-cluster masses from Compton-y maps with CNNs.")
    parser.add_argument("--version", action="version", version=f"szmass {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_predict(subparsers)
    _add_provenance(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``szmass`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"szmass {args.command}: error: {exc}", file=sys.stderr)
        return 1
