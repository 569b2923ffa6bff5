"""The plain conv space: VGG/AlexNet/LeNet-like stacks of convolutions and pooling, for small inputs (8x8
digits, 28x28 Fashion-MNIST, 32x32) up to 224x224. VGG-16 is a point of the default space; LeNet-5 is a
point of the space configured with its options (see ``params_of``)."""

from __future__ import annotations

from typing import Any

from nas.blocks import Conv
from nas.spec import ArchSpec, Head
from search_spaces._baselines import baseline
from search_spaces._space import Space, choices_option, opt_fail, range_option, stages_of, widths_option

DEFAULTS: dict[str, Any] = {
    "input_shape": (28, 28, 1), "num_classes": 10,
    "stages": (1, 5), "depth": (1, 3), "widths": (8, 16, 32, 64, 128, 256, 512), "kernels": (3, 5),
    "padding": "same", "pools": ("max", "avg", None), "bns": (False, True), "activations": ("relu",),
    "hidden": (0, 2), "hidden_units": (64, 128, 256, 512, 1024, 4096), "head_pools": ("flatten", "avg"),
    "dropouts": (0.0, 0.25, 0.5),
}


class ConvSpace(Space):
    """Labels: ``n_stages``, ``bn`` (convolutions have a bias exactly when there is no batch norm),
    ``activation``, ``head_pool`` (flatten / avg), ``n_hidden``, ``fc{j}_units``, ``dropout``; per stage i:
    ``s{i}_depth``, ``s{i}_width``, ``s{i}_kernel``, ``s{i}_pool`` (max / avg / None: a 2x2/2 pooling after
    the stage; not asked once the feature map is below 2 pixels).

    ``padding``: ``same`` (default) or ``valid``; with ``valid`` the space refuses, at construction, ranges
    whose deepest, widest-kernel network would shrink the input below 1 pixel.
    """

    name = "conv"
    classics = ("vgg16", "lenet5")

    def __init__(self, **options: Any) -> None:
        o = self._configure(options, DEFAULTS)
        n = self.name
        self.stages = range_option(n, "stages", o["stages"], low=1, high=10)
        self.depth = range_option(n, "depth", o["depth"], low=1, high=8)
        self.widths = widths_option(n, "widths", o["widths"])
        self.kernels = choices_option(n, "kernels", o["kernels"], kind=int, allowed=(1, 3, 5, 7))
        if o["padding"] not in ("same", "valid"):
            raise opt_fail(n, "padding", "'same' or 'valid'", o["padding"])
        self.padding = o["padding"]
        self.pools = choices_option(n, "pools", o["pools"], kind=(str, type(None)), allowed=("max", "avg", None))
        self.bns = choices_option(n, "bns", o["bns"], kind=bool)
        self.activations = choices_option(n, "activations", o["activations"], kind=str)
        self.hidden = range_option(n, "hidden", o["hidden"], low=0, high=4)
        self.hidden_units = widths_option(n, "hidden_units", o["hidden_units"])
        self.head_pools = choices_option(n, "head_pools", o["head_pools"], kind=str, allowed=("flatten", "avg", "max"))
        self.dropouts = self._dropouts(o)
        for a in self.activations:
            Conv(filters=8, activation=a)
        if self.padding == "valid":
            # the deepest stack of the widest kernels, pooling whenever the space would ask
            h = min(self.input_shape[:2])
            k = max(self.kernels)
            for _ in range(self.stages[1]):
                h -= self.depth[1] * (k - 1)
                if h < 1:
                    raise ValueError(
                        f"conv space: with padding='valid', {self.stages[1]} stages of {self.depth[1]} convolutions "
                        f"with kernel {k} can shrink the {self.input_shape[0]}x{self.input_shape[1]} input below 1 "
                        f"pixel; lower `stages`, `depth` or `kernels`, or use padding='same'")
                if h >= 2 and any(p is not None for p in self.pools):
                    h //= 2

    def sample(self, trial: Any) -> ArchSpec:
        n_stages = self.integer(trial, "n_stages", self.stages)
        bn = self.choose(trial, "bn", self.bns)
        activation = self.choose(trial, "activation", self.activations)
        head_pool = self.choose(trial, "head_pool", self.head_pools)
        n_hidden = self.integer(trial, "n_hidden", self.hidden)
        hidden = tuple(self.choose(trial, f"fc{j}_units", self.hidden_units) for j in range(1, n_hidden + 1))
        dropout = self.choose(trial, "dropout", self.dropouts)
        h, w = self.input_shape[:2]
        stages = []
        for i in range(1, n_stages + 1):
            depth = self.integer(trial, f"s{i}_depth", self.depth)
            width = self.choose(trial, f"s{i}_width", self.widths)
            kernel = self.choose(trial, f"s{i}_kernel", self.kernels)
            if self.padding == "valid":
                h, w = h - depth * (kernel - 1), w - depth * (kernel - 1)
            pool = self.choose(trial, f"s{i}_pool", self.pools) if min(h, w) >= 2 else None
            if pool is not None:
                h, w = h // 2, w // 2
            stages.append(Conv(filters=width, repeats=depth, kernel=kernel, padding=self.padding, bn=bn,
                               bias=not bn, activation=activation, pool=pool))
        return ArchSpec(input_shape=self.input_shape, num_classes=self.num_classes, stages=tuple(stages),
                        head=Head(pool=head_pool, hidden=hidden, dropout=dropout, activation=activation))

    def _params_of(self, name: str) -> dict[str, Any]:
        spec = baseline(name)
        stages = stages_of(spec, Conv)
        first = stages[0]
        params: dict[str, Any] = {"n_stages": len(spec.stages), "bn": first.bn, "activation": first.activation,
                                  "head_pool": spec.head.pool, "n_hidden": len(spec.head.hidden),
                                  "dropout": spec.head.dropout}
        params.update({f"fc{j}_units": u for j, u in enumerate(spec.head.hidden, 1)})
        for i, s in enumerate(stages, 1):
            params.update({f"s{i}_depth": s.repeats, f"s{i}_width": s.filters, f"s{i}_kernel": s.kernel,
                           f"s{i}_pool": s.pool})
        return params
