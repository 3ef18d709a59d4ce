"""Atomic writes (szmass.atomic): nothing partial on failure, and a killed writer's leftovers cleared."""

import os
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
        with atomic_path(tmp_path / "store.zarr", directory=True) as tmp:
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


def test_a_file_output_never_replaces_a_directory(tmp_path: Path) -> None:
    """``--output results/`` once deleted the whole tree: a file output at a directory is refused, up front."""
    results = tmp_path / "results"
    (results / "maps").mkdir(parents=True)
    (results / "maps" / "clean.zarr").write_text("hours of work")
    ran = False
    with pytest.raises(IsADirectoryError, match=f"{results}: is an existing directory; refusing to replace it"):
        with atomic_path(results):
            ran = True
    assert not ran
    assert (results / "maps" / "clean.zarr").read_text() == "hours of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_a_directory_output_never_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "store.zarr").write_text("a user's file")
    with pytest.raises(FileExistsError, match=r"store\.zarr: is an existing file; refusing to replace it"):
        with atomic_path(tmp_path / "store.zarr", directory=True) as tmp:
            tmp.mkdir()
    assert (tmp_path / "store.zarr").read_text() == "a user's file"


def test_the_writer_must_write_what_it_declared(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match=r"a\.csv: the writer made a directory but declared a file"):
        with atomic_path(tmp_path / "a.csv") as tmp:
            tmp.mkdir()
    with pytest.raises(IsADirectoryError, match=r"s\.zarr: the writer made a file but declared a directory"):
        with atomic_path(tmp_path / "s.zarr", directory=True) as tmp:
            tmp.write_text("x")
    assert list(tmp_path.iterdir()) == []


def test_a_fifo_is_never_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FileExistsError, match="pipe: is not a regular file or directory"):
        with atomic_path(fifo) as tmp:
            tmp.write_text("x")
    assert fifo.is_fifo()


def test_a_symlink_is_replaced_and_its_target_kept(tmp_path: Path) -> None:
    target = tmp_path / "target.csv"
    target.write_text("kept")
    (tmp_path / "link.csv").symlink_to(target)
    with atomic_path(tmp_path / "link.csv") as tmp:
        tmp.write_text("new")
    assert not (tmp_path / "link.csv").is_symlink() and (tmp_path / "link.csv").read_text() == "new"
    assert target.read_text() == "kept"
