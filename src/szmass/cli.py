"""The ``szmass`` console script: ``szmass <command> ...``.

Each command is one ``_add_<command>(subparsers)`` function that defines its arguments and sets
``func`` (parsed arguments -> exit status); `main` dispatches. Bad input (ValueError, OSError)
is reported as one line on stderr with exit status 1, and so is a missing TensorFlow (with the
extra to install); a closed standard output (``szmass ... | head -1``) ends the command quietly.
No output may be, or lie inside, one of the command's inputs (`refuse_output_on_input`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from szmass import __version__

STDOUT = "-"
"""``--output -``: write to standard output."""
OUT_OF_RANGE_STATUS = 3
"""Exit status of ``szmass predict`` when a map or prediction is out of range (without ``--allow-out-of-range``)."""
TENSORFLOW_MISSING = (
    'TensorFlow (the backend of Keras) is not installed; install szmass with it: pip install "szmass[cpu]" '
    '(or "szmass[gpu]" for NVIDIA GPUs)'
)


def refuse_output_on_input(output: Path, inputs: Sequence[Path], *, inside: Sequence[Path] = ()) -> None:
    """Raise ValueError naming ``output`` when it is one of ``inputs`` or ``inside`` (same path after
    resolving links, or the same file), or lies inside one of ``inside`` (directory inputs such as zarr stores)."""
    resolved = output.resolve()
    for path in (*inputs, *inside):
        same = resolved == path.resolve() or (output.exists() and path.exists() and os.path.samefile(output, path))
        if same:
            raise ValueError(f"--output {output}: is the input {path}; refusing to overwrite an input")
    for path in inside:
        if path.resolve() in resolved.parents:
            raise ValueError(f"--output {output}: lies inside the input {path}; write it outside the inputs")


def _run_predict(args: argparse.Namespace) -> int:
    from szmass.atomic import check_replaceable
    from szmass.predict import is_zarr_store, load_models, predict_table, read_cutouts
    from szmass.tables import write_table

    to_stdout = str(args.output) == STDOUT
    inputs = [Path(p) for p in args.inputs]
    if not to_stdout:
        refuse_output_on_input(args.output, [p for p in inputs if not is_zarr_store(p)],
                               inside=[p for p in inputs if is_zarr_store(p)])
        check_replaceable(args.output)
    cutouts = read_cutouts(args.inputs, args.redshift)
    models = load_models(args.weights)
    if not to_stdout:
        refuse_output_on_input(args.output, [*models.files, args.weights])
    table = predict_table(cutouts, models)
    if to_stdout:
        table.to_csv(sys.stdout, index=False)
    else:
        write_table(table, args.output)
    flagged = table[table["warning"] != ""]
    if flagged.empty:
        return 0
    print(f"szmass predict: warning: {len(flagged)} of {len(table)} maps out of range (column 'warning'), e.g. "
          f"{flagged['file'].iloc[0]}: {flagged['warning'].iloc[0]}", file=sys.stderr)
    return 0 if args.allow_out_of_range else OUT_OF_RANGE_STATUS


def _add_predict(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="CNN masses log10 M500 [Msun] of y-map cutouts",
        description=(
            "Predict log10 M500 [Msun] for each 96 x 96 y-map cutout (FITS image, redshift from the header "
            "keyword Z) or each map of a zarr store (variable y, coordinate redshift). Writes the CSV columns "
            "file, redshift, log10_M500, warning (log10_M200 for the models of a run trained on M200). A map whose level lies far outside its model's training maps "
            "(an empty map, a map in other units) or whose prediction is implausible gets a warning and the "
            f"exit status is {OUT_OF_RANGE_STATUS} (the CSV is written) unless --allow-out-of-range; errors exit 1."
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
    p.add_argument(
        "--output", required=True, type=Path, metavar="OUT.csv",
        help="CSV written atomically, never over an input or a directory; '-' for standard output",
    )
    p.add_argument(
        "--allow-out-of-range", action="store_true",
        help="exit 0 even when maps or predictions are out of range (still flagged in the column warning)",
    )
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
        status = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows here
        return status
    except BrokenPipeError:  # the reader of stdout went away; the interpreter's last flush must not complain
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "tensorflow":
            raise
        print(f"szmass {args.command}: error: {TENSORFLOW_MISSING}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"szmass {args.command}: error: {exc}", file=sys.stderr)
        return 1
