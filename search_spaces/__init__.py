"""Search spaces over the block families, and the classic networks as named points in them.

Importing this package does not import TensorFlow.
"""

from __future__ import annotations

from search_spaces._baselines import baseline, baselines

__all__ = ["baseline", "baselines"]
