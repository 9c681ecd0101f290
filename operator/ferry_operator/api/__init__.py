"""Typed models of Ferry's custom resources (group ferry.dev, version v1alpha1); the CRDs in
crds/ are generated from them by :mod:`ferry_operator.crdgen`."""

from __future__ import annotations

from ferry_operator.api import base, connector, synctask, tasktemplate

__all__ = ["GROUP", "VERSION", "base", "connector", "synctask", "tasktemplate"]

GROUP = "ferry.dev"
VERSION = "v1alpha1"
