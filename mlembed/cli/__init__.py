"""The ``mlembed`` command line: a thin layer over the Python API, one module per verb.

Each verb module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
``run(args) -> int`` function.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mlembed import __version__

VERBS = ["compare", "data", "distill", "encode", "evaluate", "index", "info", "mine", "search"]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all verbs registered)."""
    parser = argparse.ArgumentParser(
        prog="mlembed",
        description="Make English sentence embeddings multilingual (knowledge distillation), "
        "then encode, evaluate, index and mine parallel sentences across languages.",
    )
    parser.add_argument("--version", action="version", version=f"mlembed {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        importlib.import_module(f"mlembed.cli.{verb.replace('-', '_')}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mlembed`` console script.

    Example:
        >>> main(["info", "--short"])  # doctest: +SKIP
        0
    """
    from mlembed.io import DataError
    from mlembed.models import ModelNotFoundError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (DataError, ModelNotFoundError, FileNotFoundError) as exc:
        print(f"mlembed {args.verb}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mlembed {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
