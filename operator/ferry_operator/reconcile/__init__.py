"""Reconcilers, each in observe → decide → act form: ``synctask``, ``connector``,
``tasktemplate``; ``health`` turns worker-reported fields into phase and conditions; ``probe``
checks MySQL and Kafka endpoints."""

from __future__ import annotations

__all__: list[str] = []
