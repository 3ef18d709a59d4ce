"""Logging set-up for workflow jobs: progress lines go to the rule's log file (and stderr)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from os import PathLike


def configure(log_paths: Sequence[str | PathLike[str]] = (), level: int = logging.INFO) -> logging.Logger:
    """Send the ``szmass`` logger's records, and any uncaught exception, to the log files (Snakemake ``log:``) and stderr."""
    logger = logging.getLogger("szmass")
    logger.setLevel(level)
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers += [logging.FileHandler(p, mode="w") for p in log_paths]
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)

    def log_uncaught(exc_type, exc, tb):  # the traceback of a failed job lands in its log file too
        logger.critical("job failed", exc_info=(exc_type, exc, tb))

    sys.excepthook = log_uncaught
    return logger
