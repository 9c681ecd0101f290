"""Turn a pydantic model's JSON schema into a structural OpenAPI v3 schema for a CRD.

Pydantic writes JSON Schema 2020-12 ($defs, $ref, anyOf-with-null, titles); the API server
wants every node typed and inlined. Optional fields become plain optional properties. A
property without a description is an error here, so ``kubectl explain`` documents all.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["SchemaError", "structural"]

_DROPPED = {"title", "$defs"}


class SchemaError(ValueError):
    """The model cannot be expressed as a structural schema (e.g. a field lacks a description)."""


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model`` (camelCase keys)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(raw, raw.get("$defs", {}), model.__name__)


def _convert(node: dict[str, Any], defs: dict[str, Any], where: str) -> dict[str, Any]:
    node = _inline(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or value is None:
            continue
        if key == "properties":
            out[key] = {
                name: _property(sub, defs, f"{where}.{name}") for name, sub in value.items()
            }
        elif key == "items":
            out[key] = _convert(value, defs, f"{where}[]")
        elif key == "additionalProperties":
            if value is False:
                continue  # unknown fields are refused by strict field validation instead
            if isinstance(value, dict):
                out[key] = _convert(value, defs, f"{where}{{}}")
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "properties" in out:
        out["type"] = "object"
    return out


def _property(node: dict[str, Any], defs: dict[str, Any], where: str) -> dict[str, Any]:
    out = _convert(node, defs, where)
    if not out.get("description"):
        raise SchemaError(f"{where} has no description")
    if "default" in out and out["default"] is None:
        del out["default"]
    return out


def _inline(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Resolve $ref and collapse ``anyOf: [X, null]`` into X, keeping the outer keys."""
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is not None:
        target = _inline(defs[ref.rsplit("/", 1)[-1]], defs)
        node = {**target, **{k: v for k, v in node.items() if k != "default" or v is not None}}
    variants = node.pop("anyOf", None)
    if variants is not None:
        kept = [v for v in variants if v.get("type") != "null"]
        if len(kept) != 1:
            raise SchemaError(f"union {variants} is not structural")
        inner = _inline(kept[0], defs)
        extra_validations = node.pop("x-kubernetes-validations", [])
        node = {**inner, **node}
        if extra_validations:
            node["x-kubernetes-validations"] = (
                inner.get("x-kubernetes-validations", []) + extra_validations
            )
    return node
