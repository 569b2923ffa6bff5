"""benchmarks/run.py --update: one benchmark's section and summary row replaced, every other line kept."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import run  # noqa: E402


def test_splice_replaces_and_appends_sections_and_rows() -> None:
    existing = ("# Benchmarks\n\n## Summary\n\n| benchmark | result |\n| --- | --- |\n| [cost](#cost) | ok |\n"
                "| [ray](#ray) | ok |\n\n## cost\n\nold cost\n\n## ray\n\nold ray\n")
    fresh = ("# Benchmarks\n\n## Summary\n\n| [ray](#ray) | failed |\n| [chaos](#chaos) | ok |\n\n## ray\n\nnew ray\n\n"
             "## chaos\n\nchaos body\n")
    out = run.splice(existing, fresh, ["ray", "chaos"], "*updated*")
    assert out == ("# Benchmarks\n\n## Summary\n\n| benchmark | result |\n| --- | --- |\n| [cost](#cost) | ok |\n"
                   "| [ray](#ray) | failed |\n| [chaos](#chaos) | ok |\n\n## cost\n\nold cost\n\n"
                   "## ray\n\n*updated*\n\nnew ray\n\n## chaos\n\n*updated*\n\nchaos body\n")
    assert run.splice(out, fresh, ["chaos"], "*again*").count("## chaos") == 1


def _run(arm: str, seed: int, hv: float, **settings: object) -> dict:
    return {"arm": arm, "seed": seed, "hv": hv, "settings": {"trials": 15, "epochs": 9, **settings}}


def test_plain_tpe_pools_results_files_of_different_seeds(tmp_path: Path) -> None:
    import argparse
    import json

    import bench_plain_tpe as bench

    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps([_run("pareto", 0, 0.5), _run("tpe", 0, 0.4), _run("evolution", 0, 0.6)]))
    second.write_text(json.dumps([_run("evolution", 4, 0.7), _run("tpe", 4, 0.3), _run("pareto", 4, 0.2)]))
    args = argparse.Namespace(trials=4, epochs=3)
    results, seeds, arms = bench.pooled([str(first), str(second)], args)
    assert seeds == [0, 4] and arms == ["tpe", "evolution", "pareto"]
    assert results[("evolution", 4)]["hv"] == 0.7 and (args.trials, args.epochs) == (15, 9)

    def refused(files: list[Path]) -> str:
        try:
            bench.pooled([str(f) for f in files], argparse.Namespace())
        except SystemExit as exc:
            return str(exc)
        raise AssertionError("pooled these")

    assert refused([first, first]) == f"--from-results: {first}: arm pareto seed 0 is in an earlier file too"
    other = tmp_path / "c.json"
    other.write_text(json.dumps([_run("evolution", 5, 0.7, epochs=27)]))
    assert refused([first, other]) == (f"--from-results: {other}: epochs 27 where an earlier run had 9: runs of "
                                       f"different settings do not pool")
    other.write_text(json.dumps([_run("evolution", 5, 0.7)]))
    assert refused([first, other]) == ("--from-results: no run of tpe seed 5, pareto seed 5: every arm must have run "
                                       "every seed")


def test_plain_tpe_pairs_differences_over_seeds() -> None:
    import bench_plain_tpe as bench

    # 8 positive differences: the smallest two-sided signed-rank p-value of 8 pairs, 2 / 2**8
    assert bench.paired([0.01 * k for k in range(1, 9)]) == (
        "median +0.0450, above 0 on 8 of 8, Wilcoxon signed-rank p = 0.008")
    assert bench.paired([0.02]) == "median +0.0200, above 0 on 1 of 1, Wilcoxon signed-rank p = -"
    assert bench.paired([0.0, 0.0]) == "median +0.0000, above 0 on 0 of 2, Wilcoxon signed-rank p = -"
