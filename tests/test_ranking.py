"""Pareto ranking, hypervolume and knee on hand-checked points."""

from __future__ import annotations

import numpy as np
import pytest

from nas.ranking import hypervolume, knee_index, non_dominated_ranks, pareto_mask

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
