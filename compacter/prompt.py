"""Prompt tuning (Lester, Al-Rfou & Constant, EMNLP 2021, §2): train only P soft-prompt
vectors added to the input sequence; the backbone is frozen.

    T5 (encoder input):      [p_1 … p_P, e(x_1) … e(x_L)]          mask [1 … 1, m_1 … m_L]
    BERT family:             [e(x_1)=[CLS], p_1 … p_P, e(x_2) … e(x_L)]

T5 follows the Compacter paper's code: prompts first, on the encoder side only. For
encoders the [CLS] token stays at position 0 — BERT's pooler and every sequence head read
position 0, so putting the prompts first would make the head read a prompt. The prompts
take token type 0 and positions 1…P (absolute position embeddings), so inputs may be at
most ``max_position_embeddings - P`` tokens long.

Initialisations (the paper's two rows, its code's ``init_prefix_from_vocab``):
``"random"`` (prompt-r) — uniform in [-0.5, 0.5]; ``"tokens"`` (prompt-t) — copies of the
first P rows of the input embedding matrix (T5: ``<pad>``, ``</s>``, ``<unk>`` and the most
frequent sentencepieces; BERT: ``[PAD]`` and the ``[unused*]`` rows).

How it is injected — forward pre-hooks (with kwargs) on the unmodified Hugging Face modules:
the T5 encoder stack turns ``input_ids`` into ``inputs_embeds`` with the prompts prepended
and extends ``attention_mask``; the T5 decoder stack extends the ``encoder_attention_mask``
it is handed so cross-attention sees the prompt positions too (``generate()`` calls the
encoder and the decoder separately, so both stacks are hooked, not the model). For BERT
the hook sits on the base model (``model.bert``) and extends ``attention_mask`` and
``token_type_ids``. The prompt is a parameter of a ``SoftPrompt`` module registered on
the model root, so it is saved, moved and counted like any other weight.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import nn

from compacter.configs import PromptConfig
from compacter.sites import model_type

RANDOM_RANGE = 0.5  # prompt-r: U(-0.5, 0.5), as the paper's code


class SoftPrompt(nn.Module):
    """Owner of the trained prompt vectors P: (num_tokens, hidden)."""

    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        self.embeddings = nn.Parameter(init)

    def forward(self, batch_size: int, like: torch.Tensor) -> torch.Tensor:
        """The prompts for a batch: (batch, num_tokens, hidden), in ``like``'s dtype."""
        return self.embeddings.to(like.dtype).unsqueeze(0).expand(batch_size, -1, -1)


def apply_prompt(model: nn.Module, config: PromptConfig) -> list[nn.Module]:
    """Register the soft prompt on ``model`` and the hooks that insert it; returns the prompt."""
    kind = model_type(model)  # a clear error for unsupported architectures
    table = model.get_input_embeddings().weight  # (vocab, hidden)
    if config.init == "tokens":
        if config.num_tokens > table.shape[0]:
            raise ValueError(f"init='tokens' copies the first num_tokens={config.num_tokens} vocabulary embeddings, "
                             f"but the vocabulary has only {table.shape[0]}; use fewer tokens or init='random'")
        init = table[: config.num_tokens].detach().clone()
    else:
        init = torch.empty(config.num_tokens, table.shape[1], dtype=table.dtype, device=table.device)
        init.uniform_(-RANDOM_RANGE, RANDOM_RANGE)
    prompt = SoftPrompt(init)
    model.compacter_prompt = prompt  # owned once, by the model root
    if kind == "t5":
        model.get_encoder().register_forward_pre_hook(partial(_prepend_to_encoder, prompt), with_kwargs=True)
        model.get_decoder().register_forward_pre_hook(partial(_extend_encoder_mask, config.num_tokens),
                                                      with_kwargs=True)
    else:
        # first of the base model's hooks: the others (mean pooling's mask) see the prompted inputs
        model.base_model.register_forward_pre_hook(partial(_insert_after_first_token, prompt), with_kwargs=True,
                                                   prepend=True)
    return [prompt]


def _embeddings_of(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    """The token embeddings the stack would compute, and kwargs without ``input_ids``.

    Transformers passes ``input_ids`` positionally to BERT's base model, by name elsewhere.
    """
    if len(args) > 1:
        raise TypeError(f"prompt tuning needs {type(module).__name__} called with keyword arguments after input_ids")
    kwargs = dict(kwargs)
    input_ids = args[0] if args else kwargs.get("input_ids")
    kwargs["input_ids"] = None
    embeds = kwargs.get("inputs_embeds")
    if embeds is None:
        embeds = module.get_input_embeddings()(input_ids)  # (B, L, hidden)
    return embeds, kwargs


def _prepend_to_encoder(prompt: SoftPrompt, module: nn.Module, args: tuple, kwargs: dict[str, Any]):
    """T5 encoder: [prompts, tokens]; attention mask (B, L) -> (B, P + L)."""
    embeds, kwargs = _embeddings_of(module, args, kwargs)
    batch, num_tokens = embeds.shape[0], prompt.embeddings.shape[0]
    kwargs["inputs_embeds"] = torch.cat([prompt(batch, embeds), embeds], dim=1)  # (B, P + L, hidden)
    mask = kwargs.get("attention_mask")
    if mask is not None:
        kwargs["attention_mask"] = torch.cat([mask.new_ones(batch, num_tokens), _two_dim(mask)], dim=1)
    return (), kwargs


def _extend_encoder_mask(num_tokens: int, module: nn.Module, args: tuple, kwargs: dict[str, Any]):
    """T5 decoder: the caller's encoder mask (B, L) covers the text only; prompts are always visible."""
    mask, states = kwargs.get("encoder_attention_mask"), kwargs.get("encoder_hidden_states")
    if mask is not None and states is not None and mask.shape[-1] == states.shape[1] - num_tokens:
        kwargs = {**kwargs, "encoder_attention_mask": torch.cat([mask.new_ones(mask.shape[0], num_tokens),
                                                                 _two_dim(mask)], dim=1)}
    return args, kwargs


def _insert_after_first_token(prompt: SoftPrompt, module: nn.Module, args: tuple, kwargs: dict[str, Any]):
    """BERT family: [CLS], prompts, the rest; mask and token types extended (prompts: 1 and 0)."""
    if kwargs.get("position_ids") is not None:
        raise ValueError("prompt tuning inserts tokens and cannot shift explicit position_ids; leave them unset")
    embeds, kwargs = _embeddings_of(module, args, kwargs)
    (batch, length), num_tokens = embeds.shape[:2], prompt.embeddings.shape[0]
    limit = module.config.max_position_embeddings
    if length + num_tokens > limit:
        raise ValueError(f"{length} input tokens + {num_tokens} prompt tokens exceed the model's "
                         f"{limit} positions; truncate inputs to {limit - num_tokens} tokens")
    kwargs["inputs_embeds"] = torch.cat([embeds[:, :1], prompt(batch, embeds), embeds[:, 1:]], dim=1)
    for key, fill in (("attention_mask", 1), ("token_type_ids", 0)):
        values = kwargs.get(key)
        if values is not None:
            values = _two_dim(values)
            kwargs[key] = torch.cat([values[:, :1], values.new_full((batch, num_tokens), fill), values[:, 1:]], dim=1)
    return (), kwargs


def _two_dim(values: torch.Tensor) -> torch.Tensor:
    if values.dim() != 2:
        raise ValueError(f"prompt tuning extends (batch, length) masks; got shape {tuple(values.shape)}")
    return values
