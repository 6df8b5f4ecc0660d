"""`mlembed distill`'s flags are generated from DistillConfig: every field has its flag, every flag its field,
the flags of earlier versions all remain, and parsed flags give the config the Python API would."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from mlembed.distill.config import DistillConfig, add_arguments, config_from_args, flag

#: flags that are not options of a run: they choose how the command runs it
COMMAND_ONLY = {"--help", "--resume", "--no-table"}

#: every flag `mlembed distill` had before its arguments were generated (none may disappear)
EARLIER_FLAGS = (
    "--data --teacher --student --layers --langs --output --max-pairs --max-pairs-per-lang --epochs --max-steps "
    "--max-minutes --batch-size --lr-schedule --lr --head-lr --freeze-embeddings --student-map --map-pairs "
    "--map-sentences --freeze-layers --gradient-checkpointing --anchor --merge-start --contrastive --dim "
    "--new-tokens --vocab-init --embedding-lr --max-seq-length --eval-data --eval-pairs --eval-steps --save-steps "
    "--decontaminate --cache-dir --seed --resume --keep-work --overwrite --keep-best --no-table"
).split()


def _parser() -> argparse.ArgumentParser:
    from mlembed.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0]  # the verbs
    return sub.choices["distill"]


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings if s.startswith("--")}


def test_every_field_has_its_flag_and_every_flag_its_field():
    flags = _flags(_parser())
    by_field = {flag(f.name) for f in fields(DistillConfig)}
    assert by_field <= flags, f"fields without a flag: {sorted(by_field - flags)}"
    negated = {"--no-" + f[2:] for f in by_field}  # --x/--no-x of a boolean field
    assert flags - by_field - negated - COMMAND_ONLY == set()
    for f in fields(DistillConfig):
        assert f.metadata.get("help"), f"{f.name}: no help"


def test_no_earlier_flag_is_lost():
    assert set(EARLIER_FLAGS) <= _flags(_parser())


def test_parsed_flags_give_the_config_of_the_api():
    args = _parser().parse_args(
        "--data tsv:a.tsv --data tsv:b.tsv --langs de,fr --max-pairs 0 --max-minutes 0 --no-freeze-embeddings "
        "--decontaminate x y --keep-work --seed 0 --max-steps 40 --lr-schedule epochs".split()
    )
    assert config_from_args(args) == DistillConfig(
        data=("tsv:a.tsv", "tsv:b.tsv"),
        langs=["de", "fr"],
        max_pairs=None,
        max_minutes=None,
        freeze_embeddings=False,
        decontaminate=("x", "y"),
        keep_work=True,
        seed=0,
        max_steps=40,
        lr_schedule="epochs",
    )
    assert config_from_args(_parser().parse_args([])) == DistillConfig()  # the defaults are the dataclass's


def test_a_choice_outside_the_fields_choices_is_refused_by_the_parser_and_the_api():
    from mlembed.distill.config import validate

    with pytest.raises(SystemExit):
        _parser().parse_args(["--student-map", "cca"])
    with pytest.raises(ValueError, match=r"--student-map 'cca': expected one of procrustes, lstsq, none"):
        validate(DistillConfig(student_map="cca"))


def test_add_arguments_works_on_any_parser():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert config_from_args(parser.parse_args(["--output", "x"])).output == "x"
