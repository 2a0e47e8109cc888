"""Run settings layered by OmegaConf: each layer deep-merged onto a dataclass schema, in order.

Every value is typed by the schema (``3e-3`` is a number wherever it is written), an unknown key
names the valid ones, a wrong type names the field, and a partial ``method_options`` keeps the
options it does not name. OmegaConf rather than Hydra or jsonargparse: the configs are plain
dataclasses already, the sweep needs merges of in-memory layers (profile sections, blocks,
variants) more than a CLI framework, and Hydra would take over the working directory and logging
of every run.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, ValidationError


def merged(schema: type, what: str, layers: list) -> dict[str, Any]:
    """``layers`` deep-merged in order onto the dataclass ``schema``, as plain Python values; a
    ``ValueError`` naming ``what`` and the key for an unknown key, a wrong type or a field no layer set."""
    try:
        return OmegaConf.to_container(OmegaConf.merge(_structured(schema), *layers), resolve=True,
                                      throw_on_missing=True)
    except ConfigKeyError as error:
        valid = sorted(fields(schema) - {"method"})  # ``method`` is named by the config file, not set
        raise ValueError(f"unknown {what} {error.full_key!r}; valid: {', '.join(valid)}") from None
    except MissingMandatoryValue as error:
        raise ValueError(f"{what} {error.full_key} is not set") from None
    except ValidationError as error:
        reason = error.msg.splitlines()[0]
        raise ValueError(f"{what} {error.full_key}: {reason}") from None


@functools.cache
def _structured(schema: type):
    """The schema's typed OmegaConf node, built once (a paper plan merges onto it ~2500 times;
    ``merge`` copies it, never changes it)."""
    return OmegaConf.structured(schema)


def fields(schema: type) -> set[str]:
    return {f.name for f in dataclasses.fields(schema)}


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs, as OmegaConf's dotted list: ``method_options.n=8`` sets one option,
    values are YAML (``3e-3`` a number, ``null``, lists, ``{num_tokens: 20}``)."""
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
    return OmegaConf.to_container(OmegaConf.from_dotlist(pairs))
