"""Ferry's control plane: the kopf operator, the API models, CRD generation and renderers."""

from ferry_runtime import __version__

__all__ = ["__version__"]
