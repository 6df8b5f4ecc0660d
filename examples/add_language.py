"""Add one new language to an existing student with a few thousand pairs.

    python examples/add_language.py STUDENT_FOLDER uk    # e.g. the ./mlembed-student of `mlembed distill`

Continues distillation from STUDENT_FOLDER (``student=FOLDER``: its vocabulary is kept as it is) on
the gettext pairs of one language (both sides are trained toward the teacher's English embedding, so
the English side stays anchored), then reports translation accuracy on 300 held-out pairs before and
after.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlembed.data import read_pairs
from mlembed.data.cleaning import CleanOptions
from mlembed.data.output import write_tsv
from mlembed.distill import distill
from mlembed.encode import encode
from mlembed.models import load_model


def accuracy(model, pairs) -> float:
    """Share of translations whose nearest English sentence (cosine) is their own."""
    en = encode([p.src for p in pairs], model, normalize=True)
    xx = encode([p.tgt for p in pairs], model, normalize=True)
    return float(((xx @ en.T).argmax(1) == range(len(pairs))).mean() * 100)


def main() -> None:
    student, lang = sys.argv[1], sys.argv[2]
    pairs = list(read_pairs(f"gettext:system:{lang}", clean=CleanOptions(min_words=3)))
    held_out, train = pairs[-300:], pairs[:-300]
    held_english = {p.src for p in held_out}
    train_file = Path(f"{student}-plus-{lang}.train.tsv")
    write_tsv((p for p in train if p.src not in held_english), train_file)  # never train on the test pairs
    before = accuracy(load_model(student), held_out)
    result = distill(data=[f"tsv:{train_file}"], student=student, output=f"{student}-plus-{lang}",
                     max_pairs=3000, max_minutes=5, eval_pairs=200)
    after = accuracy(load_model(result.output), held_out)
    print(f"{lang}: translation accuracy on 300 gettext pairs {before:.1f} -> {after:.1f} ({result.steps} steps)")


if __name__ == "__main__":
    main()
