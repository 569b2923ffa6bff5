"""The ``nas`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nas.cost import cost, summary
from nas.spec import ArchSpec


def _load_spec(ref: str, *, input_shape: str | None, num_classes: int | None) -> ArchSpec:
    import search_spaces

    shape = tuple(int(d) for d in input_shape.split("x")) if input_shape else None
    if ref in search_spaces.baselines():
        return search_spaces.baseline(ref, input_shape=shape, num_classes=num_classes or 1000)  # type: ignore[arg-type]
    path = Path(ref)
    if path.exists():
        spec = ArchSpec.from_json(path.read_text())
        return spec if shape is None else spec.replace(input_shape=shape)
    raise SystemExit(f"nas: `spec` must be a baseline name ({', '.join(search_spaces.baselines())}) "
                     f"or a spec JSON file, but got spec={ref!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nas", description="Neural architecture search in Keras 3.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="per-layer MACs and params of a baseline or a spec JSON file")
    p.add_argument("spec")
    p.add_argument("--input-shape", help="HxWxC, e.g. 32x32x3")
    p.add_argument("--classes", type=int)
    p.add_argument("--all-layers", action="store_true")
    p.add_argument("--json", action="store_true", help="print totals as JSON")
    sub.add_parser("baselines", help="list the classic networks and their cost")
    args = parser.parse_args(argv)

    if args.command == "summary":
        try:
            spec = _load_spec(args.spec, input_shape=args.input_shape, num_classes=args.classes)
        except ValueError as exc:
            print(f"nas: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps({**cost(spec).as_dict(), "key": spec.key()}))
        else:
            summary(spec, all_layers=args.all_layers)
    elif args.command == "baselines":
        import search_spaces

        print(f"{'name':<18} {'input':>11} {'MACs':>16} {'params':>13}")
        for name in search_spaces.baselines():
            spec = search_spaces.baseline(name)
            c = cost(spec)
            print(f"{name:<18} {'x'.join(map(str, spec.input_shape)):>11} {c.macs:>16,} {c.params:>13,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
