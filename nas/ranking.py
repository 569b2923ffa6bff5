"""Pareto ranking, knee point and hypervolume (pure numpy).

All functions take a matrix of objective values (one row per candidate) and a direction per column
("maximize" / "minimize"); internally every column is turned into a quantity to minimise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["to_minimize", "non_dominated_ranks", "pareto_mask", "hypervolume", "knee_index"]


def to_minimize(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(f"values must be (n, {len(directions)}), but got shape {values.shape}")
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return values * sign


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_ranks(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Rank 0 is the Pareto front, rank 1 the front once rank 0 is removed, and so on (NSGA-II's sorting)."""
    pts = to_minimize(values, directions)
    n = len(pts)
    ranks = np.full(n, -1, dtype=int)
    if n == 0:
        return ranks
    # dominated_by[i]: how many points dominate i; dominates[i]: the points i dominates
    le = np.all(pts[:, None, :] <= pts[None, :, :], axis=2)
    lt = np.any(pts[:, None, :] < pts[None, :, :], axis=2)
    dom = le & lt  # dom[i, j]: i dominates j
    counts = dom.sum(axis=0)
    current = np.flatnonzero(counts == 0)
    rank = 0
    while current.size:
        ranks[current] = rank
        counts = counts - dom[current].sum(axis=0)
        counts[ranks >= 0] = -1
        current = np.flatnonzero(counts == 0)
        rank += 1
    return ranks


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    return non_dominated_ranks(values, directions) == 0


def _hv_min(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of minimisation points against ``ref`` (slicing over the last objective)."""
    pts = points[np.all(points < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    if pts.shape[1] == 1:
        return float(ref[0] - pts[:, 0].min())
    if pts.shape[1] == 2:
        order = np.argsort(pts[:, 0])
        pts = pts[order]
        volume, best_y = 0.0, ref[1]
        for i, (x, y) in enumerate(pts):
            if y < best_y:
                next_x = ref[0]
                volume += (next_x - x) * (best_y - y)
                best_y = y
        return float(volume)
    order = np.argsort(pts[:, -1])
    pts = pts[order]
    volume = 0.0
    for i in range(len(pts)):
        upper = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        depth = upper - pts[i, -1]
        if depth > 0:
            volume += depth * _hv_min(pts[: i + 1, :-1], ref[:-1])
    return float(volume)


def hypervolume(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Hypervolume dominated by ``values`` and bounded by ``reference`` (in the objectives' own units and
    directions: for a maximised objective the reference is a lower bound, for a minimised one an upper
    bound)."""
    pts = to_minimize(values, directions)
    ref = to_minimize(np.asarray([reference], dtype=float), directions)[0]
    return _hv_min(pts, ref) if len(pts) else 0.0


def knee_index(values: np.ndarray, directions: Sequence[str]) -> int | None:
    """The front point farthest from the straight line between the front's extremes (2 objectives), or nearest
    to the ideal point (more objectives), on objectives normalised to [0, 1]. ``None`` for an empty set."""
    if len(values) == 0:
        return None
    pts = to_minimize(values, directions)
    front = np.flatnonzero(pareto_mask(values, directions))
    f = pts[front]
    span = f.max(axis=0) - f.min(axis=0)
    span[span == 0] = 1.0
    z = (f - f.min(axis=0)) / span
    if len(front) <= 2:
        # no bend to find: the point nearest to the ideal
        return int(front[np.argmin(np.linalg.norm(z, axis=1))])
    if z.shape[1] == 2:
        a, b = z[np.argmin(z[:, 0])], z[np.argmin(z[:, 1])]
        d = b - a
        norm = np.linalg.norm(d)
        if norm == 0:
            return int(front[0])
        dist = np.abs(d[0] * (a[1] - z[:, 1]) - d[1] * (a[0] - z[:, 0])) / norm
        below = (z - a) @ np.array([-d[1], d[0]]) <= 0  # on the ideal side of the line
        dist = np.where(below, dist, -dist)
        return int(front[np.argmax(dist)])
    return int(front[np.argmin(np.linalg.norm(z, axis=1))])
