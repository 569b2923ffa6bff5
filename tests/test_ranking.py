"""Pareto ranking, crowding distance, hypervolume and knee: hand-checked points, and the definitions (by brute
force) on random point sets with copies and ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas import ranking
from nas.ranking import (
    crowding_distances,
    fronts,
    fronts_and_crowding,
    hypervolume,
    knee_index,
    non_dominated_ranks,
    pareto_mask,
)

MAXMIN = ["maximize", "minimize"]


def test_non_dominated_ranks() -> None:
    # (accuracy, macs)
    pts = np.array([[0.9, 10], [0.8, 5], [0.95, 20], [0.85, 10], [0.7, 5], [0.95, 25], [0.8, 5]])
    ranks = non_dominated_ranks(pts, MAXMIN)
    # front: (0.9,10), (0.8,5) twice (equal points do not dominate each other), (0.95,20)
    assert ranks.tolist() == [0, 0, 0, 1, 1, 1, 0]
    assert pareto_mask(pts, MAXMIN).tolist() == [True, True, True, False, False, False, True]
    assert non_dominated_ranks(np.zeros((0, 2)), MAXMIN).tolist() == []


def test_hypervolume_2d_by_hand() -> None:
    pts = np.array([[0.9, 10.0], [0.8, 5.0], [0.95, 20.0]])
    # reference: accuracy 0, macs 30 -> strips: x from 5..10 @ 0.8, 10..20 @ 0.9, 20..30 @ 0.95 (as minimisation)
    expected = (10 - 5) * 0.8 + (20 - 10) * 0.9 + (30 - 20) * 0.95
    assert hypervolume(pts, MAXMIN, [0.0, 30.0]) == pytest.approx(expected)
    # dominated and out-of-reference points add nothing
    more = np.vstack([pts, [[0.5, 25.0], [0.99, 40.0]]])
    assert hypervolume(more, MAXMIN, [0.0, 30.0]) == pytest.approx(expected)
    assert hypervolume(np.zeros((0, 2)), MAXMIN, [0.0, 1.0]) == 0.0


def test_hypervolume_3d_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, size=(12, 3))
    dirs = ["minimize"] * 3
    exact = hypervolume(pts, dirs, [1.0, 1.0, 1.0])
    samples = rng.uniform(0, 1, size=(200_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for p in pts:
        dominated |= np.all(samples >= p, axis=1)
    assert exact == pytest.approx(dominated.mean(), abs=0.005)
    # a single box
    assert hypervolume(np.array([[0.5, 0.5, 0.5]]), dirs, [1, 1, 1]) == pytest.approx(0.125)


def test_knee_is_the_bend() -> None:
    pts = np.array([[0.50, 1.0], [0.90, 2.0], [0.92, 8.0], [0.93, 20.0], [0.6, 30.0]])
    assert knee_index(pts, MAXMIN) == 1
    assert knee_index(np.zeros((0, 2)), MAXMIN) is None


# ---------------------------------------------------------------- fronts and crowding: the one implementation

def test_copies_share_a_front_and_their_points_crowding_distance() -> None:
    # to minimise; the front is (0, 4), (1, 2) twice, (2, 1), (4, 0); (3, 3) is behind it
    pts = np.array([[1.0, 2.0], [0.0, 4.0], [3.0, 3.0], [1.0, 2.0], [4.0, 0.0], [2.0, 1.0]])
    assert fronts(pts).tolist() == [0, 0, 1, 0, 0, 0]
    d = crowding_distances(pts[[0, 1, 3, 4, 5]])
    # the distinct front (0, 4), (1, 2), (2, 1), (4, 0): (1, 2) gets (2 - 0) / 4 + (4 - 1) / 4, counted once
    assert d.tolist() == [1.25, math.inf, 1.25, math.inf, (4 - 1) / 4 + (2 - 0) / 4]
    ranks, crowding = fronts_and_crowding(pts)
    assert ranks.tolist() == [0, 0, 1, 0, 0, 0]
    assert crowding.tolist() == [1.25, math.inf, math.inf, 1.25, math.inf, 1.25]  # (3, 3) alone in front 1
    # a front of two distinct points is all boundary, copies included; -0.0 and 0.0 are one point
    assert crowding_distances([[0.0, 1.0], [-0.0, 1.0], [1.0, 0.0]]).tolist() == [math.inf] * 3
    assert fronts([[-0.0, 1.0], [0.0, 1.0]]).tolist() == [0, 0]


def test_crowding_ties_follow_the_rows_not_the_input_order() -> None:
    # three objectives, all on the front: P = (2, 5, 2) and Q = (3, 5, 1) tie at the top of the second; P is
    # first in row order, so Q is that objective's boundary, whatever order the rows come in (the evolution
    # sampler took the input order before: with Q first, P was the boundary and Q got (5 - 3) / 5 there)
    q, p, u, v, w = (3.0, 5.0, 1.0), (2.0, 5.0, 2.0), (0.0, 1.0, 6.0), (6.0, 0.0, 0.0), (1.0, 3.0, 4.0)
    pts = np.array([q, p, u, v, w])
    assert fronts(pts).tolist() == [0, 0, 0, 0, 0]
    expected = [math.inf, 2 / 6 + 2 / 5 + 3 / 6, math.inf, math.inf, 2 / 6 + 4 / 5 + 4 / 6]
    assert crowding_distances(pts).tolist() == pytest.approx(expected)
    assert crowding_distances(pts[::-1]).tolist() == pytest.approx(expected[::-1])
    # an infinite value: its objective's range is not finite and adds nothing
    inf = np.array([[0.0, 3.0], [1.0, 2.0], [math.inf, 0.0]])
    assert crowding_distances(inf).tolist() == [math.inf, (3 - 0) / 3, math.inf]  # the second objective only
    with pytest.raises(ValueError, match="crowding distances need points without NaN"):
        crowding_distances([[0.0, math.nan]])


def test_a_row_with_nan_is_incomparable() -> None:
    pts = np.array([[1.0, 1.0], [math.nan, 0.0], [2.0, 2.0]])
    assert fronts(pts).tolist() == [0, 0, 1]
    assert non_dominated_ranks(np.array([[0.9, math.nan], [0.8, 5.0], [0.7, 6.0]]), MAXMIN).tolist() == [0, 0, 1]


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and a != b


def _brute_fronts(pts: list[tuple[float, ...]]) -> list[int]:
    """Peeling by the definition: front r = the points no point left dominates."""
    rank, left, r = {}, list(dict.fromkeys(pts)), 0
    while left:
        front = [p for p in left if not any(_dominates(q, p) for q in left)]
        rank.update(dict.fromkeys(front, r))
        left, r = [p for p in left if p not in front], r + 1
    return [rank[p] for p in pts]


def _brute_crowding(front: list[tuple[float, ...]]) -> list[float]:
    """NSGA-II crowding on the distinct points, sorted per objective with ties by the whole point."""
    distinct = sorted(set(front))
    dist = dict.fromkeys(distinct, 0.0)
    if len(distinct) <= 2:
        return [math.inf] * len(front)
    for m in range(len(distinct[0])):
        order = sorted(distinct, key=lambda p: (p[m], p))
        dist[order[0]] = dist[order[-1]] = math.inf
        span = order[-1][m] - order[0][m]
        if span > 0:
            for a, p, b in zip(order, order[1:], order[2:]):
                dist[p] += (b[m] - a[m]) / span
    return [dist[p] for p in front]


POINTS = st.integers(1, 4).flatmap(lambda k: st.lists(st.tuples(*[st.integers(0, 5).map(float)] * k),
                                                      min_size=1, max_size=25))


@settings(max_examples=300, deadline=None)
@given(POINTS, st.randoms(use_true_random=False))
def test_fronts_and_crowding_match_the_definitions_in_any_order(pts, rnd) -> None:
    assert fronts(pts).tolist() == _brute_fronts(pts)
    ranks, crowding = fronts_and_crowding(pts)
    for r in set(ranks.tolist()):
        members = [p for p, q in zip(pts, ranks) if q == r]
        assert [c for c, q in zip(crowding.tolist(), ranks) if q == r] == pytest.approx(_brute_crowding(members))
    shuffled = list(range(len(pts)))
    rnd.shuffle(shuffled)
    again = fronts_and_crowding([pts[i] for i in shuffled])
    assert again[0].tolist() == ranks[shuffled].tolist() and again[1].tolist() == crowding[shuffled].tolist()
    if len(pts[0]) == 2:  # the O(n log n) sweep and the general peeling agree
        distinct = np.unique(np.array(pts), axis=0)
        assert ranking._fronts_2d(distinct).tolist() == ranking._fronts_general(distinct).tolist()
