"""The Walsh-Hadamard and Fastfood transforms behind Intrinsic-SAID (compacter.fastfood), against
their explicit matrices (scipy's Sylvester Hadamard)."""

import pytest
import torch

from compacter.fastfood import FastfoodProjection, walsh_hadamard


def hadamard(length: int) -> torch.Tensor:
    from scipy.linalg import hadamard as sylvester

    return torch.from_numpy(sylvester(length)).double()


@pytest.mark.parametrize("length", [1, 2, 4, 64, 128, 2048])  # 2048 = 2^6 x 2^5: two blocks
def test_walsh_hadamard_equals_explicit_hadamard_matrix(length):
    x = torch.randn(3, length, dtype=torch.float64)
    torch.testing.assert_close(walsh_hadamard(x), x @ hadamard(length))


def test_walsh_hadamard_gradient_is_the_transform_itself():
    x = torch.randn(16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(walsh_hadamard, (x,))


def test_walsh_hadamard_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="power-of-two length, got 12"):
        walsh_hadamard(torch.zeros(12))


@pytest.mark.parametrize("out_features, dim", [(20, 7), (20, 40), (64, 64)])  # pad, crop, exact
def test_fastfood_equals_its_explicit_matrix(out_features, dim):
    proj = FastfoodProjection(out_features, torch.Generator().manual_seed(0)).double()
    length = proj.length                                                    # 32, 32, 64
    signs, gaussian = proj.signs.double(), proj.gaussian.double()
    h = hadamard(length)
    perm = torch.eye(length, dtype=torch.float64)[proj.permutation.long()]  # (Π v)_i = v_{π(i)}
    dense = proj.scale * (h @ torch.diag(gaussian) @ perm @ h @ torch.diag(signs))[:out_features]  # (D, L)
    x = torch.randn(dim, dtype=torch.float64)
    padded = torch.nn.functional.pad(x, (0, length - dim)) if dim < length else x[:length]
    torch.testing.assert_close(proj(x), dense @ padded)


def test_fastfood_stores_three_vectors_not_a_dense_matrix():
    proj = FastfoodProjection(1000, torch.Generator().manual_seed(0))
    assert sum(b.numel() for b in proj.buffers()) == 3 * 1024 + 1
    assert not list(proj.parameters()) and not proj.state_dict()  # regenerated from the seed, never saved
