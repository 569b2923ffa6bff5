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
