"""One validator per kind of value a user gives, each raising ``ValueError`` that names the field, the rule and the
value received: "`n_trials` must be an integer in [1, 1,000,000], but got n_trials=-1".

Pure Python (no TensorFlow, no Optuna), used by the record (``nas.engine.schema``, ``nas.engine.where``), the
budget and the command line.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["check_bool", "check_choice", "check_int", "check_name", "check_number", "check_path", "known_fields",
           "plain_json"]


def _label(name: str) -> tuple[str, str]:
    """(how the field is shown, the name used in ``name=value``): "`seed`" -> ("`seed`", "seed")."""
    bare = name.strip("`").rsplit(" ", 1)[-1].strip("`")
    return (name if "`" in name else f"`{name}`"), bare


def check_int(name: str, value: Any, low: int, high: int | None = None, *, optional: bool = False) -> Any:
    """``value`` as an integer in [low, high] (None allowed when ``optional``); ``True`` is not an integer."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        shown, bare = _label(name)
        rule = f"an integer >= {low}" if high is None else f"an integer in [{low:,}, {high:,}]"
        if optional:
            rule += " or None"
        raise ValueError(f"{shown} must be {rule}, but got {bare}={value!r}")
    return value


def check_number(name: str, value: Any, low: float, high: float = math.inf, *, optional: bool = False,
                 low_open: bool = False) -> Any:
    """``value`` as a finite number in [low, high] (or (low, high] with ``low_open``), returned as a float."""
    if optional and value is None:
        return None
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (value > low if low_open else value >= low) and value <= high)
    if not ok:
        shown, bare = _label(name)
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]" if math.isfinite(high) else \
            f"{'>' if low_open else '>='} {low:g}"
        rule = f"a finite number in {bounds}" if math.isfinite(high) else f"a finite number {bounds}"
        raise ValueError(f"{shown} must be {rule}, but got {bare}={value!r}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        shown, bare = _label(name)
        raise ValueError(f"{shown} must be true or false, but got {bare}={value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    options = list(choices)
    if value not in options or isinstance(value, bool) != any(isinstance(c, bool) and c == value for c in options):
        shown, bare = _label(name)
        raise ValueError(f"{shown} must be one of {', '.join(repr(c) for c in options)}, but got {bare}={value!r}")
    return value


def check_name(name: str, value: Any, *, max_length: int = 1000, forbid: str = "") -> str:
    """A non-blank single-line string (no control characters), at most ``max_length`` long, without the characters
    of ``forbid``."""
    shown, bare = _label(name)
    rule = f"a non-blank string of at most {max_length} characters without control characters" + (
        f" or {', '.join(repr(c) for c in forbid)}" if forbid else "")
    if (not isinstance(value, str) or not value.strip() or len(value) > max_length
            or any(ord(c) < 32 or ord(c) == 127 for c in value) or any(c in value for c in forbid)):
        raise ValueError(f"{shown} must be {rule}, but got {bare}={value!r}")
    return value


def check_path(name: str, value: Any) -> str:
    """A file or folder path given as a non-empty string or path object (returned as a string)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    shown, bare = _label(name)
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ValueError(f"{shown} must be a non-empty path, but got {bare}={value!r}")
    return value


def known_fields(group: str, given: Mapping[str, Any], known: Iterable[str], *, what: str = "field") -> None:
    """Refuse a key of ``given`` that is not among ``known``, naming the group, the key and the known ones."""
    names = list(known)
    if not isinstance(given, Mapping):
        raise ValueError(f"`{group}` must be a mapping of {', '.join(names)}, but got {given!r}")
    unknown = sorted(str(k) for k in set(given) - set(names))
    if unknown:
        raise ValueError(f"{group}: unknown {what} {unknown[0]!r}; known {what}s: {', '.join(names) or 'none'}")


def plain_json(value: Any, where: str) -> Any:
    """``value`` if it is plain JSON data (returned as a copy through JSON), else an error naming ``where``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be plain JSON data (numbers, strings, lists, dicts), "
                         f"but got {value!r}") from None
