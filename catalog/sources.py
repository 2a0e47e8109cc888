"""Raw task examples: from a local copy of the original releases, local Hub parquet
files, or the Hugging Face Hub — the same records from each — and the paper's splits.

Every source is first turned into rows shaped like the Hub's (``nyu-mll/glue``,
``aps/super_glue``) and then normalised by one function, so that the three sources cannot
drift apart: Hub field names, an int ``label`` (float for STS-B; ``answers`` for ReCoRD),
an int ``idx`` and, for MultiRC, the question id as ``group``.

Splits follow the paper's code (rabeehk/compacter ``AbstractTask.get`` with
``split_validation_test``), which keeps the original test sets (unlabelled) out:
small tasks split their validation set in half with a seeded ``torch.randperm`` (first
half validation, second half test); large tasks hold out the first 1000 of a seeded
permutation of train as validation and use the original validation set as test; MNLI
validates on mismatched and tests on matched.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

from catalog.tasks import TASKS, Task

HUB_DATASETS = {"glue": "nyu-mll/glue", "superglue": "aps/super_glue"}
# Each reader is handed a ``Task`` and reads everything task-specific off it: its local layout
# (``Task.tsv``, ``Task.jsonl``), the fields its examples keep (``Task.fields``), its jsonl row
# format (``Task.jsonl_rows``), ids (``Task.example_ids``) and gold fields (``Task.scoring``).
_TSV_FILES = {"train": "train.tsv", "validation": "dev.tsv",
              "validation_matched": "dev_matched.tsv", "validation_mismatched": "dev_mismatched.tsv"}
_JSONL_FILES = {"train": "train.jsonl", "validation": "val.jsonl"}


def _with_layout(layout: str) -> list[str]:
    """The registered tasks a local copy of ``layout`` holds, for an error message."""
    return [name for name, task in TASKS.items() if getattr(task, layout)]


def original_splits(task: Task) -> tuple[str, ...]:
    """The labelled splits of the original release that the paper's split rule reads."""
    return ("train", *(task.eval_splits or ("validation",)))


# ---------------------------------------------------------------- normalisation

def _normalize(task: Task, row: dict, where: str) -> dict:
    """A Hub-shaped row -> the example dict every consumer sees; errors name ``where``."""
    try:
        example = {name: row[name] for name in task.fields}
        example.update(task.scoring.gold(task, row))
        example.update(task.example_ids(row["idx"]))
    except KeyError as err:
        raise ValueError(f"{where}: missing field {err}") from None
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None
    return example


# ---------------------------------------------------------------- GLUE tsv

def read_glue_tsv(task: Task, path: str | os.PathLike) -> list[dict]:
    """One GLUE tsv file of the ``download_glue_data.py`` layout.

    Quoting is disabled (``csv.QUOTE_NONE``): GLUE sentences contain unbalanced quotes,
    and a quote-aware reader silently merges lines.
    """
    fmt, path = task.tsv, Path(path)
    if fmt is None:
        raise ValueError(f"task {task.name!r} has no GLUE tsv format; valid: {', '.join(_with_layout('tsv'))}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; expected a GLUE tsv of task {task.name!r}")
    examples: list[dict] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:  # MRPC starts with a BOM
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = list(fmt.header or next(reader, []))
        missing = [c for c in (*fmt.columns.values(), fmt.label) if c not in header]
        if missing:
            raise ValueError(f"{path}:1: header lacks columns {missing}; found {header}")
        for values in reader:
            if not values:  # a blank line holds no example
                continue
            where = f"{path}:{reader.line_num}"
            if len(values) != len(header):
                raise ValueError(f"{where}: expected {len(header)} tab-separated columns, found {len(values)}")
            row = {name: values[header.index(col)] for name, col in fmt.columns.items()}
            row.update(label=values[header.index(fmt.label)], idx=len(examples))
            examples.append(_normalize(task, row, where))
    return examples


# ---------------------------------------------------------------- SuperGLUE jsonl

def read_superglue_jsonl(task: Task, path: str | os.PathLike) -> list[dict]:
    """One official SuperGLUE jsonl file (also FewGLUE's, same format), a line into rows by ``task.jsonl_rows``."""
    path = Path(path)
    if task.jsonl is None:
        raise ValueError(f"task {task.name!r} has no SuperGLUE jsonl format; valid: {', '.join(_with_layout('jsonl'))}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; expected a SuperGLUE jsonl of task {task.name!r}")
    examples: list[dict] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                obj = json.loads(line)
                rows = list(task.jsonl_rows(obj))
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not valid JSON ({err.msg})") from None
            except (KeyError, TypeError, IndexError) as err:
                raise ValueError(f"{where}: malformed {task.name} record ({err!r})") from None
            examples.extend(_normalize(task, row, where) for row in rows)
    return examples


# ---------------------------------------------------------------- synthetic

SYNTHETIC_WORDS = ("apple", "river", "stone", "cloud", "green", "table", "music", "light",
                   "paper", "horse", "glass", "winter", "bread", "water", "chair", "night")
SYNTHETIC_MARKER = "yes"
SYNTHETIC_SIZES = {"train": 512, "validation": 256}  # validation is halved into val / test


def synthetic_examples(task: Task, split: str) -> list[dict]:
    """Generated examples of the ``synthetic`` tasks, the same on every call.

    A sentence is 8 words drawn from ``SYNTHETIC_WORDS``, some of them replaced by
    ``SYNTHETIC_MARKER``: ``synthetic`` labels whether it occurs (half of the examples),
    ``synthetic_count`` scores how often (0-5, uniform). A model that reads its input
    learns either in seconds; one that does not stays at chance (50%, correlation 0).
    """
    import torch  # here, as in every reader: a sweep's supervisor imports this module without torch

    if split not in SYNTHETIC_SIZES:
        raise ValueError(f"synthetic tasks have splits {', '.join(SYNTHETIC_SIZES)}; got {split!r}")
    generator = torch.Generator().manual_seed(list(SYNTHETIC_SIZES).index(split))
    examples = []
    for idx in range(SYNTHETIC_SIZES[split]):
        words = [SYNTHETIC_WORDS[i] for i in torch.randint(len(SYNTHETIC_WORDS), (8,), generator=generator)]
        # the classification: present in every second example; the count (a regression): 0-5, uniform
        markers = int(torch.randint(6, (1,), generator=generator)) if task.encoder_head == "regression" else idx % 2
        for position in torch.randperm(8, generator=generator)[:markers].tolist():
            words[position] = SYNTHETIC_MARKER
        row = {"sentence": " ".join(words), "label": markers, "idx": idx}
        examples.append(_normalize(task, row, f"synthetic {task.name} {split} row {idx}"))
    return examples


# ---------------------------------------------------------------- sources

def _local_layout(task: Task, benchmark: str) -> tuple[str, dict[str, str], Callable, str]:
    """(folder, split -> file name, reader, layout name) of a local copy of ``benchmark``."""
    if benchmark == "glue":
        return task.tsv.folder, _TSV_FILES, read_glue_tsv, "download_glue_data.py"
    return task.jsonl, _JSONL_FILES, read_superglue_jsonl, "SuperGLUE"


def _local_reader(task: Task, root: Path, benchmark: str) -> Callable[[str], list[dict]]:
    folder, files, read, layout = _local_layout(task, benchmark)
    if not (root / folder).is_dir():
        wanted = ", ".join(files[s] for s in original_splits(task))
        raise FileNotFoundError(
            f"{root / folder} not found; expected the {layout} layout: {root}/{folder}/{{{wanted}}}")
    return lambda split: _some(read(task, root / folder / files[split]), root / folder / files[split])


def _some(examples: list[dict], path: Path) -> list[dict]:
    """``examples`` read from ``path``; none (an empty or header-only file) is the file's fault, named here
    rather than as a missing column deep in tokenization."""
    if not examples:
        raise ValueError(f"{path}: no examples (the file is empty or holds only a header)")
    return examples


def _parquet_files(root: Path, split: str) -> list[Path]:
    return sorted(root.glob(f"{split}-*.parquet")) or sorted(root.glob(f"{split}.parquet"))


def _parquet_reader(task: Task, root: Path) -> Callable[[str], list[dict]]:
    def read(split: str) -> list[dict]:
        import datasets

        files = _parquet_files(root, split)
        if not files:
            raise FileNotFoundError(
                f"no {split} parquet files in {root}; expected Hub-format files {root}/{split}-*.parquet")
        rows = datasets.Dataset.from_parquet([str(f) for f in files], keep_in_memory=True).to_list()
        return [_normalize(task, row, f"{root}/{split}-*.parquet row {i}") for i, row in enumerate(rows)]

    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found; expected a folder of Hub-format <split>-*.parquet files")
    return read


def hub_location(task: Task) -> tuple[str, str]:
    """(dataset repo, config) a task is read from on the Hub."""
    return HUB_DATASETS[task.benchmark], task.hub_config or task.name


def _hub_reader(task: Task) -> Callable[[str], list[dict]]:
    repo, config = hub_location(task)

    def read(split: str) -> list[dict]:
        import datasets

        rows = datasets.load_dataset(repo, config, split=split).to_list()
        return [_normalize(task, row, f"{repo}/{config}[{split}] row {i}") for i, row in enumerate(rows)]

    return read


def _location(task: Task, glue_dir, superglue_dir, hf_data_dir) -> tuple[str, Path | None, str | None]:
    """(kind, root folder, local layout's benchmark): the precedence ``resolve_source`` documents."""
    if task.benchmark == "synthetic":
        return "synthetic", None, None
    env_glue, env_superglue = os.environ.get("GLUE_DIR"), os.environ.get("SUPERGLUE_DIR")
    for glue, superglue, parquet in ((glue_dir, superglue_dir, hf_data_dir), (env_glue, env_superglue, None)):
        if glue is not None and task.tsv:
            return "local", Path(glue), "glue"
        if superglue is not None and task.jsonl:
            return "local", Path(superglue), "superglue"
        if parquet is not None:
            return "parquet", Path(parquet), None
    return "hub", None, None


def resolve_source(task: Task, *, glue_dir=None, superglue_dir=None, hf_data_dir=None
                   ) -> tuple[str, Callable[[str], list[dict]]]:
    """(kind, read) for ``task``: kind is ``"local"``, ``"parquet"``, ``"hub"`` (or
    ``"synthetic"`` for the generated tasks, which need no files); ``read``
    maps an original split name (see ``original_splits``) to its examples.

    Explicit arguments win over the ``GLUE_DIR`` / ``SUPERGLUE_DIR`` environment, so a
    caller's ``hf_data_dir`` is never overridden by a stray variable. RTE is GLUE's but
    also read from a SuperGLUE directory when no GLUE directory is given.
    """
    kind, root, benchmark = _location(task, glue_dir, superglue_dir, hf_data_dir)
    if kind == "synthetic":
        return kind, lambda split: synthetic_examples(task, split)
    if kind == "local":
        return kind, _local_reader(task, root, benchmark)
    if kind == "parquet":
        return kind, _parquet_reader(task, root)
    return kind, _hub_reader(task)


def source_files(task: Task, *, glue_dir=None, superglue_dir=None, hf_data_dir=None) -> tuple[str, list[Path]]:
    """(kind, the local files ``load_splits`` reads for ``task``): no files for the Hub (see
    ``hub_location``) and the synthetic tasks; files that do not exist are listed all the same."""
    kind, root, benchmark = _location(task, glue_dir, superglue_dir, hf_data_dir)
    if kind == "local":
        folder, files, _, _ = _local_layout(task, benchmark)
        return kind, [root / folder / files[split] for split in original_splits(task)]
    if kind == "parquet":
        return kind, [path for split in original_splits(task) for path in _parquet_files(root, split)]
    return kind, []


# ---------------------------------------------------------------- splits

def seeded_permutation(n: int, seed: int) -> list[int]:
    """The paper's shuffle (``torch.randperm`` with a seeded generator), so that splits and
    low-resource subsets match its runs example for example."""
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def load_splits(task: Task, *, glue_dir=None, superglue_dir=None, hf_data_dir=None, seed: int = 42,
                train_size: int | None = None, validation_size: int | None = None) -> dict[str, list[dict]]:
    """``{"train", "validation", "test"}`` examples of ``task`` by the paper's split rule.

    ``train_size``: the first N of a seeded shuffle of the train split (the low-resource
    setting); more than there are raises ``ValueError``. ``validation_size``: the first N of a
    seeded shuffle of the validation split (a cheaper learning curve), all of it when smaller.
    """
    _, read = resolve_source(task, glue_dir=glue_dir, superglue_dir=superglue_dir, hf_data_dir=hf_data_dir)
    train = read("train")
    train_is_shuffled = False
    if task.eval_splits:  # taken whole from the release (MNLI: mismatched to validate, matched to test)
        validation, test = (read(split) for split in task.eval_splits)
    elif held_out := task.validation_from_train:
        if len(train) <= held_out:
            raise ValueError(f"{task.name} holds out {held_out} training examples as validation "
                             f"but its train split has only {len(train)}")
        order = seeded_permutation(len(train), seed)
        validation = [train[i] for i in order[:held_out]]
        train, test, train_is_shuffled = [train[i] for i in order[held_out:]], read("validation"), True
    else:
        original = read("validation")
        order, half = seeded_permutation(len(original), seed), len(original) // 2
        validation, test = [original[i] for i in order[:half]], [original[i] for i in order[half:]]
    if train_size is not None:
        train = _first_n(task, train, train_size, seed, train_is_shuffled)
    if validation_size is not None and validation_size < len(validation):
        validation = [validation[i] for i in seeded_permutation(len(validation), seed)[:validation_size]]
    return {"train": train, "validation": validation, "test": test}


def _first_n(task: Task, train: list[dict], n: int, seed: int, already_shuffled: bool) -> list[dict]:
    """First ``n`` of the seeded shuffle; a large task's train split is already in that
    shuffled order (the remainder of the hold-out permutation), as in the paper's code."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"train_size must be a positive integer, got {n!r}")
    if n > len(train):
        raise ValueError(f"train_size={n} but {task.name} has only {len(train)} training examples")
    if already_shuffled:
        return train[:n]
    return [train[i] for i in seeded_permutation(len(train), seed)[:n]]
