"""The PHM micro-benchmark: its compared paths compute one projection, and a run on tiny inputs
gives the report its rows (one per shape and dividing n) and its verdict."""

import math

import pytest
import torch

from compacter.phm import PHMLinear
from experiments.bench.phm_microbench import paths, report, run

TOKENS = (2, 8)  # batch × sequence: the paths' results and the rows do not depend on the size


@pytest.mark.parametrize("in_features, out_features, n", [(384, 12, 4), (256, 256, 2), (256, 256, 4)])
def test_timed_paths_compute_the_layers_projection_and_its_gradient(in_features, out_features, n):
    torch.manual_seed(0)
    layer = PHMLinear(in_features, out_features, n, rank_one=True)
    # full B = s t^T: the full-B path must then build the same W as the rank-one ones
    full = (layer.s @ layer.t).detach().requires_grad_()
    x = torch.randn(*TOKENS, in_features, requires_grad=True)
    outputs, grads = {}, {}
    for name, fn in paths(layer, full).items():
        if name.startswith("nn.Linear"):
            continue  # the dense reference: another layer, timed for its cost only
        x.grad = None
        y = fn(x) - (layer.bias if name.startswith("layer") else 0)  # the other paths leave the bias out
        y.backward(torch.ones_like(y))
        outputs[name], grads[name] = y.detach(), x.grad.clone()
    assert len(outputs) == 4
    reference = outputs["built, rank-one B"]
    assert reference.abs().max() > 0
    for name in outputs:
        torch.testing.assert_close(outputs[name], reference, msg=name)
        torch.testing.assert_close(grads[name], grads["built, rank-one B"], msg=name)


def test_a_tiny_run_reports_every_shape_and_dividing_n_with_the_path_the_layer_took():
    shapes = [(384, 12), (256, 256), (2048, 2048)]  # 2048²: the large case (no dense reference, 3 repeats)
    rows = run(repeats=1, max_wait=0.0, shapes=shapes, tokens=TOKENS)
    assert [(row["in → out"], row["n"]) for row in rows] == [
        ("384 → 12", 2), ("384 → 12", 4), ("384 → 12", 12),  # 8 does not divide 12
        ("256 → 256", 2), ("256 → 256", 4), ("256 → 256", 8),
        ("2048 → 2048", 2), ("2048 → 2048", 4), ("2048 → 2048", 8)]
    uses = {(row["in → out"], row["n"]): row["layer uses"] for row in rows}
    assert uses["384 → 12", 4] == "built W" and uses["256 → 256", 2] == "factored"
    for row in rows:
        large = row["in → out"] == "2048 → 2048"
        assert row["repeats"] == (3 if large else 1)
        assert math.isnan(row["nn.Linear (dense reference)"]) == large
        assert row["built, rank-one B"] > 0 and row["layer, eval forward (no_grad)"] > 0
        ratio = row["factored, rank-one B"] / row["built, rank-one B"]
        assert row["factored / built (rank-one)"] == pytest.approx(ratio)
    text = report(rows, ["--repeats", "1"], threads=1, tokens=TOKENS)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(rows) and "| 2048 → 2048 |" in table[-1]
    assert "- Input: 2 × 8 tokens;" in text and "`python -m experiments.bench.phm_microbench --repeats 1`" in text
    verdict = text.split("**Which path `PHMLinear` uses:** ")[1]
    assert "no case" not in verdict  # both paths measured: a ratio span for each
