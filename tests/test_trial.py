"""nas.trial: the one replay trial (strict about types and step grids), the seeded random trial, and the value
grid of a distribution that the evolution sampler and the within-limits sampler share."""

from __future__ import annotations

import functools
import random
from typing import Any

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import search_spaces
from nas.engine.distributions import from_optuna, to_optuna
from nas.trial import FixedTrial, RandomTrial, ReplayTrial, draw, grid

SHAPES = [(8, 8, 1), (32, 32, 3)]


@functools.cache
def make_space(name: str, shape: tuple[int, int, int]) -> search_spaces.Space:
    """Every space at a small input (as tests/test_spaces.py configures them; compound around a small base)."""
    if name == "compound":
        base = search_spaces.get("mbconv", input_shape=shape, widths=(16, 24, 32, 48),
                                 head_widths=(0, 320)).sample(RandomTrial(seed=1))
        return search_spaces.get("compound", base=base)
    return search_spaces.get(name, input_shape=shape)


def _rule(dist: tuple) -> str:
    """The rule an error message must state, written out here (not taken from nas.trial)."""
    if dist[0] == "categorical":
        return f"one of {list(dist[1])}"
    if dist[0] == "int":
        return f"an integer in [{dist[1]}, {dist[2]}] (step {dist[3]})"
    return f"a number in [{dist[1]}, {dist[2]}]" + (f" on a grid of step {dist[3]}" if dist[3] is not None else "")


def _refused(dist: tuple, value: Any) -> list[Any]:
    """Values the replay must refuse for a label of ``dist`` whose sampled value is ``value``: of the wrong type
    (True for 1, 1 for True, 2.0 for 2, a string for a number), off the step grid, out of the range."""
    if dist[0] == "categorical":
        out: list[Any] = [str(value) + "?"]  # no choice is such a string
        if isinstance(value, bool):
            out.append(int(value))
        elif isinstance(value, int):
            out += [float(value)] + ([True] if value == 1 else [])
        elif isinstance(value, float):
            out += [int(value)] if value == int(value) else []
        return [v for v in out if not any(v == c and type(v) is type(c) for c in dist[1])]
    high, step = dist[2], dist[3]
    out = [True, str(value), high + (step or 1)]
    if dist[0] == "int":
        out.append(float(value))
    if step is not None and (dist[0] == "float" or step > 1) and value + step / 2 <= high:
        out.append(value + step / 2 if dist[0] == "float" else value + 1)
    return out


@settings(max_examples=120, deadline=None)
@given(name=st.sampled_from(search_spaces.names()), shape=st.sampled_from(SHAPES), seed=st.integers(0, 10**6),
       data=st.data())
def test_a_random_sample_replays_to_the_same_spec_and_wrong_values_are_refused(
        name: str, shape: tuple[int, int, int], seed: int, data: st.DataObject) -> None:
    space = make_space(name, shape)
    drawn = RandomTrial(seed=seed)
    spec = space.sample(drawn)
    replay = ReplayTrial(drawn.params)
    assert space.sample(replay) == spec
    assert replay.params == drawn.params and replay.distributions == drawn.distributions
    assert replay.filled == [] and replay.unused() == []
    assert drawn.filled == list(drawn.params)  # the random trial is a replay of nothing, every label drawn
    if not drawn.params:
        return
    label = data.draw(st.sampled_from(sorted(drawn.params)))
    dist, value = drawn.distributions[label], drawn.params[label]
    for bad in _refused(dist, value):
        with pytest.raises(ValueError) as info:
            space.sample(ReplayTrial({**drawn.params, label: bad}))
        assert str(info.value) == f"label {label!r} must be {_rule(dist)}, but got {label}={bad!r}"
        # with a fill, the refused value is answered by the fill instead, and only that label is filled
        fill = ReplayTrial({**drawn.params, label: bad}, lambda n, d: drawn.params[n])
        assert space.sample(fill) == spec and fill.filled == [label]


def test_strict_by_type_and_step_with_exact_messages() -> None:
    trial = ReplayTrial({"n": True, "k": 2, "m": 4, "w": 1.25, "b": 1, "c": 3.0, "x": 0.5})
    cases = [
        (lambda: trial.suggest_int("n", 1, 3), "label 'n' must be an integer in [1, 3] (step 1), but got n=True"),
        (lambda: trial.suggest_int("k", 1, 9, step=2), "label 'k' must be an integer in [1, 9] (step 2), but got k=2"),
        (lambda: trial.suggest_int("m", 1, 3), "label 'm' must be an integer in [1, 3] (step 1), but got m=4"),
        (lambda: trial.suggest_float("w", 1.0, 2.0, step=0.1),
         "label 'w' must be a number in [1.0, 2.0] on a grid of step 0.1, but got w=1.25"),
        (lambda: trial.suggest_categorical("b", [False, True]), "label 'b' must be one of [False, True], but got b=1"),
        (lambda: trial.suggest_categorical("c", [1, 3]), "label 'c' must be one of [1, 3], but got c=3.0"),
        (lambda: trial.suggest_int("z", 0, 1), "ReplayTrial has no value for label 'z' (given: b, c, k, m, n, w, x)"),
        (lambda: trial.suggest_int("y", 0, 4, step=0), "suggest_int needs step >= 1, but got step=0"),
    ]
    for ask, message in cases:
        with pytest.raises(ValueError) as info:
            ask()
        assert str(info.value) == message
    assert trial.suggest_float("x", 0, 1) == 0.5 and trial.params == {"x": 0.5}
    assert ReplayTrial({"f": 1}).suggest_float("f", 0.0, 2.0) == 1.0  # an int is a number for a float label
    assert FixedTrial({"b": True}).suggest_categorical("b", [1, True]) is True
    with pytest.raises(ValueError, match="FixedTrial has no value for label 'q'"):
        FixedTrial({}).suggest_categorical("q", [1])


def test_one_grid_for_every_distribution() -> None:
    # nas.trial.grid is the value list of the evolution sampler's mutations and of the within-limits sampler's
    # replacements (there through Optuna's distributions: grid(from_optuna(d)))
    cases = [
        (optuna.distributions.CategoricalDistribution([None, "a", True]), None, [None, "a", True]),
        (optuna.distributions.IntDistribution(2, 11, step=3), None, [2, 5, 8, 11]),
        (optuna.distributions.IntDistribution(1, 8, log=True), None, [1, 2, 3, 4, 5, 6, 7, 8]),
        (optuna.distributions.FloatDistribution(1.0, 2.0, step=0.1), None,
         [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0]),
        (optuna.distributions.FloatDistribution(0.0, 1.0), None, None),
        (optuna.distributions.IntDistribution(0, 256), 256, None),  # 257 values: more than `most`
        (optuna.distributions.IntDistribution(0, 255), 256, list(range(256))),
        (optuna.distributions.CategoricalDistribution(list(range(300))), 256, list(range(300))),
    ]
    for dist, most, expected in cases:
        assert grid(from_optuna(dist), most) == expected, dist
        assert to_optuna(from_optuna(dist)) == dist
    # a random draw of a grid is one of its values, the same stream as the random trial's
    dist = from_optuna(optuna.distributions.FloatDistribution(1.0, 2.0, step=0.1))
    rng = random.Random(3)
    values = [draw(dist, rng) for _ in range(50)]
    assert set(values) <= set(grid(dist)) and len(set(values)) > 5
    trial = RandomTrial(seed=3)
    assert [trial.suggest_float(f"v{i}", 1.0, 2.0, step=0.1) for i in range(50)] == values
