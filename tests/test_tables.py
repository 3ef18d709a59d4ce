"""szmass.tables.write_table: exact round trip of every float, atomic writes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from szmass.tables import write_table


def test_floats_read_back_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    f64 = np.concatenate([rng.normal(14.5, 0.3, 500), 10.0 ** rng.uniform(-300, 300, 500), [0.1, -0.0, 1 / 3]])
    f32 = rng.normal(0.0, 1e-5, f64.size).astype(np.float32)
    table = pd.DataFrame({"name": [f"c{i}" for i in range(f64.size)], "n": np.arange(f64.size), "f64": f64,
                          "f32": f32, "flag": f64 > 14.5})  # fmt: skip
    path = tmp_path / "sub" / "t.csv"
    write_table(table, path)
    back = pd.read_csv(path)
    assert list(back.columns) == list(table.columns)  # no index column
    assert np.array_equal(back["f64"].to_numpy(), f64)  # bit for bit, not to a tolerance
    assert np.array_equal(back["f32"].to_numpy().astype(np.float32), f32)
    assert back["name"].tolist() == table["name"].tolist() and back["n"].tolist() == list(range(f64.size))
    assert back["flag"].tolist() == table["flag"].tolist()


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot format this cell")


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    good = pd.DataFrame({"x": np.arange(10_000, dtype=float)})
    bad = pd.concat([good, pd.DataFrame({"x": [Unprintable()]})], ignore_index=True)  # fails after 10000 rows
    with pytest.raises(RuntimeError, match="cannot format this cell"):
        write_table(bad, tmp_path / "new.csv")
    assert list(tmp_path.iterdir()) == []  # neither the table nor a temporary sibling
    write_table(good.head(3), tmp_path / "old.csv")
    with pytest.raises(RuntimeError, match="cannot format this cell"):
        write_table(bad, tmp_path / "old.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["old.csv"]
    assert pd.read_csv(tmp_path / "old.csv")["x"].tolist() == [0.0, 1.0, 2.0]
