"""A profile as a W&B grid sweep, so ``wandb agent`` on any number of machines runs it.

    python -m experiments.sweep.wandb_sweep --profile paper   # writes results/paper/wandb_sweep.yaml
    wandb sweep results/paper/wandb_sweep.yaml             # prints a sweep id
    wandb agent ENTITY/PROJECT/SWEEP_ID                    # on every machine

The grid is over the profile's cells by index; each agent run calls back into this module
(``--agent``), which rebuilds the same ``RunConfig`` from the profile and runs it exactly
as ``make reproduce`` would, writing the same record. The profile's digest travels with the
sweep: an agent whose checkout has a different profile refuses to run instead of silently
running another grid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from catalog.profile import load_profile, profile_names
from catalog.record import RunRecord
from experiments.run.execute import run
from experiments.run.locks import exclusive
from experiments.sweep.grid import profile_digest, run_config


def sweep_definition(profile_name: str) -> dict[str, Any]:
    profile = load_profile(profile_name)
    cells = list(profile.cells())
    return {
        "name": f"compacter-bench {profile.name}",
        "description": " ".join(profile.description.split()),
        "method": "grid",
        "program": "experiments/sweep/wandb_sweep.py",
        "command": ["${env}", "${interpreter}", "-m", "experiments.sweep.wandb_sweep", "--agent", "${args}"],
        "parameters": {
            "profile": {"value": profile.name},
            "profile_digest": {"value": profile_digest(profile)},
            "cell": {"values": list(range(len(cells)))},
        },
    }


def agent_run(params: dict[str, Any]) -> RunRecord | None:
    """Run one grid cell; None when its record already says ok (nothing to redo), a ``skipped``
    record when another launcher is running it."""
    profile = load_profile(params["profile"])
    digest = profile_digest(profile)
    if str(params["profile_digest"]) != digest:
        raise ValueError(
            f"profile {profile.name!r} in this checkout (digest {digest}) differs from the one the sweep "
            f"was made from (digest {params['profile_digest']}); check out the sweep's commit or make a new sweep"
        )
    cells = list(profile.cells())
    index = int(params["cell"])
    if not 0 <= index < len(cells):
        raise ValueError(f"cell {index} out of range: profile {profile.name!r} has {len(cells)} cells")
    config = run_config(profile, *cells[index])
    with exclusive(config) as instead:  # another agent, a local sweep or a SLURM task may hold it
        if instead:
            return None if instead.status == "ok" else instead
        return run(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", help=f"one of: {', '.join(profile_names())}")
    parser.add_argument("--agent", action="store_true", help="(used by wandb agent) run one cell")
    parser.add_argument("--cell", type=int)
    parser.add_argument("--profile_digest")
    parser.add_argument("--out", type=Path, help="where to write the sweep file")
    args = parser.parse_args(argv)
    try:
        if args.agent:
            record = agent_run({"profile": args.profile, "profile_digest": args.profile_digest, "cell": args.cell})
            return 0 if record is None or record.status in ("ok", "skipped") else 1
        definition = sweep_definition(args.profile)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out or Path("results") / args.profile / "wandb_sweep.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(definition, sort_keys=False))
    cells = len(definition["parameters"]["cell"]["values"])
    print(f"wrote {out} ({cells} runs). Next: wandb sweep {out}  then, on each machine: wandb agent <sweep id>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
