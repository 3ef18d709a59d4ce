"""szmass: galaxy-cluster masses from Compton-y maps with CNNs (de Andres et al. 2022)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("szmass")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
