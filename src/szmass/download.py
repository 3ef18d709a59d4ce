"""Fetching public inputs (the PSZ2 catalogue) that a run needs and the user has not pointed at."""

from __future__ import annotations

import gzip
import os
import shutil
import urllib.request

from szmass.atomic import atomic_path


def fetch(url: str, path: str | os.PathLike[str], *, timeout_s: float = 120.0) -> None:
    """Download ``url`` to ``path`` atomically, decompressing a ``.gz`` URL; a clear error when it fails."""
    if not url:
        raise ValueError(f"{path} does not exist and no download URL is configured; point the config at the file")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, atomic_path(path) as tmp:
            stream = gzip.GzipFile(fileobj=response) if url.endswith(".gz") else response
            with open(tmp, "wb") as out:
                shutil.copyfileobj(stream, out)
    except OSError as err:
        raise OSError(f"could not download {url} to {path} ({err}); download it yourself and set the config path") from err
