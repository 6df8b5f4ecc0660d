"""``mlembed evaluate``: run evaluation tasks for one or more models; write results.json, results.md, PNGs."""

from __future__ import annotations

import argparse

from mlembed.cli import add_backend_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate models on Tatoeba, STS, MSE, mining tasks; JSON + Markdown + charts",
        description="Run every --task for every --model (a sentence is encoded once per model) and write "
        "DIR/results.json (one entry per model x task x language), DIR/results.md (tables: models as rows, "
        "languages as columns, mean last) and DIR/*.png (per-language bars). Task specs: "
        "tatoeba:DIR[:langs], translation:DATA_SPEC, mse:DATA_SPEC (needs --teacher), "
        "sts:DIR:PAIRS[:split] (stsb-multi-mt, e.g. en,de,en-de), sts:FILE (STS Benchmark TSV), "
        "sts:DIR[:PAIRS] (SemEval-2017 / STS2017-extended), mining:DATA_SPEC (with --distractors), "
        "bucc:DIR[:langs[:split]]. See docs/evaluation.md.",
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        help="repeatable: alias (minilm-en, e5-small), peer (teacher = minilm-en, muse, e5q4), folder or hub id",
    )
    p.add_argument("--task", action="append", required=True, help="repeatable task spec (see above)")
    add_backend_argument(p, "torch")
    p.add_argument("--output", "-o", required=True, help="output folder")
    p.add_argument("--teacher", default="minilm-en", help="teacher for mse: tasks [%(default)s]")
    p.add_argument("--margin", action="store_true", help="tatoeba/translation: nearest neighbour by ratio margin")
    p.add_argument("--limit", type=int, default=None, help="at most this many pairs per language")
    p.add_argument(
        "--english-model",
        default=None,
        metavar="MODEL",
        help="tatoeba/translation: encode the English side with this model instead (cross-model retrieval: "
        "a student distilled into MODEL's space queried against MODEL's English vectors)",
    )
    p.add_argument(
        "--distractors",
        action="append",
        default=[],
        help="mining: data spec(s) to draw distractor sentences from (repeatable)",
    )
    p.add_argument(
        "--distractor-ratio",
        type=float,
        default=10.0,
        help="mining: distractor sentences per gold pair on each side [%(default)s]",
    )
    p.add_argument("--seed", type=int, default=0, help="mining: sampling and split seed [%(default)s]")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per forward pass [%(default)s]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlembed.backends import load_backend
    from mlembed.evaluation import PEERS, EmbeddingCache, evaluate, parse_task
    from mlembed.evaluation.report import write_report
    from mlembed.models import load_model

    caches: dict[str, EmbeddingCache] = {}
    teacher = None
    if any(t.startswith("mse:") for t in args.task):
        name = args.teacher
        teacher = EmbeddingCache(
            load_backend(load_model(PEERS.get(name, name)), args.backend), args.batch_size, True, name
        )
        if name in args.model:
            caches[name] = teacher
    english = None
    if args.english_model:
        name = args.english_model
        english = caches.get(name) or EmbeddingCache(
            load_backend(load_model(PEERS.get(name, name)), args.backend), args.batch_size, True, name
        )
        if name in args.model:
            caches[name] = english
    tasks = [
        parse_task(
            t,
            teacher=teacher,
            margin=args.margin,
            limit=args.limit,
            distractors=args.distractors,
            distractor_ratio=args.distractor_ratio,
            seed=args.seed,
            english=english,
        )
        for t in args.task
    ]
    command = _command_line(args)

    def save_so_far(done: list) -> None:  # a crash at task 9 keeps tasks 1-8 in results.json / results.md
        write_report(done, args.output, command=command, extra={"complete": False}, charts=False)

    results = evaluate(
        {m: m for m in args.model}, tasks, batch_size=args.batch_size, caches=caches, on_result=save_so_far
    )
    paths = write_report(results, args.output, command=command, extra={"complete": True})
    from mlembed.evaluation.report import markdown

    print(markdown(results).split("\n", 2)[2].rstrip())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (recorded in results.json and results.md)."""
    import shlex

    parts = ["mlembed", "evaluate"]
    parts += [x for m in args.model for x in ("--model", m)] + [x for t in args.task for x in ("--task", t)]
    parts += [x for d in args.distractors for x in ("--distractors", d)]
    if any(t.startswith("mining:") for t in args.task):
        parts += ["--distractor-ratio", f"{args.distractor_ratio:g}", "--seed", str(args.seed)]
    if any(t.startswith("mse:") for t in args.task):
        parts += ["--teacher", args.teacher]
    parts += ["--margin"] if args.margin else []
    parts += ["--limit", str(args.limit)] if args.limit else []
    parts += ["--english-model", args.english_model] if args.english_model else []
    return " ".join(shlex.quote(x) for x in parts + ["--output", args.output])
