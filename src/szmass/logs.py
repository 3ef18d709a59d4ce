"""Logging for workflow jobs: records go to the rule's log file (and stderr); long loops report their progress."""

from __future__ import annotations

import io
import logging
import re
import sys
import warnings
from collections.abc import Iterable, Sequence
from os import PathLike
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

PROGRESS_EVERY_S = 30.0
"""Least time between two progress records of one loop [s]."""

_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
"""Terminal control sequences (cursor moves of nested bars), which a log file does not want."""

_PROGRESS_FORMAT = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f} %), {elapsed} elapsed, {remaining} left"


def configure(log_paths: Sequence[str | PathLike[str]] = (), level: int = logging.INFO) -> logging.Logger:
    """Send the ``szmass`` logger's records, Python warnings (of any library) and any uncaught exception to the
    log files (Snakemake ``log:``) and stderr."""
    logger = logging.getLogger("szmass")
    logger.setLevel(level)
    warnings_logger = logging.getLogger("py.warnings")
    logging.captureWarnings(True)
    # Snakemake marks a directory output with a .snakemake_timestamp file, which zarr warns about on every open
    warnings.filterwarnings("ignore", message="Object at .snakemake_timestamp", category=UserWarning)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers += [logging.FileHandler(p, mode="w") for p in log_paths]
    for target in (logger, warnings_logger):
        target.handlers.clear()
        for h in handlers:
            target.addHandler(h)
    for h in handlers:
        h.setFormatter(fmt)

    def log_uncaught(exc_type, exc, tb):  # the traceback of a failed job lands in its log file too
        logger.critical("job failed", exc_info=(exc_type, exc, tb))

    sys.excepthook = log_uncaught
    return logger


class _LogLines(io.TextIOBase):
    """A text stream that turns every status line tqdm writes into one record of ``logger``."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self._logger = logger

    def write(self, s: str) -> int:
        line = _CONTROL.sub("", s).strip()  # tqdm writes "\r<status><padding>" per refresh, "\n" when it closes
        if line:
            self._logger.info(line)
        return len(s)


class _Progress(tqdm):
    """tqdm without its monitor thread (the loops below check the clock at every step)."""

    monitor_interval = 0

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """Write the status unless it was written at this count already (as by the last step of a loop)."""
        if getattr(self, "_shown_n", None) == self.n:
            return True
        self._shown_n = self.n
        return super().display(msg, pos)


def progress(
    iterable: Iterable[T] | None = None,
    *,
    desc: str,
    total: int | None = None,
    initial: int = 0,
    every_s: float = PROGRESS_EVERY_S,
    logger: logging.Logger | None = None,
) -> tqdm:
    """Iterate over ``iterable`` (or count with ``.update(n)`` when None), logging its progress to ``logger``.

    A loop that runs longer than ``every_s`` seconds gets an INFO record then, at most one every ``every_s``
    seconds after it, and one when it ends: ``"<desc>: <n>/<total> (<percent> %), <elapsed> elapsed, <time
    left> left"``, the time left from the mean rate since the start (steps counted from ``initial``, e.g. the
    epochs a resumed training run had done); a shorter loop logs nothing. Loops may nest.
    ``total`` defaults to ``len(iterable)``. ``logger`` defaults to ``szmass.progress``, which
    :func:`configure` sends to the job's log file.
    """
    if total is None:
        if iterable is None or not hasattr(iterable, "__len__"):
            raise ValueError(f"progress({desc!r}): give total= for an iterable without a length")
        total = len(iterable)  # type: ignore[arg-type]
    return _Progress(
        iterable,
        desc=desc,
        total=total,
        initial=initial,
        file=_LogLines(logger or logging.getLogger("szmass.progress")),
        mininterval=every_s,
        maxinterval=float("inf"),
        delay=every_s,  # nothing from a short loop
        position=0,  # no cursor moves for nested loops
        miniters=1,  # check the clock at every step: steps here take seconds to minutes
        smoothing=0,  # the time left from the mean rate since the start
        bar_format=_PROGRESS_FORMAT,
        dynamic_ncols=False,
        ascii=True,
    )
