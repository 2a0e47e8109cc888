"""What the benchmark is made of: its tasks and its methods as plain data, one entry each.

Both sides read this package: ``lightning_modules`` and ``experiments`` build their ``Task``
objects from the ``TaskSpec`` entries (formats, source layouts), ``analysis`` takes labels,
metric order and benchmarks from them. This module imports nothing beyond the standard library,
and no module of the package imports Lightning or the training code, so ``analysis`` can use it
(``tests/test_analysis_reports.py`` holds that). Beside it: the tasks' behaviour (``tasks``,
``metrics``, ``sources``, ``chance``), the run record (``record``), the profile (``profile``) and
the backbones' names (``backbones``).
A table shared by both sides rather than fields copied into each run record: old records need no
migration, and a display name fixed here fixes every report.

Adding a task is one ``TaskSpec`` in ``TASKS`` (plus, only if it reads, shows or scores unlike
the plain tasks, its behaviour in ``catalog/tasks.py``: view, jsonl rows, ids, scoring; or one whole
``Task`` registered with ``catalog.tasks.TASKS.register``). Adding a method config is one
``MethodSpec`` in ``METHODS`` next to its YAML file in ``catalog/configs/methods/`` (and, for
new math, its config in ``compacter.configs`` and its apply function in ``compacter.api``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

ENCODER_HEADS = ("classification", "regression", "multiple_choice")
# "synthetic": small generated tasks that a tiny random model learns in seconds (sources.py),
# for checking that training, generation and scoring work; never part of the paper's tables.
BENCHMARK_NAMES = {"glue": "GLUE", "superglue": "SuperGLUE", "synthetic": "synthetic"}
METRIC_NAMES = {"mcc": "MCC", "accuracy": "acc", "f1": "F1", "pearson": "Pearson", "spearman": "Spearman",
                "macro_f1": "macro-F1", "f1a": "F1a", "em": "EM"}


@dataclasses.dataclass(frozen=True)
class Tsv:
    """Where a GLUE task lives in the ``download_glue_data.py`` layout."""

    folder: str
    columns: dict[str, str]  # Hub field -> tsv column
    label: str  # tsv column holding the label
    header: tuple[str, ...] | None = None  # column names of a file without a header row


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One task: names, metrics, label space, input formats and where its data lives.

    ``metrics``: all are reported, in the paper's order; model selection uses their mean.
    ``fields``: what a normalised example keeps (Hub names), besides label/answers/idx/group.
    ``source_fields``: example fields rendered as ``field: value`` for T5, in order.
    ``encoder_fields``: (fields joined as ``text``, fields joined as ``text_pair``); for
    ``multiple_choice`` the second tuple lists the choices, each paired with ``text``.
    ``tsv`` / ``jsonl``: the GLUE tsv layout / SuperGLUE jsonl folder of the original release;
    ``hub_config``: the Hub dataset config when it is not the task's name;
    ``validation_from_train``: the paper's rule for large tasks, this many training examples held
    out as validation (the original validation set becomes test); 0: the original validation set
    is halved into validation and test; ``eval_splits``: MNLI validates on its mismatched and tests
    on its matched validation split, as they are.
    """

    name: str
    display_name: str
    benchmark: str
    metrics: tuple[str, ...]
    labels: tuple[str, ...]
    encoder_head: str | None
    fields: tuple[str, ...]
    source_fields: tuple[str, ...] = ()
    encoder_fields: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    source_lead: str = ""  # ReCoRD's T5 input starts with the word "record"
    prefix: str = ""  # the paper's task-name prefix; default: the id, "superglue-" + id for SuperGLUE
    tsv: Tsv | None = None
    jsonl: str | None = None
    hub_config: str | None = None
    validation_from_train: int = 0
    eval_splits: tuple[str, str] = ()  # (validation, test) taken whole from these original splits
    train_examples: int | None = None  # in the original train split (MultiRC: answers); None: generated

    def __post_init__(self):
        if self.benchmark not in BENCHMARK_NAMES:
            raise ValueError(f"benchmark must be one of {tuple(BENCHMARK_NAMES)}, got {self.benchmark!r}")
        if self.encoder_head not in (*ENCODER_HEADS, None):
            raise ValueError(f"encoder_head must be one of {ENCODER_HEADS} or None, got {self.encoder_head!r}")
        unknown = set(self.metrics) - set(METRIC_NAMES)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; valid: {', '.join(METRIC_NAMES)}")
        if not self.prefix:
            default = f"superglue-{self.name}" if self.benchmark == "superglue" else self.name
            object.__setattr__(self, "prefix", default)  # frozen: set once, here


_NLI2 = ("entailment", "not_entailment")
_BOOL = ("False", "True")
_ACC = ("accuracy",)
_PAIR = ("sentence1", "sentence2")


def _pair(first: str, second: str) -> dict:
    """The formats of a sentence-pair task: both fields for T5, ``text`` / ``text_pair`` for encoders."""
    return dict(fields=(first, second), source_fields=(first, second), encoder_fields=((first,), (second,)))


def _single(field: str) -> dict:
    return dict(fields=(field,), source_fields=(field,), encoder_fields=((field,), ()))


# In the papers' column order: GLUE, then SuperGLUE, then the synthetic tasks.
TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("cola", "CoLA", "glue", ("mcc",), ("unacceptable", "acceptable"), "classification",
             **_single("sentence"), train_examples=8551,
             tsv=Tsv("CoLA", {"sentence": "sentence"}, "label",
                     header=("source", "label", "original_mark", "sentence"))),
    TaskSpec("sst2", "SST-2", "glue", _ACC, ("negative", "positive"), "classification",
             **_single("sentence"), train_examples=67349, validation_from_train=1000,
             tsv=Tsv("SST-2", {"sentence": "sentence"}, "label")),
    TaskSpec("mrpc", "MRPC", "glue", ("accuracy", "f1"), ("not_equivalent", "equivalent"), "classification",
             **_pair(*_PAIR), train_examples=3668,
             tsv=Tsv("MRPC", {"sentence1": "#1 String", "sentence2": "#2 String"}, "Quality")),
    TaskSpec("qqp", "QQP", "glue", ("accuracy", "f1"), ("not_duplicate", "duplicate"), "classification",
             **_pair("question1", "question2"), train_examples=363846, validation_from_train=1000,
             tsv=Tsv("QQP", {"question1": "question1", "question2": "question2"}, "is_duplicate")),
    TaskSpec("stsb", "STS-B", "glue", ("pearson", "spearman"), (), "regression",
             **_pair(*_PAIR), train_examples=5749,
             tsv=Tsv("STS-B", {"sentence1": "sentence1", "sentence2": "sentence2"}, "score")),
    TaskSpec("mnli", "MNLI", "glue", _ACC, ("entailment", "neutral", "contradiction"), "classification",
             **_pair("premise", "hypothesis"), train_examples=392702,
             tsv=Tsv("MNLI", {"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label"),
             eval_splits=("validation_mismatched", "validation_matched")),
    TaskSpec("qnli", "QNLI", "glue", _ACC, _NLI2, "classification",
             **_pair("question", "sentence"), train_examples=104743, validation_from_train=1000,
             tsv=Tsv("QNLI", {"question": "question", "sentence": "sentence"}, "label")),
    # GLUE's RTE; SuperGLUE ships the same task (premise/hypothesis), also readable
    TaskSpec("rte", "RTE", "glue", _ACC, _NLI2, "classification",
             **_pair(*_PAIR), train_examples=2490, jsonl="RTE",
             tsv=Tsv("RTE", {"sentence1": "sentence1", "sentence2": "sentence2"}, "label")),
    TaskSpec("boolq", "BoolQ", "superglue", _ACC, _BOOL, "classification",
             **_pair("question", "passage"), train_examples=9427, jsonl="BoolQ"),
    TaskSpec("cb", "CB", "superglue", ("macro_f1", "accuracy"), ("entailment", "contradiction", "neutral"),
             "classification", **_pair("premise", "hypothesis"), train_examples=250, jsonl="CB"),
    TaskSpec("copa", "COPA", "superglue", _ACC, ("choice1", "choice2"), "multiple_choice",
             ("premise", "choice1", "choice2", "question"), ("premise", "choice1", "choice2"),
             (("context",), ("choice1", "choice2")), train_examples=400, jsonl="COPA"),
    TaskSpec("multirc", "MultiRC", "superglue", ("f1a", "em"), _BOOL, "classification",
             ("paragraph", "question", "answer"), ("question", "answer", "paragraph"),
             (("question", "answer"), ("paragraph",)), train_examples=27243, jsonl="MultiRC"),
    TaskSpec("record", "ReCoRD", "superglue", ("f1", "em"), (), None, ("passage", "query", "entities"),
             ("query", "entities", "passage"), source_lead="record", train_examples=100730, jsonl="ReCoRD",
             validation_from_train=1000),
    TaskSpec("wic", "WiC", "superglue", _ACC, _BOOL, "classification",
             ("word", "sentence1", "sentence2", "start1", "end1", "start2", "end2"),
             ("sentence1", "sentence2", "word"), (("word", "sentence1"), ("sentence2",)), train_examples=5428,
             jsonl="WiC"),
    # the Hub's (and the paper's) "wsc.fixed": span texts repaired
    TaskSpec("wsc", "WSC", "superglue", _ACC, _BOOL, "classification",
             ("text", "span1_index", "span2_index", "span1_text", "span2_text"), ("text",), (("text",), ()),
             prefix="superglue-wsc.fixed", train_examples=554, jsonl="WSC", hub_config="wsc.fixed"),
    # The label is a visible function of the words (sources.synthetic_examples): whether the
    # sentence contains the word "yes" (chance 50%), and how many times it does (0-5).
    TaskSpec("synthetic", "Synthetic", "synthetic", _ACC, ("absent", "present"), "classification",
             **_single("sentence")),
    TaskSpec("synthetic_count", "Synthetic count", "synthetic", ("pearson", "spearman"), (), "regression",
             **_single("sentence")),
)


def task_score(metrics: Mapping[str, float]) -> float:
    """A task's score: the mean of its metrics (the paper's ``average_metrics``) — what model
    selection maximises and the tables show; NaN when any metric is missing or NaN."""
    values = list(metrics.values())
    if not values or any(value is None or math.isnan(value) for value in values):
        return math.nan
    return sum(values) / len(values)


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """One method config (``catalog/configs/methods/<name>.yaml``) as the tables show it."""

    name: str
    display_name: str
    paper_percent: float | None = None  # the paper's Table 1 "% trainable parameters" of T5-base
    in_paper: bool = True  # False: a row "beyond the paper" (peft's methods), tabled apart from Tables 1-2
    # whether the trained weights fold into the backbone's own (no inference overhead): not for
    # adapters (a non-linearity between their projections) nor prompts (a longer input)
    mergeable: bool = True


# In the paper's row order.
METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("finetune", "Finetuning", 100.0),
    MethodSpec("adapter", "Adapter", 0.832, mergeable=False),
    MethodSpec("pfeiffer", "Pfeiffer-Adapter", 0.427, mergeable=False),
    MethodSpec("adapterdrop", "AdapterDrop", 0.494, mergeable=False),
    MethodSpec("lowrank", "Adapter-LowRank", 0.073, mergeable=False),
    MethodSpec("phm", "PHM-Adapter", 0.179, mergeable=False),
    MethodSpec("compacter", "Compacter", 0.073, mergeable=False),
    MethodSpec("compacterpp", "Compacter++", 0.047, mergeable=False),
    MethodSpec("bitfit", "BitFit", 0.126),
    MethodSpec("prompt_r", "Prompt Tuning-R", 0.034, mergeable=False),
    MethodSpec("prompt", "Prompt Tuning-T", 0.034, mergeable=False),
    MethodSpec("intrinsic", "Intrinsic-SAID", 0.009),
    # beyond the paper: peft's methods (method: peft in their YAML)
    MethodSpec("lora", "LoRA", in_paper=False),
    MethodSpec("dora", "DoRA", in_paper=False),
    MethodSpec("ia3", "(IA)³", in_paper=False),
    MethodSpec("loha", "LoHa", in_paper=False),
    MethodSpec("vera", "VeRA", in_paper=False),
)

TASK_SPECS = {spec.name: spec for spec in TASKS}
METHOD_SPECS = {spec.name: spec for spec in METHODS}
