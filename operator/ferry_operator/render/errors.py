"""Why a task cannot be rendered. Each error carries the CamelCase reason the operator puts on
the task's Ready condition; messages name the field and never hold a secret.

    RenderError (ValueError)
    ├── InvalidSpec            the effective spec lacks a field or holds a bad value
    ├── ConnectorNotFound      a connectorRef names no Connector
    └── ConnectorTypeMismatch  the Connector's type does not fit where it is used
"""

from __future__ import annotations

__all__ = ["ConnectorNotFound", "ConnectorTypeMismatch", "InvalidSpec", "RenderError"]


class RenderError(ValueError):
    """The task cannot be rendered as it stands."""

    reason = "RenderError"


class InvalidSpec(RenderError):
    reason = "InvalidSpec"


class ConnectorNotFound(RenderError):
    reason = "ConnectorNotFound"

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class ConnectorTypeMismatch(RenderError):
    reason = "ConnectorTypeMismatch"
