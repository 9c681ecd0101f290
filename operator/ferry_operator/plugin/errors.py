"""Exit codes of ``kubectl ferry`` and the exceptions that carry them.

Scripts can rely on the codes: 0 ok (including "nothing to change"), 1 an error,
2 bad usage, 3 the task, template or revision does not exist.

    PluginError (exit 1)
    ├── UsageError (exit 2)
    └── NotFoundError (exit 3)
"""

from __future__ import annotations

__all__ = [
    "EXIT_ERROR",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "NotFoundError",
    "PluginError",
    "UsageError",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3


class PluginError(Exception):
    """Something went wrong; the message is printed as is, prefixed with ``error:``."""

    exit_code = EXIT_ERROR


class UsageError(PluginError):
    """The command line is wrong (a bad position, a bad time, a bad revision number)."""

    exit_code = EXIT_USAGE


class NotFoundError(PluginError):
    """The named SyncTask, TaskTemplate or config revision does not exist."""

    exit_code = EXIT_NOT_FOUND
