"""Pure renderers: from parsed resources to the WorkerConfig and the Kubernetes objects the
operator applies. Nothing here imports a Kubernetes client or makes a call; tests compare the
output with golden files (tests/unit/operator/golden)."""

from __future__ import annotations

# Import the submodules themselves: errors, merge, meta, objects, worker_config.
__all__: list[str] = []
