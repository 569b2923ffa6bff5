"""``ArchSpec``: an architecture as frozen plain data.

An ``ArchSpec`` is the whole network: input shape, a stem of plain convolutions, stages (each a block kind
with its options and a repeat count), a head, the number of classes and the batch-norm settings.  It
validates itself on construction (including the feature-map size through every layer), round-trips through
JSON exactly, and ``key()`` hashes its canonical JSON to name and deduplicate candidates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, cast

from nas._ops import ACTIVATIONS, ShapeError, ShapeOps
from nas.blocks import KINDS, Block, Conv, block_from_dict, parse_block
from nas.blocks._base import (
    check_activation,
    check_bool,
    check_channels,
    check_choice,
    check_float,
    check_int,
    fail,
    fmt_float,
)

FORMAT = "nas.ArchSpec/1"
_MAX_INT = 2 ** 63  # JSON numbers beyond 64 bits are refused (no layer has that many of anything)


def _as_float(field: str, value: int) -> float:
    if abs(value) >= _MAX_INT:
        raise fail(field, "a number", value)
    return float(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _check_json_numbers(value: Any, field: str) -> None:
    """Integers past 64 bits in a field are refused, naming the field (later checks would fail on them
    converting to float, with an OverflowError that names nothing). Only the objects a spec has (a block, the
    head) are looked into: any other object is refused by the field's own check."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_INT:
        raise ValueError(f"`{field}` must be a number below 2**63, but got {field}={_short(value)}")
    if isinstance(value, dict) and field in ("", "head"):
        for k, v in value.items():
            _check_json_numbers(v, f"{field}.{k}" if field else str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_json_numbers(v, field)


def _check_block_dict(item: dict[str, Any]) -> None:
    """A block's ``kind`` must be a name, and options of a single value (all but lists such as nb201cell
    ``ops``) must not be lists or objects: the block's own checks would fail on them with a TypeError that names
    no field."""
    kind = item.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise fail("kind", "one of " + ", ".join(KINDS), kind)
    names = {f.name for f in dataclasses.fields(KINDS[kind])}
    unknown = sorted((k for k in item if k not in names and k != "kind"), key=str)
    if unknown:  # as Block.from_dict says it, before a missing option is reported
        raise ValueError(f"unknown option {unknown[0]!r} for block kind {kind!r}; known options: "
                         f"{', '.join(sorted(names))}")
    for f in dataclasses.fields(KINDS[kind]):
        value = item.get(f.name)
        if isinstance(value, (list, dict)) and "tuple" not in str(f.type):
            raise fail(f.name, f"a single value ({f.type})", value)
        if f.name not in item and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"block kind {kind!r} needs `{f.name}`")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"ArchSpec JSON must not repeat a key, but {k!r} appears twice in one object "
                             f"({_short(out[k])} and {_short(v)})")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"ArchSpec JSON must be standard JSON, but it holds {name}, which is not a JSON number")


@dataclass(frozen=True, kw_only=True)
class Head:
    """Classifier head: [1x1 conv (no bias) -> BN -> act] -> pool -> [dense -> act -> dropout]* -> dense(classes,
    softmax).

    ``pool`` is ``"avg"`` or ``"max"`` (global pooling) or ``"flatten"``. ``dropout`` is applied after every
    hidden dense layer, or, when there is none, before the classifier. ``bn`` puts BN -> act before the pool
    without a 1x1 conv: the closing BN-ReLU of pre-activation networks (NAS-Bench-201's ``lastact``); the 1x1
    conv has its own BN, so with ``conv`` > 0 ``bn`` is reset to False. String form:
    ``head_c1280_avg_h4096-4096_d0.2`` (``c``: the 1x1 conv, ``bn``, ``h``: hidden dense widths, ``d``: dropout,
    ``a<activation>``).
    """

    conv: int = 0
    pool: str = "avg"
    hidden: tuple[int, ...] = ()
    dropout: float = 0.0
    activation: str = "relu"
    bn: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        if isinstance(self.dropout, int) and not isinstance(self.dropout, bool):
            object.__setattr__(self, "dropout", _as_float("head.dropout", self.dropout))
        check_channels("head.conv", self.conv, low=0)
        check_choice("head.pool", self.pool, ("avg", "max", "flatten"))
        if not isinstance(self.hidden, tuple):
            raise fail("head.hidden", "a list of positive integers", self.hidden)
        for units in self.hidden:
            check_channels("head.hidden", units)
        check_float("head.dropout", self.dropout, low=0.0, high=1.0)
        if not isinstance(self.activation, str):
            raise fail("head.activation", "one of " + ", ".join(ACTIVATIONS), self.activation)
        check_activation("head.activation", self.activation)
        check_bool("head.bn", self.bn)
        if self.conv:
            object.__setattr__(self, "bn", False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"conv": self.conv, "pool": self.pool, "hidden": list(self.hidden),
                               "dropout": self.dropout, "activation": self.activation}
        if self.bn:  # only when set: the canonical JSON (and key()) of every head without it is unchanged
            out["bn"] = True
        return out

    def __str__(self) -> str:
        parts = ["head"]
        if self.conv:
            parts.append(f"c{self.conv}")
        if self.bn:
            parts.append("bn")
        parts.append(self.pool)
        if self.hidden:
            parts.append("h" + "-".join(map(str, self.hidden)))
        if self.dropout:
            parts.append(f"d{fmt_float(self.dropout)}")
        if self.activation != "relu":
            parts.append(f"a{self.activation}")
        return "_".join(parts)


def _stage_error(where: str, exc: Exception) -> ValueError:
    return ValueError(f"{exc} ({where})")


@dataclass(frozen=True, kw_only=True)
class ArchSpec:
    """A convolutional network as data. See the module docstring."""

    input_shape: tuple[int, int, int]
    num_classes: int
    stages: tuple[Block, ...]
    stem: tuple[Conv, ...] = ()
    head: Head = field(default_factory=Head)
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("input_shape", "stages", "stem"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        shape = self.input_shape
        if (not isinstance(shape, tuple) or len(shape) != 3
                or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)):
            raise fail("input_shape", "(height, width, channels) of positive integers", shape)
        check_int("num_classes", self.num_classes, low=2)
        if not isinstance(self.stages, tuple):
            raise fail("stages", "a list of blocks", self.stages)
        for i, layer in enumerate(self.stem):
            if not isinstance(layer, Conv):
                raise ValueError(f"stem layers must be plain `conv` blocks, but got {layer!r} (stem {i + 1})")
        for i, block in enumerate(self.stages):
            if not isinstance(block, Block):
                raise ValueError(f"stages must be blocks, but got {block!r} (stage {i + 1})")
        if not isinstance(self.head, Head):
            raise fail("head", "a Head", self.head)
        for name in ("bn_momentum", "bn_epsilon"):
            if isinstance(getattr(self, name), int) and not isinstance(getattr(self, name), bool):
                object.__setattr__(self, name, _as_float(name, getattr(self, name)))
        check_float("bn_momentum", self.bn_momentum, low=0.0, high=1.0)
        check_float("bn_epsilon", self.bn_epsilon, low=1e-12, high=1.0)
        # walk the shapes once: a feature map shrinking below one pixel is reported with its stage and block
        ops = ShapeOps()
        trace(self, ops)
        object.__setattr__(self, "_rows", tuple(ops.rows))  # reused by nas.cost

    # ------------------------------------------------------------------ structure
    def blocks(self) -> list[tuple[str, str, Block]]:
        """(prefix, where, block) for every stem layer and stage, in order."""
        out: list[tuple[str, str, Block]] = [(f"stem{i + 1}", f"stem {i + 1}", b) for i, b in enumerate(self.stem)]
        out += [(f"s{i + 1}", f"stage {i + 1}", b) for i, b in enumerate(self.stages)]
        return out

    # ------------------------------------------------------------------ data
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "stem": [b.to_dict() for b in self.stem],
            "stages": [b.to_dict() for b in self.stages],
            "head": self.head.to_dict(),
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
        }

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent,
                          separators=(",", ":") if indent is None else (",", ": "))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        if not isinstance(data, dict):
            raise ValueError(f"an ArchSpec must be a JSON object, but got {type(data).__name__}"
                             + (f" {_short(data)}" if isinstance(data, (str, int, float, list)) else ""))
        data = dict(data)
        fmt = data.pop("format", FORMAT)
        if fmt != FORMAT:
            raise fail("format", repr(FORMAT), fmt)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted((k for k in data if k not in known), key=str)
        if unknown:
            raise ValueError(f"unknown ArchSpec field {unknown[0]!r}; known fields: {', '.join(sorted(known))}")

        def blocks(key: str, where: str) -> tuple[Block, ...]:
            items = data.get(key, [])
            if not isinstance(items, list):
                raise fail(key, "a list of blocks", items)
            out = []
            for i, item in enumerate(items):
                try:
                    if isinstance(item, dict):
                        _check_block_dict(item)
                    _check_json_numbers(item, "" if isinstance(item, dict) else where)
                    out.append(parse_block(item) if isinstance(item, str) else block_from_dict(item))
                except ValueError as exc:
                    raise _stage_error(f"{where} {i + 1}", exc) from None
                except (TypeError, OverflowError) as exc:
                    raise _stage_error(f"{where} {i + 1}", ValueError(str(exc))) from None
            return tuple(out)

        head = data.get("head", {})
        if not isinstance(head, dict):
            raise fail("head", "an object", head)
        head_fields = {f.name for f in dataclasses.fields(Head)}
        bad = sorted((k for k in head if k not in head_fields), key=str)
        if bad:
            raise ValueError(f"unknown field {bad[0]!r} in `head`; known fields: {', '.join(sorted(head_fields))}")
        for f in dataclasses.fields(Head):
            if isinstance(head.get(f.name), (list, dict)) and "tuple" not in str(f.type):
                raise fail(f"head.{f.name}", f"a single value ({f.type})", head[f.name])
        for key in ("input_shape", "num_classes", "head", "bn_momentum", "bn_epsilon"):
            _check_json_numbers(data.get(key), key)
        head_obj = Head(**head)
        kwargs = {k: v for k, v in data.items() if k not in ("stem", "stages", "head")}
        if "input_shape" in kwargs and isinstance(kwargs["input_shape"], list):
            kwargs["input_shape"] = tuple(kwargs["input_shape"])
        for required in ("input_shape", "num_classes"):
            if required not in kwargs:
                raise ValueError(f"ArchSpec needs `{required}`")
        stem = cast("tuple[Conv, ...]", blocks("stem", "stem"))  # __post_init__ refuses a block that is not a conv
        return cls(stem=stem, stages=blocks("stages", "stage"), head=head_obj, **kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> ArchSpec:
        """The spec a JSON text (str, or bytes in UTF-8/16/32) describes; anything else raises ValueError."""
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode(json.detect_encoding(bytes(text)))
            except UnicodeDecodeError as exc:
                raise ValueError(f"ArchSpec JSON must be text (UTF-8), but got bytes that do not decode: "
                                 f"{exc.reason} at byte {exc.start}") from None
        if not isinstance(text, str):
            hint = " (use ArchSpec.from_dict for a dict)" if isinstance(text, dict) else ""
            raise ValueError(f"ArchSpec JSON must be a str or bytes, but got {type(text).__name__}{hint}")
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
        except json.JSONDecodeError as exc:
            raise ValueError(f"ArchSpec JSON is not valid JSON: {exc}") from None
        except RecursionError:
            raise ValueError("ArchSpec JSON is nested too deeply to be a spec") from None
        return cls.from_dict(data)

    def key(self) -> str:
        """A stable 16-hex-digit hash (SHA-256) of the canonical JSON: equal specs, equal keys."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def __str__(self) -> str:
        h, w, c = self.input_shape
        parts = [f"{h}x{w}x{c}"] + [str(b) for b in self.stem] + [str(b) for b in self.stages]
        return " ".join(parts + [str(self.head), f"classes{self.num_classes}"])

    def replace(self, **changes: Any) -> ArchSpec:
        return dataclasses.replace(self, **changes)


def trace(spec: ArchSpec, ops: Any) -> Any:
    """Run the whole network description on ``ops`` (shapes for cost, Keras tensors for build)."""
    x = ops.input(spec.input_shape) if hasattr(ops, "input") else spec.input_shape
    channels = spec.input_shape[2]
    for prefix, where, block in spec.blocks():
        try:
            x, channels = block.apply(ops, x, prefix, channels)
        except ShapeError as exc:
            raise ShapeError(f"{exc} ({where}: {block})") from None
    head = spec.head
    if head.conv:
        x = ops.conv(x, "head_conv", filters=head.conv, kernel=1)
        x = ops.bn(x, "head_bn")
        x = ops.act(x, "head_act", head.activation)
    elif head.bn:
        x = ops.bn(x, "head_bn")
        x = ops.act(x, "head_act", head.activation)
    if head.pool == "flatten":
        x = ops.flatten(x, "head_flatten")
    else:
        x = ops.global_pool(x, "head_pool", kind=head.pool)
    for i, units in enumerate(head.hidden):
        x = ops.dense(x, f"head_fc{i + 1}", units=units, activation=head.activation)
        if head.dropout:
            x = ops.dropout(x, f"head_fc{i + 1}_dropout", rate=head.dropout)
    if head.dropout and not head.hidden:
        x = ops.dropout(x, "head_dropout", rate=head.dropout)
    return ops.dense(x, "predictions", units=spec.num_classes, activation="softmax")


__all__ = ["ArchSpec", "Head", "parse_block", "trace"]
