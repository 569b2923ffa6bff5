"""Rung rules for multi-objective early stopping (asynchronous successive halving).

A trial trained for ``epochs`` epochs is checked at the rungs ``min_epochs * eta**k`` (:func:`rung_epochs`).
At a rung it continues (:func:`keep`) only if it is in the best ``1/eta`` of the trials that reached that rung,
as in ASHA (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning") and Optuna's
``SuccessiveHalvingPruner``: the decision is taken once, when the trial reaches the rung, against the trials
that reached it before (and itself). Five rules for "best" (``RULES``):

* ``"pareto"`` (cost-aware, this project's rule): a trial competes only with the trials at the rung that are at
  least as cheap as it in every cost objective. nas knows a candidate's exact cost (MACs, params) before
  training, so cost needs no early estimate; only accuracy is uncertain at a rung.
* ``"margin"`` (cost-aware, this project's, the pruner's default): every trial at the rung competes, ranked
  by its *margin to the front at its own cost*: the best accuracy of the other trials at least as cheap as it,
  minus its own. Front members have a negative margin and always continue; the others continue while they are
  among the best ``1/eta`` by that margin (:func:`keep` says how it differs from ``"pareto"``).
* ``"ranked"`` (cost-aware, this project's): as ``"margin"``, but front members are under the quota too. Not
  the default: under the ``evolution`` sampler it stopped good networks along with the rest (on two tuning seeds
  of ``benchmarks/bench_plain_tpe.py``, 0.06-0.14 less hypervolume than no stopping).
* ``"nds"``: MO-ASHA (Schmucker, Donini, Zafar, Salinas, Archambeau 2021, "Multi-objective Asynchronous
  Successive Halving"), NSGA-II variant: non-dominated sorting over (accuracy up, costs down), ties within a
  front broken by crowding distance (copies of a point share its front and its distance).
* ``"asha"``: single-objective ASHA on accuracy (costs ignored).

The quota convention is the same for all of them: with a pool of ``n`` competing trials (mine included) and
``q = max(1, n // eta)``, a trial continues iff fewer than ``q`` trials of the pool rank *strictly* before it.
For ``n < eta`` (the first ``eta - 1`` trials at a rung) that means it must be the best of its pool, which is
Optuna's rule (Optuna cannot pause a trial and promote it later, so it keeps only a best-so-far one). Trials
that tie with mine (equal accuracy; for ``"nds"`` equal front and crowding distance) never count against it,
so a decision depends only on the values, never on the order of ``reached``.

Besides the rule, the pruner's ``reach`` option (:func:`can_reach`) stops a trial that cannot reach the front of
the *finished* trials at its cost even with the largest gain any finished trial of its kind made after the rung:
a bound, not a quota, on whether training on can still add hypervolume (in the spirit of Domhan, Springenberg,
Hutter 2015, "Speeding up Automatic Hyperparameter Optimization of Deep Neural Networks by Extrapolation of
Learning Curves", which stops a run unlikely to beat the best so far, here against a front and with the
observed gains for an extrapolation).

Fronts, crowding distance and dominance are :mod:`nas.ranking`'s (the one implementation, shared with the
evolution sampler and the study's table; its docstring states the rule for copies of a point). Both modules
are in the "core" layer: the standard library and numpy, nothing heavier.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from nas import ranking

__all__ = [
    "REACH_EVIDENCE",
    "RULES",
    "can_reach",
    "dominates",
    "front_margins",
    "keep",
    "nds_order",
    "pareto_front",
    "rung_epochs",
]

RULES = ("pareto", "margin", "ranked", "nds", "asha")
# the finished trials of a trial's kind with a gain after its rung that :func:`can_reach` needs before it bounds
REACH_EVIDENCE = 3

Point = tuple[float, tuple[float, ...]]  # (accuracy at the rung - to maximise, cost objectives - to minimise)


def _bad(field: str, rule: str, value: object) -> ValueError:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return ValueError(f"`{field}` must be {rule}, but got {field}={text}")


def _int_at_least(field: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise _bad(field, f"an integer >= {low}", value)
    return int(value)


def rung_epochs(min_epochs: int, eta: int, epochs: int) -> tuple[int, ...]:
    """The epochs after which a trial of ``epochs`` epochs is checked: ``min_epochs * eta**k`` for k = 0, 1, ...
    while below ``epochs`` (a trial that has trained all its epochs is finished, not checked).

    ``rung_epochs(min_epochs=1, eta=3, epochs=12)`` is ``(1, 3, 9)``; ``rung_epochs(2, 2, 12)`` is
    ``(2, 4, 8)``; ``rung_epochs(12, 3, 12)`` is ``()`` (no early stopping). Raises ``ValueError`` naming the
    field, the rule and the value for ``min_epochs < 1``, ``eta < 2`` or ``epochs < 1`` (or non-integers).
    """
    min_epochs = _int_at_least("min_epochs", min_epochs, 1)
    eta = _int_at_least("eta", eta, 2)
    epochs = _int_at_least("epochs", epochs, 1)
    out = []
    r = min_epochs
    while r < epochs:
        out.append(r)
        r *= eta
    return tuple(out)


# ---------------------------------------------------------------- dominance, fronts, crowding (nas.ranking)

def _vector(p: Point) -> tuple[float, ...]:
    """The point as a vector to minimise: (-accuracy, *costs)."""
    return (-p[0], *p[1])


def _matrix(points: Sequence[Point]) -> list[tuple[float, ...]]:
    return [_vector(p) for p in points]


def dominates(a: Point, b: Point) -> bool:
    """Whether ``a`` Pareto-dominates ``b`` over (accuracy up, costs down): at least as good in every objective
    and strictly better in one (:func:`nas.ranking.dominates`)."""
    return ranking.dominates(_vector(a), _vector(b))


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The points of ``points`` that no point of ``points`` dominates (copies of one point all stay)."""
    if not points:
        return []
    ranks = ranking.fronts(_matrix(points))
    return [p for p, r in zip(points, ranks) if r == 0]


def nds_order(points: Sequence[Point]) -> list[tuple[int, float]]:
    """Per point its MO-ASHA sort key (front index, -crowding distance within its front): smaller is better.
    Fronts and crowding are :func:`nas.ranking.fronts_and_crowding`'s, so copies of a point share its key."""
    if not points:
        return []
    ranks, crowding = ranking.fronts_and_crowding(_matrix(points))
    return [(int(r), -float(d)) for r, d in zip(ranks, crowding)]


# ---------------------------------------------------------------- the rule

def _real(v: object) -> bool:
    if type(v) is float or type(v) is int:  # the common case, without the ABC check
        return not math.isnan(v)
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and not math.isnan(v)


def _point(field: str, p: object, n_costs: int | None) -> Point:
    if (type(p) is tuple or type(p) is list) and len(p) == 2:
        acc, costs = p
        if type(costs) in (tuple, list) and _real(acc) and all(_real(c) for c in costs):
            if n_costs is not None and len(costs) != n_costs:
                raise _bad(field, f"points with {n_costs} cost objectives, as mine", p)
            return (acc, costs if type(costs) is tuple else tuple(costs))
    raise _bad(field, "(accuracy, (cost, ...)) of real numbers, none NaN", p)


def _check(rule: object, mine: object, reached: object, eta: object) -> tuple[Point, list[Point], int]:
    if not isinstance(rule, str) or rule not in RULES:
        raise _bad("rule", f"one of {', '.join(map(repr, RULES))}", rule)
    eta = _int_at_least("eta", eta, 2)
    me = _point("mine", mine, None)
    if not isinstance(reached, (list, tuple)):
        raise _bad("reached", "a list of (accuracy, costs) including mine", reached)
    n_costs = len(me[1])
    pts = [_point("reached[]", p, n_costs) for p in reached]
    if me not in pts:
        raise _bad("reached", "a list of the trials at the rung that includes mine", f"{len(pts)} points without "
                   f"{me!r}")
    return me, pts, eta


def front_margins(points: Sequence[Point]) -> list[float]:
    """Per point, the best accuracy of the other points whose every cost is <= its own (copies of the point -
    equal accuracy and costs - left out), minus its own accuracy; ``-inf`` when there is no such point.
    Negative exactly when the point is on the Pareto front of ``points``: a point at most as costly is then
    either less accurate or a copy. The larger, the further the point is below the front at its cost.

    One cost objective: O(n log n) (a sweep in cost order with a running best); more: O(costs * n^2)."""
    n = len(points)
    out = [0.0] * n
    if n and len(points[0][1]) == 1:
        order = sorted(range(n), key=lambda i: points[i][1][0])
        best = -math.inf  # the best accuracy of the strictly cheaper points so far
        i = 0
        while i < n:  # one group of equal cost at a time: its members are each other's competitors too
            j = i
            while j < n and points[order[j]][1][0] == points[order[i]][1][0]:
                j += 1
            accs = sorted({points[order[t]][0] for t in range(i, j)}, reverse=True)
            for t in range(i, j):
                acc = points[order[t]][0]
                other = accs[0] if acc != accs[0] else (accs[1] if len(accs) > 1 else -math.inf)
                out[order[t]] = max(best, other) - acc
            best = max(best, accs[0])
            i = j
        return out
    for i, (acc, costs) in enumerate(points):
        others = [p[0] for p in points if p != (acc, costs) and all(c <= m for c, m in zip(p[1], costs))]
        out[i] = max(others, default=-math.inf) - acc
    return out


def keep(rule: str, mine: Point, reached: list[Point], eta: int) -> bool:
    """Whether the trial ``mine`` continues past this rung under ``rule`` (one of ``RULES``).

    ``mine`` is (its accuracy after this rung's epochs, its cost objective values - all to minimise, e.g.
    (MACs,) or (MACs, params)); ``reached`` holds the (accuracy, costs) of every trial that has reached this
    rung, ``mine`` included. Each rule builds a pool of competitors (mine included) and a strict "ranks before"
    relation; with ``q = max(1, len(pool) // eta)`` the trial continues iff fewer than ``q`` trials of the pool
    rank strictly before it:

    * ``"pareto"``: pool = the trials of ``reached`` whose every cost is <= mine's; "before" = strictly more
      accurate. That is ASHA among the trials at least as cheap as mine: a cheap trial is not stopped because
      expensive ones are more accurate; an expensive one must beat the cheaper ones.

      *It keeps every trial on the rung's Pareto front* over (accuracy up, costs down). Proof: let ``mine`` be
      non-dominated in ``reached`` and ``p`` be in its pool, so every cost of ``p`` is <= mine's. If ``p``
      were strictly more accurate, ``p`` would be at least as good in every objective and strictly better in
      accuracy, i.e. ``p`` would dominate ``mine``: a contradiction. So no trial of the pool ranks before
      ``mine``, 0 < q, and it continues. (Copies of ``mine`` are equally accurate and do not count.) It keeps
      more than the front: a dominated trial still continues while it is in the top ``1/eta`` of the trials
      at least as cheap as it, so about ``1/eta`` of a random stream continues (one cost objective, see the
      tests). With no cost objectives, or all costs equal, it is exactly ``"asha"``.
    * ``"margin"``: pool = all of ``reached``; a trial with a negative :func:`front_margins` value (more
      accurate than every other trial at least as cheap: on the rung's front) always continues; otherwise
      "before" = a strictly smaller margin. Front members rank before every other trial, so a dominated
      trial continues only while the front and the trials closer to it fill fewer than ``q`` places.
      Copies of ``mine`` are left out of its margin, so copies of a front member all continue. It keeps every
      front member as ``"pareto"`` does, but is stricter with the rest: an expensive trial in the top third
      of the cheaper trials that is still far below the best of them is stopped.
    * ``"ranked"``: as ``"margin"``, but front members are not kept unconditionally: every trial, front
      members included, ranks by its margin (the further above the front at its cost, the better) and only
      the best ``q`` continue. A sampler that proposes children near the front (``evolution``) puts many
      trials on a rung's front, where ``"margin"`` keeps them all; this keeps about ``1/eta`` whatever the
      sampler.
    * ``"nds"``: pool = all of ``reached``; "before" = smaller (front index, -crowding distance) in
      :func:`nds_order`: non-dominated sorting over (accuracy up, costs down), within a front larger NSGA-II
      crowding distance first. MO-ASHA's paper also has an epsilon-net variant (a greedy selection that
      spreads the continuing trials over the objective space); this is the NSGA-II variant, not that one. When
      the first front holds more than ``q`` trials, front members with small crowding distance are stopped.
    * ``"asha"``: pool = all of ``reached``; "before" = strictly more accurate; costs are ignored. This equals
      Optuna's ``SuccessiveHalvingPruner`` test (continue iff accuracy >= the ``q``-th best accuracy).

    Raises ``ValueError`` naming the field, the rule and the value for an unknown rule, ``eta`` < 2, a point
    that is not (number, (numbers...)) or holds NaN, points with different numbers of costs, or ``mine`` not
    in ``reached``. Time O(n * costs) for "pareto" and "asha", O(n log n) for "margin" and "nds" with one cost
    objective and O(costs * n^2) with more.
    """
    me, pts, eta = _check(rule, mine, reached, eta)
    acc, costs = me
    if rule == "asha":
        pool = pts
        before = sum(p[0] > acc for p in pool)
    elif rule == "pareto":
        if len(costs) == 1:
            cap = costs[0]
            pool = [p for p in pts if p[1][0] <= cap]
        else:
            pool = [p for p in pts if all(c <= m for c, m in zip(p[1], costs))]
        before = sum(p[0] > acc for p in pool)
    elif rule in ("margin", "ranked"):
        pool = pts
        margins = front_margins(pool)
        mine_margin = margins[pool.index(me)]
        if mine_margin < 0 and rule == "margin":
            return True
        before = sum(m < mine_margin for m in margins)
    else:
        pool = pts
        keys = nds_order(pool)
        mine_key = keys[pool.index(me)]
        before = sum(k < mine_key for k in keys)
    return before < max(1, len(pool) // eta)


def can_reach(mine: Point, gains: Sequence[float], finished: Sequence[Point],
              evidence: int = REACH_EVIDENCE) -> bool:
    """Whether the trial ``mine`` (its accuracy at a rung, its cost objectives) can still reach the front of
    ``finished`` (final accuracy and costs of the finished trials): whether ``(accuracy + max(gains), costs)``
    is better than every finished point at most as costly. ``gains`` are the final-minus-rung accuracies of the
    finished trials of mine's kind that passed this rung (the most any of them gained after it). With fewer
    than ``evidence`` gains there is no bound yet and the trial can reach (True).

    A trial that cannot reach adds no hypervolume even if it gains as much as the best of its kind did: some
    finished trial at most as costly is at least as accurate as that. One cost objective or several; with
    none, the front is the best finished accuracy. ``ValueError`` naming the field for malformed points or
    gains (non-numbers or NaN) or ``evidence`` < 1."""
    evidence = _int_at_least("evidence", evidence, 1)
    acc, costs = _point("mine", mine, None)
    for g in gains:
        if not _real(g):
            raise _bad("gains[]", "real numbers, none NaN", g)
    points = [_point("finished[]", p, len(costs)) for p in finished]
    if len(gains) < evidence:
        return True
    best = acc + max(gains)
    return not any(p[0] >= best and all(c <= m for c, m in zip(p[1], costs)) for p in points)
