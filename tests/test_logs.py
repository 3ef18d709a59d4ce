"""Progress records of long loops (szmass.logs.progress), timed by a fake clock."""

from __future__ import annotations

import logging
import sys
import warnings

import pytest
import tqdm.std

from szmass.logs import configure, progress


class FakeClock:
    """Seconds since an arbitrary origin, advanced by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Records(logging.Handler):
    """(fake time, message) of every record."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock, self.seen = clock, []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((self.clock.now, record.getMessage()))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(tqdm.std, "time", fake)  # tqdm reads its clock through this name
    return fake


@pytest.fixture
def records(clock: FakeClock) -> Records:
    logger = logging.getLogger("test_logs")
    handler = Records(clock)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def test_counts_elapsed_and_time_left_at_most_every_30_s(clock, records):
    for _ in progress(range(10), desc="halos", logger=logging.getLogger("test_logs")):
        clock.now += 7.0  # one step takes 7 s
    assert [m for _, m in records.seen] == [
        "halos: 5/10 (50 %), 00:35 elapsed, 00:35 left",  # the first step 30 s after the start
        "halos: 10/10 (100 %), 01:10 elapsed, 00:00 left",  # 5 steps of 7 s: 35 s since the last record
    ]


def test_never_two_records_within_the_interval(clock, records):
    steps = [0.5, 3.0, 40.0, 0.1, 0.1, 29.0, 1.2, 0.7, 31.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 0.2] * 3
    for dt in progress(steps, desc="maps", every_s=30.0, logger=logging.getLogger("test_logs")):
        clock.now += dt
    times = [t for t, _ in records.seen]
    assert len(times) >= 5
    assert min(b - a for a, b in zip(times[:-1], times[1:-1])) >= 30.0  # the closing record comes at the end
    assert records.seen[-1][1].startswith(f"maps: {len(steps)}/{len(steps)} (100 %)")


def test_resumed_count_and_time_left_from_the_steps_done_here(clock, records):
    bar = progress(desc="seed 3 epochs", total=200, initial=20, logger=logging.getLogger("test_logs"))
    for _ in range(3):
        clock.now += 10.0  # 10 s per epoch: 177 epochs left take 1770 s
        bar.update(1)
    bar.close()
    assert [m for _, m in records.seen] == ["seed 3 epochs: 23/200 (12 %), 00:30 elapsed, 29:30 left"]


def test_a_short_loop_logs_nothing_and_nested_loops_log_plain_lines(clock, records):
    logger = logging.getLogger("test_logs")
    for _ in progress(range(4), desc="fast", logger=logger):
        clock.now += 7.0  # 28 s in all
    assert records.seen == []
    for _ in progress(range(2), desc="halos", logger=logger):
        for _ in progress(range(3), desc="lines of sight", logger=logger):
            clock.now += 12.0
    assert [m for _, m in records.seen] == [
        "lines of sight: 3/3 (100 %), 00:36 elapsed, 00:00 left",
        "halos: 1/2 (50 %), 00:36 elapsed, 00:36 left",
        "lines of sight: 3/3 (100 %), 00:36 elapsed, 00:00 left",
        "halos: 2/2 (100 %), 01:12 elapsed, 00:00 left",
    ]


def test_an_iterable_without_length_needs_a_total():
    with pytest.raises(ValueError, match=r"progress\('cutouts'\): give total= for an iterable without a length"):
        progress((i for i in range(3)), desc="cutouts")


def test_records_and_warnings_reach_the_job_log_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # configure() replaces it
    log_file = tmp_path / "job.log"
    configure([log_file])
    try:
        for _ in progress(range(3), desc="noise map", every_s=0):
            pass
        warnings.warn("a library's warning", UserWarning, stacklevel=1)
        warnings.warn("Object at .snakemake_timestamp is not recognized as a component of a Zarr hierarchy.",
                      UserWarning, stacklevel=1)
    finally:
        for name in ("szmass", "py.warnings"):
            for h in logging.getLogger(name).handlers:
                h.close()
            logging.getLogger(name).handlers.clear()
        logging.captureWarnings(False)
    text = log_file.read_text()
    assert "szmass.progress: noise map: 0/3 (0 %)" in text
    assert "WARNING py.warnings:" in text and "UserWarning: a library's warning" in text
    assert ".snakemake_timestamp" not in text  # Snakemake's directory marker, harmless
    assert "szmass.progress: noise map: 3/3 (100 %)" in text
