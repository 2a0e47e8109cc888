"""``TaskDataModule``: one task's splits, tokenised for a seq2seq (T5) or encoder model.

The examples become one ``datasets.Dataset`` of model rows (text, target, example id),
tokenised by ``map`` and cached on disk (arrow files) under a key of everything that shapes
the tensors — task, split, model kind, tokenizer (vocabulary hash), lengths, prefix, data
seed, train size, the rows' content and a hash of the encoding code itself — so a second
run with the same settings does not re-tokenise, and an edited ``_encode`` does. Batches
are padded per batch by ``transformers``' collators (``DataCollatorWithPadding``;
``DataCollatorForSeq2Seq`` pads targets with -100), never to a fixed length. The gold
examples live in one place, ``TaskDataModule.examples(split)``, indexed by example id.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import datasets
import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding
from transformers.trainer_pt_utils import LengthGroupedSampler

from catalog.sources import hub_location, load_splits, resolve_source
from catalog.tasks import Task, unsupported_message

MODEL_KINDS = ("seq2seq", "encoder")
SPLITS = ("train", "validation", "test")


class _MultipleChoiceCollator:
    """(B, num_choices, L) batches: the choices flattened to pad them together, then folded back."""

    def __init__(self, tokenizer) -> None:
        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch, choices = len(features), len(features[0]["input_ids"])
        keys = [k for k in features[0] if k not in ("labels", "example_id")]
        flat = self.pad([{k: f[k][c] for k in keys} for f in features for c in range(choices)])
        out = {k: v.view(batch, choices, -1) for k, v in flat.items()}
        for key in ("labels", "example_id"):
            out[key] = torch.tensor([f[key] for f in features])
        return out


def make_collator(tokenizer, model_kind: str, multiple_choice: bool):
    """Pads one batch to its own longest row: inputs with the tokenizer's pad id (``transformers``'
    collators), seq2seq targets with -100 (ignored by the loss)."""
    if model_kind == "seq2seq":
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
    return _MultipleChoiceCollator(tokenizer) if multiple_choice else DataCollatorWithPadding(tokenizer)


class TaskDataModule(L.LightningDataModule):
    """Train / validation / test of one task (the paper's splits), ready for a model.

    ``examples(split)[batch["example_id"][i]]`` is the raw example behind row ``i`` of a
    batch. Batches group examples of similar length, so dynamic padding pads little:
    training uses ``transformers``' LengthGroupedSampler (seeded shuffle of
    length-sorted mega-batches); validation and test run shortest first, always the same.
    """

    def __init__(self, task: Task, tokenizer, model_kind: str, train_size: int | None = None, seed: int = 42,
                 data_seed: int = 42, val_size: int | None = None, batch_size: int = 32, eval_batch_size: int = 64,
                 max_source_length: int = 128,
                 max_target_length: int = 8, add_task_prefix: bool = False, glue_dir=None, superglue_dir=None,
                 hf_data_dir=None, cache_dir=None, num_workers: int = 0):
        super().__init__()
        if model_kind not in MODEL_KINDS:
            raise ValueError(f"unknown model_kind {model_kind!r}; valid: {', '.join(MODEL_KINDS)}")
        if not task.supports(model_kind):
            raise ValueError(unsupported_message(task.name, model_kind))
        self.task = task
        self.tokenizer, self.model_kind = tokenizer, model_kind
        # data_seed draws the splits and the low-resource subset (the paper's fixed 42), seed the batch order
        self.train_size, self.seed, self.data_seed, self.val_size = train_size, seed, data_seed, val_size
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        self.add_task_prefix = add_task_prefix
        self.source_dirs = {"glue_dir": glue_dir, "superglue_dir": superglue_dir, "hf_data_dir": hf_data_dir}
        self.cache_dir = Path(cache_dir) if cache_dir else Path(datasets.config.HF_DATASETS_CACHE) / "compacter_bench"
        self._examples: dict[str, list[dict]] = {}
        self._tokenized: dict[str, datasets.Dataset] = {}
        self._train_generator = torch.Generator().manual_seed(seed)

    # ------------------------------------------------------------ Lightning hooks

    def prepare_data(self):
        """Download from the Hub when no local source is configured (once per node)."""
        kind, _ = resolve_source(self.task, **self.source_dirs)
        if kind == "hub":  # fills the datasets cache only; setup() reads and normalises what it needs
            datasets.load_dataset_builder(*hub_location(self.task)).download_and_prepare()

    def setup(self, stage: str | None = None):
        if self._tokenized:  # Lightning calls setup once per stage; the splits do not change
            return
        splits = load_splits(self.task, seed=self.data_seed, train_size=self.train_size,
                             validation_size=self.val_size, **self.source_dirs)
        for split in SPLITS:
            self._examples[split] = splits[split]
            self._tokenized[split] = self._tokenize(split, splits[split])

    def examples(self, split: str) -> list[dict]:
        """Raw examples of ``split``, indexed by the batches' ``example_id``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if not self._examples:
            raise RuntimeError("call setup() before examples()")
        return self._examples[split]

    def train_dataloader(self):
        # A generator seeded by `seed`: the same seed gives the same batch order, epoch after epoch.
        sampler = LengthGroupedSampler(self.batch_size, lengths=self._lengths("train"), generator=self._train_generator)
        return self._loader("train", self.batch_size, sampler=sampler)

    def state_dict(self) -> dict:
        """Saved in checkpoints: a resumed run draws the next epochs' orders as if never stopped."""
        return {"train_generator": self._train_generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._train_generator.set_state(state_dict["train_generator"])

    def val_dataloader(self):
        return self._loader("validation", self.eval_batch_size, sampler=self._shortest_first("validation"))

    def test_dataloader(self):
        return self._loader("test", self.eval_batch_size, sampler=self._shortest_first("test"))

    # ------------------------------------------------------------ internals

    def _loader(self, split: str, batch_size: int, **kwargs) -> DataLoader:
        if not self._tokenized:
            raise RuntimeError("call setup() before requesting dataloaders")
        multiple_choice = self.model_kind == "encoder" and self.task.encoder_head == "multiple_choice"
        collate = make_collator(self.tokenizer, self.model_kind, multiple_choice)
        return DataLoader(self._tokenized[split], batch_size=batch_size, collate_fn=collate,
                          num_workers=self.num_workers, **kwargs)

    def _lengths(self, split: str) -> list[int]:
        """Tokens per row (the longest choice for multiple choice): what padding depends on."""
        return [max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)
                for ids in self._tokenized[split]["input_ids"]]

    def _shortest_first(self, split: str) -> list[int]:
        lengths = self._lengths(split)
        return sorted(range(len(lengths)), key=lengths.__getitem__)

    def _rows(self, split: str, examples: list[dict]) -> list[dict]:
        """Untokenised model inputs, each with the index of its example."""
        rows = []
        for i, example in enumerate(examples):
            if self.model_kind == "seq2seq":
                source, target = self.task.text_to_text(example, add_prefix=self.add_task_prefix)
                # Training repeats a ReCoRD example once per answer, as the paper does.
                targets = self.task.training_targets(example) if split == "train" else [target]
                rows += [{"source": source, "target": t, "example_id": i} for t in targets]
            else:
                rows.append({**self.task.encoder_input(example), "example_id": i})
        return rows

    def _encode(self, batch: dict) -> dict:
        tok = self.tokenizer
        if self.model_kind == "seq2seq":
            out = dict(tok(batch["source"], max_length=self.max_source_length, truncation=True,
                           return_token_type_ids=False))
            out["labels"] = self._target_ids(batch["target"])
        elif "choices" in batch:
            sizes = [len(c) for c in batch["choices"]]
            flat = [pair for choices in batch["choices"] for pair in choices]
            encoded = tok([a for a, _ in flat], [b for _, b in flat], max_length=self.max_source_length,
                          truncation=True)
            out = {k: _chunks(v, sizes) for k, v in encoded.items()}
            out["labels"] = batch["label"]
        else:
            pairs = batch["text_pair"] if any(p is not None for p in batch["text_pair"]) else None
            out = dict(tok(batch["text"], pairs, max_length=self.max_source_length, truncation=True))
            # the loss takes its dtype from the head: float scores (MSE) or class indices
            regression = self.task.encoder_head == "regression"
            out["labels"] = [float(x) for x in batch["label"]] if regression else batch["label"]
        out["example_id"] = batch["example_id"]
        return out

    def _target_ids(self, targets: list[str]) -> list[list[int]]:
        """T5's targets: the label's own tokens, then EOS — none of the special tokens an
        encoder tokenizer would add (``[CLS] … [SEP]``). The model shifts them right behind
        its ``decoder_start_token_id`` (pad for T5) for teacher forcing."""
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise ValueError(f"the tokenizer {self.tokenizer.name_or_path!r} has no EOS token, which a seq2seq "
                             f"target needs to end with; use the model's own (T5) tokenizer")
        ids = self.tokenizer(targets, add_special_tokens=False)["input_ids"]
        return [t[:self.max_target_length - 1] + [eos] for t in ids]

    def _tokenize(self, split: str, examples: list[dict]) -> datasets.Dataset:
        rows = self._rows(split, examples)
        dataset = datasets.Dataset.from_list(rows)
        key = self._cache_key(split, rows)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # The explicit fingerprint spares `datasets` from hashing `self` (tokenizer included).
        return dataset.map(self._encode, batched=True, remove_columns=dataset.column_names,
                           cache_file_name=str(self.cache_dir / f"{key}.arrow"), new_fingerprint=key,
                           load_from_cache_file=True, desc=f"tokenising {self.task.name} {split}")

    def _cache_key(self, split: str, rows: list[dict]) -> str:
        tok = self.tokenizer
        vocab = hashlib.sha256(json.dumps(sorted(tok.get_vocab().items())).encode()).hexdigest()
        settings = {
            "code": _ENCODING_CODE, "task": self.task.name, "split": split, "kind": self.model_kind,
            "tokenizer": [type(tok).__name__, tok.name_or_path, len(tok), vocab, tok.truncation_side],
            "lengths": [self.max_source_length, self.max_target_length], "prefix": self.add_task_prefix,
            "data_seed": self.data_seed, "train_size": self.train_size,
            "rows": hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest(),
        }
        digest = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:16]
        return f"{self.task.name}-{split}-{self.model_kind}-{digest}"


def _chunks(values: list, sizes: list[int]) -> list[list]:
    """Split a flat list back into consecutive groups of the given sizes."""
    out, start = [], 0
    for size in sizes:
        out.append(values[start:start + size])
        start += size
    return out


# The code that turns rows into the cached tensors: editing any of it is a new cache entry.
_ENCODING_CODE = hashlib.sha256("".join(inspect.getsource(f) for f in (
    TaskDataModule._encode, TaskDataModule._target_ids, _chunks)).encode()).hexdigest()
