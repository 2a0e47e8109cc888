"""Task registry: how each GLUE / SuperGLUE task is read, shown to a model and scored.

What a task is (names, benchmark, metrics, labels, fields, source layout) is one entry of
``catalog.TASKS``; its ``Task`` here adds what it does, as fields of the entry: its view (the
cleaning its raw examples need), its jsonl row format and example ids (``catalog/rows.py``) and its
scoring (``catalog/scoring.py``). Readers — sources, the DataModule, the LightningModule, chance —
are handed a ``Task`` and use what it carries; only a name from a config or the command line is
looked up, in ``TASKS`` (``get_task``), which a test or a plugin extends with ``TASKS.register``.

The text-to-text format follows the paper's code (rabeehk/compacter ``seq2seq/data/tasks.py``):
the source is ``field: value`` pairs joined by spaces, optionally led by the task name
(``rte``, ``superglue-cb``), and the target is the label index as a string. Two deliberate
differences, both slips in that code: MNLI reads ``hypothesis:`` (the paper's code drops the
colon), and STS-B targets use T5's 0.2 grid (the paper's code rounds to 0.1).

Examples are plain dicts in the Hugging Face Hub field names (see ``sources.py``), with
``label`` (``answers`` for ReCoRD), ``idx`` and, for MultiRC, ``group`` (the question id).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping

import catalog
from catalog import rows, scoring
from catalog.scoring import Scoring


def _same(example: dict) -> dict:
    return example


def _remove_markup(text: str) -> str:
    """MultiRC paragraphs carry HTML (``<br>``, ``<b>``); T5 and the paper strip it."""
    return re.sub(r"<(/)?b>", "", re.sub(r"<br>", " ", text))


def _multirc_view(example: dict) -> dict:
    return {**example, **{k: _remove_markup(example[k]) for k in ("question", "answer", "paragraph")}}


def _mark_span(text: str, span: str, word_index: int, mark: str) -> str:
    """Surround ``span``, which starts at whitespace-word ``word_index``, by ``mark`` (T5's WSC)."""
    pattern = rf"^((?:\S+\s){{{word_index}}})({re.escape(span)})"
    return re.sub(pattern, lambda m: f"{m.group(1)}{mark} {m.group(2)} {mark}", text, count=1)


def _wsc_view(example: dict) -> dict:
    """T5's WSC input: ``*`` around the noun (span1), ``#`` around the pronoun (span2)."""
    text = _mark_span(example["text"], example["span1_text"], example["span1_index"], "*")
    # Marking span1 added two words ("*" twice) before span2 when span1 comes first.
    shift = 2 * int(example["span1_index"] < example["span2_index"])
    text = _mark_span(text, example["span2_text"], example["span2_index"] + shift, "#")
    return {**example, "text": text}


def _record_view(example: dict) -> dict:
    """T5's ReCoRD input: highlights become sentences, entities a comma-separated list."""
    passage = re.sub(r"(\.|\?|!|\"|')\n@highlight\n", r"\1 ", example["passage"])
    passage = re.sub(r"\n@highlight\n", ". ", passage)
    return {**example, "passage": passage, "entities": ", ".join(example["entities"])}


def _copa_view(example: dict) -> dict:
    # The encoder sees the question (cause / effect) in its context; the paper's
    # text-to-text input omits it.
    return {**example, "context": f"{example['premise']} What was the {example['question']}?"}


@dataclasses.dataclass(frozen=True)
class Task(catalog.TaskSpec):
    """A task of ``catalog.TASKS`` (names, metrics, labels, formats, data layout) with its
    behaviour: the two input formats, target strings, prediction parsing and scoring.

    ``view``: task-specific cleaning applied before either format (markup, span marks).
    ``jsonl_rows``: one line of its SuperGLUE jsonl -> the Hub's rows (one row, as is, by default).
    ``example_ids``: a Hub row's ``idx`` -> the example's id fields (``{"idx": int}`` by default).
    ``scoring``: gold fields, targets, parsing, metrics and chance (default: ``scoring.SCORE`` for
    a regression head, else ``scoring.LABELS``).
    """

    view: Callable[[dict], dict] = dataclasses.field(default=_same, repr=False)
    jsonl_rows: Callable[[dict], Iterator[dict]] = dataclasses.field(default=rows.same_row, repr=False)
    example_ids: Callable[[object], dict] = dataclasses.field(default=rows.number_id, repr=False)
    scoring: Scoring | None = None

    @classmethod
    def from_spec(cls, spec: catalog.TaskSpec, **behaviour) -> Task:
        """The task of a ``catalog.TASKS`` entry, with the behaviour it does not share with the plain tasks."""
        return cls(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(catalog.TaskSpec)}, **behaviour)

    def __post_init__(self):
        super().__post_init__()
        if self.scoring is None:  # frozen: set once, here
            object.__setattr__(self, "scoring", scoring.SCORE if self.encoder_head == "regression" else scoring.LABELS)

    @property
    def is_span(self) -> bool:
        """ReCoRD: the target is free text, gold answers live under ``answers`` (its scoring says so)."""
        return self.scoring.free_text

    def supports(self, model_kind: str) -> bool:
        """Whether a ``model_kind`` model (``"seq2seq"`` or ``"encoder"``) can learn it: encoders need a head."""
        return model_kind == "seq2seq" or self.encoder_head is not None

    def text_to_text(self, example: dict, add_prefix: bool = False) -> tuple[str, str]:
        """(source, target) strings for T5; the target is the first answer for ReCoRD."""
        return self._source(example, add_prefix), self.training_targets(example)[0]

    def training_targets(self, example: dict) -> list[str]:
        """Every target to train on: the paper repeats a ReCoRD example once per answer
        (``<unk>`` when it has none); every other task has exactly one target."""
        return self.scoring.targets(self, example)

    def _source(self, example: dict, add_prefix: bool) -> str:
        view = self.view(example)
        words = [self.prefix] if add_prefix else []
        words += [self.source_lead] if self.source_lead else []
        for name in self.source_fields:
            words += [f"{name}:", str(view[name])]
        return " ".join(words)

    def encoder_input(self, example: dict) -> dict:
        """Inputs of a BERT-family encoder with a task head (not for ReCoRD)."""
        if self.encoder_head is None:
            raise ValueError(unsupported_message(self.name, "encoder"))
        view = self.view(example)
        first, second = self.encoder_fields
        text = " ".join(str(view[f]) for f in first)
        if self.encoder_head == "multiple_choice":
            return {"choices": [(text, str(view[c])) for c in second], "label": example["label"]}
        pair = " ".join(str(view[f]) for f in second) if second else None
        return {"text": text, "text_pair": pair, "label": example["label"]}

    def parse_prediction(self, text: str):
        """A generated string back to a label value; ``None`` if it is not one."""
        return self.scoring.parse(self, text.strip())

    def compute_metrics(self, predictions: list, examples: list[dict]) -> dict[str, float]:
        """Scores (×100) of ``predictions`` aligned with ``examples``; ``None`` counts as wrong."""
        if len(predictions) != len(examples):
            raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
        if not examples:
            raise ValueError(f"cannot score {self.name!r} on zero examples")
        return self.scoring.score(self, predictions, examples)


class TaskRegistry(Mapping[str, Task]):
    """Every task by name, in the papers' column order: what a name from a config or the
    command line is resolved against (``get_task``). ``register`` adds a task (a test's, a
    plugin's) and ``unregister`` takes it away again, with no module reloaded."""

    def __init__(self, tasks: Iterable[Task] = ()):
        self._tasks: dict[str, Task] = {}
        for task in tasks:
            self.register(task)

    def register(self, task: Task) -> Task:
        if task.name in self._tasks:
            raise ValueError(f"a task {task.name!r} is already registered")
        self._tasks[task.name] = task
        return task

    def unregister(self, name: str) -> Task:
        return self._tasks.pop(name)

    def __getitem__(self, name: str) -> Task:
        return self._tasks[name]

    def __iter__(self):
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)


# The behaviour of the tasks that are not plain (examples as they are, one jsonl line one row, one
# number as the id, scored by label or score), beside their ``catalog.TASKS`` entries.
_BEHAVIOUR = {
    "rte": dict(jsonl_rows=rows.rte_rows),
    "copa": dict(view=_copa_view),
    "multirc": dict(view=_multirc_view, jsonl_rows=rows.multirc_rows, example_ids=rows.multirc_ids,
                    scoring=scoring.GROUPED_LABELS),
    "record": dict(view=_record_view, jsonl_rows=rows.record_rows, example_ids=rows.record_ids,
                   scoring=scoring.ANSWERS),
    "wsc": dict(view=_wsc_view, jsonl_rows=rows.wsc_rows),
}
TASKS = TaskRegistry(Task.from_spec(spec, **_BEHAVIOUR.get(spec.name, {})) for spec in catalog.TASKS)


def get_task(name: str) -> Task:
    """The task called ``name`` (lowercase id, e.g. ``"rte"``): for names from a config or the
    command line; code that has a ``Task`` passes it on."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}") from None


def supported_tasks(model_kind: str) -> list[str]:
    """Tasks usable with ``model_kind`` (``"seq2seq"`` or ``"encoder"``)."""
    if model_kind not in ("seq2seq", "encoder"):
        raise ValueError(f"unknown model_kind {model_kind!r}; valid: 'seq2seq', 'encoder'")
    return [n for n, t in TASKS.items() if t.supports(model_kind)]


def unsupported_message(task: str, model_kind: str) -> str:
    """Error text for a task/model-kind pair that does not exist, naming what does."""
    return (f"task {task!r} is not supported with model_kind={model_kind!r}; "
            f"supported tasks: {', '.join(supported_tasks(model_kind))}")
