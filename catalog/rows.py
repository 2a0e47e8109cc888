"""Row formats of the original releases: how one line of a task's SuperGLUE jsonl becomes the
Hub's rows (``aps/super_glue``), and how a Hub row's ``idx`` becomes the example's ids.

Each is a field of its task's entry (``Task.jsonl_rows``, ``Task.example_ids``, ``catalog/tasks.py``);
the plain ones (one line one row, one number as the id) are the defaults there.
"""

from __future__ import annotations

from collections.abc import Iterator


def same_row(obj: dict) -> Iterator[dict]:
    """One line = one row, already in the Hub's field names."""
    yield obj


def number_id(idx) -> dict:
    return {"idx": int(idx)}


def multirc_rows(obj: dict) -> Iterator[dict]:
    """One line = one passage with questions with answers; a row per answer."""
    for question in obj["passage"]["questions"]:
        for answer in question["answers"]:
            yield {"paragraph": obj["passage"]["text"], "question": question["question"],
                   "answer": answer["text"], "label": answer["label"],
                   "idx": {"paragraph": obj["idx"], "question": question["idx"], "answer": answer["idx"]}}


def multirc_ids(idx: dict) -> dict:
    """The answer within its question; the question is the group its EM is computed over."""
    return {"idx": int(idx["answer"]), "group": int(idx["question"])}


def record_rows(obj: dict) -> Iterator[dict]:
    """One line = one passage with queries; a row per query."""
    text = obj["passage"]["text"]
    # the sorted set of entity texts, as the Hub's rows (and so the paper's inputs) list them
    entities = sorted({text[e["start"]:e["end"] + 1] for e in obj["passage"]["entities"]})
    for qa in obj["qas"]:
        yield {"passage": text, "query": qa["query"], "entities": entities,
               "answers": sorted({a["text"] for a in qa.get("answers", [])}),
               "idx": {"passage": obj["idx"], "query": qa["idx"]}}


def record_ids(idx: dict) -> dict:
    """The query within its passage."""
    return {"idx": int(idx["query"]), "passage_idx": int(idx["passage"])}


def _fix_wsc_span(text: str, span: str, index: int) -> str:
    """Repair a span text that is not in the sentence, as the Hub's ``wsc.fixed`` does:
    match the case of the word at ``index``, drop a trailing period and newlines."""
    if span in text:
        return span
    words = text.split()
    first_word = words[index] if index < len(words) else span
    span = (span[0].lower() if first_word[:1].islower() else span[0].upper()) + span[1:]
    return span.rstrip(".").replace("\n", " ")


def wsc_rows(obj: dict) -> Iterator[dict]:
    """The spans lifted out of ``target``, their texts repaired (the Hub's ``wsc.fixed``)."""
    target = obj["target"]
    row = {**obj, **target}
    for k in ("span1", "span2"):
        row[f"{k}_text"] = _fix_wsc_span(obj["text"], target[f"{k}_text"], target[f"{k}_index"])
    yield row


def rte_rows(obj: dict) -> Iterator[dict]:
    """SuperGLUE's RTE names GLUE's sentence1/sentence2 premise/hypothesis."""
    yield {"sentence1": obj["premise"], "sentence2": obj["hypothesis"], "label": obj["label"], "idx": obj["idx"]}
