"""The C row-image decoder (``_rowimage.c``); :mod:`ferry_runtime.source.rows` drives it."""

from typing import Any

class Plan:
    def __init__(self, columns: list[tuple[str, int, int, int, int, Any]]) -> None: ...
    def decode(
        self, body: bytes, bitmap: bytes, bitmap2: bytes | None = None
    ) -> list[tuple[dict[str, Any], dict[str, Any] | None]]: ...
