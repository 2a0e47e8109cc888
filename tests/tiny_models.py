"""Tiny randomly initialised T5 and BERT models built in code (no download)."""

import torch
from transformers import BertConfig, BertForSequenceClassification, T5Config, T5ForConditionalGeneration

HIDDEN = 32


def tiny_t5(seed: int = 0) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(vocab_size=100, d_model=HIDDEN, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                      num_heads=4, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return T5ForConditionalGeneration(config).eval()


def tiny_bert(seed: int = 0, num_labels: int = 3) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=100, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels)
    return BertForSequenceClassification(config).eval()


def tiny_inputs(model, batch: int = 2, length: int = 7) -> dict:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2, 100, (batch, length), generator=generator)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if model.config.model_type == "t5":
        inputs["decoder_input_ids"] = torch.randint(2, 100, (batch, 3), generator=generator)
    return inputs


def logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits
