"""Add one new language to an existing student with a few thousand pairs.

    python examples/add_language.py STUDENT_FOLDER uk    # e.g. the ./mlembed-student of `mlembed distill`

Continues distillation from STUDENT_FOLDER (``student=FOLDER``: its vocabulary is kept as it is) on
the gettext pairs of one language (both sides are trained toward the teacher's English embedding, so
the English side stays anchored; a student mlembed distilled keeps its own settings, e.g. frozen word
embeddings for an e5-small student), then reports translation-matching accuracy (the ``translation:``
task of :mod:`mlembed.evaluation`) on 300 held-out pairs before and after. Measured once, from the
``auto`` student ``examples/make_multilingual.py`` made before e5-small became the default (de/fr/es/ru/zh),
on 2 cores shared with another job:
``uk: translation accuracy on 300 held-out gettext pairs 27.5 -> 35.8 (27 steps)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlembed.data import read_pairs
from mlembed.data.cleaning import CleanOptions
from mlembed.data.output import write_tsv
from mlembed.distill import distill
from mlembed.evaluation import evaluate, parse_task


def main() -> None:
    student, lang = sys.argv[1], sys.argv[2]
    pairs = list(read_pairs(f"gettext:system:{lang}", clean=CleanOptions(min_words=3)))
    held_out, train = pairs[-300:], pairs[:-300]
    held_english = {p.src for p in held_out}
    train_file, test_file = Path(f"{student}-plus-{lang}.train.tsv"), Path(f"{student}-plus-{lang}.test.tsv")
    write_tsv((p for p in train if p.src not in held_english), train_file)  # never train on the test pairs
    write_tsv(held_out, test_file)
    result = distill(
        data=[f"tsv:{train_file}"],
        student=student,
        output=f"{student}-plus-{lang}",
        max_pairs=3000,
        max_minutes=5,
        eval_pairs=200,
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
