"""Tiny randomly initialised T5 and BERT models built in code (no download)."""

import string
from pathlib import Path

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


BUILDERS = {"t5": tiny_t5, "bert": tiny_bert}  # each architecture's tiny model, by seed


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


def perturbed(model):
    """The trained tensors moved off their init (most methods start as the backbone, adapters near
    it), so that a round-trip or equivalence test can fail."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    return model


# ---------------------------------------------------------------- tiny checkpoints on disk

def t5_like_tokenizer(words) -> "T5Tokenizer":
    """transformers' own T5Tokenizer (Unigram, Metaspace "▁", ``</s>`` appended, <pad>=0,
    </s>=1, <unk>=2 — T5's layout) over a small vocabulary: whole words, digits, and single
    characters as fallback pieces (so any ASCII text round-trips). What differs from t5-base is only the vocabulary, so
    targets, decoding and parsing take exactly the path they take with the real tokenizer."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(f"▁{w}", -5.0) for w in dict.fromkeys(words)]
    pieces += [(f"▁{c}", -8.0) for c in string.digits]
    pieces += [(c, -10.0) for c in string.ascii_letters + string.digits + string.punctuation]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def bert_like_tokenizer(words) -> "BertTokenizer":
    """transformers' own BertTokenizer (WordPiece, lower case, ``[CLS] … [SEP]``) over a small
    vocabulary: the given words, digits and single characters (``##`` continuations)."""
    from transformers import BertTokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(words), *string.digits, ".", ":"]
    tokens += [*string.ascii_lowercase, *(f"##{c}" for c in string.ascii_lowercase + string.digits)]
    return BertTokenizer(vocab={token: i for i, token in enumerate(dict.fromkeys(tokens))})


def save_tiny_backbones(root: Path, *, hidden: int = 64, init_std: float = 0.02) -> dict[str, str]:
    """A tiny random BERT and a tiny random T5, each saved with its kind's tokenizer over
    the synthetic tasks' words, as checkpoints: ``experiments.run`` loads them by path like
    any Hugging Face model. Returns {"bert": path, "t5": path}."""
    from catalog.sources import SYNTHETIC_MARKER, SYNTHETIC_WORDS
    from catalog.tasks import TASKS

    torch.manual_seed(0)
    words = [*SYNTHETIC_WORDS, SYNTHETIC_MARKER, *(t.prefix for t in TASKS.values()), "sentence"]
    bert_tokenizer, t5_tokenizer = bert_like_tokenizer(words), t5_like_tokenizer(words)
    bert = BertForSequenceClassification(BertConfig(
        vocab_size=len(bert_tokenizer), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=2 * hidden, max_position_embeddings=128, initializer_range=init_std))
    t5 = T5ForConditionalGeneration(T5Config(
        vocab_size=len(t5_tokenizer), d_model=hidden, d_kv=16, d_ff=2 * hidden, num_layers=2, num_heads=4,
        pad_token_id=t5_tokenizer.pad_token_id, eos_token_id=t5_tokenizer.eos_token_id,
        decoder_start_token_id=t5_tokenizer.pad_token_id))  # as T5: decoding starts from <pad>
    paths = {}
    # BERT is saved without a task head, as a pretrained encoder is (all-MiniLM-L6-v2 too):
    # each run adds the head its task needs.
    for name, model, tokenizer in (("bert", bert.bert, bert_tokenizer), ("t5", t5, t5_tokenizer)):
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        paths[name] = str(root / name)
    return paths
