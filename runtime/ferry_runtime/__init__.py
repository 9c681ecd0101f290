"""Ferry's data plane: the worker that streams a MySQL/MariaDB binlog into a sink.

The runtime needs no Kubernetes to run and imports nothing from ``ferry_operator``;
its config model is the contract the operator renders.
"""

from importlib import metadata

__all__ = ["__version__"]

try:
    __version__ = metadata.version("ferry-sync")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
