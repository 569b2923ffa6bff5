"""What zero-cost proxies would add to the evolution sampler's predictor: measured on the 266 real training curves.

Zero-cost proxies score an untrained network from one batch: ``grad_norm`` (the sum of the gradients' norms) and
``snip`` (sum of |weight x gradient|, Lee et al. 2019) of the cross-entropy loss; ``synflow`` (Tanaka et al. 2020:
weights made positive, an all-ones input, float64, batch norm as identity, sum of |weight x gradient| of the summed
logits); ``jacob_cov`` (Mellor et al. 2021: the correlations between the examples' input Jacobians; higher when the
network tells the images apart). Abdelfattah et al. (2021, "Zero-Cost Proxies for Lightweight NAS") report rank
correlations with final accuracy of 0.73-0.76 for synflow and jacob_cov on NAS-Bench-201 (0.82 for a vote of three)
against 0.73 for the parameter count on CIFAR-100; as extra predictor inputs they improved predictions by 20-42%
(White et al. 2021, "How powerful are performance predictors in NAS?"). This measures them on the architectures of
``benchmarks/data/curves-fashion.json`` (266 networks of the ``mbconv`` and ``families`` spaces trained 12 epochs on
Fashion-MNIST 2,000/1,000 by make_curves.py), at initialisation (training seed of the table), on one batch of
``--batch`` training images:

1. Spearman's rank correlation of each proxy, of the parameter count and of MACs with the final validation accuracy
   (epoch 12), per space and over both, with a 95% bootstrap interval; ``vote`` is the mean rank of synflow,
   jacob_cov and snip (a stand-in for the paper's pairwise majority vote).
2. What each adds over params and MACs: a ridge regression (standardised features, penalty 1) of the final accuracy
   on log params and log MACs, with and without the proxy, fitted on ``n`` random networks and scored by the rank
   correlation of its predictions on the others; ``--splits`` random splits per ``n``; the median gain, the share of
   splits it helps, and a two-sided Wilcoxon signed-rank test.
3. The same for the sampler's own model (:func:`nas.engine.evolution._encode` of the architecture's labels, the
   sampler's ridge penalty), per space, with the standardised proxy as one more column: the regime the proxy would
   join, where a search has 5-40 finished trials.

Also the seconds each proxy costs per network (building included), against the seconds a network trained in the
table. Run: `.venv/bin/python benchmarks/bench_proxies.py [--quick]` (needs the Debian package
`dataset-fashion-mnist`; about 10 minutes on one core).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

HERE = Path(__file__).resolve().parent
TABLE = HERE / "data" / "curves-fashion.json"
PROXIES = ("grad_norm", "snip", "synflow", "jacob_cov")
LOGGED = {"grad_norm", "snip", "synflow", "params", "macs"}  # strictly positive, spread over decades


def proxy_scores(spec_dict: dict, x, y, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """The four proxies of one untrained network, and the seconds each took (its building included)."""
    import keras
    import numpy as np
    import tensorflow as tf

    import nas
    from nas.build import build_model

    spec = nas.ArchSpec.from_dict(spec_dict)
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}

    def logits_model(dtype: str) -> keras.Model:
        keras.config.set_dtype_policy(dtype)
        try:
            keras.utils.set_random_seed(seed)
            model = build_model(spec)
        finally:
            keras.config.set_dtype_policy("float32")
        model.layers[-1].activation = keras.activations.linear  # the logits, not the softmax
        return model

    t = time.perf_counter()
    model = logits_model("float32")
    build_s = time.perf_counter() - t
    xs, ys = tf.constant(x), tf.constant(y)
    t = time.perf_counter()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(ys, model(xs, training=True),
                                                                          from_logits=True))
    grads = tape.gradient(loss, model.trainable_weights)
    pairs = [(w, g) for w, g in zip(model.trainable_weights, grads, strict=True) if g is not None]
    scores["grad_norm"] = float(sum(tf.norm(g) for _, g in pairs))
    scores["snip"] = float(sum(tf.reduce_sum(tf.abs(g * w)) for w, g in pairs))
    seconds["grad_norm"] = seconds["snip"] = build_s + time.perf_counter() - t

    t = time.perf_counter()
    xin = tf.Variable(xs)
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(model(xin, training=False), axis=1)
    jac = tape.gradient(out, xin).numpy().reshape(len(x), -1)
    corr = np.corrcoef(jac)
    corr = np.nan_to_num(corr, nan=0.0)
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    scores["jacob_cov"] = float(-np.sum(np.log(np.abs(v) + k) + 1.0 / (np.abs(v) + k)))
    seconds["jacob_cov"] = build_s + time.perf_counter() - t

    t = time.perf_counter()
    model64 = logits_model("float64")
    for w in model64.trainable_weights:
        w.assign(tf.abs(w))
    ones = tf.ones((1, *spec.input_shape), dtype="float64")
    with tf.GradientTape() as tape:
        r = tf.reduce_sum(model64(ones, training=False))  # batch norm: moving statistics, an identity at init
    g64 = tape.gradient(r, model64.trainable_weights)
    # (the predictions layer stays float32: nas.build keeps it so under any other policy; its inputs are cast)
    scores["synflow"] = sum(float(tf.reduce_sum(tf.abs(g * w))) for w, g in zip(model64.trainable_weights, g64,
                                                                                 strict=True) if g is not None)
    seconds["synflow"] = time.perf_counter() - t
    return scores, seconds


def ranks(v):
    import numpy as np
    from scipy.stats import rankdata

    return rankdata(np.asarray(v, dtype=float))


def spearman_ci(a, b, rng, boots: int = 1000) -> tuple[float, float, float]:
    import numpy as np
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    rho = float(spearmanr(a, b).statistic)
    n = len(a)
    bs = []
    for _ in range(boots):
        i = rng.integers(0, n, n)
        bs.append(spearmanr(a[i], b[i]).statistic)
    lo, hi = np.nanpercentile(bs, [2.5, 97.5])
    return rho, float(lo), float(hi)


def feature(rows: list[dict], name: str):
    import numpy as np

    v = np.array([r[name] for r in rows], dtype=float)
    return np.log(np.maximum(v, 1e-300)) if name in LOGGED else v


def split_gains(base, extra, y, n: int, splits: int, rng, penalty: float) -> dict[str, float]:
    """Held-out rank correlation of ridge predictions with ``base`` features and with ``base`` + ``extra``."""
    import numpy as np
    from scipy.stats import spearmanr, wilcoxon

    from nas.engine.evolution import _ridge

    with_, without = [], []
    for _ in range(splits):
        idx = rng.permutation(len(y))
        tr, te = idx[:n], idx[n:]
        both = np.column_stack([base, extra])
        # the extra column standardised on the training networks only (a search knows only those)
        mu, sd = both[tr].mean(axis=0), both[tr].std(axis=0)
        bz = (both - mu) / np.where(sd > 0, sd, 1.0)
        k = base.shape[1]
        p0 = _ridge(bz[tr, :k], y[tr], bz[te, :k], penalty)
        p1 = _ridge(bz[tr], y[tr], bz[te], penalty)
        without.append(spearmanr(p0, y[te]).statistic if np.std(p0) > 0 else 0.0)
        with_.append(spearmanr(p1, y[te]).statistic if np.std(p1) > 0 else 0.0)
    w, wo = np.array(with_), np.array(without)
    d = w - wo
    p = float(wilcoxon(w, wo).pvalue) if np.any(d != 0) else 1.0
    return {"without": float(np.median(wo)), "with": float(np.median(w)), "gain": float(np.median(d)),
            "helps": float(np.mean(d > 0)), "p": p}


def labels_of(table: dict, row: dict):
    """The architecture's labels and distributions, replayed from its draw (make_curves.py's sampling)."""
    import nas
    import search_spaces
    from nas.engine.distributions import to_optuna

    space = search_spaces.from_config({"name": row["space"], "options": table["spaces"][row["space"]]["options"]})
    trial = nas.RandomTrial(table["seed"] * 1_000_003 + row["draw"])
    spec = space.sample(trial)
    if spec.key() != row["key"]:
        raise SystemExit(f"draw {row['draw']} replays to {spec.key()}, not the table's {row['key']}")
    return trial.params, {k: to_optuna(d) for k, d in trial.distributions.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 networks, 100 splits, 200 bootstrap resamples")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--splits", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):  # one core, before TensorFlow starts its threads
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from nas.data import load_data
    from nas.engine.evolution import ParetoEvolutionSampler, _encode

    table = json.loads(TABLE.read_text())
    archs = table["architectures"]
    splits, boots = args.splits, 1000
    if args.quick:
        archs, splits, boots = archs[:40], 100, 200
    data = load_data("fashion_mnist", train_samples=table["data"]["train_samples"],
                     val_samples=table["data"]["val_samples"])
    pick = np.random.default_rng(args.seed).choice(len(data.x_train), args.batch, replace=False)
    x, y = data.x_train[pick], data.y_train[pick]
    rows = []
    t0 = time.perf_counter()
    for i, a in enumerate(archs):
        scores, secs = proxy_scores(a["spec"], x, y, seed=table["seed"] + a["draw"])
        rows.append({"space": a["space"], "params": a["params"], "macs": a["macs"], "acc": a["val_accuracy"][-1],
                     "train_s": a["wall_seconds"], **scores, **{f"{k}_s": v for k, v in secs.items()},
                     "labels": labels_of(table, a)})
        if (i + 1) % 20 == 0 or i + 1 == len(archs):
            print(f"  {i + 1}/{len(archs)} networks scored ({time.perf_counter() - t0:.0f} s)", flush=True)
    vote = (ranks([r["synflow"] for r in rows]) + ranks([r["jacob_cov"] for r in rows])
            + ranks([r["snip"] for r in rows])) / 3
    for r, v in zip(rows, vote, strict=True):
        r["vote"] = float(v)
    names = ("params", "macs", *PROXIES, "vote")
    rng = np.random.default_rng(args.seed)

    print(f"\n# {len(rows)} networks of benchmarks/data/curves-fashion.json (Fashion-MNIST "
          f"{table['data']['train_samples']}/{table['data']['val_samples']}, 12 epochs); proxies on one batch of "
          f"{args.batch} training images at initialisation; one core")
    print("\nRank correlation (Spearman) with the final validation accuracy, [95% bootstrap interval]:")
    groups = [("both spaces", rows)] + [(s, [r for r in rows if r["space"] == s]) for s in ("families", "mbconv")]
    print("| score | " + " | ".join(f"{g} ({len(rs)})" for g, rs in groups) + " |")
    print("| --- |" + " ---: |" * len(groups))
    for name in names:
        cells = []
        for _, rs in groups:
            rho, lo, hi = spearman_ci([r[name] for r in rs], [r["acc"] for r in rs], rng, boots)
            cells.append(f"{rho:+.2f} [{lo:+.2f}, {hi:+.2f}]")
        print(f"| {name} | " + " | ".join(cells) + " |")

    print("\nSeconds per network (median; building the network included): "
          + ", ".join(f"{p} {statistics.median(r[p + '_s'] for r in rows):.2f}" for p in PROXIES)
          + f"; training a network in the table: {statistics.median(r['train_s'] for r in rows):.1f}")

    y_all = np.array([r["acc"] for r in rows])
    base = np.column_stack([feature(rows, "params"), feature(rows, "macs")])
    print("\nWhat a proxy adds over log params and log MACs (ridge, penalty 1, fitted on n networks, rank correlation "
          f"of its predictions on the rest; {splits} random splits; median without -> with, median gain, share of "
          "splits it helps, Wilcoxon p):")
    print("| proxy | " + " | ".join(f"n = {n}" for n in (10, 20, 40, 100)) + " |")
    print("| --- |" + " --- |" * 4)
    for p in (*PROXIES, "vote"):
        cells = []
        for n in (10, 20, 40, 100):
            if n > len(rows) - 10:
                cells.append("-")
                continue
            g = split_gains(base, feature(rows, p)[:, None], y_all, n, splits, rng, 1.0)
            cells.append(f"{g['without']:.3f} -> {g['with']:.3f} ({g['gain']:+.3f}, {g['helps']:.0%}, p {g['p']:.1g})")
        print(f"| {p} | " + " | ".join(cells) + " |")

    penalty = ParetoEvolutionSampler.ridge
    print(f"\nWhat a proxy adds to the sampler's own model (its labels one-hot, ridge penalty {penalty}), per space, "
          "same splits and figures:")
    print("| space | proxy | " + " | ".join(f"n = {n}" for n in (5, 10, 20, 40)) + " |")
    print("| --- | --- |" + " --- |" * 4)
    for s in ("families", "mbconv"):
        rs = [r for r in rows if r["space"] == s]
        if len(rs) < 20:
            continue
        labels = _encode([r["labels"] for r in rs])
        ys = np.array([r["acc"] for r in rs])
        for p in ("params", *PROXIES, "vote"):
            cells = []
            for n in (5, 10, 20, 40):
                if n > len(rs) - 10:
                    cells.append("-")
                    continue
                g = split_gains(labels, feature(rs, p)[:, None], ys, n, splits, rng, penalty)
                cells.append(f"{g['without']:.3f} -> {g['with']:.3f} ({g['gain']:+.3f}, {g['helps']:.0%}, "
                             f"p {g['p']:.1g})")
            print(f"| {s} | {p} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
