"""The Fastfood transform: a structured random projection R^d -> R^D in O(L log L) time.

Fastfood (Le, Sarlós & Smola, ICML 2013) replaces a dense Gaussian matrix by a product
of diagonal, permutation and Walsh-Hadamard matrices. Intrinsic-SAID (Aghajanyan et al.,
ACL 2021, §3; Li et al., ICLR 2018) uses it to map the d trainable numbers to each weight
tensor of D entries::

    P x = c · S H G Π H B pad(x)          c = 1 / sqrt(D · Σ_i G_ii²)

    L = 2^ceil(log2 D)     pad: x zero-padded (or cropped) to length L
    B: diag(±1) random signs         H: L×L Walsh-Hadamard matrix (entries ±1, unnormalised)
    Π: random permutation            G: diag(N(0, 1))
    S: keeps the first D of the L outputs

so storing P costs 3·L numbers instead of D·d. The scale c and the crop/pad of x to L
follow the reference implementation the Compacter paper ran (Aghajanyan's ``fastfood_torched``):
for a tensor smaller than d, only the first L entries of x reach it.
"""

from __future__ import annotations

import math

import scipy.linalg
import torch
from torch import nn


# H_{2^n} = H_2 ⊗ … ⊗ H_2 (n factors), so H_L applies as one small dense H_{2^b} along each
# group of b bits of the index. b = 6 (H_64): log2(L)/6 passes over the data instead of
# log2(L) butterfly passes — O(L log L) still, and ~4x faster than pairwise butterflies.
BLOCK_BITS = 6


def walsh_hadamard(x: torch.Tensor) -> torch.Tensor:
    """``x @ H`` along the last axis, H the unnormalised (±1) Sylvester-ordered Hadamard matrix.

    x: (..., L), L a power of two; H[i, j] = (-1)^popcount(i & j), symmetric, H H = L·I.
    """
    return _WalshHadamard.apply(x)


def hadamard_matrix(size: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The explicit (size, size) Sylvester matrix: H_1 = [1], H_2k = [[H_k, H_k], [H_k, -H_k]]."""
    return torch.from_numpy(scipy.linalg.hadamard(size)).to(dtype=dtype, device=device)


def _fwht(x: torch.Tensor) -> torch.Tensor:
    length = x.shape[-1]
    if length < 1 or length & (length - 1):
        raise ValueError(f"the Walsh-Hadamard transform needs a power-of-two length, got {length}")
    bits = length.bit_length() - 1
    y = x.reshape(-1, length)
    done = 0
    while done < bits:
        step = min(BLOCK_BITS, bits - done)
        h = hadamard_matrix(2 ** step, y.dtype, y.device)                              # (s, s)
        # index = (high bits, the `step` bits being transformed, the `done` low bits)
        v = y.view(y.shape[0], length >> (done + step), 2 ** step, 2 ** done)          # (rows, high, s, low)
        y = torch.einsum("ij,rhjl->rhil", h, v).reshape(-1, length)
        done += step
    return y.view(x.shape)


class _WalshHadamard(torch.autograd.Function):
    """H is symmetric, so its vector-Jacobian product is H again: nothing is saved for backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return _fwht(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _fwht(grad)


class FastfoodProjection(nn.Module):
    """One random Fastfood map P: R^d -> R^D (see the module docstring).

    B, Π, G are non-persistent buffers: they follow the model across devices but are never
    saved — they are regenerated from the generator's seed, so a task's file holds only x.
    Memory: L · (1 + 4 + 4) bytes (int8 signs, int32 permutation, float32 Gaussian).
    """

    def __init__(self, out_features: int, generator: torch.Generator, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.out_features = out_features
        self.length = 2 ** math.ceil(math.log2(out_features)) if out_features > 1 else 1
        length = self.length
        if torch.device(device).type == "meta":  # shapes only, e.g. counting T5-base from its config
            signs = torch.empty(length, dtype=torch.int8, device="meta")
            permutation = torch.empty(length, dtype=torch.int32, device="meta")
            gaussian = torch.empty(length, device="meta")
        else:
            # Drawn on the CPU from one seeded generator: the same projection on every device.
            signs = (torch.randint(0, 2, (length,), generator=generator, dtype=torch.int8) * 2 - 1)
            permutation = torch.randperm(length, generator=generator).to(torch.int32)
            gaussian = torch.randn(length, generator=generator)
        self.register_buffer("signs", signs.to(device), persistent=False)               # B: (L,)
        self.register_buffer("permutation", permutation.to(device), persistent=False)   # Π: (L,)
        self.register_buffer("gaussian", gaussian.to(device), persistent=False)         # G: (L,)
        scale = torch.rsqrt(out_features * gaussian.square().sum())
        self.register_buffer("scale", scale.to(device), persistent=False)               # c: ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (d,) float -> P x: (D,)."""
        length = self.length
        x = x[:length] if x.shape[0] >= length else nn.functional.pad(x, (0, length - x.shape[0]))
        v = walsh_hadamard(x * self.signs)                               # H B x          (L,)
        v = v.index_select(0, self.permutation) * self.gaussian          # G Π H B x      (L,)
        return walsh_hadamard(v)[: self.out_features] * self.scale       # c S H G Π H B x (D,)

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, L={self.length}"
