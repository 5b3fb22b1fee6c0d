"""``fasterpose bench params``: every paper row reproduced (params exact, paper GFLOPs within 0.05)."""

from __future__ import annotations

import json

import pytest

from fasterpose.cli import main

EXACT_PARAMS = {
    "fasterpose_r50_256x192": 25_737_344,
    "simplebaseline_r50_256x192": 33_999_697,
    "fasterpose_r101_256x192": 44_729_472,
    "simplebaseline_r101_256x192": 52_991_825,
    "fasterpose_r152_256x192": 60_373_120,
    "simplebaseline_r152_256x192": 68_635_473,
    "table5_feature_16x12": 31_967_056,
    "table5_feature_32x24": 32_963_716,
}


@pytest.mark.slow
def test_bench_params_json_matches_paper(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "params", "--json", "--pattern", "[fst]*.yaml"]) == 0
    rows = {r["config"]: r for r in json.loads(capsys.readouterr().out.strip().splitlines()[-1])}
    assert set(EXACT_PARAMS) <= set(rows)
    for name, params in EXACT_PARAMS.items():
        assert rows[name]["params"] == params
        assert rows[name.replace("256x192", "384x288")]["params"] == params if "x192" in name else True
    checked = 0
    for row in rows.values():
        assert set(row) >= {
            "config",
            "params",
            "gflops_paper",
            "gmacs",
            "mflops_torchstat",
            "paper_params",
            "paper_gflops",
        }
        lightweight = row["config"].startswith(("lpn", "fasterpose_lpn", "lite", "fasterpose_lite"))
        if row["paper_gflops"] is None or lightweight:  # those rows have their own 2% test
            continue
        assert abs(row["gflops_paper"] - row["paper_gflops"]) < 0.05, row
        if row["paper_params"] is not None:
            assert abs(row["params"] / 1e6 - row["paper_params"]) < 0.15, row
        checked += 1
    assert checked >= 16
    assert rows["fasterpose_r50_256x192"]["gmacs"] == pytest.approx(4.11, abs=0.01)
    assert rows["simplebaseline_r50_256x192"]["gmacs"] == pytest.approx(5.43, abs=0.01)


def test_three_counters_on_a_hand_counted_network() -> None:
    """conv3x3(3->4, bias) at 8x6 -> BN -> ReLU -> deconv4x4 s2 (4->2, no bias) -> nearest x2 upsample."""
    import torch
    from torch import nn

    from fasterpose.bench.flops import measure_complexity

    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, bias=False),
        nn.Upsample(scale_factor=2),
    )
    c = measure_complexity(net, (8, 6))
    conv = 4 * 3 * 9 * 48  # weight.numel() x 8 x 6 output pixels
    deconv_paper = 2 * 4 * 16 * 16 * 12  # weight.numel() x 16 x 12 output pixels: 4x the real cost
    deconv_real = 48 * 4 * 2 * 16  # each of the 4 x 48 input elements scattered to 2 channels x 16 taps
    assert c.params == 4 * 3 * 9 + 4 + 8 + 4 * 2 * 16
    assert c.paper_gflops * 2**30 == pytest.approx(conv + deconv_paper)
    assert c.gmacs * 1e9 == pytest.approx(conv + deconv_real)
    bias, bn, relu, up = 4 * 48, 2 * 4 * 48, 4 * 48, 2 * 32 * 24
    assert c.torchstat_mflops * 2**20 == pytest.approx(conv + bias + bn + relu + deconv_paper + up)
    assert torch.is_grad_enabled() and net.training  # counting leaves the model as it was
