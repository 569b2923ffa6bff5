"""Pareto evolution: nas's own multi-objective architecture sampler (``sampler="evolution"``).

A steady-state evolutionary search that knows what an Optuna sampler cannot: the search space itself. Each
new trial is one *child*, made before the trial asks anything (in :meth:`ParetoEvolutionSampler.before_trial`,
which nas runs under the study's claim lock):

1. **Population.** The distinct architectures evaluated so far (trials of the study, read from its storage:
   the sampler keeps no state of its own, so a resumed study or a second worker goes on from what is stored).
   Until ``population_size`` of them are feasible, children are random architectures (warm-start classics the
   study enqueued are evaluated first, as they are, and join the population). With ``init="spread"`` each of
   these takes its own place on the cost axis: the k-th is, of 16 fresh random draws, the one whose cost
   (the study's analytic cost objectives, each as a share of its limit) is nearest ``(k + 1/2) /
   population_size``, the cheapest first. A failed trial is not a member, but its place counts as taken: k
   counts the architectures that did not fail, and the k-th aims at the free place nearest its own (failures
   in one region of the space, say the networks a device has no memory for, fail once per place there).
2. **Ranking.** Feasible candidates before over-budget ones (those by their total violation, after all the
   feasible); the feasible ones by non-dominated sorting and, within a front, by crowding distance, boundary
   points first (:func:`nas.ranking.fronts_and_crowding`: architectures with equal objective values share
   their front and distance, then a random tie break orders them). A pruned trial (stopped early by
   ``pruner="pareto"``) is ranked on its last measured accuracy and its exact cost, and behind every completed
   trial of the same front. The best ``population_size`` form the parent pool.
3. **Selection.** A tournament: ``tournament_size`` members of the pool drawn at random, the best ranked wins.
   **Exploitation at the top.** In a share ``exploit`` (0.35) of the trials instead (a coin of a stream of its own,
   from the seed and the trial's number), the parent is the most accurate completed feasible member (the objective
   named ``accuracy``, else the first; the earliest trial of equals), and the first fresh child of one mutation of
   it (step 4) is proposed as it is, without the model of step 5 (when all those tried are taken, the trial takes
   the steps below). The multi-objective ranking alone spreads the trials along the front and finds the single most
   accurate network less reliably than regularized evolution does on accuracy alone; on the NAS-Bench-201 CIFAR-10
   table (100 trials, seeds 0-49; tuned on seeds 100-149) this step takes the median best-accuracy regret from
   0.0007 to 0.0000 (REA's: 0.0011, p = 4e-4) and the hypervolume gap from 0.0023 to 0.0025 (TPE's: 0.0035;
   BENCHMARKS.md, "evolution: exploitation at the top").
4. **Mutation.** One *active* label of the parent (a label its trial actually asked) takes another value
   (categorical: any other choice; an integer or a grid: a neighbouring value half of the time, any other value
   otherwise). The child is the space's own answer to the parent's labels with that change, replayed through
   ``space.sample`` on a stand-in trial: labels the change switches off are dropped, and labels it switches on
   (a new stage, a block's own options) are drawn at random. So the child's labels are exactly those its spec
   asks.
5. **A model picks among children.** ``candidates`` children are made per trial (each from its own
   tournament); the one predicted to advance the front most is proposed. Objectives that are analytic costs
   (named ``macs``, ``flops`` or ``params``, as nas names them) are computed exactly for the child's spec; the
   others (accuracy, latency) are predicted by a ridge regression on the labels of the evaluated trials (one
   column per label choice). The advance is the margin by which the predicted point escapes domination by the
   current front, on objectives scaled to the population's range.
6. **No repeats.** The replay gives the child's spec and its ``key()`` before the trial exists. A child whose
   key was evaluated, is running in another worker, waits in the queue, or (with analytic constraints
   stored with a nas study) is over budget is not proposed: the sampler tries other mutations and
   tournaments, then every single-label neighbour of the ranked population, then random architectures, and
   only when all of those are taken does it propose a repeat (which nas answers from the stored result, at
   the cost of a lookup).

What each trial was made from is recorded as its system attribute ``nas_evolution``: ``origin`` (random,
mutation, exploit, neighbour, repeat), ``parent`` (trial number), ``label`` (the mutated label), ``key``,
``params`` and, for a first-population member drawn with ``init="spread"``, ``place`` (the k it was drawn for).
Concurrent workers read the keys of each other's RUNNING trials from it, so no two of them propose the same
child while the proposals are made under nas's claim lock (the local and Ray backends, ``nas worker``; without
such a lock two processes may still propose the same child at the same instant). The random stream of a trial
is derived from the seed and the trial's number, so the search is deterministic under a seed, and a study
resumed with the same seed proposes what an uninterrupted run would have proposed.

Where it comes from, in short:

* Real, Aggarwal, Huang and Le, "Regularized Evolution for Image Classifier Architecture Search" (AAAI 2019):
  tournament selection from a population and a child made by one random mutation of its parent, which on
  architecture spaces beats reinforcement learning at equal budgets. Their population ages out its oldest
  member; this sampler keeps the best-ranked instead (elitist), which the measurements favoured on the tables.
* Deb, Pratap, Agarwal and Meyarivan, "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II" (IEEE
  TEVC 2002): ranking by non-dominated fronts and crowding distance, and treating a feasible solution as
  better than an infeasible one, and a smaller violation as better among infeasible ones.
* White, Nolen and Savani, "Exploring the Loss Landscape in Neural Architecture Search" (UAI
  2021): on NAS-Bench-201 and similar cell spaces, local search over one-edge changes is a strong baseline,
  because neighbouring architectures have close accuracies. Hence mutations of a single label, and the
  neighbour scan before falling back to random candidates.
* Elsken, Metzen and Hutter, "Efficient Multi-objective Neural Architecture Search via Lamarckian Evolution"
  (LEMONADE, ICLR 2019): evolution over a Pareto front that uses the cheap objective (a network's size,
  known without training it) to decide which children are worth the expensive one. Here the exact cost
  places each candidate child on the cost axis before any training, and over-budget children are never
  proposed.
* The model over label choices is in the spirit of the cheap predictors of BANANAS (White, Neiswanger and
  Savani, AAAI 2021) and of NAS predictors generally, reduced to a linear model: it only orders a handful of
  children that evolution made, so it need not be accurate, only better than chance.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.budget import ANALYTIC, CONSTRAINTS
from nas.engine import records
from nas.engine.distributions import from_optuna, to_optuna
from nas.ranking import fronts, fronts_and_crowding
from nas.trial import ReplayTrial, draw, grid
from nas.validate import check_number

__all__ = ["ATTR", "INITS", "ParetoEvolutionSampler", "check_init"]

ATTR = "nas_evolution"  # the trial system attribute recording what the trial was made from
FIXED = "fixed_params"  # Optuna's system attribute of an enqueued trial
TRIES = 48  # mutations (each after a tournament) tried before the neighbour scan
RANDOM_TRIES = 64  # random architectures tried before a repeat is proposed
SPREAD_DRAWS = 16  # fresh random architectures drawn per member of the first population with init="spread"
SPREAD_TRIES = 1024  # random architectures tried for them (under a tight limit most are over it)
INITS = ("random", "spread")  # how the first population is drawn
NEIGHBOUR_VALUES = 16  # values tried per numeric label in the neighbour scan (the nearest)
MEMO = 200_000  # replayed children remembered per sampler (labels -> spec key)
EXPLOIT = 0.35  # the share of trials whose child mutates the most accurate member (tuned: benchmarks, BENCHMARKS.md)
EXPLOIT_STREAM = 0x5EA  # mixed into a trial's seed for its exploitation coin (a stream of its own)


# ------------------------------------------------------------------ values and distributions

def _same(a: Any, b: Any) -> bool:
    return a == b and type(a) is type(b)


def _index(values: list[Any], value: Any) -> int | None:
    for i, v in enumerate(values):
        if _same(v, value) or (isinstance(v, float) and isinstance(value, (int, float)) and not isinstance(value, bool)
                               and abs(v - value) < 1e-9):
            return i
    return None


def _other(dist: BaseDistribution, value: Any, rng: random.Random) -> Any:
    """Another value of ``dist`` than ``value`` (None when there is none): categorical, any other choice;
    integers and grids, a neighbouring value half of the time, any other one otherwise; a continuous float, a
    Gaussian step of a tenth of its range (in log space for a log float)."""
    values = grid(from_optuna(dist))
    if values is None:
        assert isinstance(dist, FloatDistribution)
        lo, hi, v = dist.low, dist.high, float(value)
        if dist.log:
            lo, hi, v = math.log(lo), math.log(hi), math.log(v)
        x = min(hi, max(lo, v + rng.gauss(0.0, 0.1 * (hi - lo))))
        return math.exp(x) if dist.log else x
    if len(values) < 2:
        return None
    at = _index(values, value)
    others = [i for i in range(len(values)) if i != at]
    if at is not None and not isinstance(dist, CategoricalDistribution) and rng.random() < 0.5:
        others = [i for i in (at - 1, at + 1) if 0 <= i < len(values)]
    return values[rng.choice(others)]


def _neighbour_values(dist: BaseDistribution, value: Any, rng: random.Random) -> list[Any]:
    """The other values of a label for the neighbour scan: all of a categorical, the nearest of a grid."""
    values = grid(from_optuna(dist))
    if values is None:
        return [_other(dist, value, rng) for _ in range(4)]
    at = _index(values, value)
    order = [i for i in range(len(values)) if i != at]
    if not isinstance(dist, CategoricalDistribution) and at is not None:
        order.sort(key=lambda i: abs(i - at))
        order = order[:NEIGHBOUR_VALUES]
    return [values[i] for i in order]


def _active(dist: BaseDistribution) -> bool:
    values = grid(from_optuna(dist))
    return values is None or len(values) > 1


def _replay(given: dict[str, Any], rng: random.Random) -> ReplayTrial:
    """The stand-in trial a child is made with: the space's questions answered from ``given`` where the value
    fits the question, with random draws where it does not or is not given (those labels are in ``filled``)."""
    return ReplayTrial(given, lambda name, dist: draw(dist, rng))


def _optuna(trial: ReplayTrial) -> dict[str, BaseDistribution]:
    """The labels a replay asked, with their Optuna distributions."""
    return {name: to_optuna(dist) for name, dist in trial.distributions.items()}


@dataclass
class _Candidate:
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    key: str
    spec: Any = None
    origin: str = "random"
    parent: int | None = None
    label: str | None = None
    place: int | None = None  # a spread first-population member: the place on the cost axis it was drawn for

    def record(self) -> dict[str, Any]:
        made = {"origin": self.origin, "parent": self.parent, "label": self.label, "key": self.key,
                "params": self.params}
        return made if self.place is None else {**made, "place": self.place}


@dataclass
class _Member:
    """One distinct evaluated architecture of the population, with what ranking needs."""

    trial: FrozenTrial
    values: tuple[float, ...]
    feasible: bool
    violation: float
    pruned: bool
    tie: float = 0.0
    rank: int = 0
    crowding: float = 0.0


@dataclass
class _Population:
    taken: set[str] = field(default_factory=set)
    members: list[_Member] = field(default_factory=list)
    # architectures whose every trial failed (taken, never members), by key: the plan of the first one
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)


# ------------------------------------------------------------------ the model of the objectives

def _encode(rows: list[tuple[dict[str, Any], dict[str, BaseDistribution]]]) -> np.ndarray:
    """Labels as features: one column per (label, choice) of a categorical, and per numeric label its value scaled
    to [0, 1] plus a column saying it was asked (labels a trial did not ask are 0)."""
    columns: dict[tuple[str, str | None], int] = {}
    for params, dists in rows:
        for name, value in params.items():
            if isinstance(dists.get(name), CategoricalDistribution):
                columns.setdefault((name, repr(value)), len(columns))
            else:
                columns.setdefault((name, None), len(columns))
                columns.setdefault((name, "asked"), len(columns))
    x = np.zeros((len(rows), len(columns)))
    for i, (params, dists) in enumerate(rows):
        for name, value in params.items():
            dist = dists.get(name)
            if isinstance(dist, CategoricalDistribution):
                x[i, columns[(name, repr(value))]] = 1.0
                continue
            if isinstance(dist, (FloatDistribution, IntDistribution)):  # (the only others: categorical, above)
                lo, hi = float(dist.low), float(dist.high)
            else:
                lo, hi = 0.0, 1.0
            v = float(value)
            if getattr(dist, "log", False) and lo > 0 and v > 0:
                lo, hi, v = math.log(lo), math.log(hi), math.log(v)
            x[i, columns[(name, None)]] = (v - lo) / (hi - lo) if hi > lo else 0.0
            x[i, columns[(name, "asked")]] = 1.0
    return x


def _ridge(x: np.ndarray, y: np.ndarray, at: np.ndarray, penalty: float) -> np.ndarray:
    """Ridge regression of ``y`` on ``x`` (with an intercept), predicted at ``at``."""
    mean_x, mean_y = x.mean(axis=0), y.mean()
    xc = x - mean_x
    w = np.linalg.solve(xc.T @ xc + penalty * np.eye(x.shape[1]), xc.T @ (y - mean_y))
    return (at - mean_x) @ w + mean_y


# ------------------------------------------------------------------ ranking

def rank_members(members: list[_Member], directions: Sequence[StudyDirection]) -> list[_Member]:
    """``members`` best first: feasible by (front, completed before pruned, larger crowding distance, random tie
    break), then the infeasible by (violation, tie break)."""
    feasible = [m for m in members if m.feasible]
    infeasible = sorted((m for m in members if not m.feasible), key=lambda m: (m.violation, m.tie))
    if feasible:
        sign = np.array([1.0 if d == StudyDirection.MINIMIZE else -1.0 for d in directions])
        points = np.array([m.values for m in feasible], dtype=float) * sign
        ranks, crowding = fronts_and_crowding(points)
        for m, r, c in zip(feasible, ranks, crowding):
            m.rank, m.crowding = int(r), float(c)
        feasible.sort(key=lambda m: (m.rank, m.pruned, -m.crowding, m.tie))
    return feasible + infeasible


# ------------------------------------------------------------------ the sampler

def check_init(field: str, value: Any) -> str:
    """``value`` if it is one of ``INITS``; else a ``ValueError`` naming the field, the rule and the value."""
    if not isinstance(value, str) or value not in INITS:
        raise ValueError(f"`{field}` must be one of {', '.join(map(repr, INITS))}, but got {field}={value!r}")
    return value


class ParetoEvolutionSampler(optuna.samplers.BaseSampler):
    """Multi-objective evolution over a nas search space (see the module docstring).

    ``space``: the ``search_spaces.Space`` the study samples (the sampler replays it to know each child's labels
    and spec key). ``population_size`` (10): random architectures before evolution starts, and the size of the
    parent pool (the best ranked). ``tournament_size`` (3): pool members drawn per tournament. ``candidates`` (8):
    children made (each from its own tournament) per trial, of which the model picks one; 1 is plain evolution.
    ``exploit`` (0.35): the probability that a trial's child instead mutates the most accurate member (0: never, 1:
    always while it has untried neighbours). ``init`` ("random"): how the first population is drawn; "spread":
    spread over the cost axis, cheapest first (see the module docstring). ``constraints``: analytic limits
    ``{"max_macs": ...}`` (``max_flops``, ``max_params``) that children must meet, or a function ``study -> limits``
    (nas passes one that reads the study's stored configuration); None: no limits. ``seed``: the stream every
    trial's draws are derived from (with the trial number). Works for one or several objectives.
    ``sampler="evolution"`` in nas makes it with these defaults but ``init="spread"`` (stored with the study), the
    population smaller below 50 trials (``n_trials // 5``, at least 4).
    """

    ridge = 1.0  # the surrogate's penalty
    samples_within_limits = True  # children over the study's analytic limits are never proposed (nas.engine.limits)

    def __init__(self, space: Any, *, population_size: int = 10, tournament_size: int = 3, candidates: int = 8,
                 constraints: dict[str, float] | Callable[[optuna.Study], dict[str, float]] | None = None,
                 seed: int | None = None, exploit: float = EXPLOIT, init: str = "random") -> None:
        for name, value, low in (("population_size", population_size, 1), ("tournament_size", tournament_size, 1),
                                 ("candidates", candidates, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`sampler.{name}` must be an integer >= {low}, but got sampler.{name}={value!r}")
        exploit = check_number("sampler.exploit", exploit, 0.0, 1.0)
        check_init("sampler.init", init)
        if tournament_size > population_size:
            raise ValueError(f"`sampler.tournament_size` must be at most population_size ({population_size}), but "
                             f"got sampler.tournament_size={tournament_size!r}")
        if not callable(getattr(space, "sample", None)):
            raise ValueError(f"ParetoEvolutionSampler needs the search space (an object with sample(trial)), but got "
                             f"{space!r}")
        self.space = space
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.candidates = candidates
        self.exploit = exploit
        self.init = init
        self._constraints_source = constraints
        self._limits: dict[int, dict[str, float]] = {}
        self._seed = seed if seed is not None else random.SystemRandom().randrange(2**63)
        self._plans: dict[int, _Candidate] = {}
        self._keys: dict[int, str | None] = {}  # trial id -> spec key, for finished trials (they do not change)
        self._replays: dict[tuple[Any, ...], str | None] = {}  # params -> spec key
        self._answers: dict[tuple[Any, ...], _Candidate] = {}  # labels given -> the child they make (no draws)

    # -- Optuna's interface
    def reseed_rng(self) -> None:
        self._seed = random.SystemRandom().randrange(2**63)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.system_attrs.get(FIXED) is not None or ATTR in trial.system_attrs:
            return  # enqueued (warm start, retry, the user's): Optuna answers from its params
        plan = self._plan(study, trial)
        self._plans[trial._trial_id] = plan
        study._storage.set_trial_system_attr(trial._trial_id, ATTR, plan.record())
        trial.system_attrs[ATTR] = plan.record()

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        plan = self._plan_of(trial)
        return dict(plan.distributions) if plan is not None else {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        plan = self._plan_of(trial)
        if plan is None:
            return {}
        return {k: v for k, v in plan.params.items() if k in search_space}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        """Labels no plan answers (an enqueued trial's missing labels): at random, from the trial's stream."""
        rng = random.Random(self._trial_seed(trial.number) ^ zlib.crc32(param_name.encode()))
        return draw(from_optuna(param_distribution), rng)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._plans.pop(trial._trial_id, None)

    # -- the plan of a trial
    def _trial_seed(self, number: int) -> int:
        return (self._seed * 1_000_003 + number * 7_919 + 1) % (2**63)

    def _plan_of(self, trial: FrozenTrial) -> _Candidate | None:
        plan = self._plans.get(trial._trial_id)
        if plan is None and isinstance(trial.system_attrs.get(ATTR), dict):
            # made by another sampler object (another process asked for the trial): replay its stored params
            stored = trial.system_attrs[ATTR]
            replay = _replay(dict(stored.get("params") or {}), random.Random(self._trial_seed(trial.number)))
            try:
                self.space.sample(replay)
            except ValueError:
                return None
            plan = _Candidate(replay.params, _optuna(replay), str(stored.get("key")))
            self._plans[trial._trial_id] = plan
        return plan

    def _plan(self, study: optuna.Study, trial: FrozenTrial) -> _Candidate:
        rng = random.Random(self._trial_seed(trial.number))
        pop = self._population(study, trial)
        limits = self._constraints(study)
        for m in pop.members:
            m.tie = rng.random()

        fallback: list[_Candidate | None] = [None, None]  # a taken child that fits; any child

        def fresh(c: _Candidate | None) -> bool:
            if c is None:
                return False
            fits = self._fits(c, limits)
            if c.key not in pop.taken and fits:
                return True
            fallback[0] = fallback[0] or (c if fits else None)
            fallback[1] = fallback[1] or c
            return False

        feasible = sum(1 for m in pop.members if m.feasible)
        if feasible >= self.population_size:
            coin = random.Random(self._trial_seed(trial.number) ^ EXPLOIT_STREAM).random()
            if coin < self.exploit:
                child = self._exploit(pop.members, study, rng, fresh)
                if child is not None:
                    return child
            ranked = rank_members(pop.members, study.directions)
            pool = ranked[:self.population_size]
            k = min(self.tournament_size, len(pool))
            children: dict[str, _Candidate] = {}
            for _ in range(TRIES):
                parent = pool[min(rng.sample(range(len(pool)), k))]  # the pool is sorted best first
                child = self._mutate(parent.trial, rng)
                if fresh(child):
                    assert child is not None
                    children.setdefault(child.key, child)
                    if len(children) >= self.candidates:
                        break
            if children:
                return self._choose(list(children.values()), pop.members, study)
            for m in ranked:  # every single-label neighbour of the population, best ranked first
                for child in self._neighbours(m.trial, rng):
                    if fresh(child):
                        return child
        if feasible < self.population_size and self.init == "spread":
            child = self._spread(study, pop, limits, rng, fresh)
            if child is not None:
                return child
        for _ in range(RANDOM_TRIES):
            child = self._replay({}, rng)
            if fresh(child):
                assert child is not None
                return child
        # everything tried is taken or over budget: a repeat that fits (nas answers it from the stored result),
        # else whatever was drawn (recorded as over budget)
        last = fallback[0] or fallback[1]
        if last is None:  # a space whose samples all fail (it raises for the trial itself)
            return _Candidate({}, {}, "", origin="repeat")
        if last.key in pop.taken:
            last.origin = "repeat"
        return last

    def _spread(self, study: optuna.Study, pop: _Population, limits: dict[str, float], rng: random.Random,
                fresh: Callable[[_Candidate | None], bool]) -> _Candidate | None:
        """A random architecture of the first population at its own place on the cost axis (``init="spread"``):
        of ``SPREAD_DRAWS`` fresh random ones, the one whose cost is nearest ``(k + 1/2) / population_size`` of
        the limit, k the architectures taken so far that did not fail (cheap first); the cost being the mean over
        the study's analytic cost objectives (MACs, FLOPs, params), each divided by its limit, or without one by
        the largest drawn. An architecture whose trials all failed takes the place it was drawn for (its recorded
        ``place``; else the one its cost falls in), and k moves to the free place nearest it (fewest failures,
        then nearest, then cheapest), so failures in one region of the space are not drawn for again and again.
        None without a cost objective (plain random draws then) or when no fresh one is drawn."""
        names = [n for n in (study.metric_names or []) if n in ANALYTIC]
        if not names:
            return None
        from nas.cost import cost

        def costs(spec: Any) -> list[float]:
            c = cost(spec).as_dict()
            return [float(c[name]) for name in names]

        drawn: list[tuple[_Candidate, list[float]]] = []
        for _ in range(SPREAD_TRIES):
            child = self._replay({}, rng)
            if fresh(child):
                assert child is not None
                drawn.append((child, costs(child.spec)))
                if len(drawn) >= SPREAD_DRAWS:
                    break
        if not drawn:
            return None
        scale = []
        for j, name in enumerate(names):
            limit = next((v for k, v in limits.items() if CONSTRAINTS.get(k) == name), None)
            scale.append(limit if limit else max(max(d[1][j] for d in drawn), 1e-12))

        def share(values: list[float]) -> float:
            return sum(v / s for v, s in zip(values, scale)) / len(names)

        n = self.population_size
        k = min(len(pop.taken) - len(pop.failed), n - 1)
        if pop.failed:  # a failed architecture's place is taken: the free place nearest the k-th, cheap first
            failures = [0] * n
            for plan in pop.failed.values():
                place = plan.get("place")
                if not isinstance(place, int):  # not drawn for a place: where its cost puts it
                    params = plan.get("params")
                    made = self._replay(params, random.Random(0)) if isinstance(params, dict) else None
                    if made is None:
                        continue
                    place = int(share(costs(made.spec)) * n)
                failures[min(max(place, 0), n - 1)] += 1
            k = min(range(n), key=lambda j: (failures[j], abs(j - k), j))
        target = (k + 0.5) / n
        child, _ = min(drawn, key=lambda d: abs(share(d[1]) - target))
        child.place = k
        return child

    def _exploit(self, members: list[_Member], study: optuna.Study, rng: random.Random,
                 fresh: Callable[[_Candidate | None], bool]) -> _Candidate | None:
        """A child of the most accurate member (completed and feasible; the earliest of equals) with one label
        changed: the first fresh one of ``TRIES`` mutations, None when they are all taken."""
        names = study.metric_names or []
        j = names.index("accuracy") if "accuracy" in names else 0
        sign = -1.0 if study.directions[j] == StudyDirection.MAXIMIZE else 1.0
        done = [m for m in members if m.feasible and not m.pruned]
        if not done:
            return None
        best = min(done, key=lambda m: (sign * m.values[j], m.trial.number))
        for _ in range(TRIES):
            child = self._mutate(best.trial, rng)
            if fresh(child):
                assert child is not None
                child.origin = "exploit"
                return child
        return None

    def _choose(self, children: list[_Candidate], members: list[_Member], study: optuna.Study) -> _Candidate:
        """The child predicted to advance the front most: analytic costs exactly (objectives named macs, flops,
        params), the others by a ridge regression on the labels of the evaluated trials; the advance is the
        margin by which the predicted point escapes domination by the current front (normalised objectives)."""
        if len(children) == 1:
            return children[0]
        done = [m for m in members if m.feasible and not m.pruned]
        if len(done) < 3:
            return children[0]
        directions = study.directions
        names: list[str | None] = list(study.metric_names) if study.metric_names else [None] * len(directions)
        sign = np.array([1.0 if d == StudyDirection.MINIMIZE else -1.0 for d in directions])
        known = np.array([m.values for m in done], dtype=float)
        if not np.all(np.isfinite(known)):
            return children[0]
        rows = [(m.trial.params, m.trial.distributions) for m in done] + [(c.params, c.distributions) for c in children]
        x = _encode(rows)
        predicted = np.empty((len(children), len(directions)))
        for j, name in enumerate(names):
            if name in ANALYTIC:
                from nas.cost import cost

                predicted[:, j] = [float(cost(c.spec).as_dict()[name]) for c in children]
            else:
                predicted[:, j] = _ridge(x[:len(done)], known[:, j], x[len(done):], self.ridge)
        points = known * sign
        front = points[fronts(points) == 0]
        low, span = points.min(axis=0), np.ptp(points, axis=0)
        span[span <= 0] = 1.0
        front = (front - low) / span
        guess = (predicted * sign - low) / span
        # margin: min over front points f of max_j (f_j - c_j); > 0 means no front point dominates the guess
        margin = np.min(np.max(front[None, :, :] - guess[:, None, :], axis=2), axis=1)
        return children[int(np.argmax(margin))]

    def _replay(self, given: dict[str, Any], rng: random.Random) -> _Candidate | None:
        memo = tuple(sorted((k, repr(v)) for k, v in given.items()))
        known = self._answers.get(memo)
        if known is not None:  # answered before without a random draw: the same child
            return _Candidate(dict(known.params), known.distributions, known.key, known.spec)
        replay = _replay(given, rng)
        try:
            spec = self.space.sample(replay)
        except ValueError:  # an invalid combination: not a candidate
            return None
        child = _Candidate(replay.params, _optuna(replay), spec.key(), spec)
        if not replay.filled and len(self._answers) < MEMO:
            self._answers[memo] = _Candidate(dict(child.params), child.distributions, child.key, spec)
        return child

    def _mutate(self, parent: FrozenTrial, rng: random.Random) -> _Candidate | None:
        labels = [n for n, d in parent.distributions.items() if _active(d)]
        if not labels:
            return None
        label = rng.choice(sorted(labels))
        value = _other(parent.distributions[label], parent.params[label], rng)
        if value is None:
            return None
        return self._child(parent, label, value, rng, "mutation")

    def _child(self, parent: FrozenTrial, label: str, value: Any, rng: random.Random, origin: str) -> _Candidate | None:
        child = self._replay({**parent.params, label: value}, rng)
        if child is not None:
            child.origin, child.parent, child.label = origin, parent.number, label
        return child

    def _neighbours(self, parent: FrozenTrial, rng: random.Random) -> Any:
        labels = sorted(n for n, d in parent.distributions.items() if _active(d))
        rng.shuffle(labels)
        for label in labels:
            for value in _neighbour_values(parent.distributions[label], parent.params[label], rng):
                child = self._child(parent, label, value, rng, "neighbour")
                if child is not None:
                    yield child

    # -- constraints
    def _constraints(self, study: optuna.Study) -> dict[str, float]:
        if study._study_id not in self._limits:
            source = self._constraints_source
            limits = source(study) if callable(source) else dict(source or {})
            self._limits[study._study_id] = {k: float(v) for k, v in (limits or {}).items()
                                             if CONSTRAINTS.get(k) in ANALYTIC}
        return self._limits[study._study_id]

    def _fits(self, candidate: _Candidate, limits: dict[str, float]) -> bool:
        if not limits:
            return True
        from nas.cost import cost

        try:
            c = cost(candidate.spec).as_dict()
        except ValueError:
            return False
        return all(c[CONSTRAINTS[name]] <= limit for name, limit in limits.items())

    # -- the population, from the study's trials
    def _key(self, trial: FrozenTrial) -> str | None:
        """The spec key of a trial: recorded by nas, planned by this sampler, or replayed from its params (an
        enqueued trial's fixed ones included)."""
        key = records.attr(trial, "spec_key")
        if isinstance(key, str):
            return key
        finished = trial.state.is_finished()
        if finished and trial._trial_id in self._keys:
            return self._keys[trial._trial_id]
        plan, fixed = trial.system_attrs.get(ATTR), trial.system_attrs.get(FIXED)
        if isinstance(plan, dict) and plan.get("key") and fixed is None:
            key = str(plan["key"])
        else:
            params = {**(fixed or {}), **trial.params}
            key = self._params_key(params) if params else None
        if finished:
            self._keys[trial._trial_id] = key
        return key

    def _params_key(self, params: dict[str, Any]) -> str | None:
        """The key of the spec ``params`` give, if they answer every label the space asks (None otherwise)."""
        memo = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if memo not in self._replays:
            replay = _replay(params, random.Random(0))
            try:
                key: str | None = self.space.sample(replay).key()
            except ValueError:
                key = None
            self._replays[memo] = None if replay.filled else key
        return self._replays[memo]

    def _population(self, study: optuna.Study, current: FrozenTrial) -> _Population:
        pop = _Population()
        names = study.metric_names
        best: dict[str, _Member] = {}
        for t in study.get_trials(deepcopy=False):
            if t.number == current.number:
                continue
            key = self._key(t)
            if key is None:
                continue
            if t.state == TrialState.FAIL:
                if key not in pop.taken:
                    plan = t.system_attrs.get(ATTR)
                    pop.failed[key] = dict(plan) if isinstance(plan, dict) else {
                        "params": {**(t.system_attrs.get(FIXED) or {}), **t.params}}
            else:
                pop.failed.pop(key, None)
            pop.taken.add(key)
            member = self._member(t, study.directions, names)
            if member is None:
                continue
            held = best.get(key)
            # one member per architecture: its first completed trial (a pruned one only until one completes)
            if held is None or (held.pruned and not member.pruned):
                best[key] = member
        pop.members = list(best.values())
        return pop

    def _member(self, t: FrozenTrial, directions: Sequence[StudyDirection],
                names: list[str] | None) -> _Member | None:
        constraints = t.constraints
        violation = sum(max(0.0, float(v)) for v in constraints.values())
        infeasible = violation > 0 or t.user_attrs.get("status") == "infeasible"
        if t.state == TrialState.COMPLETE and t.values is not None:
            values = tuple(float(v) for v in t.values)
            pruned = False
        elif t.state == TrialState.PRUNED and names is not None:
            values = tuple(self._pruned_value(t, name, d) for name, d in zip(names, directions))
            pruned = True
        else:
            return None
        if any(math.isnan(v) for v in values):
            return None
        return _Member(t, values, not infeasible, violation if violation > 0 else float(infeasible), pruned)

    @staticmethod
    def _pruned_value(t: FrozenTrial, name: str, direction: StudyDirection) -> float:
        """A stopped trial's objective: its last measured accuracy, its exact cost (worst if unknown)."""
        worst = -math.inf if direction == StudyDirection.MAXIMIZE else math.inf
        a = records.attrs_of(t)
        if name == "accuracy":
            history = a.get("history") or []
            value = a.get("accuracy", history[-1] if history else None)
            if value is None and t.intermediate_values:
                value = t.intermediate_values[max(t.intermediate_values)]
        else:
            value = a.get("latency_ms" if name == "latency" else name)
        try:
            return float(value) if value is not None else worst
        except (TypeError, ValueError):
            return worst
