"""Setting a search up: the space configured for the data, and the warm-start candidates checked against it."""

from __future__ import annotations

from typing import Any

import search_spaces
from nas.engine.schema import space_ref
from nas.trial import FixedTrial

__all__ = ["configure_space", "warm_start_params"]


def configure_space(space: Any, data_shape: tuple[int, int, int], num_classes: int) -> search_spaces.Space:
    """A configured space from a name, a ``{"name": ..., "options": {...}}`` mapping or a space object; input
    shape and class count come from the data unless the options set them."""
    if isinstance(space, search_spaces.Space):
        return space
    ref = space_ref(space)
    if not isinstance(ref, dict):
        raise ValueError(f"`space` must be a space name, a mapping {{name: ..., options: {{...}}}} or a "
                         f"search_spaces.Space, but got {type(space).__name__}")
    name, options = ref["name"], dict(ref["options"])
    if name not in search_spaces.names():
        raise ValueError(f"`space` must be one of {', '.join(search_spaces.names())} or a configured space, "
                         f"but got space={name!r}")
    if name == "compound" and "base" not in options:
        raise ValueError("`space`: the compound space needs a base spec: pass search_spaces.get('compound', "
                         "base=...) or {'name': 'compound', 'options': {'base': ...}}")
    if name != "compound":
        options.setdefault("input_shape", data_shape)
    options.setdefault("num_classes", num_classes)
    return search_spaces.get(name, **search_spaces.from_jsonable(options))


def warm_start_params(space: search_spaces.Space, warm_start: Any) -> list[tuple[str, dict[str, Any]]]:
    """(name, labels) per warm-start item: classic networks of the space by name, or label dicts (checked
    against the space now, with the label named if one is outside it)."""
    if isinstance(warm_start, (str, dict)):
        warm_start = [warm_start]
    if not isinstance(warm_start, (list, tuple)):
        raise ValueError(f"`warm_start` must be a list of classic network names or label dicts, but got "
                         f"warm_start={warm_start!r}")
    warm: list[tuple[str, dict[str, Any]]] = []
    for item in warm_start:
        if not isinstance(item, (str, dict)):
            raise ValueError(f"`warm_start` items must be classic network names or label dicts, but got {item!r}")
        try:
            if isinstance(item, str):
                warm.append((item, space.params_of(item)))
            else:
                space.sample(FixedTrial(item))
                warm.append(("params", dict(item)))
        except ValueError as exc:
            raise ValueError(f"`warm_start` item {item!r}: {exc}") from None
    return warm
