"""Intrinsic-SAID (Aghajanyan, Zettlemoyer & Gupta, ACL 2021, "Intrinsic Dimensionality
Explains the Effectiveness of Language Model Fine-Tuning", §3 Eq. 1-2).

Every backbone tensor θ_i (weights, biases, layer norms, embeddings; D_i entries) becomes

    θ_i = θ_0,i + λ_i · P_i(θ_d)        DID: λ_i = 1        SAID: λ_i trained

with θ_0 the pretrained weights (frozen), θ_d ∈ R^{d-m} the trained vector (zeros at
start, so the model starts exactly as the backbone), λ ∈ R^m one trained scale per tensor
(ones at start; SAID only) and P_i a Fastfood projection (``compacter.fastfood``) drawn
from ``projection_seed``. With SAID, d - m + m = ``intrinsic_dim`` numbers are trained in
all, the paper's count; the Compacter paper (Table 1) uses d = 20000 on T5-base (0.009%).

How it is injected — ``torch.nn.utils.parametrize``: each backbone tensor gets a
parametrization ``θ_0 ↦ θ_0 + λ_i P_i(θ_d)``, so every *access* to ``module.weight``
returns the adapted tensor. Why this rather than the reference code's forward pre-hook
that rewrites all weights once per model call: ``generate()`` calls the encoder directly,
bypassing a hook on the model, and a hook leaves stale tensors behind; a parametrization
is always current, leaves the Hugging Face modules' code untouched, and keeps θ_0 as the
module's own (frozen) parameter — so parameter counts stay right without bookkeeping
(θ_0 counted once as backbone, θ_d and λ as trainable, no copies in buffers). Tensors
tied to each other (T5's embeddings and LM head) share one parametrization, so they stay
tied. Cost: a tensor used several times in one forward (T5's tied embedding: encoder,
decoder, LM head) is projected each time — wrap a training forward in
``torch.nn.utils.parametrize.cached()`` to project it once; in eval mode without
gradients the adapted tensors are cached until θ_d or λ change.

Only the base model's tensors are projected; a new encoder task head (BERT's classifier)
is trained directly by ``compacter.apply``, as for every other method.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from compacter.configs import IntrinsicConfig
from compacter.eval_cache import EvalCache
from compacter.fastfood import FastfoodProjection


class IntrinsicVector(nn.Module):
    """Owner of the trained numbers: θ_d (zeros) and the SAID scales λ (ones).

    Registered once on the model root; every parametrization keeps a plain reference.
    """

    def __init__(self, dim: int, num_scales: int, device: torch.device | str) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(dim, device=device))                     # θ_d: (d - m,)
        self.scales = nn.Parameter(torch.ones(num_scales, device=device)) if num_scales else None  # λ: (m,)


class IntrinsicOffset(nn.Module):
    """The parametrization of one backbone tensor: ``θ_0 ↦ θ_0 + λ_i · P_i(θ_d)``."""

    def __init__(self, shape: torch.Size, index: int, vector: IntrinsicVector, generator: torch.Generator,
                 device: torch.device | str) -> None:
        super().__init__()
        self.shape, self.index = shape, index
        self.projection = FastfoodProjection(shape.numel(), generator, device)
        # A plain reference, not a submodule: θ_d and λ are owned (saved, counted) once, by the model.
        object.__setattr__(self, "vector", vector)
        self._cache = EvalCache()  # the adapted tensor, in eval mode

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        trained = [self.vector.theta] + ([self.vector.scales] if self.vector.scales is not None else [])
        return self._cache.get(self.training, [original, *trained], lambda: self._adapted(original))

    def _adapted(self, original: torch.Tensor) -> torch.Tensor:
        ray = self.projection(self.vector.theta.float()).view(self.shape)   # P_i θ_d, the tensor's shape
        if self.vector.scales is not None:
            ray = ray * self.vector.scales[self.index]                      # SAID: λ_i P_i θ_d
        return original + ray.to(original.dtype)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.shape)}, index={self.index}"


def apply_intrinsic(model: nn.Module, config: IntrinsicConfig) -> list[nn.Module]:
    """Reparametrize every base-model tensor as θ_0 + λ_i P_i(θ_d); returns the owner of θ_d and λ."""
    base = getattr(model, "base_model", model)
    holders = _tensor_holders(base)   # one entry per distinct tensor, in named_parameters order
    num_tensors = len(holders)
    dim = config.intrinsic_dim - num_tensors if config.said else config.intrinsic_dim
    if dim < 1:
        raise ValueError(
            f"intrinsic_dim={config.intrinsic_dim} leaves no room for θ_d: SAID spends one scale on each of the "
            f"model's {num_tensors} weight tensors; use intrinsic_dim > {num_tensors} or said=False"
        )
    device = next(base.parameters()).device
    vector = IntrinsicVector(dim, num_tensors if config.said else 0, device)
    model.compacter_intrinsic = vector  # owned once, by the model root
    generator = torch.Generator().manual_seed(config.projection_seed)
    for index, (tensor, places) in enumerate(holders):
        offset = IntrinsicOffset(tensor.shape, index, vector, generator, device)
        for module, attr in places:
            # unsafe=True skips registration's trial forward (one Fastfood per tensor, minutes on
            # T5-base on a CPU): the offset keeps θ_0's shape and dtype by construction.
            parametrize.register_parametrization(module, attr, offset, unsafe=True)
    return [vector]


def _tensor_holders(base: nn.Module) -> list[tuple[nn.Parameter, list[tuple[nn.Module, str]]]]:
    """Each distinct parameter with every (module, attribute) that holds it (tied weights: several)."""
    places: dict[int, list[tuple[nn.Module, str]]] = {}
    for _, module in base.named_modules(remove_duplicate=False):  # a shared module is visited once per path
        for attr, tensor in module._parameters.items():
            if tensor is not None and (module, attr) not in places.setdefault(id(tensor), []):
                places[id(tensor)].append((module, attr))
    return [(tensor, places[id(tensor)]) for tensor in base.parameters()]
