"""The analytic cost counter against published and reference numbers."""

from __future__ import annotations

import dataclasses

import pytest

import nas
import search_spaces
from nas import ArchSpec, Conv, Head
from search_spaces._baselines import GOOGLENET_MODULES


def test_mnist_cnn_has_104202_params() -> None:
    plain = dict(padding="valid", bn=False, bias=True)
    spec = ArchSpec(input_shape=(28, 28, 1), num_classes=10,
                    stages=(Conv(filters=32, pool="max", **plain), Conv(filters=64, pool="max", **plain),
                            Conv(filters=128, **plain)), head=Head(pool="flatten"))
    c = nas.cost(spec)
    assert c.params == 104_202
    assert [r.output_shape for r in c.layers if r.op in ("conv", "maxpool", "flatten")] == [
        (26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (3, 3, 128), (1152,)]
    # 3x3x1x32 x 26x26 + 3x3x32x64 x 11x11 + 3x3x64x128 x 3x3 + 1152x10
    assert c.macs == 9 * 32 * 676 + 9 * 32 * 64 * 121 + 9 * 64 * 128 * 9 + 1152 * 10
    assert c.flops == 2 * c.macs


def test_lenet5_has_the_classic_61706_params() -> None:
    assert nas.cost(search_spaces.baseline("lenet5", num_classes=10)).params == 61_706


def test_alexnet_single_tower_params() -> None:
    assert nas.cost(search_spaces.baseline("alexnet")).params == 62_378_344


# Published multiply-adds (papers; for ResNet-18 the commonly quoted 1.8 G of torchvision's model zoo).
PUBLISHED_MACS = {
    "resnet18": 1.8e9,
    "resnet50": 3.8e9,      # ResNet v1 (stride on the first 1x1, paper and Keras): 3.858 G
    "vgg16": 15.5e9,
    "mobilenet_v1": 569e6,
    "mobilenet_v2": 300e6,
    "efficientnet_b0": 0.39e9,
}


@pytest.mark.parametrize("name", PUBLISHED_MACS)
def test_macs_within_3_percent_of_published(name: str) -> None:
    macs = nas.cost(search_spaces.baseline(name)).macs
    assert abs(macs / PUBLISHED_MACS[name] - 1) < 0.03, macs


def test_resnet50_v1_and_v15_variants() -> None:
    v1 = search_spaces.baseline("resnet50")
    v15 = v1.replace(stages=tuple(dataclasses.replace(s, stride_on="3x3") for s in v1.stages))
    m1, m15 = nas.cost(v1).macs, nas.cost(v15).macs
    assert 3.8e9 <= m1 <= 3.9e9 and 4.0e9 <= m15 <= 4.15e9
    assert nas.cost(v1).params == nas.cost(v15).params


def test_googlenet_agrees_with_the_papers_table() -> None:
    """Szegedy et al. 2014, table 1 "ops" column (M multiply-adds). The table's 34M for the first 7x7/2
    convolution does not match its own shapes (7*7*3*64 * 112*112 = 118M), so the published 1.5 G total is
    about 84M short; likewise its 54M for 5a, whose own widths at 7x7 give 51.08M
    (49 * (832*256 + 832*160 + 9*160*320 + 832*32 + 25*32*128 + 832*128)). Every other row agrees within 1%."""
    table = {"3a": 128, "3b": 304, "4a": 73, "4b": 88, "4c": 100, "4d": 119, "4e": 170, "5a": 54, "5b": 71}
    c = nas.cost(search_spaces.baseline("googlenet"))
    by_prefix: dict[str, int] = {}
    for row in c.layers:
        by_prefix[row.name.split("_")[0]] = by_prefix.get(row.name.split("_")[0], 0) + row.macs
    for i, name in enumerate(GOOGLENET_MODULES):
        if name != "5a":
            assert abs(by_prefix[f"s{i + 1}b1"] / (table[name] * 1e6) - 1) < 0.01, name
    assert by_prefix["s8b1"] == 49 * (832 * 256 + 832 * 160 + 9 * 160 * 320 + 832 * 32 + 25 * 32 * 128 + 832 * 128)
    assert abs((by_prefix["stem2b1"] + by_prefix["stem3b1"]) / 360e6 - 1) < 0.01
    assert by_prefix["stem1b1"] == 7 * 7 * 3 * 64 * 112 * 112
    assert abs((c.macs - by_prefix["stem1b1"] + 34e6) / 1.5e9 - 1) < 0.03


def test_resnet_params_equal_torchvision_plus_batchnorm_buffers() -> None:
    """torchvision counts batch norm's running mean/var as buffers, not parameters: 11,689,512 (ResNet-18)
    and 21,797,672 (ResNet-34) parameters; Keras's count_params includes them (2 per BN channel)."""
    for name, reference in (("resnet18", 11_689_512), ("resnet34", 21_797_672)):
        c = nas.cost(search_spaces.baseline(name))
        buffers = sum(r.params // 2 for r in c.layers if r.op == "bn")
        assert c.params - buffers == reference


def test_cost_rows_sum_and_shapes() -> None:
    spec = search_spaces.baseline("efficientnet_b0")
    c = nas.cost(spec)
    assert c.macs == sum(r.macs for r in c.layers)
    assert c.params == sum(r.params for r in c.layers)
    assert c.output_shape == (1000,)
    names = [r.name for r in c.layers]
    assert len(names) == len(set(names))
    assert names[:3] == ["stem1b1_conv", "stem1b1_bn", "stem1b1_act"] and names[-1] == "predictions"
    # SE of the first block: squeeze width max(1, int(32 * 0.25)) = 8, on the block's input channels
    se = {r.name: r for r in c.layers if r.name.startswith("s1b1_se")}
    assert se["s1b1_se_reduce"].params == 32 * 8 + 8 and se["s1b1_se_expand"].params == 8 * 32 + 32


def test_summary_prints_the_table_with_totals(capsys: pytest.CaptureFixture[str]) -> None:
    spec = search_spaces.baseline("resnet18", input_shape=(32, 32, 3), num_classes=10)
    text = nas.summary(spec)
    assert capsys.readouterr().out.strip() == text.strip()
    c = nas.cost(spec)
    assert f"{c.macs:,}" in text and f"{c.params:,}" in text and spec.key() in text
    assert "s4b2_conv2" in text and "s4b2_act1" not in text
    assert "s4b2_act1" in nas.summary(spec, all_layers=True)


def test_cost_rejects_non_specs() -> None:
    with pytest.raises(TypeError, match="cost\\(\\) needs an ArchSpec, but got dict"):
        nas.cost({})  # type: ignore[arg-type]
