"""python -m compacter.convert from-adapterhub HUB_DIR OUT | to-adapterhub OURS_DIR OUT --name NAME"""

from __future__ import annotations

import argparse
import sys

from compacter.convert import from_adapterhub, to_adapterhub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compacter.convert",
        description="Move a trained adapter between AdapterHub (adapters 1.3) and compacter.")
    commands = parser.add_subparsers(dest="command", required=True)
    inward = commands.add_parser("from-adapterhub", help="AdapterHub's save_adapter folder -> save_trained's "
                                 "folder (for the bare backbone: compacter.load_trained(AutoModel…))")
    inward.add_argument("directory")
    inward.add_argument("out")
    outward = commands.add_parser("to-adapterhub", help="save_trained's folder -> AdapterHub's save_adapter folder")
    outward.add_argument("directory")
    outward.add_argument("out")
    outward.add_argument("--name", required=True, help="the adapter's name in AdapterHub")
    outward.add_argument("--model-name", help="the backbone's Hub id or path, recorded as AdapterHub's model_name")
    outward.add_argument("--drop-head", action="store_true", help="export without the task head's tensors")
    args = parser.parse_args(argv)
    try:
        if args.command == "from-adapterhub":
            conversion = from_adapterhub(args.directory, args.out)
        else:
            conversion = to_adapterhub(args.directory, args.out, name=args.name, model_name=args.model_name,
                                       drop_head=args.drop_head)
    except (ValueError, FileNotFoundError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    print(f"{args.out}: {conversion.config.method} (AdapterHub name {conversion.name!r})")
    for note in conversion.notes:
        print(f"  note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
