"""Make the English teacher multilingual, step by step, with mlembed's Python API.

    python examples/make_multilingual.py            # ~10 minutes on 2 CPU cores
    python examples/make_multilingual.py --student auto --langs de,fr --max-pairs 200 --max-steps 1 \
        --eval-pairs 0 --output /tmp/student       # a smoke run of every step (well under a minute)

1. look at the data (gettext catalogs every Debian-like machine has),
2. distil for a short budget (the teacher cache makes a second run skip the teacher),
3. compare teacher and student on one sentence in several languages,
4. load the result with plain sentence-transformers.

The options shorten the run (tests/test_examples.py runs the smoke run); the defaults are the full run above.
"""

from __future__ import annotations

import argparse
from itertools import islice

from mlembed.compare import similarity_table
from mlembed.data import read_pairs
from mlembed.data.cleaning import CleanOptions
from mlembed.distill import distill
from mlembed.models import load_model

parser = argparse.ArgumentParser(description="Make the English teacher multilingual (see the module docstring).")
parser.add_argument(
    "--langs", default="de,fr,es,ru,zh", help="comma-separated target languages (default: %(default)s)"
)
parser.add_argument("--max-pairs", type=int, default=10_000, help="training pairs, balanced (default: %(default)s)")
parser.add_argument("--max-minutes", type=float, default=5, help="training time budget (default: %(default)s)")
parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (default: no limit)")
parser.add_argument("--eval-pairs", type=int, default=500, help="dev pairs, held out; 0: none (default: %(default)s)")
parser.add_argument("--output", default="example-student", help="the student's folder (default: %(default)s)")
parser.add_argument(
    "--student",
    default="e5-small",
    help="the start: e5-small (distill's default), auto (the teacher, its vocabulary widened: faster), or a folder",
)
args = parser.parse_args()
LANGS = args.langs.split(",")

# 1. the data: English UI messages and their human translations, cleaned
for pair in islice(read_pairs("gettext:system", langs=LANGS, clean=CleanOptions(min_words=3)), 3):
    print(pair)

# 2. distil (by default: 10,000 pairs balanced across the five languages, 5 minutes of training)
result = distill(
    data=["gettext:system"],
    langs=LANGS,
    output=args.output,
    max_pairs=args.max_pairs,
    max_minutes=args.max_minutes,
    max_steps=args.max_steps,
    eval_pairs=args.eval_pairs,
    student=args.student,
    overwrite=True,
)
print(f"{result.steps} steps, dev: {result.dev}")

# 3. before / after
print(similarity_table({"teacher": load_model("minilm-en"), "student": load_model(args.output)}))

# 4. the student is a normal sentence-transformers model
from sentence_transformers import SentenceTransformer  # noqa: E402

model = SentenceTransformer(args.output)
print(model.encode(["Guten Morgen", "Good morning", "早上好"]).shape)
