"""Atomic writes (szmass.atomic): nothing partial on failure, and a killed writer's leftovers cleared."""

from pathlib import Path

import pytest

from szmass.atomic import atomic_path


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.csv") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"] and (tmp_path / "a.csv").read_text() == "old"


def test_directory_replaces_the_old_one(tmp_path: Path) -> None:
    for text in ("first", "second"):
        with atomic_path(tmp_path / "store.zarr") as tmp:
            tmp.mkdir()
            (tmp / "zarr.json").write_text(text)
    assert [p.name for p in tmp_path.iterdir()] == ["store.zarr"]
    assert (tmp_path / "store.zarr" / "zarr.json").read_text() == "second"


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path: Path) -> None:
    """A SIGKILLed writer leaves .<name>.<8 random chars>.tmp; the next write of <name> removes it, and only it."""
    stale = tmp_path / ".a.csv.k3_x9q0z.tmp"
    (stale / "a.csv").parent.mkdir()
    (stale / "a.csv").write_text("partial")
    other = tmp_path / ".a.csv.x.abcdefgh.tmp"  # the temporary of another output, a.csv.x
    other.mkdir()
    with atomic_path(tmp_path / "a.csv") as tmp:
        tmp.write_text("complete")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.csv.x.abcdefgh.tmp", "a.csv"]
    assert (tmp_path / "a.csv").read_text() == "complete"
