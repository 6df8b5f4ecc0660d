"""Make the English teacher multilingual, step by step, with mlembed's Python API.

    python examples/make_multilingual.py            # ~10 minutes on 2 CPU cores

1. look at the data (gettext catalogs every Debian-like machine has),
2. distil for a short budget (the teacher cache makes a second run skip the teacher),
3. compare teacher and student on one sentence in several languages,
4. load the result with plain sentence-transformers.
"""

from __future__ import annotations

from itertools import islice

from mlembed.compare import similarity_table
from mlembed.data import read_pairs
from mlembed.data.cleaning import CleanOptions
from mlembed.distill import distill
from mlembed.models import load_model

LANGS = ["de", "fr", "es", "ru", "zh"]

# 1. the data: English UI messages and their human translations, cleaned
for pair in islice(read_pairs("gettext:system", langs=LANGS, clean=CleanOptions(min_words=3)), 3):
    print(pair)

# 2. distil: 10,000 pairs balanced across the five languages, 5 minutes of training
result = distill(
    data=["gettext:system"], langs=LANGS, output="example-student", max_pairs=10_000, max_minutes=5, overwrite=True
)
print(f"{result.steps} steps, dev: {result.dev}")

# 3. before / after
print(similarity_table({"teacher": load_model("minilm-en"), "student": load_model("example-student")}))

# 4. the student is a normal sentence-transformers model
from sentence_transformers import SentenceTransformer  # noqa: E402

model = SentenceTransformer("example-student")
print(model.encode(["Guten Morgen", "Good morning", "早上好"]).shape)
