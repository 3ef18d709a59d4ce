"""AHF halo catalogues (``*.AHF_halos``): whitespace-separated text with a ``#`` header line.

The header names the columns with 1-based numbers, ``#ID(1)  hostHalo(2)  numSubStruct(3)  Mvir(4) ...``;
columns are looked up by name (without the ``(n)`` suffix), never by position, as their order differs
between AHF versions. Values stay in the file's units (masses h^-1 Msun, positions comoving kpc/h).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from szmass.atomic import atomic_path

INT_COLUMNS: tuple[str, ...] = ("ID", "hostHalo")
"""Columns read as int64 (AHF halo IDs exceed float32 precision)."""
FINITE_COLUMNS: tuple[str, ...] = ("Xc", "Yc", "Zc", "Mvir", "Rvir", "M500c", "R500c")
"""Columns that must be finite where present: the centre, masses and radii halos are selected and mapped by
(other columns, such as the shape of a halo of few particles, may be NaN in real catalogues)."""
_SUFFIX = re.compile(r"\(\d+\)$")


class AhfError(ValueError):
    """An AHF catalogue that is malformed or lacks needed columns."""


def _column_names(line: str, path: Path) -> list[str]:
    if not line.startswith("#"):
        raise AhfError(f"file {path}: line 1 must be the '#' header naming the AHF columns, got {line[:60]!r}")
    names = [_SUFFIX.sub("", token) for token in line[1:].split()]
    if not names or len(set(names)) != len(names) or not all(names):
        raise AhfError(f"file {path}: header line has no, empty or duplicate column names: {names}")
    return names


def read_ahf_halos(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an AHF ``*.AHF_halos`` file into a DataFrame with the header's column names (file units).

    ``ID`` and ``hostHalo`` are int64, every other column float64. Blank and further ``#`` lines are skipped.
    A NaN or infinite value in a :data:`FINITE_COLUMNS` column is an error naming the file, line, halo and column.
    """
    path = Path(path)
    with open(path) as fh:
        names = _column_names(fh.readline(), path)
        rows: list[list[str]] = []
        linenos: list[int] = []
        for lineno, line in enumerate(fh, start=2):
            tokens = line.split()
            if not tokens or tokens[0].startswith("#"):
                continue
            if len(tokens) != len(names):
                raise AhfError(f"file {path}, line {lineno}: {len(tokens)} values, expected {len(names)} "
                               "(one per header column)")
            rows.append(tokens)
            linenos.append(lineno)
    table = np.array(rows, dtype=str).reshape(len(rows), len(names))
    columns = {}
    for j, name in enumerate(names):
        dtype = np.int64 if name in INT_COLUMNS else np.float64
        try:
            columns[name] = table[:, j].astype(dtype)
        except ValueError as exc:
            raise AhfError(f"file {path}: column {name!r} has a value that is not {np.dtype(dtype).name}: {exc}") from exc
    for name in (n for n in FINITE_COLUMNS if n in columns):
        bad = np.flatnonzero(~np.isfinite(columns[name]))
        if bad.size:
            i = int(bad[0])
            halo = f"halo ID {columns['ID'][i]}" if "ID" in columns else f"halo {i + 1}"
            raise AhfError(f"file {path}, line {linenos[i]}: {halo}: column {name!r} is {table[i, names.index(name)]}; "
                           f"expected a finite number ({bad.size} halos have non-finite {name})")
    return pd.DataFrame(columns, columns=names)


def require_columns(df: pd.DataFrame, names: Iterable[str], path: str | os.PathLike[str]) -> None:
    """Raise :class:`AhfError` naming ``path`` and the columns of ``names`` that ``df`` lacks."""
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise AhfError(f"file {path}: AHF columns {missing} missing; found {list(df.columns)}")


def write_ahf_halos(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """Write ``df`` as an AHF ``*.AHF_halos`` file: ``#name(1)\\tname(2)...`` header, tab-separated rows.

    Integer columns are written as integers, floats with the shortest repr that round-trips float64.
    """
    for name in df.columns:
        if not isinstance(name, str) or not name or re.search(r"[\s()#]", name):
            raise AhfError(f"file {path}: column name {name!r} cannot be written to an AHF header")
    missing = [n for n in INT_COLUMNS if n not in df.columns]
    if missing:
        raise AhfError(f"file {path}: AHF columns {missing} missing; found {list(df.columns)}")
    header = "#" + "\t".join(f"{name}({i + 1})" for i, name in enumerate(df.columns)) + "\n"
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write(header)
            df.astype({n: np.int64 for n in INT_COLUMNS}).to_csv(fh, sep="\t", header=False, index=False,
                                                                 lineterminator="\n")
