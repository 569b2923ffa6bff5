"""Pareto ranking, crowding distance, hypervolume and knee point: the one implementation nas uses (pure numpy).

Every caller ranks through this module: the study's table and front (``nas.study``), the ``"nds"`` rung rule of
the early-stopping pruner (``nas.rungs``) and the evolution sampler's parent ranking (``nas.engine.evolution``).

The building blocks take a matrix of *points to minimise* (one row per candidate, one column per objective);
:func:`to_minimize` turns values with a direction per column ("maximize" / "minimize") into such a matrix.

**Copies** (rows equal in every objective; ``-0.0`` and ``0.0`` are equal) follow one rule everywhere:

* *Equal points share a front.* A point dominates another if it is at least as good in every objective and
  better in one, so copies never dominate each other, and each copy is dominated exactly when the point is.
* *Among copies, crowding gives each copy the distance of the point, counted once.* Crowding distance is
  computed on the distinct points of a front, so a copy neither shields its twin from the boundary nor sits at
  distance 0 from it, and identical candidates are treated identically whatever their order in the input.

Crowding distance is NSGA-II's (Deb, Pratap, Agarwal and Meyarivan 2002): per objective the distinct points are
sorted by it, ties broken by the whole row (so the result never depends on the input order); the first and
last get infinity, every other one adds the gap between its two neighbours divided by the objective's range.
An objective whose range is zero or not finite (an infinite value in the front) adds nothing. A front of at
most two distinct points is all boundary (infinity).

A row holding NaN is incomparable: it is in front 0 and neither dominates nor is dominated (the study's table
ranks a trial with a missing metric that way). :func:`crowding_distances` refuses NaN.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "crowding_distances",
    "dominates",
    "fronts",
    "fronts_and_crowding",
    "hypervolume",
    "knee_index",
    "non_dominated_ranks",
    "pareto_mask",
    "to_minimize",
]


def to_minimize(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """``values`` (one column per direction) with every maximised column negated: a matrix to minimise."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(f"values must be (n, {len(directions)}), but got shape {values.shape}")
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return values * sign


def _matrix(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """``points`` as a 2-D float matrix, ``-0.0`` made ``0.0`` (so that equal points are equal rows)."""
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"points must be a matrix (one row per point), but got shape {pts.shape}")
    return pts + 0.0


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether point ``a`` dominates point ``b`` (both to minimise): at least as good in every objective and
    better in one. Copies do not dominate each other."""
    va, vb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(va <= vb) and np.any(va < vb))


def _fronts_2d(distinct: np.ndarray) -> np.ndarray:
    """Front index of distinct 2-objective rows sorted lexicographically, in O(n log n): in that order a point
    can only be dominated by earlier points, and (the rows being distinct) by exactly those whose second value is
    <= its own; so it joins the first front whose smallest second value so far is above its own (those minima
    never decrease with the front index)."""
    mins: list[float] = []
    ranks = np.empty(len(distinct), dtype=int)
    for i, f2 in enumerate(distinct[:, 1].tolist()):
        r = bisect.bisect_right(mins, f2)
        if r == len(mins):
            mins.append(f2)
        else:
            mins[r] = f2
        ranks[i] = r
    return ranks


def _fronts_general(distinct: np.ndarray) -> np.ndarray:
    """Front index of distinct rows by peeling (Deb et al.'s non-dominated sorting), O(objectives * n^2)."""
    n = len(distinct)
    # dom[i, j]: i dominates j (rows are distinct, so "<= everywhere" means "better somewhere" off the diagonal)
    dom = np.all(distinct[:, None, :] <= distinct[None, :, :], axis=2)
    np.fill_diagonal(dom, False)
    ranks = np.full(n, -1, dtype=int)
    left = np.ones(n, dtype=bool)
    rank = 0
    while left.any():
        front = left & ~(dom & left[:, None]).any(axis=0)
        ranks[front] = rank
        left &= ~front
        rank += 1
    return ranks


def _fronts_distinct(distinct: np.ndarray) -> np.ndarray:
    """Front index of distinct rows sorted lexicographically (the sweep for two objectives)."""
    return _fronts_2d(distinct) if distinct.shape[1] == 2 else _fronts_general(distinct)


def _crowding_distinct(distinct: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Crowding distance of distinct rows sorted lexicographically, each within its front (``ranks``), all
    fronts at once: per objective the rows are ordered by (front, value, row), so each front is one run."""
    n = len(distinct)
    dist = np.zeros(n)
    rows = np.arange(n)
    for j in range(distinct.shape[1]):
        order = np.lexsort((rows, distinct[:, j], ranks))  # ties keep the rows' lexicographic order
        col, front = distinct[order, j], ranks[order]
        first = np.r_[True, front[1:] != front[:-1]]
        last = np.r_[front[1:] != front[:-1], True]
        run = np.cumsum(first) - 1
        with np.errstate(invalid="ignore"):  # inf - inf: a range that is not finite (adds nothing)
            span = (col[last] - col[first])[run]  # the objective's range within each point's front
        inner = np.flatnonzero(~first & ~last & (span > 0) & np.isfinite(span))
        dist[order[inner]] += (col[inner + 1] - col[inner - 1]) / span[inner]
        dist[order[first | last]] = math.inf
    dist[np.bincount(ranks)[ranks] <= 2] = math.inf  # a front of at most two distinct points is all boundary
    return dist


def _distinct(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``points`` (sorted lexicographically) and, per row of ``points``, its distinct row."""
    distinct, where = np.unique(points, axis=0, return_inverse=True)
    return distinct, where.reshape(-1)


def fronts(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Non-dominated sorting: the front index of every row of ``points`` (to minimise): 0 for the Pareto front,
    1 for the front once front 0 is removed, and so on. Copies share a front; a row holding NaN is in front 0
    (module docstring). O(n log n) for two objectives, O(objectives * n^2) for more."""
    pts = _matrix(points)
    ranks = np.zeros(len(pts), dtype=int)
    comparable = ~np.isnan(pts).any(axis=1)
    if comparable.any():
        distinct, where = _distinct(pts[comparable])
        ranks[comparable] = _fronts_distinct(distinct)[where]
    return ranks


def _no_nan(pts: np.ndarray) -> np.ndarray:
    if np.isnan(pts).any():
        raise ValueError("crowding distances need points without NaN")
    return pts


def crowding_distances(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """NSGA-II crowding distance of every row of ``points`` (one front, to minimise), with copies given the
    distance of their point (module docstring). Raises ``ValueError`` for a point holding NaN."""
    pts = _no_nan(_matrix(points))
    if len(pts) == 0:
        return np.zeros(0)
    distinct, where = _distinct(pts)
    return _crowding_distinct(distinct, np.zeros(len(distinct), dtype=int))[where]


def fronts_and_crowding(points: np.ndarray | Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """NSGA-II's ranking of ``points`` (to minimise, no NaN): per row its front index and its crowding distance
    within that front. Sort by (front, -crowding) for best first."""
    pts = _no_nan(_matrix(points))
    if len(pts) == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    distinct, where = _distinct(pts)
    ranks = _fronts_distinct(distinct)
    return ranks[where], _crowding_distinct(distinct, ranks)[where]


def non_dominated_ranks(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """:func:`fronts` of ``values`` in their directions: rank 0 is the Pareto front, rank 1 the front once rank
    0 is removed, and so on (NSGA-II's sorting)."""
    return fronts(to_minimize(values, directions))


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Whether each row of ``values`` is on the Pareto front (copies of a front point all are)."""
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
        for x, y in pts:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
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
    bound). Copies add nothing beyond their point."""
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
