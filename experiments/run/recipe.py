"""One method recipe: a method config's name -> what every user of it applies and trains with.

``catalog/configs/methods/<name>.yaml`` names the library method ``compacter.apply`` gets
(``method:``; ``prompt`` for ``prompt_r``, ``peft`` for ``lora``), its options, its learning rate
and whether T5 inputs start with the task name. ``method_recipe`` reads it, merges run-setting
layers (a profile's, ``--set``'s) onto it, and checks, types and completes the options by the
library method's config dataclass (``compacter.configs``), the one source of their defaults:
the run config, training, the efficiency benchmark and the parameter table all get their
method from here, so none of them applies options that were not checked.

peft's configs complete themselves (their defaults and ``__post_init__``), which needs peft and
so torch. A process without torch (the sweep's supervisor, ``make plan``) asks a child
interpreter instead (one per process, once per distinct options): the same function, the same installed peft, the
same values, and the supervisor never imports a training library. Completing them in the worker
instead would leave the supervisor without the runs' identities: completed options are part of
every run id.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import compacter
from catalog.methods import method_config
from compacter.configs import CONFIGS, PeftMethodConfig
from experiments.run.layers import fields, merged

REPO = Path(__file__).resolve().parents[2]  # where the child imports this very code from


@dataclass(frozen=True)
class _Settings:
    """The run settings a method config sets, typed as ``RunConfig`` types them; every YAML states
    its rate and prefix (no default here to drift from the paper's per-method values)."""

    learning_rate: float
    add_task_prefix: bool
    method_options: dict = field(default_factory=dict)


RECIPE_SETTINGS = tuple(f.name for f in dataclasses.fields(_Settings))


@dataclass(frozen=True)
class Recipe:
    name: str              # the method config's name: what runs, records and tables call the method
    library_method: str    # what ``compacter.apply`` gets
    options: dict          # checked, typed and completed by the library method's config dataclass
    learning_rate: float
    add_task_prefix: bool  # T5 inputs start with the task name (the paper: not for task adapters)

    def apply(self, model):
        """``model`` with the method applied (``compacter.apply``), its trainable parameters marked."""
        return compacter.apply(model, self.library_method, **self.options)


def method_recipe(name: str, *layers: Mapping[str, Any]) -> Recipe:
    """The method config ``name`` with ``layers`` of run settings merged onto its YAML in order;
    only the recipe's own settings (``RECIPE_SETTINGS``) are read from them."""
    from_file = method_config(name)
    library_method = from_file.pop("method", name)
    other = sorted(set(from_file) - set(RECIPE_SETTINGS))
    if other:  # what runs with the method, not how: per-method settings of a profile (``methods:``) hold it
        raise ValueError(f"method config {name!r} sets {other}; a method config sets method and "
                         f"{', '.join(RECIPE_SETTINGS)}, other run settings go in a profile's methods: section")
    own = [{key: layer[key] for key in RECIPE_SETTINGS if key in layer} for layer in layers]
    values = merged(_Settings, "run setting", [from_file, *own])
    return Recipe(name=name, library_method=library_method,
                  options=method_options_of(library_method, values["method_options"]),
                  learning_rate=values["learning_rate"], add_task_prefix=values["add_task_prefix"])


def method_options_of(library_method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` checked, typed and completed by the method's config dataclass: every option
    enters the run's identity, so a changed default is a different run, and a method YAML states
    only what differs from the dataclass."""
    if library_method not in CONFIGS:
        raise ValueError(f"unknown method {library_method!r}; choose one of: {', '.join(CONFIGS)}")
    schema = CONFIGS[library_method]
    if "method" in options:  # the dataclass's own field, set from the method's name
        raise ValueError(f"method {library_method!r}: 'method' is not a method option; valid options: "
                         f"{', '.join(sorted(fields(schema) - {'method'}))}")
    typed = merged(schema, f"{library_method} option", [options])
    if schema is PeftMethodConfig and "torch" not in sys.modules:
        return _completed_in_child(library_method, json.dumps(typed))
    return _completed(library_method, typed)


def _completed(library_method: str, typed: dict[str, Any]) -> dict[str, Any]:
    """Constructed once: a config completes what it derives from its options (peft's: its own defaults)."""
    resolved = dataclasses.asdict(CONFIGS[library_method](**{**typed, "method": library_method}))
    return {name: value for name, value in resolved.items() if name != "method"}


@functools.cache
def _completed_in_child(library_method: str, typed_json: str) -> dict[str, Any]:
    """``_completed`` in the child interpreter (which may import peft and torch), as JSON lines both
    ways; its ``ValueError`` (a refused peft option) is raised here with the same words."""
    child = _child()
    child.stdin.write(json.dumps([library_method, typed_json]) + "\n")
    child.stdin.flush()
    line = child.stdout.readline()
    if not line:
        raise RuntimeError(f"the child process completing {library_method} options exited with code {child.wait()}")
    answer = json.loads(line)
    if "error" in answer:
        raise ValueError(answer["error"])
    return answer["options"]


@functools.cache
def _child() -> subprocess.Popen:
    """One child per process, started on first need: a plan with several peft rows imports peft
    once, as an in-process completion would. It ends when this process closes its stdin (at exit)."""
    code = "from experiments.run.recipe import _child_main; _child_main()"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    atexit.register(lambda: (child.stdin.close(), child.wait()))
    return child


def _child_main() -> None:
    """The child's loop: one ``[library_method, typed options JSON]`` per line in, one answer out."""
    answers, sys.stdout = sys.stdout, sys.stderr  # what importing peft & co. might print is not an answer
    for line in sys.stdin:
        library_method, typed_json = json.loads(line)
        try:
            answer = {"options": _completed(library_method, json.loads(typed_json))}
        except ValueError as error:
            answer = {"error": str(error)}
        print(json.dumps(answer), file=answers, flush=True)
