"""An evaluator for benchmarks of the engine itself (no training): importable by worker processes."""

from __future__ import annotations

import nas


@nas.evaluator
def params_as_accuracy(spec: nas.ArchSpec) -> dict[str, float]:
    return {"accuracy": 1.0 - 1.0 / (1.0 + nas.cost(spec).params / 1e4)}
