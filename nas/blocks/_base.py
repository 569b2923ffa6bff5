"""What every block kind shares: validation helpers, the string-token codec and stage walking."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from nas._ops import ACTIVATIONS, Ops

# ---------------------------------------------------------------- validation

def fail(field: str, rule: str, value: Any) -> ValueError:
    return ValueError(f"`{field}` must be {rule}, but got {field}={value!r}")


def check_int(field: str, value: Any, *, low: int | None = None, high: int | None = None,
              choices: Iterable[int] | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(field, "an integer", value)
    if choices is not None:
        options = tuple(choices)
        if value not in options:
            raise fail(field, "one of " + ", ".join(map(str, options)), value)
    if low is not None and value < low:
        raise fail(field, f">= {low}", value)
    if high is not None and value > high:
        raise fail(field, f"<= {high}", value)


MAX_CHANNELS = 65_536


def check_channels(field: str, value: Any, *, low: int = 1) -> None:
    """A channel count (filters, branch or head width) in [low, 65,536]: far wider than any network trains (the
    widest published layers have a few thousand channels), and one 3x3 convolution 65,536 channels wide already
    holds 38.7 billion weights; beyond it a typo (an extra digit or two) would only fail later, out of memory."""
    check_int(field, value, low=low)
    if value > MAX_CHANNELS:
        raise fail(field, f"an integer in [{low}, {MAX_CHANNELS:,}] (channels of one layer: no network needs more, "
                          f"and one 3x3 convolution that wide holds 38.7 billion weights)", value)


def check_float(field: str, value: Any, *, low: float, high: float, high_open: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(field, "a number", value)
    if math.isnan(value):
        raise fail(field, "a number", value)
    if value < low or value > high or (high_open and value == high):
        raise fail(field, f"in [{low}, {high}{')' if high_open else ']'}", value)


def check_bool(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise fail(field, "true or false", value)


def check_choice(field: str, value: Any, choices: Iterable[Any]) -> None:
    options = tuple(choices)
    if (isinstance(value, (list, dict, set)) or value not in options
            or isinstance(value, bool) != isinstance(options[0], bool)):
        raise fail(field, "one of " + ", ".join(repr(c) for c in options), value)


def check_activation(field: str, value: Any) -> None:
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise fail(field, "one of " + ", ".join(ACTIVATIONS), value)


# ---------------------------------------------------------------- string tokens

@dataclass(frozen=True)
class Token:
    """One token of a block's string form, e.g. ``k3`` or ``se0.25``.

    ``pattern`` must match the whole token; ``read`` turns the match into field
    values; ``write`` gives the token for a block (``None``: left out because
    the fields are at their defaults).
    """

    name: str
    pattern: re.Pattern[str]
    read: Callable[[re.Match[str]], dict[str, Any]]
    write: Callable[[Any], str | None]


def _num(text: str) -> float:
    return float(text)


def fmt_float(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def int_token(prefix: str, field: str, *, always: bool = True, default: int | None = None) -> Token:
    def write(block: Any) -> str | None:
        value = getattr(block, field)
        if not always and value == default:
            return None
        return f"{prefix}{value}"
    return Token(field, re.compile(rf"{prefix}(\d+)"), lambda m: {field: int(m.group(1))}, write)


def float_token(prefix: str, field: str, *, always: bool = False, default: float = 0.0) -> Token:
    def write(block: Any) -> str | None:
        value = getattr(block, field)
        if not always and value == default:
            return None
        return f"{prefix}{fmt_float(value)}"
    return Token(field, re.compile(rf"{prefix}(\d[\d.eE+-]*|\.\d+)"),
                 lambda m: {field: _num(m.group(1))}, write)


def flag_token(word: str, field: str, *, default: bool) -> Token:
    """``bn`` / ``nobn``: written only when it differs from the default."""
    def write(block: Any) -> str | None:
        value = getattr(block, field)
        if value == default:
            return None
        return word if value else f"no{word}"
    return Token(field, re.compile(rf"(no)?{word}"), lambda m: {field: m.group(1) is None}, write)


def word_token(field: str, words: Iterable[str], *, default: str) -> Token:
    options = tuple(words)
    def write(block: Any) -> str | None:
        value = getattr(block, field)
        return None if value == default else value
    return Token(field, re.compile("|".join(map(re.escape, options))), lambda m: {field: m.group(0)}, write)


def activation_token(default: str = "relu") -> Token:
    def write(block: Any) -> str | None:
        return None if block.activation == default else f"a{block.activation}"
    names = "|".join(sorted(ACTIVATIONS, key=len, reverse=True))
    return Token("activation", re.compile(rf"a({names})"), lambda m: {"activation": m.group(1)}, write)


# ---------------------------------------------------------------- the block base

@dataclass(frozen=True, kw_only=True)
class Block:
    """A stage: one block kind, its options, and how many times it repeats.

    The first repeat uses ``stride``; the others use stride 1 and take the
    stage's output channels as input.
    """

    kind: ClassVar[str]
    tokens: ClassVar[tuple[Token, ...]]
    # fields holding channel counts, scaled by compound width scaling
    channel_fields: ClassVar[tuple[str, ...]]
    strides: ClassVar[tuple[int, ...]] = (1, 2)

    repeats: int = 1
    stride: int = 1

    def __post_init__(self) -> None:
        # numbers given as int where a float is meant are stored as float, so JSON and key() are canonical
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", float) and isinstance(value, int) and not isinstance(value, bool):
                if not -1e308 < value < 1e308:
                    raise fail(f.name, "a number a float can hold", value)
                object.__setattr__(self, f.name, float(value))
        check_int("repeats", self.repeats, low=1, high=64)
        check_int("stride", self.stride, choices=self.strides)
        self.validate()
        for name, value in self.canonical().items():
            object.__setattr__(self, name, value)

    def validate(self) -> None:  # pragma: no cover - overridden
        pass

    def canonical(self) -> dict[str, Any]:
        """Options that have no effect, reset to their defaults, so that equal architectures are equal specs
        (same JSON, same ``key()``, same string)."""
        return {}

    # -- structure
    def out_channels(self, in_channels: int) -> int:
        raise NotImplementedError

    def apply_block(self, ops: Ops, x: Any, prefix: str, *, stride: int, in_channels: int) -> Any:
        raise NotImplementedError

    def apply(self, ops: Ops, x: Any, prefix: str, in_channels: int) -> tuple[Any, int]:
        """All repeats of the stage; returns the output and its channel count."""
        channels = in_channels
        for j in range(self.repeats):
            x = self.apply_block(ops, x, f"{prefix}b{j + 1}_", stride=self.stride if j == 0 else 1,
                                 in_channels=channels)
            channels = self.out_channels(channels)
        return x, channels

    # -- data
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"kind"})
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r} for block kind {cls.kind!r}; "
                             f"known options: {', '.join(sorted(names))}")
        return cls(**{k: v for k, v in data.items() if k != "kind"})

    def __str__(self) -> str:
        parts = [self.kind]
        for token in self.tokens:
            text = token.write(self)
            if text is not None:
                parts.append(text)
        return "_".join(parts)

    @classmethod
    def parse_tokens(cls, text: str, tokens: list[str]) -> Block:
        values: dict[str, Any] = {}
        seen: dict[str, str] = {}
        for tok in tokens:
            matches = [(t, m) for t in cls.tokens if (m := t.pattern.fullmatch(tok)) is not None]
            if not matches:
                raise ValueError(f"unknown token {tok!r} in block string {text!r} (kind {cls.kind!r})")
            token, match = matches[0]
            if token.name in seen:
                raise ValueError(f"token {tok!r} repeats {seen[token.name]!r} in block string {text!r}")
            seen[token.name] = tok
            try:
                values.update(token.read(match))
            except ValueError as exc:
                raise ValueError(f"malformed token {tok!r} in block string {text!r}: {exc}") from None
        try:
            return cls(**values)
        except TypeError as exc:  # a required option was not given
            raise ValueError(f"block string {text!r}: {exc}") from None

    def scaled(self, width: Callable[[int], int], repeats: Callable[[int], int]) -> Block:
        changes: dict[str, Any] = {"repeats": repeats(self.repeats)}
        for name in self.channel_fields:
            value = getattr(self, name)
            changes[name] = width(value) if value else value
        return dataclasses.replace(self, **changes)
