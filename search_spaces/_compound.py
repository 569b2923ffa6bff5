"""The compound space: EfficientNet's compound scaling as a search around any base spec.

EfficientNet-B1..B7 are points of it around EfficientNet-B0 (Tan & Le 2019, and the coefficients of the
reference implementation)."""

from __future__ import annotations

import math
from typing import Any

from nas.scaling import scale
from nas.spec import ArchSpec, Head
from search_spaces._baselines import baseline, baselines
from search_spaces._space import Space, classes_option, opt_fail, shape_option

DEFAULTS: dict[str, Any] = {
    "base": "efficientnet_b0", "input_shape": None, "num_classes": None, "mode": "free",
    "depth": (1.0, 3.1), "width": (1.0, 2.0), "step": 0.1, "image_sizes": None, "size_step": 4,
    "phi": (0.0, 7.0), "phi_step": 0.5, "alpha": 1.2, "beta": 1.1, "gamma": 1.15,
    "dropouts": (0.2, 0.3, 0.4, 0.5), "max_macs": None, "max_params": None,
}


def _pair(space: str, option: str, value: Any, low: float) -> tuple[float, float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
            or not low <= value[0] <= value[1]):
        raise opt_fail(space, option, f"(low, high) numbers with {low} <= low <= high", value)
    return (float(value[0]), float(value[1]))


class CompoundSpace(Space):
    """Labels in ``mode="free"``: ``depth_mult`` and ``width_mult`` (floats on a grid of ``step``),
    ``image_size`` (integer, a grid of ``size_step`` pixels from the base's height; the width follows the base's
    aspect ratio), ``dropout``. In ``mode="phi"``: ``phi`` (float on a grid of ``phi_step``) with depth
    ``alpha**phi``, width ``beta**phi`` and resolution ``gamma**phi`` (EfficientNet's 1.2, 1.1, 1.15 by
    default; the paper keeps ``alpha * beta**2 * gamma**2`` near 2 so FLOPs grow about ``2**phi``), and
    ``dropout``.

    ``base`` is a baseline name or any ``ArchSpec`` (e.g. the best of an earlier search). ``max_macs`` /
    ``max_params`` are the FLOPs/size budget of the search; they are reported as ``space.constraints`` for the
    engine to reject over-budget candidates before they are built.
    """

    name = "compound"

    def __init__(self, **options: Any) -> None:
        o = self._configure(options, DEFAULTS)
        n = self.name
        base = o["base"]
        if isinstance(base, str):
            if base not in baselines():
                raise opt_fail(n, "base", f"a baseline name ({', '.join(baselines())}) or an ArchSpec", base)
            self.base_name: str | None = base
            base = baseline(base)
        elif isinstance(base, ArchSpec):  # a classic given as its spec is still that classic
            self.base_name = next((b for b in baselines() if baseline(b) == base), None)
        else:
            raise opt_fail(n, "base", "a baseline name or an ArchSpec", base)
        if o["num_classes"] is not None:
            base = base.replace(num_classes=classes_option(n, o["num_classes"]))
        if o["input_shape"] is not None:  # the base at another resolution / channel count (the data's)
            shape = shape_option(n, o["input_shape"])
            if shape != base.input_shape:
                try:
                    base = base.replace(input_shape=shape)
                except ValueError as exc:
                    raise opt_fail(n, "input_shape", f"a shape the base can take ({exc})", o["input_shape"]) from None
                self.base_name = None  # EfficientNet-B1..B7 are points around B0 at its own resolution only
        self.base = base
        self.input_shape = base.input_shape
        self.num_classes = base.num_classes
        if o["mode"] not in ("free", "phi"):
            raise opt_fail(n, "mode", "'free' or 'phi'", o["mode"])
        self.mode = o["mode"]
        self.depth = _pair(n, "depth", o["depth"], 0.1)
        self.width = _pair(n, "width", o["width"], 0.1)
        self.phi = _pair(n, "phi", o["phi"], -10.0)
        for name in ("step", "phi_step", "alpha", "beta", "gamma"):
            v = o[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise opt_fail(n, name, "a positive number", v)
        self.step, self.phi_step = float(o["step"]), float(o["phi_step"])
        self.alpha, self.beta, self.gamma = float(o["alpha"]), float(o["beta"]), float(o["gamma"])
        h = base.input_shape[0]
        self.size_step = o["size_step"]
        if isinstance(self.size_step, bool) or not isinstance(self.size_step, int) or self.size_step < 1:
            raise opt_fail(n, "size_step", "a positive integer", self.size_step)
        sizes = o["image_sizes"] or (h, h + self.size_step * math.ceil(h * 1.68 / self.size_step))
        if (not isinstance(sizes, (list, tuple)) or len(sizes) != 2 or not all(isinstance(s, int) for s in sizes)
                or not 1 <= sizes[0] <= sizes[1] or (sizes[1] - sizes[0]) % self.size_step):
            raise opt_fail(n, "image_sizes", f"(low, high) pixel sizes with high - low a multiple of size_step "
                           f"{self.size_step}", sizes)
        self.image_sizes = (sizes[0], sizes[1])
        self.dropouts = self._dropouts(o)
        self.constraints = {k: o[k] for k in ("max_macs", "max_params") if o[k] is not None}
        for k, v in self.constraints.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise opt_fail(n, k, "a positive number", v)
        self.classics = tuple(f"efficientnet_b{i}" for i in range(8)) if self.base_name == "efficientnet_b0" else ()
        self._bases = {d: base.replace(head=Head(**{**base.head.to_dict(), "dropout": d})) for d in self.dropouts}
        # the smallest point must be a valid network
        self._make(self.depth[0], self.width[0], self.image_sizes[0], self.dropouts[0])

    def _make(self, depth: float, width: float, size: int, dropout: float) -> ArchSpec:
        h, w, _ = self.base.input_shape
        return scale(self._bases[dropout], depth=depth, width=width, image_size=(size, max(1, round(w * size / h))))

    def sample(self, trial: Any) -> ArchSpec:
        if self.mode == "free":
            depth = trial.suggest_float("depth_mult", self.depth[0], self.depth[1], step=self.step)
            width = trial.suggest_float("width_mult", self.width[0], self.width[1], step=self.step)
            size = trial.suggest_int("image_size", self.image_sizes[0], self.image_sizes[1], step=self.size_step)
        else:
            phi = trial.suggest_float("phi", self.phi[0], self.phi[1], step=self.phi_step)
            depth, width = self.alpha ** phi, self.beta ** phi
            size = max(1, round(self.base.input_shape[0] * self.gamma ** phi))
        dropout = self.choose(trial, "dropout", self.dropouts)
        return self._make(depth, width, size, dropout)

    def _expected(self, name: str) -> ArchSpec:
        return baseline(name, num_classes=self.num_classes)

    def _params_of(self, name: str) -> dict[str, Any]:
        from search_spaces._baselines import EFFICIENTNET_COEFFICIENTS

        if self.mode != "free":
            raise ValueError(f"compound space: params_of needs mode='free' (EfficientNet's B1..B7 use hand-picked "
                             f"multipliers, not alpha/beta/gamma powers), but got mode={self.mode!r}")
        width, depth, size, dropout = EFFICIENTNET_COEFFICIENTS[int(name[-1])]
        return {"depth_mult": depth, "width_mult": width, "image_size": size, "dropout": dropout}
