"""Parameterized hypercomplex multiplication (PHM) layers — the math behind Compacter.

A PHM layer computes ``y = x W + b`` with a weight that is a sum of Kronecker products
(paper, Eq. 3)::

    W = sum_{i=1..n} A_i ⊗ B_i        A_i: (n, n)     B_i: (in/n, out/n)     W: (in, out)

Compacter (Eq. 4-5) makes two changes: the "slow" rules ``A_i`` are shared by every
Compacter layer of the model, and each "fast" ``B_i`` is rank one, ``B_i = s_i t_i^T``.

Two ways to compute a rank-one layer (``reports/phm_microbench.md``, ``make bench``):
build ``W`` (``kronecker_sum``) and do one dense matmul, or apply the factors one by one
(``phm_factored``, never forming W). At MiniLM's adapter size (384→12, n=4) both cost
what an ``nn.Linear`` of that size costs, and building ``W`` lets eval mode cache it, so
inference is exactly a linear layer; where the dense matmul needs several times the
factored multiply-adds (768→24 with small n, and large layers, 10-40× faster at
1024→1024 and 4096→4096) the factored path wins. ``PHMLinear`` picks by counting
multiply-adds (``uses_factored``). Full (not rank-one) B always builds W: factoring it
saves no multiply-adds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from compacter.eval_cache import EvalCache


def kronecker_sum(rules: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
    """``sum_i kron(rules[i], fast[i])`` without materialising the n separate products.

    rules: (n, n, n) — A_i; fast: (n, p, q) — B_i. Returns W: (n·p, n·q).
    """
    n, _, _ = rules.shape
    _, p, q = fast.shape
    # kron(A, B)[a·p + c, b·q + d] = A[a, b] · B[c, d]  ->  index order (a, c, b, d)
    return torch.einsum("iab,icd->acbd", rules, fast).reshape(n * p, n * q)


def phm_factored(x: torch.Tensor, rules: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x @ sum_i kron(A_i, s_i t_i^T)`` applied factor by factor, never forming W.

    x: (..., n·p); rules: (n, n, n); s: (n, p, 1); t: (n, 1, q). Returns (..., n·q).
    Cost O(tokens · (n·(in + out) + n⁴)) instead of O(tokens · in · out). Three plain 2-D
    matmuls on contiguous operands: einsum's batched forms with n-sized inner dimensions
    ran several times slower on CPU (reports/phm_microbench.md).
    """
    n, p, q = rules.shape[0], s.shape[1], t.shape[2]
    tokens = x.reshape(-1, n, p)                                       # (T, n_a, p)
    u = tokens.reshape(-1, p) @ s.squeeze(-1).T                        # (T·n_a, n_i): x_a · s_i
    # mix[(a, i), (b, j)] = A_i[a, b] if i == j: the rules as one (n², n²) block-diagonal matrix
    mix = torch.einsum("iab,ij->aibj", rules, torch.eye(n, dtype=rules.dtype, device=rules.device))
    z = u.reshape(-1, n * n) @ mix.reshape(n * n, n * n)               # (T, n_b · n_i)
    y = z.reshape(-1, n) @ t.squeeze(-2)                               # (T·n_b, q): sum_i z_bi · t_i
    return y.reshape(*x.shape[:-1], n * q)


class SharedPHMRules(nn.Module):
    """Owner of the "slow" rules A shared by every Compacter layer of a model.

    Registered once on the model (so it is saved, moved and counted once); each
    ``PHMLinear`` keeps a plain reference to it. Init as the paper's code: N(0, 1e-4).
    """

    def __init__(self, n: int, init_std: float = 1e-4) -> None:
        super().__init__()
        self.rules = nn.Parameter(torch.randn(n, n, n) * init_std)


class PHMLinear(nn.Module):
    """``y = x W + b`` with ``W = sum_i A_i ⊗ B_i`` (Eq. 3), optionally rank-one B (Eq. 5).

    ``shared_rules``: a ``SharedPHMRules`` to use instead of an own A (Compacter);
    ``rank_one``: B_i = s_i t_i^T instead of a full (in/n, out/n) matrix.
    """

    # Factored once the dense matmul needs this many times its multiply-adds (per token:
    # in·out vs n·(in + out) + n⁴). reports/phm_microbench.md, forward + backward: below a
    # ratio of ~2.5 (e.g. 384→12 with n ≥ 4) building W is as fast or faster — and allows
    # the eval cache —, from ~5 on (768→24 with n ≤ 4, 256→256, larger) factored is faster.
    FACTORED_MIN_FLOP_RATIO = 4

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n: int,
        *,
        rank_one: bool,
        shared_rules: SharedPHMRules | None = None,
        rule_init_std: float = 0.01,
    ) -> None:
        super().__init__()
        problem = indivisible(n, {"input size": in_features, "output size": out_features})
        if problem:
            raise ValueError(f"PHM layer {in_features}->{out_features}: n={n} must divide the input size and the "
                             f"output size; {problem}.")
        self.in_features, self.out_features, self.n = in_features, out_features, n
        self.rank_one = rank_one
        p, q = in_features // n, out_features // n
        if shared_rules is None:
            self.rules = nn.Parameter(torch.randn(n, n, n) * rule_init_std)
        else:
            if shared_rules.rules.shape[0] != n:
                raise ValueError(f"shared PHM rules have n={shared_rules.rules.shape[0]}, layer asks for n={n}")
            # A plain reference, not a submodule: the rules are owned (and saved) once, by the model.
            object.__setattr__(self, "shared_rules", shared_rules)
        if rank_one:
            self.s = nn.Parameter(glorot_uniform(n, p, 1))
            self.t = nn.Parameter(glorot_uniform(n, 1, q))
        else:
            self.fast = nn.Parameter(glorot_uniform(n, p, q))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self._weight_cache = EvalCache()

    @property
    def rule(self) -> torch.Tensor:
        """A: the layer's own rules, or the model-wide shared ones."""
        shared = self.__dict__.get("shared_rules")
        return shared.rules if shared is not None else self.rules

    def fast_weights(self) -> torch.Tensor:
        """B_i for every i: (n, in/n, out/n)."""
        return self.s @ self.t if self.rank_one else self.fast

    def weight(self) -> torch.Tensor:
        """W: (in, out), cached in eval mode under no_grad until a parameter changes."""
        return self._weight_cache.get(self.training, self._weight_params(),
                                      lambda: kronecker_sum(self.rule, self.fast_weights()))

    def _weight_params(self) -> tuple[torch.Tensor, ...]:
        return (self.rule, self.s, self.t) if self.rank_one else (self.rule, self.fast)

    @property
    def uses_factored(self) -> bool:
        """Whether forward applies the factors one by one instead of building W (rank-one only)."""
        factored = self.n * (self.in_features + self.out_features) + self.n**4
        return self.rank_one and self.in_features * self.out_features >= self.FACTORED_MIN_FLOP_RATIO * factored

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.uses_factored:
            return phm_factored(x, self.rule, self.s, self.t) + self.bias
        return torch.nn.functional.linear(x, self.weight().T, self.bias)

    def extra_repr(self) -> str:
        shared = "shared" if "shared_rules" in self.__dict__ else "own"
        return f"in={self.in_features}, out={self.out_features}, n={self.n}, rank_one={self.rank_one}, A={shared}"


class LowRankLinear(nn.Module):
    """``y = x (u v^T) + b`` — the paper's Adapter-LowRank projection (rank one)."""

    def __init__(self, in_features: int, out_features: int, rank: int = 1) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.left = nn.Parameter(glorot_uniform(1, in_features, rank)[0])
        self.right = nn.Parameter(glorot_uniform(1, rank, out_features)[0])
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (x u) v^T: two thin matmuls, never the (in, out) matrix
        return (x @ self.left) @ self.right + self.bias


def glorot_uniform(n: int, rows: int, cols: int) -> torch.Tensor:
    """n matrices (rows, cols), Glorot-uniform with gain √2 as the paper's code initialises s, t and B:
    U(-b, b), b = √2 · √(6 / (rows + cols))."""
    matrices = torch.empty(n, rows, cols)
    for matrix in matrices:  # one at a time: xavier_uniform_ reads a 3-D tensor's fans as a convolution's
        nn.init.xavier_uniform_(matrix, gain=math.sqrt(2.0))
    return matrices


def indivisible(n: int, sizes: dict[str, int]) -> str | None:
    """PHM splits every size into n blocks. None if n divides all ``sizes``; else which do not,
    and the n that would fit: ``"not divisible by n: input size 10. Use n in [1, 2]"``."""
    bad = [f"{name} {size}" for name, size in sizes.items() if size % n]
    if not bad:
        return None
    fits = [d for d in range(1, min(sizes.values()) + 1) if all(size % d == 0 for size in sizes.values())]
    return f"not divisible by n: {', '.join(bad)}. Use n in {fits}"
