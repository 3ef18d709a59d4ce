"""szmass.download: fetching the PSZ2 catalogue with a checksum check (file:// URLs: no network)."""

import gzip

import pytest

from szmass.data import PSZ2_CATALOGUE, PSZ2_SHA256
from szmass.download import fetch, sha256_of


def test_shipped_catalogue_matches_its_checksum():
    assert PSZ2_CATALOGUE.stat().st_size == 607_680
    assert sha256_of(PSZ2_CATALOGUE) == PSZ2_SHA256


def test_gzipped_download_is_decompressed_and_checked(tmp_path):
    gz = tmp_path / "psz2.fits.gz"
    gz.write_bytes(gzip.compress(PSZ2_CATALOGUE.read_bytes()))
    out = tmp_path / "resources" / "planck" / "psz2.fits"
    fetch(gz.as_uri(), out, sha256=PSZ2_SHA256)
    assert out.read_bytes() == PSZ2_CATALOGUE.read_bytes()


def test_wrong_checksum_writes_nothing(tmp_path):
    src = tmp_path / "other.fits"
    src.write_bytes(PSZ2_CATALOGUE.read_bytes()[:-2880])  # a truncated copy
    out = tmp_path / "psz2.fits"
    with pytest.raises(ValueError, match=f"{src.as_uri()}: downloaded file has SHA-256 [0-9a-f]{{64}}, "
                                         f"expected {PSZ2_SHA256}"):
        fetch(src.as_uri(), out, sha256=PSZ2_SHA256)
    assert list(tmp_path.iterdir()) == [src]  # no file, no temporary left


def test_unreachable_url_names_it(tmp_path):
    missing = (tmp_path / "nowhere.fits").as_uri()
    with pytest.raises(OSError, match=f"could not download {missing} to "):
        fetch(missing, tmp_path / "psz2.fits")
    assert not (tmp_path / "psz2.fits").exists()
