"""The PHM layer computes x @ (sum_i A_i ⊗ B_i) + b, for full and rank-one B."""

import math

import pytest
import torch

from compacter.phm import PHMLinear, SharedPHMRules, glorot_uniform, kronecker_sum, phm_factored


def explicit_weight(layer: PHMLinear) -> torch.Tensor:
    fast = layer.fast_weights()
    return sum(torch.kron(layer.rule[i], fast[i]) for i in range(layer.n))


@pytest.mark.parametrize("n", [1, 2, 4, 8])
@pytest.mark.parametrize("rank_one", [False, True])
def test_phm_output_equals_explicit_kronecker_sum(n, rank_one):
    torch.manual_seed(n)
    layer = PHMLinear(16, 8, n, rank_one=rank_one)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(3, 5, 16)
    expected = x @ explicit_weight(layer) + layer.bias
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [2, 4])
def test_factored_path_equals_built_weight(n):
    torch.manual_seed(0)
    layer = PHMLinear(24, 12, n, rank_one=True)
    x = torch.randn(4, 24)
    torch.testing.assert_close(phm_factored(x, layer.rule, layer.s, layer.t), x @ kronecker_sum(layer.rule, layer.s @ layer.t),
                               rtol=1e-5, atol=1e-6)


def test_shared_rules_are_used_not_copied():
    shared = SharedPHMRules(4)
    a, b = PHMLinear(8, 4, 4, rank_one=True, shared_rules=shared), PHMLinear(4, 8, 4, rank_one=True, shared_rules=shared)
    assert a.rule is shared.rules and b.rule is shared.rules
    assert not any(p is shared.rules for p in a.parameters()), "the shared A must be owned by one module only"


def test_indivisible_sizes_name_the_numbers():
    with pytest.raises(ValueError, match=r"PHM layer 10->8: n=4 must divide the input size and the output size; "
                                         r"not divisible by n: input size 10\. Use n in \[1, 2\]\.$"):
        PHMLinear(10, 8, 4, rank_one=True)


def test_eval_cache_matches_uncached_and_is_rebuilt_after_an_update():
    torch.manual_seed(0)
    layer = PHMLinear(16, 8, 4, rank_one=True).eval()
    x = torch.randn(2, 16)
    with torch.no_grad():
        cached = layer(x)
        assert layer.weight() is layer.weight(), "eval + no_grad must reuse the cached W"
    uncached = layer(x)  # grad enabled: built fresh
    torch.testing.assert_close(cached, uncached)
    layer.train()
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    layer(x).sum().backward()
    optimizer.step()
    layer.eval()
    with torch.no_grad():
        after = layer(x)
    expected = x @ explicit_weight(layer) + layer.bias
    torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(after, cached)


def test_eval_cache_survives_a_training_forward_without_an_update():
    # eval -> train -> eval with no optimizer step in between (a validation pass, a training
    # batch whose step was skipped, validation again): the second eval must rebuild W.
    torch.manual_seed(0)
    layer = PHMLinear(384, 12, 4, rank_one=True)
    x = torch.randn(2, 384)
    expected = x @ explicit_weight(layer) + layer.bias
    with torch.no_grad():
        layer.eval()
        layer(x)
        layer.train()
        layer(x)
        layer.eval()
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 96, 1), (4, 1, 3), (12, 32, 1), (1, 384, 1), (2, 16, 2)])
def test_glorot_init_draws_the_papers_bound_bit_for_bit(shape):
    """nn.init.xavier_uniform_ per matrix draws what U(-b, b), b = √2·√(6/(rows + cols)), drew on the
    whole tensor: the published runs' inits (same seed, same numbers). Red for a 3-D xavier call (its
    fans are a convolution's) or another gain."""
    n, rows, cols = shape
    torch.manual_seed(0)
    drawn = glorot_uniform(n, rows, cols)
    torch.manual_seed(0)
    bound = math.sqrt(2.0) * math.sqrt(6.0 / (rows + cols))
    assert torch.equal(drawn, torch.empty(n, rows, cols).uniform_(-bound, bound))
