"""Add one new language to an existing student with a few thousand pairs.

    python examples/add_language.py STUDENT_FOLDER uk    # e.g. the ./mlembed-student of `mlembed distill`
    python examples/add_language.py STUDENT_FOLDER uk --max-pairs 200 --max-steps 1 --eval-pairs 0 \
        --held-out 100 --output /tmp/student-plus-uk   # a smoke run

Continues distillation from STUDENT_FOLDER (``student=FOLDER``: its vocabulary is kept as it is) on
the gettext pairs of one language (both sides are trained toward the teacher's English embedding, so
the English side stays anchored; a student mlembed distilled keeps its own settings, e.g. frozen word
embeddings for an e5-small student), then reports translation-matching accuracy (the ``translation:``
task of :mod:`mlembed.evaluation`) on 300 held-out pairs before and after. Measured once, from the
``auto`` student ``examples/make_multilingual.py`` made before e5-small became the default (de/fr/es/ru/zh),
on 2 cores shared with another job:
``uk: translation accuracy on 300 held-out gettext pairs 27.5 -> 35.8 (27 steps)``.

The options shorten the run (tests/test_examples.py runs the smoke run); the defaults are the full run above.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlembed.data import read_pairs
from mlembed.data.cleaning import CleanOptions
from mlembed.data.output import write_tsv
from mlembed.distill import distill
from mlembed.evaluation import evaluate, parse_task


def main() -> None:
    parser = argparse.ArgumentParser(description="Add one language to a distilled student (see the module docstring).")
    parser.add_argument("student", help="the student's folder")
    parser.add_argument("lang", help="the language to add, e.g. uk")
    parser.add_argument("--max-pairs", type=int, default=3000, help="training pairs (default: %(default)s)")
    parser.add_argument("--max-minutes", type=float, default=5, help="training time budget (default: %(default)s)")
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (default: no limit)")
    parser.add_argument(
        "--held-out", type=int, default=300, help="test pairs, never trained on (default: %(default)s)"
    )
    parser.add_argument(
        "--eval-pairs", type=int, default=200, help="dev pairs, from the training side; 0: none (default: %(default)s)"
    )
    parser.add_argument("--output", help="the new student's folder (default: STUDENT-plus-LANG)")
    args = parser.parse_args()
    if args.held_out < 1:
        parser.error("--held-out: expected at least 1 pair")
    student, lang = args.student, args.lang
    output = args.output or f"{student}-plus-{lang}"

    pairs = list(read_pairs(f"gettext:system:{lang}", clean=CleanOptions(min_words=3)))
    held_out, train = pairs[-args.held_out :], pairs[: -args.held_out]
    held_english = {p.src for p in held_out}
    train_file, test_file = Path(f"{output}.train.tsv"), Path(f"{output}.test.tsv")
    write_tsv((p for p in train if p.src not in held_english), train_file)  # never train on the test pairs
    write_tsv(held_out, test_file)
    result = distill(
        data=[f"tsv:{train_file}"],
        student=student,
        output=output,
        max_pairs=args.max_pairs,
        max_minutes=args.max_minutes,
        max_steps=args.max_steps,
        eval_pairs=args.eval_pairs,
        overwrite=True,
    )
    task = parse_task(f"translation:tsv:{test_file}")
    (_, before), (_, after) = evaluate({"before": student, "after": result.output}, [task])
    print(
        f"{lang}: translation accuracy on {len(held_out)} held-out gettext pairs "
        f"{before.main_score:.1f} -> {after.main_score:.1f} ({result.steps} steps)"
    )


if __name__ == "__main__":
    main()
