"""``mlembed distill``: make the English teacher multilingual on parallel data (the main job)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from mlembed.distill.config import add_arguments

    p = sub.add_parser(
        "distill",
        help="distil the English teacher into a multilingual student",
        description="Knowledge distillation (Reimers & Gurevych 2020): the student learns student(English) ~ "
        "teacher(English) and student(translation) ~ teacher(English) by MSE. With no arguments it trains on the "
        "gettext catalogs of this machine for a few minutes and saves ./mlembed-student. Interrupted runs continue "
        "with --resume.",
    )
    add_arguments(p)  # one flag per DistillConfig field
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --output")
    p.add_argument("--no-table", action="store_true", help="skip the before/after similarity table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlembed.distill import distill
    from mlembed.distill.config import config_from_args

    config = config_from_args(args)
    result = distill(config, resume=args.resume)
    from mlembed.distill.distributed import is_main

    if not is_main():  # under torchrun, rank 0 reports
        return 0
    print(
        f"\nsaved {result.output}: {result.steps} steps in {result.train_seconds:.0f} s "
        f"(+{result.prep_seconds:.0f} s preparation), {sum(result.pairs_per_language.values()):,} pairs in "
        f"{len(result.pairs_per_language)} language pairs"
    )
    if result.dev_start:
        print("dev of the start: " + ", ".join(f"{k} {v}" for k, v in result.dev_start.items()))
    if result.dev:
        print("dev: " + ", ".join(f"{k} {v}" for k, v in result.dev.items()))
    if result.shipped == "start":
        print("saved the start: training lowered dev translation accuracy (--no-keep-best keeps the trained student)")
    if not args.no_table:
        from pathlib import Path

        from mlembed.compare import similarity_table
        from mlembed.distill.head import start_model
        from mlembed.distill.run_folder import START_MAP
        from mlembed.models import load_model

        # names and functions: similarity_table loads one model at a time (the memory of one e5, not three)
        columns: dict = {"teacher": config.teacher}  # (distill filled it in)
        if args.student not in ("auto", config.teacher):  # the pretrained start as it was, in its own space
            columns[args.student.rstrip("/").rsplit("/", 1)[-1]] = lambda: load_model(args.student)
        if (Path(result.output) / START_MAP).exists():  # ... and mapped into the teacher's, untrained
            columns["start"] = lambda: start_model(result.output)
        columns["student"] = result.output
        print()
        print(similarity_table(columns))
    return 0
