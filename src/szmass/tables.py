"""The one writer of the project's CSV tables: atomic (:mod:`szmass.atomic`), no index column, and every
float written exactly.

Float format: the shortest decimal string that reads back to the same number (Python's ``repr``; for a
float32 column, the shortest that reads back to the same float32). A table read back with
``pandas.read_csv`` therefore holds the very numbers that were written, so a step that reads another
step's table computes the same result as if it had been handed the numbers in memory (same config and
seed, same results, bit for bit).
"""

from __future__ import annotations

import os

import pandas as pd

from szmass.atomic import atomic_path


def write_table(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``table`` to the CSV file ``path`` atomically: a failed write leaves no file there (and an
    existing one untouched). Columns as in ``table``, no index, floats exact (module docs)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
