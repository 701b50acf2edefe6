"""examsync: keeps exam platforms (Inspera, WISEflow) in step with FS and Praktikportalen."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("examsync")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]
