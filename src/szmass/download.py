"""Fetching public inputs (the PSZ2 catalogue) that a run needs and the config asks to download."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

from szmass.atomic import atomic_path


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, path: str | os.PathLike[str], *, sha256: str | None = None, timeout_s: float = 120.0) -> None:
    """Download ``url`` to ``path`` atomically, decompressing a ``.gz`` URL; a clear error when it fails.

    With ``sha256``, the (decompressed) file must have that SHA-256, else ValueError naming the URL and
    both checksums, and ``path`` is not written.
    """
    if not url:
        raise ValueError(f"{path} does not exist and no download URL is configured; point the config at the file")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, atomic_path(path) as tmp:
            stream = gzip.GzipFile(fileobj=response) if url.endswith(".gz") else response
            with open(tmp, "wb") as out:
                shutil.copyfileobj(stream, out)
            if sha256 is not None and (got := sha256_of(tmp)) != sha256.lower():
                raise ValueError(f"{url}: downloaded file has SHA-256 {got}, expected {sha256} "
                                 f"(a different file or release); {Path(path).name} was not written")
    except OSError as err:
        raise OSError(f"could not download {url} to {path} ({err}); "
                      "download it yourself and set the config path") from err
