"""Reading FITS files with errors that name the file: `open_fits`.

astropy reports a truncated file with a warning and then fails wherever the missing bytes are
needed (a ``TypeError`` "buffer is too small", or a ``ValueError`` from a reshape), and a file that
is not FITS with an ``OSError`` that does not name it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

from astropy.io import fits

TRUNCATED = "truncated"
"""Word of astropy's warning for a file shorter than its headers say ("File may have been truncated ...")."""


@contextlib.contextmanager
def open_fits(path: str | os.PathLike[str], **kwargs: Any) -> Iterator[fits.HDUList]:
    """``astropy.io.fits.open(path, **kwargs)``, read inside the ``with`` block. A file that is missing or not
    FITS, or any failure after astropy warned that the file is truncated, raises ``OSError`` naming ``path``
    and astropy's reason; other errors of the block pass unchanged, and other warnings are re-issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, **kwargs) as hdul:
                yield hdul
        except Exception as exc:
            truncated = [str(w.message) for w in caught if TRUNCATED in str(w.message)]
            if not (truncated or isinstance(exc, OSError)):
                raise
            why = "; ".join(dict.fromkeys([*truncated, f"{type(exc).__name__}: {exc}"]))
            raise OSError(f"{os.fspath(path)}: cannot read as FITS (truncated or not a FITS file): {why}") from exc
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
